//! `kalsync sim graph` as a process: it prints where it listens and the credentials,
//! and a client can get a token and read a sample mailbox.

#[test]
fn the_graph_simulator_serves_a_sample_company() {
    let (_sim, base, mut lines) = crate::helpers::graph_simulator();
    let rest: Vec<String> = lines.by_ref().take(8).map(|l| l.expect("text")).collect();
    assert!(
        rest.iter().any(|l| l.contains("cli-test-secret")),
        "{rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.contains("mailboxes      5 from 2026-11-23")),
        "{rest:?}"
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let token: serde_json::Value = http
            .post(format!("{base}00000000-0000-4000-8000-00000000c0de/oauth2/v2.0/token"))
            .form(&[("client_id", "00000000-0000-4000-8000-0000000a99e1"), ("client_secret", "cli-test-secret"), ("grant_type", "client_credentials"), ("scope", "https://graph.microsoft.com/.default")])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        let token = token["access_token"].as_str().expect("token");
        let page: serde_json::Value = http
            .get(format!("{base}v1.0/users/anna.andersson@contoso.example/calendarView?startDateTime=2026-11-23T00:00:00Z&endDateTime=2026-11-28T00:00:00Z&$top=100"))
            .bearer_auth(token)
            .send()
            .await
            .expect("page")
            .json()
            .await
            .expect("json");
        let events = page["value"].as_array().expect("events");
        assert!(events.len() >= 5, "a week of bookings: {page}");
        assert!(events.iter().any(|e| e["subject"] == "Stand-up" && e["type"] == "occurrence"));
    });
}

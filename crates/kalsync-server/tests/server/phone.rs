//! "I'm back" and "extend" from the phone, end to end: Anna is at lunch (Graph
//! simulator → PBX simulator); her PBX signs "extend 30 minutes" (the return time moves)
//! and then "back" (the PBX is cleared at once, no poll waited for) with the company's
//! secret — signed by the reference Standard Webhooks crate, not ours.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::acme::{self, ADMIN, ADMIN_PASSWORD, ANNA};
use crate::support::sims::anna_at_lunch;
use crate::support::{eventually, spawn_app};

/// Posts a PBX event signed with `secret` by the reference crate.
pub(crate) async fn signed(
    base: &str,
    secret: &str,
    id: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let text = body.to_string();
    let now = jiff::Timestamp::now().as_second();
    let signature = standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .sign(id, now, text.as_bytes())
        .expect("signed");
    let answer = reqwest::Client::new()
        .post(format!("{base}/api/v1/pbx/events"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(text)
        .send()
        .await
        .expect("post");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// What the PBX simulator shows for Anna now.
fn anna_on_the_pbx(
    app: &crate::support::TestApp,
) -> impl Fn() -> Option<kalsync_engine::AbsenceStatus> + use<> {
    let pbx = app.pbx().clone();
    move || {
        pbx.current()
            .get(ANNA)
            .and_then(|r| r.status.absence.clone())
    }
}

/// Acme polled hourly, with its admin, on an instance that writes back.
fn writing_back(settings: &mut kalsync_server::Settings) {
    settings.engine.poll_interval_secs = 3600;
    settings.accounts.push(acme::admin());
    settings.companies[0].instances[0].settings =
        Some(toml::from_str("template = \"prefix\"\nwrite_back = true\n").expect("rules"));
}

/// The first company, the PBX secret its admin made for it, and the admin's session.
pub(crate) async fn pbx_secret(
    app: &crate::support::TestApp,
) -> (kalsync_store::Company, String, crate::support::Session) {
    let (company, _) = app.first_instance().await;
    let admin = app.session(ADMIN, ADMIN_PASSWORD).await;
    let (status, made) = admin
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/companies/{}/pbx-events/secret", company.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let secret = made["secret"].as_str().expect("secret").to_owned();
    (company, secret, admin)
}

#[tokio::test]
async fn the_phone_extends_and_ends_an_absence_at_once() {
    let (_sim, sim_url, _graph, lunch_end) = anna_at_lunch().await;
    let mut settings = acme::settings(&sim_url);
    // Polled only hourly: what changes came from the phone.
    settings.engine.poll_interval_secs = 3600;
    settings.accounts.push(acme::admin());
    let app = spawn_app(settings).await;
    let shown = anna_on_the_pbx(&app);
    eventually(async || shown().is_some_and(|a| a.reason.as_str() == "lunch")).await;
    let (company, secret, admin) = pbx_secret(&app).await;
    let base = app.url("");
    let base = base.trim_end_matches('/');

    // Extend by 30 minutes: the return time moves to the lunch's end + 30.
    let extend =
        json!({"company": company.id, "type": "extend", "extension": "201", "minutes": 30});
    let (status, done) = signed(base, &secret, "evt-extend", &extend).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let later = lunch_end + jiff::SignedDuration::from_mins(30);
    eventually(async || shown().is_some_and(|a| a.until == later && a.returns_at >= later)).await;

    // Back: the PBX is cleared within a second.
    let back = json!({"company": company.id, "type": "back", "email": ANNA});
    let sent = Instant::now();
    let (status, done) = signed(base, &secret, "evt-back", &back).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    eventually(async || shown().is_none()).await;
    let took = sent.elapsed();
    println!("back reached the PBX in {took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Replayed: refused; the status stays.
    let (status, _) = signed(base, &secret, "evt-back", &back).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, now) = admin
        .send(
            reqwest::Method::GET,
            &format!(
                "/api/v1/users/{}/status",
                done["user"].as_str().expect("user")
            ),
            None,
        )
        .await;
    assert!(now["now"].is_null(), "{now}");
}

/// A manager that answers every action with success, and on the connection that logs
/// in for user and call events tells what the test sends through the returned sender.
pub(crate) async fn fake_manager() -> (u16, tokio::sync::mpsc::Sender<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tell, told) = tokio::sync::mpsc::channel::<String>(4);
    let told = std::sync::Arc::new(tokio::sync::Mutex::new(told));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let told = told.clone();
            tokio::spawn(async move {
                let (read, write) = stream.into_split();
                let write = std::sync::Arc::new(tokio::sync::Mutex::new(write));
                let mut reader = BufReader::new(read);
                let _ = write
                    .lock()
                    .await
                    .write_all(b"Asterisk Call Manager/7.0.3\r\n")
                    .await;
                loop {
                    let mut block: Vec<(String, String)> = Vec::new();
                    loop {
                        let mut line = String::new();
                        match reader.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let line = line.trim_end();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            block.push((k.trim().to_owned(), v.trim().to_owned()));
                        }
                    }
                    let get = |k: &str| {
                        block
                            .iter()
                            .find(|(f, _)| f == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let answer = format!(
                        "Response: Success\r\nActionID: {}\r\nValue: \r\n\r\n",
                        get("ActionID")
                    );
                    let _ = write.lock().await.write_all(answer.as_bytes()).await;
                    if get("Action") == "Login" && get("Events") == "user,call" {
                        // The listener: tell it what the test sends.
                        let write = write.clone();
                        let told = told.clone();
                        tokio::spawn(async move {
                            while let Some(text) = told.lock().await.recv().await {
                                let _ = write.lock().await.write_all(text.as_bytes()).await;
                            }
                        });
                    }
                }
            });
        }
    });
    (port, tell)
}

#[tokio::test]
async fn an_ami_user_event_does_what_the_signed_event_does() {
    let (_sim, sim_url, _graph, _) = anna_at_lunch().await;
    let (port, tell) = fake_manager().await;
    let mut settings = acme::settings(&sim_url);
    settings.engine.poll_interval_secs = 3600;
    settings.companies[0]
        .targets
        .push(kalsync_server::settings::TargetDecl::Ami {
            name: "asterisk".into(),
            host: "127.0.0.1".into(),
            port,
            username: "kalsync".into(),
            secret: "manager-s3cret".to_owned().into(),
            announcement: "7799".into(),
        });
    let app = spawn_app(settings).await;
    let away = anna_on_the_pbx(&app);
    eventually(async || away().is_some_and(|a| a.reason.as_str() == "lunch")).await;
    let store = app.store();
    let (_, instance) = app.first_instance().await;
    let anna = store
        .users(instance.id)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.email.as_str() == ANNA)
        .expect("anna");

    // A malformed one changes nothing; then *22 from 201: back, heard twice (two
    // listeners hear the same call) and taken once.
    let back =
        "Event: UserEvent\r\nUniqueid: 1764.7\r\nUserEvent: KalsyncBack\r\nExten: 201\r\n\r\n";
    let text =
        format!("Event: UserEvent\r\nUserEvent: KalsyncExtend\r\nExten: 201\r\n\r\n{back}{back}");
    tell.send(text).await.expect("told");
    eventually(async || away().is_none()).await;
    let phone = store
        .overrides(anna.id, jiff::Timestamp::now())
        .await
        .expect("read");
    assert_eq!(phone.len(), 1, "{phone:?}");
    assert_eq!(phone[0].source, kalsync_core::Source::Phone);
    let (company, _) = app.first_instance().await;
    let audit = store.audit_log(Some(company.id), 100).await.expect("audit");
    let backs = audit.iter().filter(|a| a.action == "phone.back").count();
    assert_eq!(backs, 1, "taken once: {audit:?}");
}

#[tokio::test]
async fn back_with_write_back_shortens_the_lunch_and_leaves_a_meeting_alone() {
    write_back_story(false).await;
}

#[tokio::test]
async fn back_with_write_back_shortens_the_lunch_and_leaves_a_meeting_alone_over_ews() {
    write_back_story(true).await;
}

/// "I'm back" during a lunch (an appointment of Anna's own) beside a meeting with an
/// attendee, on an instance that writes back, over Graph or EWS.
async fn write_back_story(over_ews: bool) {
    use kalsync_graph_sim::EventSpec;
    let calendars = crate::support::sims::simulator_with_anna();
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
    let lunch = calendars
        .create_event(
            ANNA,
            EventSpec::new(
                "LUN: Lunch",
                now - jiff::SignedDuration::from_mins(5),
                now + jiff::SignedDuration::from_mins(55),
            ),
        )
        .expect("lunch");
    let meeting_end = now + jiff::SignedDuration::from_mins(25);
    let meeting = calendars
        .create_event(
            ANNA,
            EventSpec {
                attendees: vec!["bo@acme.example".into()],
                ..EventSpec::new(
                    "MOT: Styrgrupp",
                    now - jiff::SignedDuration::from_mins(5),
                    meeting_end,
                )
            },
        )
        .expect("meeting");
    let (sim_url, _graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let ews = kalsync_ews_sim::EwsSim::new(calendars.clone(), crate::support::sims::ews_config());
    let (ews_url, _ews) = kalsync_ews_sim::spawn(ews.clone()).await.expect("ews");
    let mut settings = acme::settings(&sim_url);
    if over_ews {
        settings.companies[0].instances[0].source = crate::support::sims::ews_source(
            &ews_url,
            crate::support::sims::EWS_ACCOUNT,
            "ntlm",
            "2016",
        );
    }
    writing_back(&mut settings);
    let app = spawn_app(settings).await;
    let away = anna_on_the_pbx(&app);
    eventually(async || away().is_some()).await;
    let (company, secret, _admin) = pbx_secret(&app).await;
    let base = app.url("");
    let back = json!({"company": company.id, "type": "back", "extension": "201"});
    let sent = jiff::Timestamp::now();
    let (status, done) = signed(base.trim_end_matches('/'), &secret, "evt-wb", &back).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    eventually(async || away().is_none()).await;
    // The lunch now ends when Anna said she was back; the meeting is as it was.
    let shortened = eventually(async || {
        calendars
            .event(ANNA, &lunch)
            .ok()
            .and_then(|e| e.end.parse::<jiff::Timestamp>().ok())
            .is_some_and(|end| end < now + jiff::SignedDuration::from_mins(50))
    })
    .await;
    assert!(shortened, "{:?}", calendars.event(ANNA, &lunch));
    let end: jiff::Timestamp = calendars
        .event(ANNA, &lunch)
        .expect("lunch")
        .end
        .parse()
        .expect("end");
    assert!(
        end.duration_since(sent).abs() < jiff::SignedDuration::from_secs(2),
        "ends at the back: {end} vs {sent}"
    );
    let untouched: jiff::Timestamp = calendars
        .event(ANNA, &meeting)
        .expect("meeting")
        .end
        .parse()
        .expect("end");
    assert_eq!(
        untouched, meeting_end,
        "a meeting with attendees is left alone"
    );
    let store = app.store();
    let audit = store.audit_log(Some(company.id), 100).await.expect("audit");
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert!(
        actions.contains(&"calendar.shortened") && actions.contains(&"calendar.left_alone"),
        "{actions:?}"
    );
    if over_ews {
        assert!(ews.stats().requests > 0, "read and written over EWS");
    }
    // Still available after the next read (the calendar now agrees).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(away().is_none());
}

#[tokio::test]
async fn a_refused_write_back_is_said_once_and_the_phones_word_stands() {
    let (calendars, sim_url, _graph, lunch_end) = anna_at_lunch().await;
    let mut settings = acme::settings(&sim_url);
    writing_back(&mut settings);
    let app = spawn_app(settings).await;
    let away = anna_on_the_pbx(&app);
    eventually(async || away().is_some()).await;
    let (company, secret, _admin) = pbx_secret(&app).await;
    // The app may no longer reach Anna's mailbox (a permission withdrawn).
    calendars.set_access(ANNA, false).expect("deny");
    let base = app.url("");
    let back = json!({"company": company.id, "type": "back", "extension": "201"});
    let (status, done) = signed(base.trim_end_matches('/'), &secret, "evt-refused", &back).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    eventually(async || away().is_none()).await;
    let store = app.store();
    let refused = eventually(async || {
        store
            .audit_log(Some(company.id), 100)
            .await
            .is_ok_and(|l| l.iter().any(|a| a.action == "calendar.write_refused"))
    })
    .await;
    assert!(refused, "the refusal is said");
    // The lunch in Outlook is as it was; the PBX keeps the phone's word.
    let ids = calendars.event_ids(ANNA).expect("ids");
    let end: jiff::Timestamp = calendars
        .event(ANNA, &ids[0])
        .expect("lunch")
        .end
        .parse()
        .expect("end");
    assert_eq!(end, lunch_end);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(away().is_none());
    let said = store
        .audit_log(Some(company.id), 100)
        .await
        .expect("audit")
        .iter()
        .filter(|a| a.action == "calendar.write_refused")
        .count();
    assert_eq!(said, 1, "said once");
}

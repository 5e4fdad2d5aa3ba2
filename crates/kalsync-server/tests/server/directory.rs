//! The directory through the API: Acme's declared admin signs in and sees who is away
//! and why, in both languages; nobody signed in sees nothing.

use crate::support::acme::{self, ANNA};
use crate::support::sims::anna_at_lunch;
use crate::support::spawn_app;

#[tokio::test]
async fn a_declared_admin_signs_in_and_the_directory_shows_who_is_away() {
    let (_calendars, sim_url, _graph, _) = anna_at_lunch().await;
    let mut s = acme::settings(&sim_url);
    s.accounts.push(acme::admin());
    let app = spawn_app(s).await;
    app.overview_until(|p| p.contains("Lunch, back")).await;
    let (http, me) = app.signed_in_as(acme::ADMIN, acme::ADMIN_PASSWORD).await;
    assert_eq!(me["role"], "company_admin", "{me}");
    let directory: serde_json::Value = http
        .get(app.url("/api/v1/directory"))
        .send()
        .await
        .expect("directory")
        .json()
        .await
        .expect("json");
    assert_eq!(directory[0]["email"], ANNA, "{directory}");
    assert_eq!(directory[0]["absence"]["reason"], "lunch");
    assert!(
        directory[0]["absence"]["message_sv"]
            .as_str()
            .unwrap_or("")
            .starts_with("Lunch, åter"),
        "{directory}"
    );
    // Without signing in: nothing.
    let anonymous = reqwest::get(app.url("/api/v1/directory"))
        .await
        .expect("get");
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    app.stop().await;
}

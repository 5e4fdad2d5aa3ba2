//! Teams on the pages: the switchboard's Teams column (what Teams shows, in the
//! viewer's language) for companies whose instance reads Teams and for no other, and
//! the tenant's presence requests and throttling on the instance's overview and the
//! dashboard.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app_with;
use crate::ui::{page_at, signed_in_browser};

/// Teams as the service would give it: fixed figures, calls always shown.
struct FixedTeams;

impl kalsync_web::TeamsPresence for FixedTeams {
    fn call(
        &self,
        _: kalsync_store::User,
        _: bool,
        _: jiff::Timestamp,
    ) -> kalsync_web::Hook<'_, Result<bool, String>> {
        Box::pin(async { Ok(true) })
    }

    fn figures(&self, tenant: &str) -> kalsync_web::TeamsFigures {
        assert_eq!(
            tenant,
            crate::helpers::TENANT,
            "asked for the instance's own tenant"
        );
        kalsync_web::TeamsFigures {
            requests: 42,
            waits: 3,
            throttled: 2,
            last_throttled: Some(jiff::Timestamp::now()),
        }
    }
}

#[tokio::test]
async fn the_switchboard_shows_what_teams_shows_and_the_overview_its_throttling() {
    let app = spawn_app_with(|s| s.with_teams(Arc::new(FixedTeams))).await;
    let admin = app.signed_in("it@acme.example").await;
    let (status, made) = admin
        .post(
            &format!("/api/v1/companies/{}/instances", app.acme),
            json!({
                "name": "Microsoft 365",
                "source": {"kind": "graph", "tenant": crate::helpers::TENANT, "client_id": "c", "client_secret": "s3cret"},
                "settings": "template = \"prefix\"\n\n[teams]\nread = true\npoll_seconds = 30\n"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let instance = made["id"].as_str().expect("id").to_owned();
    let (_, anna) = admin
        .post(
            &format!("/api/v1/instances/{instance}/users"),
            json!({"email": "anna@acme.example", "display_name": "Anna Andersson", "extension": "201"}),
        )
        .await;
    let user: kalsync_store::UserId = anna["id"].as_str().expect("id").parse().expect("id");
    app.store
        .put_teams_people(
            &[kalsync_store::TeamsPerson {
                user,
                presence: Some("Busy/InACall".into()),
                read_at: Some(jiff::Timestamp::now()),
                ..kalsync_store::TeamsPerson::default()
            }],
            kalsync_store::TeamsPart::Presence,
        )
        .await
        .expect("read");

    let board = format!("{}/switchboard?all=1", app.base);
    let sv = signed_in_browser(&app, "sv", "reception@acme.example").await;
    let page = page_at(&sv, board.clone()).await;
    assert!(page.contains("<th>Teams</th>"), "{page}");
    assert!(page.contains("I samtal"), "{page}");
    let en = signed_in_browser(&app, "en", "it@acme.example").await;
    assert!(page_at(&en, board.clone()).await.contains("In a call"));
    // Beta reads no Teams: no column, and nothing of Acme's.
    let beta = signed_in_browser(&app, "en", "it@beta.example").await;
    let theirs = page_at(&beta, board).await;
    assert!(!theirs.contains("<th>Teams</th>"), "{theirs}");
    assert!(!theirs.contains("Anna"), "{theirs}");

    // The instance's overview and the dashboard say Microsoft throttled its tenant.
    let overview = page_at(
        &sv_admin(&app).await,
        format!("{}/instances/{instance}/overview", app.base),
    )
    .await;
    assert!(overview.contains("id=\"teams-figures\""), "{overview}");
    assert!(overview.contains("2 strypt av Microsoft"), "{overview}");
    let dashboard = page_at(&en, format!("{}/", app.base)).await;
    assert!(dashboard.contains("Teams 2"), "{dashboard}");
}

async fn sv_admin(app: &crate::helpers::App) -> reqwest::Client {
    signed_in_browser(app, "sv", "it@acme.example").await
}

//! The EWS source end to end, against the Exchange simulator: a booking read over EWS
//! reaches the PBX; changes come by streaming notifications (2010 and later), by push
//! (2007, with a public URL, resumed after a restart from the kept watermark) or by pull
//! (2007 without one); a delegate polls with `SyncFolderItems`; OAuth tokens from Entra.

use std::time::Duration;

use kalsync_graph_sim::EventSpec;
use kalsync_server::settings::{SourceDecl, UserDecl};

use crate::support::acme::{self, ANNA};
use crate::support::sims::{
    EWS_ACCOUNT, Exchange, anna_at_lunch, book_lunch_now, ews_config, ews_source,
    exchange_with_anna, mailbox,
};
use crate::support::{Launch, Storage, eventually, eventually_within, spawn_app};

#[tokio::test]
async fn a_booking_on_an_exchange_server_reaches_the_pbx_over_ews() {
    let (calendars, sim_url, _graph, _) = anna_at_lunch().await;
    let ews = kalsync_ews_sim::EwsSim::new(calendars, ews_config());
    let (ews_url, _ews) = kalsync_ews_sim::spawn(ews.clone()).await.expect("ews");
    let mut s = acme::settings(&sim_url);
    s.companies[0].instances[0].source =
        ews_source(&ews_url, "svc-kalsync@corp.example", "basic", "2010");
    let app = spawn_app(s).await;
    let page = app.overview_until(|p| p.contains("Lunch, back")).await;
    assert!(
        page.contains(ANNA) && page.contains("Lunch, back"),
        "{page}"
    );
    let anna = app.pbx().current()[ANNA].clone();
    assert_eq!(
        anna.status.absence.as_ref().map(|a| a.reason.as_str()),
        Some("lunch")
    );
    assert_eq!(ews.stats().body_requested, 0);
    assert!(ews.stats().requests >= 2, "FindItem and GetItem");
    app.stop().await;
}

#[tokio::test]
async fn a_change_on_exchange_arrives_by_a_streaming_notification_not_by_polling() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    // Bo's mailbox lives on another back end than Anna's: one group must reach both.
    calendars.add_user(mailbox("bo@acme.example")).expect("bo");
    let mut s = exchange.acme_over_ews("ntlm", "2016");
    s.companies[0].instances[0].users.push(UserDecl::Full {
        email: "bo@acme.example".into(),
        name: Some("Bo".into()),
        extension: Some("202".into()),
    });
    let app = spawn_app(s).await;
    // Read once, and subscribed.
    eventually_within(Duration::from_secs(10), async || {
        ews.subscriptions().len() == 2 && app.overview_until(|_| true).await.contains("Available")
    })
    .await;
    assert_eq!(ews.subscriptions().len(), 2, "two streaming subscriptions");
    assert!(ews.subscriptions().iter().all(|s| s.2 == "streaming"));

    // A lunch booked now: only the stream can bring it within an hour-long poll.
    let started = std::time::Instant::now();
    book_lunch_now(calendars);
    eventually(async || app.pbx().received() > 0).await;
    assert_eq!(app.pbx().received(), 1, "the lunch reached the PBX");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "by notification, in {:?}",
        started.elapsed()
    );
    assert!(ews.stats().streamed_events >= 1);
    assert_eq!(
        ews.stats().misrouted,
        0,
        "the group's connection reached both"
    );
    assert_eq!(ews.stats().body_requested, 0);
    app.stop().await;
}

#[tokio::test]
async fn exchange_2007_pushes_changes_to_the_service() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    let s = exchange.acme_over_ews("basic", "2007");
    let app = Launch::new(s).public().spawn().await;
    eventually(async || ews.subscriptions().len() == 1).await;
    assert_eq!(ews.subscriptions().len(), 1, "one push subscription");
    assert_eq!(ews.subscriptions()[0].2, "push");

    let started = std::time::Instant::now();
    book_lunch_now(calendars);
    eventually(async || app.pbx().received() > 0).await;
    assert_eq!(app.pbx().received(), 1, "the lunch reached the PBX");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "pushed, in {:?}",
        started.elapsed()
    );
    assert!(ews.stats().notifications_pushed >= 1);

    // A push for a subscription the service does not know is told to stop.
    let stray = app
        .http
        .post(app.url("/notifications/ews/unknown-token"))
        .body("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>")
        .send()
        .await
        .expect("answer")
        .text()
        .await
        .expect("text");
    assert_eq!(
        kalsync_ews::response::notification_result(&stray),
        Ok(false),
        "{stray}"
    );
    app.stop().await;
}

#[tokio::test]
async fn after_a_restart_exchange_2007_resumes_from_the_kept_watermark() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    // Each start has a port (and public URL) of its own; the database stays for the restart.
    let start = |storage: Storage| {
        let s = exchange.acme_over_ews("basic", "2007");
        Launch::new(s).public().on(storage).spawn()
    };

    let first = start(Storage::sqlite()).await;
    assert!(
        eventually(async || ews.subscriptions().len() == 1).await,
        "subscribed"
    );
    // A change tomorrow: pushed, and its watermark kept.
    let tomorrow = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    calendars
        .create_event(
            ANNA,
            EventSpec::new(
                "Möte",
                tomorrow,
                tomorrow + jiff::SignedDuration::from_hours(1),
            ),
        )
        .expect("event");
    assert!(
        eventually(async || ews.stats().notifications_pushed >= 1).await,
        "pushed"
    );
    let company = first.store().companies().await.expect("companies")[0].id;
    let instance = first.store().instances(company).await.expect("instances")[0].id;
    assert!(
        eventually(async || {
            first
                .store()
                .users(instance)
                .await
                .expect("users")
                .iter()
                .any(|u| u.sync_state.0.get("ews_watermark").is_some())
        })
        .await,
        "the watermark kept"
    );
    let storage = first.halt().await;

    // While the service is down, Anna books a lunch in force now.
    book_lunch_now(calendars);

    // Restarted: the mailbox was read recently, so only the resumed subscription can
    // bring the lunch before the hour-long poll.
    let second = start(storage).await;
    eventually(async || second.pbx().received() > 0).await;
    let current = second.pbx().current();
    assert_eq!(
        current
            .get(ANNA)
            .and_then(|s| s.status.absence.as_ref())
            .map(|a| a.reason.clone())
            .as_deref(),
        Some("lunch"),
        "the change made while down arrived"
    );
    second.stop().await;
}

#[tokio::test]
async fn without_a_public_url_exchange_2007_is_pulled() {
    let exchange = exchange_with_anna().await;
    let Exchange { calendars, ews, .. } = &exchange;
    let s = exchange.acme_over_ews("ntlm", "2007");
    let app = spawn_app(s).await;
    assert!(
        eventually(async || ews.subscriptions().len() == 1).await,
        "subscribed"
    );
    assert_eq!(ews.subscriptions()[0].2, "pull");

    book_lunch_now(calendars);
    // Pulled every ten seconds.
    eventually_within(Duration::from_secs(15), async || app.pbx().received() > 0).await;
    assert_eq!(
        app.pbx().received(),
        1,
        "the lunch reached the PBX by pulling"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_delegate_instance_polls_with_sync_folder_items_and_reads_only_on_change() {
    let Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers,
    } = exchange_with_anna().await;
    let mut config = ews_config();
    config.impersonate_all = false;
    config
        .delegate
        .insert(ANNA.into(), kalsync_ews_sim::DelegateRights::Reviewer);
    ews.set_config(config);
    let mut s = acme::settings(&sim_url);
    let mut source = ews_source(&ews_url, EWS_ACCOUNT, "ntlm", "2013");
    if let SourceDecl::Ews { access, .. } = &mut source {
        *access = kalsync_core::exchange::Access::Delegate;
    }
    s.companies[0].instances[0].source = source;
    let app = spawn_app(s).await;
    let ten_seconds = Duration::from_secs(10);
    // The first read, then polls: the first primes the sync state (and reads once
    // more); later ones find nothing changed.
    assert!(
        eventually_within(ten_seconds, async || ews.stats().sync_folder_items >= 4).await,
        "{:?}",
        ews.stats()
    );
    let reads = ews.stats().find_item;
    assert!(eventually_within(ten_seconds, async || ews.stats().sync_folder_items >= 7).await);
    assert_eq!(
        ews.stats().find_item,
        reads,
        "no window read while nothing changed"
    );
    assert_eq!(app.pbx().received(), 0);

    // A sync state Exchange forgot: primed afresh and the window read, then quiet again.
    ews.set_faults(kalsync_ews_sim::EwsFaults {
        expire_watermarks: 1,
        ..Default::default()
    });
    assert!(
        eventually_within(ten_seconds, async || ews.stats().find_item > reads).await,
        "a forgotten state reads the window"
    );
    let reads = ews.stats().find_item;
    let looks = ews.stats().sync_folder_items;
    assert!(
        eventually_within(ten_seconds, async || ews.stats().sync_folder_items
            >= looks + 2)
        .await
    );
    assert_eq!(ews.stats().find_item, reads);

    book_lunch_now(&calendars);
    assert!(eventually(async || app.pbx().received() > 0).await);
    assert!(ews.stats().find_item > reads, "the change was read");
    let anna = app.pbx().current()[ANNA].clone();
    assert_eq!(
        anna.status.absence.as_ref().map(|a| a.reason.as_str()),
        Some("lunch")
    );
    assert_eq!(ews.stats().body_requested, 0);
    app.stop().await;
}

#[tokio::test]
async fn an_exchange_instance_signs_in_with_oauth_tokens_from_entra() {
    let Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers,
    } = exchange_with_anna().await;
    // The app's tokens are for the Exchange host; the account has no password at all.
    let mut config = kalsync_ews_sim::EwsConfig::new(EWS_ACCOUNT, "unused");
    config.basic = false;
    config.ntlm = false;
    config.oauth_audience = Some("http://127.0.0.1".into());
    ews.set_config(config);
    book_lunch_now(&calendars);
    let mut s = acme::settings(&sim_url);
    s.companies[0].instances[0].source = SourceDecl::Ews {
        url: format!("{ews_url}EWS/Exchange.asmx"),
        username: "c".into(),
        password: "s".to_owned().into(),
        auth: kalsync_core::exchange::SignIn::OAuth,
        version: kalsync_core::exchange::Version::Exchange2013Sp1,
        access: kalsync_core::exchange::Access::Impersonation,
        options: kalsync_store::EwsOptions {
            tenant: Some("t".into()),
            login_url: Some(sim_url.to_string()),
            max_concurrency: Some(4),
            ..Default::default()
        },
        ca_file: None,
    };
    let app = spawn_app(s).await;
    assert!(
        eventually(async || app.pbx().received() > 0).await,
        "{:?}",
        ews.stats()
    );
    let anna = app.pbx().current()[ANNA].clone();
    assert_eq!(
        anna.status.absence.as_ref().map(|a| a.reason.as_str()),
        Some("lunch")
    );
    assert_eq!(ews.stats().unauthorized, 0);
    assert!(
        calendars.stats().tokens >= 1,
        "a token from the Entra endpoint"
    );
    app.stop().await;
}

//! The client against the simulator: tokens, paging, `$batch`, throttling and faults,
//! and what each kind of event becomes.

use std::time::Duration;

use kalsync_core::{BookingTime, FreeBusy, ResponseStatus, Sensitivity};
use kalsync_graph::{ClientAuth, GraphError, Limits, ReadOptions, TokenError};
use kalsync_graph_sim::{
    Faults, OccurrenceChange, RecurrenceSpec, SimApp, SimCertificate, SimConfig, UserSpec,
    WorkingHoursSpec,
};
use secrecy::SecretString;

use crate::helpers::*;

fn read_opts() -> ReadOptions {
    ReadOptions {
        subject: true,
        location: false,
    }
}

#[tokio::test]
async fn token_errors_say_what_the_admin_must_fix() {
    let mut config = SimConfig::with_secret(TENANT, CLIENT, SECRET);
    let s = simulator(config.clone()).await;
    let wrong_secret = client_with(
        &s.base,
        ClientAuth::Secret(SecretString::from("nope")),
        TENANT,
        quick_limits(),
    );
    assert!(matches!(
        wrong_secret.check_credentials().await,
        Err(GraphError::Token(TokenError::InvalidSecret(_)))
    ));
    let wrong_tenant = client_with(
        &s.base,
        ClientAuth::Secret(SecretString::from(SECRET)),
        "contoso.invalid",
        quick_limits(),
    );
    assert!(matches!(
        wrong_tenant.check_credentials().await,
        Err(GraphError::Token(TokenError::WrongTenant(_)))
    ));
    assert!(client(&s.base).check_credentials().await.is_ok());

    config.apps[0].consented = false;
    let s = simulator(config.clone()).await;
    let e = client(&s.base)
        .check_credentials()
        .await
        .expect_err("no consent");
    assert!(matches!(
        e,
        GraphError::Token(TokenError::ConsentNotGranted(_))
    ));
    assert!(e.to_string().contains("admin consent"), "{e}");

    config.apps[0].consented = true;
    config.apps[0].secret_expired = true;
    let s = simulator(config).await;
    assert!(matches!(
        client(&s.base).check_credentials().await,
        Err(GraphError::Token(TokenError::SecretExpired(_)))
    ));
}

#[tokio::test]
async fn a_certificate_credential_signs_an_assertion_the_simulator_verifies() {
    let data = |f: &str| {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/graph/data")
                .join(f),
        )
        .expect("test data")
    };
    let cert = data("test-app.crt");
    let thumbprint = kalsync_graph::auth::certificate_thumbprint(&cert).expect("thumbprint");
    let config = SimConfig {
        apps: vec![SimApp {
            client_id: CLIENT.into(),
            secret: None,
            certificate: Some(SimCertificate {
                public_key_pem: data("test-app.pub"),
                thumbprint_s256: thumbprint,
            }),
            consented: true,
            secret_expired: false,
        }],
        ..SimConfig::with_secret(TENANT, CLIENT, SECRET)
    };
    let s = simulator(config).await;
    for key in ["test-app.pkcs8.key", "test-app.rsa.key"] {
        let auth = ClientAuth::Certificate {
            certificate_pem: cert.clone(),
            private_key_pem: SecretString::from(data(key)),
        };
        let c = client_with(&s.base, auth, TENANT, quick_limits());
        c.check_credentials()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    // Another certificate's thumbprint with this key is refused.
    let other = ClientAuth::Certificate {
        certificate_pem: cert.replace("MII", "MIJ"),
        private_key_pem: SecretString::from(data("test-app.rsa.key")),
    };
    let e = client_with(&s.base, other, TENANT, quick_limits())
        .check_credentials()
        .await
        .expect_err("refused");
    assert!(
        matches!(
            e,
            GraphError::Token(TokenError::InvalidCertificate(_) | TokenError::BadCertificate(_))
        ),
        "{e}"
    );
}

#[tokio::test]
async fn tokens_are_cached_and_renewed_after_graph_refuses_them() {
    let s = default_simulator().await;
    let u = user(&s.sim, "anna@contoso.example");
    let c = client(&s.base);
    for _ in 0..3 {
        c.calendar_view(&u, week(), read_opts(), &stockholm())
            .await
            .expect("read");
    }
    assert_eq!(s.sim.stats().tokens, 1, "one token for three reads");
    s.sim.set_faults(Faults {
        expire_tokens: true,
        ..Faults::default()
    });
    c.calendar_view(&u, week(), read_opts(), &stockholm())
        .await
        .expect("read after expiry");
    assert_eq!(s.sim.stats().tokens, 2);
}

#[tokio::test]
async fn every_page_is_read() {
    let s = default_simulator().await;
    let u = user(&s.sim, "anna@contoso.example");
    for day in 23..=27 {
        for hour in 8..13 {
            s.sim
                .create_event(
                    &u,
                    event(
                        "Möte",
                        &format!("2026-11-{day} {hour:02}:00"),
                        &format!("2026-11-{day} {hour:02}:45"),
                    ),
                )
                .expect("event");
        }
    }
    let c = client_with(
        &s.base,
        ClientAuth::Secret(SecretString::from(SECRET)),
        TENANT,
        Limits {
            page_size: 10,
            ..quick_limits()
        },
    );
    let read = c
        .calendar_view(&u, week(), read_opts(), &stockholm())
        .await
        .expect("read");
    assert_eq!(read.bookings.len(), 25);
    assert_eq!(read.pages, 3);
    assert!(read.rejected.is_empty());
    assert_eq!(
        s.sim.stats().bodies_served,
        0,
        "the body is never requested"
    );
}

#[tokio::test]
async fn many_mailboxes_are_read_twenty_to_a_batch() {
    let s = default_simulator().await;
    let mut users = Vec::new();
    for i in 0..45 {
        let u = user(&s.sim, &format!("user{i}@contoso.example"));
        s.sim
            .create_event(
                &u,
                event(&format!("MOT: {i}"), "2026-11-24 10:00", "2026-11-24 11:00"),
            )
            .expect("event");
        users.push(u);
    }
    users.push("nobody@contoso.example".into());
    let c = client(&s.base);
    let results = c
        .calendar_views(&users, week(), read_opts(), &stockholm())
        .await;
    assert_eq!(results.len(), 46);
    assert_eq!(s.sim.stats().batches, 3);
    for (user, result) in &results[..45] {
        assert_eq!(
            result.as_ref().map(|r| r.bookings.len()).unwrap_or(0),
            1,
            "{user}"
        );
    }
    assert!(matches!(results[45].1, Err(GraphError::NotFound(_))));
}

#[tokio::test]
async fn throttling_is_waited_out_then_reported() {
    let s = default_simulator().await;
    let u = user(&s.sim, "anna@contoso.example");
    let c = client(&s.base);
    s.sim.set_faults(Faults {
        throttle: 2,
        retry_after_secs: 0.05,
        ..Faults::default()
    });
    c.calendar_view(&u, week(), read_opts(), &stockholm())
        .await
        .expect("read after two 429s");
    assert_eq!(
        c.counters()
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );

    // Throttled items inside a batch are retried on their own Retry-After.
    let users: Vec<String> = (0..5)
        .map(|i| user(&s.sim, &format!("b{i}@contoso.example")))
        .collect();
    s.sim.set_faults(Faults {
        throttle: 1,
        retry_after_secs: 0.05,
        ..Faults::default()
    });
    let results = c
        .calendar_views(&users, week(), read_opts(), &stockholm())
        .await;
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");

    let stingy = client_with(
        &s.base,
        ClientAuth::Secret(SecretString::from(SECRET)),
        TENANT,
        Limits {
            max_retries: 1,
            ..quick_limits()
        },
    );
    s.sim.set_faults(Faults {
        throttle: 5,
        retry_after_secs: 0.01,
        ..Faults::default()
    });
    match stingy
        .calendar_view(&u, week(), read_opts(), &stockholm())
        .await
    {
        Err(GraphError::Throttled { retry_after }) => {
            assert_eq!(retry_after, Duration::from_millis(10))
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
}

#[tokio::test]
async fn server_errors_and_cut_connections_are_retried() {
    let s = default_simulator().await;
    let u = user(&s.sim, "anna@contoso.example");
    s.sim
        .create_event(&u, event("x", "2026-11-24 10:00", "2026-11-24 11:00"))
        .expect("event");
    let c = client(&s.base);
    // Retry-After is absent for 503 here, so the client backs off on its own (1 s, 2 s).
    s.sim.set_faults(Faults {
        server_errors: 1,
        drop_connections: 1,
        ..Faults::default()
    });
    let read = c
        .calendar_view(&u, week(), read_opts(), &stockholm())
        .await
        .expect("read");
    assert_eq!(read.bookings.len(), 1);
}

#[tokio::test]
async fn a_mailbox_the_app_may_not_read_is_forbidden() {
    let s = default_simulator().await;
    let u = user(&s.sim, "ceo@contoso.example");
    s.sim.set_access(&u, false).expect("deny");
    let e = client(&s.base)
        .calendar_view(&u, week(), read_opts(), &stockholm())
        .await
        .expect_err("denied");
    assert!(
        matches!(&e, GraphError::Forbidden(m) if m.contains("ErrorAccessDenied")),
        "{e}"
    );
}

#[tokio::test]
async fn every_kind_of_event_becomes_the_right_booking() {
    let s = default_simulator().await;
    let u = user(&s.sim, "anna@contoso.example");
    let mut standup = event("Stand-up", "2026-11-23 09:00", "2026-11-23 09:15");
    standup.recurrence = Some(RecurrenceSpec {
        pattern: "weekly".into(),
        interval: 1,
        days_of_week: ["monday", "tuesday", "wednesday", "thursday", "friday"]
            .map(String::from)
            .to_vec(),
        until: None,
        count: None,
    });
    let series = s.sim.create_event(&u, standup).expect("series");
    s.sim
        .change_occurrence(
            &u,
            &series,
            "2026-11-26".parse().expect("date"),
            Some(OccurrenceChange {
                start: Some(at("2026-11-26 09:30").to_string()),
                end: Some(at("2026-11-26 09:45").to_string()),
                subject: None,
                show_as: None,
                is_cancelled: None,
            }),
        )
        .expect("moved");
    s.sim
        .change_occurrence(&u, &series, "2026-11-27".parse().expect("date"), None)
        .expect("deleted");
    let mut vacation = event("SEM: Kreta", "2026-11-30 00:00", "2026-12-05 00:00");
    vacation.all_day = true;
    vacation.start = "2026-11-30".into();
    vacation.end = "2026-12-05".into();
    vacation.show_as = "oof".into();
    s.sim.create_event(&u, vacation).expect("vacation");
    let mut private = event("Läkare", "2026-11-24 15:00", "2026-11-24 16:00");
    private.sensitivity = "private".into();
    s.sim.create_event(&u, private).expect("private");
    let mut cancelled = event("Inställt", "2026-11-25 13:00", "2026-11-25 14:00");
    cancelled.is_cancelled = true;
    s.sim.create_event(&u, cancelled).expect("cancelled");
    let mut declined = event("Seminarium", "2026-11-25 08:00", "2026-11-25 09:00");
    declined.response = "declined".into();
    declined.categories = vec!["Kund".into()];
    s.sim.create_event(&u, declined).expect("declined");

    let read = client(&s.base)
        .calendar_view(&u, week(), read_opts(), &stockholm())
        .await
        .expect("read");
    assert!(read.rejected.is_empty(), "{:?}", read.rejected);
    let find = |subject: &str| {
        read.bookings
            .iter()
            .filter(|b| b.subject.as_deref() == Some(subject))
            .collect::<Vec<_>>()
    };

    let standups = find("Stand-up");
    assert_eq!(
        standups.len(),
        9,
        "two weeks of weekdays, less the deleted Friday"
    );
    assert!(
        standups
            .iter()
            .all(|b| b.series_id.as_ref().map(|s| s.as_str()) == Some(series.as_str()))
    );
    assert!(standups.iter().any(|b| b.time
        == BookingTime::Timed {
            start: at("2026-11-26 09:30"),
            end: at("2026-11-26 09:45")
        }));
    assert!(!standups.iter().any(
        |b| matches!(b.time, BookingTime::Timed { start, .. } if start == at("2026-11-27 09:00"))
    ));

    let vacation = find("SEM: Kreta");
    assert_eq!(
        vacation[0].time,
        BookingTime::AllDay {
            first: "2026-11-30".parse().expect("d"),
            end: "2026-12-05".parse().expect("d")
        }
    );
    assert_eq!(vacation[0].free_busy, FreeBusy::Oof);
    assert_eq!(find("Läkare")[0].sensitivity, Sensitivity::Private);
    assert!(find("Inställt")[0].cancelled);
    assert_eq!(find("Seminarium")[0].response, ResponseStatus::Declined);
    assert_eq!(find("Seminarium")[0].categories, ["Kund"]);

    // Without subjects selected, none arrive.
    let bare = client(&s.base)
        .calendar_view(&u, week(), ReadOptions::default(), &stockholm())
        .await
        .expect("read");
    assert!(bare.bookings.iter().all(|b| b.subject.is_none()));
    assert_eq!(s.sim.stats().bodies_served, 0);
}

#[tokio::test]
async fn mailbox_settings_give_the_users_zone_and_hours() {
    let s = default_simulator().await;
    let u = s
        .sim
        .add_user(UserSpec {
            upn: "dag@contoso.example".into(),
            id: None,
            display_name: None,
            time_zone: "Pacific Standard Time".into(),
            working_hours: Some(WorkingHoursSpec {
                days: vec!["monday".into(), "tuesday".into()],
                start: "07:30".into(),
                end: "16:00".into(),
            }),
        })
        .expect("user");
    let settings = client(&s.base)
        .mailbox_settings(&u)
        .await
        .expect("settings");
    assert_eq!(
        settings.zone.as_ref().map(|z| z.name()),
        Some("America/Los_Angeles")
    );
    let wh = settings.working_hours.expect("hours");
    assert_eq!(wh.start(), jiff::civil::Time::constant(7, 30, 0, 0));
    assert_eq!(wh.days().count(), 2);
}

#[tokio::test]
async fn a_paging_link_to_another_host_is_not_followed() {
    // A fake Graph whose nextLink points elsewhere: the token must not go there.
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(|| async { axum::Json(serde_json::json!({"token_type":"Bearer","expires_in":3599,"access_token":"t"})) }))
        .route("/v1.0/users/{u}/calendarView", axum::routing::get(|| async { axum::Json(serde_json::json!({"value": [], "@odata.nextLink": "https://evil.example/v1.0/steal"})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base =
        url::Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let e = client(&base)
        .calendar_view("anna", week(), read_opts(), &stockholm())
        .await
        .expect_err("refused");
    assert!(matches!(e, GraphError::ForeignLink(_)), "{e}");
}

#[tokio::test]
async fn oversized_and_malformed_answers_are_typed_errors() {
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", axum::routing::post(|| async { axum::Json(serde_json::json!({"token_type":"Bearer","expires_in":3599,"access_token":"t"})) }))
        .route("/v1.0/users/big/calendarView", axum::routing::get(|| async { "x".repeat(2 * 1024 * 1024) }))
        .route("/v1.0/users/html/calendarView", axum::routing::get(|| async { "<html>proxy error</html>" }))
        .route("/v1.0/users/odd/calendarView", axum::routing::get(|| async {
            axum::Json(serde_json::json!({"value": [
                {"id": "a", "start": {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"}, "end": {"dateTime": "2026-11-24T11:00:00.0000000", "timeZone": "UTC"}, "showAs": "sleeping"},
                {"id": "b", "start": {"dateTime": "2026-11-24T10:00:00.0000000", "timeZone": "UTC"}, "end": {"dateTime": "2026-11-24T11:00:00.0000000", "timeZone": "UTC"}, "showAs": "busy"}
            ]}))
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base =
        url::Url::parse(&format!("http://{}/", listener.local_addr().expect("addr"))).expect("url");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = client_with(
        &base,
        ClientAuth::Secret(SecretString::from(SECRET)),
        TENANT,
        Limits {
            max_body_bytes: 1024 * 1024,
            ..quick_limits()
        },
    );
    assert!(matches!(
        c.calendar_view("big", week(), read_opts(), &stockholm())
            .await,
        Err(GraphError::TooLarge { .. })
    ));
    assert!(matches!(
        c.calendar_view("html", week(), read_opts(), &stockholm())
            .await,
        Err(GraphError::Malformed(_))
    ));
    let odd = c
        .calendar_view("odd", week(), read_opts(), &stockholm())
        .await
        .expect("the good event still counts");
    assert_eq!(odd.bookings.len(), 1);
    assert_eq!(odd.rejected.len(), 1);
    assert!(odd.rejected[0].1.to_string().contains("sleeping"));
}

#[tokio::test]
async fn no_more_than_four_requests_run_against_one_mailbox() {
    let s = default_simulator().await;
    let u = user(&s.sim, "busy@contoso.example");
    s.sim.set_faults(Faults {
        latency_ms: 50,
        ..Faults::default()
    });
    let c = client(&s.base);
    let reads = (0..12).map(|_| {
        let c = c.clone();
        let u = u.clone();
        async move { c.calendar_view(&u, week(), read_opts(), &stockholm()).await }
    });
    let mut set = tokio::task::JoinSet::new();
    for r in reads {
        set.spawn(r);
    }
    while let Some(r) = set.join_next().await {
        r.expect("task").expect("read");
    }
    let stats = s.sim.stats();
    assert_eq!(stats.max_mailbox_concurrency, 4);
    assert_eq!(
        stats.mailbox_concurrency_refused, 0,
        "the client never asks for a fifth"
    );

    // Without the client's limit, Graph (the simulator) refuses the fifth.
    let greedy = client_with(
        &s.base,
        ClientAuth::Secret(SecretString::from(SECRET)),
        TENANT,
        Limits {
            per_mailbox: 12,
            max_retries: 0,
            ..quick_limits()
        },
    );
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let c = greedy.clone();
        let u = u.clone();
        set.spawn(async move { c.calendar_view(&u, week(), read_opts(), &stockholm()).await });
    }
    let mut throttled = 0;
    while let Some(r) = set.join_next().await {
        if matches!(r.expect("task"), Err(GraphError::Throttled { .. })) {
            throttled += 1;
        }
    }
    assert!(throttled > 0 && s.sim.stats().mailbox_concurrency_refused > 0);
}

#[tokio::test]
async fn outlook_working_hours_drive_the_return_time() {
    let s = default_simulator().await;
    let u = s
        .sim
        .add_user(UserSpec {
            upn: "early@contoso.example".into(),
            id: None,
            display_name: None,
            time_zone: "W. Europe Standard Time".into(),
            working_hours: Some(WorkingHoursSpec {
                days: ["monday", "tuesday", "wednesday", "thursday", "friday"]
                    .map(String::from)
                    .to_vec(),
                start: "07:30".into(),
                end: "16:00".into(),
            }),
        })
        .expect("user");
    s.sim
        .create_event(
            &u,
            event("Kundmöte", "2026-11-24 15:00", "2026-11-24 16:00"),
        )
        .expect("event");
    let c = client(&s.base);
    let read = c
        .calendar_view(&u, week(), read_opts(), &stockholm())
        .await
        .expect("read");
    let instance =
        kalsync_core::InstanceSettings::with_template(kalsync_core::Template::ShowasDivert);
    // With the instance's 08:00–17:00, 16:00 is inside working hours.
    let t = kalsync_core::build_timeline(&read.bookings, &instance, week());
    assert_eq!(t.absences[0].returns_at, at("2026-11-24 16:00"));
    // With her own 07:30–16:00 from Outlook, she is back the next morning at 07:30.
    let mailbox = c.mailbox_settings(&u).await.expect("settings");
    let t = kalsync_core::build_timeline(&read.bookings, &mailbox.apply(&instance), week());
    assert_eq!(t.absences[0].returns_at, at("2026-11-25 07:30"));
    assert_eq!(
        t.message(&t.absences[0], &instance, kalsync_core::Lang::Sv),
        "Möte, åter onsdag 25 november 07.30"
    );
}

#[tokio::test]
async fn automatic_replies_are_read_twenty_to_a_batch_throttled_items_again() {
    let s = default_simulator().await;
    let mut users = Vec::new();
    for i in 0..25 {
        users.push(user(&s.sim, &format!("oof{i}@contoso.example")));
    }
    s.sim
        .set_automatic_replies(
            &users[3],
            kalsync_graph_sim::AutoRepliesSpec {
                status: "scheduled".into(),
                start: Some(at("2026-12-07T07:00:00Z")),
                end: Some(at("2026-12-11T16:00:00Z")),
                internal_message: "Semester".into(),
                external_message: "On holiday".into(),
            },
        )
        .expect("set");
    s.sim
        .set_automatic_replies(
            &users[21],
            kalsync_graph_sim::AutoRepliesSpec {
                status: "alwaysEnabled".into(),
                ..Default::default()
            },
        )
        .expect("set");
    s.sim.set_access(&users[7], false).expect("deny");
    users.push("nobody@contoso.example".into());
    // One item inside a batch is throttled: it is asked again on its own.
    s.sim.set_faults(Faults {
        throttle: 1,
        retry_after_secs: 0.05,
        ..Faults::default()
    });
    let c = client(&s.base);
    let results = c.automatic_replies(&users).await;
    assert_eq!(results.len(), 26);
    assert!(s.sim.stats().batches >= 2, "20 a batch");
    use kalsync_core::AutomaticReplies;
    assert_eq!(
        results[3],
        Ok(AutomaticReplies::Scheduled {
            start: at("2026-12-07T07:00:00Z"),
            end: at("2026-12-11T16:00:00Z"),
        })
    );
    assert_eq!(results[21], Ok(AutomaticReplies::Always));
    assert_eq!(results[0], Ok(AutomaticReplies::Off));
    assert!(
        matches!(results[7], Err(GraphError::Forbidden(_))),
        "{:?}",
        results[7]
    );
    assert!(
        matches!(results[25], Err(GraphError::NotFound(_))),
        "{:?}",
        results[25]
    );
}

#[tokio::test]
async fn teams_presence_is_written_and_read_as_graph_answers() {
    use kalsync_graph::SessionPresence;
    let s = default_simulator().await;
    let anna = user(&s.sim, "anna@contoso.example");
    let c = client(&s.base);
    // A status message with its expiry, then cleared.
    let until = at("2026-12-07T12:00:00Z");
    c.set_status_message(&anna, "Lunch, åter 13.00", Some(until))
        .await
        .expect("set");
    assert_eq!(
        s.sim.status_message(&anna).expect("message"),
        Some(("Lunch, åter 13.00".to_owned(), Some(until)))
    );
    c.clear_status_message(&anna).await.expect("cleared");
    assert_eq!(s.sim.status_message(&anna).expect("message"), None);

    // Teams client on (Available); the app's session InACall wins (Busy > Available),
    // and ending it shows the client's again; ending it twice is no error.
    s.sim
        .set_client_presence(&anna, Some(("Available", "Available")))
        .expect("client");
    let app = "24d3b144-21ae-4080-943f-7067b395b913";
    c.set_presence(
        &anna,
        app,
        SessionPresence::InACall,
        jiff::SignedDuration::from_mins(30),
    )
    .await
    .expect("set presence");
    let (availability, activity, _) = s.sim.presence(&anna).expect("presence");
    assert_eq!(
        (availability.as_str(), activity.as_str()),
        ("Busy", "InACall")
    );
    let read = c
        .presences(std::slice::from_ref(&anna))
        .await
        .expect("read");
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0].availability.as_str(), read[0].activity.as_str()),
        ("Busy", "InACall")
    );
    c.clear_presence(&anna, app).await.expect("cleared");
    c.clear_presence(&anna, app).await.expect("gone is fine");
    assert_eq!(s.sim.presence(&anna).expect("presence").0, "Available");

    // 700 people are read 650 a request.
    let mut ids = vec![anna.clone()];
    for i in 0..699 {
        ids.push(user(&s.sim, &format!("p{i}@contoso.example")));
    }
    let all = c.presences(&ids).await.expect("all");
    assert_eq!(all.len(), 700);
    assert_eq!(
        all.iter().filter(|p| p.availability == "Offline").count(),
        699
    );

    // Past the tenant's presence budget: throttled, with the wait Graph asks for.
    s.sim.set_presence_limit(1);
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(c.set_status_message(&anna, "x", None).await);
    }
    assert!(
        answers
            .iter()
            .any(|a| matches!(a, Err(GraphError::Throttled { .. }))),
        "{answers:?}"
    );
    assert!(s.sim.presence_peak() >= 3, "the budget counts requests");
}

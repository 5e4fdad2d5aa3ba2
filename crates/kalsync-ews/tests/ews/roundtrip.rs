//! The client against the EWS simulator on loopback: a window read with the explicit
//! shape (never a body), a full view split, series and all-day items, the service
//! account's rights (impersonation, delegate), throttling waited out, subscriptions
//! and folder sync answered as the client reads them.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_core::{BookingTime, FreeBusy, WindowsZone, Zone};
use kalsync_ews::request::{self, Access, Shape, Subscription};
use kalsync_ews::response::{self, Change};
use kalsync_ews::{Affinity, Auth, EwsClient, EwsError, Settings};
use kalsync_ews_sim::{
    DelegateRights, EwsConfig, EwsFaults, EwsSim, ExtendedProtection, NegotiateAnswer, NtlmSchemes,
};
use kalsync_graph_sim::{EventSpec, RecurrenceSpec, SimConfig, Simulator, UserSpec};
use secrecy::SecretString;

const ACCOUNT: &str = "CORP\\svc-kalsync";
const PASSWORD: &str = "Sommar2026!";

struct Exchange {
    sim: EwsSim,
    url: url::Url,
    _handle: kalsync_ews_sim::EwsHandle,
}

async fn exchange() -> Exchange {
    let graph = Simulator::new(SimConfig::with_secret("t", "c", "s"));
    for upn in ["anna@corp.example", "bo@corp.example"] {
        graph
            .add_user(UserSpec {
                upn: upn.into(),
                id: None,
                display_name: None,
                time_zone: "W. Europe Standard Time".into(),
                working_hours: None,
            })
            .expect("user");
    }
    let sim = EwsSim::new(graph, EwsConfig::new(ACCOUNT, PASSWORD));
    let (base, handle) = kalsync_ews_sim::spawn(sim.clone()).await.expect("spawn");
    Exchange {
        sim,
        url: base.join("EWS/Exchange.asmx").expect("url"),
        _handle: handle,
    }
}

fn client(x: &Exchange, access: Access, password: &str) -> EwsClient {
    let mut s = Settings::new(
        x.url.clone(),
        Auth::Basic {
            username: "svc-kalsync@corp.example".into(),
            password: SecretString::from(password),
        },
    );
    s.access = access;
    s.zone = WindowsZone::parse("W. Europe Standard Time").ok();
    s.timeout = Duration::from_secs(10);
    // The simulators listen on loopback.
    s.outbound = kalsync_outbound::OutboundPolicy::with_loopback();
    EwsClient::new(s).expect("client")
}

/// An NTLM client of the service account at `url` with `password`, trusting `ca`.
fn ntlm_client(url: url::Url, password: &str, ca: Option<String>) -> EwsClient {
    let mut s = Settings::new(
        url,
        Auth::Ntlm {
            username: ACCOUNT.into(),
            password: SecretString::from(password),
        },
    );
    s.timeout = Duration::from_secs(10);
    s.ca_pem = ca;
    // The simulators listen on loopback.
    s.outbound = kalsync_outbound::OutboundPolicy::with_loopback();
    EwsClient::new(s).expect("client")
}

/// Reads `mailbox`'s test week with the default shape.
async fn read_week(c: &EwsClient, mailbox: &str) -> Result<kalsync_ews::CalendarRead, EwsError> {
    let (from, to) = week();
    c.read_window(mailbox, from, to, Shape::default(), &Zone::stockholm())
        .await
}

/// One folder sync of anna's calendar from `state`.
async fn sync(c: &EwsClient, state: Option<&str>) -> Result<response::SyncPage, EwsError> {
    let ctx = c.context("anna@corp.example");
    let answer = c
        .call(
            &request::sync_folder_items(&ctx, state, 512),
            "anna@corp.example",
        )
        .await?;
    response::sync_page(&answer)
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("time")
}

fn week() -> (Timestamp, Timestamp) {
    (
        at("2026-11-23T00:00:00+01:00"),
        at("2026-11-30T00:00:00+01:00"),
    )
}

#[tokio::test]
async fn a_window_is_read_with_the_explicit_shape_and_never_a_body() {
    let x = exchange().await;
    let g = x.sim.graph();
    let mut lunch = EventSpec::new(
        "LUN: Lunch",
        "2026-11-24T12:00:00+01:00",
        "2026-11-24T13:00:00+01:00",
    );
    lunch.body = "secret body".into();
    lunch.categories = vec!["Lunch".into()];
    g.create_event("anna@corp.example", lunch).expect("lunch");
    let mut vacation = EventSpec::new("SEM: Kreta", "2026-11-26", "2026-11-28");
    vacation.all_day = true;
    vacation.show_as = "oof".into();
    vacation.time_zone = Some("W. Europe Standard Time".into());
    g.create_event("anna@corp.example", vacation)
        .expect("vacation");
    let mut standup = EventSpec::new(
        "Stand-up",
        "2026-11-23T09:00:00+01:00",
        "2026-11-23T09:15:00+01:00",
    );
    standup.recurrence = Some(RecurrenceSpec {
        pattern: "daily".into(),
        interval: 1,
        days_of_week: vec![],
        until: None,
        count: Some(5),
    });
    let series = g
        .create_event("anna@corp.example", standup)
        .expect("series");
    g.change_occurrence(
        "anna@corp.example",
        &series,
        jiff::civil::date(2026, 11, 25),
        Some(kalsync_graph_sim::OccurrenceChange {
            start: Some("2026-11-25T10:00:00+01:00".into()),
            end: Some("2026-11-25T10:15:00+01:00".into()),
            subject: None,
            show_as: None,
            is_cancelled: None,
        }),
    )
    .expect("moved");

    let c = client(&x, Access::Impersonation, PASSWORD);
    let (from, to) = week();
    let read = c
        .read_window(
            "anna@corp.example",
            from,
            to,
            Shape {
                subject: true,
                location: false,
            },
            &Zone::stockholm(),
        )
        .await
        .expect("read");
    assert!(read.rejected.is_empty(), "{:?}", read.rejected);
    assert_eq!(read.bookings.len(), 7, "lunch, vacation, five stand-ups");
    let lunch = read
        .bookings
        .iter()
        .find(|b| b.subject.as_deref() == Some("LUN: Lunch"))
        .expect("lunch");
    assert_eq!(lunch.categories, ["Lunch"]);
    assert_eq!(
        lunch.time,
        BookingTime::Timed {
            start: at("2026-11-24T12:00:00+01:00"),
            end: at("2026-11-24T13:00:00+01:00")
        }
    );
    let vacation = read
        .bookings
        .iter()
        .find(|b| b.free_busy == FreeBusy::Oof)
        .expect("vacation");
    assert_eq!(
        vacation.time,
        BookingTime::AllDay {
            first: jiff::civil::date(2026, 11, 26),
            end: jiff::civil::date(2026, 11, 28)
        }
    );
    let standups: Vec<_> = read
        .bookings
        .iter()
        .filter(|b| b.subject.as_deref() == Some("Stand-up"))
        .collect();
    assert_eq!(standups.len(), 5);
    assert!(
        standups.iter().all(|b| b.series_id.is_some()),
        "occurrences name their series"
    );
    assert!(standups.iter().any(|b| matches!(b.time, BookingTime::Timed { start, .. } if start == at("2026-11-25T10:00:00+01:00"))), "the moved one");

    let without = read_week(&c, "anna@corp.example").await.expect("read");
    assert!(
        without.bookings.iter().all(|b| b.subject.is_none()),
        "no subject unless needed"
    );
    assert_eq!(
        x.sim.stats().body_requested,
        0,
        "the body is never asked for"
    );
    assert_eq!(
        x.sim.stats().without_user_agent,
        0,
        "every request says it is Kalsync (Exchange's EWS allow list)"
    );
}

#[tokio::test]
async fn a_full_view_is_read_in_halves() {
    let x = exchange().await;
    let (from, _) = week();
    for i in 0..620 {
        let start = from + SignedDuration::from_mins(15 * i);
        x.sim
            .graph()
            .create_event(
                "bo@corp.example",
                EventSpec::new("Slot", start, start + SignedDuration::from_mins(10)),
            )
            .expect("event");
    }
    let c = client(&x, Access::Impersonation, PASSWORD);
    let read = read_week(&c, "bo@corp.example").await.expect("read");
    assert_eq!(read.bookings.len(), 620);
}

#[tokio::test]
async fn the_service_accounts_rights_are_checked_and_named() {
    let x = exchange().await;
    let wrong = read_week(
        &client(&x, Access::Impersonation, "wrong"),
        "anna@corp.example",
    )
    .await;
    assert!(matches!(wrong, Err(EwsError::Unauthorized(_))), "{wrong:?}");

    let mut config = EwsConfig::new(ACCOUNT, PASSWORD);
    config.impersonate_all = false;
    config.impersonate.insert("bo@corp.example".into());
    config
        .delegate
        .insert("anna@corp.example".into(), DelegateRights::Reviewer);
    config
        .delegate
        .insert("bo@corp.example".into(), DelegateRights::FreeBusy);
    x.sim.set_config(config);
    let imp = client(&x, Access::Impersonation, PASSWORD);
    let denied = read_week(&imp, "anna@corp.example")
        .await
        .expect_err("not in the scope");
    assert_eq!(denied.code(), Some("ErrorImpersonateUserDenied"));
    assert!(read_week(&imp, "bo@corp.example").await.is_ok());

    let delegate = client(&x, Access::Delegate, PASSWORD);
    assert!(read_week(&delegate, "anna@corp.example").await.is_ok());
    let free_busy = read_week(&delegate, "bo@corp.example")
        .await
        .expect_err("free/busy only");
    assert_eq!(free_busy.code(), Some("ErrorAccessDenied"));
    assert!(free_busy.to_string().contains("free/busy"), "{free_busy}");
}

#[tokio::test]
async fn a_busy_server_is_waited_out_for_its_back_off() {
    let x = exchange().await;
    x.sim.set_faults(EwsFaults {
        server_busy: 2,
        back_off_ms: 50,
        ..EwsFaults::default()
    });
    let c = client(&x, Access::Impersonation, PASSWORD);
    let started = std::time::Instant::now();
    read_week(&c, "anna@corp.example")
        .await
        .expect("read after two refusals");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(x.sim.stats().server_busy, 2);

    x.sim.set_faults(EwsFaults {
        server_busy: 10,
        back_off_ms: 2_000,
        ..EwsFaults::default()
    });
    let mut settings = c.settings().clone();
    settings.max_attempts = 1;
    let once = EwsClient::new(settings).expect("client");
    let busy = read_week(&once, "anna@corp.example")
        .await
        .expect_err("busy");
    assert!(busy.is_throttling());
    assert_eq!(busy.back_off(), Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn subscriptions_and_sync_states_work_as_exchange_s() {
    let x = exchange().await;
    let c = client(&x, Access::Impersonation, PASSWORD);
    let ctx = c.context("anna@corp.example");

    // Folder sync: everything at first, then only what changed.
    let first = sync(&c, None).await.expect("page");
    assert!(first.changes.is_empty() && first.complete);
    let id = x
        .sim
        .graph()
        .create_event(
            "anna@corp.example",
            EventSpec::new(
                "LUN: Lunch",
                "2026-11-24T12:00:00+01:00",
                "2026-11-24T13:00:00+01:00",
            ),
        )
        .expect("event");
    let second = sync(&c, Some(first.sync_state.as_str()))
        .await
        .expect("page");
    assert!(matches!(second.changes.as_slice(), [Change::Created(_)]));
    x.sim
        .graph()
        .delete_event("anna@corp.example", &id)
        .expect("delete");
    let third = sync(&c, Some(second.sync_state.as_str()))
        .await
        .expect("page");
    assert!(matches!(third.changes.as_slice(), [Change::Deleted(_)]));
    x.sim.set_faults(EwsFaults {
        expire_watermarks: 1,
        ..EwsFaults::default()
    });
    let expired = sync(&c, Some(third.sync_state.as_str()))
        .await
        .expect_err("expired");
    assert_eq!(expired.code(), Some("ErrorInvalidSyncStateData"));

    // Pull: a change is an event after the watermark.
    let pull = response::subscribed(
        &c.call(
            &request::subscribe(
                &ctx,
                &Subscription::Pull {
                    timeout_minutes: 10,
                    watermark: None,
                },
            ),
            "anna@corp.example",
        )
        .await
        .expect("subscribe"),
    )
    .expect("subscribed");
    x.sim
        .graph()
        .create_event(
            "anna@corp.example",
            EventSpec::new(
                "MOT: Kund",
                "2026-11-25T14:00:00+01:00",
                "2026-11-25T15:00:00+01:00",
            ),
        )
        .expect("event");
    // A real sleep: the simulator notifies on its own task over real sockets.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = response::pulled(
        &c.call(
            &request::get_events(
                &ctx,
                &pull.id,
                pull.watermark.as_deref().expect("watermark"),
            ),
            "anna@corp.example",
        )
        .await
        .expect("events"),
    )
    .expect("notification");
    assert!(events.has_changes());
    let gone = response::unsubscribed(
        &c.call(&request::unsubscribe(&ctx, "nope"), "anna@corp.example")
            .await
            .expect("answer"),
    );
    assert_eq!(
        gone.expect_err("unknown").code(),
        Some("ErrorSubscriptionNotFound")
    );

    // Delegate access cannot subscribe.
    let delegate = client(&x, Access::Delegate, PASSWORD);
    let mut config = EwsConfig::new(ACCOUNT, PASSWORD);
    config
        .delegate
        .insert("anna@corp.example".into(), DelegateRights::Reviewer);
    x.sim.set_config(config);
    let refused = response::subscribed(
        &delegate
            .call(
                &request::subscribe(
                    &delegate.context("anna@corp.example"),
                    &Subscription::Streaming,
                ),
                "anna@corp.example",
            )
            .await
            .expect("answer"),
    )
    .expect_err("delegate");
    assert_eq!(
        refused.code(),
        Some("ErrorSubscriptionDelegateAccessNotSupported")
    );
}

#[tokio::test]
async fn ntlm_signs_a_connection_in_once_and_refuses_a_wrong_password() {
    let x = exchange().await;
    let mut config = EwsConfig::new(ACCOUNT, PASSWORD);
    config.basic = false;
    x.sim.set_config(config);
    let ntlm = |password: &str| ntlm_client(x.url.clone(), password, None);
    x.sim
        .graph()
        .create_event(
            "anna@corp.example",
            EventSpec::new(
                "LUN: Lunch",
                "2026-11-24T12:00:00+01:00",
                "2026-11-24T13:00:00+01:00",
            ),
        )
        .expect("event");
    let c = ntlm(PASSWORD);
    for _ in 0..3 {
        let read = read_week(&c, "anna@corp.example")
            .await
            .expect("read over NTLM");
        assert_eq!(read.bookings.len(), 1);
    }
    assert_eq!(
        x.sim.stats().ntlm_sign_ins,
        1,
        "one handshake; the connection is reused"
    );
    assert_eq!(x.sim.stats().unauthorized, 0);
    assert_eq!(
        x.sim.stats().without_user_agent,
        0,
        "every request over NTLM says it is Kalsync (Exchange's EWS allow list)"
    );

    let wrong = read_week(&ntlm("Vinter2026!"), "anna@corp.example").await;
    assert!(matches!(wrong, Err(EwsError::Unauthorized(_))), "{wrong:?}");
    let basic = read_week(
        &client(&x, Access::Impersonation, PASSWORD),
        "anna@corp.example",
    )
    .await;
    assert!(
        matches!(basic, Err(EwsError::Unauthorized(_))),
        "Basic is switched off: {basic:?}"
    );
    assert_eq!(x.sim.stats().ntlm_sign_ins, 1);
}

/// The simulator with NTLM alone, taken under `schemes`, challenges sent back as
/// `answer` says.
fn ntlm_only(x: &Exchange, schemes: NtlmSchemes, answer: NegotiateAnswer) -> EwsConfig {
    let mut config = EwsConfig::new(ACCOUNT, PASSWORD);
    config.basic = false;
    config.ntlm_schemes = schemes;
    config.negotiate_answer = answer;
    x.sim.set_config(config.clone());
    config
}

#[tokio::test]
async fn ntlm_inside_negotiate_signs_in_where_exchange_offers_only_negotiate() {
    for answer in [NegotiateAnswer::InKind, NegotiateAnswer::Wrapped] {
        let x = exchange().await;
        ntlm_only(&x, NtlmSchemes::NegotiateOnly, answer);
        let c = ntlm_client(x.url.clone(), PASSWORD, None);
        read_week(&c, "anna@corp.example")
            .await
            .unwrap_or_else(|e| panic!("{answer:?}: {e}"));
        read_week(&c, "bo@corp.example").await.expect("again");
        let stats = x.sim.stats();
        assert_eq!(stats.ntlm_sign_ins, 1, "{answer:?}: {stats:?}");
        assert_eq!(
            stats.unauthorized, 1,
            "{answer:?}: only the first leg, sent as NTLM, was refused: {stats:?}"
        );

        // The pool remembers the scheme: a second connection (the first is held by a
        // stream) signs in under Negotiate at once.
        let group = Affinity::new("anna@corp.example");
        let id = response::subscribed(
            &c.call(
                &request::subscribe(&c.context("anna@corp.example"), &Subscription::Streaming),
                "anna@corp.example",
            )
            .await
            .expect("subscribe"),
        )
        .expect("subscribed")
        .id;
        let mut held = c
            .stream(
                &request::get_streaming_events(&c.context("anna@corp.example"), &[id.as_str()], 1),
                &group,
            )
            .await
            .expect("stream");
        held.next().await.expect("a part").expect("readable");
        read_week(&c, "anna@corp.example")
            .await
            .expect("on a second connection");
        let stats = x.sim.stats();
        assert_eq!(stats.ntlm_sign_ins, 2, "{answer:?}: {stats:?}");
        assert_eq!(stats.unauthorized, 1, "{answer:?}: no NTLM probe again");

        // A wrong password is still refused, and says under which scheme.
        let wrong = read_week(
            &ntlm_client(x.url.clone(), "Vinter2026!", None),
            "anna@corp.example",
        )
        .await
        .expect_err("wrong password");
        assert!(
            matches!(&wrong, EwsError::Unauthorized(m) if m.contains("refused the service account's NTLM sign-in under Negotiate")),
            "{answer:?}: {wrong}"
        );
        assert_eq!(x.sim.stats().ntlm_sign_ins, 2);
    }
}

#[tokio::test]
async fn ntlm_only_exchange_signs_in_without_a_detour_and_one_offering_neither_is_named() {
    let x = exchange().await;
    ntlm_only(&x, NtlmSchemes::NtlmOnly, NegotiateAnswer::InKind);
    let c = ntlm_client(x.url.clone(), PASSWORD, None);
    read_week(&c, "anna@corp.example").await.expect("read");
    let stats = x.sim.stats();
    assert_eq!((stats.ntlm_sign_ins, stats.ntlm_challenges), (1, 1));
    assert_eq!(stats.unauthorized, 0);

    // Basic only: the error names what Exchange offered.
    let mut config = EwsConfig::new(ACCOUNT, PASSWORD);
    config.ntlm = false;
    x.sim.set_config(config);
    let e = read_week(
        &ntlm_client(x.url.clone(), PASSWORD, None),
        "anna@corp.example",
    )
    .await
    .expect_err("no NTLM");
    assert!(
        matches!(&e, EwsError::Unauthorized(m)
            if m.contains("neither NTLM nor Negotiate") && m.contains("offers Basic")),
        "{e}"
    );
}

/// The simulator's 401 to `authorization`: its `WWW-Authenticate` values.
async fn offered(x: &Exchange, authorization: &str) -> Vec<String> {
    let answer = reqwest::Client::new()
        .post(x.url.clone())
        .header("authorization", authorization)
        .body("<x/>")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 401);
    answer
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("text").to_owned())
        .collect()
}

#[tokio::test]
async fn a_negotiate_only_simulator_refuses_the_ntlm_scheme_and_answers_spnego_in_kind() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use kalsync_ews::spnego::{self, NegState, Negotiation};
    let x = exchange().await;
    ntlm_only(&x, NtlmSchemes::NegotiateOnly, NegotiateAnswer::InKind);
    // A NEGOTIATE message: Unicode, NTLM, extended session security.
    let mut negotiate = b"NTLMSSP\0\x01\0\0\0".to_vec();
    negotiate.extend_from_slice(&0x0008_0205u32.to_le_bytes());
    negotiate.extend_from_slice(&[0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0]);
    let raw = STANDARD.encode(&negotiate);
    assert_eq!(
        offered(&x, &format!("NTLM {raw}")).await,
        ["Negotiate"],
        "the NTLM scheme is refused, Negotiate offered alone"
    );
    let challenge = offered(&x, &format!("Negotiate {raw}")).await;
    let token = STANDARD
        .decode(
            challenge[0]
                .strip_prefix("Negotiate ")
                .expect("a challenge"),
        )
        .expect("base64");
    assert!(token.starts_with(b"NTLMSSP\0\x02\0\0\0"), "raw for raw");

    // A NegTokenInit (RFC 4178 §4.2.1) offering NTLM with the NEGOTIATE as its token.
    let t = negotiate.len() as u8;
    let mut init = vec![0x60, 32 + t, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
    init.extend_from_slice(&[
        0xa0,
        22 + t,
        0x30,
        20 + t,
        0xa0,
        0x0e,
        0x30,
        0x0c,
        0x06,
        0x0a,
    ]);
    init.extend_from_slice(spnego::NTLM_MECH);
    init.extend_from_slice(&[0xa2, 2 + t, 0x04, t]);
    init.extend_from_slice(&negotiate);
    let challenge = offered(&x, &format!("Negotiate {}", STANDARD.encode(&init))).await;
    let token = STANDARD
        .decode(
            challenge[0]
                .strip_prefix("Negotiate ")
                .expect("a challenge"),
        )
        .expect("base64");
    match spnego::decode(&token) {
        Ok(Negotiation::Response {
            state: Some(NegState::AcceptIncomplete),
            mech: Some(mech),
            token: Some(challenge),
        }) => {
            assert_eq!(mech, spnego::NTLM_MECH);
            assert!(challenge.starts_with(b"NTLMSSP\0\x02\0\0\0"));
        }
        other => panic!("SPNEGO for SPNEGO: {other:?}"),
    }
    assert_eq!(x.sim.stats().ntlm_challenges, 2);
}

#[tokio::test]
async fn the_sign_in_names_the_services_spn_extended_protection_checks() {
    let x = exchange().await;
    let mut config = ntlm_only(&x, NtlmSchemes::Both, NegotiateAnswer::InKind);
    config.spn = Some(format!("HTTP/{}", x.url.host_str().expect("host")));
    x.sim.set_config(config.clone());
    read_week(
        &ntlm_client(x.url.clone(), PASSWORD, None),
        "anna@corp.example",
    )
    .await
    .expect("the SPN is HTTP/<host>");
    // The same server known by another name behind a proxy: the SPN does not match.
    config.spn = Some("HTTP/mail.corp.example".into());
    x.sim.set_config(config);
    let e = read_week(
        &ntlm_client(x.url.clone(), PASSWORD, None),
        "anna@corp.example",
    )
    .await
    .expect_err("another SPN");
    assert!(matches!(e, EwsError::Unauthorized(_)), "{e}");
    assert_eq!(x.sim.stats().ntlm_sign_ins, 1);
}

#[tokio::test]
async fn reopened_streams_reuse_the_signed_in_connection() {
    let x = exchange().await;
    ntlm_only(&x, NtlmSchemes::Both, NegotiateAnswer::InKind);
    x.sim.set_faults(EwsFaults {
        close_streams_after_ms: 200,
        ..EwsFaults::default()
    });
    let c = ntlm_client(x.url.clone(), PASSWORD, None);
    let mut group = Affinity::new("anna@corp.example");
    let id = c
        .subscribe_streaming("anna@corp.example", &mut group)
        .await
        .expect("subscribe");
    let anchor = c.context("anna@corp.example");
    for round in 0..3 {
        let mut stream = c
            .stream(
                &request::get_streaming_events(&anchor, &[id.as_str()], 1),
                &group,
            )
            .await
            .expect("stream");
        let mut closed = false;
        while let Some(part) = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("Exchange closes it")
        {
            closed |= part.expect("readable").closed;
        }
        assert!(closed, "round {round}: closed cleanly");
    }
    let stats = x.sim.stats();
    assert_eq!(
        stats.ntlm_sign_ins, 1,
        "the Subscribe's connection served three streams: {stats:?}"
    );
    assert_eq!(stats.unauthorized, 0);
    // And a request after them still finds it signed in.
    read_week(&c, "anna@corp.example").await.expect("read");
    assert_eq!(x.sim.stats().ntlm_sign_ins, 1);
}

#[tokio::test]
async fn a_streaming_connection_carries_changes_as_they_happen() {
    let x = exchange().await;
    for auth in ["basic", "ntlm"] {
        let c = if auth == "ntlm" {
            ntlm_client(x.url.clone(), PASSWORD, None)
        } else {
            client(&x, Access::Impersonation, PASSWORD)
        };
        // Anna's and Bo's mailboxes live on different back ends. Subscribed each at
        // its own mailbox, one connection cannot reach both.
        let mut ids = Vec::new();
        for mailbox in ["anna@corp.example", "bo@corp.example"] {
            let ctx = c.context(mailbox);
            let s = response::subscribed(
                &c.call(&request::subscribe(&ctx, &Subscription::Streaming), mailbox)
                    .await
                    .expect("subscribe"),
            )
            .expect("subscribed");
            ids.push(s.id);
        }
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let anchor = c.context("anna@corp.example");
        let mut scattered = c
            .stream(
                &request::get_streaming_events(&anchor, &id_refs, 1),
                &Affinity::new("anna@corp.example"),
            )
            .await
            .expect("answer");
        let part = scattered.next().await.expect("a part").expect("readable");
        assert_eq!(part.lost.len(), 1, "{auth}: {part:?}");
        assert_eq!(part.lost[0].0.as_deref(), Some(ids[1].as_str()));
        assert_eq!(
            part.lost[0].1.code(),
            Some("ErrorProxiedSubscriptionCallFailure")
        );

        // Subscribed as one group, with affinity: the back-end cookie comes with the
        // first answer and the connection reaches every subscription.
        let mut group = Affinity::new("anna@corp.example");
        let mut ids = Vec::new();
        for mailbox in ["anna@corp.example", "bo@corp.example"] {
            ids.push(
                c.subscribe_streaming(mailbox, &mut group)
                    .await
                    .expect("subscribe"),
            );
        }
        assert!(
            group
                .cookie
                .as_deref()
                .is_some_and(|c| c.starts_with("MBX02~")),
            "{auth}: {group:?}"
        );
        let misrouted = x.sim.stats().misrouted;
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let mut stream = c
            .stream(&request::get_streaming_events(&anchor, &id_refs, 1), &group)
            .await
            .expect("stream");
        let first = stream.next().await.expect("a part").expect("readable");
        assert!(
            first.notifications.is_empty() && !first.closed,
            "{auth}: {first:?}"
        );
        x.sim
            .graph()
            .create_event(
                "bo@corp.example",
                EventSpec::new(
                    "MOT: Kund",
                    "2026-11-25T14:00:00+01:00",
                    "2026-11-25T15:00:00+01:00",
                ),
            )
            .expect("event");
        let part = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let part = stream.next().await.expect("open").expect("readable");
                if !part.notifications.is_empty() {
                    return part;
                }
            }
        })
        .await
        .expect("a notification within 5 s");
        assert_eq!(
            part.notifications[0].subscription, ids[1],
            "{auth}: bo's subscription"
        );
        assert!(part.notifications[0].has_changes());
        assert_eq!(x.sim.stats().misrouted, misrouted, "{auth}: all reached");
    }

    // A subscription the server no longer knows is named, so it can be made again.
    let c = client(&x, Access::Impersonation, PASSWORD);
    let anchor = c.context("anna@corp.example");
    let mut lost = c
        .stream(
            &request::get_streaming_events(&anchor, &["gone"], 1),
            &Affinity::new("anna@corp.example"),
        )
        .await
        .expect("answer");
    let part = lost.next().await.expect("a part").expect("readable");
    assert_eq!(part.lost.len(), 1);
    assert_eq!(part.lost[0].0.as_deref(), Some("gone"));
    assert_eq!(part.lost[0].1.code(), Some("ErrorSubscriptionNotFound"));

    // A dropped connection ends without a closing status.
    let s = response::subscribed(
        &c.call(
            &request::subscribe(&anchor, &Subscription::Streaming),
            "anna@corp.example",
        )
        .await
        .expect("subscribe"),
    )
    .expect("subscribed");
    x.sim.set_faults(EwsFaults {
        drop_streams: 1,
        ..EwsFaults::default()
    });
    let mut dropped = c
        .stream(
            &request::get_streaming_events(&anchor, &[s.id.as_str()], 1),
            &Affinity::new("anna@corp.example"),
        )
        .await
        .expect("stream");
    let mut closed = false;
    while let Some(part) = tokio::time::timeout(Duration::from_secs(5), dropped.next())
        .await
        .expect("ends")
    {
        closed |= part.expect("readable").closed;
    }
    assert!(!closed, "cut, not closed");
}

#[tokio::test]
async fn an_instance_keeps_under_its_concurrency() {
    let x = exchange().await;
    x.sim.set_faults(EwsFaults {
        latency_ms: 40,
        ..EwsFaults::default()
    });
    let mut settings = client(&x, Access::Impersonation, PASSWORD)
        .settings()
        .clone();
    settings.max_concurrency = 3;
    let c = EwsClient::new(settings).expect("client");
    let mut reads = tokio::task::JoinSet::new();
    for i in 0..12 {
        let c = c.clone();
        let mailbox = if i % 2 == 0 {
            "anna@corp.example"
        } else {
            "bo@corp.example"
        };
        reads.spawn(async move { read_week(&c, mailbox).await.map(|_| ()) });
    }
    while let Some(done) = reads.join_next().await {
        done.expect("task").expect("read");
    }
    let stats = x.sim.stats();
    assert!(stats.requests >= 12, "{stats:?}");
    assert!(stats.max_in_flight <= 3, "{stats:?}");
    assert!(stats.max_in_flight >= 2, "the reads did overlap: {stats:?}");
}

#[tokio::test]
async fn ntlm_over_tls_carries_the_channel_binding_extended_protection_requires() {
    let plain = exchange().await;
    let graph = plain.sim.graph().clone();
    let mut config = EwsConfig::new(ACCOUNT, PASSWORD);
    config.extended_protection = ExtendedProtection::Require;
    let sim = EwsSim::new(graph.clone(), config.clone());
    let (base, _tls, ca_pem) = kalsync_ews_sim::spawn_tls(sim.clone()).await.expect("tls");
    assert_eq!(base.scheme(), "https");
    let ntlm = |url: url::Url, ca: Option<String>| ntlm_client(url, PASSWORD, ca);
    let url = base.join("EWS/Exchange.asmx").expect("url");

    // The company's CA trusted: signed in with the channel's binding, and read.
    let c = ntlm(url.clone(), Some(ca_pem.clone()));
    let read = read_week(&c, "anna@corp.example").await.expect("read");
    assert!(read.rejected.is_empty());
    read_week(&c, "bo@corp.example").await.expect("again");
    assert_eq!(
        sim.stats().ntlm_sign_ins,
        1,
        "one connection, signed in once"
    );

    // Not trusted: a TLS error that says so, nothing sent.
    let e = read_week(&ntlm(url, None), "anna@corp.example")
        .await
        .expect_err("untrusted");
    assert!(e.to_string().contains("TLS"), "{e}");

    // Without TLS there is no channel to bind: a server requiring it refuses.
    plain.sim.set_config(config);
    let e = read_week(&ntlm(plain.url.clone(), None), "anna@corp.example")
        .await
        .expect_err("refused");
    assert!(matches!(e, EwsError::Unauthorized(_)), "{e}");
    assert_eq!(plain.sim.stats().ntlm_sign_ins, 0);
    assert!(kalsync_ews::tls::certificates("not a certificate").is_err());
    assert_eq!(
        kalsync_ews::tls::certificates(&ca_pem).expect("pem").len(),
        1
    );
}

/// Tokens from the Graph simulator's Entra endpoint, as the service gets them.
struct SimTokens {
    http: reqwest::Client,
    token_url: url::Url,
    scope: String,
    fetched: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl kalsync_ews::TokenProvider for SimTokens {
    async fn token(&self) -> Result<SecretString, EwsError> {
        self.fetched
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer: serde_json::Value = self
            .http
            .post(self.token_url.clone())
            .form(&[
                ("client_id", "c"),
                ("client_secret", "s"),
                ("grant_type", "client_credentials"),
                ("scope", self.scope.as_str()),
            ])
            .send()
            .await
            .map_err(|e| EwsError::Transport(e.to_string()))?
            .json()
            .await
            .map_err(|e| EwsError::Transport(e.to_string()))?;
        let token = answer["access_token"]
            .as_str()
            .ok_or_else(|| EwsError::Unauthorized(format!("{answer}")))?;
        Ok(SecretString::from(token.to_owned()))
    }

    async fn invalidate(&self) {}
}

#[tokio::test]
async fn oauth_tokens_for_the_exchange_audience_are_taken_and_others_refused() {
    let x = exchange().await;
    let mut config = EwsConfig::new(ACCOUNT, PASSWORD);
    config.oauth_audience = Some("https://outlook.office365.com".into());
    x.sim.set_config(config);
    let (graph_url, _graph) = kalsync_graph_sim::spawn(x.sim.graph().clone())
        .await
        .expect("graph");
    let oauth = |scope: &str| {
        let tokens = std::sync::Arc::new(SimTokens {
            http: reqwest::Client::new(),
            token_url: graph_url.join("t/oauth2/v2.0/token").expect("url"),
            scope: scope.into(),
            fetched: Default::default(),
        });
        let mut s = Settings::new(x.url.clone(), Auth::OAuth(tokens.clone()));
        s.timeout = Duration::from_secs(10);
        s.outbound = kalsync_outbound::OutboundPolicy::with_loopback();
        (EwsClient::new(s).expect("client"), tokens)
    };
    let (c, tokens) = oauth("https://outlook.office365.com/.default");
    read_week(&c, "anna@corp.example").await.expect("read");
    assert_eq!(x.sim.stats().body_requested, 0);

    // A Graph token is not an Exchange token: refused after one fresh try.
    let (c, tokens_graph) = oauth("https://graph.microsoft.com/.default");
    let e = read_week(&c, "anna@corp.example")
        .await
        .expect_err("wrong audience");
    assert!(matches!(e, EwsError::Unauthorized(_)), "{e}");
    assert_eq!(
        tokens_graph
            .fetched
            .load(std::sync::atomic::Ordering::Relaxed),
        2,
        "the refused token was fetched afresh once"
    );
    assert!(tokens.fetched.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn automatic_replies_are_read_as_state_and_period_and_a_refusal_is_named() {
    let x = exchange().await;
    let c = client(&x, Access::Impersonation, PASSWORD);
    assert_eq!(
        c.automatic_replies("anna@corp.example").await.expect("off"),
        kalsync_core::AutomaticReplies::Off
    );
    x.sim
        .graph()
        .set_automatic_replies(
            "anna@corp.example",
            kalsync_graph_sim::AutoRepliesSpec {
                status: "scheduled".into(),
                start: Some(at("2026-12-07T07:00:00Z")),
                end: Some(at("2026-12-11T16:00:00Z")),
                internal_message: "Kurs i Lund".into(),
                external_message: "On a course".into(),
            },
        )
        .expect("set");
    assert_eq!(
        c.automatic_replies("anna@corp.example")
            .await
            .expect("scheduled"),
        kalsync_core::AutomaticReplies::Scheduled {
            start: at("2026-12-07T07:00:00Z"),
            end: at("2026-12-11T16:00:00Z"),
        }
    );
    // Outside the impersonation scope: Exchange's refusal, named.
    let mut config = EwsConfig::new(ACCOUNT, PASSWORD);
    config.impersonate_all = false;
    x.sim.set_config(config);
    let denied = c
        .automatic_replies("anna@corp.example")
        .await
        .expect_err("not in the scope");
    assert_eq!(denied.code(), Some("ErrorImpersonateUserDenied"));
}

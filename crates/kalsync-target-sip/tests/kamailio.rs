//! The SIP target against a real Kamailio presence server on a loopback port: a
//! watcher subscribes to an extension's presence, Kalsync publishes (answering the
//! digest challenge), and the watcher's NOTIFYs carry the reason and the return time;
//! a change modifies the publication, refreshes keep it past its expiry, a clear removes
//! it, a wrong password is refused. The server and the watcher are in `support/`
//! (the service's end-to-end test uses them too).

use std::time::Duration;

use jiff::Timestamp;
use kalsync_core::Mode;
use kalsync_engine::{AbsenceStatus, DeliveryError, Envelope, Person, StatusUpdate, Target};
use kalsync_target_sip::{SipSettings, SipTarget};
use secrecy::SecretString;

#[path = "support/kamailio.rs"]
mod harness;

use harness::{DOMAIN, PASSWORD, Watcher, start};

fn target(port: u16, password: &str) -> SipTarget {
    SipTarget::new(SipSettings {
        proxy: format!("sip:127.0.0.1:{port}"),
        password: SecretString::from(password),
        ..target_settings(port)
    })
}

fn status(reason: Option<(&str, &str, &str)>, returns: &str) -> StatusUpdate {
    let at: Timestamp = "2026-11-23T11:00:00Z".parse().expect("t");
    let back: Timestamp = returns.parse().expect("t");
    StatusUpdate {
        user: Person {
            id: "u1".into(),
            email: "anna@example.se".into(),
            name: Some("Anna".into()),
            extension: Some("1001".into()),
        },
        at,
        absence: reason.map(|(code, sv, en)| AbsenceStatus {
            reason: code.into(),
            label_sv: code.into(),
            label_en: code.into(),
            mode: Mode::Divert,
            since: at,
            until: back,
            returns_at: back,
            message_sv: sv.into(),
            message_en: en.into(),
            subject: None,
            source: kalsync_core::Source::Booking,
        }),
        upcoming: vec![],
    }
}

/// Anna at lunch until 13:00 (Stockholm).
fn lunch() -> StatusUpdate {
    status(
        Some(("lunch", "Lunch, åter 13.00", "Lunch, back 13:00")),
        "2026-11-23T12:00:00Z",
    )
}

fn delivery() -> Envelope {
    Envelope {
        id: uuid::Uuid::new_v4(),
        sequence: 1,
        attempt: 1,
    }
}

#[tokio::test]
async fn a_booking_becomes_a_notify_with_reason_and_return_time() {
    let Some(kamailio) = start().await else {
        return;
    };
    let watcher = Watcher::subscribe(kamailio.port, "1001").await;
    // The first NOTIFY tells the watcher nothing is published yet.
    watcher.notify_where(|_| true).await;

    let sip = target(kamailio.port, PASSWORD);
    let lunch = lunch();
    sip.deliver(&delivery(), &lunch)
        .await
        .expect("lunch published");
    assert_eq!(sip.held().await, 1);
    let body = watcher.notify_where(|b| b.contains("meal")).await;
    assert!(body.contains("away"), "{body}");
    assert!(body.contains("Lunch, back 13:00"), "{body}");
    assert!(body.contains("Lunch, åter 13.00"), "{body}");
    assert!(body.contains("until=\"2026-11-23T12:00:00Z\""), "{body}");
    assert!(body.contains("<basic>open</basic>"), "{body}");

    // A change modifies the same publication (SIP-If-Match): meeting, not lunch.
    let meeting = status(
        Some(("meeting", "Möte, åter 14.30", "Meeting, back 14:30")),
        "2026-11-23T13:30:00Z",
    );
    sip.deliver(&delivery(), &meeting)
        .await
        .expect("meeting published");
    let body = watcher.notify_where(|b| b.contains("meeting")).await;
    assert!(
        !body.contains("meal"),
        "the lunch publication was replaced: {body}"
    );
    assert!(body.contains("Meeting, back 14:30"), "{body}");
    assert_eq!(sip.held().await, 1);

    // Available: the publication is removed (Expires: 0), nothing of Kalsync's remains.
    sip.deliver(&delivery(), &status(None, "2026-11-23T13:30:00Z"))
        .await
        .expect("cleared");
    let body = watcher.notify_where(|b| !b.contains("meeting")).await;
    assert!(
        !body.contains("Kalsync") && !body.contains("back 14:30"),
        "{body}"
    );
    assert_eq!(sip.held().await, 0);
    // Clearing again is harmless: there is nothing of ours to clear.
    sip.deliver(&delivery(), &status(None, "2026-11-23T13:30:00Z"))
        .await
        .expect("no-op");
}

#[tokio::test]
async fn a_publication_is_refreshed_before_it_expires() {
    let Some(kamailio) = start().await else {
        return;
    };
    let sip = SipTarget::new(SipSettings {
        expires: Duration::from_secs(4),
        ..target_settings(kamailio.port)
    });
    let lunch = lunch();
    sip.deliver(&delivery(), &lunch)
        .await
        .expect("lunch published");
    // Twice the granted time; the server removes expired publications every second.
    // Real sleeps: Kamailio is another process with its own clock.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let watcher = Watcher::subscribe(kamailio.port, "1001").await;
    let body = watcher.notify_where(|_| true).await;
    assert!(
        body.contains("Lunch, back 13:00"),
        "the publication was refreshed: {body}\nkamailio's log:\n{}",
        kamailio.log()
    );

    // Without its refreshes the publication would be gone: stop the target, wait past
    // the time last granted, and a new watcher sees nothing of Kalsync's.
    drop(sip);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let late = Watcher::subscribe(kamailio.port, "1001").await;
    let body = late.notify_where(|_| true).await;
    assert!(!body.contains("Lunch"), "expired without refreshes: {body}");
}

#[tokio::test]
async fn a_wrong_password_is_refused_not_retried_forever() {
    let Some(kamailio) = start().await else {
        return;
    };
    let sip = target(kamailio.port, "not-the-password");
    let lunch = lunch();
    match sip.deliver(&delivery(), &lunch).await {
        Err(DeliveryError::Rejected(message)) => assert!(message.contains("kalsync"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(sip.held().await, 0);
}

#[tokio::test]
async fn no_server_is_a_retry() {
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let sip = SipTarget::new(SipSettings {
        timeout: Duration::from_secs(1),
        ..target_settings(port)
    });
    let lunch = lunch();
    assert!(matches!(
        sip.deliver(&delivery(), &lunch).await,
        Err(DeliveryError::Retry { .. })
    ));
}

fn target_settings(port: u16) -> SipSettings {
    SipSettings {
        proxy: format!("127.0.0.1:{port}"),
        domain: DOMAIN.into(),
        username: "kalsync".into(),
        password: SecretString::from(PASSWORD),
        expires: Duration::from_secs(600),
        timeout: Duration::from_secs(5),
        // Kamailio listens on loopback.
        outbound: kalsync_outbound::OutboundPolicy::with_loopback(),
    }
}

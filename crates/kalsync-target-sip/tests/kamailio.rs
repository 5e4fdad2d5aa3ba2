//! The SIP target against a real Kamailio presence server on a loopback port: a
//! watcher subscribes to an extension's presence, Kalsync publishes (answering the
//! digest challenge), and the watcher's NOTIFYs carry the reason and the return time;
//! a change modifies the publication, refreshes keep it past its expiry, a clear removes
//! it, a wrong password is refused. The same over one kept TCP connection and over TLS
//! (a certificate of the test's own CA; without that CA it is refused), a large status
//! over TCP on a plain `sip:` URI, and a connection the server dropped opened again.
//! The server and the watcher are in `support/` (the service's end-to-end test uses
//! them too).

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
        ca: None,
    }
}

/// Lunch, change to a meeting, clear: what a watcher sees, over `sip`.
async fn lunch_meeting_clear(kamailio: &harness::Kamailio, sip: &SipTarget) {
    let watcher = Watcher::subscribe(kamailio.port, "1001").await;
    watcher.notify_where(|_| true).await;
    sip.deliver(&delivery(), &lunch())
        .await
        .expect("lunch published");
    let body = watcher.notify_where(|b| b.contains("meal")).await;
    assert!(body.contains("Lunch, back 13:00"), "{body}");
    let meeting = status(
        Some(("meeting", "Möte, åter 14.30", "Meeting, back 14:30")),
        "2026-11-23T13:30:00Z",
    );
    sip.deliver(&delivery(), &meeting)
        .await
        .expect("meeting published");
    let body = watcher.notify_where(|b| b.contains("meeting")).await;
    assert!(!body.contains("meal"), "{body}");
    sip.deliver(&delivery(), &status(None, "2026-11-23T13:30:00Z"))
        .await
        .expect("cleared");
    watcher.notify_where(|b| !b.contains("meeting")).await;
    assert_eq!(sip.held().await, 0);
}

#[tokio::test]
async fn tcp_and_tls_publish_over_one_kept_connection_each() {
    let Some(kamailio) = start().await else {
        return;
    };
    for (proxy, ca, transport) in [
        (
            format!("sip:127.0.0.1:{};transport=tcp", kamailio.port),
            None,
            "tcp",
        ),
        (
            format!("sips:127.0.0.1:{}", kamailio.tls_port),
            Some(std::fs::read_to_string(kamailio.ca_file()).expect("the CA")),
            "tls",
        ),
    ] {
        let before = kamailio.publish_transports().len();
        let sip = SipTarget::new(SipSettings {
            proxy: proxy.clone(),
            ca,
            ..target_settings(kamailio.port)
        });
        lunch_meeting_clear(&kamailio, &sip).await;
        assert!(sip.connected().await, "{proxy}: the connection is kept");
        let used: Vec<(String, u16)> = kamailio.publish_transports()[before..].to_vec();
        // Lunch, meeting and clear, each a challenge and its answer.
        assert_eq!(used.len(), 6, "{proxy}: {used:?}");
        assert!(
            used.iter()
                .all(|(t, port)| t == transport && *port == used[0].1),
            "{proxy}: every publication over one {transport} connection: {used:?}"
        );
    }
}

#[tokio::test]
async fn a_certificate_of_an_unknown_ca_is_refused() {
    let Some(kamailio) = start().await else {
        return;
    };
    let sip = SipTarget::new(SipSettings {
        proxy: format!("sips:127.0.0.1:{}", kamailio.tls_port),
        ..target_settings(kamailio.port)
    });
    match sip.deliver(&delivery(), &lunch()).await {
        Err(DeliveryError::Rejected(message)) => {
            assert!(message.contains("not trusted"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(kamailio.publish_transports().is_empty());
}

#[tokio::test]
async fn a_status_too_large_for_udp_goes_over_tcp() {
    let Some(kamailio) = start().await else {
        return;
    };
    let sip = target(kamailio.port, PASSWORD);
    let long = "Konferens i Göteborg, nås via växeln. ".repeat(30);
    let conference = status(Some(("conference", &long, &long)), "2026-11-23T16:00:00Z");
    sip.deliver(&delivery(), &conference)
        .await
        .expect("a large status");
    let watcher = Watcher::subscribe(kamailio.port, "1001").await;
    let body = watcher.notify_where(|b| b.contains("Konferens")).await;
    assert!(body.len() > 1_300, "{}", body.len());
    // Clearing it is a request without a body: a datagram.
    sip.deliver(&delivery(), &status(None, "2026-11-23T16:00:00Z"))
        .await
        .expect("cleared");
    let used: Vec<String> = kamailio
        .publish_transports()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(used, ["tcp", "tcp", "udp", "udp"], "{used:?}");
    // Told to stay on UDP, it does, whatever the size.
    let udp = SipTarget::new(SipSettings {
        proxy: format!("sip:127.0.0.1:{};transport=udp", kamailio.port),
        ..target_settings(kamailio.port)
    });
    let before = kamailio.publish_transports().len();
    udp.deliver(&delivery(), &conference)
        .await
        .expect("over UDP");
    assert!(
        kamailio.publish_transports()[before..]
            .iter()
            .all(|(t, _)| t == "udp")
    );
}

#[tokio::test]
async fn a_connection_the_server_dropped_is_opened_again() {
    // A presence server that answers the first PUBLISH on a connection and drops the
    // connection at the second without a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut connections = 0;
        // Bounded: three connections at most.
        while connections < 3 {
            let Ok(Ok((mut stream, _))) =
                tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
            else {
                break;
            };
            connections += 1;
            let mut buffer = Vec::new();
            let mut answered = 0;
            loop {
                let mut chunk = [0u8; 4096];
                let n = match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buffer.extend_from_slice(&chunk[..n]);
                let Ok(Some((request, used))) =
                    kalsync_target_sip::message::Message::frame(&buffer)
                else {
                    continue;
                };
                buffer.drain(..used);
                if answered == 1 {
                    break;
                }
                answered += 1;
                let mut reply =
                    String::from_utf8(request.reply(200, "OK", Some("t"))).expect("utf-8");
                reply = reply.replace(
                    "Content-Length: 0",
                    "SIP-ETag: e1\r\nExpires: 600\r\nContent-Length: 0",
                );
                stream.write_all(reply.as_bytes()).await.expect("reply");
            }
        }
        connections
    });
    let sip = SipTarget::new(SipSettings {
        proxy: format!("sip:127.0.0.1:{port};transport=tcp"),
        ..target_settings(port)
    });
    sip.deliver(&delivery(), &lunch()).await.expect("first");
    sip.deliver(&delivery(), &lunch())
        .await
        .expect("again, on a new connection");
    drop(sip);
    assert_eq!(server.await.expect("server"), 2);
}

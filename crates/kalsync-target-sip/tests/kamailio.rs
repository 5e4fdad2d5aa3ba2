//! The SIP target against a real Kamailio presence server on a loopback port: a
//! watcher subscribes to an extension's presence, Kalsync publishes (answering the
//! digest challenge), and the watcher's NOTIFYs carry the reason and the return time;
//! a change modifies the publication, a clear removes it, a wrong password is refused.
//! Skipped, saying so, where Kamailio is not installed — except in CI, where it must be.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jiff::Timestamp;
use kalsync_core::Mode;
use kalsync_engine::{AbsenceStatus, DeliveryError, Person, StatusUpdate, Target};
use kalsync_store::{Delivery, DeliveryId, DeliveryState, TargetId, UserId};
use kalsync_target_sip::message::{Message, Request, token};
use kalsync_target_sip::{SipSettings, SipTarget, transaction};
use secrecy::SecretString;
use tokio::net::UdpSocket;

const PASSWORD: &str = "pbx-s3cret";
const DOMAIN: &str = "kalsync.test";

struct Kamailio {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM lets the main process stop its children too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Kamailio {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }
}

fn kamailio_binary() -> Option<PathBuf> {
    ["/usr/sbin/kamailio", "/usr/local/sbin/kamailio"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

async fn start() -> Option<Kamailio> {
    let Some(binary) = kamailio_binary() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("kamailio is not installed; .ci/run installs it");
        }
        eprintln!(
            "SKIPPED: kamailio is not installed (apt-get install kamailio kamailio-presence-modules kamailio-sqlite-modules)"
        );
        return None;
    };
    let modules = first_existing(&[
        "/usr/lib/x86_64-linux-gnu/kamailio/modules",
        "/usr/lib/aarch64-linux-gnu/kamailio/modules",
        "/usr/lib/kamailio/modules",
    ])
    .expect("kamailio's modules directory");
    let schema = first_existing(&["/usr/share/kamailio/db_sqlite"]).expect("db_sqlite schema");
    let dir = std::env::temp_dir().join(format!(
        "kalsync-kamailio-{}-{}",
        std::process::id(),
        token()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("presence.db");
    create_database(&db, &schema).await;
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let config = include_str!("kamailio.cfg")
        .replace("KALSYNC_PORT", &port.to_string())
        .replace("KALSYNC_DB", &db.display().to_string())
        .replace("KALSYNC_PASSWORD", PASSWORD);
    let cfg = dir.join("kamailio.cfg");
    std::fs::write(&cfg, config).expect("config");
    let log = std::fs::File::create(dir.join("kamailio.log")).expect("log");
    let child = Command::new(binary)
        .arg("-f")
        .arg(&cfg)
        .args(["-DD", "-E", "-L"])
        .arg(&modules)
        .arg("-Y")
        .arg(&dir)
        .arg("-P")
        .arg(dir.join("kamailio.pid"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start kamailio");
    let kamailio = Kamailio { child, port, dir };
    // Ready when it answers OPTIONS (bounded).
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(("127.0.0.1", port)).await.expect("connect");
    for _ in 0..40 {
        let options = request(&socket, "OPTIONS", &format!("sip:{DOMAIN}"), vec![], "");
        if let Ok(answer) = transaction(&socket, &options, Duration::from_millis(500)).await {
            if answer.status == Some(200) {
                return Some(kamailio);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = std::fs::read_to_string(kamailio.dir.join("kamailio.log")).unwrap_or_default();
    panic!("kamailio did not answer OPTIONS; its log:\n{log}");
}

async fn create_database(path: &Path, schema: &Path) {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("sqlite");
    for file in ["standard-create.sql", "presence-create.sql"] {
        let sql = std::fs::read_to_string(schema.join(file)).expect("schema file");
        sqlx::raw_sql(&sql)
            .execute(&mut conn)
            .await
            .expect("schema");
    }
    conn.close().await.expect("close");
}

fn request(
    socket: &UdpSocket,
    method: &str,
    uri: &str,
    extra: Vec<(String, String)>,
    body: &str,
) -> Request {
    let local = socket.local_addr().expect("addr");
    let mut headers = vec![
        (
            "Via".to_owned(),
            format!("SIP/2.0/UDP {local};rport;branch=z9hG4bK{}", token()),
        ),
        ("Max-Forwards".into(), "70".into()),
        (
            "From".into(),
            format!("<sip:reception@{DOMAIN}>;tag={}", token()),
        ),
        ("To".into(), format!("<{uri}>")),
        ("Call-ID".into(), format!("{}@watcher", token())),
        ("CSeq".into(), format!("1 {method}")),
    ];
    headers.extend(extra);
    Request {
        method: method.into(),
        uri: uri.into(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// A receptionist's phone watching one extension.
struct Watcher {
    socket: UdpSocket,
    server: u16,
}

impl Watcher {
    async fn subscribe(server: u16, extension: &str) -> Watcher {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let local = socket.local_addr().expect("addr");
        let uri = format!("sip:{extension}@{DOMAIN}");
        let subscribe = request(
            &socket,
            "SUBSCRIBE",
            &uri,
            vec![
                ("Contact".into(), format!("<sip:reception@{local}>")),
                ("Event".into(), "presence".into()),
                ("Accept".into(), "application/pidf+xml".into()),
                ("Expires".into(), "600".into()),
            ],
            "",
        );
        socket
            .send_to(&subscribe.to_bytes(), ("127.0.0.1", server))
            .await
            .expect("send");
        Watcher { socket, server }
    }

    /// The next NOTIFY body that `wanted` accepts (each NOTIFY is answered 200).
    async fn notify_where(&self, wanted: impl Fn(&str) -> bool) -> String {
        let mut buf = vec![0u8; 65_535];
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let received = tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf)).await;
            let Ok(Ok((n, from))) = received else {
                panic!(
                    "no NOTIFY as expected within 10 s; bodies seen:\n{}",
                    seen.join("\n---\n")
                );
            };
            let Ok(message) = Message::parse(&buf[..n]) else {
                continue;
            };
            if message.status.is_some() {
                assert!(
                    message.status.is_some_and(|c| c < 300),
                    "SUBSCRIBE refused: {}",
                    message.start
                );
                continue;
            }
            assert_eq!(message.method(), Some("NOTIFY"));
            assert_eq!(from.port(), self.server);
            self.socket
                .send_to(&message.reply(200, "OK", None), from)
                .await
                .expect("reply");
            let body = String::from_utf8_lossy(&message.body).into_owned();
            if wanted(&body) {
                return body;
            }
            seen.push(body);
        }
    }
}

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
        }),
        upcoming: vec![],
    }
}

fn delivery() -> Delivery {
    let now = Timestamp::now();
    Delivery {
        id: DeliveryId::new(),
        user: UserId::new(),
        target: TargetId::new(),
        sequence: 1,
        payload: serde_json::Value::Null,
        state: DeliveryState::Pending,
        attempts: 0,
        due: now,
        next_attempt: now,
        created: now,
        delivered: None,
        last_error: None,
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
    let lunch = status(
        Some(("lunch", "Lunch, åter 13.00", "Lunch, back 13:00")),
        "2026-11-23T12:00:00Z",
    );
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
    let lunch = status(
        Some(("lunch", "Lunch, åter 13.00", "Lunch, back 13:00")),
        "2026-11-23T12:00:00Z",
    );
    sip.deliver(&delivery(), &lunch)
        .await
        .expect("lunch published");
    // Twice the granted time; the server removes expired publications every second.
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
    let lunch = status(
        Some(("lunch", "Lunch, åter 13.00", "Lunch, back 13:00")),
        "2026-11-23T12:00:00Z",
    );
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
    let lunch = status(
        Some(("lunch", "Lunch, åter 13.00", "Lunch, back 13:00")),
        "2026-11-23T12:00:00Z",
    );
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
    }
}

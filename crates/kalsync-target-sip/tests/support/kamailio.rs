//! A real Kamailio presence server on a loopback port, and a receptionist's phone
//! watching an extension: shared by the SIP target's tests and the service's end-to-end
//! test. Kamailio not installed: skipped with a message, except in CI, where it must be.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kalsync_target_sip::message::{Message, Request, token};
use kalsync_target_sip::transaction;
use tokio::net::UdpSocket;

pub(crate) const PASSWORD: &str = "pbx-s3cret";
pub(crate) const DOMAIN: &str = "kalsync.test";

pub(crate) struct Kamailio {
    child: Child,
    /// UDP and TCP.
    pub(crate) port: u16,
    /// TLS.
    pub(crate) tls_port: u16,
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
            // Kamailio is another process: its exit takes real time.
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Kamailio {
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    /// The transports the publications so far came over (`udp`, `tcp`, `tls`) and
    /// from which port, in order.
    pub(crate) fn publish_transports(&self) -> Vec<(String, u16)> {
        self.log()
            .lines()
            .filter_map(|l| l.split("kalsync-test: PUBLISH over ").nth(1))
            .filter_map(|t| {
                let (transport, port) = t.trim().split_once(" from ")?;
                Some((transport.to_owned(), port.parse().ok()?))
            })
            .collect()
    }

    /// The CA Kalsync checks Kamailio's TLS certificate against (the certificate itself,
    /// self-signed), as a file for a settings file's `ca_file`.
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
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

pub(crate) async fn start() -> Option<Kamailio> {
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
    let port = free_udp_and_tcp_port();
    let tls_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert");
    std::fs::write(dir.join("ca.pem"), cert.pem()).expect("ca");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key");
    let config = include_str!("kamailio.cfg")
        .replace("KALSYNC_TLS_PORT", &tls_port.to_string())
        .replace("KALSYNC_CERT", &dir.join("cert.pem").display().to_string())
        .replace("KALSYNC_KEY", &dir.join("key.pem").display().to_string())
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
    let kamailio = Kamailio {
        child,
        port,
        tls_port,
        dir,
    };
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
        // Kamailio is another process: its start takes real time.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = std::fs::read_to_string(kamailio.dir.join("kamailio.log")).unwrap_or_default();
    panic!("kamailio did not answer OPTIONS; its log:\n{log}");
}

/// A port free for both UDP and TCP on loopback (bounded tries).
fn free_udp_and_tcp_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("probe");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
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
pub(crate) struct Watcher {
    socket: UdpSocket,
    server: u16,
}

impl Watcher {
    pub(crate) async fn subscribe(server: u16, extension: &str) -> Watcher {
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
    pub(crate) async fn notify_where(&self, wanted: impl Fn(&str) -> bool) -> String {
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

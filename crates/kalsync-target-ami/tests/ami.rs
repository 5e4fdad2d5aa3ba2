//! The AMI target against a fake manager that keeps presence, AstDB and lamps, checks
//! the login and records every action.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kalsync_core::Mode;
use kalsync_engine::{AbsenceStatus, DeliveryError, Envelope, Person, StatusUpdate, Target};
use kalsync_target_ami::AmiTarget;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Default)]
struct Pbx {
    vars: HashMap<String, String>,
    astdb: HashMap<(String, String), String>,
    actions: Vec<Vec<(String, String)>>,
}

type Shared = Arc<Mutex<Pbx>>;

async fn fake_ami() -> (Shared, u16) {
    let pbx: Shared = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let shared = pbx.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let pbx = shared.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let _ = write.write_all(b"Asterisk Call Manager/7.0.3\r\n").await;
                let mut logged_in = false;
                loop {
                    let mut fields: Vec<(String, String)> = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let line = line.trim_end().to_owned();
                        if line.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            fields.push((k.trim().to_owned(), v.trim().to_owned()));
                        }
                    }
                    let get = |k: &str| {
                        fields
                            .iter()
                            .find(|(f, _)| f == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let id = get("ActionID");
                    let action = get("Action");
                    let mut reply = format!("Response: Success\r\nActionID: {id}\r\n");
                    {
                        let mut p = pbx.lock().expect("lock");
                        p.actions.push(fields.clone());
                        match action.as_str() {
                            "Login" => {
                                if get("Username") == "kalsync" && get("Secret") == "s3cret" {
                                    logged_in = true;
                                    reply.push_str("Message: Authentication accepted\r\n");
                                } else {
                                    reply = format!(
                                        "Response: Error\r\nActionID: {id}\r\nMessage: Authentication failed\r\n"
                                    );
                                }
                            }
                            _ if !logged_in => {
                                reply = format!(
                                    "Response: Error\r\nActionID: {id}\r\nMessage: Permission denied\r\n"
                                )
                            }
                            "Setvar" => {
                                p.vars.insert(get("Variable"), get("Value"));
                            }
                            "Getvar" => reply.push_str(&format!(
                                "Variable: {}\r\nValue: {}\r\n",
                                get("Variable"),
                                p.vars.get(&get("Variable")).cloned().unwrap_or_default()
                            )),
                            "DBPut" => {
                                p.astdb.insert((get("Family"), get("Key")), get("Val"));
                            }
                            "DBDel" => {
                                p.astdb.remove(&(get("Family"), get("Key")));
                            }
                            "DBGet" => match p.astdb.get(&(get("Family"), get("Key"))) {
                                Some(v) => {
                                    reply = format!(
                                        "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Result will follow\r\n\r\nEvent: DBGetResponse\r\nFamily: {}\r\nKey: {}\r\nVal: {v}\r\nActionID: {id}\r\n\r\nEvent: DBGetComplete\r\nActionID: {id}\r\n",
                                        get("Family"),
                                        get("Key")
                                    )
                                }
                                None => {
                                    reply = format!(
                                        "Response: Error\r\nActionID: {id}\r\nMessage: Database entry not found\r\n"
                                    )
                                }
                            },
                            "Logoff" => {
                                reply = format!(
                                    "Response: Goodbye\r\nActionID: {id}\r\nMessage: Thanks for all the fish.\r\n"
                                )
                            }
                            _ => {}
                        }
                    }
                    reply.push_str("\r\n");
                    if write.write_all(reply.as_bytes()).await.is_err() || action == "Logoff" {
                        return;
                    }
                }
            });
        }
    });
    (pbx, port)
}

fn status(reason: Option<(&str, Mode, &str)>) -> (Envelope, StatusUpdate) {
    let now = jiff::Timestamp::now();
    let d = Envelope {
        id: uuid::Uuid::new_v4(),
        sequence: 1,
        attempt: 1,
    };
    let absence = reason.map(|(code, mode, message)| AbsenceStatus {
        reason: code.into(),
        label_sv: code.into(),
        label_en: code.into(),
        mode,
        since: now,
        until: now,
        returns_at: now,
        message_sv: message.into(),
        message_en: message.into(),
        subject: None,
        source: kalsync_core::Source::Booking,
    });
    (
        d,
        StatusUpdate {
            user: Person {
                id: "u".into(),
                email: "anna@acme.example".into(),
                name: None,
                extension: Some("201".into()),
            },
            at: now,
            absence,
            upcoming: Vec::new(),
        },
    )
}

fn target(port: u16, secret: &str) -> AmiTarget {
    AmiTarget::new(
        "127.0.0.1",
        port,
        "kalsync",
        SecretString::from(secret.to_owned()),
        "7799",
        // The fake manager listens on loopback.
        kalsync_outbound::OutboundPolicy::with_loopback(),
    )
}

fn actions(pbx: &Shared) -> Vec<String> {
    pbx.lock()
        .expect("lock")
        .actions
        .iter()
        .map(|a| {
            let get = |k: &str| {
                a.iter()
                    .find(|(f, _)| f == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            format!(
                "{} {}{}",
                get("Action"),
                get("Variable"),
                if get("Family").is_empty() {
                    String::new()
                } else {
                    format!("{}/{}", get("Family"), get("Key"))
                }
            )
            .trim()
            .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_divert_sets_presence_call_forward_and_lamp_and_the_clear_undoes_them() {
    let (pbx, port) = fake_ami().await;
    let t = target(port, "s3cret");
    let (d, s) = status(Some(("meeting", Mode::Divert, "Möte, åter 14.00")));
    t.deliver(&d, &s).await.expect("delivered");
    assert_eq!(
        actions(&pbx),
        [
            "Login",
            "Setvar PRESENCE_STATE(CustomPresence:201,e)",
            "DBPut CF/201",
            "Setvar DEVICE_STATE(Custom:CF201)",
            "Logoff"
        ]
    );
    {
        let p = pbx.lock().expect("lock");
        let presence = &p.vars["PRESENCE_STATE(CustomPresence:201,e)"];
        let parts: Vec<&str> = presence.split(',').collect();
        assert_eq!(parts[0], "dnd");
        assert_eq!(STANDARD.decode(parts[1]).expect("b64"), b"kalsync:meeting");
        assert_eq!(
            String::from_utf8(STANDARD.decode(parts[2]).expect("b64")).expect("utf8"),
            "Möte, åter 14.00"
        );
        assert_eq!(p.astdb[&("CF".to_owned(), "201".to_owned())], "7799");
        assert_eq!(p.vars["DEVICE_STATE(Custom:CF201)"], "BUSY");
    }
    pbx.lock().expect("lock").actions.clear();
    let (d, s) = status(None);
    t.deliver(&d, &s).await.expect("cleared");
    assert_eq!(
        actions(&pbx),
        [
            "Login",
            "Getvar PRESENCE_STATE(CustomPresence:201,e)",
            "Setvar PRESENCE_STATE(CustomPresence:201,e)",
            "DBGet CF/201",
            "DBDel CF/201",
            "Setvar DEVICE_STATE(Custom:CF201)",
            "Logoff"
        ]
    );
    let p = pbx.lock().expect("lock");
    assert_eq!(
        p.vars["PRESENCE_STATE(CustomPresence:201,e)"],
        "available,,"
    );
    assert!(p.astdb.is_empty());
    assert_eq!(p.vars["DEVICE_STATE(Custom:CF201)"], "NOT_INUSE");
}

#[tokio::test]
async fn information_only_sets_presence_and_never_touches_the_users_own_forward() {
    let (pbx, port) = fake_ami().await;
    {
        let mut p = pbx.lock().expect("lock");
        // Anna forwards her phone to her mobile herself, and set her own presence.
        p.astdb
            .insert(("CF".into(), "201".into()), "0701234567".into());
        p.vars.insert(
            "PRESENCE_STATE(CustomPresence:201,e)".into(),
            format!(
                "away,{},{}",
                STANDARD.encode("Hemma"),
                STANDARD.encode("Sjuk")
            ),
        );
    }
    let t = target(port, "s3cret");
    let (d, s) = status(None);
    t.deliver(&d, &s).await.expect("cleared");
    {
        let p = pbx.lock().expect("lock");
        assert_eq!(
            p.astdb[&("CF".to_owned(), "201".to_owned())],
            "0701234567",
            "not Kalsync's forward: left alone"
        );
        assert!(
            p.vars["PRESENCE_STATE(CustomPresence:201,e)"].starts_with("away,"),
            "not Kalsync's presence: left alone"
        );
    }
    let (d, s) = status(Some(("lunch", Mode::Info, "Lunch, åter 13.00")));
    t.deliver(&d, &s).await.expect("delivered");
    let p = pbx.lock().expect("lock");
    assert!(p.vars["PRESENCE_STATE(CustomPresence:201,e)"].starts_with("away,"));
    assert_eq!(p.astdb[&("CF".to_owned(), "201".to_owned())], "0701234567");
}

#[tokio::test]
async fn a_wrong_secret_no_extension_or_no_manager_are_errors() {
    let (_pbx, port) = fake_ami().await;
    let (d, s) = status(Some(("lunch", Mode::Info, "x")));
    assert!(
        matches!(target(port, "wrong").deliver(&d, &s).await, Err(DeliveryError::Rejected(m)) if m.contains("Authentication failed"))
    );
    let (d, mut s) = status(Some(("lunch", Mode::Info, "x")));
    s.user.extension = None;
    assert!(
        matches!(target(port, "s3cret").deliver(&d, &s).await, Err(DeliveryError::Rejected(m)) if m.contains("no extension"))
    );
    assert!(matches!(
        target(9, "s3cret").deliver(&d, &status(None).1).await,
        Err(DeliveryError::Retry { .. })
    ));
}

/// A manager that takes a login with `Events: user`, then tells `events` and hangs up.
async fn telling_ami(
    events: &'static str,
) -> (u16, tokio::task::JoinHandle<Vec<(String, String)>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        write
            .write_all(b"Asterisk Call Manager/7.0.3\r\n")
            .await
            .expect("banner");
        let mut login = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                login.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        let id = login
            .iter()
            .find(|(k, _)| k == "ActionID")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        write
            .write_all(format!("Response: Success\r\nActionID: {id}\r\nMessage: Authentication accepted\r\n\r\n").as_bytes())
            .await
            .expect("login");
        write.write_all(events.as_bytes()).await.expect("events");
        login
    });
    (port, task)
}

#[tokio::test]
async fn the_listener_hears_back_and_extend_and_says_what_is_malformed() {
    let (port, manager) = telling_ami(
        "Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n\
         Event: UserEvent\r\nChannel: PJSIP/201-0001\r\nContext: from-internal\r\nExten: *22\r\nUniqueid: 1764.1\r\nUserEvent: KalsyncBack\r\nExten: 201\r\n\r\n\
         Event: UserEvent\r\nUserEvent: SomethingElse\r\nExten: 201\r\n\r\n\
         Event: UserEvent\r\nUniqueid: 1764.2\r\nUserEvent: KalsyncExtend\r\nExten: 201\r\n\r\n\
         Event: UserEvent\r\nUniqueid: 1764.3\r\nUserEvent: KalsyncExtend\r\nExten: 201\r\nMinutes: 30\r\n\r\n\
         Event: UserEvent\r\nUserEvent: KalsyncBack\r\nExten: 20;1\r\n\r\n",
    )
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let ended = target(port, "s3cret").listen(tx).await;
    assert!(ended.is_err(), "the manager hung up: {ended:?}");
    let login = manager.await.expect("manager");
    assert!(
        login.iter().any(|(k, v)| k == "Events" && v == "user,call"),
        "only user and call events are asked for: {login:?}"
    );
    let mut heard = Vec::new();
    while let Ok(word) = rx.try_recv() {
        heard.push(word);
    }
    assert_eq!(heard.len(), 4, "{heard:?}");
    assert_eq!(
        heard[0],
        Ok(kalsync_target_ami::PhoneWord {
            exten: "201".into(),
            says: kalsync_target_ami::PhoneSays::Back,
            key: Some("KalsyncBack:1764.1".into()),
        })
    );
    assert!(
        heard[1].as_ref().is_err_and(|e| e.contains("Minutes")),
        "{heard:?}"
    );
    assert_eq!(
        heard[2].as_ref().ok().map(|w| w.says),
        Some(kalsync_target_ami::PhoneSays::Extend(30))
    );
    assert!(
        heard[3].as_ref().is_err_and(|e| e.contains("Exten")),
        "{heard:?}"
    );
}

#[tokio::test]
async fn the_listener_hears_calls_start_and_end_from_the_phones_states() {
    use kalsync_target_ami::PhoneSays::Call;
    let (port, _manager) = telling_ami(
        "Event: ExtensionStatus\r\nExten: 201\r\nContext: ext-local\r\nHint: PJSIP/201\r\nStatus: 8\r\nStatusText: Ringing\r\n\r\n\
         Event: ExtensionStatus\r\nExten: 201\r\nContext: ext-local\r\nHint: PJSIP/201\r\nStatus: 1\r\nStatusText: InUse\r\n\r\n\
         Event: DeviceStateChange\r\nDevice: Queue:support_avail\r\nState: INUSE\r\n\r\n\
         Event: DeviceStateChange\r\nDevice: PJSIP/202\r\nState: ONHOLD\r\n\r\n\
         Event: DeviceStateChange\r\nDevice: PJSIP/20;2\r\nState: INUSE\r\n\r\n\
         Event: ExtensionStatus\r\nExten: 201\r\nStatus: 0\r\nStatusText: Idle\r\n\r\n\
         Event: DeviceStateChange\r\nDevice: PJSIP/202\r\nState: NOT_INUSE\r\n\r\n",
    )
    .await;
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let _ = target(port, "s3cret").listen(tx).await;
    let mut heard = Vec::new();
    while let Ok(word) = rx.try_recv() {
        heard.push(word.map(|w| (w.exten, w.says)));
    }
    // Ringing, a queue's state and a malformed device say nothing.
    assert_eq!(
        heard,
        vec![
            Ok(("201".into(), Call(true))),
            Ok(("202".into(), Call(true))),
            Ok(("201".into(), Call(false))),
            Ok(("202".into(), Call(false))),
        ]
    );
}

#[tokio::test]
async fn a_manager_sending_an_endless_line_is_cut_off() {
    let huge: &'static str = Box::leak(
        format!(
            "Event: UserEvent\r\nUserEvent: {}\r\n\r\n",
            "x".repeat(100_000)
        )
        .into_boxed_str(),
    );
    let (port, _manager) = telling_ami(huge).await;
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let ended = target(port, "s3cret").listen(tx).await;
    assert!(
        ended
            .as_ref()
            .is_err_and(|e| e.to_string().contains("too long")),
        "{ended:?}"
    );
}

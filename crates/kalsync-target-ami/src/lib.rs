//! The Asterisk / FreePBX target (SPEC §5) over the Manager Interface: presence through
//! `PRESENCE_STATE(CustomPresence:<ext>)`; a `divert` also sets FreePBX's call forward —
//! `CF/<ext>` in AstDB to the announcement number, and the `Custom:CF<ext>` lamp. On
//! clearing, only what Kalsync set is removed: a forward the user set to somewhere else
//! stays.
//!
//! The same connection details serve a listener for the dialplan's `UserEvent`s: "I'm
//! back" and "extend" from a feature code ([`AmiTarget::listen`]).
//!
//! AMI is a line protocol of `Key: Value` blocks; it is spoken here directly (a login, a
//! few actions, a logoff per delivery) — no crate for it is kept up.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kalsync_core::Mode;
use kalsync_engine::{DeliveryError, Envelope, StatusUpdate, Target};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};

/// The presence subtype Kalsync writes starts with this, so it knows its own.
const MARK: &str = "kalsync:";

/// An Asterisk or FreePBX manager.
pub struct AmiTarget {
    host: String,
    port: u16,
    address: String,
    /// Where connections may go.
    outbound: kalsync_outbound::OutboundPolicy,
    username: String,
    secret: SecretString,
    announcement: String,
    timeout: Duration,
}

/// The longest line of an answer or event taken.
const MAX_LINE: usize = 8192;
/// The most lines of one answer or event.
const MAX_FIELDS: usize = 200;

/// How long a listener waits for an event before it pings the manager.
const PING_EVERY: Duration = Duration::from_secs(60);

/// What a person's phone said: the dialplan's `UserEvent`, or its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneWord {
    /// The extension it came from.
    pub exten: String,
    /// What it said.
    pub says: PhoneSays,
    /// The call's `Uniqueid` (with the event's name), where the manager gives one: the
    /// same event heard by two listeners has the same key.
    pub key: Option<String>,
}

/// What a phone says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneSays {
    /// "I'm back".
    Back,
    /// "Extend by this many minutes".
    Extend(u32),
    /// In a call (`true`: in use, busy or on hold) or not (idle, unavailable), from
    /// `ExtensionStatus` or `DeviceStateChange`.
    Call(bool),
}

/// Whether `x` looks like an extension (what is taken from a manager's events).
fn extension(x: &str) -> Option<&str> {
    let x = x.trim();
    (!x.is_empty()
        && x.len() <= 32
        && x.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+*#".contains(c)))
    .then_some(x)
}

impl PhoneWord {
    /// A phone's state: `ExtensionStatus` (`Exten`, `Status` — Asterisk's bit mask:
    /// 1 in use, 2 busy, 16 on hold; 0 idle, 4 unavailable; ringing alone is not a
    /// call) or `DeviceStateChange` (`Device: PJSIP/201`, `State`). `None` for any
    /// other event or a state that says nothing (ringing, unknown).
    fn from_state(block: &Answer) -> Option<PhoneWord> {
        let event = block.get("Event")?;
        let (exten, in_call) = if event.eq_ignore_ascii_case("ExtensionStatus") {
            let status: u32 = block.get("Status")?.trim().parse().ok()?;
            let in_call = if status & (1 | 2 | 16) != 0 {
                true
            } else if status == 0 || status & 4 != 0 {
                false
            } else {
                return None;
            };
            (extension(block.get("Exten")?)?.to_owned(), in_call)
        } else if event.eq_ignore_ascii_case("DeviceStateChange") {
            let device = block.get("Device")?;
            // `PJSIP/201`, `SIP/201`; not a queue, a conference or a custom state.
            let (tech, name) = device.split_once('/')?;
            if !["PJSIP", "SIP", "IAX2", "DAHDI"]
                .iter()
                .any(|t| t.eq_ignore_ascii_case(tech))
            {
                return None;
            }
            let in_call = match block.get("State")?.trim().to_ascii_uppercase().as_str() {
                "INUSE" | "BUSY" | "ONHOLD" | "RINGINUSE" => true,
                "NOT_INUSE" | "UNAVAILABLE" => false,
                _ => return None,
            };
            (extension(name)?.to_owned(), in_call)
        } else {
            return None;
        };
        Some(PhoneWord {
            exten,
            says: PhoneSays::Call(in_call),
            key: None,
        })
    }

    /// A `KalsyncBack` or `KalsyncExtend` user event, or a phone's state; `None` for any
    /// other event, `Err` for one of ours that is malformed.
    fn from_event(block: &Answer) -> Option<Result<PhoneWord, String>> {
        if let Some(state) = PhoneWord::from_state(block) {
            return Some(Ok(state));
        }
        if !block
            .get("Event")
            .is_some_and(|e| e.eq_ignore_ascii_case("UserEvent"))
        {
            return None;
        }
        let name = block.get("UserEvent")?;
        let back = name.eq_ignore_ascii_case("KalsyncBack");
        if !back && !name.eq_ignore_ascii_case("KalsyncExtend") {
            return None;
        }
        let exten = match block.last("Exten").and_then(extension) {
            Some(x) => x.to_owned(),
            None => {
                return Some(Err(format!(
                    "{name}: `Exten` is missing or not an extension"
                )));
            }
        };
        let says = if back {
            PhoneSays::Back
        } else {
            match block
                .last("Minutes")
                .and_then(|m| m.trim().parse::<u32>().ok())
            {
                Some(m) if (1..=7 * 24 * 60).contains(&m) => PhoneSays::Extend(m),
                _ => {
                    return Some(Err(format!(
                        "{name} from {exten}: `Minutes` must be 1 to 10080"
                    )));
                }
            }
        };
        Some(Ok(PhoneWord {
            exten,
            says,
            key: block.get("Uniqueid").map(|u| format!("{name}:{u}")),
        }))
    }
}

/// One AMI answer: its `Key: Value` lines.
#[derive(Debug, Default, Clone)]
struct Answer(Vec<(String, String)>);

impl Answer {
    /// The last value of `key`: a `UserEvent` carries the channel's fields first
    /// (Asterisk 12 and later: `Exten: *22`) and the event's own after them.
    fn last(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    fn success(&self) -> bool {
        self.get("Response")
            .is_some_and(|r| r.eq_ignore_ascii_case("Success"))
    }
}

struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    next_id: u32,
}

/// One block of `Key: Value` lines (an answer or an event), read at most
/// [`MAX_LINE`] bytes a line and [`MAX_FIELDS`] lines.
async fn read_block(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Result<Answer, DeliveryError> {
    let mut answer = Answer::default();
    loop {
        let mut line = String::new();
        // At most a line's worth is read, whatever the manager sends.
        let n = (&mut *reader)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await
            .map_err(|e| retry(format!("ami: {e}")))?;
        if n == 0 {
            return Err(retry("ami: the manager closed the connection".into()));
        }
        if line.len() > MAX_LINE {
            return Err(retry("ami: an answer line is too long".into()));
        }
        if answer.0.len() >= MAX_FIELDS {
            return Err(retry("ami: an answer has too many lines".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if answer.0.is_empty() {
                continue;
            }
            return Ok(answer);
        }
        if let Some((k, v)) = line.split_once(':') {
            answer.0.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
}

fn retry(message: String) -> DeliveryError {
    DeliveryError::Retry {
        message,
        retry_after: None,
    }
}

impl Session {
    async fn read_block(&mut self) -> Result<Answer, DeliveryError> {
        read_block(&mut self.reader).await
    }

    /// Sends an action and reads its answer (skipping unrelated events).
    async fn action(&mut self, fields: &[(&str, &str)]) -> Result<Answer, DeliveryError> {
        self.next_id += 1;
        let id = format!("kalsync-{}", self.next_id);
        let mut text = String::new();
        for (k, v) in fields {
            if v.contains(['\r', '\n']) {
                return Err(DeliveryError::Rejected(format!(
                    "ami: a value for {k} has a line break"
                )));
            }
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str(&format!("ActionID: {id}\r\n\r\n"));
        self.writer
            .write_all(text.as_bytes())
            .await
            .map_err(|e| retry(format!("ami: {e}")))?;
        loop {
            let answer = self.read_block().await?;
            if answer.get("ActionID") == Some(id.as_str()) && answer.get("Response").is_some() {
                return Ok(answer);
            }
        }
    }

    /// `DBGet`: the value, or `None` when there is none. The value comes in an event.
    async fn db_get(&mut self, family: &str, key: &str) -> Result<Option<String>, DeliveryError> {
        let answer = self
            .action(&[("Action", "DBGet"), ("Family", family), ("Key", key)])
            .await?;
        if !answer.success() {
            return Ok(None);
        }
        if let Some(v) = answer.get("Val") {
            return Ok(Some(v.to_owned()));
        }
        loop {
            let event = self.read_block().await?;
            if event
                .get("Event")
                .is_some_and(|e| e.eq_ignore_ascii_case("DBGetResponse"))
            {
                return Ok(event.get("Val").map(str::to_owned));
            }
            if event
                .get("Event")
                .is_some_and(|e| e.eq_ignore_ascii_case("DBGetComplete"))
            {
                return Ok(None);
            }
        }
    }
}

impl AmiTarget {
    /// A target at `host:port` with a manager user, diverting to `announcement`.
    pub fn new(
        host: &str,
        port: u16,
        username: &str,
        secret: SecretString,
        announcement: &str,
        outbound: kalsync_outbound::OutboundPolicy,
    ) -> Self {
        AmiTarget {
            host: host.to_owned(),
            port,
            address: format!("{host}:{port}"),
            outbound,
            username: username.to_owned(),
            secret,
            announcement: announcement.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }

    async fn connect(&self) -> Result<Session, DeliveryError> {
        self.connect_with("off").await
    }

    /// Listens for what people say on the phone: the dialplan's
    /// `UserEvent(KalsyncBack,Exten: …)` and `UserEvent(KalsyncExtend,Exten: …,Minutes: …)`
    /// (see the README), and the phones' states (`ExtensionStatus`, `DeviceStateChange`:
    /// calls shown in Teams). Logs in with `Events: user,call` and sends each to `heard` —
    /// a malformed one as `Err` with why — until the manager closes the connection
    /// (`Err`) or `heard` is dropped (`Ok`). A silent manager is asked `Ping` every
    /// minute.
    pub async fn listen(
        &self,
        heard: tokio::sync::mpsc::Sender<Result<PhoneWord, String>>,
    ) -> Result<(), DeliveryError> {
        let s = tokio::time::timeout(self.timeout, self.connect_with("user,call"))
            .await
            .map_err(|_| retry(format!("ami {}: no answer to the login", self.address)))??;
        let Session {
            mut reader,
            mut writer,
            mut next_id,
        } = s;
        // Pings on their own task: the reads are never cut short while a manager that
        // answers them is there (a read abandoned half-way would lose an event).
        let pinger = tokio::spawn(async move {
            loop {
                tokio::time::sleep(PING_EVERY).await;
                next_id += 1;
                let ping = format!("Action: Ping\r\nActionID: kalsync-{next_id}\r\n\r\n");
                if writer.write_all(ping.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
        let silence = PING_EVERY * 2 + self.timeout;
        let ended = loop {
            let block = match tokio::time::timeout(silence, read_block(&mut reader)).await {
                Ok(Ok(block)) => block,
                Ok(Err(e)) => break Err(e),
                Err(_) => {
                    break Err(retry(format!(
                        "ami {}: no answer to pings for {silence:?}",
                        self.address
                    )));
                }
            };
            if let Some(word) = PhoneWord::from_event(&block) {
                if heard.send(word).await.is_err() {
                    break Ok(());
                }
            }
        };
        pinger.abort();
        ended
    }

    async fn connect_with(&self, events: &str) -> Result<Session, DeliveryError> {
        let stream = self
            .outbound
            .connect(&self.host, self.port)
            .await
            .map_err(|e| retry(format!("ami {}: {e}", self.address)))?;
        let (read, writer) = stream.into_split();
        let mut session = Session {
            reader: BufReader::new(read),
            writer,
            next_id: 0,
        };
        let mut banner = String::new();
        session
            .reader
            .read_line(&mut banner)
            .await
            .map_err(|e| retry(format!("ami: {e}")))?;
        if !banner.starts_with("Asterisk Call Manager") {
            return Err(retry(format!(
                "ami {}: not an Asterisk manager",
                self.address
            )));
        }
        let login = session
            .action(&[
                ("Action", "Login"),
                ("Username", &self.username),
                ("Secret", self.secret.expose_secret()),
                ("Events", events),
            ])
            .await?;
        if !login.success() {
            return Err(DeliveryError::Rejected(format!(
                "ami: login refused: {}",
                login.get("Message").unwrap_or("no reason")
            )));
        }
        Ok(session)
    }

    async fn apply(&self, status: &StatusUpdate) -> Result<(), DeliveryError> {
        let ext = status.user.extension.as_deref().ok_or_else(|| {
            DeliveryError::Rejected(format!("{} has no extension", status.user.email))
        })?;
        let mut s = self.connect().await?;
        let presence = format!("PRESENCE_STATE(CustomPresence:{ext},e)");
        match &status.absence {
            Some(a) => {
                let state = match a.reason.as_str() {
                    "vacation" | "sick" | "out_of_office" | "gone_for_the_day" => "xa",
                    "meeting" | "busy" => "dnd",
                    _ => "away",
                };
                let value = format!(
                    "{state},{},{}",
                    STANDARD.encode(format!("{MARK}{}", a.reason)),
                    STANDARD.encode(&a.message_sv)
                );
                expect(
                    s.action(&[
                        ("Action", "Setvar"),
                        ("Variable", &presence),
                        ("Value", &value),
                    ])
                    .await?,
                    "presence",
                )?;
                if a.mode == Mode::Divert {
                    expect(
                        s.action(&[
                            ("Action", "DBPut"),
                            ("Family", "CF"),
                            ("Key", ext),
                            ("Val", &self.announcement),
                        ])
                        .await?,
                        "call forward",
                    )?;
                    let lamp = format!("DEVICE_STATE(Custom:CF{ext})");
                    expect(
                        s.action(&[("Action", "Setvar"), ("Variable", &lamp), ("Value", "BUSY")])
                            .await?,
                        "lamp",
                    )?;
                } else {
                    self.clear_forward(&mut s, ext).await?;
                }
            }
            None => {
                // Presence: only a state Kalsync wrote is cleared.
                let current = s
                    .action(&[("Action", "Getvar"), ("Variable", &presence)])
                    .await?;
                let ours = current
                    .get("Value")
                    .and_then(|v| v.split(',').nth(1))
                    .and_then(|sub| STANDARD.decode(sub).ok())
                    .is_some_and(|sub| sub.starts_with(MARK.as_bytes()));
                if ours {
                    expect(
                        s.action(&[
                            ("Action", "Setvar"),
                            ("Variable", &presence),
                            ("Value", "available,,"),
                        ])
                        .await?,
                        "presence",
                    )?;
                }
                self.clear_forward(&mut s, ext).await?;
            }
        }
        let _ = s.action(&[("Action", "Logoff")]).await;
        Ok(())
    }

    /// Removes the call forward only when it points at Kalsync's announcement.
    async fn clear_forward(&self, s: &mut Session, ext: &str) -> Result<(), DeliveryError> {
        if s.db_get("CF", ext).await?.as_deref() == Some(self.announcement.as_str()) {
            expect(
                s.action(&[("Action", "DBDel"), ("Family", "CF"), ("Key", ext)])
                    .await?,
                "call forward",
            )?;
            let lamp = format!("DEVICE_STATE(Custom:CF{ext})");
            expect(
                s.action(&[
                    ("Action", "Setvar"),
                    ("Variable", &lamp),
                    ("Value", "NOT_INUSE"),
                ])
                .await?,
                "lamp",
            )?;
        }
        Ok(())
    }
}

fn expect(answer: Answer, what: &str) -> Result<(), DeliveryError> {
    if answer.success() {
        Ok(())
    } else {
        Err(retry(format!(
            "ami: setting the {what} failed: {}",
            answer.get("Message").unwrap_or("no reason")
        )))
    }
}

#[async_trait]
impl Target for AmiTarget {
    async fn deliver(
        &self,
        _delivery: &Envelope,
        status: &StatusUpdate,
    ) -> Result<(), DeliveryError> {
        tokio::time::timeout(self.timeout, self.apply(status))
            .await
            .map_err(|_| {
                retry(format!(
                    "ami {}: no answer within {:?}",
                    self.address, self.timeout
                ))
            })?
    }
}

//! The SIP presence target (SPEC §5): each status is a PUBLISH (RFC 3903) of a PIDF
//! document for `sip:<extension>@<domain>`, answered to a digest challenge; a changed
//! status modifies the publication with `SIP-If-Match`, a refresh before it expires
//! sends the same document again, and clearing removes it with `Expires: 0`. Only a publication this
//! target made is removed: without its entity tag there is nothing of Kalsync's to clear.
//!
//! Requests go over UDP, or over one kept TCP or TLS connection (`;transport=tcp`,
//! `sips:`) opened again when it drops; over plain `sip:` a request larger than UDP can
//! carry safely (1,300 bytes, RFC 3261 §18.1.1) takes TCP when the server has it.
//!
//! The entity tags live in memory: after a restart the first status is a fresh
//! publication, and one left from before expires by itself (`Expires`, default 10 min).

pub mod message;
pub mod pidf;
pub mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use kalsync_engine::{DeliveryError, Envelope, StatusUpdate, Target};
use message::{Message, Request, token};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::UdpSocket;
use transport::{Channel, ServerAddress, Streams, Transport, UDP_LIMIT};

/// RFC 3261's T1.
const T1: Duration = Duration::from_millis(500);

/// Where and as whom to publish.
#[derive(Clone)]
pub struct SipSettings {
    /// The presence server: `sip:host:port` (UDP, and TCP for a request over 1,300
    /// bytes when the server takes it), `;transport=udp|tcp|tls`, or `sips:host:port`.
    pub proxy: String,
    /// The presentities' domain.
    pub domain: String,
    /// Digest user.
    pub username: String,
    /// Digest password.
    pub password: SecretString,
    /// The publication's lifetime asked for.
    pub expires: Duration,
    /// How long one request may take, retransmissions included.
    pub timeout: Duration,
    /// Where requests may go.
    pub outbound: kalsync_outbound::OutboundPolicy,
    /// For TLS to a server whose certificate is of the company's own CA: that CA (PEM).
    pub ca: Option<String>,
}

struct Publication {
    etag: String,
    refresh_at: Instant,
    /// The document published, sent again with each refresh: RFC 3903 allows a bare
    /// refresh, but Kamailio's in-memory presence (`publ_cache=2`) then notifies
    /// watchers with an empty body, so a refresh here is a modification to the same
    /// state, which every server keeps. It also lets a refresh the server answers 412
    /// (it lost the tag) publish afresh.
    body: String,
}

type Slot = Arc<tokio::sync::Mutex<Option<Publication>>>;

struct Inner {
    settings: SipSettings,
    /// The server from `settings.proxy`, or why it cannot be used.
    server: Result<ServerAddress, String>,
    /// The kept connection (TCP or TLS; for UDP, the TCP one large requests take).
    streams: Option<Streams>,
    /// Until when large requests go over UDP after the server refused TCP.
    no_tcp_until: Mutex<Option<Instant>>,
    /// Per presentity, its publication; each behind its own lock so one slow answer
    /// holds up only its own user.
    publications: Mutex<HashMap<String, Slot>>,
    refresher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A SIP presence server, e.g. Kamailio's `presence` module.
pub struct SipTarget {
    inner: Arc<Inner>,
}

impl Drop for SipTarget {
    fn drop(&mut self) {
        if let Some(task) = self.inner.refresher.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }
}

/// What came back for one PUBLISH.
enum Answer {
    Ok { etag: Option<String>, expires: u64 },
    Precondition,
    Failed(DeliveryError),
}

fn retry(message: String, retry_after: Option<Duration>) -> DeliveryError {
    DeliveryError::Retry {
        message,
        retry_after,
    }
}

impl SipTarget {
    /// A target publishing to `settings.proxy`.
    pub fn new(settings: SipSettings) -> SipTarget {
        let server = ServerAddress::parse(&settings.proxy);
        let streams = match &server {
            Ok(address) => {
                let tls = match address.transport {
                    Transport::Tls => match transport::tls_config(settings.ca.as_deref()) {
                        Ok(config) => Some(config),
                        Err(e) => {
                            return SipTarget::unusable(settings, format!("TLS: {e}"));
                        }
                    },
                    _ => None,
                };
                (address.transport != Transport::UdpOnly)
                    .then(|| Streams::new(address.clone(), tls, settings.outbound.clone()))
            }
            Err(_) => None,
        };
        SipTarget {
            inner: Arc::new(Inner {
                settings,
                server,
                streams,
                no_tcp_until: Mutex::new(None),
                publications: Mutex::default(),
                refresher: Mutex::new(None),
            }),
        }
    }

    /// A target whose every delivery is refused with `why` (its settings cannot work).
    fn unusable(settings: SipSettings, why: String) -> SipTarget {
        SipTarget {
            inner: Arc::new(Inner {
                settings,
                server: Err(why),
                streams: None,
                no_tcp_until: Mutex::new(None),
                publications: Mutex::default(),
                refresher: Mutex::new(None),
            }),
        }
    }

    /// Whether the kept TCP/TLS connection is open now (for tests).
    pub async fn connected(&self) -> bool {
        match &self.inner.streams {
            Some(streams) => streams.is_open().await,
            None => false,
        }
    }

    /// Publications this target holds now (for the dashboard and tests).
    pub async fn held(&self) -> usize {
        let slots: Vec<Slot> = self.inner.slots();
        let mut n = 0;
        for slot in slots {
            n += usize::from(slot.lock().await.is_some());
        }
        n
    }

    fn start_refresher(&self) {
        let Ok(mut slot) = self.inner.refresher.lock() else {
            return;
        };
        if slot.is_some() {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        *slot = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(inner) = weak.upgrade() else { return };
                inner.refresh_due().await;
            }
        }));
    }
}

impl Inner {
    fn entity(&self, extension: &str) -> String {
        format!("sip:{extension}@{}", self.settings.domain)
    }

    fn slots(&self) -> Vec<Slot> {
        self.publications
            .lock()
            .map(|p| p.values().cloned().collect())
            .unwrap_or_default()
    }

    fn slot(&self, entity: &str) -> Slot {
        let mut map = self
            .publications
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(entity.to_owned()).or_default().clone()
    }

    async fn refresh_due(&self) {
        let entries: Vec<(String, Slot)> = self
            .publications
            .lock()
            .map(|p| p.iter().map(|(e, s)| (e.clone(), s.clone())).collect())
            .unwrap_or_default();
        for (entity, slot) in entries {
            // A slot in use is being published right now; it is looked at next round.
            let Ok(mut publication) = slot.try_lock() else {
                continue;
            };
            let (etag, body) = match &*publication {
                Some(p) if p.refresh_at <= Instant::now() => (p.etag.clone(), p.body.clone()),
                _ => continue,
            };
            let expires = self.settings.expires;
            let mut answer = self
                .publish(&entity, Some(&etag), Some(&body), expires)
                .await;
            if matches!(answer, Answer::Precondition) {
                // The server lost the publication (it restarted): publish it anew.
                answer = self.publish(&entity, None, Some(&body), expires).await;
            }
            match answer {
                Answer::Ok { etag: new, expires } => {
                    *publication = Some(Publication {
                        etag: new.unwrap_or(etag),
                        refresh_at: refresh_time(expires),
                        body,
                    });
                }
                Answer::Precondition => {
                    tracing::warn!(entity = %entity, "the presence server refused a fresh publication with 412");
                    *publication = None;
                }
                Answer::Failed(e) => {
                    tracing::warn!(entity = %entity, error = %e, "a presence refresh failed");
                }
            }
        }
    }

    /// One PUBLISH transaction, answering one digest challenge.
    async fn publish(
        &self,
        entity: &str,
        if_match: Option<&str>,
        body: Option<&str>,
        expires: Duration,
    ) -> Answer {
        match self.publish_inner(entity, if_match, body, expires).await {
            Ok(a) => a,
            Err(e) => Answer::Failed(e),
        }
    }

    /// A datagram socket connected to the server.
    async fn datagram(&self, server: &ServerAddress) -> Result<Channel, DeliveryError> {
        let s = &self.settings;
        let address = s
            .outbound
            .resolve(&server.host, server.port)
            .await
            .map_err(|e| retry(format!("sip: `{}`: {e}", s.proxy), None))?
            .into_iter()
            .next()
            .ok_or_else(|| retry(format!("sip: `{}` has no address", s.proxy), None))?;
        let bind = if address.ip().is_loopback() {
            "127.0.0.1:0"
        } else if address.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let socket = UdpSocket::bind(bind)
            .await
            .map_err(|e| retry(format!("sip: cannot open a socket: {e}"), None))?;
        socket
            .connect(address)
            .await
            .map_err(|e| retry(format!("sip: cannot reach {address}: {e}"), None))?;
        Ok(Channel::Datagram(socket))
    }

    /// The channel for a request of about `size` bytes, and whether it is a kept
    /// connection opened before (which the server may have closed meanwhile).
    async fn channel(
        &self,
        server: &ServerAddress,
        size: usize,
        fresh: bool,
    ) -> Result<(Channel, bool), DeliveryError> {
        let timeout = self.settings.timeout;
        match (server.transport, &self.streams) {
            (Transport::Tcp | Transport::Tls, Some(streams)) => {
                streams.channel(timeout, fresh).await
            }
            (Transport::Udp, Some(streams)) if size > UDP_LIMIT => {
                let refused = self
                    .no_tcp_until
                    .lock()
                    .map(|until| until.is_some_and(|t| t > Instant::now()))
                    .unwrap_or(false);
                if !refused {
                    match streams.channel(timeout, fresh).await {
                        Ok(open) => return Ok(open),
                        Err(e) => {
                            tracing::info!(error = %e, "sip: the server takes no TCP; large requests go over UDP for ten minutes");
                            if let Ok(mut until) = self.no_tcp_until.lock() {
                                *until = Some(Instant::now() + Duration::from_secs(600));
                            }
                        }
                    }
                }
                Ok((self.datagram(server).await?, false))
            }
            _ => Ok((self.datagram(server).await?, false)),
        }
    }

    async fn publish_inner(
        &self,
        entity: &str,
        if_match: Option<&str>,
        body: Option<&str>,
        expires: Duration,
    ) -> Result<Answer, DeliveryError> {
        let s = &self.settings;
        let server = self
            .server
            .as_ref()
            .map_err(|e| DeliveryError::Rejected(format!("sip: {e}")))?;
        let call_id = format!("{}@kalsync", token());
        let from_tag = token();
        // The headers are a few hundred bytes; a challenge's answer adds some more.
        let size = body.map_or(0, str::len) + 700;
        let (mut channel, mut reused) = self.channel(server, size, false).await?;
        let mut authorization: Option<String> = None;
        let mut cseq = 1u32;
        while cseq <= 2 {
            let local = channel.local()?;
            let mut headers = vec![
                (
                    "Via".to_owned(),
                    format!(
                        "SIP/2.0/{} {local};rport;branch=z9hG4bK{}",
                        channel.via(),
                        token()
                    ),
                ),
                ("Max-Forwards".into(), "70".into()),
                ("From".into(), format!("<{entity}>;tag={from_tag}")),
                ("To".into(), format!("<{entity}>")),
                ("Call-ID".into(), call_id.clone()),
                ("CSeq".into(), format!("{cseq} PUBLISH")),
                ("Event".into(), "presence".into()),
                ("Expires".into(), expires.as_secs().to_string()),
                ("User-Agent".into(), "Kalsync".into()),
            ];
            if let Some(tag) = if_match {
                headers.push(("SIP-If-Match".into(), tag.to_owned()));
            }
            if let Some(a) = &authorization {
                headers.push(("Authorization".into(), a.clone()));
            }
            if body.is_some() {
                headers.push(("Content-Type".into(), "application/pidf+xml".into()));
            }
            let request = Request {
                method: "PUBLISH".into(),
                uri: entity.to_owned(),
                headers,
                body: body.unwrap_or_default().as_bytes().to_vec(),
            };
            let answer = match channel.transaction(&request, s.timeout).await {
                Ok(answer) => answer,
                // A kept connection the server closed while it was idle: once more on
                // a new one.
                Err(_) if reused && channel.lost() => {
                    (channel, reused) = self.channel(server, size, true).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let code = answer.status.unwrap_or(0);
            match code {
                200..=299 => {
                    let expires = answer
                        .header("Expires")
                        .and_then(|e| e.parse().ok())
                        .unwrap_or(expires.as_secs());
                    return Ok(Answer::Ok {
                        etag: answer.header("SIP-ETag").map(str::to_owned),
                        expires,
                    });
                }
                401 | 407 if authorization.is_none() => {
                    let name = if code == 401 {
                        "WWW-Authenticate"
                    } else {
                        "Proxy-Authenticate"
                    };
                    let challenge = answer.header(name).ok_or_else(|| {
                        DeliveryError::Rejected(format!("sip: {code} without {name}"))
                    })?;
                    let mut prompt = digest_auth::parse(challenge).map_err(|e| {
                        DeliveryError::Rejected(format!("sip: unreadable challenge: {e}"))
                    })?;
                    let context = digest_auth::AuthContext::new_with_method(
                        s.username.as_str(),
                        s.password.expose_secret(),
                        entity,
                        body.map(str::as_bytes),
                        digest_auth::HttpMethod::from("PUBLISH"),
                    );
                    let answer = prompt.respond(&context).map_err(|e| {
                        DeliveryError::Rejected(format!("sip: cannot answer the challenge: {e}"))
                    })?;
                    authorization = Some(answer.to_header_string());
                    cseq += 1;
                }
                401 | 407 | 403 => {
                    return Err(DeliveryError::Rejected(format!(
                        "sip: the server refused the credentials of `{}` ({})",
                        s.username, answer.start
                    )));
                }
                412 => return Ok(Answer::Precondition),
                404 | 405 | 489 => {
                    return Err(DeliveryError::Rejected(format!(
                        "sip: the server does not take presence for {entity} ({})",
                        answer.start
                    )));
                }
                _ => {
                    let after = answer
                        .header("Retry-After")
                        .and_then(|v| v.split(';').next())
                        .and_then(|v| v.trim().parse().ok())
                        .map(Duration::from_secs);
                    return Err(retry(format!("sip: {}", answer.start), after));
                }
            }
        }
        Err(DeliveryError::Rejected(
            "sip: the server challenged the credentials twice".into(),
        ))
    }
}

/// When to refresh a publication granted for `expires` seconds.
fn refresh_time(expires: u64) -> Instant {
    let secs = (expires.saturating_mul(3) / 4).max(1);
    Instant::now() + Duration::from_secs(secs)
}

/// Sends `request` over UDP, retransmitting from T1 doubling, until a final answer to
/// the same branch or `timeout`.
pub async fn transaction(
    socket: &UdpSocket,
    request: &Request,
    timeout: Duration,
) -> Result<Message, DeliveryError> {
    let bytes = request.to_bytes();
    let branch = request.branch().to_owned();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut interval = T1;
    let mut provisional = false;
    let mut buf = vec![0u8; message::MAX_MESSAGE];
    loop {
        if !provisional {
            socket
                .send(&bytes)
                .await
                .map_err(|e| retry(format!("sip: cannot send: {e}"), None))?;
        }
        let wait = tokio::time::Instant::now() + interval;
        loop {
            let until = wait.min(deadline);
            match tokio::time::timeout_at(until, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    // An ICMP port unreachable comes back as an error on a connected
                    // socket: nobody listens there.
                    return Err(retry(format!("sip: no server answers: {e}"), None));
                }
                Ok(Ok(n)) => {
                    let Ok(answer) = Message::parse(&buf[..n]) else {
                        tracing::debug!("sip: an unreadable datagram was ignored");
                        continue;
                    };
                    if answer.status.is_none() || answer.branch() != Some(branch.as_str()) {
                        continue;
                    }
                    if answer.status.is_some_and(|c| c < 200) {
                        provisional = true;
                        continue;
                    }
                    return Ok(answer);
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(retry(
                format!("sip: no answer within {} s", timeout.as_secs_f32()),
                None,
            ));
        }
        interval = (interval * 2).min(Duration::from_secs(4));
    }
}

#[async_trait]
impl Target for SipTarget {
    async fn deliver(
        &self,
        _delivery: &Envelope,
        status: &StatusUpdate,
    ) -> Result<(), DeliveryError> {
        let Some(extension) = status.user.extension.as_deref() else {
            return Err(DeliveryError::Rejected(
                "the user has no PBX extension to publish presence for".into(),
            ));
        };
        self.start_refresher();
        let inner = &self.inner;
        let entity = inner.entity(extension);
        // One status per presentity at a time, in order.
        let slot = inner.slot(&entity);
        let mut publication = slot.lock().await;
        let held = publication.as_ref().map(|p| p.etag.clone());
        let Some(absence) = &status.absence else {
            let Some(etag) = held else {
                return Ok(());
            };
            return match inner
                .publish(&entity, Some(&etag), None, Duration::ZERO)
                .await
            {
                Answer::Ok { .. } | Answer::Precondition => {
                    *publication = None;
                    Ok(())
                }
                Answer::Failed(e) => Err(e),
            };
        };
        let body = pidf::document(&entity, absence);
        let expires = inner.settings.expires;
        let mut answer = inner
            .publish(&entity, held.as_deref(), Some(&body), expires)
            .await;
        if matches!(answer, Answer::Precondition) {
            // The server no longer knows the tag (it restarted, or it expired): anew.
            answer = inner.publish(&entity, None, Some(&body), expires).await;
        }
        match answer {
            Answer::Ok { etag, expires } => {
                *publication = etag.map(|etag| Publication {
                    etag,
                    refresh_at: refresh_time(expires),
                    body,
                });
                Ok(())
            }
            Answer::Precondition => Err(retry(
                "sip: the server refused a fresh publication with 412".into(),
                None,
            )),
            Answer::Failed(e) => Err(e),
        }
    }
}

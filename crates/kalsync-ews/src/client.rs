//! Talking to an Exchange server: one POST per request with the `SOAPAction` and, under
//! impersonation, `X-AnchorMailbox`; Basic or bearer credentials; answers capped in
//! size; `ErrorServerBusy` waited out for its `BackOffMilliseconds` (doubling from a
//! second when absent) a bounded number of times. On top, reading a mailbox's window:
//! `FindItem` calendar views (the window halved while a view is incomplete), then
//! `GetItem` in batches with the explicit §3.1 shape.

use std::collections::HashSet;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_core::{Booking, WindowsZone, Zone};
use secrecy::{ExposeSecret, SecretString};

use crate::error::EwsError;
use crate::request::{self, Access, Context, ItemRef, Request, Shape, Version};
use crate::response;
use crate::xml::MAX_ANSWER;

/// How the service account signs in.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Basic` (over TLS only, in production).
    Basic {
        /// `DOMAIN\user` or `user@domain`.
        username: String,
        /// Its password.
        password: SecretString,
    },
    /// `Authorization: Bearer` with a fixed token.
    Bearer(SecretString),
    /// `Authorization: Bearer` with tokens from a provider (OAuth client credentials
    /// for Exchange Online or hybrid modern auth); a refused token is fetched afresh
    /// once.
    OAuth(std::sync::Arc<dyn TokenProvider>),
    /// NTLMv2 on kept-alive connections (Windows integrated authentication).
    Ntlm {
        /// `DOMAIN\user` or `user@domain`.
        username: String,
        /// Its password.
        password: SecretString,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Auth::Ntlm { username, .. } => write!(f, "Ntlm({username}, ***)"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::OAuth(_) => f.write_str("OAuth(***)"),
        }
    }
}

/// Where OAuth bearer tokens come from.
#[async_trait::async_trait]
pub trait TokenProvider: Send + Sync {
    /// A valid token (cached until close to its expiry).
    async fn token(&self) -> Result<SecretString, EwsError>;
    /// Forgets the cached token: Exchange refused it.
    async fn invalidate(&self);
}

/// An Exchange server and how Kalsync talks to it.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://mail.corp.example/EWS/Exchange.asmx`.
    pub url: url::Url,
    /// The service account.
    pub auth: Auth,
    /// The `RequestServerVersion`.
    pub version: Version,
    /// Impersonation or delegate access.
    pub access: Access,
    /// The zone requests give times in (`TimeZoneContext`).
    pub zone: Option<WindowsZone>,
    /// One request's time limit.
    pub timeout: Duration,
    /// Attempts of one request while the server says it is busy.
    pub max_attempts: u32,
    /// Requests in flight at once for this instance, under the server's throttling
    /// policy (`EWSMaxConcurrency` is 10 by default on Exchange 2010, 27 from 2013).
    pub max_concurrency: usize,
    /// CA certificates (PEM) trusted besides the public roots: a company's own CA.
    pub ca_pem: Option<String>,
    /// Where requests may go [default: public addresses only].
    pub outbound: kalsync_outbound::OutboundPolicy,
}

impl Settings {
    /// Defaults for `url` and `auth`: Exchange 2013 SP1, impersonation, 30 s, 4 attempts.
    pub fn new(url: url::Url, auth: Auth) -> Settings {
        Settings {
            url,
            auth,
            version: Version::Exchange2013Sp1,
            access: Access::Impersonation,
            zone: None,
            timeout: Duration::from_secs(30),
            max_attempts: 4,
            max_concurrency: 10,
            ca_pem: None,
            outbound: kalsync_outbound::OutboundPolicy::default(),
        }
    }
}

/// What one read of a mailbox's window found.
#[derive(Debug, Clone, Default)]
pub struct CalendarRead {
    /// The bookings.
    pub bookings: Vec<Booking>,
    /// Items that could not be read, with why: left out, the rest kept.
    pub rejected: Vec<(String, String)>,
}

/// A client for one Exchange server.
#[derive(Clone)]
pub struct EwsClient {
    http: reqwest::Client,
    ntlm: Option<std::sync::Arc<crate::ntlm::NtlmPool>>,
    /// Bounds the requests in flight (streaming connections are not counted: they
    /// wait, they do not work the server).
    gate: std::sync::Arc<tokio::sync::Semaphore>,
    settings: Settings,
}

impl std::fmt::Debug for EwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EwsClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The most entries one calendar view asks for; a fuller window is halved.
const VIEW_PAGE: u32 = 500;
/// Items per `GetItem`.
const ITEM_BATCH: usize = 100;
/// How small a window may be halved to.
const SMALLEST_WINDOW: SignedDuration = SignedDuration::from_mins(15);

impl EwsClient {
    /// A client; fails only when the HTTP stack cannot start.
    pub fn new(settings: Settings) -> Result<EwsClient, EwsError> {
        let roots = match &settings.ca_pem {
            Some(pem) => crate::tls::certificates(pem)?,
            None => Vec::new(),
        };
        settings
            .outbound
            .check_url(&settings.url)
            .map_err(|e| EwsError::Transport(e.to_string()))?;
        let mut http = settings
            .outbound
            .http()
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(60));
        for der in &roots {
            let cert = reqwest::Certificate::from_der(der)
                .map_err(|e| EwsError::Transport(format!("a trusted CA certificate: {e}")))?;
            http = http.add_root_certificate(cert);
        }
        let http = http
            .build()
            .map_err(|e| EwsError::Transport(e.to_string()))?;
        let ntlm = match &settings.auth {
            Auth::Ntlm { username, password } => {
                Some(std::sync::Arc::new(crate::ntlm::NtlmPool::new(
                    settings.url.clone(),
                    username.clone(),
                    password.clone(),
                    settings.timeout,
                    roots,
                    settings.outbound.clone(),
                )))
            }
            _ => None,
        };
        Ok(EwsClient {
            http,
            ntlm,
            gate: std::sync::Arc::new(tokio::sync::Semaphore::new(settings.max_concurrency.max(1))),
            settings,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The request context for `mailbox`.
    pub fn context<'a>(&self, mailbox: &'a str) -> Context<'a> {
        Context {
            version: self.settings.version,
            access: self.settings.access,
            mailbox,
            zone: self.settings.zone,
        }
    }

    /// Sends a request for `mailbox` and returns the answer's text, waiting out
    /// `ErrorServerBusy` up to the attempt limit.
    pub async fn call(&self, request: &Request, mailbox: &str) -> Result<String, EwsError> {
        Ok(self.call_with(request, mailbox, None).await?.0)
    }

    /// A streaming `Subscribe` for `mailbox` inside `group`: routed to the group's
    /// anchor with server affinity, so every subscription of the group lives on the
    /// back end its connection reaches. The first answer's `X-BackEndOverrideCookie`
    /// is kept in the group. Returns the subscription id.
    pub async fn subscribe_streaming(
        &self,
        mailbox: &str,
        group: &mut Affinity,
    ) -> Result<String, EwsError> {
        let request = request::subscribe(&self.context(mailbox), &request::Subscription::Streaming);
        let (answer, cookie) = self.call_with(&request, mailbox, Some(group)).await?;
        let id = response::subscribed(&answer)?.id;
        if group.cookie.is_none() {
            group.cookie = cookie;
        }
        Ok(id)
    }

    /// [`EwsClient::call`], routed by `affinity` when given; also the back-end cookie
    /// the answer set, if any.
    async fn call_with(
        &self,
        request: &Request,
        mailbox: &str,
        affinity: Option<&Affinity>,
    ) -> Result<(String, Option<String>), EwsError> {
        let envelope = request.envelope();
        let mut wait = Duration::from_secs(1);
        let mut attempt = 1;
        loop {
            let sent = {
                let _permit = self.gate.acquire().await;
                self.post(&envelope, request, mailbox, affinity).await
            };
            match sent {
                Err(e) if e.is_throttling() && attempt < self.settings.max_attempts => {
                    let pause = e.back_off().unwrap_or(wait).min(Duration::from_secs(300));
                    tracing::debug!(
                        mailbox,
                        pause_ms = pause.as_millis() as u64,
                        "exchange is busy; waiting"
                    );
                    tokio::time::sleep(pause).await;
                    wait = (wait * 2).min(Duration::from_secs(60));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The headers of a request for `mailbox`: under impersonation `X-AnchorMailbox`
    /// (the group's anchor when routed by `affinity`, with `X-PreferServerAffinity` and
    /// the back-end cookie once known).
    fn headers(
        &self,
        request: &Request,
        mailbox: &str,
        affinity: Option<&Affinity>,
    ) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("content-type", "text/xml; charset=utf-8".to_owned()),
            ("soapaction", format!("\"{}\"", request.soap_action())),
        ];
        if self.settings.access == Access::Impersonation {
            let anchor = affinity.map_or(mailbox, |a| a.anchor.as_str());
            headers.push(("x-anchormailbox", anchor.to_owned()));
        }
        if let Some(a) = affinity {
            headers.push(("x-preferserveraffinity", "true".to_owned()));
            if let Some(cookie) = &a.cookie {
                headers.push(("cookie", format!("{BACKEND_COOKIE}={cookie}")));
            }
        }
        headers
    }

    async fn post(
        &self,
        envelope: &str,
        request: &Request,
        mailbox: &str,
        affinity: Option<&Affinity>,
    ) -> Result<(String, Option<String>), EwsError> {
        let headers = self.headers(request, mailbox, affinity);
        let (status, text, cookie) = match &self.ntlm {
            Some(pool) => {
                let answer = pool.post(&headers, envelope).await?;
                let status = reqwest::StatusCode::from_u16(answer.status)
                    .map_err(|e| EwsError::Transport(e.to_string()))?;
                (status, answer.body, answer.cookie)
            }
            None => self.post_plain(&headers, envelope).await?,
        };
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(EwsError::Unauthorized(
                "Exchange refused the service account's credentials (401)".into(),
            ));
        }
        if status.is_success() || status == reqwest::StatusCode::INTERNAL_SERVER_ERROR {
            // A fault comes with 500; `outcome` reads it.
            if !status.is_success() {
                response::outcome(&text)?;
            }
            return Ok((text, cookie));
        }
        Err(EwsError::Transport(format!(
            "Exchange answered HTTP {status}{}",
            if text.trim_start().starts_with('<') && text.contains("html") {
                " with an HTML page (a proxy or a login page?)"
            } else {
                ""
            }
        )))
    }

    /// One POST with Basic or bearer credentials.
    async fn post_plain(
        &self,
        headers: &[(&str, String)],
        envelope: &str,
    ) -> Result<(reqwest::StatusCode, String, Option<String>), EwsError> {
        let answer = self
            .send_plain(headers, envelope.to_owned(), self.settings.timeout)
            .await?;
        let status = answer.status();
        let cookie = backend_cookie(
            answer
                .headers()
                .get_all(reqwest::header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        if answer
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER as u64)
        {
            return Err(EwsError::TooLarge { limit: MAX_ANSWER });
        }
        Ok((status, read_capped(answer).await?, cookie))
    }

    /// One POST with Basic or bearer credentials, its answer not yet read. With OAuth, a
    /// 401 fetches a fresh token and sends once more.
    async fn send_plain(
        &self,
        headers: &[(&str, String)],
        envelope: String,
        timeout: Duration,
    ) -> Result<reqwest::Response, EwsError> {
        let mut refreshed = false;
        loop {
            let mut http = self
                .http
                .post(self.settings.url.clone())
                .timeout(timeout)
                .body(envelope.clone());
            for (k, v) in headers {
                http = http.header(*k, v.as_str());
            }
            http = match &self.settings.auth {
                Auth::Basic { username, password } => {
                    http.basic_auth(username, Some(password.expose_secret()))
                }
                Auth::Bearer(token) => http.bearer_auth(token.expose_secret()),
                Auth::OAuth(tokens) => http.bearer_auth(tokens.token().await?.expose_secret()),
                Auth::Ntlm { .. } => http,
            };
            let answer = http
                .send()
                .await
                .map_err(|e| EwsError::Transport(e.without_url().to_string()))?;
            match &self.settings.auth {
                Auth::OAuth(tokens)
                    if answer.status() == reqwest::StatusCode::UNAUTHORIZED && !refreshed =>
                {
                    tokens.invalidate().await;
                    refreshed = true;
                }
                _ => return Ok(answer),
            }
        }
    }

    /// Sends a group's `GetStreamingEvents` request, routed to the back end its
    /// subscriptions live on, and returns the connection's parts as they arrive.
    pub async fn stream(
        &self,
        request: &Request,
        group: &Affinity,
    ) -> Result<EventStream, EwsError> {
        let envelope = request.envelope();
        let headers = self.headers(request, &group.anchor, Some(group));
        use futures_util::StreamExt as _;
        let (status, body): (u16, BoxStream) = match &self.ntlm {
            Some(pool) => {
                let (status, body) = pool.open(&headers, &envelope).await?;
                (status, body.boxed())
            }
            None => {
                // A stream is held for up to half an hour: no shorter overall timeout.
                let answer = self
                    .send_plain(&headers, envelope, Duration::from_secs(40 * 60))
                    .await?;
                (
                    answer.status().as_u16(),
                    answer
                        .bytes_stream()
                        .map(|r| r.map_err(|e| EwsError::Transport(e.without_url().to_string())))
                        .boxed(),
                )
            }
        };
        if status == 401 {
            return Err(EwsError::Unauthorized(
                "Exchange refused the service account's credentials (401)".into(),
            ));
        }
        let mut stream = EventStream {
            body,
            buffer: Vec::new(),
            searched: 0,
            pending: std::collections::VecDeque::new(),
        };
        if status != 200 {
            // A fault: the whole answer is one envelope.
            return match stream.next().await {
                Some(Err(e)) => Err(e),
                _ => Err(EwsError::Transport(format!(
                    "Exchange answered HTTP {status}"
                ))),
            };
        }
        Ok(stream)
    }

    /// Every booking of `mailbox` overlapping `[start, end)`, read with `shape`;
    /// all-day items fall back to `zone` for their dates.
    pub async fn read_window(
        &self,
        mailbox: &str,
        start: Timestamp,
        end: Timestamp,
        shape: Shape,
        zone: &Zone,
    ) -> Result<CalendarRead, EwsError> {
        let ctx = self.context(mailbox);
        let mut ids: Vec<ItemRef> = Vec::new();
        let mut seen = HashSet::new();
        let mut windows = vec![(start, end)];
        while let Some((from, to)) = windows.pop() {
            let request = request::find_calendar_view(&ctx, from, to, VIEW_PAGE);
            let page = response::calendar_view(&self.call(&request, mailbox).await?)?;
            if !page.complete && to.duration_since(from) > SMALLEST_WINDOW {
                // More than a page in this window: read each half instead.
                let middle = from + to.duration_since(from) / 2;
                windows.push((middle, to));
                windows.push((from, middle));
                continue;
            }
            for item in page.items {
                if seen.insert(item.item.id.clone()) {
                    ids.push(item.item);
                }
            }
        }
        let mut read = CalendarRead::default();
        for batch in ids.chunks(ITEM_BATCH) {
            let request = request::get_items(&ctx, batch, shape);
            let items = response::items(&self.call(&request, mailbox).await?)?;
            for (asked, item) in batch.iter().zip(items) {
                match item.and_then(|i| i.to_booking(zone)) {
                    Ok(b) => read.bookings.push(b),
                    // Deleted since the view was read: nothing to keep.
                    Err(e) if e.code() == Some("ErrorItemNotFound") => {}
                    Err(e) => read.rejected.push((asked.id.clone(), e.to_string())),
                }
            }
        }
        Ok(read)
    }

    /// Shortens item `id` of `mailbox` to end at `end`, telling no one — only an
    /// appointment the mailbox organised that is not a meeting: `Some(why)` when it is
    /// left as it is.
    pub async fn shorten_item(
        &self,
        mailbox: &str,
        id: &str,
        end: Timestamp,
    ) -> Result<Option<&'static str>, EwsError> {
        let ctx = self.context(mailbox);
        let flags = response::meeting_flags(
            &self
                .call(&request::get_meeting_flags(&ctx, id), mailbox)
                .await?,
        )?;
        if !flags.organised {
            return Ok(Some("the person did not organise it"));
        }
        if flags.is_meeting {
            return Ok(Some("a meeting with attendees"));
        }
        response::updated(
            &self
                .call(&request::update_item_end(&ctx, &flags.item, end), mailbox)
                .await?,
        )?;
        Ok(None)
    }

    /// `mailbox`'s automatic replies (`GetUserOofSettings`): off, on, or scheduled — the
    /// texts stay in the answer.
    pub async fn automatic_replies(
        &self,
        mailbox: &str,
    ) -> Result<kalsync_core::AutomaticReplies, EwsError> {
        let request = request::get_user_oof_settings(&self.context(mailbox));
        response::oof_settings(&self.call(&request, mailbox).await?)
    }

    /// Whether anything in `mailbox`'s calendar was created, changed or deleted since
    /// `sync_state` (`SyncFolderItems`, ids only, paged to the end), and the state to
    /// keep. From no state every item counts as new: the first call primes the state.
    /// A state Exchange no longer knows fails with `ErrorInvalidSyncStateData`.
    pub async fn folder_changes(
        &self,
        mailbox: &str,
        sync_state: Option<&str>,
    ) -> Result<FolderChanges, EwsError> {
        let ctx = self.context(mailbox);
        let mut state = sync_state.map(str::to_owned);
        let mut changed = false;
        for _ in 0..SYNC_PAGES {
            let request = request::sync_folder_items(&ctx, state.as_deref(), SYNC_PAGE);
            let page = response::sync_page(&self.call(&request, mailbox).await?)?;
            changed |= !page.changes.is_empty();
            state = Some(page.sync_state);
            if page.complete {
                break;
            }
        }
        // Past the page bound the rest waits for the next call, from the state reached.
        Ok(FolderChanges {
            changed,
            sync_state: state.unwrap_or_default(),
        })
    }
}

/// The cookie Exchange 2013+ names the back end of a server-affinity request with.
const BACKEND_COOKIE: &str = "X-BackEndOverrideCookie";

/// The `X-BackEndOverrideCookie` value among `Set-Cookie` headers.
pub(crate) fn backend_cookie<'a>(set_cookies: impl Iterator<Item = &'a str>) -> Option<String> {
    set_cookies.into_iter().find_map(|c| {
        let (name, rest) = c.split_once('=')?;
        (name.trim().eq_ignore_ascii_case(BACKEND_COOKIE))
            .then(|| rest.split(';').next().unwrap_or("").trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// How one streaming group reaches its back end (Exchange 2013+): every `Subscribe`
/// of the group and its `GetStreamingEvents` carry the same `X-AnchorMailbox` and
/// `X-PreferServerAffinity`, and the connection the back-end cookie the first
/// `Subscribe` got. Without it a front end may route the connection to a back end that
/// does not hold some of the group's subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affinity {
    /// The group's anchor mailbox (its first member).
    pub anchor: String,
    /// `X-BackEndOverrideCookie`, once an answer set it.
    pub cookie: Option<String>,
}

impl Affinity {
    /// A group anchored at `mailbox`, no cookie yet.
    pub fn new(mailbox: &str) -> Affinity {
        Affinity {
            anchor: mailbox.to_owned(),
            cookie: None,
        }
    }
}

/// What `SyncFolderItems` found since a kept state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderChanges {
    /// Some item was created, changed or deleted.
    pub changed: bool,
    /// The state to keep and resume from.
    pub sync_state: String,
}

/// Changes per `SyncFolderItems` (Exchange's maximum).
const SYNC_PAGE: u32 = 512;
/// Pages one `folder_changes` reads at most.
const SYNC_PAGES: usize = 20;

async fn read_capped(mut answer: reqwest::Response) -> Result<String, EwsError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|e| EwsError::Transport(e.without_url().to_string()))?
    {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(EwsError::TooLarge { limit: MAX_ANSWER });
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| EwsError::Malformed("the answer is not UTF-8".into()))
}

type BoxStream = futures_util::stream::BoxStream<'static, Result<bytes::Bytes, EwsError>>;

/// The parts of a streaming answer as they arrive: Exchange writes one whole SOAP
/// envelope per part on one HTTP answer.
pub struct EventStream {
    body: BoxStream,
    buffer: Vec<u8>,
    /// How much of `buffer` was searched for an envelope's end without finding one: a
    /// new chunk is searched from there, so a long part costs its length once, not
    /// once per chunk.
    searched: usize,
    pending: std::collections::VecDeque<String>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The next part; `None` when the server ended the answer.
    pub async fn next(&mut self) -> Option<Result<response::StreamPart, EwsError>> {
        use futures_util::StreamExt as _;
        loop {
            if let Some(part) = self.pending.pop_front() {
                return Some(response::stream_part(&part));
            }
            match self.body.next().await {
                Some(Ok(bytes)) => {
                    self.buffer.extend_from_slice(&bytes);
                    while let Some(end) = envelope_end(&self.buffer, self.searched) {
                        self.searched = 0;
                        let part: Vec<u8> = self.buffer.drain(..end).collect();
                        match String::from_utf8(part) {
                            Ok(text) => self.pending.push_back(text),
                            Err(_) => {
                                return Some(Err(EwsError::Malformed(
                                    "a stream part is not UTF-8".into(),
                                )));
                            }
                        }
                    }
                    self.searched = self.buffer.len();
                    if self.buffer.len() > MAX_ANSWER {
                        self.buffer.clear();
                        self.searched = 0;
                        return Some(Err(EwsError::TooLarge { limit: MAX_ANSWER }));
                    }
                }
                Some(Err(e)) => return Some(Err(e)),
                None => {
                    let rest = std::mem::take(&mut self.buffer);
                    if rest.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    return Some(Err(EwsError::Malformed(
                        "the stream ended in the middle of a part".into(),
                    )));
                }
            }
        }
    }
}

/// Where the first complete envelope in `buffer` ends: after `</Envelope>` or
/// `</prefix:Envelope>`. The first `searched` bytes are known to hold no end, so the
/// search starts just before them (an end tag may straddle two chunks).
fn envelope_end(buffer: &[u8], searched: usize) -> Option<usize> {
    const TAG: &[u8] = b"Envelope>";
    let mut from = searched.saturating_sub(TAG.len() - 1).min(buffer.len());
    while let Some(i) = buffer[from..].windows(TAG.len()).position(|w| w == TAG) {
        let at = from + i;
        let mut j = at;
        while j > 0
            && (buffer[j - 1].is_ascii_alphanumeric()
                || matches!(buffer[j - 1], b'_' | b'-' | b'.' | b':'))
        {
            j -= 1;
        }
        if j >= 2 && &buffer[j - 2..j] == b"</" {
            return Some(at + TAG.len());
        }
        from = at + TAG.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::envelope_end;

    #[test]
    fn envelopes_are_cut_where_they_end() {
        let two = b"<s:Envelope><a/></s:Envelope><soap:Envelope></soap:Envelope>";
        assert_eq!(envelope_end(two, 0), Some(29));
        assert_eq!(envelope_end(&two[29..], 0), Some(two.len() - 29));
        assert_eq!(envelope_end(b"<Envelope><x>Envelope></x>", 0), None);
        assert_eq!(envelope_end(b"<Envelope></Envelope>", 0), Some(21));
    }

    #[test]
    fn a_search_goes_on_where_the_last_stopped_even_inside_an_end_tag() {
        let part = b"<s:Envelope><a/></s:Envelope>";
        // Arriving a byte at a time, searched up to the byte before each new one.
        let mut found = None;
        for n in 1..=part.len() {
            found = envelope_end(&part[..n], n - 1);
            if found.is_some() {
                assert_eq!(n, part.len());
            }
        }
        assert_eq!(found, Some(part.len()));
    }
}

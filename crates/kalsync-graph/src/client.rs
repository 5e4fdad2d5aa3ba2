//! The Graph client: one HTTP client with timeouts and injected endpoints, the
//! concurrency limits Graph sets (4 per mailbox, a global cap), `Retry-After`, capped
//! bodies, `calendarView` paging, `$batch`, mailbox settings and subscriptions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use kalsync_core::{Booking, Window, Zone};
use rand::Rng as _;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::auth::{AppCredentials, TokenSource};
use crate::error::GraphError;
use crate::model::{
    BatchResponse, ErrorBody, Event, EventError, MailboxSettings, MailboxSettingsJson, Page, select,
};

/// Where Graph and its login live: the public cloud, a national cloud, or a simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Graph's versioned root, ending in `/`, e.g. `https://graph.microsoft.com/v1.0/`.
    pub graph: Url,
    /// The login host, e.g. `https://login.microsoftonline.com/`.
    pub login: Url,
    /// The app-only scope, e.g. `https://graph.microsoft.com/.default`.
    pub scope: String,
}

impl Endpoints {
    /// Microsoft's global cloud.
    pub fn global() -> Self {
        Endpoints {
            graph: Url::parse("https://graph.microsoft.com/v1.0/")
                .unwrap_or_else(|_| unreachable_url()),
            login: Url::parse("https://login.microsoftonline.com/")
                .unwrap_or_else(|_| unreachable_url()),
            scope: "https://graph.microsoft.com/.default".into(),
        }
    }

    /// Graph and login both served from `base` (the simulator): `base/v1.0/` and `base/`.
    pub fn at(base: &Url) -> Result<Self, url::ParseError> {
        Ok(Endpoints {
            graph: base.join("v1.0/")?,
            login: base.clone(),
            scope: "https://graph.microsoft.com/.default".into(),
        })
    }
}

fn unreachable_url() -> Url {
    // Only reached if a constant URL above failed to parse, which it does not.
    Url::parse("http://127.0.0.1/").unwrap_or_else(|_| panic!("constant URL"))
}

/// Limits and timeouts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent requests per mailbox (Graph allows 4).
    pub per_mailbox: usize,
    /// Concurrent requests in all.
    pub global: usize,
    /// Retries after throttling or a transport failure.
    pub max_retries: u32,
    /// Longest wait for one retry; longer `Retry-After`s give up with `Throttled`.
    pub max_retry_wait: Duration,
    /// Request timeout.
    pub timeout: Duration,
    /// Largest body read.
    pub max_body_bytes: usize,
    /// `$top` of a `calendarView` page.
    pub page_size: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_mailbox: 4,
            global: 32,
            max_retries: 4,
            max_retry_wait: Duration::from_secs(120),
            timeout: Duration::from_secs(30),
            max_body_bytes: 16 * 1024 * 1024,
            page_size: 100,
        }
    }
}

/// What a read asks for beyond the properties always selected.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Read subjects (a rule needs prefixes, or titles are shown).
    pub subject: bool,
    /// Read locations (shown).
    pub location: bool,
}

/// One mailbox's window as read.
#[derive(Debug, Clone, Default)]
pub struct CalendarRead {
    /// The bookings.
    pub bookings: Vec<Booking>,
    /// Events that could not be read, with why; the caller keeps what it had for them.
    pub rejected: Vec<(String, EventError)>,
    /// Pages fetched.
    pub pages: u32,
}

impl CalendarRead {
    /// Reads one page's JSON text and returns its `@odata.nextLink`. Events that cannot
    /// be read go to `rejected`: the page is read typed in one pass, and only when that
    /// fails again event by event, so one odd event spoils nothing else.
    pub fn read_page(&mut self, text: &str, zone: &Zone) -> Result<Option<String>, GraphError> {
        if let Ok(page) = serde_json::from_str::<Page<Event>>(text) {
            self.pages += 1;
            for event in page.value {
                match event.into_booking(zone) {
                    Ok(b) => self.bookings.push(b),
                    Err(rejected) => self.rejected.push(rejected),
                }
            }
            return Ok(page.next_link);
        }
        let page: Page<Box<RawValue>> =
            serde_json::from_str(text).map_err(|e| GraphError::Malformed(e.to_string()))?;
        self.push_page(page.value, zone);
        Ok(page.next_link)
    }

    /// Adds one page of events, each from its own text; those that cannot be read go to
    /// `rejected`.
    pub fn push_page(&mut self, values: Vec<Box<RawValue>>, zone: &Zone) {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Option<String>,
        }
        self.pages += 1;
        for value in values {
            match serde_json::from_str::<Event>(value.get()) {
                Ok(event) => match event.into_booking(zone) {
                    Ok(b) => self.bookings.push(b),
                    Err(rejected) => self.rejected.push(rejected),
                },
                Err(e) => {
                    let id = serde_json::from_str::<IdOnly>(value.get())
                        .ok()
                        .and_then(|i| i.id)
                        .unwrap_or_else(|| "?".into());
                    self.rejected
                        .push((id, EventError::NotAnEvent(e.to_string())));
                }
            }
        }
    }
}

/// One mailbox of a bulk read, and what its read gave.
pub type MailboxRead = (String, Result<CalendarRead, GraphError>);

/// A subscription to request.

#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// The mailbox (id or UPN).
    pub user: String,
    /// Where change notifications go.
    pub notification_url: Url,
    /// Where lifecycle notifications go.
    pub lifecycle_url: Option<Url>,
    /// The secret echoed in every notification.
    pub client_state: SecretString,
    /// When it expires (at most [`MAX_EVENT_SUBSCRIPTION`] ahead).
    pub expires: Timestamp,
}

/// Outlook event subscriptions live at most 10,080 minutes; a little less is asked for.
pub const MAX_EVENT_SUBSCRIPTION: Duration = Duration::from_secs(10_070 * 60);

/// A subscription as Graph holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// Id.
    pub id: String,
    /// e.g. `/users/{id}/events`.
    #[serde(default)]
    pub resource: String,
    /// Expiry, RFC 3339.
    pub expiration_date_time: String,
}

impl Subscription {
    /// The expiry as an instant.
    pub fn expires(&self) -> Result<Timestamp, GraphError> {
        self.expiration_date_time.parse().map_err(|_| {
            GraphError::Malformed(format!(
                "expirationDateTime `{}`",
                self.expiration_date_time
            ))
        })
    }
}

/// Request counters, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    /// HTTP requests sent.
    pub requests: AtomicU64,
    /// Answers that were 429/503/504.
    pub throttled: AtomicU64,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    limits: Limits,
    tokens: TokenSource,
    /// The app's client id and tenant (the app's presence session is named by it).
    app: (String, String),
    global: Arc<Semaphore>,
    mailboxes: Mutex<HashMap<String, Arc<Semaphore>>>,
    counters: Counters,
}

/// One request inside a `$batch`.
pub(crate) struct BatchPart {
    /// The mailbox it holds a slot of (empty: none).
    pub(crate) mailbox: String,
    /// `GET` or `POST`.
    pub(crate) method: Method,
    /// The absolute URL (made relative for the batch).
    pub(crate) url: Url,
    /// A JSON body, for a `POST`.
    pub(crate) body: Option<serde_json::Value>,
}

impl BatchPart {
    /// Whether sending it twice does no harm (a GET; the presence POSTs set a state).
    fn idempotent(&self) -> bool {
        self.method == Method::GET || self.url.path().contains("/presence/")
    }
}

/// A Graph client for one app registration in one tenant. Cheap to clone.
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Vec<u8>,
}

impl GraphClient {
    /// A client with its own HTTP client, sending only where `outbound` permits.
    pub fn new(
        endpoints: Endpoints,
        credentials: AppCredentials,
        limits: Limits,
        outbound: &kalsync_outbound::OutboundPolicy,
    ) -> Result<Self, GraphError> {
        for url in [&endpoints.graph, &endpoints.login] {
            outbound
                .check_url(url)
                .map_err(|e| GraphError::Transport(e.to_string()))?;
        }
        let http = outbound
            .http()
            .timeout(limits.timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(limits.global.max(1))
            .user_agent(concat!("Kalsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GraphError::Transport(e.to_string()))?;
        let app = (credentials.client_id.clone(), credentials.tenant.clone());
        let tokens = TokenSource::new(
            http.clone(),
            &endpoints.login,
            &endpoints.scope,
            credentials,
        )?;
        Ok(GraphClient {
            inner: Arc::new(Inner {
                http,
                global: Arc::new(Semaphore::new(limits.global.max(1))),
                endpoints,
                limits,
                tokens,
                app,
                mailboxes: Mutex::new(HashMap::new()),
                counters: Counters::default(),
            }),
        })
    }

    /// The app's client id.
    pub fn client_id(&self) -> &str {
        &self.inner.app.0
    }

    /// The tenant the app signs in to, as configured (an id or a domain).
    pub fn tenant(&self) -> &str {
        &self.inner.app.1
    }

    /// Request counters.
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Checks the credentials by fetching a token.
    pub async fn check_credentials(&self) -> Result<(), GraphError> {
        self.inner
            .tokens
            .token()
            .await
            .map(|_| ())
            .map_err(GraphError::from)
    }

    fn mailbox_gate(&self, mailbox: &str) -> Arc<Semaphore> {
        let mut map = self
            .inner
            .mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.entry(mailbox.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.limits.per_mailbox.max(1))))
            .clone()
    }

    async fn mailbox_permits(&self, mailboxes: &[&str]) -> Vec<OwnedSemaphorePermit> {
        // A fixed order keeps two batches from waiting on each other.
        let mut names: Vec<String> = mailboxes.iter().map(|m| m.to_ascii_lowercase()).collect();
        names.sort();
        names.dedup();
        let mut permits = Vec::with_capacity(names.len());
        for name in names {
            if let Ok(p) = self.mailbox_gate(&name).acquire_owned().await {
                permits.push(p);
            }
        }
        permits
    }

    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, GraphError> {
        let mut url = self.inner.endpoints.graph.clone();
        url.path_segments_mut()
            .map_err(|_| GraphError::Malformed("the Graph endpoint cannot take a path".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends one request with the limits, token and retry rules; returns the final answer.
    pub(crate) async fn execute(
        &self,
        mailboxes: &[&str],
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<Answer, GraphError> {
        let inner = &self.inner;
        let _mailbox_permits = self.mailbox_permits(mailboxes).await;
        let mut refreshed_token = false;
        let mut attempt = 0;
        loop {
            let token = inner.tokens.token().await?;
            let permit = inner
                .global
                .acquire()
                .await
                .map_err(|_| GraphError::Transport("client closed".into()))?;
            let mut request = inner
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token.expose_secret())
                .header("Prefer", "outlook.timezone=\"UTC\"");
            if let Some(body) = body {
                request = request.json(body);
            }
            inner.counters.requests.fetch_add(1, Ordering::Relaxed);
            let result = request.send().await;
            let wait = match result {
                Err(e) if idempotent && attempt < inner.limits.max_retries => {
                    tracing::debug!(error = %e.without_url(), "Graph request failed, retrying");
                    backoff(attempt)
                }
                Err(e) => return Err(GraphError::Transport(e.without_url().to_string())),
                Ok(response) => {
                    let status = response.status();
                    if matches!(status.as_u16(), 429 | 503 | 504) {
                        inner.counters.throttled.fetch_add(1, Ordering::Relaxed);
                        let wait =
                            kalsync_outbound::retry_after(response.headers(), Timestamp::now())
                                .unwrap_or_else(|| backoff(attempt));
                        if attempt >= inner.limits.max_retries || wait > inner.limits.max_retry_wait
                        {
                            return Err(GraphError::Throttled { retry_after: wait });
                        }
                        wait
                    } else if status == StatusCode::UNAUTHORIZED && !refreshed_token {
                        // The cached token may have been revoked or expired early.
                        refreshed_token = true;
                        inner.tokens.invalidate().await;
                        drop(permit);
                        continue;
                    } else {
                        let body = read_capped(response, inner.limits.max_body_bytes).await?;
                        return Ok(Answer { status, body });
                    }
                }
            };
            drop(permit);
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// `execute`, then a 2xx body parsed as `T` or the error mapped.
    pub(crate) async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        mailboxes: &[&str],
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        idempotent: bool,
    ) -> Result<T, GraphError> {
        let answer = self
            .execute(mailboxes, method, url, body, idempotent)
            .await?;
        if !answer.status.is_success() {
            return Err(status_error(answer.status.as_u16(), &answer.body));
        }
        serde_json::from_slice(&answer.body).map_err(|e| GraphError::Malformed(e.to_string()))
    }

    pub(crate) fn check_link(&self, link: &str) -> Result<Url, GraphError> {
        let url =
            Url::parse(link).map_err(|_| GraphError::Malformed(format!("nextLink `{link}`")))?;
        let base = &self.inner.endpoints.graph;
        // The token goes with the request: only ever to the configured Graph host.
        if url.origin() != base.origin() || !url.path().starts_with(base.path()) {
            return Err(GraphError::ForeignLink(link.to_owned()));
        }
        Ok(url)
    }

    fn calendar_view_url(
        &self,
        user: &str,
        window: Window,
        options: ReadOptions,
    ) -> Result<Url, GraphError> {
        let mut url = self.url(&["users", user, "calendarView"])?;
        url.query_pairs_mut()
            .append_pair("startDateTime", &window.start.to_string())
            .append_pair("endDateTime", &window.end.to_string())
            .append_pair("$select", &select(options.subject, options.location))
            .append_pair("$top", &self.inner.limits.page_size.to_string());
        Ok(url)
    }

    /// Reads one mailbox's window, every page.
    pub async fn calendar_view(
        &self,
        user: &str,
        window: Window,
        options: ReadOptions,
        zone: &Zone,
    ) -> Result<CalendarRead, GraphError> {
        let first = self.calendar_view_url(user, window, options)?;
        let mut read = CalendarRead::default();
        self.follow_pages(user, Some(first), &mut read, zone)
            .await?;
        Ok(read)
    }

    async fn follow_pages(
        &self,
        user: &str,
        mut next: Option<Url>,
        read: &mut CalendarRead,
        zone: &Zone,
    ) -> Result<(), GraphError> {
        while let Some(url) = next.take() {
            if read.pages >= 1000 {
                return Err(GraphError::Malformed(
                    "more than 1000 pages for one window".into(),
                ));
            }
            let answer = self.execute(&[user], Method::GET, url, None, true).await?;
            if !answer.status.is_success() {
                return Err(status_error(answer.status.as_u16(), &answer.body));
            }
            let text = std::str::from_utf8(&answer.body)
                .map_err(|_| GraphError::Malformed("the page is not UTF-8".into()))?;
            next = read
                .read_page(text, zone)?
                .as_deref()
                .map(|l| self.check_link(l))
                .transpose()?;
        }
        Ok(())
    }

    /// Reads many mailboxes' windows with `$batch` (20 a request), each followed to its
    /// last page. Batches run concurrently under the global cap.
    pub async fn calendar_views(
        &self,
        users: &[String],
        window: Window,
        options: ReadOptions,
        zone: &Zone,
    ) -> Vec<MailboxRead> {
        let zone = zone.clone();
        self.in_batches(users, move |client, chunk| {
            let zone = zone.clone();
            async move { client.batch_once(chunk, window, options, &zone).await }
        })
        .await
    }

    /// Reads many mailboxes' automatic replies (needs `MailboxSettings.Read`) with
    /// `$batch`, 20 a request, concurrently under the global cap: one answer each, in
    /// order. The reply texts are dropped as the answer is parsed.
    pub async fn automatic_replies(
        &self,
        users: &[String],
    ) -> Vec<Result<kalsync_core::AutomaticReplies, GraphError>> {
        self.in_batches(users, |client, chunk| async move {
            let bodies = client
                .batch_get(&chunk, |user| {
                    client.url(&["users", user, "mailboxSettings", "automaticRepliesSetting"])
                })
                .await;
            bodies
                .into_iter()
                .map(|body| {
                    let setting: crate::model::AutomaticRepliesJson = serde_json::from_str(&body?)
                        .map_err(|e| GraphError::Malformed(e.to_string()))?;
                    setting.read().map_err(GraphError::Malformed)
                })
                .collect()
        })
        .await
    }

    /// Runs `one` over `users` in chunks of 20 (one `$batch` each), concurrently; the
    /// answers in the users' order.
    async fn in_batches<T, F, Fut>(&self, users: &[String], one: F) -> Vec<T>
    where
        F: Fn(GraphClient, Vec<String>) -> Fut,
        Fut: Future<Output = Vec<T>> + Send + 'static,
        T: Send + 'static,
    {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, chunk) in users.chunks(20).enumerate() {
            let work = one(self.clone(), chunk.to_vec());
            tasks.spawn(async move { (index, work.await) });
        }
        let mut results: Vec<(usize, Vec<T>)> = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(r) => results.push(r),
                Err(e) => tracing::error!(error = %e, "a batch task failed"),
            }
        }
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().flat_map(|(_, r)| r).collect()
    }

    async fn batch_once(
        &self,
        users: Vec<String>,
        window: Window,
        options: ReadOptions,
        zone: &Zone,
    ) -> Vec<MailboxRead> {
        let bodies = self
            .batch_get(&users, |user| self.calendar_view_url(user, window, options))
            .await;
        let mut out = Vec::with_capacity(users.len());
        for (user, body) in users.into_iter().zip(bodies) {
            let result = match body {
                Ok(body) => {
                    let mut read = CalendarRead::default();
                    let next = read
                        .read_page(&body, zone)
                        .and_then(|n| n.as_deref().map(|l| self.check_link(l)).transpose());
                    match next {
                        Ok(next) => self
                            .follow_pages(&user, next, &mut read, zone)
                            .await
                            .map(|_| read),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            out.push((user, result));
        }
        out
    }

    /// GETs `url_for(user)` for each of `users` (at most 20) in one `$batch`, items
    /// throttled inside it sent again as Graph asks: each 2xx body, or its error.
    async fn batch_get(
        &self,
        users: &[String],
        url_for: impl Fn(&str) -> Result<Url, GraphError>,
    ) -> Vec<Result<String, GraphError>> {
        let parts: Vec<Result<BatchPart, GraphError>> = users
            .iter()
            .map(|user| {
                Ok(BatchPart {
                    mailbox: user.clone(),
                    method: Method::GET,
                    url: url_for(user)?,
                    body: None,
                })
            })
            .collect();
        self.batch(parts).await
    }

    /// Sends `parts` (at most 20) in one `$batch`, items throttled inside it sent again
    /// as Graph asks: each 2xx body (`null` when it has none), or its error. A part
    /// that could not be made is its own error.
    pub(crate) async fn batch(
        &self,
        parts: Vec<Result<BatchPart, GraphError>>,
    ) -> Vec<Result<String, GraphError>> {
        let mut done: Vec<Option<Result<String, GraphError>>> = parts
            .iter()
            .map(|p| p.as_ref().err().map(|e| Err(e.clone())))
            .collect();
        let mut pending: Vec<usize> = (0..parts.len()).filter(|&i| done[i].is_none()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            let mut requests = Vec::new();
            for &i in &pending {
                let Some(Ok(part)) = parts.get(i) else {
                    continue;
                };
                let url = &part.url;
                let relative = format!(
                    "{}?{}",
                    &url.path()[self.inner.endpoints.graph.path().len() - 1..],
                    url.query().unwrap_or_default()
                );
                let relative = relative.trim_end_matches('?').to_owned();
                let mut request = serde_json::json!({
                    "id": i.to_string(),
                    "method": part.method.as_str(),
                    "url": relative,
                });
                match &part.body {
                    Some(body) => {
                        request["headers"] =
                            serde_json::json!({"Content-Type": "application/json"});
                        request["body"] = body.clone();
                    }
                    None => {
                        request["headers"] =
                            serde_json::json!({"Prefer": "outlook.timezone=\"UTC\""});
                    }
                }
                requests.push(request);
            }
            let body = serde_json::json!({ "requests": requests });
            let names: Vec<&str> = pending
                .iter()
                .filter_map(|&i| parts[i].as_ref().ok())
                .map(|p| p.mailbox.as_str())
                .filter(|m| !m.is_empty())
                .collect();
            let url = match self.url(&["$batch"]) {
                Ok(u) => u,
                Err(e) => {
                    for &i in &pending {
                        done[i] = Some(Err(e.clone()));
                    }
                    break;
                }
            };
            let idempotent = pending
                .iter()
                .all(|&i| parts[i].as_ref().is_ok_and(|p| p.idempotent()));
            let answer: Result<BatchResponse, GraphError> = self
                .call(&names, Method::POST, url, Some(&body), idempotent)
                .await;
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    for &i in &pending {
                        done[i] = Some(Err(e.clone()));
                    }
                    break;
                }
            };
            let mut retry = Vec::new();
            let mut wait = Duration::ZERO;
            for item in answer.responses {
                let Some(i) = item
                    .id
                    .parse::<usize>()
                    .ok()
                    .filter(|i| pending.contains(i))
                else {
                    continue;
                };
                if matches!(item.status, 429 | 503 | 504) {
                    self.inner
                        .counters
                        .throttled
                        .fetch_add(1, Ordering::Relaxed);
                    let after = item
                        .headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                        .and_then(|(_, v)| kalsync_outbound::parse_retry_after(v, Timestamp::now()))
                        .unwrap_or_else(|| backoff(attempt));
                    wait = wait.max(after);
                    retry.push(i);
                    continue;
                }
                let body = item.body.as_deref().map_or("null", RawValue::get);
                done[i] = Some(if (200..300).contains(&item.status) {
                    Ok(body.to_owned())
                } else {
                    Err(status_error(item.status, body.as_bytes()))
                });
            }
            for &i in &pending {
                if done[i].is_none() && !retry.contains(&i) {
                    done[i] = Some(Err(GraphError::Malformed(
                        "the batch answer has no response for this request".into(),
                    )));
                }
            }
            if retry.is_empty() {
                break;
            }
            if attempt >= self.inner.limits.max_retries || wait > self.inner.limits.max_retry_wait {
                for &i in &retry {
                    done[i] = Some(Err(GraphError::Throttled { retry_after: wait }));
                }
                break;
            }
            attempt += 1;
            tokio::time::sleep(wait).await;
            pending = retry;
        }
        done.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(GraphError::Malformed("no answer".into()))))
            .collect()
    }

    /// Shortens event `id` of `user` to end at `end` (needs `Calendars.ReadWrite`) —
    /// only an event the person organised with no attendees: `Some(why)` when it is
    /// left as it is. The attendees are counted, never kept.
    pub async fn shorten_event(
        &self,
        user: &str,
        id: &str,
        end: Timestamp,
    ) -> Result<Option<&'static str>, GraphError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Owned {
            #[serde(default)]
            is_organizer: bool,
            #[serde(default)]
            attendees: Vec<serde::de::IgnoredAny>,
        }
        let mut url = self.url(&["users", user, "events", id])?;
        url.query_pairs_mut()
            .append_pair("$select", "isOrganizer,attendees");
        let owned: Owned = self.call(&[user], Method::GET, url, None, true).await?;
        if !owned.is_organizer {
            return Ok(Some("the person did not organise it"));
        }
        if !owned.attendees.is_empty() {
            return Ok(Some("a meeting with attendees"));
        }
        let url = self.url(&["users", user, "events", id])?;
        let body = serde_json::json!({
            "end": {
                "dateTime": end.strftime("%Y-%m-%dT%H:%M:%S.0000000").to_string(),
                "timeZone": "UTC",
            }
        });
        let answer = self
            .execute(&[user], Method::PATCH, url, Some(&body), false)
            .await?;
        if !answer.status.is_success() {
            return Err(status_error(answer.status.as_u16(), &answer.body));
        }
        Ok(None)
    }

    /// The mailbox's zone and Outlook working hours (needs `MailboxSettings.Read`).
    pub async fn mailbox_settings(&self, user: &str) -> Result<MailboxSettings, GraphError> {
        let mut url = self.url(&["users", user, "mailboxSettings"])?;
        url.query_pairs_mut()
            .append_pair("$select", "timeZone,workingHours");
        let settings: MailboxSettingsJson =
            self.call(&[user], Method::GET, url, None, true).await?;
        Ok(settings.read())
    }

    /// Subscribes to a mailbox's events (created, updated, deleted). Graph validates the
    /// notification URL before it answers.
    pub async fn create_subscription(
        &self,
        new: &NewSubscription,
    ) -> Result<Subscription, GraphError> {
        let mut body = serde_json::json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": new.notification_url.as_str(),
            "resource": format!("/users/{}/events", new.user),
            "expirationDateTime": new.expires.to_string(),
            "clientState": new.client_state.expose_secret(),
            "latestSupportedTlsVersion": "v1_2",
        });
        if let Some(lifecycle) = &new.lifecycle_url {
            body["lifecycleNotificationUrl"] = serde_json::Value::String(lifecycle.to_string());
        }
        let url = self.url(&["subscriptions"])?;
        self.call(&[new.user.as_str()], Method::POST, url, Some(&body), false)
            .await
    }

    /// Extends a subscription.
    pub async fn renew_subscription(
        &self,
        id: &str,
        expires: Timestamp,
    ) -> Result<Subscription, GraphError> {
        let url = self.url(&["subscriptions", id])?;
        let body = serde_json::json!({ "expirationDateTime": expires.to_string() });
        self.call(&[], Method::PATCH, url, Some(&body), true).await
    }

    /// Deletes a subscription; one already gone counts as deleted.
    pub async fn delete_subscription(&self, id: &str) -> Result<(), GraphError> {
        let url = self.url(&["subscriptions", id])?;
        let answer = self.execute(&[], Method::DELETE, url, None, true).await?;
        match answer.status.as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(status_error(status, &answer.body)),
        }
    }
}

/// Maps a non-2xx answer to an error, keeping Graph's code and message.
pub(crate) fn status_error(status: u16, body: &[u8]) -> GraphError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => (e.error.code, e.error.message),
        Err(_) => (
            "(no Graph error body)".into(),
            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        ),
    };
    match status {
        404 => GraphError::NotFound(format!("{code}: {message}")),
        403 => GraphError::Forbidden(format!("{code}: {message}")),
        401 => GraphError::Unauthorized(format!("{code}: {message}")),
        _ => GraphError::Status {
            status,
            code,
            message,
        },
    }
}

/// A response's body, at most `limit` bytes.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, GraphError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(GraphError::TooLarge { limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| GraphError::Transport(e.without_url().to_string()))?
    {
        if body.len() + chunk.len() > limit {
            return Err(GraphError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Exponential back-off with jitter when Graph gives no `Retry-After`: 1 s, 2 s, 4 s …
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(1000u64.saturating_mul(1 << attempt.min(6)));
    let jitter = rand::rng().random_range(0..=base.as_millis() as u64 / 2);
    base + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_graphs_code() {
        let body = br#"{"error":{"code":"ErrorAccessDenied","message":"Access is denied."}}"#;
        assert!(
            matches!(status_error(403, body), GraphError::Forbidden(m) if m.contains("ErrorAccessDenied"))
        );
        assert!(matches!(
            status_error(502, b"<html>Bad gateway</html>"),
            GraphError::Status { status: 502, .. }
        ));
    }

    #[test]
    fn backoff_grows() {
        assert!(backoff(0) >= Duration::from_secs(1) && backoff(0) <= Duration::from_millis(1500));
        assert!(backoff(3) >= Duration::from_secs(8));
    }
}

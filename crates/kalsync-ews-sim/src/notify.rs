//! The simulator's subscriptions: each calendar change becomes an event with a
//! watermark for every subscription on that mailbox — queued for `GetEvents` (pull),
//! POSTed as `SendNotification` (push, with `StatusEvent` keep-alives), or written down
//! an open `GetStreamingEvents` connection (streaming, with keep-alives and a closing
//! status at the connection's timeout).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures_util::stream::BoxStream;
use jiff::Timestamp;
use kalsync_ews::xml::Writer;
use tokio::sync::mpsc;

use crate::ops::{Mailbox, message, messages_in, refusal, response};
use crate::{EwsSim, lock};

/// How a subscription is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Streaming,
    Push { url: String, status_minutes: u64 },
    Pull,
}

#[derive(Debug, Clone)]
struct Event {
    seq: u64,
    kind: &'static str,
    item: String,
    at: Timestamp,
}

#[derive(Debug)]
struct Sub {
    mailbox: String,
    upn: String,
    kind: Kind,
    /// Events not yet fetched (pull) or not yet sent (streaming while disconnected).
    queue: Vec<Event>,
    stream: Option<mpsc::UnboundedSender<String>>,
    last_push: Timestamp,
    /// The mailbox server it lives on.
    back_end: String,
    /// Made afresh (no watermark): changes made before this are not its to report.
    since: Option<Timestamp>,
}

/// The live subscriptions, and each mailbox's recent events: a watermark names a
/// mailbox and a position in its events, so a new subscription from an old watermark
/// gets what happened since.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    subs: HashMap<String, Sub>,
    /// Per mailbox: its last event's number and its recent events.
    log: HashMap<String, (u64, std::collections::VecDeque<Event>)>,
}

/// Events kept per mailbox for subscriptions resuming from a watermark.
const KEPT: usize = 1000;

fn watermark(mailbox: &str, seq: u64) -> String {
    STANDARD.encode(format!("{mailbox}:{seq}"))
}

fn read_watermark(w: &str) -> Option<(String, u64)> {
    let raw = String::from_utf8(STANDARD.decode(w.trim()).ok()?).ok()?;
    let (id, seq) = raw.rsplit_once(':')?;
    Some((id.to_owned(), seq.parse().ok()?))
}

impl Registry {
    pub(crate) fn add(
        &mut self,
        kind: Kind,
        mailbox: &Mailbox,
        from: Option<&str>,
        back_end: String,
    ) -> Result<(String, String), &'static str> {
        let (current, events) = self.log.get(&mailbox.id).cloned().unwrap_or_default();
        let (start, queue) = match from {
            None => (current, Vec::new()),
            Some(w) => {
                let (owner, seq) = read_watermark(w).ok_or("ErrorInvalidWatermark")?;
                let oldest = events.front().map_or(current, |e| e.seq.saturating_sub(1));
                if owner != mailbox.id || seq > current || seq < oldest {
                    return Err("ErrorInvalidWatermark");
                }
                (seq, events.into_iter().filter(|e| e.seq > seq).collect())
            }
        };
        let id = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
        let mark = watermark(&mailbox.id, start);
        self.subs.insert(
            id.clone(),
            Sub {
                mailbox: mailbox.id.clone(),
                upn: mailbox.upn.clone(),
                kind,
                queue,
                stream: None,
                last_push: Timestamp::now(),
                back_end,
                since: from.is_none().then(Timestamp::now),
            },
        );
        Ok((id, mark))
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        self.subs.remove(id).is_some()
    }

    /// Forgets every subscription (the mailboxes' events stay); how many there were.
    pub(crate) fn clear(&mut self) -> usize {
        let n = self.subs.len();
        self.subs.clear();
        n
    }

    pub(crate) fn list(&self) -> Vec<(String, String, &'static str)> {
        let mut out: Vec<_> = self
            .subs
            .iter()
            .map(|(id, s)| {
                let kind = match s.kind {
                    Kind::Streaming => "streaming",
                    Kind::Push { .. } => "push",
                    Kind::Pull => "pull",
                };
                (id.clone(), s.upn.clone(), kind)
            })
            .collect();
        out.sort();
        out
    }

    pub(crate) fn explain(code: &str) -> &'static str {
        match code {
            "ErrorSubscriptionNotFound" => "The specified subscription was not found.",
            "ErrorInvalidWatermark" => {
                "The watermark used for creating this subscription was not recognized."
            }
            "ErrorProxiedSubscriptionCallFailure" => {
                "The subscription lives on another Mailbox server; route the request to it with X-AnchorMailbox, X-PreferServerAffinity and X-BackEndOverrideCookie."
            }
            _ => "The request failed.",
        }
    }

    /// A pull subscription's events after `from`, as a `Notification` element.
    pub(crate) fn pull(&mut self, id: &str, from: &str) -> Result<String, &'static str> {
        let sub = self
            .subs
            .get_mut(id)
            .filter(|s| s.kind == Kind::Pull)
            .ok_or("ErrorSubscriptionNotFound")?;
        let current = self.log.get(&sub.mailbox).map_or(0, |(n, _)| *n);
        let (owner, seq) = read_watermark(from).ok_or("ErrorInvalidWatermark")?;
        if owner != sub.mailbox || seq > current {
            return Err("ErrorInvalidWatermark");
        }
        sub.queue.retain(|e| e.seq > seq);
        let events = std::mem::take(&mut sub.queue);
        Ok(notification(
            id,
            &sub.mailbox,
            Some(&watermark(&sub.mailbox, seq)),
            &events,
            current,
        ))
    }

    /// A new push subscription's events since its watermark, to send at once.
    pub(crate) fn take_replay(&mut self, id: &str) -> Option<(String, String)> {
        let sub = self.subs.get_mut(id)?;
        let Kind::Push { url, .. } = &sub.kind else {
            return None;
        };
        if sub.queue.is_empty() {
            return None;
        }
        let events = std::mem::take(&mut sub.queue);
        let current = self.log.get(&sub.mailbox).map_or(0, |(n, _)| *n);
        let previous = watermark(&sub.mailbox, events[0].seq.saturating_sub(1));
        Some((
            url.clone(),
            push_envelope(&notification(
                id,
                &sub.mailbox,
                Some(&previous),
                &events,
                current,
            )),
        ))
    }
}

/// Sends a new push subscription's catch-up at once.
pub(crate) fn replay(sim: &EwsSim, id: &str) {
    let due = lock(&sim.shared.subscriptions).take_replay(id);
    if let Some((url, body)) = due {
        deliver(sim, id.to_owned(), url, body);
    }
}

/// A `Notification` element: the events, or a `StatusEvent` when there are none.
fn notification(
    id: &str,
    mailbox: &str,
    previous: Option<&str>,
    events: &[Event],
    current: u64,
) -> String {
    let mut x = Writer::default();
    x.open("m:Notification", &[]).leaf("t:SubscriptionId", id);
    if let Some(p) = previous {
        x.leaf("t:PreviousWatermark", p)
            .leaf("t:MoreEvents", "false");
    }
    if events.is_empty() {
        x.open("t:StatusEvent", &[])
            .leaf("t:Watermark", &watermark(mailbox, current))
            .close("t:StatusEvent");
    }
    for e in events {
        let name = format!("t:{}", e.kind);
        x.open(&name, &[])
            .leaf("t:Watermark", &watermark(mailbox, e.seq))
            .leaf(
                "t:TimeStamp",
                &e.at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            )
            .empty("t:ItemId", &[("Id", &e.item), ("ChangeKey", "AAAA")])
            .empty(
                "t:ParentFolderId",
                &[("Id", "calendar"), ("ChangeKey", "AQAAAA==")],
            )
            .close(&name);
    }
    x.close("m:Notification");
    x.done()
}

/// A push: `SendNotification` as Exchange POSTs it.
fn push_envelope(notification: &str) -> String {
    crate::http::envelope(&messages_in("SendNotification", |x| {
        message(x, "SendNotification", Ok(()));
        x.raw(notification)
            .close("m:SendNotificationResponseMessage");
    }))
}

/// One part of a streaming answer: notifications, or a connection status.
fn stream_envelope(notifications: &[String], status: Option<&str>) -> String {
    crate::http::envelope(&response("GetStreamingEvents", |x| {
        message(x, "GetStreamingEvents", Ok(()));
        if !notifications.is_empty() {
            x.open("m:Notifications", &[]);
            for n in notifications {
                x.raw(n);
            }
            x.close("m:Notifications");
        }
        if let Some(s) = status {
            x.leaf("m:ConnectionStatus", s);
        }
        x.close("m:GetStreamingEventsResponseMessage");
    }))
}

/// A streaming answer naming subscriptions the server does not know.
fn stream_error(code: &'static str, ids: &[String]) -> String {
    let lost = refusal(code, Registry::explain(code));
    crate::http::envelope(&response("GetStreamingEvents", |x| {
        message(x, "GetStreamingEvents", Err(&lost));
        x.open("m:ErrorSubscriptionIds", &[]);
        for id in ids {
            x.leaf("m:SubscriptionId", id);
        }
        x.close("m:ErrorSubscriptionIds")
            .close("m:GetStreamingEventsResponseMessage");
    }))
}

/// Starts the task that turns calendar changes into events, and the push keep-alives.
pub(crate) fn start(sim: &EwsSim) {
    let mut changes = sim.graph().watch();
    let weak = std::sync::Arc::downgrade(&sim.shared);
    tokio::spawn(async move {
        let mut keepalive = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                change = changes.recv() => {
                    let Some(shared) = weak.upgrade() else { return };
                    let sim = EwsSim { shared };
                    match change {
                        Ok(change) => on_change(&sim, &change),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    }
                }
                _ = keepalive.tick() => {
                    let Some(shared) = weak.upgrade() else { return };
                    push_keepalives(&EwsSim { shared });
                }
            }
        }
    });
}

fn on_change(sim: &EwsSim, change: &kalsync_graph_sim::calendar::CalendarChange) {
    let (user, item) = (change.user.as_str(), change.item.as_str());
    let kind = match change.kind.as_str() {
        "created" => "CreatedEvent",
        "deleted" => "DeletedEvent",
        _ => "ModifiedEvent",
    };
    let mut pushes = Vec::new();
    {
        let mut guard = lock(&sim.shared.subscriptions);
        let registry = &mut *guard;
        let (seq, kept) = registry.log.entry(user.to_owned()).or_default();
        *seq += 1;
        let seq = *seq;
        let event = Event {
            seq,
            kind,
            item: URL_SAFE_NO_PAD.encode(format!("{user}\u{1f}{item}\u{1f}0")),
            at: Timestamp::now(),
        };
        kept.push_back(event.clone());
        if kept.len() > KEPT {
            kept.pop_front();
        }
        let reports = |s: &Sub| s.mailbox == user && s.since.is_none_or(|since| since < change.at);
        for (id, sub) in registry.subs.iter_mut().filter(|(_, s)| reports(s)) {
            let event = event.clone();
            match &sub.kind {
                Kind::Pull => sub.queue.push(event),
                Kind::Push { url, .. } => {
                    let previous = watermark(user, seq - 1);
                    pushes.push((
                        id.clone(),
                        url.clone(),
                        notification(id, user, Some(&previous), &[event], seq),
                    ));
                    sub.last_push = Timestamp::now();
                }
                Kind::Streaming => {
                    let chunk = notification(id, user, None, std::slice::from_ref(&event), seq);
                    let sent = sub
                        .stream
                        .as_ref()
                        .is_some_and(|tx| tx.send(stream_envelope(&[chunk], None)).is_ok());
                    if sent {
                        sim.shared
                            .stats
                            .streamed_events
                            .fetch_add(1, Ordering::Relaxed);
                    } else {
                        sub.stream = None;
                        sub.queue.push(event);
                    }
                }
            }
        }
    }
    for (id, url, n) in pushes {
        deliver(sim, id, url, push_envelope(&n));
    }
}

fn push_keepalives(sim: &EwsSim) {
    let now = Timestamp::now();
    let mut due = Vec::new();
    {
        let mut guard = lock(&sim.shared.subscriptions);
        let registry = &mut *guard;
        for (id, sub) in &mut registry.subs {
            let current = registry.log.get(&sub.mailbox).map_or(0, |(n, _)| *n);
            if let Kind::Push {
                url,
                status_minutes,
            } = &sub.kind
            {
                let every =
                    jiff::SignedDuration::from_mins(i64::try_from(*status_minutes).unwrap_or(30));
                if now.duration_since(sub.last_push) >= every {
                    sub.last_push = now;
                    due.push((
                        id.clone(),
                        url.clone(),
                        notification(
                            id,
                            &sub.mailbox,
                            Some(&watermark(&sub.mailbox, current)),
                            &[],
                            current,
                        ),
                    ));
                }
            }
        }
    }
    for (id, url, n) in due {
        deliver(sim, id, url, push_envelope(&n));
    }
}

/// POSTs a push; an `Unsubscribe` answer ends the subscription, as three failures do.
fn deliver(sim: &EwsSim, id: String, url: String, body: String) {
    let sim = sim.clone();
    tokio::spawn(async move {
        for attempt in 0..3u32 {
            let sent = sim
                .shared
                .http
                .post(&url)
                .header("content-type", "text/xml; charset=utf-8")
                .body(body.clone())
                .send()
                .await;
            if let Ok(answer) = sent {
                if let Ok(text) = answer.text().await {
                    match kalsync_ews::response::notification_result(&text) {
                        Ok(true) => {
                            sim.shared
                                .stats
                                .notifications_pushed
                                .fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Ok(false) => {
                            lock(&sim.shared.subscriptions).remove(&id);
                            return;
                        }
                        Err(_) => {}
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
        }
        tracing::warn!(subscription = %id, "the simulator gave up pushing to {url}; the subscription ends");
        lock(&sim.shared.subscriptions).remove(&id);
    });
}

/// What a streaming connection writes.
pub(crate) type EventStream = BoxStream<'static, Result<String, Infallible>>;

/// Opens a streaming connection for `ids`, held `minutes`.
/// A `GetStreamingEvents` connection for `ids`, reaching `back_end` (none: the first
/// subscription's). Subscriptions living on another back end cannot be served there.
pub(crate) fn stream(
    sim: &EwsSim,
    ids: Vec<String>,
    minutes: u64,
    back_end: Option<String>,
) -> EventStream {
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let (drop_it, close_after_ms) = {
        let mut faults = lock(&sim.shared.faults);
        let d = faults.drop_streams > 0;
        faults.drop_streams = faults.drop_streams.saturating_sub(1);
        (d, faults.close_streams_after_ms)
    };
    {
        let mut registry = lock(&sim.shared.subscriptions);
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| {
                !registry
                    .subs
                    .get(id.as_str())
                    .is_some_and(|s| s.kind == Kind::Streaming)
            })
            .cloned()
            .collect();
        let reached = back_end.or_else(|| {
            ids.iter()
                .find_map(|id| registry.subs.get(id.as_str()))
                .map(|s| s.back_end.clone())
        });
        let elsewhere: Vec<String> = ids
            .iter()
            .filter(|id| {
                registry
                    .subs
                    .get(id.as_str())
                    .is_some_and(|s| Some(&s.back_end) != reached.as_ref())
            })
            .cloned()
            .collect();
        if !missing.is_empty() || !elsewhere.is_empty() {
            if !missing.is_empty() {
                let _ = tx.send(stream_error("ErrorSubscriptionNotFound", &missing));
            }
            if !elsewhere.is_empty() {
                sim.shared
                    .stats
                    .misrouted
                    .fetch_add(elsewhere.len() as u64, std::sync::atomic::Ordering::Relaxed);
                let _ = tx.send(stream_error(
                    "ErrorProxiedSubscriptionCallFailure",
                    &elsewhere,
                ));
            }
            drop(tx);
            return Box::pin(futures_util::stream::poll_fn(move |cx| {
                rx.poll_recv(cx).map(|m| m.map(Ok))
            }));
        }
        let _ = tx.send(stream_envelope(&[], Some("OK")));
        let registry = &mut *registry;
        for id in &ids {
            if let Some(sub) = registry.subs.get_mut(id) {
                let queued = std::mem::take(&mut sub.queue);
                if let Some(last) = queued.last() {
                    let _ = tx.send(stream_envelope(
                        &[notification(id, &sub.mailbox, None, &queued, last.seq)],
                        None,
                    ));
                }
                sub.stream = Some(tx.clone());
            }
        }
    }
    let weak = std::sync::Arc::downgrade(&sim.shared);
    let cut = sim.shared.cut.clone();
    tokio::spawn(async move {
        let end = tokio::time::Instant::now()
            + if close_after_ms > 0 {
                Duration::from_millis(close_after_ms)
            } else {
                Duration::from_secs(minutes * 60)
            };
        let mut beat = tokio::time::interval(Duration::from_secs(if drop_it { 1 } else { 10 }));
        beat.tick().await;
        loop {
            tokio::select! {
                // The server forgot its subscriptions: the connection drops.
                () = cut.notified() => break,
                _ = tokio::time::sleep_until(end) => {
                    let _ = tx.send(stream_envelope(&[], Some("Closed")));
                    break;
                }
                _ = beat.tick() => {
                    if drop_it {
                        // Cut: no closing status, as a dropped connection looks.
                        break;
                    }
                    if tx.send(stream_envelope(&[], Some("OK"))).is_err() {
                        break;
                    }
                }
            }
        }
        if let Some(shared) = weak.upgrade() {
            let mut registry = lock(&shared.subscriptions);
            for id in &ids {
                if let Some(sub) = registry.subs.get_mut(id) {
                    sub.stream = None;
                }
            }
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|m| m.map(Ok))
    }))
}

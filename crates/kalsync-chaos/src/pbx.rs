//! The PBX: a webhook receiver that checks each delivery's Standard Webhooks signature
//! (with the reference `standardwebhooks` crate, not the service's own signing), applies
//! each delivery once, and keeps what it shows per user — the body read as the engine's
//! own `StatusUpdate`. It can be taken down for an outage.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use kalsync_core::Mode;
use kalsync_engine::{AbsenceStatus, StatusUpdate};
use serde::Deserialize;

use crate::node::SIGNING_SECRET;

/// What the PBX shows for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    pub(crate) reason: String,
    pub(crate) mode: Mode,
    pub(crate) until: Timestamp,
    pub(crate) returns_at: Timestamp,
}

impl From<AbsenceStatus> for Shown {
    fn from(a: AbsenceStatus) -> Self {
        Shown {
            reason: a.reason,
            mode: a.mode,
            until: a.until,
            returns_at: a.returns_at,
        }
    }
}

/// A user's newest sequence and what it shows (`None`: available).
pub(crate) type Newest = (u64, Option<Shown>);

#[derive(Default)]
struct PbxBook {
    /// Applied deliveries: id → (user, sequence).
    applied: HashMap<String, (String, u64)>,
    /// (user, sequence) pairs applied.
    pairs: HashSet<(String, u64)>,
    /// Per user: the newest sequence and what it shows.
    shown: HashMap<String, Newest>,
    redeliveries: u64,
    twice: usize,
}

/// What the PBX counted, read at the end.
pub(crate) struct Tally {
    /// Deliveries applied.
    pub(crate) applied: usize,
    /// One user's sequence applied under two deliveries.
    pub(crate) twice: usize,
    /// Redeliveries recognised by their id and ignored.
    pub(crate) redeliveries: u64,
}

/// The PBX. Cheap to clone: every clone is the same PBX.
#[derive(Clone, Default)]
pub(crate) struct Pbx {
    book: Arc<Mutex<PbxBook>>,
    /// While set, the PBX answers 503.
    down: Arc<AtomicBool>,
}

/// A webhook body: the engine's status, with the delivery's sequence beside it.
#[derive(Deserialize)]
struct Body {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(flatten)]
    status: StatusUpdate,
    sequence: u64,
}

impl Pbx {
    fn book(&self) -> MutexGuard<'_, PbxBook> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listens on a free loopback port; the webhook's URL and the server's task.
    pub(crate) async fn serve(
        &self,
    ) -> Result<(String, tokio::task::JoinHandle<std::io::Result<()>>), String> {
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "http://{}/hook",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((url, server))
    }

    /// Answers 503 for `outage`, then comes back by itself.
    pub(crate) fn outage(&self, outage: Duration) {
        self.down.store(true, Ordering::SeqCst);
        let back = self.down.clone();
        tokio::spawn(async move {
            tokio::time::sleep(outage).await;
            back.store(false, Ordering::SeqCst);
        });
    }

    /// Up again now, whatever outage is under way.
    pub(crate) fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// A user's newest sequence and what it shows, if the PBX got anything for them.
    pub(crate) fn shown(&self, email: &str) -> Option<Newest> {
        self.book().shown.get(email).cloned()
    }

    /// The ids of every delivery applied.
    pub(crate) fn applied(&self) -> HashSet<String> {
        self.book().applied.keys().cloned().collect()
    }

    /// What the PBX counted.
    pub(crate) fn tally(&self) -> Tally {
        let book = self.book();
        Tally {
            applied: book.applied.len(),
            twice: book.twice,
            redeliveries: book.redeliveries,
        }
    }
}

async fn receive(State(pbx): State<Pbx>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Ok(verifier) = standardwebhooks::Webhook::new(SIGNING_SECRET) else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    if verifier.verify(&body, &headers).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    if pbx.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let Ok(Body { data }) = serde_json::from_slice::<Body>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let id = headers
        .get("webhook-id")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let user = data.status.user.email.to_ascii_lowercase();
    let sequence = data.sequence;
    let mut book = pbx.book();
    if book.applied.contains_key(&id) {
        book.redeliveries += 1;
        return StatusCode::NO_CONTENT;
    }
    if !book.pairs.insert((user.clone(), sequence)) {
        book.twice += 1;
    }
    book.applied.insert(id, (user.clone(), sequence));
    let absence = data.status.absence.map(Shown::from);
    let newest = book.shown.get(&user).map(|(s, _)| *s);
    if newest.is_none_or(|s| sequence > s) {
        book.shown.insert(user, (sequence, absence));
    }
    StatusCode::NO_CONTENT
}

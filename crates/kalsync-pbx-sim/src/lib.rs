//! The PBX simulator: an in-process PBX target that records every status it is sent and
//! shows who is away now — for the demo, the tests and the convergence harness.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use jiff::Timestamp;
use kalsync_engine::{DeliveryError, Envelope, StatusUpdate, Target};
use serde::Serialize;

/// One status as the PBX received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// When it arrived.
    pub at: Timestamp,
    /// The delivery (idempotency key).
    pub delivery: uuid::Uuid,
    /// Its sequence for the user.
    pub sequence: u64,
    /// The status.
    pub status: StatusUpdate,
}

#[derive(Default)]
struct Book {
    /// Per user (mailbox): every status in arrival order.
    history: BTreeMap<String, Vec<Received>>,
    /// Deliveries already applied.
    applied: HashSet<uuid::Uuid>,
    /// Duplicates refused.
    duplicates: u64,
    /// Out-of-order (older sequence) deliveries ignored.
    stale: u64,
}

/// The simulator. Cheap to clone: every clone is the same PBX.
#[derive(Clone, Default)]
pub struct PbxSimulator {
    book: Arc<Mutex<Book>>,
}

impl PbxSimulator {
    /// An empty PBX.
    pub fn new() -> Self {
        Self::default()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The status each user shows now (the last one received), by mailbox.
    pub fn current(&self) -> BTreeMap<String, Received> {
        self.book()
            .history
            .iter()
            .filter_map(|(k, v)| v.last().map(|r| (k.clone(), r.clone())))
            .collect()
    }

    /// Everything a user was sent, in order.
    pub fn history(&self, mailbox: &str) -> Vec<Received> {
        self.book()
            .history
            .get(&mailbox.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// Statuses received in all.
    pub fn received(&self) -> usize {
        self.book().history.values().map(Vec::len).sum()
    }

    /// Deliveries refused because they had been applied already.
    pub fn duplicates(&self) -> u64 {
        self.book().duplicates
    }
}

#[async_trait]
impl Target for PbxSimulator {
    async fn deliver(
        &self,
        delivery: &Envelope,
        status: &StatusUpdate,
    ) -> Result<(), DeliveryError> {
        let mut book = self.book();
        if !book.applied.insert(delivery.id) {
            book.duplicates += 1;
            return Ok(());
        }
        let history = book
            .history
            .entry(status.user.email.to_ascii_lowercase())
            .or_default();
        if history
            .last()
            .is_some_and(|last| last.sequence > delivery.sequence)
        {
            // A PBX keeps the newest status: an older one arriving late changes nothing.
            book.stale += 1;
            return Ok(());
        }
        history.push(Received {
            at: Timestamp::now(),
            delivery: delivery.id,
            sequence: delivery.sequence,
            status: status.clone(),
        });
        Ok(())
    }
}

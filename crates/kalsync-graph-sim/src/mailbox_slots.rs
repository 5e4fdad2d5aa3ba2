//! Graph's per-mailbox concurrency limit: a slot per request in progress, four per
//! mailbox, the fifth refused.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::{Shared, Simulator};

/// Graph allows this many concurrent requests per mailbox; more get `429`.
pub const MAILBOX_CONCURRENCY: u32 = 4;

/// A request in progress against one mailbox; leaves when dropped.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl Simulator {
    /// Enters a request against a mailbox, or `None` when four are already in progress.
    pub(crate) fn enter(&self, mailbox: &str) -> Option<InFlight> {
        let key = {
            let world = self.world();
            world
                .directory
                .resolve(mailbox)
                .map(str::to_owned)
                .unwrap_or_else(|| mailbox.to_ascii_lowercase())
        };
        let mut map = self
            .shared
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key.clone()).or_insert(0);
        if *n >= MAILBOX_CONCURRENCY {
            self.shared
                .stats
                .mailbox_concurrency_refused
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *n += 1;
        self.shared
            .stats
            .max_mailbox_concurrency
            .fetch_max(u64::from(*n), Ordering::Relaxed);
        Some(InFlight {
            shared: self.shared.clone(),
            key,
        })
    }
}

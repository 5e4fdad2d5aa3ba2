//! One request budget per tenant, shared by every node: Graph allows an app 1,500
//! presence requests per 30 seconds in a tenant. The budget is kept in one-second
//! windows in the store, each holding a thirty-first of it (a 30-second span touches at
//! most 31 windows, so no span can hold more than the budget); a node takes a few
//! requests at a time and hands them out itself. A tenant Graph throttled anyway is
//! held for its `Retry-After`.
//!
//! Written by hand: the rate limiters on crates.io (governor and the like) count in one
//! process; this count must hold across nodes, so it lives in the store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kalsync_store::{Store, StoreError};

/// Graph's presence requests per 30 seconds per app and tenant.
pub const GRAPH_BUDGET: u32 = 1_500;
/// How many requests a node takes from the store at a time.
const TAKE: u32 = 4;

/// What one tenant has in hand on this node.
#[derive(Debug, Default, Clone, Copy)]
struct Hand {
    /// The window (whole seconds since the epoch) the requests in hand are of.
    window: i64,
    /// Requests left in hand for it.
    left: u32,
    /// Not before this (Graph said `Retry-After`).
    held_until: Option<Timestamp>,
}

/// Requests per tenant, within the budget across all nodes.
#[derive(Clone)]
pub struct Limiter {
    store: Arc<dyn Store>,
    per_window: u32,
    hands: Arc<Mutex<HashMap<String, Hand>>>,
    counts: Arc<Counts>,
}

/// What the limiter saw, for metrics and the dashboard.
#[derive(Debug, Default)]
pub struct Counts {
    /// Requests granted.
    pub granted: std::sync::atomic::AtomicU64,
    /// Times a request waited for the next window.
    pub waited: std::sync::atomic::AtomicU64,
    /// Times Graph throttled anyway (429 after its retries).
    pub throttled: std::sync::atomic::AtomicU64,
}

impl Limiter {
    /// A limiter allowing `per_30s` requests per tenant in any 30 seconds.
    pub fn new(store: Arc<dyn Store>, per_30s: u32) -> Limiter {
        Limiter {
            store,
            per_window: (per_30s / 31).max(1),
            hands: Arc::new(Mutex::new(HashMap::new())),
            counts: Arc::new(Counts::default()),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    fn hands(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hand>> {
        self.hands.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until one request to `tenant` may be sent, and takes it.
    pub async fn acquire(&self, tenant: &str) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        let tenant = tenant.to_ascii_lowercase();
        loop {
            let now = Timestamp::now();
            let window = now.as_second();
            let held = {
                let mut hands = self.hands();
                let hand = hands.entry(tenant.clone()).or_default();
                match hand.held_until.filter(|u| *u > now) {
                    Some(until) => Some(until),
                    None => {
                        if hand.window == window && hand.left > 0 {
                            hand.left -= 1;
                            self.counts.granted.fetch_add(1, Relaxed);
                            return Ok(());
                        }
                        None
                    }
                }
            };
            if let Some(until) = held {
                sleep_until(until).await;
                continue;
            }
            let start = Timestamp::from_second(window).unwrap_or(now);
            let key = format!("graph-presence:{tenant}");
            let mut taken = 0;
            for n in [TAKE.min(self.per_window), 1] {
                if self
                    .store
                    .take_budget(&key, start, n, self.per_window)
                    .await?
                {
                    taken = n;
                    break;
                }
            }
            if taken > 0 {
                let mut hands = self.hands();
                let hand = hands.entry(tenant.clone()).or_default();
                if hand.window != window {
                    *hand = Hand {
                        window,
                        left: 0,
                        held_until: hand.held_until,
                    };
                }
                hand.left += taken - 1;
                self.counts.granted.fetch_add(1, Relaxed);
                return Ok(());
            }
            self.counts.waited.fetch_add(1, Relaxed);
            sleep_until(start + SignedDuration::from_secs(1)).await;
        }
    }

    /// Holds `tenant` back for `wait` (Graph throttled it anyway).
    pub fn hold(&self, tenant: &str, wait: Duration) {
        self.counts
            .throttled
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let until = Timestamp::now()
            + SignedDuration::try_from(wait.min(Duration::from_secs(600)))
                .unwrap_or(SignedDuration::from_secs(60));
        let mut hands = self.hands();
        let hand = hands.entry(tenant.to_ascii_lowercase()).or_default();
        hand.held_until = Some(hand.held_until.map_or(until, |h| h.max(until)));
        hand.left = 0;
    }
}

async fn sleep_until(at: Timestamp) {
    let wait = at.duration_since(Timestamp::now());
    if wait.is_positive() {
        tokio::time::sleep(Duration::try_from(wait).unwrap_or(Duration::from_millis(10))).await;
    }
}

//! One request budget per tenant, shared by every node: Graph allows an app 1,500
//! presence requests per 30 seconds in a tenant, each request inside a `$batch` counted
//! on its own. The budget is kept in one-second windows in the store, each holding a
//! thirty-third of it (a 30-second span touches at most 31 windows, so no span can hold
//! more than the budget, with two seconds to spare for nodes' clocks); a node takes a
//! few requests at a time and hands them out itself. A tenant Graph throttled anyway is
//! held on this node for its `Retry-After`.
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
    counts: Arc<Mutex<HashMap<String, Counts>>>,
}

/// What the limiter saw of one tenant on this node, for metrics and the dashboard.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// Requests granted.
    pub granted: u64,
    /// Times a request waited for the next window (the budget was spent).
    pub waited: u64,
    /// Times Graph throttled anyway (429 after its retries).
    pub throttled: u64,
    /// When Graph last throttled it.
    pub last_throttled: Option<Timestamp>,
}

impl Limiter {
    /// A limiter allowing `per_30s` requests per tenant in any 30 seconds.
    pub fn new(store: Arc<dyn Store>, per_30s: u32) -> Limiter {
        Limiter {
            store,
            // A 30-second span touches at most 31 one-second windows; two more keep a
            // margin for nodes whose clocks differ by a second or two.
            per_window: (per_30s / 33).max(1),
            hands: Arc::new(Mutex::new(HashMap::new())),
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Each tenant's counts so far (tenants as configured, lower case).
    pub fn counts(&self) -> Vec<(String, Counts)> {
        let mut all: Vec<(String, Counts)> = self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// One tenant's counts so far.
    pub fn counts_of(&self, tenant: &str) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    fn count(&self, tenant: &str, change: impl FnOnce(&mut Counts)) {
        let mut all = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        change(all.entry(tenant.to_owned()).or_default());
    }

    /// The metrics in Prometheus' text format.
    pub fn render_metrics(&self) -> String {
        let all = self.counts();
        let mut out = String::new();
        for (name, help, value) in [
            (
                "kalsync_teams_requests_total",
                "Graph presence requests sent, by tenant.",
                (|c: &Counts| c.granted) as fn(&Counts) -> u64,
            ),
            (
                "kalsync_teams_waits_total",
                "Times a presence request waited for the tenant's budget.",
                |c: &Counts| c.waited,
            ),
            (
                "kalsync_teams_throttled_total",
                "Times Graph throttled a tenant's presence requests anyway.",
                |c: &Counts| c.throttled,
            ),
        ] {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (tenant, c) in &all {
                let tenant: String = tenant
                    .chars()
                    .filter(|ch| ch.is_ascii_alphanumeric() || "-._".contains(*ch))
                    .collect();
                out.push_str(&format!("{name}{{tenant=\"{tenant}\"}} {}\n", value(c)));
            }
        }
        out
    }

    fn hands(&self) -> std::sync::MutexGuard<'_, HashMap<String, Hand>> {
        self.hands.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `n` requests to `tenant` may be sent, and takes them (in windows of
    /// at most a thirty-third of the budget: a large `n` spans several).
    pub async fn acquire(&self, tenant: &str, n: u32) -> Result<(), StoreError> {
        let tenant = tenant.to_ascii_lowercase();
        let mut left = n;
        while left > 0 {
            let part = left.min(self.per_window);
            self.acquire_part(&tenant, part).await?;
            left -= part;
        }
        self.count(&tenant, |c| c.granted += u64::from(n));
        Ok(())
    }

    /// [`Limiter::acquire`], waiting at most `within`: `Err(Some(wait))` when the tenant
    /// is held or its budget spent for longer (try again after `wait`), `Err(None)` when
    /// the store failed.
    pub async fn acquire_within(
        &self,
        tenant: &str,
        n: u32,
        within: Duration,
    ) -> Result<(), Option<Duration>> {
        let held = self
            .hands()
            .get(&tenant.to_ascii_lowercase())
            .and_then(|h| h.held_until)
            .map(|u| u.duration_since(Timestamp::now()))
            .filter(|d| d.is_positive())
            .and_then(|d| Duration::try_from(d).ok());
        if let Some(wait) = held.filter(|w| *w > within) {
            return Err(Some(wait));
        }
        match tokio::time::timeout(within, self.acquire(tenant, n)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the Teams request budget cannot be read");
                Err(None)
            }
            Err(_) => Err(Some(Duration::from_secs(5))),
        }
    }

    /// Takes `n` (at most a window's) requests of one window.
    async fn acquire_part(&self, tenant: &str, n: u32) -> Result<(), StoreError> {
        loop {
            let now = Timestamp::now();
            let window = now.as_second();
            let held = {
                let mut hands = self.hands();
                let hand = hands.entry(tenant.to_owned()).or_default();
                match hand.held_until.filter(|u| *u > now) {
                    Some(until) => Some(until),
                    None => {
                        if hand.window == window && hand.left >= n {
                            hand.left -= n;
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
            for want in [n.max(TAKE).min(self.per_window), n] {
                if self
                    .store
                    .take_budget(&key, start, want, self.per_window)
                    .await?
                {
                    taken = want;
                    break;
                }
            }
            if taken >= n {
                let mut hands = self.hands();
                let hand = hands.entry(tenant.to_owned()).or_default();
                if hand.window != window {
                    *hand = Hand {
                        window,
                        left: 0,
                        held_until: hand.held_until,
                    };
                }
                hand.left += taken - n;
                return Ok(());
            }
            self.count(tenant, |c| c.waited += 1);
            sleep_until(start + SignedDuration::from_secs(1)).await;
        }
    }

    /// Holds `tenant` back for `wait` (Graph throttled it anyway).
    pub fn hold(&self, tenant: &str, wait: Duration) {
        let now = Timestamp::now();
        self.count(&tenant.to_ascii_lowercase(), |c| {
            c.throttled += 1;
            c.last_throttled = Some(now);
        });
        let until = Timestamp::now()
            + SignedDuration::try_from(wait.min(Duration::from_secs(600)))
                .unwrap_or(SignedDuration::from_secs(60));
        {
            let mut hands = self.hands();
            let hand = hands.entry(tenant.to_ascii_lowercase()).or_default();
            hand.held_until = Some(hand.held_until.map_or(until, |h| h.max(until)));
            hand.left = 0;
        }
        // The other nodes are held too: what is left of this window and the windows
        // ahead (a minute at most) are taken in the store before anyone else can.
        let (store, per_window) = (self.store.clone(), self.per_window);
        let key = format!("graph-presence:{}", tenant.to_ascii_lowercase());
        let first = now.as_second();
        let last = until.as_second().min(first + 60);
        tokio::spawn(async move {
            for second in first..last {
                let Ok(window) = Timestamp::from_second(second) else {
                    break;
                };
                // All or none per take: halving finds what is left of a window in use.
                let mut n = per_window;
                while n > 0 {
                    match store.take_budget(&key, window, n, per_window).await {
                        Ok(true) => {}
                        Ok(false) => n /= 2,
                        Err(e) => {
                            tracing::warn!(error = %e, "a Teams hold cannot be shared with the other nodes");
                            return;
                        }
                    }
                }
            }
        });
    }
}

async fn sleep_until(at: Timestamp) {
    let wait = at.duration_since(Timestamp::now());
    if wait.is_positive() {
        tokio::time::sleep(Duration::try_from(wait).unwrap_or(Duration::from_millis(10))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_held_on_one_node_is_held_on_the_others() {
        let dir = std::env::temp_dir().join(format!("kalsync-limiter-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = kalsync_store_sql::DatabaseUrl::new(format!(
            "sqlite:{}",
            dir.join("limits.db").display()
        ));
        let store: Arc<dyn Store> = Arc::new(
            kalsync_store_sql::SqlStore::connect(&url, kalsync_store::SecretBox::ephemeral())
                .await
                .expect("store"),
        );
        let (one, other) = (
            Limiter::new(store.clone(), GRAPH_BUDGET),
            Limiter::new(store, GRAPH_BUDGET),
        );
        one.acquire("contoso", 1).await.expect("first");
        one.hold("contoso", Duration::from_secs(3));
        // Let the hold reach the store, then ask on the other node.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let asked = std::time::Instant::now();
        other.acquire("contoso", 1).await.expect("after the hold");
        assert!(
            asked.elapsed() >= Duration::from_millis(1_500),
            "the other node waited only {:?}",
            asked.elapsed()
        );
        // Another tenant is not held.
        let asked = std::time::Instant::now();
        other.acquire("fabrikam", 1).await.expect("another tenant");
        assert!(asked.elapsed() < Duration::from_secs(1));
        let _ = std::fs::remove_dir_all(dir);
    }
}

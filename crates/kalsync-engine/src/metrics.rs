//! The engine's counters and the delivery-latency histogram, in Prometheus' text format.
//!
//! Written by hand: a dozen atomics and one fixed-bucket histogram; a metrics framework
//! would add a registry and a global recorder for no gain here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::SignedDuration;

use crate::source::SourceError;

/// Upper bounds of the delivery-latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// Counters of one node.
#[derive(Debug, Default)]
pub struct Metrics {
    syncs: AtomicU64,
    sync_throttled: AtomicU64,
    sync_not_found: AtomicU64,
    sync_forbidden: AtomicU64,
    sync_credentials: AtomicU64,
    sync_failed: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    dead: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
    held: AtomicU64,
}

impl Metrics {
    pub(crate) fn holding(&self, users: usize) {
        self.held
            .store(u64::try_from(users).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn synced(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn sync_failed(&self, e: &SourceError) {
        let counter = match e {
            SourceError::Throttled { .. } => &self.sync_throttled,
            SourceError::NotFound(_) => &self.sync_not_found,
            SourceError::Forbidden(_) => &self.sync_forbidden,
            SourceError::Credentials(_) => &self.sync_credentials,
            SourceError::Failed(_) => &self.sync_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn delivered(&self, lateness: SignedDuration) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let seconds = lateness.as_secs_f64().max(0.0);
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub(crate) fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dead_letter(&self) {
        self.dead.fetch_add(1, Ordering::Relaxed);
    }

    /// Deliveries acknowledged so far.
    pub fn delivered_total(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Dead letters so far.
    pub fn dead_total(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }

    /// The counters in Prometheus' text format; `outbox_depth` is read by the caller.
    pub fn render(&self, outbox_depth: u64) -> String {
        let mut out = String::new();
        let g = |v: &AtomicU64| v.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP kalsync_syncs_total Mailbox windows read.\n# TYPE kalsync_syncs_total counter\nkalsync_syncs_total {}",
            g(&self.syncs)
        );
        let _ = writeln!(
            out,
            "# HELP kalsync_sync_errors_total Failed reads, by kind.\n# TYPE kalsync_sync_errors_total counter"
        );
        for (kind, v) in [
            ("throttled", &self.sync_throttled),
            ("not_found", &self.sync_not_found),
            ("forbidden", &self.sync_forbidden),
            ("credentials", &self.sync_credentials),
            ("other", &self.sync_failed),
        ] {
            let _ = writeln!(out, "kalsync_sync_errors_total{{kind=\"{kind}\"}} {}", g(v));
        }
        let _ = writeln!(
            out,
            "# HELP kalsync_deliveries_total Deliveries, by outcome.\n# TYPE kalsync_deliveries_total counter"
        );
        for (outcome, v) in [
            ("delivered", &self.delivered),
            ("retried", &self.retried),
            ("dead", &self.dead),
        ] {
            let _ = writeln!(
                out,
                "kalsync_deliveries_total{{outcome=\"{outcome}\"}} {}",
                g(v)
            );
        }
        let _ = writeln!(
            out,
            "# HELP kalsync_users_held Users this node holds (its share of all).\n# TYPE kalsync_users_held gauge\nkalsync_users_held {}",
            g(&self.held)
        );
        let _ = writeln!(
            out,
            "# HELP kalsync_outbox_depth Deliveries waiting.\n# TYPE kalsync_outbox_depth gauge\nkalsync_outbox_depth {outbox_depth}"
        );
        let _ = writeln!(
            out,
            "# HELP kalsync_delivery_latency_seconds From the transition to the target's acknowledgement.\n# TYPE kalsync_delivery_latency_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "kalsync_delivery_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                g(&self.latency_buckets[i])
            );
        }
        let count = g(&self.latency_count);
        let _ = writeln!(
            out,
            "kalsync_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "kalsync_delivery_latency_seconds_sum {}",
            g(&self.latency_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "kalsync_delivery_latency_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.delivered(SignedDuration::from_millis(30));
        m.delivered(SignedDuration::from_secs(3));
        m.sync_failed(&SourceError::Throttled {
            retry_after: std::time::Duration::from_secs(1),
        });
        let text = m.render(7);
        assert!(text.contains("kalsync_deliveries_total{outcome=\"delivered\"} 2"));
        assert!(text.contains("kalsync_delivery_latency_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("kalsync_delivery_latency_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("kalsync_sync_errors_total{kind=\"throttled\"} 1"));
        assert!(text.contains("kalsync_outbox_depth 7"));
    }
}

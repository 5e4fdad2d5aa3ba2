//! The counters a test or benchmark reads, and their snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::Simulator;

/// Counters a test or benchmark reads.
#[derive(Debug, Default)]
pub struct Stats {
    /// Graph requests served (token endpoint excluded).
    pub requests: AtomicU64,
    /// `$batch` requests.
    pub batches: AtomicU64,
    /// Throttled answers.
    pub throttled: AtomicU64,
    /// Tokens issued.
    pub tokens: AtomicU64,
    /// Notifications delivered (2xx from the receiver).
    pub notifications_sent: AtomicU64,
    /// Notifications given up on or lost on purpose.
    pub notifications_lost: AtomicU64,
    /// Delivery attempts the receiver answered with anything but 2xx (retried).
    pub notifications_refused: AtomicU64,
    /// Events served with their `body` (a client that never asks keeps this at 0).
    pub bodies_served: AtomicU64,
    /// Requests refused because a mailbox already had four in progress.
    pub mailbox_concurrency_refused: AtomicU64,
    /// The most requests seen in progress against one mailbox.
    pub max_mailbox_concurrency: AtomicU64,
}

/// A snapshot of [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// See [`Stats::requests`].
    pub requests: u64,
    /// See [`Stats::batches`].
    pub batches: u64,
    /// See [`Stats::throttled`].
    pub throttled: u64,
    /// See [`Stats::tokens`].
    pub tokens: u64,
    /// See [`Stats::notifications_sent`].
    pub notifications_sent: u64,
    /// See [`Stats::notifications_lost`].
    pub notifications_lost: u64,
    /// See [`Stats::notifications_refused`].
    pub notifications_refused: u64,
    /// See [`Stats::bodies_served`].
    pub bodies_served: u64,
    /// See [`Stats::mailbox_concurrency_refused`].
    pub mailbox_concurrency_refused: u64,
    /// See [`Stats::max_mailbox_concurrency`].
    pub max_mailbox_concurrency: u64,
}

impl Simulator {
    /// Counters.
    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.shared.stats;
        StatsSnapshot {
            requests: s.requests.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
            tokens: s.tokens.load(Ordering::Relaxed),
            notifications_sent: s.notifications_sent.load(Ordering::Relaxed),
            notifications_lost: s.notifications_lost.load(Ordering::Relaxed),
            notifications_refused: s.notifications_refused.load(Ordering::Relaxed),
            bodies_served: s.bodies_served.load(Ordering::Relaxed),
            mailbox_concurrency_refused: s.mailbox_concurrency_refused.load(Ordering::Relaxed),
            max_mailbox_concurrency: s.max_mailbox_concurrency.load(Ordering::Relaxed),
        }
    }
}

//! The faults injected along the workload — Graph throttling, errors and cut
//! connections, lost and duplicated notifications, lifecycle events, expired tokens,
//! Graph losing every subscription; Exchange back-off, dropped streams, expired
//! watermarks, Exchange forgetting every subscription; bookings made just as a
//! subscription is being made; PBX outages, wall-clock steps — and their end when the
//! workload stops. (The kills are the run's own step.)

use std::time::Duration;

use kalsync_ews_sim::{EwsFaults, EwsSim};
use kalsync_graph_sim::{Faults, Simulator};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::node::{Clock, step_kind};
use crate::pbx::Pbx;
use crate::workload::{Mailbox, Reach, change};

/// The kinds of fault, by the name `--faults` takes.
pub(crate) const KINDS: [&str; 15] = [
    "graph-throttle",
    "graph-error",
    "graph-reset",
    "notification-lost",
    "notification-duplicated",
    "tokens-expired",
    "graph-lifecycle",
    "graph-forgets",
    "booking-while-subscribing",
    "exchange-busy",
    "stream-dropped",
    "watermark-expired",
    "exchange-forgets",
    "pbx-outage",
    "clock-step",
];

/// What faults are injected into.
pub(crate) struct Injector<'a> {
    pub(crate) graph: &'a Simulator,
    pub(crate) ews: &'a EwsSim,
    pub(crate) pbx: &'a Pbx,
    pub(crate) clock: Option<&'a Clock>,
    /// Everyone's mailboxes, for the bookings made as subscriptions are made.
    pub(crate) mailboxes: &'a [Mailbox],
    /// The kinds that may be drawn.
    pub(crate) kinds: &'a [&'static str],
}

impl Injector<'_> {
    /// Injects one random fault of the kinds allowed; what it was, or none when the one
    /// drawn could not be made (no clock to step, no subscription to end).
    pub(crate) fn inject(&self, rng: &mut StdRng) -> Option<&'static str> {
        let (graph, ews) = (self.graph, self.ews);
        let n = rng.random_range(1..4);
        let kind = *self
            .kinds
            .get(rng.random_range(0..self.kinds.len().max(1)))?;
        // Drawn before looking, so the seed alone decides what comes next.
        let pick = rng.random::<u32>() as usize;
        let seed = rng.random::<u64>();
        Some(match kind {
            "clock-step" => {
                // The clock stays within two minutes of the truth, so a webhook's
                // signature stays within the receiver's five-minute tolerance.
                let offset = rng.random_range(30..120) * if rng.random_bool(0.5) { 1 } else { -1 };
                step_kind(self.clock?.set(offset))?
            }
            "graph-throttle" => {
                let mut f = graph.faults();
                f.throttle += n;
                f.retry_after_secs = 1.0;
                graph.set_faults(f);
                "Graph 429 with Retry-After"
            }
            "graph-error" => {
                let mut f = graph.faults();
                f.server_errors += n;
                graph.set_faults(f);
                "Graph 503"
            }
            "graph-reset" => {
                let mut f = graph.faults();
                f.drop_connections += n;
                graph.set_faults(f);
                "Graph connection reset"
            }
            "notification-lost" => {
                let mut f = graph.faults();
                f.lose_notifications += n;
                graph.set_faults(f);
                "notification lost (then missed)"
            }
            "notification-duplicated" => {
                let mut f = graph.faults();
                f.duplicate_notifications += n;
                graph.set_faults(f);
                "notification duplicated"
            }
            "tokens-expired" => {
                let mut f = graph.faults();
                f.expire_tokens = true;
                graph.set_faults(f);
                "tokens expired"
            }
            "graph-lifecycle" => {
                let event = ["subscriptionRemoved", "missed", "reauthorizationRequired"]
                    [rng.random_range(0..3)];
                let subscriptions = graph.subscriptions();
                let (id, _, _) = subscriptions.get(pick % subscriptions.len().max(1))?;
                graph.lifecycle(id, event).ok()?;
                match event {
                    "subscriptionRemoved" => "subscription removed",
                    "missed" => "notifications missed (lifecycle)",
                    _ => "reauthorization required",
                }
            }
            "graph-forgets" => {
                // A booking as the first subscription is asked for again.
                graph.before_next_subscription(self.booking(Reach::Graph, pick, seed)?);
                graph.forget_subscriptions();
                "Graph lost every subscription"
            }
            "booking-while-subscribing" => {
                // Notified before the service has read the subscription's id.
                graph.during_next_subscription(self.booking(Reach::Graph, pick, seed)?);
                let subscriptions = graph.subscriptions();
                let (id, _, _) = subscriptions.get(pick % subscriptions.len().max(1))?;
                graph.lifecycle(id, "subscriptionRemoved").ok()?;
                "booking while a subscription is made"
            }
            "exchange-busy" => {
                let mut f = ews.faults();
                f.server_busy += n;
                f.back_off_ms = 500;
                ews.set_faults(f);
                "Exchange busy with back-off"
            }
            "stream-dropped" => {
                let mut f = ews.faults();
                f.drop_streams += 1;
                ews.set_faults(f);
                "Exchange stream dropped"
            }
            "watermark-expired" => {
                let mut f = ews.faults();
                f.expire_watermarks += n;
                ews.set_faults(f);
                "Exchange watermark or sync state expired"
            }
            "exchange-forgets" => {
                // A mailbox server restarts; a booking for a streaming mailbox as the
                // first streaming Subscribe after.
                ews.before_next_subscribe_of(
                    "streaming",
                    self.booking(Reach::Streaming, pick, seed)?,
                );
                ews.forget_subscriptions();
                "Exchange forgot every subscription"
            }
            _ => {
                self.pbx
                    .outage(Duration::from_millis(rng.random_range(500..3000)));
                "PBX outage"
            }
        })
    }

    /// A random change to a random mailbox reached `reach`'s way (any, when none is),
    /// made when the hook it is given to runs.
    fn booking(
        &self,
        reach: Reach,
        pick: usize,
        seed: u64,
    ) -> Option<impl FnOnce() + Send + 'static> {
        let some: Vec<&Mailbox> = self.mailboxes.iter().filter(|m| m.reach == reach).collect();
        let mailbox = if some.is_empty() {
            self.mailboxes.get(pick % self.mailboxes.len().max(1))?
        } else {
            some[pick % some.len()]
        }
        .clone();
        Some(move || {
            let mut rng = StdRng::seed_from_u64(seed);
            change(&mut rng, &mailbox, jiff::Timestamp::now());
        })
    }

    /// The faults stop: the clock is set right (one more step, its kind if it moved) and
    /// the simulators answer normally again. A PBX outage runs its course.
    pub(crate) fn stop(&self) -> Option<&'static str> {
        let step = self.clock.and_then(|c| step_kind(c.set(0)));
        self.graph.set_faults(Faults::default());
        self.ews.set_faults(EwsFaults::default());
        step
    }
}

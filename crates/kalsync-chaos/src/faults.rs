//! The faults injected along the workload — Graph throttling, errors and cut
//! connections, lost and duplicated notifications, lifecycle events, expired tokens,
//! Exchange back-off, dropped streams and expired watermarks, PBX outages, wall-clock
//! steps — and their end when the workload stops. (The kills are the run's own step.)

use std::time::Duration;

use kalsync_ews_sim::{EwsFaults, EwsSim};
use kalsync_graph_sim::{Faults, Simulator};
use rand::Rng;
use rand::rngs::StdRng;

use crate::node::{Clock, step_kind};
use crate::pbx::Pbx;

/// What faults are injected into.
pub(crate) struct Injector<'a> {
    pub(crate) graph: &'a Simulator,
    pub(crate) ews: &'a EwsSim,
    pub(crate) pbx: &'a Pbx,
    pub(crate) clock: Option<&'a Clock>,
}

impl Injector<'_> {
    /// Injects one random fault; its kind, or none when the one drawn could not be made
    /// (no clock to step, no subscription to end).
    pub(crate) fn inject(&self, rng: &mut StdRng) -> Option<&'static str> {
        let (graph, ews) = (self.graph, self.ews);
        let n = rng.random_range(1..4);
        let kind = match rng.random_range(0..14) {
            13 => {
                // The clock stays within two minutes of the truth, so a webhook's
                // signature stays within the receiver's five-minute tolerance.
                let offset = rng.random_range(30..120) * if rng.random_bool(0.5) { 1 } else { -1 };
                step_kind(self.clock?.set(offset))?
            }
            0 => {
                let mut f = graph.faults();
                f.throttle += n;
                f.retry_after_secs = 1.0;
                graph.set_faults(f);
                "Graph 429 with Retry-After"
            }
            1 => {
                let mut f = graph.faults();
                f.server_errors += n;
                graph.set_faults(f);
                "Graph 503"
            }
            2 => {
                let mut f = graph.faults();
                f.drop_connections += n;
                graph.set_faults(f);
                "Graph connection reset"
            }
            3 => {
                let mut f = graph.faults();
                f.lose_notifications += n;
                graph.set_faults(f);
                "notification lost"
            }
            4 => {
                let mut f = graph.faults();
                f.duplicate_notifications += n;
                graph.set_faults(f);
                "notification duplicated"
            }
            5 => {
                let mut f = graph.faults();
                f.expire_tokens = true;
                graph.set_faults(f);
                "tokens expired"
            }
            6 | 7 => {
                // Drawn before looking, so the seed alone decides what comes next.
                let (pick, event) = (
                    rng.random::<u32>() as usize,
                    ["subscriptionRemoved", "missed", "reauthorizationRequired"]
                        [rng.random_range(0..3)],
                );
                let subscriptions = graph.subscriptions();
                let (id, _, _) = subscriptions.get(pick % subscriptions.len().max(1))?;
                graph.lifecycle(id, event).ok()?;
                match event {
                    "subscriptionRemoved" => "subscription removed",
                    "missed" => "notifications missed (lifecycle)",
                    _ => "reauthorization required",
                }
            }
            8 => {
                let mut f = ews.faults();
                f.server_busy += n;
                f.back_off_ms = 500;
                ews.set_faults(f);
                "Exchange busy with back-off"
            }
            9 => {
                let mut f = ews.faults();
                f.drop_streams += 1;
                ews.set_faults(f);
                "Exchange stream dropped"
            }
            10 => {
                let mut f = ews.faults();
                f.expire_watermarks += n;
                ews.set_faults(f);
                "Exchange watermark or sync state expired"
            }
            _ => {
                self.pbx
                    .outage(Duration::from_millis(rng.random_range(500..3000)));
                "PBX outage"
            }
        };
        Some(kind)
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

//! Teams Presence (Telenor's third function): the calendar's absence in Teams
//! ([`message`]: the `teams` target), Teams calls and meetings on the PBX ([`poll`]:
//! Teams presence read as a source of the timeline), PBX calls in Teams ([`calls`]: the
//! app's presence session `Busy/InACall` while a call lasts) — all through the Graph
//! connection of each person's instance, within one request budget per tenant
//! ([`limiter`]). No echo: what came from Teams never goes back to Teams, and Teams
//! showing a call Kalsync put there never comes back to the PBX.

pub mod calls;
pub mod limiter;
pub mod message;
pub mod poll;

use std::sync::Arc;

use kalsync_core::Lang;
use kalsync_engine::{DeliveryError, Target};
use kalsync_graph::{GraphClient, GraphError};
use kalsync_sources::Connections;
use kalsync_store::{Instance, InstanceId, Store, StoreError, UserId};

pub use limiter::Limiter;
pub use message::TeamsTarget;

/// Teams Presence for one service: the store, each instance's Graph connection and the
/// tenants' request budget. Cheap to clone.
#[derive(Clone)]
pub struct Teams {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    connections: Arc<Connections>,
    limiter: Limiter,
}

impl Teams {
    /// Teams Presence allowing `per_30s` Graph presence requests per tenant in any 30
    /// seconds, across every node sharing `store`.
    pub fn new(store: Arc<dyn Store>, connections: Arc<Connections>, per_30s: u32) -> Teams {
        Teams {
            inner: Arc::new(Inner {
                limiter: Limiter::new(store.clone(), per_30s),
                store,
                connections,
            }),
        }
    }

    /// A `teams` target: status messages in `language`, and app presence sessions
    /// when `presence`.
    pub fn target(&self, presence: bool, language: Lang) -> Arc<dyn Target> {
        Arc::new(TeamsTarget::new(self.clone(), presence, language))
    }

    /// The tenants' request budget.
    pub fn limiter(&self) -> &Limiter {
        &self.inner.limiter
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    /// The instance a person belongs to.
    pub(crate) async fn instance_of(&self, user: UserId) -> Result<InstanceId, DeliveryError> {
        match self.store().user(user).await {
            Ok(u) => Ok(u.instance),
            Err(StoreError::NotFound(_)) => Err(DeliveryError::Rejected(
                "the person is no longer synchronised".into(),
            )),
            Err(e) => Err(DeliveryError::Retry {
                message: e.to_string(),
                retry_after: None,
            }),
        }
    }

    /// The Graph client of an instance (a Microsoft 365 one; Teams has no EWS).
    ///
    /// None for an Exchange (EWS) instance: its people have no Teams to show statuses
    /// in, which is nothing to retry or report.
    pub(crate) async fn graph_of(
        &self,
        instance: InstanceId,
    ) -> Result<Option<GraphClient>, DeliveryError> {
        let instance = self.store().instance(instance).await.map_err(|e| match e {
            StoreError::NotFound(_) => DeliveryError::Rejected("the instance is gone".into()),
            e => DeliveryError::Retry {
                message: e.to_string(),
                retry_after: None,
            },
        })?;
        if !matches!(instance.source, kalsync_store::SourceConfig::Graph { .. }) {
            return Ok(None);
        }
        self.graph(&instance)
            .map(Some)
            .map_err(DeliveryError::Rejected)
    }

    /// The Graph client of `instance`, or why it has none.
    pub(crate) fn graph(&self, instance: &Instance) -> Result<GraphClient, String> {
        let connection = self
            .inner
            .connections
            .of(instance)
            .map_err(|e| e.to_string())?;
        connection.graph().cloned().ok_or_else(|| {
            "Teams presence needs a Microsoft 365 (Graph) instance; this one reads Exchange over EWS"
                .to_owned()
        })
    }

    /// Takes `n` requests from `graph`'s tenant's budget, waiting for them.
    pub(crate) async fn take(&self, graph: &GraphClient, n: u32) -> Result<(), StoreError> {
        self.inner.limiter.acquire(graph.tenant(), n).await
    }

    /// Takes `n` requests from `graph`'s tenant's budget, waiting at most `within`
    /// (`Err(Some(wait))`: try again after `wait`; `Err(None)`: the store failed).
    pub(crate) async fn take_within(
        &self,
        graph: &GraphClient,
        n: u32,
        within: std::time::Duration,
    ) -> Result<(), Option<std::time::Duration>> {
        self.inner
            .limiter
            .acquire_within(graph.tenant(), n, within)
            .await
    }

    /// Holds `graph`'s tenant back when Graph throttled it anyway.
    pub(crate) fn note_throttling(&self, graph: &GraphClient, e: &GraphError) {
        if let GraphError::Throttled { retry_after } = e {
            tracing::warn!(tenant = graph.tenant(), wait = ?retry_after, "Graph throttled Teams presence");
            self.inner.limiter.hold(graph.tenant(), *retry_after);
        }
    }
}

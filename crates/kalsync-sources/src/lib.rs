//! Kalsync's sources: the adapters that read calendars for the engine — Microsoft Graph
//! ([`GraphSource`]) and EWS ([`EwsSource`]) — and [`Connections`], which keeps **one
//! connection per instance** (one HTTP client, one token cache, one connection pool,
//! one outbound policy) shared by the engine's reads, the Graph change subscriptions,
//! the EWS streaming subscriptions and the connection check.
//!
//! The engine knows only its `Source` trait; the server wires these in.

mod ews;
mod graph;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kalsync_engine::{Source, SourceError, SourceFactory};
use kalsync_store::{Instance, InstanceId, SourceConfig};

pub use ews::EwsSource;
pub use graph::GraphSource;

/// One instance's open connection to its calendars.
#[derive(Clone)]
pub enum Connection {
    /// Exchange Online through Microsoft Graph.
    Graph(Arc<GraphSource>),
    /// Exchange through EWS.
    Ews(Arc<EwsSource>),
}

impl Connection {
    /// The connection as the engine reads through it.
    pub fn source(&self) -> Arc<dyn Source> {
        match self {
            Connection::Graph(g) => g.clone(),
            Connection::Ews(e) => e.clone(),
        }
    }

    /// The Graph client, for a Graph instance.
    pub fn graph(&self) -> Option<&kalsync_graph::GraphClient> {
        match self {
            Connection::Graph(g) => Some(g.client()),
            Connection::Ews(_) => None,
        }
    }

    /// The EWS client, for an EWS instance.
    pub fn ews(&self) -> Option<&kalsync_ews::EwsClient> {
        match self {
            Connection::Ews(e) => Some(e.client()),
            Connection::Graph(_) => None,
        }
    }
}

/// The open connections of every instance, built on first use and rebuilt when the
/// instance's source or zone changes (an admin typed a new secret, address or version).
pub struct Connections {
    outbound: kalsync_outbound::OutboundPolicy,
    limits: kalsync_graph::Limits,
    open: Mutex<HashMap<InstanceId, (u64, Connection)>>,
}

impl Connections {
    /// Connections that send only where `outbound` permits.
    pub fn new(outbound: kalsync_outbound::OutboundPolicy) -> Arc<Connections> {
        Arc::new(Connections {
            outbound,
            limits: kalsync_graph::Limits::default(),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The outbound policy every connection obeys.
    pub fn outbound(&self) -> &kalsync_outbound::OutboundPolicy {
        &self.outbound
    }

    /// The connection of `instance`: the open one while its configuration is the same,
    /// otherwise a new one (which replaces it).
    pub fn of(&self, instance: &Instance) -> Result<Connection, SourceError> {
        let fingerprint = fingerprint(instance);
        if let Some((kept, connection)) = self.lock().get(&instance.id) {
            if *kept == fingerprint {
                return Ok(connection.clone());
            }
        }
        let made = self.build(instance)?;
        // Two callers may build at once; the first one kept is the one everybody uses.
        let mut open = self.lock();
        let slot = open
            .entry(instance.id)
            .or_insert_with(|| (fingerprint, made.clone()));
        if slot.0 != fingerprint {
            *slot = (fingerprint, made);
        }
        Ok(slot.1.clone())
    }

    /// A new connection for `instance`, beside the open one and not kept: its sign-in
    /// is done afresh, for the connection check. (NTLM signs a TCP connection in, not
    /// each request, so a kept connection would go on working after the account's
    /// password changed on the server; the check must see that. It must not take the
    /// open connection's token and settings caches away either.)
    pub fn fresh(&self, instance: &Instance) -> Result<Connection, SourceError> {
        self.build(instance)
    }

    fn build(&self, instance: &Instance) -> Result<Connection, SourceError> {
        let zone = instance.settings.time_zone.clone();
        Ok(match &instance.source {
            config @ SourceConfig::Graph { .. } => Connection::Graph(Arc::new(GraphSource::new(
                config,
                zone,
                self.limits.clone(),
                &self.outbound,
            )?)),
            config @ SourceConfig::Ews { .. } => {
                Connection::Ews(Arc::new(EwsSource::new(config, zone, &self.outbound)?))
            }
        })
    }

    /// Closes the connections of instances not in `alive` (removed or deactivated).
    pub fn retain(&self, alive: &[InstanceId]) {
        self.lock().retain(|id, _| alive.contains(id));
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The engine's way in: each instance's source is its connection's.
    pub fn factory(self: &Arc<Self>) -> SourceFactory {
        let connections = self.clone();
        Arc::new(move |instance| connections.of(instance).map(|c| c.source()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceId, (u64, Connection)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The source's configuration and the zone it reads in: what a connection is built from.
fn fingerprint(instance: &Instance) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::hash::DefaultHasher::new();
    instance.source.fingerprint().hash(&mut h);
    instance.settings.time_zone.to_string().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalsync_core::exchange::{Access, SignIn, Version};
    use kalsync_store::{CompanyId, GraphCredential};

    fn graph(secret: &str) -> Instance {
        Instance {
            id: InstanceId(uuid::Uuid::from_u128(1)),
            company: CompanyId(uuid::Uuid::from_u128(2)),
            name: "Acme".into(),
            source: SourceConfig::Graph {
                tenant: "acme.example".into(),
                client_id: "app".into(),
                credential: GraphCredential::Secret(secret.to_owned().into()),
                graph_url: Some("http://127.0.0.1:9/v1.0/".into()),
                login_url: Some("http://127.0.0.1:9/".into()),
            },
            settings: Default::default(),
            active: true,
            created: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    fn same(a: &Connection, b: &Connection) -> bool {
        Arc::ptr_eq(&a.source(), &b.source())
    }

    #[test]
    fn one_connection_per_instance_until_its_configuration_changes() {
        let connections = Connections::new(kalsync_outbound::OutboundPolicy::with_loopback());
        let first = connections.of(&graph("s1")).expect("graph");
        assert!(first.graph().is_some() && first.ews().is_none());
        let again = connections.of(&graph("s1")).expect("graph");
        assert!(
            same(&first, &again),
            "the same client, pool and token cache"
        );

        let typed_again = connections.of(&graph("s2")).expect("graph");
        assert!(
            !same(&first, &typed_again),
            "a new secret, a new connection"
        );
        assert_eq!(connections.len(), 1, "which replaces the old one");

        let fresh = connections.fresh(&graph("s2")).expect("graph");
        assert!(!same(&typed_again, &fresh), "a check signs in afresh");
        assert!(
            same(&typed_again, &connections.of(&graph("s2")).expect("graph")),
            "and leaves the open connection as it was"
        );

        let mut ews = graph("s2");
        ews.source = SourceConfig::Ews {
            url: "http://127.0.0.1:9/EWS/Exchange.asmx".into(),
            username: "CORP\\svc".into(),
            password: "p".to_owned().into(),
            auth: SignIn::Ntlm,
            version: Version::Exchange2013Sp1,
            access: Access::Impersonation,
            options: Default::default(),
        };
        let switched = connections.of(&ews).expect("ews");
        assert!(switched.ews().is_some(), "a new kind, a new connection");

        connections.retain(&[]);
        assert!(connections.is_empty(), "removed instances are closed");
    }
}

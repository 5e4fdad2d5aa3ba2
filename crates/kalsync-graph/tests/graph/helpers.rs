//! A simulator on a loopback port, a client pointed at it, and the shared fixtures.

use std::path::PathBuf;
use std::time::Duration;

use kalsync_core::{Window, Zone};
use kalsync_graph::{AppCredentials, ClientAuth, Endpoints, GraphClient, Limits};
use kalsync_graph_sim::{EventSpec, SimConfig, SimHandle, Simulator, UserSpec};
use secrecy::SecretString;
use url::Url;

pub(crate) const TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";
pub(crate) const CLIENT: &str = "24d3b144-21ae-4080-943f-7067b395b913";
pub(crate) const SECRET: &str = "test-secret-value";

/// `../shared/fixtures/graph` (a test checks [`have_fixtures`] first).
pub(crate) fn graph_fixtures() -> PathBuf {
    kalsync_testkit::fixtures("graph").expect("the shared Graph fixtures")
}

/// Whether the shared Graph fixtures are beside the checkout (else the test is
/// skipped, see `kalsync-testkit`).
pub(crate) fn have_fixtures() -> bool {
    kalsync_testkit::fixtures("graph").is_some()
}

pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(graph_fixtures().join(name)).expect("fixture")
}

pub(crate) fn stockholm() -> Zone {
    Zone::parse("Europe/Stockholm").expect("zone")
}

pub(crate) use kalsync_testkit::at;

pub(crate) fn week() -> Window {
    Window {
        start: at("2026-11-23"),
        end: at("2026-12-07"),
    }
}

pub(crate) struct Setup {
    pub(crate) sim: Simulator,
    pub(crate) base: Url,
    pub(crate) _handle: SimHandle,
}

pub(crate) async fn simulator(config: SimConfig) -> Setup {
    let sim = Simulator::new(config);
    let (base, handle) = kalsync_graph_sim::spawn(sim.clone())
        .await
        .expect("simulator starts");
    Setup {
        sim,
        base,
        _handle: handle,
    }
}

pub(crate) async fn default_simulator() -> Setup {
    simulator(SimConfig::with_secret(TENANT, CLIENT, SECRET)).await
}

pub(crate) fn quick_limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(5),
        max_retry_wait: Duration::from_secs(5),
        ..Limits::default()
    }
}

pub(crate) fn client_with(
    base: &Url,
    auth: ClientAuth,
    tenant: &str,
    limits: Limits,
) -> GraphClient {
    GraphClient::new(
        Endpoints::at(base).expect("endpoints"),
        AppCredentials {
            tenant: tenant.into(),
            client_id: CLIENT.into(),
            auth,
        },
        limits,
        &kalsync_outbound::OutboundPolicy::with_loopback(),
    )
    .expect("client")
}

pub(crate) fn client(base: &Url) -> GraphClient {
    client_with(
        base,
        ClientAuth::Secret(SecretString::from(SECRET)),
        TENANT,
        quick_limits(),
    )
}

pub(crate) fn user(sim: &Simulator, upn: &str) -> String {
    sim.add_user(UserSpec {
        upn: upn.into(),
        id: None,
        display_name: None,
        time_zone: "W. Europe Standard Time".into(),
        working_hours: None,
    })
    .expect("user")
}

pub(crate) fn event(subject: &str, start: &str, end: &str) -> EventSpec {
    EventSpec {
        body: "CONFIDENTIAL BODY TEXT".into(),
        ..EventSpec::new(subject, at(start), at(end))
    }
}

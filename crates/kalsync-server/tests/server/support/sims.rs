//! The simulated Microsoft 365 and Exchange the scenarios read: mailboxes in Stockholm's
//! zone, Anna's mailbox served over Graph (and over EWS, account `CORP\svc-kalsync`,
//! password `Sommar2026!`), her lunch booked in it.

use kalsync_graph_sim::{EventSpec, SimConfig, Simulator, UserSpec};
use kalsync_server::settings::SourceDecl;

use super::acme::ANNA;

/// The EWS simulator's service account.
pub(crate) const EWS_ACCOUNT: &str = "CORP\\svc-kalsync";
/// Its password.
pub(crate) const EWS_PASSWORD: &str = "Sommar2026!";

/// A mailbox in Stockholm's zone.
pub(crate) fn mailbox(upn: &str) -> UserSpec {
    UserSpec {
        upn: upn.into(),
        id: None,
        display_name: None,
        time_zone: "W. Europe Standard Time".into(),
        working_hours: None,
    }
}

/// A simulated organisation with these mailboxes.
pub(crate) fn simulator(config: SimConfig, upns: &[&str]) -> Simulator {
    let sim = Simulator::new(config);
    for upn in upns {
        sim.add_user(mailbox(upn)).expect("user");
    }
    sim
}

/// A Graph simulator (tenant `t`, client `c`, secret `s`) with one mailbox, Anna's.
pub(crate) fn simulator_with_anna() -> Simulator {
    simulator(SimConfig::with_secret("t", "c", "s"), &[ANNA])
}

/// Anna's simulator with a lunch in force now (it began five minutes ago; whole seconds),
/// served on a loopback port; and when the lunch ends.
pub(crate) async fn anna_at_lunch() -> (
    Simulator,
    url::Url,
    kalsync_graph_sim::SimHandle,
    jiff::Timestamp,
) {
    let sim = simulator_with_anna();
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).expect("now");
    sim.create_event(
        ANNA,
        EventSpec::new(
            "LUN: Lunch",
            now - jiff::SignedDuration::from_mins(5),
            now + jiff::SignedDuration::from_mins(55),
        ),
    )
    .expect("event");
    let (url, handle) = kalsync_graph_sim::spawn(sim.clone()).await.expect("sim");
    (sim, url, handle, now + jiff::SignedDuration::from_mins(55))
}

/// A lunch in Anna's calendar from a minute ago for an hour, booked now.
pub(crate) fn book_lunch_now(calendars: &Simulator) {
    let now = jiff::Timestamp::now();
    calendars
        .create_event(
            ANNA,
            EventSpec::new(
                "LUN: Lunch",
                now - jiff::SignedDuration::from_mins(1),
                now + jiff::SignedDuration::from_mins(59),
            ),
        )
        .expect("event");
}

/// The EWS simulator's default configuration: [`EWS_ACCOUNT`] with [`EWS_PASSWORD`],
/// impersonating everyone.
pub(crate) fn ews_config() -> kalsync_ews_sim::EwsConfig {
    kalsync_ews_sim::EwsConfig::new(EWS_ACCOUNT, EWS_PASSWORD)
}

/// An EWS instance on the simulator at `base`, impersonating, password `Sommar2026!`.
pub(crate) fn ews_source(base: &url::Url, username: &str, auth: &str, version: &str) -> SourceDecl {
    SourceDecl::Ews {
        url: format!("{base}EWS/Exchange.asmx"),
        username: username.into(),
        password: EWS_PASSWORD.to_owned().into(),
        auth: kalsync_core::exchange::SignIn::parse(auth).expect("a sign-in"),
        version: kalsync_core::exchange::Version::parse(version).expect("a version"),
        access: kalsync_core::exchange::Access::Impersonation,
        options: Default::default(),
        ca_file: None,
    }
}

/// Anna's mailbox served over Graph and over EWS.
pub(crate) struct Exchange {
    /// The calendars both serve.
    pub(crate) calendars: Simulator,
    /// The Graph simulator's root.
    pub(crate) sim_url: url::Url,
    /// The EWS simulator.
    pub(crate) ews: kalsync_ews_sim::EwsSim,
    /// The EWS simulator's root.
    pub(crate) ews_url: url::Url,
    /// Both servers, served while this lives.
    pub(crate) _servers: (kalsync_graph_sim::SimHandle, kalsync_ews_sim::EwsHandle),
}

impl Exchange {
    /// Acme's settings with its instance on this Exchange over EWS (the service account,
    /// `auth`, `version`, impersonation), polled only hourly: a change that arrives
    /// sooner came by notification.
    pub(crate) fn acme_over_ews(&self, auth: &str, version: &str) -> kalsync_server::Settings {
        let mut s = super::acme::settings(&self.sim_url);
        s.engine.poll_interval_secs = 3600;
        s.companies[0].instances[0].source = ews_source(&self.ews_url, EWS_ACCOUNT, auth, version);
        s
    }
}

/// Anna's mailbox over Graph and EWS ([`ews_config`]), nothing booked.
pub(crate) async fn exchange_with_anna() -> Exchange {
    let calendars = simulator_with_anna();
    let (sim_url, graph) = kalsync_graph_sim::spawn(calendars.clone())
        .await
        .expect("sim");
    let ews = kalsync_ews_sim::EwsSim::new(calendars.clone(), ews_config());
    let (ews_url, server) = kalsync_ews_sim::spawn(ews.clone()).await.expect("ews");
    Exchange {
        calendars,
        sim_url,
        ews,
        ews_url,
        _servers: (graph, server),
    }
}

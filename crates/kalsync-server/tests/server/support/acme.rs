//! The sample company most scenarios run: Acme, whose Microsoft 365 instance (`M365`, on
//! a simulated Graph) holds Anna at extension 201 and delivers to the PBX simulator; the
//! operator every such service has, and Acme's own admin for the tests that add it.

use kalsync_server::Settings;
use kalsync_server::settings::{
    AccountDecl, CompanyDecl, InstanceDecl, OutboundSettings, SourceDecl, TargetDecl, UserDecl,
};

/// Anna's mailbox.
pub(crate) const ANNA: &str = "anna@acme.example";

/// The operator account every service of [`settings`] has.
pub(crate) const OPERATOR: &str = "ops@operator.example";
/// The operator's password.
pub(crate) const OPERATOR_PASSWORD: &str = "operatörens-lösenord";

/// Acme's company admin ([`admin`]).
pub(crate) const ADMIN: &str = "it@acme.example";
/// Acme's admin's password.
pub(crate) const ADMIN_PASSWORD: &str = "ett-långt-lösenord";

/// Acme reading Anna from the Graph simulator at `sim_url` (tenant `t`, client `c`,
/// secret `s`), prefix rules, one simulator target; polled every second, changes
/// delivered at once; the operator's account. The database and key are the test app's.
pub(crate) fn settings(sim_url: &url::Url) -> Settings {
    let table: toml::Table = toml::from_str("template = \"prefix\"").expect("settings");
    let mut s = Settings {
        companies: vec![CompanyDecl {
            name: "Acme".into(),
            targets: vec![TargetDecl::Simulator { name: "pbx".into() }],
            instances: vec![InstanceDecl {
                name: "M365".into(),
                source: SourceDecl::Graph {
                    tenant: "t".into(),
                    client_id: "c".into(),
                    client_secret: "s".to_owned().into(),
                    graph_url: Some(format!("{sim_url}v1.0/")),
                    login_url: Some(sim_url.to_string()),
                },
                settings: Some(table),
                users: vec![UserDecl::Full {
                    email: ANNA.into(),
                    name: Some("Anna".into()),
                    extension: Some("201".into()),
                }],
                directory: None,
            }],
        }],
        // The simulators listen on loopback.
        outbound: OutboundSettings::loopback(),
        ..Settings::default()
    };
    s.engine.poll_interval_secs = 1;
    s.engine.debounce_ms = 0;
    s.accounts = vec![AccountDecl {
        email: OPERATOR.into(),
        role: "operator".into(),
        company: None,
        password: OPERATOR_PASSWORD.to_owned().into(),
    }];
    s
}

/// Acme's company admin, for tests that add it.
pub(crate) fn admin() -> AccountDecl {
    AccountDecl {
        email: ADMIN.into(),
        role: "company_admin".into(),
        company: Some("Acme".into()),
        password: ADMIN_PASSWORD.to_owned().into(),
    }
}

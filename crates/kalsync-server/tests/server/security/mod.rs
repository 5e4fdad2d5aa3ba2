//! Security end to end: secrets stay secret (`secrets`); hostile notifications are
//! refused and change nothing (`notifications`); sources and targets on local addresses
//! are refused (`outbound`); an open stream does not hold a stop up (`stop`). Every
//! scenario here logs at TRACE into one captured log, which `secrets` and
//! `notifications` scan.

mod notifications;
mod outbound;
mod secrets;
mod stop;

use std::io::Write;
use std::sync::{Arc, Mutex};

use kalsync_server::settings::{CompanyDecl, InstanceDecl, SourceDecl, TargetDecl, UserDecl};

/// Anna's automatic reply to colleagues: read as her absence, never kept or shown.
pub(crate) const OOF_INTERNAL: &str = "Jag är på konferens i Malmö, ring Bo på 0701234567";
/// And to others.
pub(crate) const OOF_EXTERNAL: &str =
    "Out at the Malmö conference; write to sales-oof@acme.example";

/// The Graph instance's client secret.
pub(crate) const GRAPH_SECRET: &str = "graph-client-secret-7f3a9d";
/// What the Graph secret is changed to.
pub(crate) const ROTATED_SECRET: &str = "graph-client-secret-rotated-8b21";
/// The Exchange service account's password.
pub(crate) const EWS_PASSWORD: &str = "ews-service-password-91c2";
/// The webhook's signing key.
pub(crate) const WEBHOOK_KEY: &str = "c2lnbmluZy1zZWNyZXQtb2YtdGhlLXdlYmhvb2s";
/// The AMI manager's secret.
pub(crate) const AMI_SECRET: &str = "ami-manager-secret-55e1";
/// The operator's Microsoft 365 app secret.
pub(crate) const OPERATOR_APP_SECRET: &str = "operator-app-secret-3c7d";
/// The accounts' password.
pub(crate) const ADMIN_PASSWORD: &str = "admin-password-4411-lång";

/// The simulated Microsoft 365 tenant.
pub(crate) const SIM_TENANT: &str = "84bd8158-6d4d-4958-8b9f-9d6445542f95";

/// Everything the service logs, at every level.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The process's one log, at TRACE, captured from the first call on — of every scenario
/// of this binary running then, not only these (a subscriber set per thread misses
/// events while another test's thread registers its own).
pub(crate) fn captured() -> &'static Captured {
    static LOG: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(kalsync_server::logs::LineSafe(log.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        log
    })
}

impl Captured {
    /// What was logged so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Acme with a webhook and an AMI target, a Graph instance (Graph and login at
/// `graph_root`) and an EWS one at `ews`, each with `user`, and every kind of secret.
pub(crate) fn acme_with_every_source_and_target(
    hook: &str,
    ami_port: u16,
    graph_root: &str,
    ews: &str,
    user: UserDecl,
) -> CompanyDecl {
    CompanyDecl {
        name: "Acme".into(),
        targets: vec![
            TargetDecl::Webhook {
                name: "hook".into(),
                url: hook.to_owned(),
                signing_secret: format!("whsec_{WEBHOOK_KEY}").into(),
                batch: false,
            },
            TargetDecl::Ami {
                name: "asterisk".into(),
                host: "127.0.0.1".into(),
                port: ami_port,
                username: "kalsync".into(),
                secret: AMI_SECRET.to_owned().into(),
                announcement: "*99".into(),
            },
        ],
        instances: vec![
            InstanceDecl {
                name: "M365".into(),
                source: SourceDecl::Graph {
                    tenant: SIM_TENANT.into(),
                    client_id: "c".into(),
                    client_secret: GRAPH_SECRET.to_owned().into(),
                    graph_url: Some(format!("{graph_root}v1.0/")),
                    login_url: Some(graph_root.to_owned()),
                },
                settings: Some(
                    toml::from_str("template = \"prefix\"\n[automatic_replies]\nenabled = true\n")
                        .expect("rules"),
                ),
                users: vec![user.clone()],
                directory: None,
            },
            InstanceDecl {
                name: "Exchange".into(),
                source: SourceDecl::Ews {
                    url: ews.to_owned(),
                    username: "CORP\\svc-kalsync".into(),
                    password: EWS_PASSWORD.to_owned().into(),
                    auth: kalsync_core::exchange::SignIn::Ntlm,
                    version: kalsync_core::exchange::Version::Exchange2013Sp1,
                    access: kalsync_core::exchange::Access::Impersonation,
                    options: Default::default(),
                    ca_file: None,
                },
                settings: Some(
                    toml::from_str("template = \"prefix\"\n[automatic_replies]\nenabled = true\n")
                        .expect("rules"),
                ),
                users: vec![user],
                directory: None,
            },
        ],
    }
}

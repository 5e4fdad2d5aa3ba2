//! Sources as the engine sees them: something that reads a mailbox's window. The Graph
//! and EWS adapters live here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use kalsync_core::{Booking, EmailAddress, Window, WorkingHours, Zone};
use kalsync_graph::{
    AppCredentials, ClientAuth, Endpoints, GraphClient, GraphError, Limits, ReadOptions,
};
use kalsync_store::{GraphCredential, SourceConfig};

/// A mailbox's own zone and working hours, where the source knows them.
#[derive(Debug, Clone, Default)]
pub struct Mailbox {
    /// Zone of its working hours (or of the mailbox).
    pub zone: Option<Zone>,
    /// Outlook working hours.
    pub working_hours: Option<WorkingHours>,
}

/// One read of a mailbox's window.
#[derive(Debug, Clone, Default)]
pub struct SourceRead {
    /// The bookings.
    pub bookings: Vec<Booking>,
    /// Items that could not be read: (id, why).
    pub rejected: Vec<(String, String)>,
    /// The mailbox's settings, when known.
    pub mailbox: Mailbox,
}

/// Why a read failed, kept apart so the engine can wait, retry or report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// Throttled; try after this.
    #[error("throttled; retry after {} ms", retry_after.as_millis())]
    Throttled {
        /// How long.
        retry_after: Duration,
    },
    /// The mailbox does not exist.
    #[error("mailbox not found: {0}")]
    NotFound(String),
    /// No right to read it.
    #[error("access denied: {0}")]
    Forbidden(String),
    /// Credentials refused: the admin must act.
    #[error("credentials: {0}")]
    Credentials(String),
    /// Anything else; may pass.
    #[error("{0}")]
    Failed(String),
}

/// Reads bookings of mailboxes of one instance.
#[async_trait]
pub trait Source: Send + Sync {
    /// Reads a mailbox's window. Subjects only when `subjects`.
    async fn read(
        &self,
        mailbox: &EmailAddress,
        window: Window,
        subjects: bool,
    ) -> Result<SourceRead, SourceError>;

    /// A cheap look at whether anything in the mailbox's calendar changed since
    /// `cursor` (a token this source gave before; none: prime one). `None`: the source
    /// cannot tell, so a poll reads the window.
    async fn changes(
        &self,
        _mailbox: &EmailAddress,
        _cursor: Option<&str>,
    ) -> Result<Option<Changes>, SourceError> {
        Ok(None)
    }
}

/// What a cheap look for changes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Something changed (always, when no cursor was given).
    pub any: bool,
    /// The cursor to keep for the next look.
    pub cursor: String,
}

/// Microsoft Graph.
pub struct GraphSource {
    client: GraphClient,
    fallback_zone: Zone,
    /// Mailbox settings change rarely: read at most hourly.
    mailboxes: Mutex<HashMap<String, (Mailbox, Timestamp)>>,
}

impl From<GraphError> for SourceError {
    fn from(e: GraphError) -> Self {
        match e {
            GraphError::Throttled { retry_after } => SourceError::Throttled { retry_after },
            GraphError::NotFound(m) => SourceError::NotFound(m),
            GraphError::Forbidden(m) => SourceError::Forbidden(m),
            GraphError::Token(t) => SourceError::Credentials(t.to_string()),
            GraphError::Unauthorized(m) => SourceError::Credentials(m),
            other => SourceError::Failed(other.to_string()),
        }
    }
}

impl GraphSource {
    /// A source for an instance's Graph configuration, sending only where `outbound`
    /// permits.
    pub fn new(
        config: &SourceConfig,
        zone: Zone,
        limits: Limits,
        outbound: &kalsync_outbound::OutboundPolicy,
    ) -> Result<GraphSource, SourceError> {
        let SourceConfig::Graph {
            tenant,
            client_id,
            credential,
            graph_url,
            login_url,
        } = config
        else {
            return Err(SourceError::Failed("not a Microsoft Graph instance".into()));
        };
        let mut endpoints = Endpoints::global();
        if let Some(g) = graph_url {
            endpoints.graph =
                url::Url::parse(g).map_err(|e| SourceError::Failed(format!("graph_url: {e}")))?;
        }
        if let Some(l) = login_url {
            endpoints.login =
                url::Url::parse(l).map_err(|e| SourceError::Failed(format!("login_url: {e}")))?;
        }
        let auth = match credential {
            GraphCredential::Secret(s) => ClientAuth::Secret(s.clone()),
            GraphCredential::Certificate {
                certificate_pem,
                private_key_pem,
            } => ClientAuth::Certificate {
                certificate_pem: certificate_pem.clone(),
                private_key_pem: private_key_pem.clone(),
            },
        };
        let client = GraphClient::new(
            endpoints,
            AppCredentials {
                tenant: tenant.clone(),
                client_id: client_id.clone(),
                auth,
            },
            limits,
            outbound,
        )?;
        Ok(GraphSource {
            client,
            fallback_zone: zone,
            mailboxes: Mutex::new(HashMap::new()),
        })
    }

    /// The client, for subscriptions.
    pub fn client(&self) -> &GraphClient {
        &self.client
    }

    async fn mailbox(&self, mailbox: &EmailAddress) -> Mailbox {
        let now = Timestamp::now();
        if let Some((m, at)) = self
            .mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(mailbox.as_str())
        {
            if now.duration_since(*at) < jiff::SignedDuration::from_hours(1) {
                return m.clone();
            }
        }
        // Without MailboxSettings.Read the instance's settings stand.
        let m = match self.client.mailbox_settings(mailbox.as_str()).await {
            Ok(s) => Mailbox {
                zone: s.working_hours_zone.or(s.zone),
                working_hours: s.working_hours,
            },
            Err(e) => {
                tracing::debug!(mailbox = %mailbox, error = %e, "no mailbox settings; the instance's apply");
                Mailbox::default()
            }
        };
        self.mailboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(mailbox.to_string(), (m.clone(), now));
        m
    }
}

#[async_trait]
impl Source for GraphSource {
    async fn read(
        &self,
        mailbox: &EmailAddress,
        window: Window,
        subjects: bool,
    ) -> Result<SourceRead, SourceError> {
        let read = self
            .client
            .calendar_view(
                mailbox.as_str(),
                window,
                ReadOptions {
                    subject: subjects,
                    // Shown nowhere, so never read (SPEC §3.1).
                    location: false,
                },
                &self.fallback_zone,
            )
            .await?;
        Ok(SourceRead {
            bookings: read.bookings,
            rejected: read
                .rejected
                .into_iter()
                .map(|(id, e)| (id, e.to_string()))
                .collect(),
            mailbox: self.mailbox(mailbox).await,
        })
    }
}

/// On-premises Exchange over EWS: the window read with `FindItem` and `GetItem`.
pub struct EwsSource {
    client: kalsync_ews::EwsClient,
    fallback_zone: Zone,
}

impl From<kalsync_ews::EwsError> for SourceError {
    fn from(e: kalsync_ews::EwsError) -> Self {
        use kalsync_ews::EwsError;
        if e.is_throttling() {
            return SourceError::Throttled {
                retry_after: e.back_off().unwrap_or(Duration::from_secs(30)),
            };
        }
        match (&e, e.code()) {
            (EwsError::Unauthorized(m), _) => SourceError::Credentials(m.clone()),
            (_, Some("ErrorImpersonateUserDenied")) => SourceError::Forbidden(format!(
                "{e} — the service account may not impersonate this mailbox: assign it the ApplicationImpersonation role (New-ManagementRoleAssignment) for a scope that includes the mailbox"
            )),
            (_, Some("ErrorAccessDenied")) => SourceError::Forbidden(format!(
                "{e} — give the service account Reviewer on the mailbox's calendar (Add-MailboxFolderPermission -AccessRights Reviewer) or use impersonation"
            )),
            (_, Some("ErrorNonExistentMailbox" | "ErrorMailboxStoreUnavailable")) => {
                SourceError::NotFound(e.to_string())
            }
            _ => SourceError::Failed(e.to_string()),
        }
    }
}

impl EwsSource {
    /// The source of an EWS instance; `zone` is the instance's. It sends only where
    /// `outbound` permits.
    pub fn new(
        config: &SourceConfig,
        zone: Zone,
        outbound: &kalsync_outbound::OutboundPolicy,
    ) -> Result<EwsSource, SourceError> {
        let SourceConfig::Ews {
            url,
            username,
            password,
            auth,
            version,
            access,
            options,
        } = config
        else {
            return Err(SourceError::Failed("not an EWS instance".into()));
        };
        let url = url::Url::parse(url).map_err(|e| SourceError::Failed(format!("url: {e}")))?;
        let auth = match auth.as_str() {
            "basic" => kalsync_ews::Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            "ntlm" => kalsync_ews::Auth::Ntlm {
                username: username.clone(),
                password: password.clone(),
            },
            "oauth" => kalsync_ews::Auth::OAuth(std::sync::Arc::new(EntraTokens::new(
                &url, username, password, options, outbound,
            )?)),
            other => {
                return Err(SourceError::Failed(format!(
                    "auth `{other}` (expected ntlm, basic or oauth)"
                )));
            }
        };
        let mut settings = kalsync_ews::Settings::new(url, auth);
        if let Some(n) = options.max_concurrency {
            settings.max_concurrency = usize::try_from(n.max(1)).unwrap_or(10);
        }
        settings.ca_pem = options.ca_pem.clone();
        settings.version = kalsync_ews::Version::parse(version).map_err(SourceError::Failed)?;
        settings.access = match access.as_str() {
            "impersonation" => kalsync_ews::Access::Impersonation,
            "delegate" => kalsync_ews::Access::Delegate,
            other => {
                return Err(SourceError::Failed(format!(
                    "access `{other}` (expected impersonation or delegate)"
                )));
            }
        };
        settings.zone = kalsync_core::WindowsZone::from_zone(&zone);
        settings.outbound = outbound.clone();
        Ok(EwsSource {
            client: kalsync_ews::EwsClient::new(settings)?,
            fallback_zone: zone,
        })
    }
}

/// OAuth tokens for EWS from Entra ID (client credentials): the app registration with
/// `full_access_as_app` (Exchange Online) or hybrid modern auth on premises.
struct EntraTokens(kalsync_graph::TokenSource);

impl EntraTokens {
    /// `client_id` and `secret` of the app in `options.tenant`; the scope defaults to
    /// the EWS host's `/.default`.
    fn new(
        ews: &url::Url,
        client_id: &str,
        secret: &secrecy::SecretString,
        options: &kalsync_store::EwsOptions,
        outbound: &kalsync_outbound::OutboundPolicy,
    ) -> Result<EntraTokens, SourceError> {
        let tenant = options.tenant.clone().ok_or_else(|| {
            SourceError::Failed("auth `oauth` needs options.tenant (the app's tenant)".into())
        })?;
        let login = match &options.login_url {
            Some(l) => url::Url::parse(l)
                .map_err(|e| SourceError::Failed(format!("options.login_url: {e}")))?,
            None => Endpoints::global().login,
        };
        let scope = match &options.scope {
            Some(s) => s.clone(),
            None => format!(
                "{}://{}/.default",
                ews.scheme(),
                ews.host_str().unwrap_or_default()
            ),
        };
        outbound
            .check_url(&login)
            .map_err(|e| SourceError::Failed(e.to_string()))?;
        let http = outbound
            .http()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| SourceError::Failed(e.to_string()))?;
        let credentials = AppCredentials {
            tenant,
            client_id: client_id.to_owned(),
            auth: ClientAuth::Secret(secret.clone()),
        };
        kalsync_graph::TokenSource::new(http, &login, &scope, credentials)
            .map(EntraTokens)
            .map_err(|e| SourceError::Credentials(e.to_string()))
    }
}

#[async_trait]
impl kalsync_ews::TokenProvider for EntraTokens {
    async fn token(&self) -> Result<secrecy::SecretString, kalsync_ews::EwsError> {
        self.0.token().await.map_err(|e| {
            kalsync_ews::EwsError::Unauthorized(format!("no OAuth token for Exchange: {e}"))
        })
    }

    async fn invalidate(&self) {
        self.0.invalidate().await;
    }
}

impl EwsSource {
    /// The client (for subscriptions).
    pub fn client(&self) -> &kalsync_ews::EwsClient {
        &self.client
    }
}

#[async_trait]
impl Source for EwsSource {
    async fn read(
        &self,
        mailbox: &EmailAddress,
        window: Window,
        subjects: bool,
    ) -> Result<SourceRead, SourceError> {
        let read = self
            .client
            .read_window(
                mailbox.as_str(),
                window.start,
                window.end,
                kalsync_ews::Shape {
                    subject: subjects,
                    // Shown nowhere, so never read (SPEC §3.1).
                    location: false,
                },
                &self.fallback_zone,
            )
            .await?;
        Ok(SourceRead {
            bookings: read.bookings,
            rejected: read.rejected,
            mailbox: Mailbox::default(),
        })
    }

    /// `SyncFolderItems` from the kept sync state. A state Exchange no longer knows
    /// counts as a change, with a fresh state.
    async fn changes(
        &self,
        mailbox: &EmailAddress,
        cursor: Option<&str>,
    ) -> Result<Option<Changes>, SourceError> {
        let found = match self.client.folder_changes(mailbox.as_str(), cursor).await {
            Err(e) if e.code() == Some("ErrorInvalidSyncStateData") && cursor.is_some() => {
                tracing::info!(mailbox = %mailbox, "exchange forgot the sync state; reading afresh");
                let mut fresh = self.client.folder_changes(mailbox.as_str(), None).await?;
                fresh.changed = true;
                fresh
            }
            other => other?,
        };
        Ok(Some(Changes {
            any: found.changed || cursor.is_none(),
            cursor: found.sync_state,
        }))
    }
}

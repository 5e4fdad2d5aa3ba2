//! On-premises Exchange (or Exchange Online over EWS) as a source: the window read with
//! `FindItem` and `GetItem`, cheap change checks with `SyncFolderItems`, OAuth tokens
//! from Entra ID when the instance signs in that way.

use std::time::Duration;

use async_trait::async_trait;
use kalsync_core::exchange::SignIn;
use kalsync_core::{EmailAddress, Window, Zone};
use kalsync_engine::{Changes, Mailbox, Source, SourceError, SourceRead};
use kalsync_graph::{AppCredentials, ClientAuth, Endpoints};
use kalsync_store::SourceConfig;

/// On-premises Exchange over EWS: the window read with `FindItem` and `GetItem`.
pub struct EwsSource {
    client: kalsync_ews::EwsClient,
    fallback_zone: Zone,
}

/// What an EWS error means to the engine, with what the Exchange admin must do.
pub(crate) fn source_error(e: kalsync_ews::EwsError) -> SourceError {
    {
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
    pub(crate) fn new(
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
        let auth = match auth {
            SignIn::Basic => kalsync_ews::Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            SignIn::Ntlm => kalsync_ews::Auth::Ntlm {
                username: username.clone(),
                password: password.clone(),
            },
            SignIn::OAuth => kalsync_ews::Auth::OAuth(std::sync::Arc::new(EntraTokens::new(
                &url, username, password, options, outbound,
            )?)),
        };
        let mut settings = kalsync_ews::Settings::new(url, auth);
        if let Some(n) = options.max_concurrency {
            settings.max_concurrency = usize::try_from(n.max(1)).unwrap_or(10);
        }
        settings.ca_pem = options.ca_pem.clone();
        settings.version = *version;
        settings.access = *access;
        settings.zone = kalsync_core::WindowsZone::from_zone(&zone);
        settings.outbound = outbound.clone();
        Ok(EwsSource {
            client: kalsync_ews::EwsClient::new(settings).map_err(source_error)?,
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
            .await
            .map_err(source_error)?;
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
                let mut fresh = self
                    .client
                    .folder_changes(mailbox.as_str(), None)
                    .await
                    .map_err(source_error)?;
                fresh.changed = true;
                fresh
            }
            other => other.map_err(source_error)?,
        };
        Ok(Some(Changes {
            any: found.changed || cursor.is_none(),
            cursor: found.sync_state,
        }))
    }

    async fn shorten(
        &self,
        mailbox: &EmailAddress,
        booking: &kalsync_core::BookingId,
        end: jiff::Timestamp,
    ) -> Result<kalsync_engine::Shortened, SourceError> {
        self.client
            .shorten_item(mailbox.as_str(), booking.as_str(), end)
            .await
            .map(kalsync_engine::Shortened::unless)
            .map_err(source_error)
    }

    /// `GetUserOofSettings`, one mailbox at a time (EWS has no batch for it), a few at
    /// once.
    async fn automatic_replies(
        &self,
        mailboxes: &[EmailAddress],
    ) -> Vec<Result<kalsync_core::AutomaticReplies, SourceError>> {
        let mut out = Vec::with_capacity(mailboxes.len());
        for chunk in mailboxes.chunks(8) {
            let mut reads = Vec::with_capacity(chunk.len());
            for m in chunk {
                reads.push(self.client.automatic_replies(m.as_str()));
            }
            for r in futures_util::future::join_all(reads).await {
                out.push(r.map_err(source_error));
            }
        }
        out
    }
}

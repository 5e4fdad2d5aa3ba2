//! Microsoft Graph as a source: an instance's app reads each mailbox's calendarView (and,
//! hourly at most, its mailbox settings); the same client makes the instance's change
//! subscriptions and answers the connection check.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use jiff::Timestamp;
use kalsync_core::{EmailAddress, Window, Zone};
use kalsync_engine::{Mailbox, Source, SourceError, SourceRead};
use kalsync_graph::{
    AppCredentials, ClientAuth, Endpoints, GraphClient, GraphError, Limits, ReadOptions,
};
use kalsync_store::{GraphCredential, SourceConfig};

/// Microsoft Graph.
pub struct GraphSource {
    client: GraphClient,
    fallback_zone: Zone,
    /// Mailbox settings change rarely: read at most hourly.
    mailboxes: Mutex<HashMap<String, (Mailbox, Timestamp)>>,
}

/// What a Graph error means to the engine.
pub(crate) fn source_error(e: GraphError) -> SourceError {
    {
        match e {
            GraphError::Throttled { retry_after } => SourceError::Throttled { retry_after },
            GraphError::NotFound(m) => SourceError::NotFound(m),
            GraphError::Forbidden(m) => SourceError::Forbidden(m),
            // Entra ID unreachable or answering nonsense (a 503, a cut connection) passes:
            // the read is tried again. Every other refusal needs the admin.
            GraphError::Token(t @ kalsync_graph::TokenError::Unreachable(_)) => {
                SourceError::Failed(t.to_string())
            }
            GraphError::Token(t) => SourceError::Credentials(t.to_string()),
            GraphError::Unauthorized(m) => SourceError::Credentials(m),
            other => SourceError::Failed(other.to_string()),
        }
    }
}

impl GraphSource {
    /// A source for an instance's Graph configuration, sending only where `outbound`
    /// permits.
    pub(crate) fn new(
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
        )
        .map_err(source_error)?;
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
            .await
            .map_err(source_error)?;
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

    async fn shorten(
        &self,
        mailbox: &EmailAddress,
        booking: &kalsync_core::BookingId,
        end: Timestamp,
    ) -> Result<kalsync_engine::Shortened, SourceError> {
        self.client
            .shorten_event(mailbox.as_str(), booking.as_str(), end)
            .await
            .map(kalsync_engine::Shortened::unless)
            .map_err(source_error)
    }

    async fn automatic_replies(
        &self,
        mailboxes: &[EmailAddress],
    ) -> Vec<Result<kalsync_core::AutomaticReplies, SourceError>> {
        let users: Vec<String> = mailboxes.iter().map(|m| m.as_str().to_owned()).collect();
        self.client
            .automatic_replies(&users)
            .await
            .into_iter()
            .map(|r| r.map_err(source_error))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalsync_graph::TokenError;

    #[test]
    fn an_unreachable_login_endpoint_is_tried_again_and_a_refusal_is_for_the_admin() {
        // A 503 from Entra ID or a cut connection passes: the read is retried, not
        // dropped until the next poll.
        let unreachable = GraphError::Token(TokenError::Unreachable("503".into()));
        assert!(matches!(source_error(unreachable), SourceError::Failed(_)));
        let wrong = GraphError::Token(TokenError::InvalidSecret("AADSTS7000215".into()));
        assert!(matches!(source_error(wrong), SourceError::Credentials(_)));
        let throttled = GraphError::Throttled {
            retry_after: std::time::Duration::from_secs(3),
        };
        assert!(matches!(
            source_error(throttled),
            SourceError::Throttled { .. }
        ));
    }
}

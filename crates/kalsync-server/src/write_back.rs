//! Write-back to calendars after "I'm back" (opt-in per instance): the appointments the
//! absence came from are shortened to end now through the instance's own connection —
//! only ones the person organised without attendees (a meeting is left alone, and the
//! audit log says so). The next read confirms it. Without the right to write, the log
//! and the audit log say so once per instance, and the phone's word stands.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use kalsync_core::BookingId;
use kalsync_engine::{Shortened, SourceError};
use kalsync_sources::Connections;
use kalsync_store::{Instance, InstanceId, NewAuditEntry, Store, User};

/// Shortens appointments through the instances' connections.
pub(crate) struct CalendarWriter {
    store: Arc<dyn Store>,
    connections: Arc<Connections>,
    /// Instances whose write was refused (said once).
    told: Mutex<HashSet<InstanceId>>,
}

impl CalendarWriter {
    pub(crate) fn new(store: Arc<dyn Store>, connections: Arc<Connections>) -> CalendarWriter {
        CalendarWriter {
            store,
            connections,
            told: Mutex::default(),
        }
    }

    async fn audit(&self, instance: &Instance, action: &str, detail: serde_json::Value) {
        let entry = NewAuditEntry {
            company: Some(instance.company),
            actor: "pbx".into(),
            action: action.into(),
            detail,
        };
        if let Err(e) = self.store.audit(entry).await {
            tracing::warn!(error = %e, "the audit log cannot be written");
        }
    }

    async fn run(&self, instance: Instance, user: User, bookings: Vec<BookingId>, end: Timestamp) {
        let source = match self.connections.of(&instance) {
            Ok(c) => c.source(),
            Err(e) => {
                tracing::warn!(instance = %instance.id, error = %e, "no connection to write back with");
                return;
            }
        };
        let mut shortened = false;
        for booking in bookings {
            let detail = serde_json::json!({"user": user.id, "end": end.to_string()});
            match source.shorten(&user.email, &booking, end).await {
                Ok(Shortened::Done) => {
                    shortened = true;
                    self.audit(&instance, "calendar.shortened", detail).await;
                }
                Ok(Shortened::LeftAlone(why)) => {
                    let mut detail = detail;
                    detail["why"] = why.into();
                    self.audit(&instance, "calendar.left_alone", detail).await;
                }
                Err(SourceError::Forbidden(why)) => {
                    let first = self
                        .told
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(instance.id);
                    if first {
                        tracing::warn!(instance = %instance.id, why, "the calendar may not be written (Graph: Calendars.ReadWrite; EWS: impersonation): \"I'm back\" stands on the PBX only");
                        self.audit(
                            &instance,
                            "calendar.write_refused",
                            serde_json::json!({"why": "grant Calendars.ReadWrite (Graph) or impersonation (EWS)"}),
                        )
                        .await;
                    }
                }
                Err(e) => {
                    tracing::warn!(instance = %instance.id, user = %user.id, error = %e, "an appointment could not be shortened");
                }
            }
        }
        if shortened {
            // The next read confirms what the calendar now says.
            if let Err(e) = self.store.request_sync(user.id).await {
                tracing::warn!(user = %user.id, error = %e, "cannot ask for a read after writing back");
            }
        }
    }
}

impl kalsync_web::WriteBack for CalendarWriter {
    fn shorten(
        &self,
        instance: Instance,
        user: User,
        bookings: Vec<BookingId>,
        end: Timestamp,
    ) -> kalsync_web::Hook<'_, ()> {
        Box::pin(self.run(instance, user, bookings, end))
    }
}

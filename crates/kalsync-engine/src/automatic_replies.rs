//! Outlook's automatic replies for the users this node holds: read every few minutes
//! (they have no change notifications; batched per instance) and with each read of a
//! calendar; a change becomes the user's automatic-replies override, and the timeline
//! follows. A mailbox the service may not read keeps what it had, said once.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use kalsync_core::{AutomaticReplies, Override, Source};
use kalsync_store::{Instance, InstanceId, User};

use crate::source::SourceError;

/// The longest one instance's automatic replies may take in one pass.
const ONE_INSTANCE: std::time::Duration = std::time::Duration::from_secs(60);
use crate::{Engine, EngineError};

impl Engine {
    /// One pass: every held user of an instance that reads automatic replies is read
    /// (an instance's users together), and what changed is stored. How many changed.
    pub async fn read_automatic_replies(&self, now: Timestamp) -> Result<usize, EngineError> {
        let groups: HashMap<InstanceId, (Arc<Instance>, Vec<Arc<User>>)> = {
            let inner = self.inner();
            let mut groups: HashMap<InstanceId, (Arc<Instance>, Vec<Arc<User>>)> = HashMap::new();
            for (user, _) in inner.held.values() {
                let Some(instance) = inner.instances.get(&user.instance) else {
                    continue;
                };
                if instance.active && instance.settings.automatic_replies.enabled {
                    groups
                        .entry(instance.id)
                        .or_insert_with(|| (instance.clone(), Vec::new()))
                        .1
                        .push(user.clone());
                }
            }
            groups
        };
        let mut changed = 0;
        for (instance, users) in groups.into_values() {
            let source = match self.source_for(&instance) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(instance = %instance.id, error = %e, "automatic replies cannot be read");
                    continue;
                }
            };
            let mailboxes: Vec<_> = users.iter().map(|u| u.email.clone()).collect();
            // One slow or hostile Exchange holds the other instances up for at most this.
            let Ok(answers) =
                tokio::time::timeout(ONE_INSTANCE, source.automatic_replies(&mailboxes)).await
            else {
                tracing::warn!(instance = %instance.id, "automatic replies took too long to read; tried again next pass");
                continue;
            };
            for (user, answer) in users.iter().zip(answers) {
                if self
                    .take_automatic_replies(&instance, user, answer, now)
                    .await?
                {
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    /// Stores what `answer` says of `user`'s automatic replies when it differs from what
    /// is stored (the user is then read again); whether it did.
    pub(crate) async fn take_automatic_replies(
        &self,
        instance: &Instance,
        user: &User,
        answer: Result<AutomaticReplies, SourceError>,
        now: Timestamp,
    ) -> Result<bool, EngineError> {
        let replies = match answer {
            Ok(r) => r,
            Err(SourceError::Forbidden(why)) => {
                // Without the right, what was read before stays; the admin is told once.
                if self.inner().told_no_replies.insert(instance.id) {
                    tracing::warn!(instance = %instance.id, why, "automatic replies may not be read (Graph: MailboxSettings.Read; EWS: the service account's rights): they are left as they were");
                }
                return Ok(false);
            }
            Err(e) => {
                tracing::debug!(user = %user.id, error = %e, "automatic replies not read this time");
                return Ok(false);
            }
        };
        let stored = self
            .store
            .overrides(user.id, now)
            .await?
            .into_iter()
            .find(|o| o.source == Source::AutomaticReplies);
        let since = stored.as_ref().filter(|o| o.end.is_none()).map(|o| o.start);
        let wanted = replies.as_override(&instance.settings.automatic_replies, now, since);
        let same =
            |a: &Override, b: &Override| (a.start, a.end, &a.status) == (b.start, b.end, &b.status);
        let unchanged = match (&stored, &wanted) {
            (None, None) => true,
            (Some(a), Some(b)) => same(a, b),
            _ => false,
        };
        if unchanged {
            return Ok(false);
        }
        self.store
            .set_override(
                user.id,
                Source::AutomaticReplies,
                wanted.as_ref(),
                "automatic_replies",
            )
            .await?;
        Ok(true)
    }
}

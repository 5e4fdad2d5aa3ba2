//! Teams presence through Graph (for the *Teams Presence* function): a person's status
//! message (set with an expiry, cleared), the app's own presence session (only the
//! availability/activity pairs Microsoft documents for `setPresence`, 5 minutes to 4
//! hours), and many people's presence read at once (`getPresencesByUserId`, 650 ids a
//! request). Needs `Presence.ReadWrite.All` to write and `Presence.Read.All` to read.

use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde::Deserialize;

use crate::client::{GraphClient, status_error};
use crate::error::GraphError;

/// The most ids one `getPresencesByUserId` takes.
pub const MAX_PRESENCE_IDS: usize = 650;
/// The shortest and longest an app's presence session may be set for.
pub const SESSION_LIMITS: (SignedDuration, SignedDuration) =
    (SignedDuration::from_mins(5), SignedDuration::from_hours(4));
/// The longest status message Kalsync sets (Teams shows a few hundred characters).
pub const MAX_MESSAGE: usize = 280;

/// What an app's presence session may say: only the pairs `setPresence` accepts, so an
/// undocumented pair cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionPresence {
    /// `Available` / `Available`.
    Available,
    /// `Busy` / `InACall`.
    InACall,
    /// `Busy` / `InAConferenceCall`.
    InAConferenceCall,
    /// `Away` / `Away`.
    Away,
    /// `DoNotDisturb` / `Presenting`.
    Presenting,
}

impl SessionPresence {
    /// Its availability and activity, as Graph spells them.
    pub fn pair(self) -> (&'static str, &'static str) {
        match self {
            SessionPresence::Available => ("Available", "Available"),
            SessionPresence::InACall => ("Busy", "InACall"),
            SessionPresence::InAConferenceCall => ("Busy", "InAConferenceCall"),
            SessionPresence::Away => ("Away", "Away"),
            SessionPresence::Presenting => ("DoNotDisturb", "Presenting"),
        }
    }

    /// The documented pair named by `availability` and `activity`, if it is one.
    pub fn from_pair(availability: &str, activity: &str) -> Option<SessionPresence> {
        [
            SessionPresence::Available,
            SessionPresence::InACall,
            SessionPresence::InAConferenceCall,
            SessionPresence::Away,
            SessionPresence::Presenting,
        ]
        .into_iter()
        .find(|p| p.pair() == (availability, activity))
    }
}

/// A person's presence as Teams aggregates it. Values are kept as Graph sends them
/// (Microsoft adds new ones); the status message's text is not kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The person's object id.
    pub id: String,
    /// `Available`, `Busy`, `DoNotDisturb`, `Away`, `Offline`, ….
    #[serde(default)]
    pub availability: String,
    /// `InACall`, `InAMeeting`, `Presenting`, ….
    #[serde(default)]
    pub activity: String,
}

#[derive(Deserialize)]
struct PresenceList {
    #[serde(default)]
    value: Vec<Presence>,
}

impl GraphClient {
    /// POSTs `body` to `segments` and wants 2xx (Graph answers these with no body).
    async fn presence_post(
        &self,
        user: &str,
        segments: &[&str],
        body: &serde_json::Value,
    ) -> Result<(), GraphError> {
        let url = self.url(segments)?;
        let answer = self
            .execute(&[user], Method::POST, url, Some(body), true)
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(status_error(answer.status.as_u16(), &answer.body))
        }
    }

    /// Sets `user`'s Teams status message to `text` (at most [`MAX_MESSAGE`]
    /// characters, control characters dropped), until `expiry` when given.
    pub async fn set_status_message(
        &self,
        user: &str,
        text: &str,
        expiry: Option<Timestamp>,
    ) -> Result<(), GraphError> {
        let content: String = text
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_MESSAGE)
            .collect();
        let mut message = serde_json::json!({
            "message": {"content": content, "contentType": "text"},
        });
        if let Some(at) = expiry {
            message["expiryDateTime"] = serde_json::json!({
                "dateTime": at.strftime("%Y-%m-%dT%H:%M:%S.0000000").to_string(),
                "timeZone": "UTC",
            });
        }
        self.presence_post(
            user,
            &["users", user, "presence", "setStatusMessage"],
            &serde_json::json!({ "statusMessage": message }),
        )
        .await
    }

    /// Clears `user`'s Teams status message (an empty one: Graph has no action for it).
    pub async fn clear_status_message(&self, user: &str) -> Result<(), GraphError> {
        self.presence_post(
            user,
            &["users", user, "presence", "setStatusMessage"],
            &serde_json::json!({"statusMessage": {"message": {"content": "", "contentType": "text"}}}),
        )
        .await
    }

    /// Sets the app's presence session (`session`: the app's client id) for `user` to
    /// `presence` for `lasting` (held within [`SESSION_LIMITS`]).
    pub async fn set_presence(
        &self,
        user: &str,
        session: &str,
        presence: SessionPresence,
        lasting: SignedDuration,
    ) -> Result<(), GraphError> {
        let (availability, activity) = presence.pair();
        let lasting = lasting.clamp(SESSION_LIMITS.0, SESSION_LIMITS.1);
        self.presence_post(
            user,
            &["users", user, "presence", "setPresence"],
            &serde_json::json!({
                "sessionId": session,
                "availability": availability,
                "activity": activity,
                "expirationDuration": format!("PT{}M", lasting.as_secs() / 60),
            }),
        )
        .await
    }

    /// Ends the app's presence session for `user`; one that is not there (expired, or
    /// never set) is no error.
    pub async fn clear_presence(&self, user: &str, session: &str) -> Result<(), GraphError> {
        match self
            .presence_post(
                user,
                &["users", user, "presence", "clearPresence"],
                &serde_json::json!({ "sessionId": session }),
            )
            .await
        {
            Err(GraphError::NotFound(_)) => Ok(()),
            other => other,
        }
    }

    /// The presence of the people with object ids `ids`, [`MAX_PRESENCE_IDS`] a request.
    pub async fn presences(&self, ids: &[String]) -> Result<Vec<Presence>, GraphError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_PRESENCE_IDS) {
            let url = self.url(&["communications", "getPresencesByUserId"])?;
            let list: PresenceList = self
                .call(
                    &[],
                    Method::POST,
                    url,
                    Some(&serde_json::json!({ "ids": chunk })),
                    true,
                )
                .await?;
            out.extend(list.value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_documented_pairs_exist() {
        for p in [
            SessionPresence::Available,
            SessionPresence::InACall,
            SessionPresence::InAConferenceCall,
            SessionPresence::Away,
            SessionPresence::Presenting,
        ] {
            let (a, b) = p.pair();
            assert_eq!(SessionPresence::from_pair(a, b), Some(p));
        }
        for (a, b) in [
            ("BeRightBack", "BeRightBack"),
            ("Busy", "Busy"),
            ("DoNotDisturb", "DoNotDisturb"),
            ("Offline", "OffWork"),
            ("Busy", "InAMeeting"),
            ("Available", "OutOfOffice"),
        ] {
            assert_eq!(SessionPresence::from_pair(a, b), None, "{a}/{b}");
        }
    }
}

//! Teams presence through Graph (for the *Teams Presence* function): a person's status
//! message (set with an expiry, cleared), the app's own presence session (only the
//! availability/activity pairs Microsoft documents for `setPresence`, 5 minutes to 4
//! hours), and many people's presence read at once (`getPresencesByUserId`, 650 ids a
//! request). Needs `Presence.ReadWrite.All` to write and `Presence.Read.All` to read.

use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde::Deserialize;

use crate::client::{BatchPart, GraphClient, status_error};
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
/// (Microsoft adds new ones). The status message's text is held only to compare it with
/// the one Kalsync set: it is never stored or logged (`Debug` leaves it out).
#[derive(Clone, PartialEq, Eq, Deserialize)]
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
    /// The status message in force (empty: none).
    #[serde(default, rename = "statusMessage", deserialize_with = "message_text")]
    pub message: String,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("id", &self.id)
            .field("availability", &self.availability)
            .field("activity", &self.activity)
            .field("message", &(!self.message.is_empty()).then_some("…"))
            .finish()
    }
}

/// A status message as Teams keeps it: control characters dropped, at most
/// [`MAX_MESSAGE`] characters (what Kalsync sets, and remembers, is exactly this).
pub fn status_text(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE)
        .collect()
}

/// A presence as Graph writes it.
pub fn parse_presence(text: &str) -> Result<Presence, GraphError> {
    serde_json::from_str(text).map_err(|e| GraphError::Malformed(e.to_string()))
}

/// `statusMessage.message.content`, or empty — whatever else Graph sends there (an
/// error would carry the person's text into a log).
fn message_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let status = serde_json::Value::deserialize(d)?;
    Ok(status
        .pointer("/message/content")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

/// One presence change, for [`GraphClient::write_presences`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceWrite {
    /// Sets the status message (see [`GraphClient::set_status_message`]).
    Message {
        /// The text.
        text: String,
        /// When it expires.
        expiry: Option<Timestamp>,
    },
    /// Clears the status message.
    ClearMessage,
    /// Sets the app's session (see [`GraphClient::set_presence`]).
    Session {
        /// The session id (the app's client id).
        session: String,
        /// What it says.
        presence: SessionPresence,
        /// For how long.
        lasting: SignedDuration,
    },
    /// Ends the app's session (one not there is no error).
    ClearSession {
        /// The session id.
        session: String,
    },
}

impl PresenceWrite {
    /// The action's path segment and its body.
    fn request(&self) -> (&'static str, serde_json::Value) {
        match self {
            PresenceWrite::Message { text, expiry } => {
                let content = status_text(text);
                let mut message = serde_json::json!({
                    "message": {"content": content, "contentType": "text"},
                });
                if let Some(at) = expiry {
                    message["expiryDateTime"] = serde_json::json!({
                        "dateTime": at.strftime("%Y-%m-%dT%H:%M:%S.0000000").to_string(),
                        "timeZone": "UTC",
                    });
                }
                (
                    "setStatusMessage",
                    serde_json::json!({ "statusMessage": message }),
                )
            }
            PresenceWrite::ClearMessage => (
                "setStatusMessage",
                serde_json::json!({"statusMessage": {"message": {"content": "", "contentType": "text"}}}),
            ),
            PresenceWrite::Session {
                session,
                presence,
                lasting,
            } => {
                let (availability, activity) = presence.pair();
                let lasting = (*lasting).clamp(SESSION_LIMITS.0, SESSION_LIMITS.1);
                (
                    "setPresence",
                    serde_json::json!({
                        "sessionId": session,
                        "availability": availability,
                        "activity": activity,
                        "expirationDuration": format!("PT{}M", lasting.as_secs() / 60),
                    }),
                )
            }
            PresenceWrite::ClearSession { session } => {
                ("clearPresence", serde_json::json!({ "sessionId": session }))
            }
        }
    }
}

#[derive(Deserialize)]
struct PresenceList {
    #[serde(default)]
    value: Vec<serde_json::Value>,
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
        self.write_presence(
            user,
            &PresenceWrite::Message {
                text: text.to_owned(),
                expiry,
            },
        )
        .await
    }

    /// Clears `user`'s Teams status message (an empty one: Graph has no action for it).
    pub async fn clear_status_message(&self, user: &str) -> Result<(), GraphError> {
        self.write_presence(user, &PresenceWrite::ClearMessage)
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
        self.write_presence(
            user,
            &PresenceWrite::Session {
                session: session.to_owned(),
                presence,
                lasting,
            },
        )
        .await
    }

    /// Ends the app's presence session for `user`; one that is not there (expired, or
    /// never set) is no error.
    pub async fn clear_presence(&self, user: &str, session: &str) -> Result<(), GraphError> {
        self.write_presence(
            user,
            &PresenceWrite::ClearSession {
                session: session.to_owned(),
            },
        )
        .await
    }

    /// One presence change of `user` in its own request.
    async fn write_presence(&self, user: &str, write: &PresenceWrite) -> Result<(), GraphError> {
        let (action, body) = write.request();
        let result = self
            .presence_post(user, &["users", user, "presence", action], &body)
            .await;
        settle(write, result)
    }

    /// Many presence changes (at most 20: `(user object id, change)`) in one `$batch`:
    /// one result each, in order.
    pub async fn write_presences(
        &self,
        writes: &[(String, PresenceWrite)],
    ) -> Vec<Result<(), GraphError>> {
        let parts = writes
            .iter()
            .map(|(user, write)| {
                let (action, body) = write.request();
                Ok(BatchPart {
                    mailbox: String::new(),
                    method: Method::POST,
                    url: self.url(&["users", user, "presence", action])?,
                    body: Some(body),
                })
            })
            .collect();
        self.batch(parts)
            .await
            .into_iter()
            .zip(writes)
            .map(|(result, (_, write))| settle(write, result.map(|_| ())))
            .collect()
    }

    /// The object ids of the people with these mailboxes (at most 20, one `$batch`):
    /// one result each, in order.
    pub async fn object_ids(&self, mailboxes: &[String]) -> Vec<Result<String, GraphError>> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let parts = mailboxes
            .iter()
            .map(|mail| {
                let mut url = self.url(&["users", mail])?;
                url.query_pairs_mut().append_pair("$select", "id");
                Ok(BatchPart {
                    mailbox: String::new(),
                    method: Method::GET,
                    url,
                    body: None,
                })
            })
            .collect();
        self.batch(parts)
            .await
            .into_iter()
            .map(|body| {
                serde_json::from_str::<Id>(&body?)
                    .map(|i| i.id)
                    .map_err(|e| GraphError::Malformed(e.to_string()))
            })
            .collect()
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
            // An entry that is not a presence is passed over, not the whole answer.
            out.extend(
                list.value
                    .into_iter()
                    .filter_map(|v| serde_json::from_value::<Presence>(v).ok()),
            );
        }
        Ok(out)
    }
}

/// A change's result: ending a session that is not there is done.
fn settle(write: &PresenceWrite, result: Result<(), GraphError>) -> Result<(), GraphError> {
    match (write, result) {
        (PresenceWrite::ClearSession { .. }, Err(GraphError::NotFound(_))) => Ok(()),
        (_, other) => other,
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

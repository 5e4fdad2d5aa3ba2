//! The outbox: deliveries of status changes to targets, and where each stands.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DeliveryId, TargetId, UserId};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Written, not yet acknowledged.
    Pending,
    /// Acknowledged by the target.
    Delivered,
    /// A newer state of the same user replaced it before it went out.
    Superseded,
    /// Given up after the retry budget: a dead letter.
    Dead,
}

impl DeliveryState {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Superseded => "superseded",
            DeliveryState::Dead => "dead",
        }
    }

    /// Reads the stored word.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "superseded" => DeliveryState::Superseded,
            "dead" => DeliveryState::Dead,
            _ => return None,
        })
    }
}

/// A delivery to write.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Whose status.
    pub user: UserId,
    /// To which target.
    pub target: TargetId,
    /// The status as the target receives it.
    pub payload: Value,
    /// The transition it carries (for lateness); it is not sent before.
    pub due: Timestamp,
    /// Written ahead of `due` (the engine writes the statuses of coming transitions
    /// before their time): it replaces only what is pending for the same user and
    /// target at or after `due` — the status in force until then still goes out. A
    /// delivery written at its time replaces everything pending for the user and target.
    pub ahead: bool,
}

/// One status change for one target, in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Id and idempotency key.
    pub id: DeliveryId,
    /// Whose status.
    pub user: UserId,
    /// To which target.
    pub target: TargetId,
    /// Monotonic per user and target.
    pub sequence: u64,
    /// The status.
    pub payload: Value,
    /// State.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// The transition it carries.
    pub due: Timestamp,
    /// When it is tried next.
    pub next_attempt: Timestamp,
    /// Written.
    pub created: Timestamp,
    /// Acknowledged.
    pub delivered: Option<Timestamp>,
    /// The last failure.
    pub last_error: Option<String>,
}

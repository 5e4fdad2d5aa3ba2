//! The records' ids: random UUIDs, one type per kind of record.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                Self(uuid::Uuid::new_v4())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A company's id.
    CompanyId
);
id_type!(
    /// An instance's id.
    InstanceId
);
id_type!(
    /// A user's id.
    UserId
);
id_type!(
    /// A PBX target's id.
    TargetId
);
id_type!(
    /// A delivery's id; also its idempotency key at the target.
    DeliveryId
);
id_type!(
    /// An admin account's id.
    AccountId
);
id_type!(
    /// An API token's id.
    ApiTokenId
);

//! The Microsoft Graph source (Exchange Online / Microsoft 365), SPEC §4.1: app-only
//! tokens, `calendarView` reads mapped to bookings, `$batch`, subscriptions and the
//! notifications they bring; Entra ID groups as a directory (*Katalog Synk*); and people
//! signing in with Entra ID. Knows nothing of
//! storage.

pub mod auth;
pub mod client;
pub mod directory;
pub mod error;
pub mod model;
pub mod notifications;
pub mod oidc;
pub mod presence;

pub use auth::{AppCredentials, ClientAuth, TokenError, TokenSource};
pub use client::{
    CalendarRead, Endpoints, GraphClient, Limits, NewSubscription, ReadOptions, Subscription,
};
pub use directory::GraphDirectory;
pub use error::GraphError;
pub use notifications::{Notification, NotificationBatch};
pub use oidc::{EntraSignIn, Person, SignInError};
pub use presence::{Presence, PresenceWrite, SessionPresence};

//! Kalsync's EWS source for on-premises Exchange 2007 SP1 … 2019 and Subscription
//! Edition (SPEC §4.2). This crate owns the protocol: the SOAP requests (explicit
//! property shapes, never the body; impersonation or delegate access), the reading of
//! every answer Exchange gives — faults and throttling included — and the mapping of
//! calendar items to bookings. It has no storage.
//!
//! Thunderbird's `ews` crate was considered for the types. At 0.1 it is shaped around
//! a mail client's operations, its minimum Rust follows Firefox's (above this
//! workspace's), and what this source needs most — calendar views with the
//! impersonation and time-zone headers, the three subscription kinds, the streaming
//! envelope splitter and answers read under a size cap without DTDs — would all be
//! additions. The requests are therefore written with quick-xml's writer and the
//! answers read by local name with roxmltree, against Microsoft's schema in the tests.

pub mod client;
pub mod error;
pub mod item;
mod nlmp;
mod ntlm;
pub mod request;
pub mod response;
pub mod setup;
pub mod spnego;
pub mod tls;
pub mod xml;

pub use client::{
    Affinity, Auth, CalendarRead, EventStream, EwsClient, FolderChanges, Settings, TokenProvider,
};
pub use error::EwsError;
pub use item::CalendarItem;
pub use request::{Access, Context, ItemRef, Request, Shape, Subscription, Version};

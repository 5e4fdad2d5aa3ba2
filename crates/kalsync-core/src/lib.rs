//! Kalsync's domain: bookings in, a timeline of absences out — no I/O.
//!
//! The data flow is `Booking` → filters and the user's own choice → [`rules`] →
//! [`timeline::build_timeline`] (overlaps, return times, messages) → [`Timeline`], which
//! the scheduler turns into PBX status changes. Every rule of SPEC §2–§3 lives here.

pub mod address;
pub mod automatic_replies;
pub mod booking;
pub mod exchange;
pub mod message;
pub mod reason;
pub mod redact;
pub mod rules;
pub mod settings;
pub mod teams;
pub mod tenant;
pub mod timeline;
pub mod windows_zone;
pub mod working_hours;

pub use address::{EmailAddress, Extension};
pub use automatic_replies::{AutomaticReplies, AutomaticRepliesSettings};
pub use booking::{
    Booking, BookingError, BookingId, BookingTime, FreeBusy, ResponseStatus, Sensitivity,
};
pub use message::Lang;
pub use reason::{Mode, Prefix, Reason, ReasonCatalogue, ReasonCode};
pub use rules::{Conditions, Rule, Template};
pub use settings::{InstanceSettings, PrivatePolicy, SettingsError, UserChoice};
pub use teams::TeamsSettings;
pub use tenant::TenantId;
pub use timeline::{
    Absence, Decision, Ignored, Override, Source, Timeline, Window, build_timeline,
    build_timeline_with, decide,
};
pub use windows_zone::WindowsZone;
pub use working_hours::{WorkingHours, Zone};

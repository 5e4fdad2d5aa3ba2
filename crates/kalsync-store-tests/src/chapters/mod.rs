//! The story's chapters, one area of the [`Store`] trait each, and what they share: the
//! [`Cast`] the first chapters create and the helpers that write times and bookings.

use jiff::Timestamp;
use kalsync_core::{Booking, BookingId, BookingTime, InstanceSettings};
use kalsync_store::{Company, Instance, Store, User};

use crate::Fixture;

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod entra;
pub(crate) mod leases;
pub(crate) mod outbox;
pub(crate) mod sync;
pub(crate) mod tenancy;
pub(crate) mod users;

/// What the chapters after the first ones share: the store, and the companies, instance
/// and users the story is about.
pub(crate) struct Cast<'a> {
    /// The fixture, for the test hooks that read or corrupt the database.
    pub(crate) f: &'a Fixture,
    /// The store under test.
    pub(crate) s: &'a dyn Store,
    /// The company the story is about.
    pub(crate) acme: Company,
    /// Another company, that must see none of Acme's.
    pub(crate) other: Company,
    /// Acme's instance.
    pub(crate) instance: Instance,
    /// Its settings.
    pub(crate) settings: InstanceSettings,
    /// A user of the instance.
    pub(crate) anna: User,
    /// Another user of the instance.
    pub(crate) bo: User,
}

pub(crate) fn at(s: &str) -> Timestamp {
    kalsync_core::Zone::stockholm()
        .parse_instant(s)
        .expect("time")
}

pub(crate) fn booking(id: &str, from: &str, to: &str, subject: &str) -> Booking {
    let mut b = Booking::new(
        BookingId::parse(id).expect("id"),
        BookingTime::timed(at(from), at(to)).expect("time"),
    );
    b.subject = Some(subject.into());
    b.location = Some("Room Kastanjen".into());
    b
}

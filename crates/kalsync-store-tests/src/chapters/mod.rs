//! The story's chapters, one area of the [`Store`] trait each, and what they share: the
//! [`Cast`] the first chapters create and the helpers that write times and bookings.

use kalsync_core::{Booking, InstanceSettings};
use kalsync_store::{Company, Instance, Store, User};

use crate::Fixture;

pub(crate) mod accounts;
pub(crate) mod audit;
pub(crate) mod directories;
pub(crate) mod entra;
pub(crate) mod leases;
pub(crate) mod outbox;
pub(crate) mod overrides;
pub(crate) mod pbx;
pub(crate) mod phone;
pub(crate) mod sync;
pub(crate) mod teams;
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

pub(crate) use kalsync_testkit::at;

/// The test kit's booking, in a room (the store must not keep the location).
pub(crate) fn booking(id: &str, from: &str, to: &str, subject: &str) -> Booking {
    let mut b = kalsync_testkit::booking(id, from, to, subject);
    b.location = Some("Room Kastanjen".into());
    b
}

//! The store on SQLite (one file, WAL: the embedded default) and PostgreSQL (several
//! nodes share users by leases). Each database has its own migrations; the queries are
//! written once in the SQL both understand, and the database is chosen from the URL.
//!
//! The [`Store`](kalsync_store::Store) methods live by the tables they touch: `tenancy`
//! (companies, instances, targets), `users`, `sync` (bookings and timelines), `outbox`,
//! `audit`, `leases`, `directories` (Katalog Synk) and `accounts` (accounts, sessions, API tokens, Entra tenants), with
//! `backend` choosing and opening the database, `checkpoint` copying SQLite's log back
//! on a connection of its own, and `rows` reading rows into records.
//! Test hooks (`dump_for_tests`, `execute_for_tests`) exist only with the `test-hooks`
//! feature, which the workspace's tests enable as a dev-dependency.

mod accounts;
mod audit;
mod backend;
mod backup;
mod checkpoint;
mod directories;
mod leases;
mod outbox;
mod overrides;
mod pbx;
mod pbx_events;
mod rows;
mod store;
mod sync;
mod teams;
mod tenancy;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod users;

pub use backend::{Backend, DatabaseUrl, SqlStore, latest_schema, schema_of};
pub use backup::{Copied, backup, restore};

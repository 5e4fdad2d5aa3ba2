//! What the scenarios share: the service started for a test ([`spawn_app`]), the sample
//! company Acme with Anna, the simulated Microsoft 365 and Exchange it reads, and waiting
//! for what the service does in its own time.

pub(crate) mod acme;
mod app;
pub(crate) mod sims;
mod wait;

pub(crate) use app::{Launch, Session, Storage, TestApp, client, spawn_app};
pub(crate) use wait::{eventually, eventually_within, polling, settled};

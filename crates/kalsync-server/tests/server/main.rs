//! The service end to end, one test binary: each scenario starts the service on a
//! loopback port with a database of its own (`support::spawn_app`), reading simulated
//! Microsoft 365 and Exchange and delivering to the PBX simulator, a webhook, AMI or a
//! real Kamailio; the admin UI is driven in a real Chromium.

mod automatic_replies;
mod browser;
mod check;
mod directory;
mod ews;
mod graph;
mod katalog;
mod katalog_ldap;
mod manual_status;
mod microsoft365;
mod nodes;
mod pbx_directory;
mod phone;
mod resubscribe;
mod security;
mod support;
mod targets;
mod teams;

//! The REST API as a client sees it: a fresh SQLite store, the router served on port 0,
//! and typed helpers for signing in as each role.

mod accounts;
mod directory_pages;
mod helpers;
mod instance_pages;
mod isolation;
mod manual_pages;
mod pbx;
mod phone_events;
mod rules_form;
mod sessions;
mod teams;
mod ui;
mod validation;

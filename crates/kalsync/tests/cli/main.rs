//! `kalsync` run as a process, the way an admin runs it.

#[cfg(feature = "chaos")]
mod chaos;
mod crash;
mod demo;
mod directory;
mod helpers;
mod operations;
mod preview_errors;
mod preview_fixtures;
mod preview_sample;
mod sim_graph;

//! Integration tests of the core: SPEC §3 scenarios and properties of the timeline.

mod documented;
mod helpers;
mod properties;
mod scenarios;

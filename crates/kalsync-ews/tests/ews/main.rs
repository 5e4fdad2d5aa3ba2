//! The EWS protocol crate against Microsoft's schema and real payloads written by
//! others.

mod fixtures;
mod roundtrip;
mod schema;

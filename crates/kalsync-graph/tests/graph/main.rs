//! The Graph source against Microsoft's real payloads and against the simulator.

mod directory;
mod fixtures;
mod helpers;
mod notifications_e2e;
mod roundtrip;
mod shape;
mod sign_in;

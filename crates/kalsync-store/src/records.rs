//! The records the store keeps, and their sealed form: secrets leave memory only
//! encrypted.

mod accounts;
mod audit;
mod directory;
mod ids;
mod outbox;
mod source;
mod target;
mod teams;
mod tenancy;

pub use accounts::*;
pub use audit::*;
pub use directory::*;
pub use ids::*;
pub use outbox::*;
pub use source::*;
pub use target::*;
pub use teams::*;
pub use tenancy::*;

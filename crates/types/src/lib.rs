//! Vocabulary shared by every Switchyard crate: wire types, ids, usage.
//!
//! No I/O lives here. Everything is plain data with serde derives so that
//! config, providers, core and the server agree on one spelling.

pub mod cost;
pub mod openai;
mod raw_object;
mod usage;
mod vocab;

pub use raw_object::RawObject;
pub use usage::{Usage, UsageSource};
pub use vocab::{Capability, Classification, ProviderKind, Tier, TierAccess};

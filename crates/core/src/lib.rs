//! The engine: everything between "a request arrived" and "an answer left",
//! with no HTTP server, database or Redis in sight. The server crate feeds
//! it requests; the store crate implements its [`Store`] trait.
//!
//! Where things happen:
//! - [`pipeline`] — the request path, one function read top to bottom:
//!   admit (auth, parse) → resolve (route → plan of attempts) → attempt
//!   (deadlines, fall-through) → stream relay → account (usage record,
//!   metrics).
//! - [`runtime`] — the live snapshot (config, routes, deployments with
//!   their provider clients), swapped whole on reload.
//! - [`access`] — tenants, teams, users, keys, plans and roles; the
//!   in-memory directory; the admin operations; the audit log.
//! - [`keys`] — API keys: hashing, generation.
//! - [`limits`] — rate limits (rpm, tpm, concurrency) per scope, GCRA.
//! - [`budget`] — spend caps per day or month (cost, tokens): reserve, commit.
//! - [`alerts`] — budget threshold alerts: fired once per period, sent to
//!   webhooks with retries, listed in the admin API.
//! - [`usage`] — usage records; [`writer`] — the bounded, batched writer
//!   (usage and audit) with its spill file.
//! - [`analytics`] — spend analytics over the hourly usage rollups.
//! - [`faults`] — fault injection for game days (rules per replica, a
//!   wrapper around each deployment's provider).
//! - [`error`] — the error kinds and the one table mapping them to HTTP.

pub mod access;
pub mod alerts;
pub mod analytics;
pub mod budget;
pub mod config_versions;
pub mod error;
pub mod faults;
pub mod gateway;
pub mod ids;
pub mod keys;
pub mod limits;
pub mod nodes;
pub mod pipeline;
pub mod reply;
pub mod resilience;
pub mod rollouts;
pub mod routing;
pub mod runtime;
pub mod store;
pub mod tokenize;
pub mod usage;
pub mod volume;
pub mod writer;

pub use error::{ErrorKind, GatewayError};
pub use gateway::Gateway;
pub use reply::{Reply, ReplyBody};
pub use store::{Store, StoreError};

/// Milliseconds since the Unix epoch, for records.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

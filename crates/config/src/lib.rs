//! Switchyard's configuration: one YAML document, parsed, interpolated and
//! validated here — and nowhere else. `docs/config.md` is the reference.
//!
//! The flow is *parse → validate (pure) → build (I/O, elsewhere)*:
//! 1. [`load_file`] reads the file and expands `${VAR}` / `${VAR:-default}`
//!    references (see [`interpolate`]);
//! 2. every section is deserialised on its own, list items one by one and
//!    bad fields one by one, so one mistake never hides another (see
//!    `load.rs`);
//! 3. [`Config::validate`] checks what serde cannot: cross references
//!    (deployments name real providers, routes name real deployments),
//!    unique names, addresses, URLs, positive durations;
//! 4. every problem comes back at once as a [`ConfigErrors`] list, in
//!    document order, each naming the file, the path
//!    (`routes[2].targets[0]`) and what was expected — and none that is
//!    only a consequence of another.
//!
//! Environment variables are read in this crate only (through
//! [`interpolate::Env`]), so tests can pass a fake environment.

mod alerts;
mod duration;
pub mod interpolate;
mod load;
pub mod prices;
mod resilience;
mod schema;
mod suggest;
mod validate;

pub use alerts::{AlertsConfig, WebhookConfig, WebhookFormat, MAX_ALERT_RETRIES, MAX_THRESHOLD};
pub use duration::Duration;
pub use load::{load_file, load_str, ConfigError, ConfigErrors};
pub use resilience::{
    AdmissionConfig, BreakerConfig, DeadlineConfig, FaultsConfig, HealthConfig, HedgeConfig, QueueConfig,
    ResilienceConfig, RetriesConfig,
};
pub use schema::*;

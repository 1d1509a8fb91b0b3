//! The `resilience:` and `faults:` sections: retries, circuit breakers,
//! health checks, request deadlines, and fault injection for game days
//! (docs/resilience.md). A file of its own like `alerts.rs`; the same rules
//! (unknown fields are errors, every problem reported with its path).

use crate::Duration;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ResilienceConfig {
    pub retries: RetriesConfig,
    pub breaker: BreakerConfig,
    pub health: HealthConfig,
    pub deadline: DeadlineConfig,
    pub admission: AdmissionConfig,
}

/// The gateway-wide limit on requests being served at once (0: none);
/// beyond it requests wait, by their route's `queue.priority`, in a list of
/// at most `max_queue`, for at most `timeout`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    pub max_concurrency: usize,
    pub max_queue: usize,
    pub timeout: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig { max_concurrency: 0, max_queue: 1000, timeout: Duration::from_secs(5) }
    }
}

/// A route's queue (`routes[].queue`): at most `max_concurrency` of its
/// requests at once; more wait (at most `max_queue` of them, each at most
/// `timeout`); `priority` orders them against other routes' requests at
/// the gateway-wide limit (higher first).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    #[serde(default)]
    pub priority: u32,
    pub max_concurrency: u32,
    #[serde(default = "default_max_queue")]
    pub max_queue: u32,
    #[serde(default = "default_queue_timeout")]
    pub timeout: Duration,
}

/// Hedged requests on a route (`routes[].hedge`, non-stream requests): when
/// the first attempt has not answered after `delay` — or, without one, the
/// deployment's observed p95 (once it has 16 samples) — a second attempt
/// goes to the plan's next deployment (or the same one); the first answer
/// wins, the other is cancelled.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HedgeConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Duration>,
    /// The shortest delay, whatever the p95 says.
    #[serde(default = "default_min_delay")]
    pub min_delay: Duration,
}

fn default_min_delay() -> Duration {
    Duration::from_millis(50)
}

fn default_max_queue() -> u32 {
    100
}

fn default_queue_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Retries of a deployment that failed with a retryable error, after the
/// plan's other deployments were tried (failover comes first and is not a
/// retry).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetriesConfig {
    /// Rounds over the plan after the first (0: no retries).
    pub max: u32,
    /// Wait before the first retry; doubles per retry up to `max_backoff`,
    /// with equal jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Retries per deployment, as a share of its first attempts over the
    /// last 10 s …
    pub budget_ratio: f64,
    /// … plus this many per second, so a quiet deployment can retry at all.
    pub budget_min_per_second: f64,
    /// The longest `retry-after` a request waits for before trying the same
    /// deployment again; longer, the deployment is not retried in this
    /// request (the client gets the 429 and its `retry-after` when nothing
    /// else answers).
    pub max_wait: Duration,
    /// A 429 with `retry-after` takes the deployment out of routing for
    /// that long, at most this (0: never).
    pub max_cooldown: Duration,
    /// Retries of a stream request ask for a whole answer, which the client
    /// gets as a stream (its streaming upstreams having failed).
    pub buffer_streams: bool,
}

impl Default for RetriesConfig {
    fn default() -> Self {
        RetriesConfig {
            max: 2,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            budget_ratio: 0.2,
            budget_min_per_second: 5.0,
            max_wait: Duration::from_secs(2),
            max_cooldown: Duration::from_secs(60),
            buffer_streams: true,
        }
    }
}

/// A circuit breaker per deployment: it opens on `consecutive_failures`,
/// or when more than `error_rate` of at least `min_requests` requests in
/// `window` failed; after `open_for` it lets probes through (half-open)
/// and closes after `close_after` of them succeed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    pub enabled: bool,
    pub consecutive_failures: u32,
    pub error_rate: f64,
    pub window: Duration,
    pub min_requests: u32,
    pub open_for: Duration,
    /// Requests let through at once while half-open.
    pub half_open_probes: u32,
    /// Successful probes that close it.
    pub close_after: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            consecutive_failures: 5,
            error_rate: 0.3,
            window: Duration::from_secs(300),
            min_requests: 20,
            open_for: Duration::from_secs(30),
            half_open_probes: 1,
            close_after: 2,
        }
    }
}

/// Active health checks: every `interval`, each deployment's provider is
/// asked a cheap question (its model list); `unhealthy_after` failures in a
/// row take the deployment out of routing, `healthy_after` successes bring
/// it back.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_after: u32,
    pub healthy_after: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            enabled: true,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            unhealthy_after: 3,
            healthy_after: 2,
        }
    }
}

/// The whole request's deadline: `x-switchyard-timeout` (seconds, or a
/// duration like `30s`), capped at `max`; absent, `default`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineConfig {
    pub default: Duration,
    pub max: Duration,
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        DeadlineConfig { default: Duration::from_secs(600), max: Duration::from_secs(3600) }
    }
}

/// Fault injection over `POST /api/v1/faults` (refused unless enabled).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FaultsConfig {
    pub enabled: bool,
    /// Rules in force at once.
    pub max_rules: usize,
}

impl Default for FaultsConfig {
    fn default() -> Self {
        FaultsConfig { enabled: false, max_rules: 100 }
    }
}

fn positive(path: &str, d: Duration, err: &mut impl FnMut(String, String)) {
    if d.get().is_zero() {
        err(path.to_string(), "expected a positive duration like \"500ms\" or \"5s\"".into());
    }
}

fn share(path: &str, x: f64, err: &mut impl FnMut(String, String)) {
    if !(0.0..=1.0).contains(&x) {
        err(path.to_string(), format!("expected a share from 0 to 1, found {x}"));
    }
}

pub(crate) fn check_queue(at: &str, q: &QueueConfig, err: &mut impl FnMut(String, String)) {
    if q.max_concurrency == 0 {
        err(format!("{at}.queue.max_concurrency"), "expected at least 1".into());
    }
    positive(&format!("{at}.queue.timeout"), q.timeout, err);
}

pub(crate) fn check(r: &ResilienceConfig, f: &FaultsConfig, err: &mut impl FnMut(String, String)) {
    let t = &r.retries;
    if t.max > 10 {
        err("resilience.retries.max".into(), format!("expected at most 10 rounds of retries, found {}", t.max));
    }
    positive("resilience.retries.backoff", t.backoff, err);
    positive("resilience.retries.max_backoff", t.max_backoff, err);
    share("resilience.retries.budget_ratio", t.budget_ratio, err);
    if !t.budget_min_per_second.is_finite() || t.budget_min_per_second < 0.0 {
        err("resilience.retries.budget_min_per_second".into(), "expected a number ≥ 0".into());
    }
    let b = &r.breaker;
    if b.consecutive_failures == 0 {
        err("resilience.breaker.consecutive_failures".into(), "expected at least 1".into());
    }
    share("resilience.breaker.error_rate", b.error_rate, err);
    positive("resilience.breaker.window", b.window, err);
    positive("resilience.breaker.open_for", b.open_for, err);
    for (field, n) in [("half_open_probes", b.half_open_probes), ("close_after", b.close_after)] {
        if n == 0 {
            err(format!("resilience.breaker.{field}"), "expected at least 1".into());
        }
    }
    let h = &r.health;
    positive("resilience.health.interval", h.interval, err);
    positive("resilience.health.timeout", h.timeout, err);
    for (field, n) in [("unhealthy_after", h.unhealthy_after), ("healthy_after", h.healthy_after)] {
        if n == 0 {
            err(format!("resilience.health.{field}"), "expected at least 1".into());
        }
    }
    positive("resilience.admission.timeout", r.admission.timeout, err);
    positive("resilience.deadline.default", r.deadline.default, err);
    positive("resilience.deadline.max", r.deadline.max, err);
    if f.max_rules == 0 {
        err("faults.max_rules".into(), "expected a positive number".into());
    }
}

//! Staying up when providers fall over (docs/resilience.md): what is known
//! about each deployment's health, and the rules the attempt loop follows.
//!
//! | file | holds |
//! | --- | --- |
//! | `breaker.rs` | the circuit breaker's state machine (time passed in) |
//! | `budget.rs` | the retry budget: retries as a share of first attempts |
//! | `backoff.rs` | exponential backoff with equal jitter (also for webhooks) |
//! | `admission.rs` | bounded priority queues per route and for the gateway; shedding |
//! | `deadline.rs` | the request's deadline from `x-switchyard-timeout` |
//! | `prober.rs` | active health checks |
//! | `view.rs` | `GET /api/v1/deployments`: health, breaker, cool-down |
//!
//! A deployment's [`Health`] lives in its `Live` (kept across reloads, per
//! replica). The router leaves out deployments that are not
//! [`available`](Health::check): breaker open, cooling down after a 429
//! with `retry-after`, or failing active probes. The attempt loop
//! (`pipeline/attempt.rs`) takes a slot before each attempt
//! ([`Health::begin`]: a half-open breaker lets only its probes through)
//! and reports the outcome ([`Health::finish`]).
//!
//! Breakers are per replica on purpose: each replica judges the upstream
//! from its own traffic and reacts without a round trip to a shared store
//! that may itself be failing; N replicas each send at most
//! `consecutive_failures` failing requests before opening.

pub mod admission;
pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod deadline;
pub mod prober;
pub mod view;

use breaker::{Breaker, State, Transition};
use budget::RetryBudget;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchyard_config::ResilienceConfig;
use switchyard_telemetry::Metrics;

/// Why a deployment is not taking requests now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    /// Its breaker is open (until then; probes follow).
    Breaker { until: Instant },
    /// A half-open breaker's probe slots are taken.
    Probing,
    /// It answered 429 with `retry-after`: left alone until then.
    Cooling { until: Instant },
    /// Active health checks fail.
    Unhealthy,
    /// At its `max_concurrency`.
    Busy,
}

impl Down {
    pub fn as_str(&self) -> &'static str {
        match self {
            Down::Breaker { .. } => "breaker open",
            Down::Probing => "breaker half-open, probes busy",
            Down::Cooling { .. } => "cooling down after 429",
            Down::Unhealthy => "failing health checks",
            Down::Busy => "at max_concurrency",
        }
    }

    /// When it may take requests again, if known.
    pub fn until(&self) -> Option<Instant> {
        match self {
            Down::Breaker { until } | Down::Cooling { until } => Some(*until),
            Down::Probing | Down::Unhealthy | Down::Busy => None,
        }
    }
}

/// What active probes found.
#[derive(Clone, Debug)]
pub struct Probed {
    pub healthy: bool,
    /// Consecutive results of the same kind.
    pub streak: u32,
    pub last_at: Option<Instant>,
    pub last_error: Option<String>,
}

impl Default for Probed {
    fn default() -> Self {
        Probed { healthy: true, streak: 0, last_at: None, last_error: None }
    }
}

struct Inner {
    breaker: Breaker,
    budget: RetryBudget,
    cooling_until: Option<Instant>,
    probed: Probed,
}

/// One deployment's health, as this replica knows it.
pub struct Health {
    inner: Mutex<Inner>,
}

impl Default for Health {
    fn default() -> Self {
        let now = Instant::now();
        Health {
            inner: Mutex::new(Inner {
                breaker: Breaker::new(now),
                budget: RetryBudget::new(now),
                cooling_until: None,
                probed: Probed::default(),
            }),
        }
    }
}

impl Health {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The router's check: may it be sent requests now?
    pub fn check(&self, c: &ResilienceConfig, now: Instant) -> Result<(), Down> {
        let h = self.lock();
        if c.health.enabled && !h.probed.healthy {
            return Err(Down::Unhealthy);
        }
        if let Some(until) = h.cooling_until.filter(|u| *u > now) {
            return Err(Down::Cooling { until });
        }
        if !c.breaker.enabled {
            return Ok(());
        }
        match h.breaker.state() {
            State::Open { until } if until > now => Err(Down::Breaker { until }),
            State::HalfOpen { in_flight, .. } if in_flight >= c.breaker.half_open_probes => Err(Down::Probing),
            _ => Ok(()),
        }
    }

    /// Takes a slot for one attempt (`false`: not now — a half-open
    /// breaker's probes are taken, or it opened since the plan was made).
    /// `retry`: not the request's first attempt here, so the retry budget
    /// must allow it.
    pub fn begin(&self, c: &ResilienceConfig, retry: bool, now: Instant) -> (Result<(), Denied>, Option<Transition>) {
        let mut h = self.lock();
        let (ok, moved) = if c.breaker.enabled { h.breaker.begin(&c.breaker, now) } else { (true, None) };
        if !ok {
            return (Err(Denied::Breaker), moved);
        }
        if retry {
            if !h.budget.try_retry(c.retries.budget_ratio, c.retries.budget_min_per_second, now) {
                h.breaker.abandon();
                return (Err(Denied::Budget), moved);
            }
        } else {
            h.budget.first(now);
        }
        (Ok(()), moved)
    }

    /// The outcome of an attempt that took a slot: `failed` is the
    /// deployment's own failure (not the caller's 4xx, not a 429).
    pub fn finish(&self, c: &ResilienceConfig, failed: bool, now: Instant) -> Option<Transition> {
        if !c.breaker.enabled {
            return None;
        }
        self.lock().breaker.record(&c.breaker, failed, now)
    }

    /// An attempt that took a slot ended without a verdict (a 429, or
    /// the client left).
    pub fn abandon(&self) {
        self.lock().breaker.abandon();
    }

    /// A 429 with `retry-after`: no requests until `until`.
    pub fn cool(&self, until: Instant) {
        let mut h = self.lock();
        h.cooling_until = Some(h.cooling_until.map_or(until, |u| u.max(until)));
    }

    /// Records an active probe's result; the new verdict when it changed.
    pub fn probed(&self, c: &ResilienceConfig, result: Result<(), String>, now: Instant) -> Option<bool> {
        let mut h = self.lock();
        let p = &mut h.probed;
        let ok = result.is_ok();
        let same_kind = p.last_at.is_some() && p.last_error.is_none() == ok;
        p.streak = if same_kind { p.streak + 1 } else { 1 };
        p.last_at = Some(now);
        p.last_error = result.err();
        let flip = match (p.healthy, ok) {
            (true, false) => p.streak >= c.health.unhealthy_after,
            (false, true) => p.streak >= c.health.healthy_after,
            _ => false,
        };
        if flip {
            p.healthy = ok;
            return Some(ok);
        }
        None
    }

    /// A copy of everything, for the admin API.
    pub fn snapshot(&self) -> (State, u64, Option<Instant>, Probed) {
        let h = self.lock();
        (h.breaker.state(), h.breaker.opens, h.cooling_until, h.probed.clone())
    }
}

/// Why an attempt was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    Breaker,
    Budget,
}

/// Logs, counts and alerts a breaker's change of state.
pub fn report(deployment: &str, t: &Transition, metrics: &Metrics, alerts: &crate::alerts::Alerts) {
    metrics.breaker_state.set(&[deployment], t.to.level());
    metrics.breaker_transitions.inc(&[deployment, t.to.as_str()]);
    match t.to {
        State::Open { until } => {
            let open_s = until.saturating_duration_since(Instant::now()).as_secs_f64();
            tracing::warn!(deployment, why = %t.why, open_s, "circuit breaker opened");
            alerts.event(crate::alerts::Event {
                event: "breaker.open",
                subject: format!("deployment:{deployment}"),
                message: format!("Circuit breaker of deployment {deployment} opened: {}.", t.why),
                details: serde_json::json!({"deployment": deployment, "why": t.why, "open_s": open_s}),
                fired_at: crate::now_unix_ms(),
            });
        }
        State::HalfOpen { .. } => tracing::info!(deployment, "circuit breaker half-open: probing"),
        State::Closed => tracing::info!(deployment, why = %t.why, "circuit breaker closed"),
    }
}

/// How long until `until`, at least a second (for `retry-after`).
pub fn retry_after(until: Option<Instant>, now: Instant) -> Duration {
    until.map_or(Duration::from_secs(1), |u| u.saturating_duration_since(now).max(Duration::from_secs(1)))
}

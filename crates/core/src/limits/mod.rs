//! The gateway's own rate limits: requests per minute, tokens per minute and
//! concurrent requests, checked for several scopes at once (key, team,
//! tenant, route, endpoint) and admitted all-or-nothing.
//!
//! | dimension | charged | when | refused until |
//! | --- | --- | --- | --- |
//! | `rpm` | 1 per request | at admission | the bucket has room ([`gcra`]) |
//! | `tpm` | the estimated tokens, corrected by [`Admission::reconcile`] | at admission, corrected after | room, or never when one request exceeds the limit |
//! | `max_concurrent` | a slot per request | held until the [`Admission`] drops | a slot frees (we suggest 1 s) |
//!
//! The math lives in [`gcra`], pure and over integer microseconds, so the
//! Redis backend (a Lua script) can follow it line for line; [`LocalLimiter`]
//! is the in-process backend; [`headers`] writes what clients are told, in
//! OpenAI's `x-ratelimit-*` format.

pub mod gcra;
pub mod headers;
mod local;

mod limiter;

pub use limiter::{Admission, BackendDown, BoxFuture, FailureMode, Grant, Limiter, NotAdmitted, SharedBackend};
pub use local::{LocalAdmission, LocalLimiter};

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The window of `rpm` and `tpm`, in µs.
pub const WINDOW_US: i64 = 60_000_000;

/// Limits of one scope; `None` = unlimited on that dimension.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default)]
    pub rpm: Option<u64>,
    #[serde(default)]
    pub tpm: Option<u64>,
    #[serde(default)]
    pub max_concurrent: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_concurrent.is_none()
    }

    /// `self` where set, else `fallback`'s value, per field.
    pub fn or(self, fallback: Limits) -> Limits {
        Limits {
            rpm: self.rpm.or(fallback.rpm),
            tpm: self.tpm.or(fallback.tpm),
            max_concurrent: self.max_concurrent.or(fallback.max_concurrent),
        }
    }
}

/// One scope to check: a stable name (e.g. "key:key_01H…", "tenant:acme",
/// "route:acme:chat") and its limits.
#[derive(Clone, Debug)]
pub struct Check {
    pub scope: Arc<str>,
    pub limits: Limits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Requests,
    Tokens,
    Concurrency,
}

impl Dimension {
    fn describe(self) -> &'static str {
        match self {
            Dimension::Requests => "requests per minute",
            Dimension::Tokens => "tokens per minute",
            Dimension::Concurrency => "concurrent requests",
        }
    }
}

/// What a client is told: the most constraining scope's figures per
/// dimension (lowest remaining; on a tie, the lower limit).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quota {
    pub requests: Option<Window>,
    pub tokens: Option<Window>,
}

impl Quota {
    /// Keeps `window` in `slot` when it constrains more than what is there.
    fn tighten(slot: &mut Option<Window>, window: Window) {
        if slot.is_none_or(|s| (window.remaining, window.limit) < (s.remaining, s.limit)) {
            *slot = Some(window);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub limit: u64,
    pub remaining: u64,
    /// Until the window is full again.
    pub reset: Duration,
}

impl Window {
    fn of(limit: u64, outcome: &gcra::Outcome) -> Window {
        let reset = Duration::from_micros(u64::try_from(outcome.reset_us).unwrap_or(0));
        Window { limit, remaining: outcome.remaining, reset }
    }
}

/// A refused request.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub scope: Arc<str>,
    pub dimension: Dimension,
    pub limit: u64,
    /// When trying again can succeed; `None` when it never can (a request
    /// larger than the tpm limit, or a limit of 0).
    pub retry_after: Option<Duration>,
    pub quota: Quota,
}

impl Refusal {
    /// OpenAI-like message, e.g. "Rate limit reached for requests per minute
    /// on key:…: limit 60. Please try again in 1.2s."
    pub fn message(&self) -> String {
        let head =
            format!("Rate limit reached for {} on {}: limit {}.", self.dimension.describe(), self.scope, self.limit);
        match (self.retry_after, self.dimension) {
            (Some(wait), _) => format!("{head} Please try again in {}.", headers::format_duration(wait)),
            (None, Dimension::Tokens) => {
                format!("{head} This request needs more tokens than the limit allows; reduce the input or max_tokens.")
            }
            (None, _) => format!("{head} No request can pass this limit."),
        }
    }

    /// Whether `self` makes the client wait longer than `other` (never is
    /// the longest).
    fn outlasts(&self, other: &Refusal) -> bool {
        match (self.retry_after, other.retry_after) {
            (None, Some(_)) => true,
            (Some(a), Some(b)) => a > b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn limits_fall_back_field_by_field() {
        let own = Limits { rpm: Some(10), tpm: None, max_concurrent: None };
        let plan = Limits { rpm: Some(60), tpm: Some(1000), max_concurrent: None };
        assert_eq!(own.or(plan), Limits { rpm: Some(10), tpm: Some(1000), max_concurrent: None });
        assert!(Limits::default().is_empty());
        assert!(!own.is_empty());
    }

    #[test]
    fn limits_parse_strictly() {
        let l: Limits = serde_json::from_str(r#"{"rpm": 5}"#).unwrap();
        assert_eq!(l, Limits { rpm: Some(5), ..Limits::default() });
        assert!(serde_json::from_str::<Limits>(r#"{"rpn": 5}"#).is_err());
    }

    fn refusal(dimension: Dimension, retry_after: Option<Duration>) -> Refusal {
        Refusal { scope: Arc::from("key:k1"), dimension, limit: 60, retry_after, quota: Quota::default() }
    }

    #[test]
    fn messages_name_the_scope_limit_and_wait() {
        assert_eq!(
            refusal(Dimension::Requests, Some(Duration::from_millis(1200))).message(),
            "Rate limit reached for requests per minute on key:k1: limit 60. Please try again in 1.2s."
        );
        assert_eq!(
            refusal(Dimension::Concurrency, Some(Duration::from_secs(1))).message(),
            "Rate limit reached for concurrent requests on key:k1: limit 60. Please try again in 1s."
        );
        let tokens = refusal(Dimension::Tokens, None).message();
        assert!(tokens.starts_with("Rate limit reached for tokens per minute on key:k1: limit 60. This request needs"));
    }

    #[test]
    fn the_longest_wait_wins() {
        let short = refusal(Dimension::Requests, Some(Duration::from_secs(1)));
        let long = refusal(Dimension::Requests, Some(Duration::from_secs(2)));
        let never = refusal(Dimension::Tokens, None);
        assert!(long.outlasts(&short) && !short.outlasts(&long));
        assert!(never.outlasts(&long) && !long.outlasts(&never) && !never.outlasts(&never));
    }
}

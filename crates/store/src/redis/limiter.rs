//! [`RedisLimiter`]: the rate limiter shared by replicas, with exactly the
//! in-process limiter's semantics. One admission is one `EVALSHA` of
//! `limiter.lua` (the GCRA of `switchyard_core::limits::gcra`, ported line
//! for line; the key layout and reply are documented there and in the
//! module doc of `redis`), so deciding and charging every scope is atomic
//! and uses Redis's clock, the same for every replica.
//!
//! Invariants a reader must keep:
//! - `limiter.lua` decides on working copies and writes only when every
//!   check passed, like `LocalLimiter::admit`; the Rust side only encodes
//!   the checks and decodes the reply (limits by check index, so they stay
//!   exact here even where Lua's doubles would round them).
//! - A call on the request path never waits longer than `redis.timeout`.
//!   After a failure, calls fail at once for [`PAUSE`], so an outage costs
//!   requests nothing while Redis is given room to come back.
//! - Releases and reconciliations are fire and forget (spawned, bounded): a
//!   slot that is not freed expires with its lease (`redis.lease`).

use super::{Background, Link};
#[cfg(test)]
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use switchyard_config::RedisConfig;
use switchyard_core::limits::{
    BackendDown, BoxFuture, Check, Dimension, Grant, Limits, Quota, Refusal, SharedBackend, Window,
};

static SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("limiter.lua")));

/// Costs and limits are sent capped here: Lua numbers are doubles, exact
/// up to 2^53. A limit that large is unlimited in practice.
const EXACT: u64 = 1 << 53;

/// The shared rate-limit backend. Cheap to share behind an `Arc`; the
/// connection is multiplexed, so concurrent admissions do not queue.
pub struct RedisLimiter {
    link: Link,
    /// `{prefix}:rl:` (GCRA state) and `{prefix}:rc:` (leases).
    state_prefix: String,
    lease_prefix: String,
    lease_us: u64,
    /// Lease ids are `{lease_id_prefix}-{n}`: random per limiter, counted
    /// per admission.
    lease_id_prefix: String,
    leases: AtomicU64,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter").field("prefix", &self.state_prefix).field("timeout", &self.link.timeout).finish()
    }
}

impl RedisLimiter {
    /// Connects to `config.url` and loads the script. Fails only on a
    /// malformed URL: when Redis does not answer within a few timeouts, a
    /// warning is logged and the limiter is returned anyway — its calls fail
    /// fast with [`BackendDown`] (so `on_failure` applies) until Redis
    /// answers, and it reconnects by itself.
    pub async fn connect(config: &RedisConfig) -> Result<RedisLimiter, String> {
        let limiter = RedisLimiter {
            link: Link::new(config)?,
            state_prefix: format!("{}:rl:", config.key_prefix),
            lease_prefix: format!("{}:rc:", config.key_prefix),
            lease_us: u64::try_from(config.lease.get().as_micros()).unwrap_or(u64::MAX).clamp(1, EXACT),
            lease_id_prefix: format!("{:016x}", fastrand::u64(..)),
            leases: AtomicU64::new(0),
        };
        limiter.link.load(&SCRIPT, "rate limits").await;
        Ok(limiter)
    }

    /// Releases and reconciliations sent but not answered yet (each is
    /// bounded in time, so this stays under their rate × a few timeouts).
    pub fn background_in_flight(&self) -> usize {
        self.link.background_in_flight()
    }

    #[cfg(test)]
    pub(super) fn connection(&self) -> ConnectionManager {
        self.link.conn.clone()
    }

    fn state_key(&self, scope: &str) -> String {
        format!("{}{scope}", self.state_prefix)
    }

    fn lease_key(&self, scope: &str) -> String {
        format!("{}{scope}", self.lease_prefix)
    }

    /// Frees the slots `lease` holds (or may hold) in `scopes`: members
    /// `{lease}#1…#n` of each scope's lease set, `n` counting that scope's
    /// occurrences (the script numbers them the same way).
    fn free_slots<'s>(&self, lease: &str, scopes: impl Iterator<Item = &'s Arc<str>>) {
        let mut sets: Vec<(&Arc<str>, usize)> = Vec::new();
        for scope in scopes {
            match sets.iter_mut().find(|(s, _)| s == &scope) {
                Some((_, n)) => *n += 1,
                None => sets.push((scope, 1)),
            }
        }
        if sets.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (scope, n) in sets {
            let members: Vec<String> = (1..=n).map(|i| format!("{lease}#{i}")).collect();
            pipe.cmd("ZREM").arg(self.lease_key(scope)).arg(members).ignore();
        }
        self.link.spawn_background("release", Background::Pipeline(pipe));
    }
}

/// A limit as the script takes it: capped at [`EXACT`], -1 for none.
fn arg(limit: Option<u64>) -> i64 {
    limit.map_or(-1, |l| i64::try_from(l.min(EXACT)).unwrap_or(i64::MAX))
}

impl SharedBackend for RedisLimiter {
    fn admit<'a>(
        &'a self,
        checks: &'a [Check],
        tokens: u64,
    ) -> BoxFuture<'a, Result<Result<Grant, Refusal>, BackendDown>> {
        Box::pin(async move {
            let checks: Vec<&Check> = checks.iter().filter(|c| !c.limits.is_empty()).collect();
            if checks.is_empty() {
                return Ok(Ok(Grant::default()));
            }
            if let Some(down) = self.link.paused() {
                return Err(down);
            }
            let lease = format!("{}-{}", self.lease_id_prefix, self.leases.fetch_add(1, Ordering::Relaxed));
            let mut call = SCRIPT.prepare_invoke();
            call.arg("admit").arg(tokens.min(EXACT)).arg(&lease).arg(self.lease_us);
            for check in &checks {
                call.key(self.state_key(&check.scope)).key(self.lease_key(&check.scope));
                let Limits { rpm, tpm, max_concurrent } = check.limits;
                call.arg(arg(rpm)).arg(arg(tpm)).arg(arg(max_concurrent));
            }
            let mut conn = self.link.conn.clone();
            let (reason, maybe_ran) = match tokio::time::timeout(self.link.timeout, call.invoke_async(&mut conn)).await
            {
                Ok(Ok::<Vec<i64>, _>(reply)) => {
                    self.link.answered();
                    return decode(&checks, &reply, lease).map_err(BackendDown);
                }
                Ok(Err(e)) => (format!("redis: {e}"), e.is_io_error() && !e.is_connection_refusal()),
                Err(_) => (format!("redis did not answer within {:?}", self.link.timeout), true),
            };
            if maybe_ran {
                // The script may have run (or still run) after the answer
                // was lost: free the slots it would take (a no-op if not).
                let slots = checks.iter().filter(|c| c.limits.max_concurrent.is_some()).map(|c| &c.scope);
                self.free_slots(&lease, slots);
            }
            Err(self.link.failed(reason))
        })
    }

    fn release(&self, grant: &Grant) {
        self.free_slots(&grant.lease, grant.slots.iter());
    }

    fn reconcile(&self, grant: &Grant, reserved: u64, actual: u64) {
        if grant.token_scopes.is_empty() || reserved == actual {
            return;
        }
        let mut call = SCRIPT.prepare_invoke();
        call.arg("adjust").arg(reserved.min(EXACT)).arg(actual.min(EXACT));
        for (scope, limit) in &grant.token_scopes {
            call.key(self.state_key(scope)).arg(arg(Some(*limit)));
        }
        self.link.spawn_background("reconcile", Background::Script(call));
    }
}

/// Builds the grant or refusal from the script's reply (see `limiter.lua`).
fn decode(checks: &[&Check], reply: &[i64], lease: String) -> Result<Result<Grant, Refusal>, String> {
    let &[allowed, rq, rq_left, rq_reset, tk, tk_left, tk_reset, refused, dimension, wait] = reply else {
        return Err(format!("redis: unexpected reply from the limiter script: {reply:?}"));
    };
    let check = |index: i64| {
        usize::try_from(index - 1)
            .ok()
            .and_then(|i| checks.get(i))
            .ok_or_else(|| format!("redis: the limiter script named check {index} of {}", checks.len()))
    };
    let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
    let window = |index: i64, limit: fn(&Limits) -> Option<u64>, left: i64, reset: i64| {
        if index == 0 {
            return Ok(None);
        }
        let limit =
            limit(&check(index)?.limits).ok_or("redis: the limiter script named a dimension without a limit")?;
        Ok::<_, String>(Some(Window {
            limit,
            remaining: u64::try_from(left).unwrap_or(0).min(limit),
            reset: micros(reset),
        }))
    };
    let quota = Quota {
        requests: window(rq, |l| l.rpm, rq_left, rq_reset)?,
        tokens: window(tk, |l| l.tpm, tk_left, tk_reset)?,
    };
    if allowed == 1 {
        let slots = checks.iter().filter(|c| c.limits.max_concurrent.is_some()).map(|c| c.scope.clone()).collect();
        let token_scopes = checks.iter().filter_map(|c| Some((c.scope.clone(), c.limits.tpm?))).collect();
        return Ok(Ok(Grant { quota, slots, token_scopes, lease }));
    }
    let refused = check(refused)?;
    let (dimension, limit) = match dimension {
        1 => (Dimension::Requests, refused.limits.rpm),
        2 => (Dimension::Tokens, refused.limits.tpm),
        3 => (Dimension::Concurrency, refused.limits.max_concurrent),
        other => return Err(format!("redis: the limiter script named dimension {other}")),
    };
    let limit = limit.ok_or("redis: the limiter script refused a dimension without a limit")?;
    let retry_after = (wait >= 0).then(|| micros(wait));
    Ok(Err(Refusal { scope: refused.scope.clone(), dimension, limit, retry_after, quota }))
}

//! Shared state for replicas in Redis: the rate limiter's counters
//! ([`RedisLimiter`], core's `SharedBackend`), budget counters
//! ([`RedisBudgets`], core's `SharedBudgets`) and directory change
//! notifications ([`RedisFeed`], core's `ChangeFeed`).
//!
//! | key (under `redis.key_prefix`) | type | holds | lives |
//! | --- | --- | --- | --- |
//! | `{p}:rl:{scope}` | hash, fields `req`, `tok` | the rpm and tpm TATs, µs since the epoch | until its furthest TAT + 1 s |
//! | `{p}:rc:{scope}` | sorted set | concurrency leases `{lease}#{n}`, score = expiry µs | the lease time after its newest lease |
//! | `{p}:bg:{scope}:{period}:{start}` | hash, fields `cn`, `ct`, `rn`, `rt` | a budget window's committed and reserved nano-dollars and tokens | a period after the window ends |
//! | `{p}:bh:{scope}:{period}:{start}` | sorted set | budget holds `{id}|{nanos}|{tokens}`, score = lease expiry ms | as its counters |
//! | `{p}:vol:{provider}:{start}` | string (integer) | a provider's tokens in the month starting then (volume discounts) | a month after that month ends |
//! | `{p}:directory` | pub/sub channel | the directory's sequence number after a change | — |
//!
//! Every Redis call on the request path is bounded by `redis.timeout`;
//! past it the call counts as failed and `redis.on_failure` decides. The
//! connection is a [`ConnectionManager`] (one multiplexed TCP connection
//! that reconnects by itself), created without waiting for Redis, so a
//! gateway starts while Redis is down. No TLS (`rediss://`) and no Redis
//! Cluster: one admission touches several scopes atomically, which a
//! cluster would only allow within one hash slot.

mod budgets;
mod feed;
mod limiter;

pub use budgets::RedisBudgets;
pub use feed::RedisFeed;
pub use limiter::RedisLimiter;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Pipeline, Script, ScriptInvocation};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_config::RedisConfig;
use switchyard_core::limits::BackendDown;

/// How long calls fail at once after a failed one (see [`Link`]).
const PAUSE: Duration = Duration::from_millis(200);

/// How long connecting may take: a few request timeouts, and never less
/// than a TCP handshake across a data centre needs.
fn connect_bound(config: &RedisConfig) -> Duration {
    (config.timeout.get() * 5).max(Duration::from_millis(250))
}

fn client(config: &RedisConfig) -> Result<Client, String> {
    Client::open(config.url.as_str()).map_err(|e| format!("redis.url: {e}"))
}

/// A connection manager that connects on first use. One connection attempt
/// per (re)connect, bounded by [`connect_bound`]: while Redis is down,
/// calls fail at once instead of queueing behind retries (the caller
/// applies `on_failure`), and the next call starts the next attempt.
fn manager(config: &RedisConfig) -> Result<ConnectionManager, String> {
    let settings = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(connect_bound(config)))
        // A backstop only: callers bound each call by `config.timeout`.
        .set_response_timeout(Some(connect_bound(config)));
    ConnectionManager::new_lazy_with_config(client(config)?, settings).map_err(|e| format!("redis: {e}"))
}

/// Failures of fire-and-forget calls, which nobody else sees: logged when
/// a streak starts and when it ends, not once per call.
#[derive(Debug, Default)]
struct FailureStreak(AtomicBool);

impl FailureStreak {
    fn record(&self, call: &'static str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                if self.0.swap(false, Ordering::Relaxed) {
                    tracing::info!(call, "redis answers again");
                }
            }
            Err(error) => {
                if !self.0.swap(true, Ordering::Relaxed) {
                    tracing::warn!(call, %error, "redis call failed (further failures are logged when it answers again)");
                }
            }
        }
    }
}

/// One backend's connection to Redis and how its calls fail: a call on
/// the request path waits at most `redis.timeout`; after a failure, calls
/// fail at once for [`PAUSE`], so an outage costs requests nothing while
/// Redis is given room to come back. Fire-and-forget calls (releases,
/// settles) are spawned, bounded by a few timeouts, counted while in
/// flight, and their failures logged once per streak.
struct Link {
    conn: ConnectionManager,
    timeout: Duration,
    /// Bound of the spawned calls: off the request path, and a lost
    /// release holds its slot or reservation for a whole lease.
    background_timeout: Duration,
    epoch: Instant,
    /// µs since `epoch` until which calls fail at once (0: Redis answers).
    paused_until: AtomicU64,
    background: Arc<FailureStreak>,
    /// Spawned calls not finished yet.
    in_flight: Arc<AtomicUsize>,
}

impl Link {
    fn new(config: &RedisConfig) -> Result<Link, String> {
        Ok(Link {
            conn: manager(config)?,
            timeout: config.timeout.get(),
            background_timeout: connect_bound(config),
            epoch: Instant::now(),
            paused_until: AtomicU64::new(0),
            background: Arc::new(FailureStreak::default()),
            in_flight: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Loads `script`, waiting a few timeouts at most: when Redis does not
    /// answer, a warning says that `what` follows `redis.on_failure` until
    /// it does (calls then fail fast and reconnect by themselves).
    async fn load(&self, script: &Script, what: &str) {
        let mut conn = self.conn.clone();
        let bound = self.background_timeout;
        match tokio::time::timeout(bound, script.prepare_invoke().load_async(&mut conn)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "redis does not answer at start; {what} follow redis.on_failure until it does")
            }
            Err(_) => {
                tracing::warn!(timeout = ?bound, "redis does not answer at start; {what} follow redis.on_failure until it does")
            }
        }
    }

    fn background_in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn micros(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Whether calls may go to Redis (not within a pause).
    fn paused(&self) -> Option<BackendDown> {
        let until = self.paused_until.load(Ordering::Relaxed);
        (until != 0 && self.micros() < until)
            .then(|| BackendDown("redis failed moments ago; not asked again yet".into()))
    }

    fn failed(&self, reason: String) -> BackendDown {
        let until = self.micros().saturating_add(u64::try_from(PAUSE.as_micros()).unwrap_or(u64::MAX));
        self.paused_until.store(until.max(1), Ordering::Relaxed);
        BackendDown(reason)
    }

    fn answered(&self) {
        if self.paused_until.load(Ordering::Relaxed) != 0 {
            self.paused_until.store(0, Ordering::Relaxed);
        }
    }

    /// Runs `job` on the current runtime, bounded; failures are logged once
    /// per streak. Without a runtime (shutting down) nothing is sent:
    /// slots and reservations expire with their lease.
    fn spawn_background(&self, what: &'static str, job: Background) {
        self.spawn(what, job, |_| {});
    }

    /// Like [`spawn_background`](Self::spawn_background), handing a
    /// script's integer reply to `answer` when it succeeds.
    fn spawn<F>(&self, what: &'static str, job: Background, answer: F)
    where
        F: FnOnce(Vec<i64>) + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut conn = self.conn.clone();
        let (bound, streak) = (self.background_timeout, self.background.clone());
        let counted = InFlight::enter(&self.in_flight);
        runtime.spawn(async move {
            let _counted = counted;
            let sent = match &job {
                Background::Pipeline(pipe) => tokio::time::timeout(bound, pipe.query_async::<redis::Value>(&mut conn))
                    .await
                    .map(|r| r.map(|value| integers(&value))),
                Background::Script(call) => tokio::time::timeout(bound, call.invoke_async::<redis::Value>(&mut conn))
                    .await
                    .map(|r| r.map(|value| integers(&value))),
            };
            let sent =
                sent.map_err(|_| format!("no answer within {bound:?}")).and_then(|r| r.map_err(|e| e.to_string()));
            match sent {
                Ok(reply) => {
                    streak.record(what, Ok(()));
                    answer(reply);
                }
                Err(e) => streak.record(what, Err(e)),
            }
        });
    }
}

/// A script's reply as integers: an array's integer items; anything else
/// (one integer, nil) as none.
fn integers(value: &redis::Value) -> Vec<i64> {
    match value {
        redis::Value::Array(items) => {
            items.iter().filter_map(|v| if let redis::Value::Int(n) = v { Some(*n) } else { None }).collect()
        }
        _ => Vec::new(),
    }
}

/// One spawned call, counted in `in_flight` until it ends or is dropped.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Background {
    Pipeline(Pipeline),
    Script(ScriptInvocation<'static>),
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_budgets;

//! Shared state for replicas in Redis: the rate limiter's counters
//! ([`RedisLimiter`], core's `SharedBackend`) and directory change
//! notifications ([`RedisFeed`], core's `ChangeFeed`).
//!
//! | key (under `redis.key_prefix`) | type | holds | lives |
//! | --- | --- | --- | --- |
//! | `{p}:rl:{scope}` | hash, fields `req`, `tok` | the rpm and tpm TATs, µs since the epoch | until its furthest TAT + 1 s |
//! | `{p}:rc:{scope}` | sorted set | concurrency leases `{lease}#{n}`, score = expiry µs | the lease time after its newest lease |
//! | `{p}:directory` | pub/sub channel | the directory's sequence number after a change | — |
//!
//! Every Redis call on the request path is bounded by `redis.timeout`;
//! past it the call counts as failed and `redis.on_failure` decides. The
//! connection is a [`ConnectionManager`] (one multiplexed TCP connection
//! that reconnects by itself), created without waiting for Redis, so a
//! gateway starts while Redis is down. No TLS (`rediss://`) and no Redis
//! Cluster: one admission touches several scopes atomically, which a
//! cluster would only allow within one hash slot.

mod feed;
mod limiter;

pub use feed::RedisFeed;
pub use limiter::RedisLimiter;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use switchyard_config::RedisConfig;

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

#[cfg(test)]
mod tests;

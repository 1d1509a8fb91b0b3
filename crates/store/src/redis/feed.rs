//! [`RedisFeed`]: change notifications between replicas over Redis
//! pub/sub, channel `{prefix}:directory`, the message a number in decimal:
//! the directory's sequence number (≥ 0), or a stored config version n as
//! −n (see `ChangeFeed`).
//!
//! Both directions are best effort: an announcement that is lost (Redis
//! down, a subscriber reconnecting) is caught up by the replicas' regular
//! polling (`admin.refresh_interval`); the feed only makes it immediate.

use super::{client, connect_bound, manager, FailureStreak};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubStream};
use redis::{Client, RedisResult};
use std::sync::Arc;
use std::time::Duration;
use switchyard_config::RedisConfig;
use switchyard_core::access::ChangeFeed;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Waits between two subscription attempts: doubled per failure, reset by
/// a successful subscription.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LAST_BACKOFF: Duration = Duration::from_secs(5);

fn channel(config: &RedisConfig) -> String {
    format!("{}:directory", config.key_prefix)
}

/// Publishes directory changes; [`RedisFeed::subscribe`] listens to them.
pub struct RedisFeed {
    conn: ConnectionManager,
    channel: String,
    timeout: Duration,
    streak: Arc<FailureStreak>,
}

impl std::fmt::Debug for RedisFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisFeed").field("channel", &self.channel).finish()
    }
}

impl RedisFeed {
    /// A publisher on `{prefix}:directory`. Does not wait for Redis (it
    /// connects on the first announcement); fails only on a malformed URL.
    /// Async because the connection's driver needs the runtime.
    pub async fn connect(config: &RedisConfig) -> Result<RedisFeed, String> {
        Ok(RedisFeed {
            conn: manager(config)?,
            channel: channel(config),
            timeout: config.timeout.get(),
            streak: Arc::new(FailureStreak::default()),
        })
    }

    /// Listens on `{prefix}:directory` and calls `on_change(seq)` for each
    /// announcement, in order. Reconnects when the connection drops or
    /// cannot be made, waiting 100 ms, doubling up to 5 s. Ends when
    /// `shutdown` turns true or its sender is dropped. Fails only on a
    /// malformed URL or outside a tokio runtime.
    pub fn subscribe(
        config: &RedisConfig,
        on_change: impl Fn(i64) + Send + Sync + 'static,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<JoinHandle<()>, String> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| format!("redis subscriber: {e}"))?;
        let client = client(config)?;
        let channel = channel(config);
        let bound = connect_bound(config);
        Ok(runtime.spawn(async move {
            let mut backoff = FIRST_BACKOFF;
            // Failures are logged when a streak starts, not per attempt.
            let mut failing = false;
            loop {
                let listening = tokio::select! {
                    listening = tokio::time::timeout(bound, listen(&client, &channel)) => listening,
                    () = stopped(&mut shutdown) => return,
                };
                match listening {
                    Ok(Ok(mut messages)) => {
                        if failing {
                            tracing::info!(%channel, "directory notifications: subscribed again");
                        }
                        backoff = FIRST_BACKOFF;
                        loop {
                            let message = tokio::select! {
                                message = messages.next() => message,
                                () = stopped(&mut shutdown) => return,
                            };
                            let Some(message) = message else { break };
                            match message.get_payload::<i64>() {
                                Ok(seq) => on_change(seq),
                                Err(error) => tracing::warn!(%channel, %error, "directory notification ignored"),
                            }
                        }
                        tracing::warn!(%channel, "directory notifications: connection lost; reconnecting");
                        failing = true;
                    }
                    Ok(Err(error)) if !failing => {
                        tracing::warn!(%channel, %error, "directory notifications: cannot subscribe; retrying");
                        failing = true;
                    }
                    Err(_) if !failing => {
                        tracing::warn!(%channel, timeout = ?bound, "directory notifications: no answer; retrying");
                        failing = true;
                    }
                    _ => {}
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stopped(&mut shutdown) => return,
                }
                backoff = (backoff * 2).min(LAST_BACKOFF);
            }
        }))
    }
}

async fn listen(client: &Client, channel: &str) -> RedisResult<PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub.into_on_message())
}

/// Resolves once `shutdown` is true or can no longer change.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

impl ChangeFeed for RedisFeed {
    fn announce(&self, seq: i64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (mut conn, channel, timeout, streak) =
            (self.conn.clone(), self.channel.clone(), self.timeout, self.streak.clone());
        runtime.spawn(async move {
            let mut publish = redis::cmd("PUBLISH");
            publish.arg(&channel).arg(seq);
            let outcome = match tokio::time::timeout(timeout, publish.exec_async(&mut conn)).await {
                Ok(sent) => sent.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {timeout:?}")),
            };
            streak.record("publish", outcome);
        });
    }
}

//! The open loop (`--rate`): requests are due on a [`Schedule`] and each is
//! sent on its own task when due, whether or not earlier ones have finished.
//!
//! Latency and TTFT are measured from the *due* time, not the moment the
//! request actually left: when the server (or this client) falls behind, the
//! wait shows in the figures instead of silently lowering the offered rate
//! (no coordinated omission). How late requests actually left is reported as
//! the send lag.
//!
//! Invariant: at most `--max-in-flight` requests run at once. A request due
//! while that many are running is not sent and counts as an
//! `overloaded_client` error, so a saturated client is visible, not hidden.
//! The tasks share one keep-alive connection pool (hyper's client).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

use crate::request::Job;
use crate::schedule::Schedule;
use crate::sse::SseScanner;
use crate::stats::{ErrorKind, Outcome, Sink};

type Pool = Client<HttpConnector, Full<Bytes>>;

/// Runs the schedule until `job.stop_at` (or the cap), then waits for the
/// requests still in flight. Returns the most requests that were in flight at once.
pub(crate) async fn run(job: Arc<Job>, sink: Arc<Sink>, schedule: Schedule, max_in_flight: u32) -> u32 {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(job.timeout));
    let pool: Pool = Client::builder(TokioExecutor::new()).build(connector);
    let slots = Arc::new(Semaphore::new(max_in_flight as usize));
    let mut peak = 0;
    for offset in schedule {
        let due = job.started + offset;
        if due >= job.stop_at {
            break;
        }
        let measured = due >= job.measure_from;
        if measured && !job.claim() {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            if measured {
                sink.with(|rec| rec.failure(ErrorKind::OverloadedClient, due));
            }
            continue;
        };
        peak = peak.max(max_in_flight as usize - slots.available_permits());
        let (job, sink, pool) = (Arc::clone(&job), Arc::clone(&sink), pool.clone());
        tokio::spawn(async move {
            one_request(&job, &pool, &sink, due, measured).await;
            drop(slot);
        });
    }
    // Every task holds a slot until it has recorded its request.
    let _all = slots.acquire_many(max_in_flight).await;
    u32::try_from(peak).unwrap_or(u32::MAX)
}

/// Sends one request due at `due` and records it (when `measured`) with its
/// latency counted from `due`.
async fn one_request(job: &Job, pool: &Pool, sink: &Sink, due: Instant, measured: bool) {
    let sent = Instant::now();
    let mut scanner = SseScanner::new(job.api);
    let mut gaps = Vec::new();
    let exchange = async {
        match pool.request(job.request(job.absolute.clone())).await {
            Ok(resp) => job.read(resp, &mut scanner, &mut gaps).await,
            Err(e) if e.is_connect() => Outcome::Failed(ErrorKind::Connect),
            Err(_) => Outcome::Failed(ErrorKind::Transport),
        }
    };
    let outcome = tokio::time::timeout(job.timeout, exchange).await.unwrap_or(Outcome::Failed(ErrorKind::Timeout));
    let end = Instant::now();
    if measured {
        sink.with(|rec| {
            rec.send_lag(sent.saturating_duration_since(due));
            rec.record(due, end, &outcome, &gaps);
        });
    }
}

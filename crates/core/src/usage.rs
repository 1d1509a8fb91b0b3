//! Usage records: one per request, failed ones too, written off the hot
//! path by the batched writer ([`crate::writer`]: bounded queue, spill
//! file while the database is down, drained on shutdown).

use crate::store::{Store, StoreFuture};
use crate::writer::{Batched, Sink};
use serde::{Deserialize, Serialize};
use switchyard_telemetry::Metrics;
use switchyard_telemetry::{CounterFamily, GaugeFamily};
use switchyard_types::UsageSource;

pub use crate::writer::{start_writer, WriterSettings};

/// What every usage record id starts with (`use_` and the millisecond it
/// was made: stores find the records of a partial hour by it).
pub const ID_PREFIX: &str = "use";

/// The sending side of the usage writer, cheap to clone.
pub type UsageSink = Sink<UsageRecord>;

impl Batched for UsageRecord {
    const WHAT: &'static str = "usage";
    fn write<'a>(store: &'a dyn Store, batch: &'a [Self]) -> StoreFuture<'a, ()> {
        store.write_usage(batch)
    }
    fn records(metrics: &Metrics) -> &CounterFamily {
        &metrics.usage_records
    }
    fn depth(metrics: &Metrics) -> &GaugeFamily {
        &metrics.usage_queue_depth
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UsageRecord {
    /// Unique per attempt, made by the gateway: `use_…` (one per request)
    /// then `.` and the attempt number. The key that makes a replayed batch
    /// idempotent, so a retry or failover is never counted twice.
    /// `request_id` is the client's and may repeat.
    pub id: String,
    pub request_id: String,
    /// Unix ms when the request arrived.
    pub created_at: i64,
    pub key_id: Option<String>,
    pub tenant_id: Option<String>,
    /// `chat` or `embeddings`.
    pub operation: String,
    pub route: Option<String>,
    /// The deployment that answered (or the last one tried).
    pub deployment: Option<String>,
    pub stream: bool,
    /// HTTP status sent to the client; 499 when the client went away
    /// first. A stream that failed after its headers keeps its 200 and has
    /// an `error_kind`.
    pub status: u16,
    pub error_kind: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub usage_source: UsageSource,
    /// Upstream attempts the request had made when this record was written.
    pub attempts: u32,
    /// Which attempt this record is (1-based); 0 when the request never
    /// reached an upstream (refused by the gateway).
    #[serde(default)]
    pub attempt: u32,
    /// This record closes the request: its status is what the client saw.
    /// `false`: an earlier attempt that failed and was left for the next
    /// deployment (its status and error are the upstream's). Requests are
    /// counted over final records; cost and tokens over all.
    #[serde(default = "yes")]
    pub is_final: bool,
    /// The model the deployment was called with.
    #[serde(default)]
    pub model: Option<String>,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub overhead_ms: f64,
    /// Of `input_tokens`, read from the provider's prompt cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Of `input_tokens`, written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// What the request cost, in nano-dollars (10⁻⁹ USD), at the answering
    /// deployment's prices; `None` when nothing was attempted upstream.
    #[serde(default)]
    pub cost_nanos: Option<i64>,
    /// The key's team and user (from the directory).
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    /// The application's end user (`x-switchyard-user`).
    #[serde(default)]
    pub end_user: Option<String>,
    /// `x-switchyard-tags` as a JSON object text, keys sorted.
    #[serde(default)]
    pub tags: Option<String>,
    /// The request's data classification (`P0`, `P1`, `P2`), once known.
    #[serde(default)]
    pub classification: Option<String>,
    /// Why the router chose its plan: `strategy; class (source); n of m
    /// eligible[; masked on L2]`.
    #[serde(default)]
    pub route_reason: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for UsageRecord {
    /// Empty, and final (a record is the request's unless it says not).
    fn default() -> Self {
        UsageRecord {
            id: String::new(),
            request_id: String::new(),
            created_at: 0,
            key_id: None,
            tenant_id: None,
            operation: String::new(),
            route: None,
            deployment: None,
            stream: false,
            status: 0,
            error_kind: None,
            input_tokens: None,
            output_tokens: None,
            usage_source: UsageSource::None,
            attempts: 0,
            attempt: 0,
            is_final: true,
            model: None,
            classification: None,
            route_reason: None,
            latency_ms: 0.0,
            ttft_ms: None,
            overhead_ms: 0.0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost_nanos: None,
            team_id: None,
            user_id: None,
            end_user: None,
            tags: None,
        }
    }
}

impl UsageRecord {
    /// A record for a request that has just arrived; the pipeline fills
    /// the rest as it learns it.
    pub fn new(request_id: &str, operation: &str) -> Self {
        UsageRecord {
            id: crate::ids::time_ordered(ID_PREFIX),
            request_id: request_id.to_string(),
            created_at: crate::now_unix_ms(),
            operation: operation.to_string(),
            ..UsageRecord::default()
        }
    }
}

impl UsageRecord {
    /// The record of attempt `n` of this request: `id` is the request's
    /// (`use_…`) with `.n` added.
    pub fn for_attempt(&self, n: u32) -> UsageRecord {
        let mut r = self.clone();
        r.set_attempt(n);
        r
    }

    /// Makes this record attempt `n` of its request (in place: the final
    /// record is not copied).
    pub fn set_attempt(&mut self, n: u32) {
        use std::fmt::Write;
        let _ = write!(self.id, ".{n}");
        self.attempt = n;
    }
}

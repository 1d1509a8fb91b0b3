//! Accounting: one final usage record and one set of metric observations
//! per request, whatever happens — success, error, or a client that went
//! away (then `Drop` writes the record, with status 499) — plus one record
//! per earlier attempt that failed and was left for the next deployment.
//! Records are keyed by request and attempt number (`use_….n`), so a
//! replayed batch, a retry or a failover is never counted twice.

use crate::budget::Hold;
use crate::limits::Admission;
use crate::runtime::Deployment;
use crate::usage::{UsageRecord, UsageSink};
use crate::volume::VolumeMeter;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard_providers::Operation;
use switchyard_telemetry::Metrics;
use switchyard_types::cost;
use switchyard_types::Usage;

/// Status recorded when the client disconnected before the answer ended.
pub const CLIENT_CLOSED: u16 = 499;

pub struct Account {
    sink: UsageSink,
    metrics: Arc<Metrics>,
    op: Operation,
    received: Instant,
    /// Time spent waiting on upstreams (excluded from overhead).
    upstream: Duration,
    pub record: UsageRecord,
    /// Overhead fixed when the reply was committed (headers sent).
    overhead: Option<Duration>,
    finished: bool,
    /// The request's place under the rate limits: its concurrency slots
    /// are held until the record is written, and its token reservation is
    /// corrected to the real usage then.
    pub admission: Option<Admission>,
    /// The deployment that answered (or was tried last): its prices and its
    /// provider's volume discounts.
    pub priced: Option<Arc<Deployment>>,
    /// Monthly volume per provider (discounts); set by the pipeline.
    pub volume: Option<Arc<VolumeMeter>>,
    /// The request's cost once computed (the header and the record must
    /// agree, and volume must be counted once).
    cost: Option<Option<i64>>,
    /// The request's reservation under its budgets: the actual cost and
    /// tokens are committed when the record is written.
    pub hold: Option<Hold>,
    /// Told when the commit moves a budget past a threshold; set by the
    /// pipeline with the hold.
    pub alerts: Option<Arc<crate::alerts::Alerts>>,
    /// The request counts as in flight at the deployment of its current
    /// attempt (`least_busy`) until this is replaced or dropped.
    pub busy: Option<crate::routing::live::Busy>,
    /// Admission slots, held until the answer ends.
    pub admitted: Option<crate::resilience::admission::Admitted>,
    /// The split arm it was on (`stable` or an arm's name), for per-arm
    /// outcomes and latency.
    pub arm: Option<String>,
    /// Spend of attempts a cascade escalated from: (nano-dollars, tokens),
    /// committed with the final record's.
    escalated: (i64, u64),
}

impl Account {
    pub fn start(sink: UsageSink, metrics: Arc<Metrics>, op: Operation, request_id: &str, received: Instant) -> Self {
        metrics.in_flight.add(&[op.as_str()], 1);
        Account {
            sink,
            metrics,
            op,
            received,
            upstream: Duration::ZERO,
            record: UsageRecord::new(request_id, op.as_str()),
            overhead: None,
            finished: false,
            admission: None,
            priced: None,
            volume: None,
            cost: None,
            hold: None,
            alerts: None,
            busy: None,
            admitted: None,
            arm: None,
            escalated: (0, 0),
        }
    }

    /// What `usage` costs at the prices of the deployment tried last, less
    /// its provider's volume discount, in nano-dollars: `None` when no
    /// deployment was tried. Computed once (the usage's tokens are added to
    /// the provider's monthly volume then); later calls return the same.
    pub fn cost(&mut self, usage: &Usage) -> Option<i64> {
        if let Some(cost) = self.cost {
            return cost;
        }
        let cost = self.price(usage);
        self.cost = Some(cost);
        cost
    }

    /// `usage` at the prices of the deployment tried last, less its
    /// volume discount (whose meter counts the tokens).
    fn price(&self, usage: &Usage) -> Option<i64> {
        self.priced.as_ref().map(|d| self.price_at(d, usage))
    }

    /// `usage` at `d`'s prices, less its volume discount.
    fn price_at(&self, d: &Deployment, usage: &Usage) -> i64 {
        if usage.source == switchyard_types::UsageSource::None {
            // Providers do not bill a refused or failed call.
            return 0;
        }
        let picos = cost::cost_picos(&d.price, &usage.priced_tokens());
        let picos = match &self.volume {
            Some(meter) if !d.discounts.is_empty() => {
                let tokens = usage.input_tokens.unwrap_or(0).saturating_add(usage.output_tokens.unwrap_or(0));
                let before = meter.add(&d.provider_name, tokens, crate::now_unix_ms());
                cost::discounted(picos, &d.discounts, before)
            }
            _ => picos,
        };
        cost::to_nanos(picos)
    }

    /// Records the losing attempt of a hedge, cancelled when the other
    /// answered: billed for its prompt (the provider read it), as estimated.
    pub fn attempt_cancelled(&mut self, loser: &Deployment, attempt: u32, usage: &Usage, took: Duration) {
        self.billed(Some(loser), attempt, usage, took, CLIENT_CLOSED, "hedge_cancelled".into());
    }

    /// Records an attempt whose whole answer a cascade sent on to the next
    /// step: a non-final record with its usage and cost (it was billed),
    /// and its spend added to what the request commits to its budgets.
    pub fn attempt_escalated(&mut self, usage: &Usage, took: Duration, reason: &'static str) {
        self.attempt_billed(usage, took, 200, format!("escalated_{reason}"));
    }

    /// Records an attempt whose stream was cut and continued elsewhere
    /// (stream rescue): what it produced was billed.
    pub fn attempt_cut(&mut self, usage: &Usage, took: Duration) {
        self.attempt_billed(usage, took, 502, "cut_rescued".to_string());
    }

    fn attempt_billed(&mut self, usage: &Usage, took: Duration, status: u16, error_kind: String) {
        self.billed(None, self.record.attempts, usage, took, status, error_kind);
    }

    /// A non-final record of attempt `n` with its usage and cost (at `at`'s
    /// prices, or the deployment tried last), its spend added to what the
    /// request commits to its budgets.
    fn billed(&mut self, at: Option<&Deployment>, n: u32, usage: &Usage, took: Duration, status: u16, kind: String) {
        let nanos = match at {
            Some(d) => Some(self.price_at(d, usage)),
            None => self.price(usage),
        };
        let mut r = self.attempt_record(at, n, status, kind, took);
        r.input_tokens = usage.input_tokens;
        r.output_tokens = usage.output_tokens;
        r.usage_source = usage.source;
        r.cost_nanos = nanos;
        let tokens = usage.input_tokens.unwrap_or(0).saturating_add(usage.output_tokens.unwrap_or(0));
        self.escalated = (self.escalated.0.saturating_add(nanos.unwrap_or(0)), self.escalated.1.saturating_add(tokens));
        self.sink.send_detached(r);
    }

    /// The non-final record of attempt `n`, made at `at` (absent: the
    /// deployment the record names now).
    fn attempt_record(
        &self,
        at: Option<&Deployment>,
        n: u32,
        status: u16,
        kind: String,
        took: Duration,
    ) -> UsageRecord {
        let mut r = self.record.for_attempt(n);
        if let Some(d) = at {
            r.deployment = Some(d.name.clone());
            r.model = Some(d.model.to_string());
        }
        r.is_final = false;
        r.status = status;
        r.error_kind = Some(kind);
        r.latency_ms = took.as_secs_f64() * 1e3;
        r
    }

    /// The metrics, for the relay's rescue counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Records attempt `self.record.attempts`, which failed upstream and is
    /// left for the next deployment: its status and error are the
    /// upstream's, it produced no usage (so it cost nothing) and it is not
    /// the request's final record.
    pub fn attempt_failed(&self, status: u16, error_kind: &str, took: Duration) {
        let mut r = self.attempt_record(None, self.record.attempts, status, error_kind.to_string(), took);
        r.cost_nanos = self.priced.as_ref().map(|_| 0);
        self.sink.send_detached(r);
    }

    /// The same for attempt `n` at `at` (a hedge's other attempt).
    pub fn attempt_failed_at(&self, at: &Deployment, n: u32, status: u16, error_kind: &str, took: Duration) {
        let mut r = self.attempt_record(Some(at), n, status, error_kind.to_string(), took);
        r.cost_nanos = Some(0);
        self.sink.send_detached(r);
    }

    pub fn add_upstream_time(&mut self, d: Duration) {
        self.upstream += d;
    }

    /// Fixes the gateway overhead now: time since arrival minus upstream
    /// waits. Called when the reply is handed to the server.
    pub fn commit(&mut self) -> Duration {
        let overhead = self.received.elapsed().saturating_sub(self.upstream);
        self.overhead = Some(overhead);
        overhead
    }

    pub fn received(&self) -> Instant {
        self.received
    }

    /// Writes the record (queued, off the hot path) and the metrics.
    pub fn finish(mut self, status: u16, error_kind: Option<&str>, usage: Usage, ttft: Option<Duration>) {
        let record = self.close(status, error_kind, usage, ttft);
        self.sink.send_detached(record);
    }

    /// Like [`finish`](Self::finish) but waits for room in the usage queue
    /// (back-pressure instead of a detached task).
    pub async fn finish_async(mut self, status: u16, error_kind: Option<&str>, usage: Usage, ttft: Option<Duration>) {
        let record = self.close(status, error_kind, usage, ttft);
        self.sink.send(record).await;
    }

    fn close(&mut self, status: u16, error_kind: Option<&str>, usage: Usage, ttft: Option<Duration>) -> UsageRecord {
        self.finished = true;
        let latency = self.received.elapsed();
        let overhead = self.overhead.unwrap_or_else(|| latency.saturating_sub(self.upstream));
        let r = &mut self.record;
        r.status = status;
        r.error_kind = error_kind.map(str::to_string);
        r.input_tokens = usage.input_tokens;
        r.output_tokens = usage.output_tokens;
        r.usage_source = usage.source;
        r.latency_ms = latency.as_secs_f64() * 1e3;
        r.ttft_ms = ttft.map(|t| t.as_secs_f64() * 1e3);
        r.overhead_ms = overhead.as_secs_f64() * 1e3;
        r.cache_read_tokens = usage.cache_read_tokens;
        r.cache_write_tokens = usage.cache_write_tokens;
        let cost = self.cost(&usage);
        let r = &mut self.record;
        r.cost_nanos = cost;
        let (escalated_nanos, escalated_tokens) = self.escalated;
        if let Some(hold) = self.hold.take() {
            let tokens = usage.input_tokens.unwrap_or(0).saturating_add(usage.output_tokens.unwrap_or(0));
            let tokens = tokens.saturating_add(escalated_tokens);
            let spent = r.cost_nanos.unwrap_or(0).saturating_add(escalated_nanos);
            match self.alerts.clone() {
                // Crossings come at once from this process's ledger, when
                // Redis answers from the shared one.
                Some(alerts) => {
                    let tenant = r.tenant_id.clone().unwrap_or_default();
                    hold.commit_then(spent, tokens, move |crossings| alerts.notify(&tenant, crossings));
                }
                None => drop(hold.commit(spent, tokens)),
            }
        }
        if let Some(mut admission) = self.admission.take() {
            let used = usage.input_tokens.unwrap_or(0).saturating_add(usage.output_tokens.unwrap_or(0));
            let used = used.saturating_add(escalated_tokens);
            admission.reconcile(used, Instant::now());
        }
        let mut record = std::mem::take(&mut self.record);
        record.set_attempt(record.attempts);
        self.observe(&record, latency, overhead, ttft);
        self.metrics.in_flight.add(&[self.op.as_str()], -1);
        record
    }

    fn observe(&self, r: &UsageRecord, latency: Duration, overhead: Duration, ttft: Option<Duration>) {
        let m = &self.metrics;
        let op = self.op.as_str();
        let route = r.route.as_deref().unwrap_or("-");
        let deployment = r.deployment.as_deref().unwrap_or("-");
        let status = status_label(r.status);
        m.requests.inc(&[op, route, deployment, status]);
        let finished = switchyard_telemetry::Finished {
            latency: latency.as_secs_f64(),
            overhead: overhead.as_secs_f64(),
            ttft: ttft.map(|t| t.as_secs_f64()),
            input_tokens: r.input_tokens.map(|n| n as f64),
            output_tokens: r.output_tokens.map(|n| n as f64),
        };
        m.request_series(op, route, deployment).observe(m, &finished);
        if let Some(arm) = &self.arm {
            m.route_arms.inc(&[route, arm, status]);
            m.route_arm_duration.observe(&[route, arm], finished.latency);
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        if !self.finished {
            // The handler was dropped mid-request: the client went away.
            let record = self.close(CLIENT_CLOSED, Some("client_disconnected"), Usage::default(), None);
            self.sink.send_detached(record);
        }
    }
}

/// Every value [`status_label`] gives.
pub const STATUS_LABELS: &[&str] = &[
    "200", "400", "401", "403", "404", "408", "413", "422", "429", "499", "500", "502", "503", "504", "2xx", "4xx",
    "5xx",
];
/// Those of them that are the gateway's or an upstream's failure.
pub const ERROR_STATUS_LABELS: &[&str] = &["500", "502", "503", "504", "5xx"];

/// Status codes as static label values (bounded set).
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        408 => "408",
        413 => "413",
        422 => "422",
        429 => "429",
        499 => "499",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s if (200..300).contains(&s) => "2xx",
        s if (400..500).contains(&s) => "4xx",
        _ => "5xx",
    }
}

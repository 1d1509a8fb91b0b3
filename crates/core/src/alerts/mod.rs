//! Alerts sent to the configured webhooks (docs/cost.md#alerts):
//!
//! - **Budget threshold alerts**: when a budget's spend reaches a
//!   configured percent of its cap (default 50, 80, 95, 100) — or a request
//!   is refused by it — an alert fires, **once** per budget, period window,
//!   dimension and threshold.
//! - **Operational events** ([`Event`]: a compute node going silent, …):
//!   sent as they happen, not stored (the audit log records them).
//!
//! ```text
//! request path:  Hold::commit / a refusal ─▶ Vec<Crossing> ─▶ Alerts::notify ─┐ (try_send, never waits)
//! other tasks:   a node going silent, … ─▶ Event ─▶ Alerts::event ────────────┤
//!                                                     one bounded queue of Job │ (full: dropped, counted)
//! worker task:   Job::Budget: due thresholds ─▶ store.insert_alert (unique row = fired once, across
//!                restarts and replicas; conflict = already fired) ─▶ Courier::deliver (JSON or Slack
//!                body, retries with backoff and jitter, status on the row after each attempt)
//!                Job::Event: a new alert id ─▶ Courier::deliver_event (the same bodies' formats,
//!                retries, signature and id header; no row)
//!                every SWEEP_EVERY: rows the store refused earlier, and `pending` rows
//!                a stop or a crash left (at start: all of them)
//! ```
//!
//! | file | holds |
//! | --- | --- |
//! | `record.rs` | the alert row, its status, which thresholds a movement makes due, the list's filters |
//! | `payload.rs` | the budget alert's webhook bodies and the API's view |
//! | `event.rs` | operational events and their webhook bodies |
//! | `deliver.rs` | settings, webhooks, the retry schedule, signatures, sending (one loop for both) |
//! | `worker.rs` | the task between the queue, the store and the webhooks |
//! | `list.rs` | `GET /api/v1/alerts` |
//!
//! Delivery of a budget alert is at least once: an alert whose sending was
//! cut (a stop, a crash) is sent again, with the same `alert_id` for
//! receivers to recognise it. Delivery of an event is best effort: retried
//! like an alert, but what a stop or a crash cuts short is lost.

mod deliver;
mod event;
mod list;
pub mod payload;
pub mod record;
#[cfg(test)]
mod tests;
mod worker;

pub use deliver::{signature, Retry, Settings, ALERT_ID_HEADER, SIGNATURE_HEADER};
pub use event::Event;
pub use record::{AlertKey, AlertQuery, AlertRecord, AlertStatus, Delivery};

use crate::budget::period::Zone;
use crate::budget::Crossing;
use crate::store::Store;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchyard_config::AlertsConfig;
use switchyard_providers::http::{build_client, ClientSettings};
use switchyard_telemetry::Metrics;
use tokio::sync::mpsc;

/// How often the worker retries rows the store refused and takes over
/// `pending` alerts nobody is sending any more.
const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Connecting to a webhook; the per-attempt `timeout` bounds it too.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one "queue full" warning per this many ms (each drop is counted).
const DROP_LOG_EVERY_MS: i64 = 10_000;

/// Budget movements of one request.
struct Notice {
    tenant_id: String,
    crossings: Vec<Crossing>,
}

/// What the worker's queue holds.
enum Job {
    Budget(Notice),
    Event(Event),
}

/// The sending side: cheap to share (`Arc`), never waits.
pub struct Alerts {
    tx: mpsc::Sender<Job>,
    settings: Arc<ArcSwap<Settings>>,
    metrics: Arc<Metrics>,
    last_drop_log: AtomicI64,
}

impl Alerts {
    /// Hands a request's budget movements to the worker. Called on the
    /// request path: no allocation when there is nothing to say (the usual
    /// case), and never a wait — when the queue is full the movements are
    /// dropped and counted (`switchyard_budget_alerts_total{result="dropped"}`);
    /// a threshold they would have fired fires on the budget's next
    /// movement instead (see [`record::due`]).
    pub fn notify(&self, tenant_id: &str, crossings: Vec<Crossing>) {
        if crossings.is_empty() {
            return;
        }
        let notice = Notice { tenant_id: tenant_id.to_string(), crossings };
        if !self.queue(Job::Budget(notice)) {
            self.metrics.alerts.inc(&["dropped"]);
            self.warn_dropped("budget movements");
        }
    }

    /// Hands an operational event to the worker, which sends it to every
    /// webhook (none configured: nothing is sent). Never waits: when the
    /// queue is full the event is dropped and counted
    /// (`switchyard_alert_events_total{result="dropped"}`) — the caller
    /// has logged and audited it.
    pub fn event(&self, e: Event) {
        let name = e.event;
        if !self.queue(Job::Event(e)) {
            self.metrics.alert_events.inc(&[name, "dropped"]);
            self.warn_dropped(name);
        }
    }

    /// `false`: the queue is full or the worker stopped.
    fn queue(&self, job: Job) -> bool {
        let queued = self.tx.try_send(job).is_ok();
        if queued {
            self.metrics.alerts_queue_depth.add(&[], 1);
        }
        queued
    }

    /// At most one warning per [`DROP_LOG_EVERY_MS`] (each drop is counted).
    fn warn_dropped(&self, what: &str) {
        let now = crate::now_unix_ms();
        let last = self.last_drop_log.load(Ordering::Relaxed);
        if now - last >= DROP_LOG_EVERY_MS
            && self.last_drop_log.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!("alert queue full (or the worker stopped): {what} dropped");
        }
    }

    /// New thresholds, webhooks and retry settings (config reload), for
    /// budget alerts and events alike. What has fired is in the store, so
    /// nothing fires again.
    pub fn configure(&self, config: &AlertsConfig) {
        self.settings.store(Arc::new(Settings::from_config(config)));
    }
}

/// Starts the worker; it runs until every [`Alerts`] handle is dropped,
/// then gives deliveries in flight a moment and ends (a budget alert it cut
/// short is still `pending`, sent again at the next start; an event is
/// lost). `zone` is the budgets' (times in webhook bodies).
pub fn start(
    store: Arc<dyn Store>,
    config: &AlertsConfig,
    zone: Zone,
    metrics: Arc<Metrics>,
) -> Result<(Arc<Alerts>, tokio::task::JoinHandle<()>), String> {
    start_with(store, config, zone, metrics, SWEEP_EVERY)
}

fn start_with(
    store: Arc<dyn Store>,
    config: &AlertsConfig,
    zone: Zone,
    metrics: Arc<Metrics>,
    sweep_every: Duration,
) -> Result<(Arc<Alerts>, tokio::task::JoinHandle<()>), String> {
    let client = build_client(&ClientSettings { connect_timeout: CONNECT_TIMEOUT, http2_only: false })
        .map_err(|e| format!("alerts: cannot build the webhook client: {}", e.message))?;
    let settings = Arc::new(ArcSwap::from_pointee(Settings::from_config(config)));
    let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
    let courier = deliver::Courier { client, store: store.clone(), metrics: metrics.clone(), zone };
    let worker = worker::Worker::new(store, settings.clone(), Arc::new(courier), metrics.clone());
    let task = tokio::spawn(worker.run(rx, sweep_every));
    let alerts = Alerts { tx, settings, metrics, last_drop_log: AtomicI64::new(0) };
    Ok((Arc::new(alerts), task))
}

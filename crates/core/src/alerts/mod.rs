//! Budget threshold alerts (docs/cost.md#alerts): when a budget's spend
//! reaches a configured percent of its cap (default 50, 80, 95, 100) — or a
//! request is refused by it — an alert fires, **once** per budget, period
//! window, dimension and threshold, and is sent to the configured webhooks.
//!
//! ```text
//! request path:  Hold::commit / a refusal ─▶ Vec<Crossing> ─▶ Alerts::notify (try_send, never waits)
//!                                                                │ bounded queue (full: dropped, counted)
//! worker task:   due thresholds ─▶ store.insert_alert (unique row = fired once, across restarts
//!                and replicas; conflict = already fired) ─▶ Courier::deliver (JSON or Slack body,
//!                retries with backoff and jitter, status on the row after each attempt)
//!                every SWEEP_EVERY: rows the store refused earlier, and `pending` rows
//!                a stop or a crash left (at start: all of them)
//! ```
//!
//! | file | holds |
//! | --- | --- |
//! | `record.rs` | the alert row, its status, which thresholds a movement makes due, the list's filters |
//! | `payload.rs` | the webhook bodies and the API's view |
//! | `deliver.rs` | settings, webhooks, the retry schedule, signatures, sending |
//! | `worker.rs` | the task between the queue, the store and the webhooks |
//! | `list.rs` | `GET /api/v1/alerts` |
//!
//! Delivery is at least once: an alert whose sending was cut (a stop, a
//! crash) is sent again, with the same `alert_id` for receivers to
//! recognise it.

mod deliver;
mod list;
pub mod payload;
pub mod record;
#[cfg(test)]
mod tests;
mod worker;

pub use deliver::{signature, Retry, Settings, ALERT_ID_HEADER, SIGNATURE_HEADER};
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

/// The sending side: cheap to share (`Arc`), never waits.
pub struct Alerts {
    tx: mpsc::Sender<Notice>,
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
        match self.tx.try_send(notice) {
            Ok(()) => self.metrics.alerts_queue_depth.add(&[], 1),
            Err(_) => {
                self.metrics.alerts.inc(&["dropped"]);
                let now = crate::now_unix_ms();
                let last = self.last_drop_log.load(Ordering::Relaxed);
                if now - last >= DROP_LOG_EVERY_MS
                    && self.last_drop_log.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    tracing::warn!("budget alert queue full (or the worker stopped): movements dropped");
                }
            }
        }
    }

    /// New thresholds, webhooks and retry settings (config reload). What
    /// has fired is in the store, so nothing fires again.
    pub fn configure(&self, config: &AlertsConfig) {
        self.settings.store(Arc::new(Settings::from_config(config)));
    }
}

/// Starts the worker; it runs until every [`Alerts`] handle is dropped,
/// then gives deliveries in flight a moment and ends (what it cut short is
/// still `pending`, sent again at the next start). `zone` is the budgets'
/// (times in webhook bodies).
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

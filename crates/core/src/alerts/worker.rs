//! The task between the queue, the store and the webhooks.
//!
//! Invariants a reader must keep:
//! - An alert is sent only after its row was inserted: the row's
//!   uniqueness is what makes it fire once, across restarts and replicas.
//!   When the store cannot be reached the alert waits in a small buffer
//!   (bounded; overflow is dropped and counted) and is inserted later.
//! - `fired` only saves store round trips for alerts known to exist; it is
//!   bounded by clearing it, which costs a few conflicting inserts.
//! - An alert is sent by at most one task of this process at a time
//!   (`sending`); another replica takes a `pending` row over only through
//!   `claim_alert`, which succeeds for one caller.
//! - Events have no row: each gets a new alert id and is sent at once,
//!   sharing the [`MAX_SENDING`] slots with budget alerts.

use super::deliver::{Courier, Settings, MAX_BACKOFF};
use super::event::Event;
use super::record::{due, AlertKey, AlertRecord, AlertStatus};
use super::{Job, Notice};
use crate::store::Store;
use arc_swap::ArcSwap;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use switchyard_telemetry::Metrics;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Alerts known to exist, remembered to skip their insert.
const MAX_REMEMBERED: usize = 100_000;
/// Alerts waiting for the store to come back.
const MAX_UNSTORED: usize = 1024;
/// Deliveries at once; more wait for one to end.
const MAX_SENDING: usize = 64;
/// Pending rows taken over by a sweep, per sweep.
const SWEEP_BATCH: usize = 100;
/// How long deliveries in flight may finish when the gateway stops.
const STOP_GRACE: Duration = Duration::from_secs(2);

pub(super) struct Worker {
    store: Arc<dyn Store>,
    settings: Arc<ArcSwap<Settings>>,
    courier: Arc<Courier>,
    metrics: Arc<Metrics>,
    fired: HashSet<AlertKey>,
    unstored: VecDeque<AlertRecord>,
    /// Ids of the budget alerts being sent by this process.
    sending: HashSet<String>,
    /// Each ends with the budget alert's id (`None`: an event).
    deliveries: JoinSet<Option<String>>,
}

impl Worker {
    pub(super) fn new(
        store: Arc<dyn Store>,
        settings: Arc<ArcSwap<Settings>>,
        courier: Arc<Courier>,
        metrics: Arc<Metrics>,
    ) -> Worker {
        Worker {
            store,
            settings,
            courier,
            metrics,
            fired: HashSet::new(),
            unstored: VecDeque::new(),
            sending: HashSet::new(),
            deliveries: JoinSet::new(),
        }
    }

    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Job>, sweep_every: Duration) {
        // The first tick is at once: pending alerts a stop or a crash left
        // are sent at start.
        let mut tick = tokio::time::interval(sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut at_start = true;
        loop {
            tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => {
                        self.metrics.alerts_queue_depth.add(&[], -1);
                        match job {
                            Job::Budget(n) => self.handle(n).await,
                            Job::Event(e) => self.dispatch(e).await,
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    self.insert_unstored().await;
                    self.take_over_pending(at_start).await;
                    at_start = false;
                }
                Some(done) = self.deliveries.join_next(), if !self.deliveries.is_empty() => self.finished(done),
            }
        }
        // Every handle is gone: the gateway is stopping.
        let _ = tokio::time::timeout(STOP_GRACE, async {
            while let Some(done) = self.deliveries.join_next().await {
                self.finished(done);
            }
        })
        .await;
        if !self.deliveries.is_empty() {
            tracing::info!(
                alerts = self.deliveries.len(),
                "stopping with alerts unsent; budget alerts are sent at the next start, events are not"
            );
        }
    }

    fn finished(&mut self, done: Result<Option<String>, tokio::task::JoinError>) {
        if let Ok(Some(id)) = done {
            self.sending.remove(&id);
        }
    }

    /// Sends event `e` to every webhook, under a new alert id.
    async fn dispatch(&mut self, e: Event) {
        self.metrics.alert_events.inc(&[e.event, "fired"]);
        let settings = self.settings.load_full();
        if settings.webhooks.is_empty() {
            tracing::debug!(event = e.event, subject = %e.subject, "no alert webhook: event not sent");
            return;
        }
        let id = crate::ids::time_ordered("alr");
        tracing::info!(alert = %id, event = e.event, subject = %e.subject, "alert event fired");
        self.wait_for_a_slot().await;
        let courier = self.courier.clone();
        self.deliveries.spawn(async move {
            courier.deliver_event(&settings, &id, &e).await;
            None
        });
    }

    /// Waits while [`MAX_SENDING`] deliveries are under way.
    async fn wait_for_a_slot(&mut self) {
        while self.deliveries.len() >= MAX_SENDING {
            match self.deliveries.join_next().await {
                Some(done) => self.finished(done),
                None => break,
            }
        }
    }

    async fn handle(&mut self, notice: Notice) {
        let settings = self.settings.load_full();
        let now = crate::now_unix_ms();
        for c in &notice.crossings {
            for threshold in due(c, &settings.thresholds) {
                let alert = AlertRecord::new(&notice.tenant_id, c, threshold, now, !settings.webhooks.is_empty());
                if self.fired.contains(&alert.key()) {
                    continue;
                }
                self.insert(alert).await;
            }
        }
    }

    /// Records `alert` unless it exists; sends it when it is new.
    async fn insert(&mut self, alert: AlertRecord) {
        match self.store.insert_alert(&alert).await {
            Ok(true) => {
                self.remember(alert.key());
                self.metrics.alerts.inc(&["fired"]);
                tracing::info!(
                    alert = %alert.id, scope = %alert.scope, threshold = alert.threshold,
                    refused = alert.refused, "budget alert fired"
                );
                if alert.delivery.status == AlertStatus::Pending {
                    self.send(alert).await;
                }
            }
            Ok(false) => self.remember(alert.key()),
            Err(e) => {
                let key = alert.key();
                if self.unstored.iter().any(|u| u.key() == key) {
                    return;
                }
                if self.unstored.len() < MAX_UNSTORED {
                    tracing::warn!(error = %e, scope = %alert.scope, "budget alert not recorded yet; retried");
                    self.unstored.push_back(alert);
                } else {
                    tracing::error!(error = %e, scope = %alert.scope, "budget alert lost: the store is down and the buffer full");
                    self.metrics.alerts.inc(&["dropped"]);
                }
            }
        }
    }

    fn remember(&mut self, key: AlertKey) {
        if self.fired.len() >= MAX_REMEMBERED {
            self.fired.clear();
        }
        self.fired.insert(key);
    }

    async fn insert_unstored(&mut self) {
        for _ in 0..self.unstored.len() {
            let Some(alert) = self.unstored.pop_front() else { break };
            let before = self.unstored.len();
            self.insert(alert).await;
            if self.unstored.len() > before {
                break; // still down: the rest waits for the next sweep
            }
        }
    }

    /// Starts sending `alert` (waiting for a slot when [`MAX_SENDING`] are
    /// under way).
    async fn send(&mut self, alert: AlertRecord) {
        self.wait_for_a_slot().await;
        let settings = self.settings.load_full();
        let courier = self.courier.clone();
        self.sending.insert(alert.id.clone());
        self.deliveries.spawn(async move {
            let id = alert.id.clone();
            courier.deliver(&settings, alert).await;
            Some(id)
        });
    }

    /// Sends `pending` alerts nobody is sending: at start every one (this
    /// process sends none yet), later those whose row has not moved for
    /// longer than an attempt and its wait can take (a replica that was
    /// sending them stopped).
    async fn take_over_pending(&mut self, at_start: bool) {
        let settings = self.settings.load_full();
        if settings.webhooks.is_empty() {
            return; // they stay pending until a webhook is configured
        }
        let now = crate::now_unix_ms();
        let quiet = settings.retry.timeout + MAX_BACKOFF + Duration::from_secs(30);
        let stale_before = if at_start { now + 1 } else { now - i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX) };
        let rows = match self.store.pending_alerts(stale_before, SWEEP_BATCH).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::debug!(error = %e, "pending budget alerts not read; next sweep");
                return;
            }
        };
        for alert in rows {
            if self.sending.contains(&alert.id) {
                continue;
            }
            match self.store.claim_alert(&alert.id, alert.delivery.updated_at, now).await {
                Ok(true) => {
                    tracing::info!(alert = %alert.id, attempts = alert.delivery.attempts, "sending a pending budget alert again");
                    let mut alert = alert;
                    alert.delivery.updated_at = now;
                    self.send(alert).await;
                }
                Ok(false) => {} // another replica took it
                Err(e) => tracing::debug!(alert = %alert.id, error = %e, "pending budget alert not claimed"),
            }
        }
    }
}

//! Usage records: one per request, failed ones too, written off the hot
//! path.
//!
//! Requests hand records to a bounded channel ([`UsageSink`]); one writer
//! task drains it in batches (up to `batch_size`, or whatever arrived
//! within `flush_interval`) and writes each batch in one store call. When
//! the store refuses a batch three times the batch is appended to a spill
//! file (JSON lines) and replayed at the next start, so billing records are
//! not lost while the database is down. On shutdown the writer drains the
//! channel and flushes before the process exits.

use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchyard_telemetry::Metrics;
use switchyard_types::UsageSource;
use tokio::sync::{mpsc, oneshot};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct UsageRecord {
    /// Unique per request, made by the gateway: the key that makes a
    /// replayed batch idempotent. `request_id` is the client's and may repeat.
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
    pub attempts: u32,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub overhead_ms: f64,
}

impl UsageRecord {
    /// A record for a request that has just arrived; the pipeline fills
    /// the rest as it learns it.
    pub fn new(request_id: &str, operation: &str) -> Self {
        UsageRecord {
            id: crate::ids::time_ordered("use"),
            request_id: request_id.to_string(),
            created_at: crate::now_unix_ms(),
            key_id: None,
            tenant_id: None,
            operation: operation.to_string(),
            route: None,
            deployment: None,
            stream: false,
            status: 0,
            error_kind: None,
            input_tokens: None,
            output_tokens: None,
            usage_source: UsageSource::None,
            attempts: 0,
            latency_ms: 0.0,
            ttft_ms: None,
            overhead_ms: 0.0,
        }
    }
}

enum Message {
    Record(Box<UsageRecord>),
    Flush(oneshot::Sender<()>),
}

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct UsageSink {
    tx: mpsc::Sender<Message>,
    metrics: Arc<Metrics>,
}

impl UsageSink {
    /// Queues a record. When the queue is full the caller waits (records
    /// are never dropped); the depth is exported as a metric.
    pub async fn send(&self, record: UsageRecord) {
        let message = Message::Record(Box::new(record));
        let message = match self.tx.try_send(message) {
            Ok(()) => {
                self.metrics.usage_queue_depth.add(&[], 1);
                return;
            }
            Err(mpsc::error::TrySendError::Full(m)) | Err(mpsc::error::TrySendError::Closed(m)) => m,
        };
        if self.tx.send(message).await.is_ok() {
            self.metrics.usage_queue_depth.add(&[], 1);
        } else {
            self.lost();
        }
    }

    /// Only after the writer has ended (a bug or a late shutdown race).
    fn lost(&self) {
        tracing::error!("usage writer is gone; a usage record was lost");
        self.metrics.usage_records.inc(&["lost"]);
    }

    /// Queues a record from synchronous code (a `Drop`): if the queue is
    /// full, a task waits for room instead.
    pub fn send_detached(&self, record: UsageRecord) {
        match self.tx.try_send(Message::Record(Box::new(record))) {
            Ok(()) => self.metrics.usage_queue_depth.add(&[], 1),
            Err(mpsc::error::TrySendError::Full(Message::Record(record))) => {
                let sink = self.clone();
                tokio::spawn(async move { sink.send(*record).await });
            }
            Err(_) => self.lost(),
        }
    }

    /// Waits until everything queued so far is written (or spilled).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Message::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

pub struct WriterSettings {
    pub capacity: usize,
    pub batch_size: usize,
    pub flush_interval: Duration,
    /// Where batches the store refused go; `None` keeps retrying instead.
    pub spill_path: Option<PathBuf>,
}

/// Starts the writer task. It runs until every [`UsageSink`] is dropped,
/// then writes what is left and ends; await the handle to know it has.
pub fn start_writer(
    store: Arc<dyn Store>,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
) -> (UsageSink, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.capacity.max(1));
    let sink = UsageSink { tx, metrics: metrics.clone() };
    let handle = tokio::spawn(writer_loop(store, settings, metrics, rx));
    (sink, handle)
}

async fn writer_loop(
    store: Arc<dyn Store>,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Message>,
) {
    if let Some(path) = &settings.spill_path {
        replay_spill(&*store, path, &metrics).await;
    }
    let mut messages = Vec::with_capacity(settings.batch_size);
    let mut batch: Vec<UsageRecord> = Vec::with_capacity(settings.batch_size);
    loop {
        let n = rx.recv_many(&mut messages, settings.batch_size).await;
        if n == 0 {
            break; // every sender is gone and the queue is empty
        }
        // Give stragglers a moment to fill the batch, within the interval.
        let deadline = tokio::time::Instant::now() + settings.flush_interval;
        let (mut records, mut flush) = (batch_len(&messages), has_flush(&messages));
        while records < settings.batch_size && !flush {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => {
                    records += usize::from(matches!(m, Message::Record(_)));
                    flush |= matches!(m, Message::Flush(_));
                    messages.push(m);
                }
                _ => break,
            }
        }
        let mut waiters = Vec::new();
        for m in messages.drain(..) {
            match m {
                Message::Record(r) => batch.push(*r),
                Message::Flush(w) => waiters.push(w),
            }
        }
        if !batch.is_empty() {
            metrics.usage_queue_depth.add(&[], -(batch.len() as i64));
            let full = std::mem::replace(&mut batch, Vec::with_capacity(settings.batch_size));
            write_batch(&*store, full, settings.spill_path.as_ref(), &metrics).await;
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

fn batch_len(m: &[Message]) -> usize {
    m.iter().filter(|m| matches!(m, Message::Record(_))).count()
}

fn has_flush(m: &[Message]) -> bool {
    m.iter().any(|m| matches!(m, Message::Flush(_)))
}

async fn write_batch(store: &dyn Store, batch: Vec<UsageRecord>, spill: Option<&PathBuf>, metrics: &Metrics) {
    let n = batch.len() as u64;
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=3 {
        match store.write_usage(&batch).await {
            Ok(()) => {
                metrics.usage_records.add(&["written"], n);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, records = n, "usage batch write failed");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
    match spill {
        Some(path) => match append_spill(path, &batch).await {
            Ok(()) => {
                tracing::warn!(records = n, path = %path.display(), "usage batch spilled to file; replayed at next start");
                metrics.usage_records.add(&["spilled"], n);
            }
            Err(e) => {
                tracing::error!(error = %e, records = n, "usage batch could not be written nor spilled");
                metrics.usage_records.add(&["failed"], n);
            }
        },
        None => {
            tracing::error!(records = n, "usage batch could not be written");
            metrics.usage_records.add(&["failed"], n);
        }
    }
}

async fn append_spill(path: &PathBuf, batch: &[UsageRecord]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut text = String::new();
    for r in batch {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let mut f = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?;
    f.write_all(text.as_bytes()).await?;
    f.sync_data().await
}

async fn replay_spill(store: &dyn Store, path: &PathBuf, metrics: &Metrics) {
    let Ok(text) = tokio::fs::read_to_string(path).await else { return };
    let records: Vec<UsageRecord> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if records.is_empty() {
        let _ = tokio::fs::remove_file(path).await;
        return;
    }
    let n = records.len();
    match store.write_usage(&records).await {
        Ok(()) => {
            let _ = tokio::fs::remove_file(path).await;
            metrics.usage_records.add(&["replayed"], n as u64);
            tracing::info!(records = n, "replayed spilled usage records");
        }
        Err(e) => {
            tracing::warn!(error = %e, records = n, "spilled usage records not replayed yet; kept for next start")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keys::KeyRecord;
    use crate::store::{StoreError, StoreFuture};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Fake {
        written: Mutex<Vec<Vec<UsageRecord>>>,
        down: AtomicBool,
    }

    impl Store for Fake {
        fn insert_key(&self, _: &KeyRecord) -> StoreFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
        fn load_keys(&self) -> StoreFuture<'_, Vec<KeyRecord>> {
            Box::pin(async { Ok(vec![]) })
        }
        fn write_usage<'a>(&'a self, batch: &'a [UsageRecord]) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                if self.down.load(Ordering::SeqCst) {
                    return Err(StoreError("down".into()));
                }
                self.written.lock().unwrap().push(batch.to_vec());
                Ok(())
            })
        }
        fn ping(&self) -> StoreFuture<'_, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    fn record(i: usize) -> UsageRecord {
        let mut r = UsageRecord::new(&format!("r{i}"), "chat");
        r.status = 200;
        r
    }

    fn settings(spill: Option<PathBuf>) -> WriterSettings {
        WriterSettings { capacity: 4, batch_size: 3, flush_interval: Duration::from_millis(5), spill_path: spill }
    }

    #[tokio::test]
    async fn batches_everything_and_drains_on_close() {
        let store = Arc::new(Fake::default());
        let (sink, handle) = start_writer(store.clone(), settings(None), Arc::new(Metrics::new()));
        for i in 0..10 {
            sink.send(record(i)).await;
        }
        drop(sink);
        handle.await.unwrap();
        let written = store.written.lock().unwrap();
        assert!(written.iter().all(|b| b.len() <= 3));
        let ids: Vec<_> = written.iter().flatten().map(|r| r.request_id.clone()).collect();
        let unique: std::collections::HashSet<_> = written.iter().flatten().map(|r| r.id.clone()).collect();
        assert_eq!(unique.len(), 10, "every record has its own id");
        assert_eq!(ids, (0..10).map(|i| format!("r{i}")).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn flush_waits_for_the_write() {
        let store = Arc::new(Fake::default());
        let (sink, _handle) = start_writer(store.clone(), settings(None), Arc::new(Metrics::new()));
        sink.send(record(1)).await;
        sink.flush().await;
        assert_eq!(store.written.lock().unwrap().iter().flatten().count(), 1);
    }

    #[tokio::test]
    async fn store_outage_spills_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill.jsonl");
        let store = Arc::new(Fake::default());
        store.down.store(true, Ordering::SeqCst);
        let metrics = Arc::new(Metrics::new());
        let (sink, handle) = start_writer(store.clone(), settings(Some(spill.clone())), metrics.clone());
        sink.send(record(1)).await;
        sink.send(record(2)).await;
        drop(sink);
        handle.await.unwrap();
        assert_eq!(metrics.usage_records.get(&["spilled"]), 2);
        assert!(spill.exists());
        // Next start, store back: replayed and the file removed.
        store.down.store(false, Ordering::SeqCst);
        let (sink, handle) = start_writer(store.clone(), settings(Some(spill.clone())), metrics.clone());
        drop(sink);
        handle.await.unwrap();
        assert_eq!(store.written.lock().unwrap().iter().flatten().count(), 2);
        assert!(!spill.exists());
    }
}

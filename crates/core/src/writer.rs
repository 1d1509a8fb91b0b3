//! The bounded, batched writer behind usage records and audit entries:
//! requests hand records to a bounded channel ([`Sink`]); one writer task
//! drains it in batches (up to `batch_size`, or whatever arrived within
//! `flush_interval`) and writes each batch in one store call. When the
//! store refuses a batch three times the batch is appended to a spill file
//! (JSON lines) and replayed at the next start, so records are not lost
//! while the database is down. On shutdown the writer drains the channel
//! and flushes before the process exits.

use crate::store::{Store, StoreFuture};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchyard_telemetry::Metrics;
use switchyard_telemetry::{CounterFamily, GaugeFamily};
use tokio::sync::{mpsc, oneshot};

/// A kind of record the writer can batch.
pub trait Batched: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// For logs: `usage`, `audit`.
    const WHAT: &'static str;
    fn write<'a>(store: &'a dyn Store, batch: &'a [Self]) -> StoreFuture<'a, ()>;
    /// Its `result` counter (`written`, `spilled`, `replayed`, `failed`, `lost`).
    fn records(metrics: &Metrics) -> &CounterFamily;
    fn depth(metrics: &Metrics) -> &GaugeFamily;
}

impl<R> Clone for Sink<R> {
    fn clone(&self) -> Self {
        Sink { tx: self.tx.clone(), metrics: self.metrics.clone() }
    }
}

enum Message<R> {
    Record(Box<R>),
    Flush(oneshot::Sender<()>),
}

/// The sending side, cheap to clone.
pub struct Sink<R> {
    tx: mpsc::Sender<Message<R>>,
    metrics: Arc<Metrics>,
}

impl<R: Batched> Sink<R> {
    /// Queues a record. When the queue is full the caller waits (records
    /// are never dropped); the depth is exported as a metric.
    pub async fn send(&self, record: R) {
        let message = Message::Record(Box::new(record));
        let message = match self.tx.try_send(message) {
            Ok(()) => {
                R::depth(&self.metrics).add(&[], 1);
                return;
            }
            Err(mpsc::error::TrySendError::Full(m)) | Err(mpsc::error::TrySendError::Closed(m)) => m,
        };
        if self.tx.send(message).await.is_ok() {
            R::depth(&self.metrics).add(&[], 1);
        } else {
            self.lost();
        }
    }

    /// Only after the writer has ended (a bug or a late shutdown race).
    fn lost(&self) {
        tracing::error!(what = R::WHAT, "writer is gone; a record was lost");
        R::records(&self.metrics).inc(&["lost"]);
    }

    /// Queues a record from synchronous code (a `Drop`): if the queue is
    /// full, a task waits for room instead.
    pub fn send_detached(&self, record: R) {
        match self.tx.try_send(Message::Record(Box::new(record))) {
            Ok(()) => R::depth(&self.metrics).add(&[], 1),
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
pub fn start_writer<R: Batched>(
    store: Arc<dyn Store>,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
) -> (Sink<R>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.capacity.max(1));
    let sink = Sink { tx, metrics: metrics.clone() };
    let handle = tokio::spawn(writer_loop(store, settings, metrics, rx));
    (sink, handle)
}

async fn writer_loop<R: Batched>(
    store: Arc<dyn Store>,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
    mut rx: mpsc::Receiver<Message<R>>,
) {
    if let Some(path) = &settings.spill_path {
        replay_spill::<R>(&*store, path, &metrics).await;
    }
    let mut messages = Vec::with_capacity(settings.batch_size);
    let mut batch: Vec<R> = Vec::with_capacity(settings.batch_size);
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
            R::depth(&metrics).add(&[], -(batch.len() as i64));
            let full = std::mem::replace(&mut batch, Vec::with_capacity(settings.batch_size));
            write_batch(&*store, full, settings.spill_path.as_ref(), &metrics).await;
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

fn batch_len<R>(m: &[Message<R>]) -> usize {
    m.iter().filter(|m| matches!(m, Message::Record(_))).count()
}

fn has_flush<R>(m: &[Message<R>]) -> bool {
    m.iter().any(|m| matches!(m, Message::Flush(_)))
}

async fn write_batch<R: Batched>(store: &dyn Store, batch: Vec<R>, spill: Option<&PathBuf>, metrics: &Metrics) {
    let n = batch.len() as u64;
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=3 {
        match R::write(store, &batch).await {
            Ok(()) => {
                R::records(metrics).add(&["written"], n);
                return;
            }
            Err(e) => {
                tracing::warn!(what = R::WHAT, error = %e, attempt, records = n, "batch write failed");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
        }
    }
    match spill {
        Some(path) => match append_spill(path, &batch).await {
            Ok(()) => {
                tracing::warn!(what = R::WHAT, records = n, path = %path.display(), "batch spilled to file; replayed at next start");
                R::records(metrics).add(&["spilled"], n);
            }
            Err(e) => {
                tracing::error!(what = R::WHAT, error = %e, records = n, "batch could not be written nor spilled");
                R::records(metrics).add(&["failed"], n);
            }
        },
        None => {
            tracing::error!(what = R::WHAT, records = n, "batch could not be written");
            R::records(metrics).add(&["failed"], n);
        }
    }
}

async fn append_spill<R: Batched>(path: &PathBuf, batch: &[R]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut text = String::new();
    for r in batch {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut f = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await?;
    f.write_all(text.as_bytes()).await?;
    f.sync_data().await
}

async fn replay_spill<R: Batched>(store: &dyn Store, path: &PathBuf, metrics: &Metrics) {
    let Ok(text) = tokio::fs::read_to_string(path).await else { return };
    let records: Vec<R> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if records.is_empty() {
        let _ = tokio::fs::remove_file(path).await;
        return;
    }
    let n = records.len();
    match R::write(store, &records).await {
        Ok(()) => {
            let _ = tokio::fs::remove_file(path).await;
            R::records(metrics).add(&["replayed"], n as u64);
            tracing::info!(what = R::WHAT, records = n, "replayed spilled records");
        }
        Err(e) => {
            tracing::warn!(what = R::WHAT, error = %e, records = n, "spilled records not replayed yet; kept for next start")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::usage::UsageRecord;
    use std::sync::atomic::Ordering;

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
        let store = Arc::new(MemoryStore::default());
        let (sink, handle) = start_writer::<UsageRecord>(store.clone(), settings(None), Arc::new(Metrics::new()));
        for i in 0..10 {
            sink.send(record(i)).await;
        }
        drop(sink);
        handle.await.unwrap();
        let written = store.usage_batches.lock().unwrap();
        assert!(written.iter().all(|b| b.len() <= 3));
        let ids: Vec<_> = written.iter().flatten().map(|r| r.request_id.clone()).collect();
        let unique: std::collections::HashSet<_> = written.iter().flatten().map(|r| r.id.clone()).collect();
        assert_eq!(unique.len(), 10, "every record has its own id");
        assert_eq!(ids, (0..10).map(|i| format!("r{i}")).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn flush_waits_for_the_write() {
        let store = Arc::new(MemoryStore::default());
        let (sink, _handle) = start_writer::<UsageRecord>(store.clone(), settings(None), Arc::new(Metrics::new()));
        sink.send(record(1)).await;
        sink.flush().await;
        assert_eq!(store.usage_batches.lock().unwrap().iter().flatten().count(), 1);
    }

    #[tokio::test]
    async fn store_outage_spills_and_replays() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill.jsonl");
        let store = Arc::new(MemoryStore::default());
        store.down.store(true, Ordering::SeqCst);
        let metrics = Arc::new(Metrics::new());
        let (sink, handle) = start_writer::<UsageRecord>(store.clone(), settings(Some(spill.clone())), metrics.clone());
        sink.send(record(1)).await;
        sink.send(record(2)).await;
        drop(sink);
        handle.await.unwrap();
        assert_eq!(metrics.usage_records.get(&["spilled"]), 2);
        assert!(spill.exists());
        // Next start, store back: replayed and the file removed.
        store.down.store(false, Ordering::SeqCst);
        let (sink, handle) = start_writer::<UsageRecord>(store.clone(), settings(Some(spill.clone())), metrics.clone());
        drop(sink);
        handle.await.unwrap();
        assert_eq!(store.usage_batches.lock().unwrap().iter().flatten().count(), 2);
        assert!(!spill.exists());
    }
}

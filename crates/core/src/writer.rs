//! The bounded, batched writer behind usage records and audit entries:
//! requests hand records to a bounded channel ([`Sink`]); one writer task
//! drains it in batches (up to `batch_size`, or whatever arrived within
//! `flush_interval`) and writes each batch in one store call.
//!
//! The store being slow or down never holds requests (they only queue a
//! record) and never loses a record:
//!
//! | state | a batch goes | until |
//! | --- | --- | --- |
//! | store up | to the store, retried for up to [`SPILL_AFTER`] | it fails: down |
//! | down | straight to the spill file (JSON lines, synced) | a ping (every [`PROBE_EVERY`]) answers |
//! | spill file left | to the store; the file is replayed in batches, then removed | replayed (a file from an earlier process is replayed at start) |
//!
//! Writes are idempotent (unique record ids; the store ignores a known
//! one), so a batch that timed out but committed, or a replay cut short,
//! is never counted twice. On shutdown the writer drains the channel and
//! flushes (to the store, or the file) before the process exits.

use crate::store::{Store, StoreFuture};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use switchyard_telemetry::Metrics;
use switchyard_telemetry::{CounterFamily, GaugeFamily};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

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

    /// Waits up to `wait` for the queue to have room; `false` if it stayed
    /// full all that time. The pipeline admits a request only when this is
    /// `true` (else 503): a queue that drains — a writer behind a busy CPU —
    /// slows clients down instead of failing them, and one that does not —
    /// a writer stuck on the store — sheds them rather than letting records
    /// pile up in memory.
    pub async fn admit(&self, wait: Duration) -> bool {
        if self.tx.capacity() > 0 {
            return true;
        }
        // A reserved slot is given back at once: the request queues its
        // record at its end, like any other.
        matches!(tokio::time::timeout(wait, self.tx.reserve()).await, Ok(Ok(_)))
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

    /// Queues a record if there is room, else drops it and counts it
    /// (`dropped`): for records that may be lost under overload — the
    /// security decisions of the audit log, which a flood of bad
    /// credentials would otherwise turn into an unbounded pile of waiting
    /// tasks. Billing records never come here.
    pub fn send_or_drop(&self, record: R) {
        match self.tx.try_send(Message::Record(Box::new(record))) {
            Ok(()) => R::depth(&self.metrics).add(&[], 1),
            Err(mpsc::error::TrySendError::Full(_)) => {
                R::records(&self.metrics).inc(&["dropped"]);
                tracing::debug!(what = R::WHAT, "queue full; a record was dropped");
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
    /// Where batches the store did not take go; `None`: they are counted
    /// as `failed` (an in-memory store, which does not go down).
    pub spill_path: Option<PathBuf>,
}

/// How long a batch may wait for the store, over all its attempts, before
/// it goes to the spill file. A database that is down makes the pool retry
/// its connection until its own timeout (5 s), so this bounds what is held
/// in memory while the store is failing; a healthy store writes a batch in
/// milliseconds.
const SPILL_AFTER: Duration = Duration::from_secs(2);
/// While the store is down: how often it is pinged to see whether it is
/// back, and how long the ping may take.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest wait between two replays the store answers pings but
/// refuses (a record it rejects): the wait doubles from [`PROBE_EVERY`].
const REPLAY_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Starts the writer task. It runs until every [`Sink`] is dropped, then
/// writes what is left and ends; await the handle to know it has.
pub fn start_writer<R: Batched>(
    store: Arc<dyn Store>,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
) -> (Sink<R>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(settings.capacity.max(1));
    let sink = Sink { tx, metrics: metrics.clone() };
    let writer = Writer {
        store,
        settings,
        metrics,
        down: false,
        pending: false,
        next_try: Instant::now(),
        replay_every: PROBE_EVERY,
    };
    let handle = tokio::spawn(writer.run(rx));
    (sink, handle)
}

struct Writer {
    store: Arc<dyn Store>,
    settings: WriterSettings,
    metrics: Arc<Metrics>,
    /// The store failed a batch and has not answered a ping since: batches
    /// go straight to the spill file instead of waiting on it.
    down: bool,
    /// The spill file may hold records the store has not taken: replayed
    /// once the store answers.
    pending: bool,
    /// When to ping the store (while down) or replay the file (pending).
    next_try: Instant,
    replay_every: Duration,
}

impl Writer {
    async fn run<R: Batched>(mut self, mut rx: mpsc::Receiver<Message<R>>) {
        // A file left by an earlier process (or by the outage it ended in).
        self.pending = self.settings.spill_path.as_ref().is_some_and(|p| p.exists());
        if self.pending {
            self.recover::<R>().await;
        }
        let limit = self.settings.batch_size.max(1);
        let mut messages = Vec::with_capacity(limit);
        loop {
            let n = if self.down || self.pending {
                // Records or not, wake up when the store is due a try.
                match tokio::time::timeout_at(self.next_try, rx.recv_many(&mut messages, limit)).await {
                    Ok(n) => n,
                    Err(_) => {
                        self.recover::<R>().await;
                        continue;
                    }
                }
            } else {
                rx.recv_many(&mut messages, limit).await
            };
            if n == 0 {
                break; // every sender is gone and the queue is empty
            }
            // Give stragglers a moment to fill the batch, within the interval.
            let deadline = Instant::now() + self.settings.flush_interval;
            let (mut records, mut flush) = (batch_len(&messages), has_flush(&messages));
            while records < limit && !flush {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(m)) => {
                        records += usize::from(matches!(m, Message::Record(_)));
                        flush |= matches!(m, Message::Flush(_));
                        messages.push(m);
                    }
                    _ => break,
                }
            }
            let mut batch = Vec::with_capacity(records);
            let mut waiters = Vec::new();
            for m in messages.drain(..) {
                match m {
                    Message::Record(r) => batch.push(*r),
                    Message::Flush(w) => waiters.push(w),
                }
            }
            if !batch.is_empty() {
                R::depth(&self.metrics).add(&[], -(batch.len() as i64));
                self.store_batch(batch).await;
            }
            for w in waiters {
                let _ = w.send(());
            }
        }
    }

    /// Writes a batch to the store or, while it is down, to the spill file.
    async fn store_batch<R: Batched>(&mut self, batch: Vec<R>) {
        if (self.down || self.pending) && Instant::now() >= self.next_try {
            self.recover::<R>().await;
        }
        let n = batch.len() as u64;
        if !self.down {
            match self.write(&batch).await {
                Ok(()) => return R::records(&self.metrics).add(&["written"], n),
                Err(e) if self.settings.spill_path.is_some() => {
                    tracing::warn!(what = R::WHAT, error = %e, "the store does not take records; spilling them to a file until it does");
                    self.down = true;
                    self.next_try = Instant::now() + PROBE_EVERY;
                }
                Err(e) => {
                    tracing::error!(what = R::WHAT, error = %e, records = n, "batch could not be written");
                    return R::records(&self.metrics).add(&["failed"], n);
                }
            }
        }
        let Some(path) = &self.settings.spill_path else { return };
        match append_spill(path, &batch).await {
            Ok(()) => {
                self.pending = true;
                R::records(&self.metrics).add(&["spilled"], n);
            }
            Err(e) => {
                tracing::error!(what = R::WHAT, error = %e, records = n, path = %path.display(), "batch could not be written nor spilled");
                R::records(&self.metrics).add(&["failed"], n);
                self.pending |= path.exists();
            }
        }
    }

    /// One batch to the store: attempts with a short back-off until
    /// [`SPILL_AFTER`]. A timed-out attempt may still commit; the store
    /// ignores known ids, so its spilled copy is not counted twice.
    async fn write<R: Batched>(&self, batch: &[R]) -> Result<(), String> {
        let deadline = Instant::now() + SPILL_AFTER;
        let mut delay = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match tokio::time::timeout_at(deadline, R::write(&*self.store, batch)).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {SPILL_AFTER:?}"),
            };
            tracing::warn!(what = R::WHAT, error, attempt, records = batch.len(), "batch write failed");
            if Instant::now() + delay >= deadline {
                return Err(error);
            }
            tokio::time::sleep(delay).await;
            delay *= 4;
        }
    }

    /// Pings the store; once it answers, batches go to it again and the
    /// spill file is replayed.
    async fn recover<R: Batched>(&mut self) {
        self.next_try = Instant::now() + PROBE_EVERY;
        if !matches!(tokio::time::timeout(PROBE_TIMEOUT, self.store.ping()).await, Ok(Ok(()))) {
            return; // still down
        }
        if self.down {
            tracing::info!(what = R::WHAT, "the store answers again");
            self.down = false;
            self.replay_every = PROBE_EVERY;
        }
        let Some(path) = self.settings.spill_path.clone().filter(|_| self.pending) else {
            self.pending = false;
            return;
        };
        match self.replay::<R>(&path).await {
            Ok(n) => {
                self.pending = false;
                self.replay_every = PROBE_EVERY;
                if n > 0 {
                    tracing::info!(what = R::WHAT, records = n, "spilled records replayed");
                }
            }
            Err(e) => {
                // The store answers but refuses: try again later, less often.
                tracing::warn!(what = R::WHAT, error = %e, retry_in = ?self.replay_every, "spilled records not all replayed; the rest is kept");
                self.next_try = Instant::now() + self.replay_every;
                self.replay_every = (self.replay_every * 2).min(REPLAY_BACKOFF_MAX);
            }
        }
    }

    /// Writes the spill file's records to the store, a batch at a time
    /// (read as it goes: the file may be large), then removes it. When a
    /// batch fails, what was written is cut from the file, the rest kept.
    async fn replay<R: Batched>(&self, path: &Path) -> Result<u64, String> {
        use tokio::io::AsyncBufReadExt;
        let file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let limit = self.settings.batch_size.max(1);
        let mut reader = tokio::io::BufReader::new(file);
        let (mut line, mut chunk) = (Vec::new(), Vec::with_capacity(limit));
        // Bytes read, and bytes whose records are in the store.
        let (mut read, mut done) = (0u64, 0u64);
        let (mut replayed, mut unreadable) = (0u64, 0u64);
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).await.map_err(|e| format!("{}: {e}", path.display()))?;
            read += n as u64;
            let text = line.trim_ascii();
            if !text.is_empty() {
                match serde_json::from_slice::<R>(text) {
                    Ok(r) => chunk.push(r),
                    // A line torn by a crash in the middle of an append.
                    Err(_) => unreadable += 1,
                }
            }
            if chunk.len() >= limit || (n == 0 && !chunk.is_empty()) {
                if let Err(e) = self.write(&chunk).await {
                    keep_from(path, done).await.map_err(|k| format!("{e}; and keeping the rest: {k}"))?;
                    return Err(e);
                }
                R::records(&self.metrics).add(&["replayed"], chunk.len() as u64);
                replayed += chunk.len() as u64;
                chunk.clear();
                done = read;
            }
            if n == 0 {
                break;
            }
        }
        if unreadable > 0 {
            tracing::error!(what = R::WHAT, lines = unreadable, path = %path.display(), "spill file lines that are not records were dropped");
        }
        tokio::fs::remove_file(path).await.map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(replayed)
    }
}

fn batch_len<R>(m: &[Message<R>]) -> usize {
    m.iter().filter(|m| matches!(m, Message::Record(_))).count()
}

fn has_flush<R>(m: &[Message<R>]) -> bool {
    m.iter().any(|m| matches!(m, Message::Flush(_)))
}

/// Appends a batch to the spill file, one JSON record per line, and syncs
/// it to disk before the batch counts as spilled.
async fn append_spill<R: Batched>(path: &Path, batch: &[R]) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
    let mut text = String::new();
    for r in batch {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut f = tokio::fs::OpenOptions::new().create(true).read(true).append(true).open(path).await?;
    // After a crash in the middle of an append the file may end in a torn
    // line: start on a line of our own, or the first record joins it.
    let len = f.metadata().await?.len();
    if len > 0 {
        let mut last = [0u8];
        f.seek(std::io::SeekFrom::Start(len - 1)).await?;
        f.read_exact(&mut last).await?;
        if last[0] != b'\n' {
            text.insert(0, '\n');
        }
    }
    f.write_all(text.as_bytes()).await?;
    f.sync_data().await
}

/// Cuts the first `offset` bytes (records now in the store) off the spill
/// file: the rest goes to a new file that replaces it.
async fn keep_from(path: &Path, offset: u64) -> std::io::Result<()> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    if offset == 0 {
        return Ok(());
    }
    let mut from = tokio::fs::File::open(path).await?;
    from.seek(std::io::SeekFrom::Start(offset)).await?;
    let tmp = path.with_extension("jsonl.tmp");
    let mut to = tokio::fs::File::create(&tmp).await?;
    tokio::io::copy(&mut from, &mut to).await?;
    to.flush().await?;
    to.sync_data().await?;
    tokio::fs::rename(&tmp, path).await
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
    async fn a_full_queue_admits_when_it_drains_and_sheds_when_it_does_not() {
        let (tx, mut rx) = mpsc::channel(2);
        let sink: Sink<UsageRecord> = Sink { tx, metrics: Arc::new(Metrics::new()) };
        let wait = Duration::from_millis(200);
        assert!(sink.admit(wait).await);
        sink.send(record(1)).await;
        sink.send(record(2)).await;
        // Nothing drains it: refused once the wait is over, not before.
        let t0 = Instant::now();
        assert!(!sink.admit(wait).await, "the pipeline sheds this request");
        assert!(t0.elapsed() >= wait);
        // A writer that takes a record within the wait lets the request in.
        let drain = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let first = rx.recv().await;
            (first.is_some(), rx)
        });
        assert!(sink.admit(Duration::from_secs(10)).await);
        let (took, _rx) = drain.await.unwrap();
        assert!(took);
        // The slot it waited for is still free for its record.
        sink.send_or_drop(record(3));
        sink.send_or_drop(record(4));
        assert!(sink.metrics.render().contains(r#"switchyard_usage_records_total{result="dropped"} 1"#));
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

    /// Polls until `done` or 5 s.
    async fn wait_for(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !done() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn written_ids(store: &MemoryStore) -> Vec<String> {
        store.usage_batches.lock().unwrap().iter().flatten().map(|r| r.request_id.clone()).collect()
    }

    #[tokio::test]
    async fn once_down_batches_skip_the_store_and_are_replayed_when_it_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill.jsonl");
        let store = Arc::new(MemoryStore::default());
        store.down.store(true, Ordering::SeqCst);
        let metrics = Arc::new(Metrics::new());
        let (sink, handle) = start_writer::<UsageRecord>(store.clone(), settings(Some(spill.clone())), metrics.clone());
        sink.send(record(1)).await;
        sink.flush().await; // after its attempts
        assert_eq!(metrics.usage_records.get(&["spilled"]), 1);
        // Known down: the next batch goes to the file without the attempts.
        let started = Instant::now();
        sink.send(record(2)).await;
        sink.flush().await;
        assert!(started.elapsed() < Duration::from_millis(800), "{:?}", started.elapsed());
        assert_eq!(metrics.usage_records.get(&["spilled"]), 2);

        // Back: the writer finds out by itself and replays the file.
        store.down.store(false, Ordering::SeqCst);
        wait_for(|| !spill.exists()).await;
        assert!(!spill.exists(), "replayed without a restart");
        assert_eq!(written_ids(&store), ["r1", "r2"]);
        assert_eq!(metrics.usage_records.get(&["replayed"]), 2);
        sink.send(record(3)).await;
        sink.flush().await;
        assert_eq!(written_ids(&store), ["r1", "r2", "r3"], "to the store again");
        drop(sink);
        handle.await.unwrap();
        assert_eq!(metrics.usage_records.get(&["spilled"]), 2);
    }

    #[tokio::test]
    async fn a_torn_last_line_is_dropped_without_taking_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill.jsonl");
        let whole = serde_json::to_string(&record(1)).unwrap();
        // A crash in the middle of an append.
        std::fs::write(&spill, format!("{whole}\n{}", &whole[..20])).unwrap();
        let store = Arc::new(MemoryStore::default());
        store.down.store(true, Ordering::SeqCst);
        let metrics = Arc::new(Metrics::new());
        let (sink, handle) = start_writer::<UsageRecord>(store.clone(), settings(Some(spill.clone())), metrics.clone());
        sink.send(record(2)).await;
        sink.flush().await;
        assert_eq!(std::fs::read_to_string(&spill).unwrap().lines().count(), 3);
        store.down.store(false, Ordering::SeqCst);
        drop(sink);
        handle.await.unwrap();
        // Next start: both whole records replayed, the torn line dropped.
        let (sink, handle) = start_writer::<UsageRecord>(store.clone(), settings(Some(spill.clone())), metrics.clone());
        drop(sink);
        handle.await.unwrap();
        assert_eq!(written_ids(&store), ["r1", "r2"]);
        assert!(!spill.exists());
    }

    #[tokio::test]
    async fn keep_from_cuts_what_was_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let spill = dir.path().join("spill.jsonl");
        std::fs::write(&spill, "a\nb\nc\n").unwrap();
        keep_from(&spill, 2).await.unwrap();
        assert_eq!(std::fs::read_to_string(&spill).unwrap(), "b\nc\n");
        keep_from(&spill, 0).await.unwrap();
        assert_eq!(std::fs::read_to_string(&spill).unwrap(), "b\nc\n");
    }
}

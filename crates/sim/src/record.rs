//! The log of what the sim received: a bounded ring, updated in place when a
//! request ends, and a drop guard that records `Cancelled` when the client
//! goes away first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use tokio::sync::Notify;

use crate::wire;

/// How many requests the log keeps; older ones are forgotten.
pub const LOG_CAPACITY: usize = 10_000;

/// One request as the sim received it and how it ended.
#[derive(Clone, Debug, Serialize)]
pub struct RecordedRequest {
    /// Arrival order, starting at 1; never reused, not even after a clear.
    pub seq: u64,
    /// The route path, e.g. `/v1/chat/completions` or
    /// `/v1beta/models/{model}:generateContent` (parameters as placeholders).
    pub path: String,
    /// The wire format the request came in.
    pub format: Format,
    /// The model: the body's `model`, or the URL's (Gemini) or the deployment (Azure).
    pub model: Option<String>,
    /// Whether a stream was asked for (the body's `stream`, or Gemini's `streamGenerateContent`).
    pub stream: bool,
    /// The `authorization` header as received.
    pub authorization: Option<String>,
    /// The `x-request-id` header as received.
    pub request_id: Option<String>,
    /// The JSON body (`null` for bodiless requests, a string if it was not JSON).
    pub body: serde_json::Value,
    pub outcome: Outcome,
    /// Status sent to the client; 0 while none was sent (in progress, hang).
    pub status: u16,
    /// Milliseconds since the sim started (monotonic clock).
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
}

/// The wire format of a data-plane route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Format {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "gemini")]
    Gemini,
    /// Azure OpenAI's URLs (OpenAI's bodies).
    #[serde(rename = "azure")]
    Azure,
}

/// How a recorded request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still being answered.
    InProgress,
    /// Answered in full.
    Completed,
    /// The client went away before the answer was complete.
    Cancelled,
    /// Answered with an error status (injected, or the request was invalid).
    Failed,
    /// The sim cut the stream on purpose (`cut_after_tokens`).
    Cut,
    /// The sim ended the stream with the format's in-band error event
    /// (`error_after_tokens`); the status stays 200.
    Errored,
}

/// What a handler knows about a request when it starts recording it.
pub(crate) struct Arrival {
    pub(crate) path: &'static str,
    pub(crate) format: Format,
    pub(crate) model: Option<String>,
    pub(crate) stream: bool,
    pub(crate) authorization: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) body: serde_json::Value,
}

#[derive(Debug)]
pub(crate) struct RequestLog {
    started: Instant,
    ring: Mutex<Ring>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<RecordedRequest>,
    next_seq: u64,
    /// Tasks in `wait_for`; writers only notify when there are some.
    watchers: usize,
}

impl RequestLog {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            ring: Mutex::new(Ring { next_seq: 1, ..Ring::default() }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn notify(&self, ring: &Ring) {
        if ring.watchers > 0 {
            self.changed.notify_waiters();
        }
    }

    /// Appends an in-progress record and returns its `seq`.
    pub(crate) fn start(&self, a: Arrival) -> u64 {
        let started_ms = self.now_ms();
        let mut ring = self.lock();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        let evicted = if ring.entries.len() >= LOG_CAPACITY { ring.entries.pop_front() } else { None };
        ring.entries.push_back(RecordedRequest {
            seq,
            path: a.path.to_owned(),
            format: a.format,
            model: a.model,
            stream: a.stream,
            authorization: a.authorization,
            request_id: a.request_id,
            body: a.body,
            outcome: Outcome::InProgress,
            status: 0,
            started_ms,
            ended_ms: None,
        });
        self.notify(&ring);
        drop(ring);
        // The evicted body is freed outside the lock.
        drop(evicted);
        seq
    }

    /// Sets the outcome (and status, when given) of a record still in the ring.
    fn finish(&self, seq: u64, outcome: Outcome, status: Option<u16>) {
        let ended_ms = self.now_ms();
        let mut ring = self.lock();
        if let Some(r) = find_mut(&mut ring, seq) {
            r.outcome = outcome;
            r.ended_ms = Some(ended_ms);
            if let Some(s) = status {
                r.status = s;
            }
        }
        self.notify(&ring);
    }

    fn set_status(&self, seq: u64, status: u16) {
        if let Some(r) = find_mut(&mut self.lock(), seq) {
            r.status = status;
        }
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        self.lock().entries.iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        let old = std::mem::take(&mut self.lock().entries);
        drop(old);
    }

    /// Waits until a record matches `pred` and returns a copy of the first match.
    pub(crate) async fn wait_for(&self, mut pred: impl FnMut(&RecordedRequest) -> bool) -> RecordedRequest {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            {
                let mut ring = self.lock();
                if let Some(r) = ring.entries.iter().find(|r| pred(r)) {
                    return r.clone();
                }
                // Enabled under the lock: a change made after this check
                // (also under the lock) is guaranteed to wake us.
                notified.as_mut().enable();
                ring.watchers += 1;
            }
            let _watching = Watching(self);
            notified.await;
        }
    }
}

/// Decrements the watcher count when a `wait_for` round ends or is dropped.
struct Watching<'a>(&'a RequestLog);

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        let mut ring = self.0.lock();
        ring.watchers = ring.watchers.saturating_sub(1);
    }
}

fn find_mut(ring: &mut Ring, seq: u64) -> Option<&mut RecordedRequest> {
    // Seqs in the ring are consecutive, so the position is an offset.
    let first = ring.entries.front()?.seq;
    let idx = usize::try_from(seq.checked_sub(first)?).ok()?;
    ring.entries.get_mut(idx).filter(|r| r.seq == seq)
}

/// Owns one record while its request is being answered. Dropped without
/// [`Recording::finish`] (the handler future or the response stream was
/// dropped because the client went away), it records `Cancelled`.
pub(crate) struct Recording {
    sim: Arc<crate::Sim>,
    seq: u64,
    format: Format,
    done: bool,
}

impl Recording {
    pub(crate) fn new(sim: Arc<crate::Sim>, seq: u64, format: Format) -> Self {
        Self { sim, seq, format, done: false }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.seq
    }

    pub(crate) fn format(&self) -> Format {
        self.format
    }

    /// Records the status sent while the answer goes on (stream headers).
    pub(crate) fn set_status(&self, status: u16) {
        self.sim.log.set_status(self.seq, status);
    }

    pub(crate) fn finish(mut self, outcome: Outcome, status: u16) {
        self.done = true;
        self.sim.log.finish(self.seq, outcome, Some(status));
    }

    /// Records `resp` (an error) as `Failed` with its status, and returns it.
    pub(crate) fn fail(self, resp: Response) -> Response {
        let status = resp.status().as_u16();
        self.finish(Outcome::Failed, status);
        resp
    }

    /// Records a completed 200 and answers `body` as JSON.
    pub(crate) fn complete(self, body: String) -> Response {
        let resp = wire::json_response(self.format, StatusCode::OK, self.seq, body);
        self.finish(Outcome::Completed, 200);
        resp
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.done {
            self.sim.log.finish(self.seq, Outcome::Cancelled, None);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn arrival(model: &str) -> Arrival {
        Arrival {
            path: "/v1/chat/completions",
            format: Format::OpenAi,
            model: Some(model.to_owned()),
            stream: false,
            authorization: None,
            request_id: None,
            body: serde_json::Value::Null,
        }
    }

    #[test]
    fn ring_is_bounded_and_updates_by_seq() {
        let log = RequestLog::new();
        for i in 0..LOG_CAPACITY + 5 {
            log.start(arrival(&i.to_string()));
        }
        let all = log.all();
        assert_eq!(all.len(), LOG_CAPACITY);
        assert_eq!(all[0].seq, 6);
        let last = all[LOG_CAPACITY - 1].seq;
        log.finish(last, Outcome::Completed, Some(200));
        log.finish(1, Outcome::Completed, Some(200)); // evicted: no-op
        let all = log.all();
        assert_eq!(all[LOG_CAPACITY - 1].outcome, Outcome::Completed);
        assert_eq!(all[LOG_CAPACITY - 1].status, 200);
        log.clear();
        assert!(log.all().is_empty());
        assert_eq!(log.start(arrival("x")), last + 1);
    }

    #[tokio::test]
    async fn wait_for_wakes_on_a_later_change() {
        let log = Arc::new(RequestLog::new());
        let seq = log.start(arrival("m"));
        let waiter = {
            let log = log.clone();
            tokio::spawn(async move { log.wait_for(|r| r.outcome == Outcome::Cut).await })
        };
        tokio::task::yield_now().await;
        log.finish(seq, Outcome::Cut, Some(200));
        let r = waiter.await.unwrap();
        assert_eq!(r.seq, seq);
    }
}

//! What the run measured: HDR histograms (microseconds, 3 significant
//! digits) for latency, TTFT, inter-token latency and open-loop send lag, the
//! counts, and errors by kind.
//!
//! Invariant: one [`Recorder`] per run, behind the [`Sink`]'s mutex; every
//! request takes the lock once, when it ends, so the lock is held for a few
//! histogram increments, never across an await.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest value a histogram tracks: one hour in µs. Longer samples are
/// recorded as one hour (far beyond any sensible `--timeout`).
const HIGHEST_US: u64 = 3_600_000_000;
/// HDR precision: values are kept to 3 significant digits (0.1 %).
const SIGNIFICANT_DIGITS: u8 = 3;

/// Why a request failed. [`ErrorKind::class`] is the kind reported in
/// `errors_by_kind`; `Display` is the finer key of `error_kinds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ErrorKind {
    /// The server answered with a non-2xx status.
    Status(u16),
    /// The TCP connection (or HTTP handshake) could not be established.
    Connect,
    /// The connection failed while sending or reading.
    Transport,
    /// No complete response within `--timeout`.
    Timeout,
    /// A 2xx stream that carried an error event, or ended without its end
    /// marker (`data: [DONE]`, `event: message_stop`).
    Stream,
    /// Open loop: the request was due while `--max-in-flight` requests were
    /// already running, so it was not sent.
    OverloadedClient,
}

impl ErrorKind {
    /// `http_4xx`, `http_5xx`, … for statuses, else the same name as `Display`.
    pub(crate) fn class(self) -> String {
        match self {
            Self::Status(code) => format!("http_{}xx", code / 100),
            other => other.to_string(),
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(code) => write!(f, "{code}"),
            Self::Connect => f.write_str("connect"),
            Self::Transport => f.write_str("transport"),
            Self::Timeout => f.write_str("timeout"),
            Self::Stream => f.write_str("stream_error"),
            Self::OverloadedClient => f.write_str("overloaded_client"),
        }
    }
}

/// Output tokens of one successful response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tokens {
    /// As the server reported them (`usage.completion_tokens` / `usage.output_tokens`).
    Usage(u64),
    /// No usage reported: the stream's content events, counted.
    Counted(u64),
    /// Non-stream answer without usage.
    Unknown,
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx and the whole body read (for streams: up to the end marker).
    Ok {
        /// When the first content event arrived (streams with content only).
        ttft: Option<Instant>,
        /// SSE `data:` lines other than `[DONE]`.
        chunks: u64,
        tokens: Tokens,
    },
    Failed(ErrorKind),
}

/// Everything measured during the measured window.
#[derive(Debug, Clone)]
pub(crate) struct Recorder {
    /// Whole-request latency of successful requests, µs.
    pub latency: Histogram<u64>,
    /// Time to the first content event (streams), µs.
    pub ttft: Histogram<u64>,
    /// Gaps between consecutive content events of a stream, µs.
    pub itl: Histogram<u64>,
    /// Open loop: actual send time minus scheduled send time, µs.
    pub send_lag: Histogram<u64>,
    /// Requests that completed (or failed) inside the measured window.
    pub requests: u64,
    pub errors: u64,
    pub error_kinds: BTreeMap<ErrorKind, u64>,
    /// `data:` lines other than `[DONE]` received on successful streams.
    pub stream_chunks: u64,
    /// Output tokens of successful requests, reported or counted.
    pub output_tokens: u64,
    /// Successful requests whose tokens came from usage.
    pub usage_reported: u64,
    /// Successful requests whose tokens were counted content events.
    pub tokens_counted: u64,
    /// When the last measured request finished.
    pub last_finish: Option<Instant>,
}

impl Recorder {
    pub(crate) fn new() -> Result<Self, String> {
        let histogram =
            || Histogram::new_with_bounds(1, HIGHEST_US, SIGNIFICANT_DIGITS).map_err(|e| format!("histogram: {e}"));
        Ok(Self {
            latency: histogram()?,
            ttft: histogram()?,
            itl: histogram()?,
            send_lag: histogram()?,
            requests: 0,
            errors: 0,
            error_kinds: BTreeMap::new(),
            stream_chunks: 0,
            output_tokens: 0,
            usage_reported: 0,
            tokens_counted: 0,
            last_finish: None,
        })
    }

    /// Records one finished request that started (or was scheduled) at
    /// `start`; `gaps_us` are its inter-token gaps.
    pub(crate) fn record(&mut self, start: Instant, end: Instant, outcome: &Outcome, gaps_us: &[u32]) {
        match *outcome {
            Outcome::Ok { ttft, chunks, tokens } => {
                self.requests += 1;
                self.latency.saturating_record(micros(end.saturating_duration_since(start)));
                if let Some(first) = ttft {
                    self.ttft.saturating_record(micros(first.saturating_duration_since(start)));
                }
                for &gap in gaps_us {
                    self.itl.saturating_record(u64::from(gap));
                }
                self.stream_chunks += chunks;
                match tokens {
                    Tokens::Usage(n) => {
                        self.output_tokens += n;
                        self.usage_reported += 1;
                    }
                    Tokens::Counted(n) => {
                        self.output_tokens += n;
                        self.tokens_counted += 1;
                    }
                    Tokens::Unknown => {}
                }
                self.last_finish = Some(self.last_finish.map_or(end, |last| last.max(end)));
            }
            Outcome::Failed(kind) => self.failure(kind, end),
        }
    }

    pub(crate) fn failure(&mut self, kind: ErrorKind, finished: Instant) {
        self.requests += 1;
        self.errors += 1;
        *self.error_kinds.entry(kind).or_insert(0) += 1;
        self.last_finish = Some(self.last_finish.map_or(finished, |last| last.max(finished)));
    }

    pub(crate) fn send_lag(&mut self, lag: Duration) {
        self.send_lag.saturating_record(micros(lag));
    }
}

/// The run's one [`Recorder`], shared by every worker or request task.
#[derive(Debug)]
pub(crate) struct Sink(Mutex<Recorder>);

impl Sink {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Self(Mutex::new(Recorder::new()?)))
    }

    /// Runs `f` under the lock. A poisoned lock still holds valid counts.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Recorder) -> T) -> T {
        let mut rec = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut rec)
    }

    /// Measured requests and errors so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.with(|rec| (rec.requests, rec.errors))
    }
}

/// Microseconds, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A distribution in milliseconds, read from an HDR histogram: each figure is
/// the highest value equivalent to the recorded one (within 0.1 %).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// `None` when the histogram is empty.
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Recorder {
        let Ok(rec) = Recorder::new() else { unreachable!("valid histogram bounds") };
        rec
    }

    fn ok(tokens: Tokens) -> Outcome {
        Outcome::Ok { ttft: None, chunks: 0, tokens }
    }

    #[test]
    fn percentiles_of_one_to_thousand_ms() {
        let mut r = rec();
        let t0 = Instant::now();
        // Recorded in reverse order: the histogram does not care.
        for ms in (1..=1000u64).rev() {
            r.record(t0, t0 + Duration::from_millis(ms), &ok(Tokens::Unknown), &[]);
        }
        let Some(p) = Percentiles::from_histogram(&r.latency) else { unreachable!("samples recorded") };
        // Nearest rank, read as the top of its histogram step (at 500 ms a
        // step is 256 µs, at 1 s 512 µs): never below, at most 0.1 % above.
        for (got, want) in [(p.p50, 500.0), (p.p90, 900.0), (p.p95, 950.0), (p.p99, 990.0), (p.max, 1000.0)] {
            assert!(got >= want && got <= want * 1.001, "{got} vs {want}");
        }
        assert!((p.mean - 500.5).abs() < 0.5, "{}", p.mean);
    }

    #[test]
    fn small_values_are_exact() {
        let mut r = rec();
        let t0 = Instant::now();
        for us in [1000, 2000, 3000, 4000] {
            r.record(t0, t0 + Duration::from_micros(us), &ok(Tokens::Unknown), &[]);
        }
        let Some(p) = Percentiles::from_histogram(&r.latency) else { unreachable!("samples recorded") };
        // ⌈0.5·4⌉ = 2nd sample; below 2048 µs a step is 1 µs, above it 2 µs.
        assert_eq!(p.p50, 2.0);
        assert_eq!(p.p99, 4.001);
        assert_eq!(p.max, 4.001);
    }

    #[test]
    fn empty_histogram_has_no_percentiles() {
        assert_eq!(Percentiles::from_histogram(&rec().latency), None);
    }

    #[test]
    fn record_counts_successes_failures_tokens_and_gaps() {
        let mut r = rec();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(30);
        let stream = Outcome::Ok { ttft: Some(t0 + Duration::from_millis(10)), chunks: 5, tokens: Tokens::Usage(4) };
        r.record(t0, t1, &stream, &[5000, 0, 7000]);
        r.record(t0, t0 + Duration::from_millis(20), &ok(Tokens::Counted(3)), &[]);
        r.record(t0, t1 + Duration::from_millis(5), &Outcome::Failed(ErrorKind::Status(503)), &[]);
        r.failure(ErrorKind::OverloadedClient, t0);

        assert_eq!((r.requests, r.errors), (4, 2));
        assert_eq!(r.latency.len(), 2);
        assert_eq!(r.ttft.len(), 1);
        assert!(r.ttft.equivalent(r.ttft.max(), 10_000));
        assert_eq!(r.itl.len(), 3);
        assert_eq!(r.itl.value_at_quantile(0.3), 0);
        assert_eq!(r.stream_chunks, 5);
        assert_eq!((r.output_tokens, r.usage_reported, r.tokens_counted), (7, 1, 1));
        assert_eq!(r.error_kinds.get(&ErrorKind::Status(503)), Some(&1));
        assert_eq!(r.last_finish, Some(t1 + Duration::from_millis(5)));
    }

    #[test]
    fn latency_saturates_at_one_hour() {
        let mut r = rec();
        let t0 = Instant::now();
        r.record(t0, t0 + Duration::from_secs(10_000), &ok(Tokens::Unknown), &[]);
        assert!(r.latency.max() >= HIGHEST_US && r.latency.max() <= HIGHEST_US + HIGHEST_US / 1000);
        assert_eq!(micros(Duration::from_micros(1234)), 1234);
    }

    #[test]
    fn error_names_and_classes() {
        let names: Vec<(String, String)> = [
            ErrorKind::Status(503),
            ErrorKind::Status(404),
            ErrorKind::Connect,
            ErrorKind::Transport,
            ErrorKind::Timeout,
            ErrorKind::Stream,
            ErrorKind::OverloadedClient,
        ]
        .into_iter()
        .map(|k| (k.to_string(), k.class()))
        .collect();
        let want = [
            ("503", "http_5xx"),
            ("404", "http_4xx"),
            ("connect", "connect"),
            ("transport", "transport"),
            ("timeout", "timeout"),
            ("stream_error", "stream_error"),
            ("overloaded_client", "overloaded_client"),
        ];
        assert_eq!(names, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn sink_counts() {
        let Ok(sink) = Sink::new() else { unreachable!("valid histogram bounds") };
        sink.with(|r| r.failure(ErrorKind::Timeout, Instant::now()));
        assert_eq!(sink.counts(), (1, 1));
        assert_eq!(sink.with(|r| r.error_kinds.get(&ErrorKind::Timeout).copied()), Some(1));
    }
}

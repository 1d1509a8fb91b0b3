//! Per-worker samples and the percentile math applied to them after the run.
//!
//! Invariant: a [`Recorder`] belongs to exactly one worker task, so the hot
//! path is a `Vec::push` with no lock or atomic; recorders are merged once,
//! after every worker has stopped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Why a request failed; reported as the status code (`"503"`) or the name.
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
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status(code) => write!(f, "{code}"),
            Self::Connect => f.write_str("connect"),
            Self::Transport => f.write_str("transport"),
            Self::Timeout => f.write_str("timeout"),
        }
    }
}

/// Samples one worker collected during the measured window.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    /// Whole-request latency of successful (2xx) requests, in microseconds.
    pub latencies_us: Vec<u32>,
    /// Time to the first `data:` line carrying content (streams only), in µs.
    pub ttfts_us: Vec<u32>,
    /// Requests that completed (or failed) inside the measured window.
    pub requests: u64,
    /// Requests that failed: non-2xx status, transport error or timeout.
    pub errors: u64,
    /// `errors` by kind.
    pub error_kinds: BTreeMap<ErrorKind, u64>,
    /// `data:` lines other than `[DONE]` received on successful streams.
    pub stream_chunks: u64,
    /// When this worker's last measured request finished.
    pub last_finish: Option<Instant>,
}

impl Recorder {
    pub(crate) fn with_capacity(samples: usize) -> Self {
        Self { latencies_us: Vec::with_capacity(samples), ..Self::default() }
    }

    pub(crate) fn success(&mut self, latency: Duration, finished: Instant) {
        self.requests += 1;
        self.latencies_us.push(micros(latency));
        self.last_finish = Some(finished);
    }

    pub(crate) fn failure(&mut self, kind: ErrorKind, finished: Instant) {
        self.requests += 1;
        self.errors += 1;
        *self.error_kinds.entry(kind).or_insert(0) += 1;
        self.last_finish = Some(finished);
    }

    pub(crate) fn ttft(&mut self, ttft: Duration) {
        self.ttfts_us.push(micros(ttft));
    }

    /// Folds `other` into `self`; the order of merges does not change the report.
    pub(crate) fn merge(&mut self, other: Recorder) {
        self.latencies_us.extend_from_slice(&other.latencies_us);
        self.ttfts_us.extend_from_slice(&other.ttfts_us);
        self.requests += other.requests;
        self.errors += other.errors;
        for (kind, count) in other.error_kinds {
            *self.error_kinds.entry(kind).or_insert(0) += count;
        }
        self.stream_chunks += other.stream_chunks;
        self.last_finish = match (self.last_finish, other.last_finish) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Saturates at `u32::MAX` µs (about 71 minutes), far beyond any request timeout.
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Latency distribution in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of microsecond samples (sorted in place).
    /// `None` when there are no samples.
    pub(crate) fn from_micros(samples: &mut [u32]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let sum: u64 = samples.iter().map(|&s| u64::from(s)).sum();
        let ms = |us: u32| f64::from(us) / 1000.0;
        Some(Self {
            p50: ms(nearest_rank(samples, 50.0)),
            p90: ms(nearest_rank(samples, 90.0)),
            p95: ms(nearest_rank(samples, 95.0)),
            p99: ms(nearest_rank(samples, 99.0)),
            max: ms(samples[samples.len() - 1]),
            mean: sum as f64 / samples.len() as f64 / 1000.0,
        })
    }
}

/// The smallest sample such that at least `pct`% of samples are ≤ it
/// (nearest-rank definition: rank = ⌈pct/100 · n⌉). `sorted` must be non-empty.
fn nearest_rank(sorted: &[u32], pct: f64) -> u32 {
    let n = sorted.len();
    let rank = (pct / 100.0 * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        let sorted: Vec<u32> = (1..=100).collect();
        assert_eq!(nearest_rank(&sorted, 50.0), 50);
        assert_eq!(nearest_rank(&sorted, 90.0), 90);
        assert_eq!(nearest_rank(&sorted, 99.0), 99);
        assert_eq!(nearest_rank(&sorted, 100.0), 100);
        assert_eq!(nearest_rank(&sorted, 0.0), 1);
    }

    #[test]
    fn nearest_rank_on_small_sets() {
        assert_eq!(nearest_rank(&[7], 50.0), 7);
        assert_eq!(nearest_rank(&[7], 99.0), 7);
        // rank ⌈0.5·4⌉ = 2, ⌈0.95·4⌉ = 4.
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 50.0), 2);
        assert_eq!(nearest_rank(&[1, 2, 3, 4], 95.0), 4);
        // ⌈0.5·5⌉ = 3.
        assert_eq!(nearest_rank(&[10, 20, 30, 40, 50], 50.0), 30);
    }

    #[test]
    fn percentiles_sort_unsorted_input_and_convert_to_ms() {
        let mut samples: Vec<u32> = (1..=1000).rev().map(|v| v * 1000).collect();
        let p = Percentiles::from_micros(&mut samples);
        let Some(p) = p else { unreachable!("non-empty samples give percentiles") };
        assert_eq!(p.p50, 500.0);
        assert_eq!(p.p90, 900.0);
        assert_eq!(p.p95, 950.0);
        assert_eq!(p.p99, 990.0);
        assert_eq!(p.max, 1000.0);
        assert_eq!(p.mean, 500.5);
    }

    #[test]
    fn percentiles_of_nothing_is_none() {
        assert_eq!(Percentiles::from_micros(&mut []), None);
    }

    #[test]
    fn micros_saturate() {
        assert_eq!(micros(Duration::from_micros(1234)), 1234);
        assert_eq!(micros(Duration::from_secs(10_000)), u32::MAX);
    }

    #[test]
    fn merge_adds_counts_and_concatenates_samples() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        let mut a = Recorder::default();
        a.success(Duration::from_micros(100), t0);
        a.failure(ErrorKind::Status(503), t0);
        a.failure(ErrorKind::Transport, t0);
        a.ttft(Duration::from_micros(40));
        a.stream_chunks = 3;

        let mut b = Recorder::default();
        b.success(Duration::from_micros(300), t1);
        b.success(Duration::from_micros(200), t0);
        b.failure(ErrorKind::Status(503), t1);
        b.ttft(Duration::from_micros(60));
        b.stream_chunks = 4;

        let mut merged = Recorder::default();
        merged.merge(a);
        merged.merge(b);
        merged.merge(Recorder::default());

        assert_eq!(merged.requests, 6);
        assert_eq!(merged.errors, 3);
        assert_eq!(merged.error_kinds.get(&ErrorKind::Status(503)), Some(&2));
        assert_eq!(merged.error_kinds.get(&ErrorKind::Transport), Some(&1));
        merged.latencies_us.sort_unstable();
        assert_eq!(merged.latencies_us, vec![100, 200, 300]);
        assert_eq!(merged.ttfts_us.len(), 2);
        assert_eq!(merged.stream_chunks, 7);
        assert_eq!(merged.last_finish, Some(t1));
    }
}

//! What the router knows about a deployment from real traffic: requests in
//! flight, and latency as an EWMA and a recent p95. Kept across reloads
//! (the snapshot builder hands a deployment of the same name the same
//! [`Live`]).
//!
//! Latency is the time until the client could start reading: the whole
//! answer for a non-streaming call, the first token for a stream. A failed
//! attempt counts as its time plus [`FAILURE_PENALTY`], so a deployment
//! that fails fast does not look fast. Figures fade with age: the EWMA is
//! halved every [`HALF_LIFE`] without a sample, so a deployment that was
//! slow a while ago — perhaps since recovered — is tried again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Weight of a new sample in the EWMA.
const ALPHA: f64 = 0.2;
/// Without samples, the EWMA halves every this long.
pub const HALF_LIFE: Duration = Duration::from_secs(30);
/// Added to a failed attempt's time.
pub const FAILURE_PENALTY: Duration = Duration::from_secs(2);
/// Samples kept for the p95.
const WINDOW: usize = 64;

#[derive(Default)]
pub struct Live {
    in_flight: AtomicU64,
    latency: Mutex<Latency>,
    /// Breaker, cool-down, retry budget and probe results.
    pub health: crate::resilience::Health,
}

struct Latency {
    /// Microseconds; `None` before the first sample.
    ewma: Option<f64>,
    last: Instant,
    recent: [u32; WINDOW],
    len: usize,
    next: usize,
}

impl Default for Latency {
    fn default() -> Self {
        Latency { ewma: None, last: Instant::now(), recent: [0; WINDOW], len: 0, next: 0 }
    }
}

/// A deployment's figures at one moment, as strategies and explanations
/// read them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub in_flight: u64,
    /// The EWMA faded by its age, in ms; `None`: no sample yet.
    pub latency_ms: Option<f64>,
    /// Of the last samples (up to 64), in ms.
    pub p95_ms: Option<f64>,
    pub samples: usize,
}

/// One request in flight at a deployment, until dropped.
pub struct Busy(Arc<Live>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Live {
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(self.clone())
    }

    /// A slot if fewer than `max` are in flight (`None`: no limit).
    pub fn try_busy(self: &Arc<Self>, max: Option<u32>) -> Option<Busy> {
        let Some(max) = max else { return Some(self.busy()) };
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < u64::from(max)).then_some(n + 1))
            .ok()
            .map(|_| Busy(self.clone()))
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn observe(&self, took: Duration) {
        self.record(took, Instant::now());
    }

    pub fn observe_failure(&self, took: Duration) {
        self.record(took + FAILURE_PENALTY, Instant::now());
    }

    fn record(&self, took: Duration, now: Instant) {
        let micros = took.as_micros().min(u128::from(u32::MAX)) as u32;
        let mut l = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let faded = l.ewma.map(|e| fade(e, now.saturating_duration_since(l.last)));
        l.ewma = Some(match faded {
            Some(e) => e + ALPHA * (f64::from(micros) - e),
            None => f64::from(micros),
        });
        l.last = now;
        let i = l.next;
        l.recent[i] = micros;
        l.next = (i + 1) % WINDOW;
        l.len = (l.len + 1).min(WINDOW);
    }

    /// The figures now; the p95 (a sort of the recent samples) only when
    /// asked, as the dry run does — strategies rank by the EWMA.
    pub fn snapshot(&self, with_p95: bool) -> Snapshot {
        self.snapshot_at(Instant::now(), with_p95)
    }

    fn snapshot_at(&self, now: Instant, with_p95: bool) -> Snapshot {
        let in_flight = self.in_flight();
        let l = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let latency_ms = l.ewma.map(|e| fade(e, now.saturating_duration_since(l.last)) / 1000.0);
        let p95_ms = (with_p95 && l.len > 0).then(|| {
            let mut recent = l.recent[..l.len].to_vec();
            // The smallest sample with at least 95% of them at or below it.
            let rank = (l.len * 95).div_ceil(100) - 1;
            let (_, p95, _) = recent.select_nth_unstable(rank);
            f64::from(*p95) / 1000.0
        });
        Snapshot { in_flight, latency_ms, p95_ms, samples: l.len }
    }
}

fn fade(ewma: f64, age: Duration) -> f64 {
    ewma * 0.5f64.powf(age.as_secs_f64() / HALF_LIFE.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ewma_follows_samples_and_fades_with_age() {
        let live = Live::default();
        let t0 = Instant::now();
        assert_eq!(live.snapshot_at(t0, true).latency_ms, None);
        live.record(Duration::from_millis(100), t0);
        assert_eq!(live.snapshot_at(t0, true).latency_ms, Some(100.0));
        live.record(Duration::from_millis(200), t0);
        let s = live.snapshot_at(t0, true);
        assert!((s.latency_ms.unwrap_or(0.0) - 120.0).abs() < 1e-9, "{s:?}");
        // One half-life without samples halves it; the p95 does not fade.
        let later = live.snapshot_at(t0 + HALF_LIFE, true);
        assert!((later.latency_ms.unwrap_or(0.0) - 60.0).abs() < 1e-6, "{later:?}");
        assert_eq!(later.p95_ms, Some(200.0));
        assert_eq!(later.samples, 2);
    }

    #[test]
    fn p95_of_the_last_samples() {
        let live = Live::default();
        let t0 = Instant::now();
        for ms in 1..=100u64 {
            live.record(Duration::from_millis(ms), t0);
        }
        // The window holds 37..=100: 95% of 64 samples is 61 → the 61st.
        let s = live.snapshot_at(t0, true);
        assert_eq!(s.samples, 64);
        assert_eq!(s.p95_ms, Some(97.0));
    }

    #[test]
    fn failures_count_slow_and_busy_counts_in_flight() {
        let live = Arc::new(Live::default());
        live.observe_failure(Duration::from_millis(1));
        assert!(live.snapshot(false).latency_ms.unwrap_or(0.0) >= 2000.0);
        let a = live.busy();
        let b = live.busy();
        assert_eq!(live.in_flight(), 2);
        drop(a);
        assert_eq!(live.snapshot(false).in_flight, 1);
        drop(b);
        assert_eq!(live.in_flight(), 0);
    }
}

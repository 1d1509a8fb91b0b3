//! A circuit breaker: closed → open → half-open → closed.
//!
//! ```text
//! closed ──(consecutive failures ≥ N, or error rate > R over ≥ M requests in the window)──▶ open
//! open ──(open_for elapsed; checked lazily)──▶ half-open: up to `half_open_probes` requests at once
//! half-open ──(close_after successes)──▶ closed (window cleared)
//! half-open ──(a failure)──▶ open again
//! ```
//!
//! Time is passed in, so the machine is tested without sleeping. Only the
//! deployment's own failures count (connect errors, timeouts, 5xx, broken
//! streams); a 4xx is the caller's and a 429 is handled by a cool-down.

use std::time::{Duration, Instant};
use switchyard_config::BreakerConfig;

/// Buckets the error-rate window is cut into.
const BUCKETS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half_open",
        }
    }

    /// For the state gauge: 0 closed, 1 half-open, 2 open.
    pub fn level(&self) -> i64 {
        match self {
            State::Closed => 0,
            State::HalfOpen { .. } => 1,
            State::Open { .. } => 2,
        }
    }
}

/// A change of state, for logs, metrics and alerts.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub to: State,
    /// Why, in words (`5 failures in a row`, `12 of 30 failed in 5m`).
    pub why: String,
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    /// Which slice of time it counts (`elapsed / width`).
    slot: u64,
    requests: u32,
    failures: u32,
}

pub struct Breaker {
    state: State,
    consecutive: u32,
    buckets: [Bucket; BUCKETS],
    epoch: Instant,
    /// Times it opened.
    pub opens: u64,
}

impl Breaker {
    pub fn new(now: Instant) -> Breaker {
        Breaker { state: State::Closed, consecutive: 0, buckets: [Bucket::default(); BUCKETS], epoch: now, opens: 0 }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Whether a request may be sent now, without taking a probe slot (the
    /// router's check). Moves open → half-open when its time is up.
    pub fn available(&mut self, c: &BreakerConfig, now: Instant) -> (bool, Option<Transition>) {
        let moved = self.tick(now);
        let ok = match self.state {
            State::Closed => true,
            State::Open { .. } => false,
            State::HalfOpen { in_flight, .. } => in_flight < c.half_open_probes,
        };
        (ok, moved)
    }

    /// When an open breaker lets probes through.
    pub fn open_until(&self) -> Option<Instant> {
        match self.state {
            State::Open { until } => Some(until),
            _ => None,
        }
    }

    fn tick(&mut self, now: Instant) -> Option<Transition> {
        match self.state {
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen { in_flight: 0, successes: 0 };
                Some(Transition { to: self.state, why: "open time elapsed: probing".into() })
            }
            _ => None,
        }
    }

    /// Takes a slot for one request (half-open: one of the probes).
    /// `false`: not now.
    pub fn begin(&mut self, c: &BreakerConfig, now: Instant) -> (bool, Option<Transition>) {
        let moved = self.tick(now);
        let ok = match &mut self.state {
            State::Closed => true,
            State::Open { .. } => false,
            State::HalfOpen { in_flight, .. } if *in_flight < c.half_open_probes => {
                *in_flight += 1;
                true
            }
            State::HalfOpen { .. } => false,
        };
        (ok, moved)
    }

    /// A request that took a slot ended without a verdict (cancelled).
    pub fn abandon(&mut self) {
        if let State::HalfOpen { in_flight, .. } = &mut self.state {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    /// The outcome of a request that took a slot.
    pub fn record(&mut self, c: &BreakerConfig, failed: bool, now: Instant) -> Option<Transition> {
        let width = (c.window.get() / BUCKETS as u32).max(Duration::from_millis(1));
        let slot = (now.saturating_duration_since(self.epoch).as_nanos() / width.as_nanos()) as u64;
        let b = &mut self.buckets[(slot % BUCKETS as u64) as usize];
        if b.slot != slot {
            *b = Bucket { slot, requests: 0, failures: 0 };
        }
        b.requests += 1;
        b.failures += u32::from(failed);
        self.consecutive = if failed { self.consecutive + 1 } else { 0 };
        match self.state {
            State::HalfOpen { .. } if failed => Some(self.open(c, now, "a probe failed".into())),
            State::HalfOpen { in_flight, successes } => {
                let successes = successes + 1;
                if successes >= c.close_after {
                    self.state = State::Closed;
                    self.consecutive = 0;
                    self.buckets = [Bucket::default(); BUCKETS];
                    Some(Transition { to: State::Closed, why: format!("{successes} probes succeeded") })
                } else {
                    self.state = State::HalfOpen { in_flight: in_flight.saturating_sub(1), successes };
                    None
                }
            }
            State::Closed if failed => {
                if self.consecutive >= c.consecutive_failures {
                    let why = format!("{} failures in a row", self.consecutive);
                    return Some(self.open(c, now, why));
                }
                let (requests, failures) = self.window(slot);
                let rate = f64::from(failures) / f64::from(requests.max(1));
                if requests >= c.min_requests && rate > c.error_rate {
                    let why = format!("{failures} of {requests} failed within {}", c.window);
                    return Some(self.open(c, now, why));
                }
                None
            }
            _ => None,
        }
    }

    /// Requests and failures in the buckets still inside the window.
    fn window(&self, slot: u64) -> (u32, u32) {
        self.buckets
            .iter()
            .filter(|b| slot.saturating_sub(b.slot) < BUCKETS as u64 && b.slot <= slot)
            .fold((0, 0), |(r, f), b| (r + b.requests, f + b.failures))
    }

    fn open(&mut self, c: &BreakerConfig, now: Instant, why: String) -> Transition {
        self.state = State::Open { until: now + c.open_for.get() };
        self.opens += 1;
        Transition { to: self.state, why }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use switchyard_config::Duration as D;

    fn config() -> BreakerConfig {
        BreakerConfig {
            consecutive_failures: 3,
            error_rate: 0.3,
            window: D::from_secs(10),
            min_requests: 10,
            open_for: D::from_secs(5),
            half_open_probes: 1,
            close_after: 2,
            ..BreakerConfig::default()
        }
    }

    fn run(b: &mut Breaker, c: &BreakerConfig, failed: bool, now: Instant) -> Option<Transition> {
        let (ok, _) = b.begin(c, now);
        assert!(ok, "no slot at {:?}", b.state());
        b.record(c, failed, now)
    }

    #[test]
    fn opens_on_consecutive_failures_then_probes_and_closes() {
        let c = config();
        let t0 = Instant::now();
        let mut b = Breaker::new(t0);
        assert!(run(&mut b, &c, true, t0).is_none());
        assert!(run(&mut b, &c, true, t0).is_none());
        let t = run(&mut b, &c, true, t0).unwrap();
        assert_eq!((t.to.as_str(), t.why.as_str()), ("open", "3 failures in a row"));
        assert!(!b.available(&c, t0 + Duration::from_secs(4)).0, "open for 5 s");
        assert!(!b.begin(&c, t0 + Duration::from_secs(4)).0);
        // After 5 s one probe at a time.
        let later = t0 + Duration::from_secs(5);
        let (ok, moved) = b.begin(&c, later);
        assert!(ok && moved.is_some_and(|m| m.to.as_str() == "half_open"));
        assert!(!b.begin(&c, later).0, "one probe at a time");
        assert!(b.record(&c, false, later).is_none(), "one success of two");
        let closed = run(&mut b, &c, false, later).unwrap();
        assert_eq!(closed.to, State::Closed);
        assert_eq!(b.opens, 1);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let c = config();
        let t0 = Instant::now();
        let mut b = Breaker::new(t0);
        for _ in 0..3 {
            run(&mut b, &c, true, t0);
        }
        let later = t0 + Duration::from_secs(6);
        let t = run(&mut b, &c, true, later).unwrap();
        assert_eq!(t.to, State::Open { until: later + Duration::from_secs(5) });
        assert_eq!(b.opens, 2);
    }

    #[test]
    fn opens_on_the_error_rate_only_with_enough_volume() {
        let c = config();
        let t0 = Instant::now();
        let mut b = Breaker::new(t0);
        // 2 failures in 6: over 30% but under the volume.
        for i in 0..6 {
            assert!(run(&mut b, &c, i % 3 == 0, t0).is_none());
        }
        for i in 0..3 {
            assert!(run(&mut b, &c, false, t0 + Duration::from_millis(i)).is_none());
        }
        // The 10th request, a failure: 3 of 10 is not over 30%.
        assert!(run(&mut b, &c, true, t0).is_none());
        let t = run(&mut b, &c, true, t0).unwrap();
        assert_eq!(t.why, "4 of 11 failed within 10s");
        // Old failures leave the window.
        let mut b = Breaker::new(t0);
        for _ in 0..9 {
            run(&mut b, &c, false, t0);
        }
        run(&mut b, &c, true, t0);
        run(&mut b, &c, false, t0);
        run(&mut b, &c, true, t0);
        run(&mut b, &c, false, t0);
        let much_later = t0 + Duration::from_secs(30);
        assert!(run(&mut b, &c, true, much_later).is_none(), "the earlier requests are outside the window");
    }
}

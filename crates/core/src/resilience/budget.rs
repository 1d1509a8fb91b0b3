//! A retry budget per deployment: retries over the last 10 s may be at most
//! `budget_ratio` of the first attempts over the same time, plus
//! `budget_min_per_second` × 10 — so retries cannot multiply an outage's
//! load, and a quiet deployment can still retry.

use std::time::Instant;

const SECONDS: usize = 10;

#[derive(Clone, Copy, Default)]
struct Second {
    at: u64,
    firsts: u32,
    retries: u32,
}

pub struct RetryBudget {
    epoch: Instant,
    seconds: [Second; SECONDS],
}

impl RetryBudget {
    pub fn new(now: Instant) -> RetryBudget {
        RetryBudget { epoch: now, seconds: [Second::default(); SECONDS] }
    }

    fn slot(&mut self, now: Instant) -> &mut Second {
        let at = now.saturating_duration_since(self.epoch).as_secs();
        let s = &mut self.seconds[(at % SECONDS as u64) as usize];
        if s.at != at {
            *s = Second { at, firsts: 0, retries: 0 };
        }
        s
    }

    fn totals(&self, now: Instant) -> (f64, f64) {
        let at = now.saturating_duration_since(self.epoch).as_secs();
        self.seconds
            .iter()
            .filter(|s| s.at <= at && at - s.at < SECONDS as u64)
            .fold((0.0, 0.0), |(f, r), s| (f + f64::from(s.firsts), r + f64::from(s.retries)))
    }

    /// A request's first attempt at this deployment.
    pub fn first(&mut self, now: Instant) {
        self.slot(now).firsts += 1;
    }

    /// Takes one retry from the budget; `false`: spent.
    pub fn try_retry(&mut self, ratio: f64, min_per_second: f64, now: Instant) -> bool {
        let (firsts, retries) = self.totals(now);
        if retries + 1.0 > ratio * firsts + min_per_second * SECONDS as f64 {
            return false;
        }
        self.slot(now).retries += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retries_are_a_share_of_first_attempts_plus_a_floor() {
        let t0 = Instant::now();
        let mut b = RetryBudget::new(t0);
        for _ in 0..100 {
            b.first(t0);
        }
        // 20% of 100 plus 1/s × 10 = 30.
        let granted = (0..100).filter(|_| b.try_retry(0.2, 1.0, t0)).count();
        assert_eq!(granted, 30);
        // Ten seconds later the window is empty again: only the floor.
        let later = t0 + Duration::from_secs(10);
        let granted = (0..100).filter(|_| b.try_retry(0.2, 1.0, later)).count();
        assert_eq!(granted, 10);
        let mut none = RetryBudget::new(t0);
        assert!(!none.try_retry(0.5, 0.0, t0), "no traffic, no floor: no retries");
    }
}

//! Open-loop send times: the offset from the start at which request i is
//! due, whatever happened to the requests before it.

use std::time::Duration;

/// How open-loop requests are spaced (`--arrival`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Every 1/rate seconds exactly.
    Fixed,
    /// Exponential gaps of mean 1/rate (a Poisson process), seeded.
    Poisson,
}

/// Request i's due time, as an offset from the start of the run.
#[derive(Debug)]
pub(crate) struct Schedule {
    arrival: Arrival,
    rate: f64,
    rng: fastrand::Rng,
    /// Requests scheduled so far.
    i: u64,
    /// Poisson: the last arrival, in seconds.
    at: f64,
}

impl Schedule {
    /// `rate` must be positive and finite (checked by the CLI).
    pub(crate) fn new(rate: f64, arrival: Arrival, seed: u64) -> Self {
        Self { arrival, rate, rng: fastrand::Rng::with_seed(seed), i: 0, at: 0.0 }
    }
}

impl Iterator for Schedule {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let seconds = match self.arrival {
            // i / rate rather than a running sum: no drift over long runs.
            Arrival::Fixed => self.i as f64 / self.rate,
            Arrival::Poisson => {
                // Inverse CDF of the exponential; 1 - f64() lies in (0, 1].
                self.at += -(1.0 - self.rng.f64()).ln() / self.rate;
                self.at
            }
        };
        self.i += 1;
        Duration::try_from_secs_f64(seconds).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_arrivals_are_evenly_spaced_without_drift() {
        let offsets: Vec<Duration> = Schedule::new(4.0, Arrival::Fixed, 1).take(5).collect();
        let ms: Vec<u128> = offsets.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [0, 250, 500, 750, 1000]);
        // After a million requests at 3/s the offset is still exact to the µs.
        let Some(last) = Schedule::new(3.0, Arrival::Fixed, 1).nth(999_999) else { unreachable!("endless") };
        assert_eq!(last.as_micros(), 333_333_000_000);
    }

    #[test]
    fn poisson_arrivals_have_the_rate_and_exponential_gaps() {
        let n = 20_000;
        let offsets: Vec<f64> = Schedule::new(100.0, Arrival::Poisson, 9).take(n).map(|d| d.as_secs_f64()).collect();
        assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
        let gaps: Vec<f64> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.01).abs() < 0.0005, "{mean}");
        // For an exponential, P(gap > mean) = 1/e and the SD equals the mean.
        let over = gaps.iter().filter(|&&g| g > 0.01).count() as f64 / gaps.len() as f64;
        assert!((over - (-1.0f64).exp()).abs() < 0.02, "{over}");
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd - 0.01).abs() < 0.001, "{sd}");
        // Seeded: the same seed gives the same schedule.
        let again: Vec<f64> = Schedule::new(100.0, Arrival::Poisson, 9).take(n).map(|d| d.as_secs_f64()).collect();
        assert_eq!(offsets, again);
    }
}

//! Exponential backoff with "equal jitter": the wait after failure `n`
//! (1-based) is `base · 2ⁿ⁻¹` capped at `max`, of which the second half is
//! scaled by `jitter` (0..1) — so callers recovering from one outage do not
//! all come back at the same instant. Used by retries of upstream calls and
//! by alert webhook deliveries.

use std::time::Duration;

pub fn backoff(base: Duration, max: Duration, n: u32, jitter: f64) -> Duration {
    let full = base.saturating_mul(2u32.saturating_pow(n.saturating_sub(1))).min(max);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_half_jittered() {
        let (b, m) = (Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(backoff(b, m, 1, 0.0), Duration::from_millis(50));
        assert_eq!(backoff(b, m, 1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(b, m, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(b, m, 30, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(b, m, 30, 0.5), Duration::from_millis(750));
    }
}

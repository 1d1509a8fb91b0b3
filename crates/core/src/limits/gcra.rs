//! GCRA (the generic cell rate algorithm) over integer microseconds: the
//! whole rate decision as pure functions of one stored number per scope and
//! dimension, its TAT (theoretical arrival time). Both backends run exactly
//! this math — the in-process one here, the Redis one as a Lua script — so
//! it uses only integer add, multiply, floor-divide, compare and clamp.
//!
//! Symbols: `W` the window (µs), `L` the limit (units per window), `c` a
//! cost (units), `now` the clock (µs). Every unit occupies `T = W / L` µs of
//! the bucket; a cost occupies `span(c) = floor(c · W / L)` µs (products in
//! i128, results saturated to i64, so `L` or `c` up to `u64::MAX` is safe).
//!
//! | quantity | formula |
//! | --- | --- |
//! | base | `max(tat, now)` — a TAT in the past means an empty (full-credit) bucket |
//! | allowed | `c == 0`, or `c <= L` and `base + span(c) - now <= W` |
//! | new TAT | `base + span(c)` when allowed and `c > 0`; else `tat` unchanged |
//! | remaining | `floor(max(0, W - (max(new_tat, now) - now)) · L / W)`, at most `L` |
//! | reset | `max(0, new_tat - now)`: until the bucket is empty again |
//! | retry after | allowed: `0`; `c > L`: never (`None`); else `tat + span(c) - W - now` (> 0) |
//!
//! This is the textbook GCRA with burst `L`: the tolerance is `τ = W - T`
//! and "allowed iff `base + span(c) - T <= now + τ`" is the same test. So `L`
//! units pass at one instant, the next waits `T`, and over any stretch of
//! time `t` at most `L + L · t / W` units pass.
//!
//! Rounding: `span` rounds down, so a burst of `L` always fits. Each call
//! loses under 1 µs, so the calls within a window let through at most
//! `calls · L / W` extra units: none while `L · (L + 1) <= W` (up to 7 745
//! per minute), a sixtieth of a token per request at 1 M tpm.
//!
//! [`adjust`] moves a TAT when a reservation turns out wrong: the request's
//! real cost is known only after it ran.

/// The decision of [`check`] and the figures a client is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub allowed: bool,
    /// The TAT to store (equal to the given one when refused or `cost == 0`).
    pub new_tat: i64,
    /// Units that fit right now, after this decision.
    pub remaining: u64,
    /// µs until the bucket is empty again (≥ 0).
    pub reset_us: i64,
    /// µs until the same cost can pass: `Some(0)` when allowed, `None` when
    /// it never can (`cost > limit`).
    pub retry_after_us: Option<i64>,
}

/// µs a cost occupies: `floor(cost · W / L)`; 0 when `limit == 0` (callers
/// refuse any positive cost against a zero limit first).
fn span(cost: u64, limit: u64, window_us: i64) -> i64 {
    if limit == 0 {
        return 0;
    }
    let us = i128::from(cost) * i128::from(window_us) / i128::from(limit);
    i64::try_from(us).unwrap_or(i64::MAX)
}

/// Units that fit when the bucket's TAT is `tat`.
fn remaining(tat: i64, now: i64, limit: u64, window_us: i64) -> u64 {
    let used = i128::from(tat.max(now)) - i128::from(now);
    let free = (i128::from(window_us) - used).max(0);
    let units = free * i128::from(limit) / i128::from(window_us);
    u64::try_from(units).unwrap_or(u64::MAX).min(limit)
}

/// Decides whether `cost` units may pass a bucket of `limit` per
/// `window_us` whose TAT is `tat`, at `now`. See the module doc for the
/// formulas; `window_us` below 1 is taken as 1.
pub fn check(tat: i64, now: i64, cost: u64, limit: u64, window_us: i64) -> Outcome {
    let window_us = window_us.max(1);
    let base = tat.max(now);
    let refused = |retry_after_us| Outcome {
        allowed: false,
        new_tat: tat,
        remaining: remaining(tat, now, limit, window_us),
        reset_us: tat.saturating_sub(now).max(0),
        retry_after_us,
    };
    if cost == 0 {
        return Outcome { allowed: true, retry_after_us: Some(0), ..refused(None) };
    }
    if cost > limit {
        return refused(None);
    }
    let cost_us = span(cost, limit, window_us);
    let new_tat = base.saturating_add(cost_us);
    if i128::from(new_tat) - i128::from(now) > i128::from(window_us) {
        // Here tat > now (cost_us <= W), so the wait is positive.
        let wait = i128::from(tat) + i128::from(cost_us) - i128::from(window_us) - i128::from(now);
        return refused(Some(i64::try_from(wait).unwrap_or(i64::MAX)));
    }
    Outcome {
        allowed: true,
        new_tat,
        remaining: remaining(new_tat, now, limit, window_us),
        reset_us: new_tat.saturating_sub(now).max(0),
        retry_after_us: Some(0),
    }
}

/// The TAT after a reservation of `reserved` units is corrected to `actual`:
/// moved by `d = span(actual) - span(reserved)` (so a correction to 0 undoes
/// the reservation's span exactly). A charge (`d > 0`) lands on
/// `max(tat, now) + d` and may push the TAT past `now + W` — it never
/// refuses; later requests wait. A refund (`d < 0`) gives `max(tat + d,
/// min(tat, now))`: it never makes the TAT earlier than `now` (the bucket
/// cannot hold more than full credit) and never raises it.
pub fn adjust(tat: i64, now: i64, reserved: u64, actual: u64, limit: u64, window_us: i64) -> i64 {
    let window_us = window_us.max(1);
    let d = i128::from(span(actual, limit, window_us)) - i128::from(span(reserved, limit, window_us));
    let moved = if d > 0 {
        i128::from(tat.max(now)) + d
    } else if d < 0 {
        (i128::from(tat) + d).max(i128::from(tat.min(now)))
    } else {
        return tat;
    };
    i64::try_from(moved).unwrap_or(if d > 0 { i64::MAX } else { i64::MIN })
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 60_000_000;

    /// Runs `n` unit checks at `now`, storing the TAT; returns how many passed.
    fn burst(tat: &mut i64, now: i64, n: u64, limit: u64) -> u64 {
        let mut passed = 0;
        for _ in 0..n {
            let o = check(*tat, now, 1, limit, W);
            if o.allowed {
                *tat = o.new_tat;
                passed += 1;
            }
        }
        passed
    }

    #[test]
    fn a_full_burst_fits_and_not_one_more() {
        for limit in [1, 7, 60, 61, 1000, 7745] {
            let mut tat = 0;
            assert_eq!(burst(&mut tat, 5_000_000, limit + 10, limit), limit, "limit {limit}");
        }
    }

    #[test]
    fn figures_of_an_allowed_and_a_refused_check() {
        let now = 10_000_000;
        let o = check(0, now, 1, 60, W);
        assert_eq!(
            o,
            Outcome {
                allowed: true,
                new_tat: now + 1_000_000,
                remaining: 59,
                reset_us: 1_000_000,
                retry_after_us: Some(0)
            }
        );
        let full = now + W;
        let o = check(full, now, 1, 60, W);
        assert_eq!(
            o,
            Outcome { allowed: false, new_tat: full, remaining: 0, reset_us: W, retry_after_us: Some(1_000_000) }
        );
        // Three units wait for three intervals.
        assert_eq!(check(full, now, 3, 60, W).retry_after_us, Some(3_000_000));
        // Half a window later, half the bucket is free again.
        let o = check(full, now + W / 2, 0, 60, W);
        assert_eq!((o.allowed, o.remaining, o.reset_us), (true, 30, W / 2));
    }

    #[test]
    fn zero_cost_always_passes_and_changes_nothing() {
        let now = 1_000;
        let full = now + W + 5;
        let o = check(full, now, 0, 10, W);
        assert!(o.allowed);
        assert_eq!(o.new_tat, full);
        assert_eq!(o.remaining, 0);
        assert!(check(0, now, 0, 0, W).allowed);
    }

    #[test]
    fn more_than_the_limit_never_passes() {
        let o = check(0, 1_000, 11, 10, W);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_us, None);
        assert_eq!(o.remaining, 10);
        let o = check(0, 1_000, 1, 0, W);
        assert_eq!((o.allowed, o.retry_after_us, o.remaining), (false, None, 0));
    }

    #[test]
    fn huge_limits_and_costs_do_not_overflow() {
        let o = check(0, i64::MAX - 10, u64::MAX, u64::MAX, W);
        assert!(o.allowed);
        assert_eq!(o.new_tat, i64::MAX);
        let o = check(i64::MAX, 0, u64::MAX, u64::MAX, W);
        assert!(!o.allowed);
        assert_eq!(o.retry_after_us, Some(i64::MAX));
        assert_eq!(check(0, 0, 1, u64::MAX, W).remaining, u64::MAX);
        assert_eq!(adjust(i64::MAX - 1, 0, 0, u64::MAX, 1, W), i64::MAX);
        assert_eq!(adjust(i64::MIN + 1, i64::MIN + 1, u64::MAX, 0, 1, W), i64::MIN + 1);
    }

    #[test]
    fn adjust_refunds_down_to_now_and_charges_from_now() {
        let now = 100_000_000;
        // Reserved 10 of 60/min (10 s), used 4: 6 s back.
        assert_eq!(adjust(now + 10_000_000, now, 10, 4, 60, W), now + 4_000_000);
        // Used nothing: the reservation is undone exactly.
        assert_eq!(adjust(now + 10_000_000, now, 10, 0, 60, W), now);
        // A refund bigger than what is left stops at now…
        assert_eq!(adjust(now + 2_000_000, now, 10, 0, 60, W), now);
        // …and does not lift a TAT already in the past.
        assert_eq!(adjust(now - 5, now, 10, 0, 60, W), now - 5);
        // A charge counts from now when the bucket had refilled.
        assert_eq!(adjust(now - 5, now, 1, 3, 60, W), now + 2_000_000);
        // It may go past a full window: the debt is paid by later requests.
        assert_eq!(adjust(now + W, now, 1, 61, 60, W), now + W + W);
        assert_eq!(adjust(now + 7, now, 5, 5, 60, W), now + 7);
    }
}

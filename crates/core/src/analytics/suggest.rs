//! Cost-saving suggestions from real usage: on a route with several
//! deployments, a deployment whose cost per successful attempt is higher
//! than another's on the same route that succeeded at least as often.
//!
//! The estimate assumes the cheaper deployment would serve the same
//! requests at its observed cost per success (similar prompts and answers
//! on one route) — it says what the window's usage shows, not a promise.

use super::rollup::{Sums, DAY_MS};
use std::collections::BTreeMap;

/// Fewer attempts than this on either side say too little to compare.
pub const MIN_ATTEMPTS: i64 = 20;

#[derive(Clone, Debug, PartialEq)]
pub struct Suggestion {
    pub route: String,
    pub deployment: String,
    pub alternative: String,
    pub attempts: i64,
    pub successes: i64,
    pub alternative_attempts: i64,
    pub alternative_successes: i64,
    /// What the deployment cost over the window.
    pub spend_nanos: i64,
    /// Of the whole window's spend.
    pub share_of_spend: f64,
    pub cost_per_success_nanos: i64,
    pub alternative_cost_per_success_nanos: i64,
    /// The deployment's spend minus its successes at the alternative's cost.
    pub window_savings_nanos: i64,
    /// The same over 30 days at the window's rate.
    pub monthly_savings_nanos: i64,
}

impl Suggestion {
    pub fn success_rate(&self) -> f64 {
        rate(self.successes, self.attempts)
    }

    pub fn alternative_success_rate(&self) -> f64 {
        rate(self.alternative_successes, self.alternative_attempts)
    }
}

fn rate(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `by_deployment`: sums per (route, deployment) over the window of
/// `window_ms`; `total_nanos`: the window's whole spend. Largest monthly
/// saving first.
pub fn suggest(by_deployment: &BTreeMap<(String, String), Sums>, window_ms: i64, total_nanos: i64) -> Vec<Suggestion> {
    let mut routes: BTreeMap<&str, Vec<(&str, &Sums)>> = BTreeMap::new();
    for ((route, deployment), s) in by_deployment {
        if s.attempts >= MIN_ATTEMPTS && s.attempts > s.failed_attempts {
            routes.entry(route).or_default().push((deployment, s));
        }
    }
    let mut out = Vec::new();
    for (route, deployments) in routes {
        for &(name, d) in &deployments {
            let successes = d.attempts - d.failed_attempts;
            // Cheaper per success (cross-multiplied: exact), at least as reliable.
            let better = deployments.iter().filter(|(other, e)| {
                let e_successes = e.attempts - e.failed_attempts;
                *other != name
                    && i128::from(e_successes) * i128::from(d.attempts)
                        >= i128::from(successes) * i128::from(e.attempts)
                    && i128::from(e.cost_nanos) * i128::from(successes)
                        < i128::from(d.cost_nanos) * i128::from(e_successes)
            });
            let cheapest = better.min_by(|(an, a), (bn, b)| {
                let (sa, sb) = (i128::from(a.attempts - a.failed_attempts), i128::from(b.attempts - b.failed_attempts));
                (i128::from(a.cost_nanos) * sb).cmp(&(i128::from(b.cost_nanos) * sa)).then(an.cmp(bn))
            });
            let Some(&(alt, e)) = cheapest else { continue };
            let e_successes = e.attempts - e.failed_attempts;
            let at_alternative = i128::from(e.cost_nanos) * i128::from(successes) / i128::from(e_successes);
            let saved = i128::from(d.cost_nanos) - at_alternative;
            let monthly = if window_ms > 0 { saved * i128::from(30 * DAY_MS) / i128::from(window_ms) } else { 0 };
            let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
            out.push(Suggestion {
                route: route.to_string(),
                deployment: name.to_string(),
                alternative: alt.to_string(),
                attempts: d.attempts,
                successes,
                alternative_attempts: e.attempts,
                alternative_successes: e_successes,
                spend_nanos: d.cost_nanos,
                share_of_spend: rate(d.cost_nanos, total_nanos),
                cost_per_success_nanos: d.cost_nanos / successes,
                alternative_cost_per_success_nanos: e.cost_nanos / e_successes,
                window_savings_nanos: clamp(saved),
                monthly_savings_nanos: clamp(monthly),
            });
        }
    }
    out.sort_by(|a, b| {
        b.monthly_savings_nanos
            .cmp(&a.monthly_savings_nanos)
            .then_with(|| (&a.route, &a.deployment).cmp(&(&b.route, &b.deployment)))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(attempts: i64, failed: i64, cost: i64) -> Sums {
        Sums { attempts, failed_attempts: failed, cost_nanos: cost, ..Sums::default() }
    }

    fn table(rows: &[(&str, &str, Sums)]) -> BTreeMap<(String, String), Sums> {
        rows.iter().map(|(r, d, s)| ((r.to_string(), d.to_string()), *s)).collect()
    }

    #[test]
    fn a_dearer_deployment_with_an_equally_reliable_alternative_is_named() {
        let t = table(&[
            ("chat", "big", sums(100, 2, 10_000)),  // 100 per success, 98%
            ("chat", "small", sums(50, 1, 1_000)),  // ~20.4 per success, 98%
            ("chat", "flaky", sums(100, 50, 100)),  // cheapest, but fails half the time
            ("other", "solo", sums(100, 0, 5_000)), // nothing to compare with
            ("chat", "rare", sums(5, 0, 1)),        // too few attempts to count
        ]);
        let got = suggest(&t, 10 * DAY_MS, 20_000);
        assert_eq!(got.len(), 1, "{got:?}");
        let s = &got[0];
        assert_eq!((s.deployment.as_str(), s.alternative.as_str()), ("big", "small"));
        // 98 successes at small's 1000/49 per success = 2000: saves 8000.
        assert_eq!(s.window_savings_nanos, 8_000);
        assert_eq!(s.monthly_savings_nanos, 24_000, "30 days at the 10-day window's rate");
        assert_eq!(s.share_of_spend, 0.5);
        assert_eq!((s.cost_per_success_nanos, s.alternative_cost_per_success_nanos), (102, 20));
    }

    #[test]
    fn a_less_reliable_alternative_is_not_a_saving() {
        let t = table(&[("chat", "a", sums(100, 0, 1_000)), ("chat", "b", sums(100, 1, 10))]);
        let got = suggest(&t, DAY_MS, 1_010);
        assert!(got.is_empty(), "{got:?}");
    }
}

//! Strategies: the order in which a route's eligible targets are tried.
//! Every sort is stable, so equal candidates keep the configured order.
//!
//! | strategy | first |
//! | --- | --- |
//! | `priority` | the first in `targets` |
//! | `cost` | the cheapest for this request (prompt + answer allowance) |
//! | `latency` | the lowest faded EWMA; untried (or long-idle) ones first |
//! | `quality` | the highest `quality` (absent: 0.5) |
//! | `weighted` | smooth weighted round robin by `weight`; the rest by weight |
//! | `least_busy` | the fewest requests in flight |
//! | `score` | the highest weighted sum of the four fits below |
//!
//! Score components, each 0–1: **security** 1 when the data may go there
//! as it is, 0.5 when only masked; **capability** the deployment's
//! `quality` (how able it is; absent 0.5); **latency** the fastest
//! eligible EWMA ÷ this one's (untried: 1); **cost** the cheapest eligible
//! estimate ÷ this one's (free: 1). The total is their weighted mean.

use super::Candidate;
use crate::runtime::{Deployment, Route};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use switchyard_config::Strategy;
use switchyard_types::TierAccess;

/// Quality assumed for a deployment without one.
pub const DEFAULT_QUALITY: f64 = 0.5;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Score {
    pub security: f64,
    pub capability: f64,
    pub latency: f64,
    pub cost: f64,
    pub total: f64,
}

/// The deployments a request's targets come from: the route's own, or its
/// split arm's — each with its weighted rotation.
pub struct Pool<'a> {
    pub targets: &'a [Arc<Deployment>],
    pub rotation: &'a Mutex<Vec<i64>>,
}

/// Orders `eligible` (from `pool`) for `route`. A dry run (`commit` false)
/// leaves the weighted rotation where it was.
pub fn rank(route: &Route, pool: &Pool<'_>, eligible: &mut [Candidate], commit: bool) {
    if eligible.len() < 2 && route.strategy != Strategy::Score {
        return;
    }
    match route.strategy {
        Strategy::Priority => {}
        Strategy::Cost => eligible.sort_by_key(|c| c.cost_nanos),
        Strategy::Latency => eligible.sort_by(|a, b| latency(a).total_cmp(&latency(b))),
        Strategy::Quality => eligible.sort_by(|a, b| quality(b).total_cmp(&quality(a))),
        Strategy::LeastBusy => eligible.sort_by_key(|c| c.live.in_flight),
        Strategy::Weighted => weighted(pool, eligible, commit),
        Strategy::Score => {
            score(route, eligible);
            eligible.sort_by(|a, b| total(b).total_cmp(&total(a)));
        }
    }
}

fn latency(c: &Candidate) -> f64 {
    c.live.latency_ms.unwrap_or(0.0)
}

fn quality(c: &Candidate) -> f64 {
    c.deployment.quality.unwrap_or(DEFAULT_QUALITY)
}

fn total(c: &Candidate) -> f64 {
    c.score.map_or(0.0, |s| s.total)
}

/// Smooth weighted round robin (nginx's): every eligible target's running
/// weight grows by its weight; the largest is picked and drops by the sum.
/// Over any window each target is first in proportion to its weight, and
/// picks interleave rather than bunch. Running weights are per route, by
/// position in `targets`; ineligible targets neither gain nor lose.
fn weighted(pool: &Pool<'_>, eligible: &mut [Candidate], commit: bool) {
    let picked = {
        let mut guard = pool.rotation.lock().unwrap_or_else(|e| e.into_inner());
        let mut copy;
        let running: &mut Vec<i64> = if commit {
            &mut guard
        } else {
            copy = guard.clone();
            &mut copy
        };
        let mut sum = 0i64;
        let mut best: Option<(usize, usize)> = None; // (candidate, position in targets)
        for (i, c) in eligible.iter().enumerate() {
            let Some(p) = pool.targets.iter().position(|d| Arc::ptr_eq(d, &c.deployment)) else { continue };
            let Some(r) = running.get_mut(p) else { continue };
            let w = i64::from(c.deployment.weight);
            *r += w;
            sum += w;
            if best.is_none_or(|(_, bp)| running[p] > running[bp]) {
                best = Some((i, p));
            }
        }
        best.map(|(i, p)| {
            running[p] -= sum;
            eligible[i].deployment.clone()
        })
    };
    eligible.sort_by_key(|c| std::cmp::Reverse(c.deployment.weight));
    if let Some(first) = picked {
        if let Some(j) = eligible.iter().position(|c| Arc::ptr_eq(&c.deployment, &first)) {
            eligible[..=j].rotate_right(1);
        }
    }
}

fn score(route: &Route, eligible: &mut [Candidate]) {
    let w = route.score_weights;
    let sum = w.security + w.capability + w.latency + w.cost;
    let fastest = eligible.iter().filter_map(|c| c.live.latency_ms).fold(f64::INFINITY, f64::min);
    let cheapest = eligible.iter().map(|c| c.cost_nanos).min().unwrap_or(0);
    for c in eligible.iter_mut() {
        let security = if c.checks.tier == TierAccess::Masked { 0.5 } else { 1.0 };
        let capability = quality(c);
        let latency = match c.live.latency_ms {
            Some(ms) if ms > 0.0 && fastest.is_finite() => (fastest / ms).min(1.0),
            _ => 1.0,
        };
        let cost = if c.cost_nanos == 0 { 1.0 } else { cheapest as f64 / c.cost_nanos as f64 };
        let total = if sum > 0.0 {
            (w.security * security + w.capability * capability + w.latency * latency + w.cost * cost) / sum
        } else {
            0.0
        };
        c.score = Some(Score { security, capability, latency, cost, total });
    }
}

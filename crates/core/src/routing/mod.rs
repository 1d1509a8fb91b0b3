//! The router: which deployments may serve a request, and in what order.
//!
//! ```text
//! route's targets + fallbacks + degradations (`deployments[].degrade_to`)
//!   → checks per candidate: capability (tools, images, JSON mode),
//!     context window, data classification × tier, tenant regions
//!   → the eligible targets ranked by the route's strategy, then the
//!     eligible fallbacks in configured order, then eligible degradations
//!   → Plan (steps, each saying whether its body is masked) + a reason
//! ```
//!
//! One function, [`evaluate`], does the work for real requests and for the
//! dry run (`POST /api/v1/route`), so what the dry run shows is what a
//! request gets. Strategies are in [`rank`]; live figures in [`live`]; what
//! a request needs in [`needs`]; its data classification in [`classify`].

pub mod cascade;
pub mod classify;
mod dry_run;
pub use dry_run::DryRunHeaders;
pub mod explain;
pub mod live;
pub mod needs;
pub mod rank;
pub mod split;
pub mod tasks;

use crate::error::{ErrorKind, GatewayError};
use crate::runtime::{Deployment, Route};
use classify::Classified;
use live::Snapshot;
use needs::Needs;
use split::{Subject, Why};
use std::sync::Arc;
use switchyard_config::Strategy;
use switchyard_types::cost::{cost_picos, to_nanos, Tokens};
use switchyard_types::{Capability, TierAccess};

/// What the router is told about one request.
pub struct Request<'a> {
    pub needs: Needs,
    pub class: Classified,
    /// The tenant's allowed regions (`None`: any).
    pub regions: Option<&'a [String]>,
    /// Who is asking, for a split's sticky arms.
    pub subject: Subject<'a>,
    /// `x-switchyard-scenario`, as sent.
    pub scenario: Option<&'a str>,
    /// Compute nodes' heartbeats and `nodes.timeout` (`None`: a deployment
    /// on a node is never eligible).
    pub nodes: Option<(&'a crate::nodes::Nodes, std::time::Duration)>,
    /// Breakers, cool-downs and health checks (`None`: not checked).
    pub resilience: Option<&'a switchyard_config::ResilienceConfig>,
}

/// The ordered deployments to try for one request.
pub struct Plan {
    pub route: Arc<Route>,
    pub steps: Vec<Step>,
    /// For the usage record: `cost; P1 (detected); 2 of 3 eligible; masked`.
    pub reason: String,
    /// The split arm (`stable` or an arm's name); `None`: no split.
    pub arm: Option<String>,
}

pub struct Step {
    pub deployment: Arc<Deployment>,
    /// A smaller sibling standing in (`degrade_to`).
    pub degraded: bool,
    /// The request goes there with its findings masked (P1 data on L2).
    pub masked: bool,
}

/// One candidate as the router saw it.
pub struct Candidate {
    pub deployment: Arc<Deployment>,
    pub role: Role,
    pub checks: Checks,
    pub live: Snapshot,
    /// This request's estimated cost there: prompt + answer allowance.
    pub cost_nanos: i64,
    /// `strategy: score` only.
    pub score: Option<rank::Score>,
}

/// Where a candidate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Target,
    Fallback,
    /// From a degradation chain (`deployments[].degrade_to`).
    Degraded,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Target => "target",
            Role::Fallback => "fallback",
            Role::Degraded => "degraded",
        }
    }
}

/// Every filter's verdict on one candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Checks {
    /// The first capability the request needs that it lacks.
    pub missing: Option<Capability>,
    /// Prompt + answer tokens over its context window: (needed, window).
    pub too_long: Option<(u64, u64)>,
    pub tier: TierAccess,
    /// Its region is allowed for the tenant.
    pub region: bool,
    /// Its compute node (if it has one) sent a heartbeat within the timeout.
    pub node: bool,
    /// Why it takes no requests now: breaker open, cooling down, failing
    /// health checks (`None`: up).
    pub down: Option<crate::resilience::Down>,
}

impl Checks {
    pub fn eligible(&self) -> bool {
        self.missing.is_none()
            && self.too_long.is_none()
            && self.tier != TierAccess::Refused
            && self.region
            && self.node
            && self.down.is_none()
    }
}

/// Every candidate of the route, checked and, when eligible, ranked: the
/// eligible ones first in the order they will be tried.
pub struct Evaluation {
    pub candidates: Vec<Candidate>,
    pub eligible: usize,
    /// The split arm the request is on, and why (`None`: no split).
    pub arm: Option<(&'static str, Why)>,
    /// Its name when not `stable`.
    pub arm_name: Option<String>,
}

/// A dry run (`commit` false) changes no state (the weighted rotation).
pub fn evaluate(route: &Route, req: &Request<'_>, commit: bool) -> Evaluation {
    // Live figures cost a lock each: read them only when they rank (or
    // for the dry run, which shows them).
    let live = !commit || matches!(route.strategy, Strategy::Latency | Strategy::LeastBusy | Strategy::Score);
    let now = crate::now_unix_ms();
    let instant = std::time::Instant::now();
    let candidate = |d: &Arc<Deployment>, role: Role| {
        let node = d.node.as_deref().map(|n| req.nodes.and_then(|(nodes, timeout)| nodes.live(n, now, timeout)));
        let checks = Checks {
            missing: req.needs.missing(d),
            too_long: req.needs.too_long(d),
            tier: req.class.class.access(d.tier),
            region: req.regions.is_none_or(|allowed| d.region.as_ref().is_some_and(|r| allowed.contains(r))),
            node: node.as_ref().is_none_or(Option::is_some),
            down: req.resilience.and_then(|c| d.live.health.check(c, instant).err()).or_else(|| {
                let full = d.max_concurrency.is_some_and(|m| d.live.in_flight() >= u64::from(m));
                full.then_some(crate::resilience::Down::Busy)
            }),
        };
        let tokens = Tokens { input: req.needs.prompt_tokens, output: req.needs.output_tokens, ..Tokens::default() };
        Candidate {
            deployment: d.clone(),
            role,
            checks,
            live: match (live, node.flatten()) {
                (false, _) => Snapshot::default(),
                (true, None) => d.live.snapshot(!commit),
                // What the node reports counts too: its requests from every
                // replica, its latency until this replica has its own.
                (true, Some(state)) => {
                    let mut s = d.live.snapshot(!commit);
                    s.in_flight = s.in_flight.max(state.beat.in_flight.unwrap_or(0));
                    s.latency_ms = s.latency_ms.or(state.beat.latency_ms);
                    s
                }
            },
            cost_nanos: to_nanos(cost_picos(&d.price, &tokens)),
            score: None,
        }
    };
    // A split's arm replaces the targets; the fallbacks stay the route's.
    let assigned = route.split.as_ref().map(|s| s.assign(&route.name, req.subject, req.scenario));
    let arm = assigned.as_ref().and_then(|(arm, _)| *arm);
    let pool = match arm {
        Some(a) => rank::Pool { targets: &a.targets, rotation: &a.rotation },
        None => rank::Pool { targets: &route.targets, rotation: &route.rotation },
    };
    let (mut targets, others): (Vec<Candidate>, Vec<Candidate>) =
        pool.targets.iter().map(|d| candidate(d, Role::Target)).partition(|c| c.checks.eligible());
    let (fallbacks, mut refused): (Vec<Candidate>, Vec<Candidate>) =
        route.fallbacks.iter().map(|d| candidate(d, Role::Fallback)).partition(|c| c.checks.eligible());
    let (degraded, refused_degraded): (Vec<Candidate>, Vec<Candidate>) =
        route.degraded.iter().map(|d| candidate(d, Role::Degraded)).partition(|c| c.checks.eligible());
    rank::rank(route, &pool, &mut targets, commit);
    refused.splice(0..0, others);
    refused.extend(refused_degraded);
    let eligible = targets.len() + fallbacks.len() + degraded.len();
    let mut candidates = targets;
    candidates.extend(fallbacks);
    candidates.extend(degraded);
    candidates.extend(refused);
    let arm_name = arm.map(|a| a.name.clone());
    let arm = assigned.map(|(a, why)| (if a.is_some() { "arm" } else { "stable" }, why));
    Evaluation { candidates, eligible, arm, arm_name }
}

/// The split arm a request is on (`stable` or the arm's name; `None`: the
/// route has no split) — what [`evaluate`] decides, for a request the
/// router refused (its outcome still counts for the arm).
pub fn arm_of(route: &Route, req: &Request<'_>) -> Option<String> {
    let split = route.split.as_ref()?;
    let (arm, _) = split.assign(&route.name, req.subject, req.scenario);
    Some(arm.map_or_else(|| "stable".to_string(), |a| a.name.clone()))
}

/// The plan for a request on `route`, or why no deployment may serve it.
pub fn plan(route: &Arc<Route>, req: &Request<'_>) -> Result<Plan, GatewayError> {
    let evaluation = evaluate(route, req, true);
    let total = evaluation.candidates.len();
    if evaluation.eligible == 0 {
        return Err(refusal(route, req, &evaluation));
    }
    let steps: Vec<Step> = evaluation.candidates[..evaluation.eligible]
        .iter()
        .map(|c| Step {
            deployment: c.deployment.clone(),
            degraded: c.role == Role::Degraded,
            masked: c.checks.tier == TierAccess::Masked,
        })
        .collect();
    let masked = steps.iter().any(|s| s.masked);
    let mut reason = reason(route.strategy, &req.class, evaluation.eligible, total, masked);
    if let Some((_, why)) = evaluation.arm {
        reason.push_str("; arm ");
        reason.push_str(evaluation.arm_name.as_deref().unwrap_or("stable"));
        reason.push_str(" (");
        reason.push_str(why.as_str());
        reason.push(')');
    }
    Ok(Plan {
        route: route.clone(),
        steps,
        reason,
        arm: evaluation.arm_name.or(evaluation.arm.map(|_| "stable".into())),
    })
}

/// `cost; P1 (detected); 2 of 3 eligible; masked on L2`, written by hand:
/// `format!` cost ~1,500 instructions a request.
fn reason(strategy: Strategy, class: &Classified, eligible: usize, total: usize, masked: bool) -> String {
    let mut out = String::with_capacity(64);
    for part in [strategy.as_str(), "; ", class.class.as_str(), " (", class.source.as_str(), "); "] {
        out.push_str(part);
    }
    push_number(&mut out, eligible);
    out.push_str(" of ");
    push_number(&mut out, total);
    out.push_str(" eligible");
    if masked {
        out.push_str("; masked on L2");
    }
    out
}

fn push_number(out: &mut String, n: usize) {
    if n >= 10 {
        push_number(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// No candidate passed: the error names the route's deployments and why
/// each was left out. Classification and region refusals are the policy's
/// (403); a request that needs what no deployment has is the client's (400).
fn refusal(route: &Route, req: &Request<'_>, evaluation: &Evaluation) -> GatewayError {
    if evaluation.candidates.is_empty() {
        return GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("The model `{}` has no enabled deployment: {}.", route.name, route.disabled.join(", ")),
        );
    }
    let policy = evaluation.candidates.iter().all(|c| c.checks.tier == TierAccess::Refused || !c.checks.region);
    // Left out for being down (or by policy), not for what the request asks.
    let nodes_down = evaluation
        .candidates
        .iter()
        .all(|c| !c.checks.node || c.checks.down.is_some() || c.checks.tier == TierAccess::Refused || !c.checks.region);
    let why: Vec<String> =
        evaluation.candidates.iter().map(|c| format!("{} ({})", c.deployment.name, explain::why_not(c, req))).collect();
    if policy {
        return GatewayError::new(
            ErrorKind::PolicyRefused,
            format!(
                "No deployment of `{}` may receive this request's data ({}): {}.",
                route.name,
                req.class.class.as_str(),
                why.join("; ")
            ),
        );
    }
    if nodes_down {
        // Every one that is down only cools after a 429: still a 429.
        let cooling = evaluation
            .candidates
            .iter()
            .filter(|c| c.checks.down.is_some() || !c.checks.node)
            .all(|c| matches!(c.checks.down, Some(crate::resilience::Down::Cooling { .. })));
        let kind = if cooling { ErrorKind::RateLimited } else { ErrorKind::UpstreamUnavailable };
        let mut e = GatewayError::new(kind, format!("No deployment of `{}` is up: {}.", route.name, why.join("; ")));
        // The soonest a breaker probes or a cool-down ends.
        let now = std::time::Instant::now();
        let soonest = evaluation.candidates.iter().filter_map(|c| c.checks.down.and_then(|d| d.until())).min();
        e.retry_after = Some(crate::resilience::retry_after(soonest, now));
        return e;
    }
    let context = evaluation.candidates.iter().all(|c| c.checks.too_long.is_some());
    let mut e = GatewayError::new(
        ErrorKind::InvalidRequest,
        format!("No deployment of `{}` can serve this request: {}.", route.name, why.join("; ")),
    );
    if context {
        e.code = Some("context_length_exceeded".into());
        e.param = Some("messages".into());
    }
    e
}

#[cfg(test)]
mod tests;

//! Rollouts over the admin API (docs/routing.md#rollouts): an arm of a
//! route's `split` whose `percent` moves step by step — up as the rollout
//! advances, down when it is rolled back gradually.
//!
//! | call | does |
//! | --- | --- |
//! | `GET /api/v1/rollouts` | every arm with its schedule and what this replica saw on its current step |
//! | `POST /api/v1/rollouts` | adds an arm (creating the route's split if needed) |
//! | `POST /api/v1/rollouts/{route}/{arm}/advance` | to the next step, or to `{"percent": p}` |
//! | `…/pause`, `…/resume` | stops / restarts the schedule (resume starts a full step) |
//! | `…/rollback` | removes the arm now, or `{"steps": [10, 50, 100]}` returns those shares of its traffic step by step |
//! | `…/promote` | the arm's targets become the route's; the arm is removed |
//!
//! The state lives in the config itself (`routes[].split.arms[].rollout`),
//! so every move — by a person or by the schedule — is a config version
//! with who, when and a diff, is seen by the next request, reaches other
//! replicas through the store, and survives restarts. Versions are written
//! compare-and-set: two replicas moving the same step at once make one
//! version, not two.
//!
//! The schedule runs in [`Gateway::rollout_tick`], every second. A step is
//! due `every` after `since`. With `max_error_rate`, an arm failing more
//! than that share of its requests on the current step (5xx answers, as
//! this replica saw them, once `min_requests` were seen) is paused — or
//! rolled back with `on_errors: rollback` — at the next tick.

use crate::access::audit::{Actor, Origin};
use crate::access::Principal;
use crate::config_versions::{platform_admin, route_entry_mut};
use crate::error::{ErrorKind, GatewayError};
use crate::Gateway;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use switchyard_config::{
    ArmConfig, Duration, OnErrors, RolloutConfig, RouteConfig, SplitConfig, Sticky, DEFAULT_MIN_REQUESTS,
};

/// An arm's step: route, arm, and when the step began (unix ms).
type Step = (String, String, i64);

/// What this replica saw of each arm when its current step began:
/// requests and errors.
#[derive(Default)]
pub struct Watch {
    start: Mutex<HashMap<Step, (u64, u64)>>,
}

/// A requested change to one arm, applied to the newest stored config.
#[derive(Clone, Debug, PartialEq)]
pub enum Move {
    Advance(Option<f64>),
    Pause,
    Resume,
    /// Shares (percent) of the arm's traffic returned to stable, in order;
    /// empty: all at once.
    Rollback {
        steps: Vec<f64>,
        every: Option<Duration>,
    },
    Promote,
    /// The schedule's step, if still due at `now`.
    Scheduled {
        now: i64,
    },
    /// The error guard tripped.
    Halt {
        why: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    route: String,
    #[serde(default = "canary")]
    arm: String,
    targets: Vec<String>,
    percent: Option<f64>,
    #[serde(default)]
    steps: Vec<f64>,
    every: Option<Duration>,
    max_error_rate: Option<f64>,
    min_requests: Option<u64>,
    #[serde(default)]
    on_errors: OnErrors,
    sticky: Option<Sticky>,
}

fn canary() -> String {
    "canary".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    percent: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    #[serde(default)]
    steps: Vec<f64>,
    every: Option<Duration>,
}

impl Gateway {
    /// `GET /api/v1/rollouts`: every arm of every split, from the running
    /// config.
    pub fn rollouts_list(&self, who: &Principal) -> Result<Value, GatewayError> {
        platform_admin(who)?;
        let rt = self.runtime();
        let (version, made_at) = self.config_version();
        let mut data = Vec::new();
        for route in &rt.config.routes {
            let Some(split) = &route.split else { continue };
            for arm in &split.arms {
                data.push(self.arm_view(&route.name, split, arm, made_at));
            }
        }
        Ok(json!({"object": "list", "config_version": version, "data": data}))
    }

    fn arm_view(&self, route: &str, split: &SplitConfig, arm: &ArmConfig, made_at: i64) -> Value {
        let mut v = json!({"route": route, "arm": arm.name, "targets": arm.targets, "percent": arm.percent,
                           "sticky": split.sticky});
        if let Some(r) = &arm.rollout {
            let since = r.since.unwrap_or(made_at);
            let (requests, errors) = self.step_outcomes(route, &arm.name, since);
            let next_at = r.every.filter(|_| !r.paused && !r.steps.is_empty()).map(|e| since + millis(e));
            v["rollout"] = json!({
                "steps": r.steps, "every": r.every, "paused": r.paused, "since": since, "next_at": next_at,
                "rolling_back": r.rolling_back, "max_error_rate": r.max_error_rate,
                "min_requests": r.min_requests, "on_errors": r.on_errors,
                "step": {"requests": requests, "errors": errors},
            });
        }
        v
    }

    /// `POST /api/v1/rollouts`: a new arm on a route.
    pub async fn rollout_create(&self, who: &Principal, body: &[u8], origin: &Origin) -> Result<Value, GatewayError> {
        platform_admin(who)?;
        let b: CreateBody = serde_json::from_slice(body).map_err(|e| {
            GatewayError::new(
                ErrorKind::InvalidRequest,
                format!("Expected {{\"route\", \"arm\", \"targets\", \"percent\" or \"steps\", …}}: {e}."),
            )
        })?;
        let (route, arm) = (b.route.clone(), b.arm.clone());
        let now = crate::now_unix_ms();
        let version = self
            .edit_config(who.actor(), "rollout", origin, |doc| {
                let mut entry = route_config(doc, &b.route)?;
                let split = entry.split.get_or_insert_with(|| SplitConfig {
                    sticky: b.sticky.unwrap_or_default(),
                    arms: Vec::new(),
                    groups: Default::default(),
                    scenarios: Default::default(),
                });
                if b.sticky.is_some_and(|s| s != split.sticky) {
                    return Err(invalid(
                        "sticky",
                        "The route's split already sticks by another subject; leave `sticky` out.",
                    ));
                }
                if split.arms.iter().any(|a| a.name == b.arm) {
                    return Err(GatewayError::new(
                        ErrorKind::Conflict,
                        format!("Route `{}` already has an arm `{}`.", b.route, b.arm),
                    ));
                }
                let mut steps = b.steps.clone();
                let percent = match b.percent {
                    Some(p) => p,
                    None if !steps.is_empty() => steps.remove(0),
                    None => return Err(invalid("percent", "Give `percent`, `steps`, or both.")),
                };
                let guarded = b.max_error_rate.is_some();
                let scheduled = !steps.is_empty() || guarded;
                split.arms.push(ArmConfig {
                    name: b.arm.clone(),
                    targets: b.targets.clone(),
                    percent,
                    rollout: scheduled.then(|| RolloutConfig {
                        steps,
                        every: b.every,
                        paused: false,
                        since: Some(now),
                        max_error_rate: b.max_error_rate,
                        min_requests: b.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS),
                        on_errors: b.on_errors,
                        rolling_back: false,
                    }),
                });
                put_route(doc, &b.route, &entry)?;
                Ok(format!("{}/{}: created at {percent}%", b.route, b.arm))
            })
            .await?;
        Ok(self.arm_after(version, &route, &arm))
    }

    /// `POST /api/v1/rollouts/{route}/{arm}/{action}`.
    pub async fn rollout_action(
        &self,
        who: &Principal,
        route: &str,
        arm: &str,
        action: &str,
        body: &[u8],
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        platform_admin(who)?;
        let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
        let bad = |e: serde_json::Error| GatewayError::new(ErrorKind::InvalidRequest, format!("Bad body: {e}."));
        let m = match action {
            "advance" => Move::Advance(serde_json::from_slice::<AdvanceBody>(body).map_err(bad)?.percent),
            "pause" => Move::Pause,
            "resume" => Move::Resume,
            "rollback" => {
                let b: RollbackBody = serde_json::from_slice(body).map_err(bad)?;
                Move::Rollback { steps: b.steps, every: b.every }
            }
            "promote" => Move::Promote,
            other => {
                return Err(GatewayError::new(
                    ErrorKind::NotFound,
                    format!("Unknown rollout action `{other}`: advance, pause, resume, rollback, promote."),
                ))
            }
        };
        let version = self.move_arm(who.actor(), route, arm, m, origin).await?;
        Ok(self.arm_after(version, route, arm))
    }

    /// Applies `m` to the arm in the newest stored config, as a new version.
    async fn move_arm(
        &self,
        actor: Actor,
        route: &str,
        arm: &str,
        m: Move,
        origin: &Origin,
    ) -> Result<i64, GatewayError> {
        let made_at = self.config_version().1;
        self.edit_config(actor, "rollout", origin, |doc| {
            let mut entry = route_config(doc, route)?;
            let why = apply(&mut entry, arm, &m, crate::now_unix_ms(), made_at)?;
            put_route(doc, route, &entry)?;
            Ok(format!("{route}/{arm}: {why}"))
        })
        .await
    }

    /// The answer to a change: the new version and the arm as it is now
    /// (absent once removed).
    fn arm_after(&self, version: i64, route: &str, arm: &str) -> Value {
        let rt = self.runtime();
        let made_at = self.config_version().1;
        let view = rt.config.routes.iter().find(|r| r.name == route).and_then(|r| {
            let split = r.split.as_ref()?;
            split.arms.iter().find(|a| a.name == arm).map(|a| self.arm_view(route, split, a, made_at))
        });
        json!({"config_version": version, "route": route, "arm": arm, "rollout": view})
    }

    /// Moves scheduled steps that are due and trips error guards. Called
    /// every second by the server; cheap when no arm has a schedule.
    pub async fn rollout_tick(&self) {
        let rt = self.runtime();
        let made_at = self.config_version().1;
        let now = crate::now_unix_ms();
        let mut moves = Vec::new();
        for route in &rt.config.routes {
            let Some(split) = &route.split else { continue };
            for arm in &split.arms {
                let Some(r) = arm.rollout.as_ref().filter(|r| !r.paused) else { continue };
                let since = r.since.unwrap_or(made_at);
                if let Some(why) = self.guard(&route.name, &arm.name, r, since) {
                    moves.push((route.name.clone(), arm.name.clone(), Move::Halt { why }));
                } else if r.every.is_some_and(|e| !r.steps.is_empty() && now >= since + millis(e)) {
                    moves.push((route.name.clone(), arm.name.clone(), Move::Scheduled { now }));
                }
            }
        }
        let origin = Origin { ip: None, request_id: None };
        for (route, arm, m) in moves {
            match self.move_arm(Actor::system(), &route, &arm, m, &origin).await {
                Ok(version) => {
                    self.metrics.rollout_steps.inc(&["ok"]);
                    tracing::info!(route, arm, version, "rollout moved");
                }
                Err(e) if e.kind == ErrorKind::Conflict => {
                    // Another replica moved it first, or the step is no
                    // longer due in the newest version.
                    tracing::debug!(route, arm, error = %e.message, "rollout step not taken");
                }
                Err(e) => {
                    self.metrics.rollout_steps.inc(&["error"]);
                    tracing::warn!(route, arm, error = %e.message, "rollout step failed; retried at the next tick");
                }
            }
        }
    }

    /// Why the arm must stop, if its error share on this step is over
    /// `max_error_rate` (rolling back arms are not judged).
    fn guard(&self, route: &str, arm: &str, r: &RolloutConfig, since: i64) -> Option<String> {
        let max = r.max_error_rate.filter(|_| !r.rolling_back)?;
        let (requests, errors) = self.step_outcomes(route, arm, since);
        let rate = errors as f64 / requests.max(1) as f64;
        (requests >= r.min_requests.max(1) && rate > max).then(|| {
            format!("{errors} of {requests} requests failed on this step ({:.1}% > {:.1}%)", rate * 100.0, max * 100.0)
        })
    }

    /// Requests and 5xx answers on the arm since its step began, as this
    /// replica saw them.
    fn step_outcomes(&self, route: &str, arm: &str, since: i64) -> (u64, u64) {
        let count = |labels: &[&str]| labels.iter().map(|s| self.metrics.route_arms.get(&[route, arm, s])).sum::<u64>();
        let now =
            (count(crate::pipeline::account::STATUS_LABELS), count(crate::pipeline::account::ERROR_STATUS_LABELS));
        let mut start = self.rollout_watch.start.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if start.len() > 10_000 {
            start.clear();
        }
        let at = *start.entry((route.to_string(), arm.to_string(), since)).or_insert(now);
        (now.0.saturating_sub(at.0), now.1.saturating_sub(at.1))
    }
}

/// Applies `m` to `arm` of `route`; what changed, for the audit log. The
/// decision is made on the newest stored config, so a move computed from
/// an older snapshot is refused (409) rather than applied twice.
pub fn apply(route: &mut RouteConfig, arm: &str, m: &Move, now: i64, made_at: i64) -> Result<String, GatewayError> {
    let name = route.name.clone();
    let split = route.split.as_mut().ok_or_else(|| no_arm(&name, arm))?;
    let i = split.arms.iter().position(|a| a.name == arm).ok_or_else(|| no_arm(&name, arm))?;
    let a = &mut split.arms[i];
    let before = a.percent;
    let why = match m {
        Move::Advance(to) => {
            let r = a.rollout.get_or_insert_with(|| schedule(now));
            let to = match to {
                Some(p) => {
                    // Steps not beyond the new percent are skipped.
                    r.steps.retain(|s| if *p >= before { s > p } else { s < p });
                    *p
                }
                None if r.steps.is_empty() => {
                    return Err(GatewayError::new(
                        ErrorKind::Conflict,
                        format!("`{name}/{arm}` has no step left; give {{\"percent\": p}}."),
                    ))
                }
                None => r.steps.remove(0),
            };
            step_to(a, to, now);
            format!("advance {before}% → {to}%")
        }
        Move::Scheduled { now: at } => {
            let r = a.rollout.as_mut().filter(|r| !r.paused && !r.steps.is_empty());
            let due = r.as_ref().and_then(|r| r.every.map(|e| r.since.unwrap_or(made_at) + millis(e) <= *at));
            if due != Some(true) {
                return Err(GatewayError::new(ErrorKind::Conflict, "No step is due."));
            }
            let to = a.rollout.as_mut().map_or(before, |r| r.steps.remove(0));
            step_to(a, to, now);
            format!("scheduled step {before}% → {to}%")
        }
        Move::Pause | Move::Halt { .. } => {
            let r = a.rollout.get_or_insert_with(|| schedule(now));
            if r.paused {
                return Err(GatewayError::new(ErrorKind::Conflict, format!("`{name}/{arm}` is paused already.")));
            }
            r.paused = true;
            match m {
                Move::Halt { why } if r.on_errors == OnErrors::Rollback => {
                    let why = why.clone();
                    remove_arm(route, arm);
                    return Ok(format!("rolled back: {why}"));
                }
                Move::Halt { why } => format!("paused at {before}%: {why}"),
                _ => format!("paused at {before}%"),
            }
        }
        Move::Resume => {
            let r = a
                .rollout
                .as_mut()
                .filter(|r| r.paused)
                .ok_or_else(|| GatewayError::new(ErrorKind::Conflict, format!("`{name}/{arm}` is not paused.")))?;
            r.paused = false;
            r.since = Some(now);
            format!("resumed at {before}%")
        }
        Move::Rollback { steps, .. } if steps.is_empty() => {
            remove_arm(route, arm);
            format!("rolled back from {before}%")
        }
        Move::Rollback { steps, every } => {
            let mut percents = Vec::with_capacity(steps.len() + 1);
            for s in steps {
                if !(0.0..=100.0).contains(s) || percents.last().is_some_and(|l: &f64| before * (1.0 - s / 100.0) > *l)
                {
                    return Err(invalid(
                        "steps",
                        "Expected rising shares from 0 to 100 (of the arm's traffic to return).",
                    ));
                }
                percents.push(((before * (1.0 - s / 100.0)) * 100.0).round() / 100.0);
            }
            if percents.last() != Some(&0.0) {
                percents.push(0.0);
            }
            let first = percents.remove(0);
            let r = a.rollout.get_or_insert_with(|| schedule(now));
            r.steps = percents;
            r.every = every.or(r.every);
            r.rolling_back = true;
            r.paused = false;
            step_to(a, first, now);
            if a.percent == 0.0 {
                remove_arm(route, arm);
                return Ok(format!("rolled back from {before}%"));
            }
            format!("rolling back {before}% → {first}%")
        }
        Move::Promote => {
            route.targets = a.targets.clone();
            remove_arm(route, arm);
            format!("promoted from {before}%: its targets are the route's")
        }
    };
    // A rollback that reached 0 is over: the arm goes.
    let done = route
        .split
        .as_ref()
        .and_then(|s| s.arms.iter().find(|a| a.name == arm))
        .is_some_and(|a| a.percent == 0.0 && a.rollout.as_ref().is_some_and(|r| r.rolling_back));
    if done {
        remove_arm(route, arm);
    }
    Ok(why)
}

/// A schedule with no steps (made by a manual move on an arm without one).
fn schedule(now: i64) -> RolloutConfig {
    RolloutConfig {
        steps: Vec::new(),
        every: None,
        paused: false,
        since: Some(now),
        max_error_rate: None,
        min_requests: DEFAULT_MIN_REQUESTS,
        on_errors: OnErrors::Pause,
        rolling_back: false,
    }
}

/// Sets the arm's percent and starts a new step; a finished schedule is
/// dropped (a rollback's arm is removed by the caller at 0).
fn step_to(a: &mut ArmConfig, percent: f64, now: i64) {
    a.percent = percent;
    if let Some(r) = &mut a.rollout {
        r.since = Some(now);
        if r.steps.is_empty() && r.max_error_rate.is_none() && !r.rolling_back {
            a.rollout = None;
        }
    }
}

/// Removes the arm, its groups and scenarios, and the split if it was the
/// last arm.
fn remove_arm(route: &mut RouteConfig, arm: &str) {
    let Some(split) = &mut route.split else { return };
    split.arms.retain(|a| a.name != arm);
    split.groups.retain(|_, g| g.arm != arm);
    split.scenarios.retain(|_, a| a != arm);
    if split.arms.is_empty() {
        route.split = None;
    }
}

fn route_config(doc: &serde_yaml::Value, route: &str) -> Result<RouteConfig, GatewayError> {
    let entry = crate::config_versions::route_entry(doc, route).ok_or_else(|| {
        GatewayError::new(ErrorKind::NotFound, format!("No route named `{route}` in the active config."))
    })?;
    serde_yaml::from_value(entry.clone())
        .map_err(|e| GatewayError::new(ErrorKind::Conflict, format!("Route `{route}` does not read back: {e}")))
}

/// Writes the route's `targets` and `split` back into its entry; the rest
/// of the entry and of the document stays as written.
fn put_route(doc: &mut serde_yaml::Value, name: &str, route: &RouteConfig) -> Result<(), GatewayError> {
    let written =
        |e: serde_yaml::Error| GatewayError::new(ErrorKind::Internal, format!("route could not be written: {e}"));
    let targets = serde_yaml::to_value(&route.targets).map_err(written)?;
    let split = route.split.as_ref().map(serde_yaml::to_value).transpose().map_err(written)?;
    let slot = route_entry_mut(doc, name)
        .and_then(serde_yaml::Value::as_mapping_mut)
        .ok_or_else(|| GatewayError::new(ErrorKind::NotFound, format!("No route named `{name}`.")))?;
    slot.insert("targets".into(), targets);
    match split {
        Some(split) => slot.insert("split".into(), split),
        None => slot.remove("split"),
    };
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.get().as_millis()).unwrap_or(i64::MAX / 2)
}

fn invalid(param: &str, message: &str) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, message).with_param(param)
}

fn no_arm(route: &str, arm: &str) -> GatewayError {
    GatewayError::new(ErrorKind::NotFound, format!("Route `{route}` has no arm `{arm}`."))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn route(arm_yaml: &str) -> RouteConfig {
        serde_yaml::from_str(&format!(
            "name: chat\ntargets: [a]\nsplit:\n  arms: [{arm_yaml}]\n  groups: {{ beta: {{ arm: canary, subjects: [alice] }} }}"
        ))
        .unwrap()
    }

    fn arm(r: &RouteConfig) -> Option<&ArmConfig> {
        r.split.as_ref()?.arms.iter().find(|a| a.name == "canary")
    }

    #[test]
    fn advance_takes_the_next_step_or_jumps_past_skipped_ones() {
        let mut r = route("{ name: canary, targets: [b], percent: 1, rollout: { steps: [10, 50, 100] } }");
        assert_eq!(apply(&mut r, "canary", &Move::Advance(None), 5, 0).unwrap(), "advance 1% → 10%");
        let a = arm(&r).unwrap();
        assert_eq!((a.percent, a.rollout.as_ref().unwrap().steps.clone()), (10.0, vec![50.0, 100.0]));
        assert_eq!(a.rollout.as_ref().unwrap().since, Some(5));
        apply(&mut r, "canary", &Move::Advance(Some(60.0)), 6, 0).unwrap();
        let a = arm(&r).unwrap();
        assert_eq!((a.percent, a.rollout.as_ref().unwrap().steps.clone()), (60.0, vec![100.0]));
        apply(&mut r, "canary", &Move::Advance(None), 7, 0).unwrap();
        // The last step ends the schedule; the arm stays at 100% until promoted.
        let a = arm(&r).unwrap();
        assert_eq!((a.percent, a.rollout.is_none()), (100.0, true));
        let e = apply(&mut r, "canary", &Move::Advance(None), 8, 0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        let e = apply(&mut r, "nope", &Move::Pause, 8, 0).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
    }

    #[test]
    fn scheduled_steps_move_only_when_due_and_not_paused() {
        let mut r =
            route("{ name: canary, targets: [b], percent: 1, rollout: { steps: [10, 100], every: 10s, since: 1000 } }");
        let not_yet = apply(&mut r, "canary", &Move::Scheduled { now: 10_999 }, 10_999, 0).unwrap_err();
        assert_eq!(not_yet.kind, ErrorKind::Conflict, "a step computed from an old snapshot is refused");
        apply(&mut r, "canary", &Move::Scheduled { now: 11_000 }, 11_000, 0).unwrap();
        assert_eq!(arm(&r).unwrap().percent, 10.0);
        apply(&mut r, "canary", &Move::Pause, 12_000, 0).unwrap();
        assert!(apply(&mut r, "canary", &Move::Scheduled { now: 99_000 }, 99_000, 0).is_err(), "paused");
        assert_eq!(apply(&mut r, "canary", &Move::Pause, 12_000, 0).unwrap_err().kind, ErrorKind::Conflict);
        apply(&mut r, "canary", &Move::Resume, 100_000, 0).unwrap();
        assert!(
            apply(&mut r, "canary", &Move::Scheduled { now: 105_000 }, 105_000, 0).is_err(),
            "resume starts a full step"
        );
        apply(&mut r, "canary", &Move::Scheduled { now: 110_000 }, 110_000, 0).unwrap();
        assert_eq!(arm(&r).unwrap().percent, 100.0);
        // Without `since` the step began when its version was made.
        let mut r = route("{ name: canary, targets: [b], percent: 1, rollout: { steps: [5], every: 1s } }");
        assert!(apply(&mut r, "canary", &Move::Scheduled { now: 1_500 }, 1_500, 1_000).is_err());
        assert!(apply(&mut r, "canary", &Move::Scheduled { now: 2_000 }, 2_000, 1_000).is_ok());
    }

    #[test]
    fn rollback_now_or_in_shares_of_the_arms_traffic() {
        let mut r = route("{ name: canary, targets: [b], percent: 40 }");
        apply(&mut r, "canary", &Move::Rollback { steps: vec![10.0, 50.0, 100.0], every: None }, 1, 0).unwrap();
        let a = arm(&r).unwrap();
        assert_eq!((a.percent, a.rollout.as_ref().unwrap().steps.clone()), (36.0, vec![20.0, 0.0]));
        apply(&mut r, "canary", &Move::Advance(None), 2, 0).unwrap();
        assert_eq!(arm(&r).unwrap().percent, 20.0);
        apply(&mut r, "canary", &Move::Advance(None), 3, 0).unwrap();
        assert!(r.split.is_none(), "at 0 the arm, its groups and the empty split are gone");
        let mut r = route("{ name: canary, targets: [b], percent: 40 }");
        apply(&mut r, "canary", &Move::Rollback { steps: vec![], every: None }, 1, 0).unwrap();
        assert!(r.split.is_none());
        let mut r = route("{ name: canary, targets: [b], percent: 40 }");
        let e = apply(&mut r, "canary", &Move::Rollback { steps: vec![50.0, 10.0], every: None }, 1, 0).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("steps"));
        assert_eq!(arm(&r).unwrap().percent, 40.0, "a refused move changes nothing it returns");
    }

    #[test]
    fn promote_and_the_error_guard() {
        let mut r = route("{ name: canary, targets: [b, c], percent: 100 }");
        apply(&mut r, "canary", &Move::Promote, 1, 0).unwrap();
        assert_eq!((r.targets.clone(), r.split.is_none()), (vec!["b".to_string(), "c".to_string()], true));
        let mut r = route("{ name: canary, targets: [b], percent: 5, rollout: { steps: [50], max_error_rate: 0.1 } }");
        let why = apply(&mut r, "canary", &Move::Halt { why: "3 of 4 failed".into() }, 1, 0).unwrap();
        assert_eq!(why, "paused at 5%: 3 of 4 failed");
        assert!(arm(&r).unwrap().rollout.as_ref().unwrap().paused);
        let mut r = route(
            "{ name: canary, targets: [b], percent: 5, rollout: { steps: [50], max_error_rate: 0.1, on_errors: rollback } }",
        );
        apply(&mut r, "canary", &Move::Halt { why: "x".into() }, 1, 0).unwrap();
        assert!(r.split.is_none());
    }
}

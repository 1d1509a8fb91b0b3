//! Rollouts: a route's traffic split into arms — a canary, or the arms of
//! an A/B test. Arm `stable` is the route's own targets; each other arm
//! takes a share of the *subjects* (users, keys or tenants).
//!
//! Which arm, in order: the `x-switchyard-scenario` header if the split
//! maps it; the subject's group if it is pinned; else the subject's bucket
//! — a hash of route and subject into 10,000 buckets, arms taking
//! consecutive ranges. The hash is fixed (FNV-1a with a 64-bit finaliser),
//! so a subject stays on its arm across requests, replicas and restarts,
//! and raising an arm's percent only moves subjects *into* it.

use crate::runtime::Deployment;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use switchyard_config::{SplitConfig, Sticky};

/// Buckets a subject hashes into: shares have two decimals.
pub const BUCKETS: u64 = 10_000;

pub const SCENARIO_HEADER: &str = "x-switchyard-scenario";

pub struct Split {
    pub sticky: Sticky,
    pub arms: Vec<Arm>,
    /// Subject → arm index (`None`: stable).
    pins: HashMap<String, Option<usize>>,
    scenarios: HashMap<String, Option<usize>>,
}

pub struct Arm {
    pub name: String,
    pub targets: Vec<Arc<Deployment>>,
    /// Buckets below this (and at or above the previous arm's) are this arm's.
    upto: u64,
    /// Smooth weighted round robin's running weights, one per target.
    pub rotation: Mutex<Vec<i64>>,
}

/// Who a request is, for sticking it to an arm.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    pub user: Option<&'a str>,
    pub key: &'a str,
    pub tenant: &'a str,
}

/// How the arm was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Scenario,
    Group,
    Bucket(u64),
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Scenario => "scenario",
            Why::Group => "group",
            Why::Bucket(_) => "bucket",
        }
    }
}

impl Split {
    /// From config and each arm's enabled deployments, in arm order.
    pub fn build(config: &SplitConfig, targets: Vec<Vec<Arc<Deployment>>>) -> Split {
        let mut upto = 0;
        let arms: Vec<Arm> = config
            .arms
            .iter()
            .zip(targets)
            .map(|(a, targets)| {
                upto += (a.percent * 100.0).round() as u64;
                Arm { name: a.name.clone(), rotation: Mutex::new(vec![0; targets.len()]), targets, upto }
            })
            .collect();
        let index = |name: &str| arms.iter().position(|a| a.name == name);
        let pins = config.groups.values().flat_map(|g| g.subjects.iter().map(|s| (s.clone(), index(&g.arm)))).collect();
        let scenarios = config.scenarios.iter().map(|(s, arm)| (s.clone(), index(arm))).collect();
        Split { sticky: config.sticky, arms, pins, scenarios }
    }

    /// The arm for this request (`None`: stable) and why.
    pub fn assign(&self, route: &str, subject: Subject<'_>, scenario: Option<&str>) -> (Option<&Arm>, Why) {
        if let Some(arm) = scenario.and_then(|s| self.scenarios.get(s)) {
            return (arm.map(|i| &self.arms[i]), Why::Scenario);
        }
        let who = match self.sticky {
            Sticky::User => subject.user.unwrap_or(subject.key),
            Sticky::Key => subject.key,
            Sticky::Tenant => subject.tenant,
        };
        if let Some(arm) = self.pins.get(who) {
            return (arm.map(|i| &self.arms[i]), Why::Group);
        }
        let b = bucket(route, who);
        (self.arms.iter().find(|a| b < a.upto), Why::Bucket(b))
    }
}

/// The subject's bucket on this route, 0..10,000.
pub fn bucket(route: &str, subject: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in route.bytes().chain([0]).chain(subject.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finaliser: FNV alone leaves similar names in similar buckets.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h % BUCKETS
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn split(yaml: &str) -> Split {
        let config: SplitConfig = serde_yaml::from_str(yaml).unwrap();
        let arms = config.arms.iter().map(|_| Vec::new()).collect();
        Split::build(&config, arms)
    }

    fn subject(user: &str) -> Subject<'_> {
        Subject { user: Some(user), key: "key_1", tenant: "t" }
    }

    #[test]
    fn canary_share_is_within_two_percent_over_10000_users_and_sticky() {
        for percent in [1.0, 10.0, 25.0, 50.0] {
            let s = split(&format!("arms: [{{ name: canary, targets: [x], percent: {percent} }}]"));
            let on_canary = (0..10_000)
                .filter(|u| {
                    let user = format!("user-{u}");
                    let first = s.assign("chat", subject(&user), None).0.map(|a| a.name.clone());
                    // The same user, asked again, gets the same arm.
                    assert_eq!(s.assign("chat", subject(&user), None).0.map(|a| a.name.clone()), first);
                    first.is_some()
                })
                .count();
            let share = on_canary as f64 / 100.0;
            assert!((share - percent).abs() <= 2.0, "{percent}%: {share}%");
        }
    }

    #[test]
    fn raising_a_share_only_moves_users_in() {
        let small = split("arms: [{ name: canary, targets: [x], percent: 10 }]");
        let large = split("arms: [{ name: canary, targets: [x], percent: 50 }]");
        for u in 0..2000 {
            let user = format!("u{u}");
            if small.assign("r", subject(&user), None).0.is_some() {
                assert!(large.assign("r", subject(&user), None).0.is_some(), "{user} left the canary");
            }
        }
    }

    #[test]
    fn scenarios_then_groups_then_buckets() {
        let s = split(
            "sticky: user\narms: [{ name: b, targets: [x], percent: 0 }]\ngroups: { beta: { arm: b, subjects: [alice] }, out: { arm: stable, subjects: [bob] } }\nscenarios: { try-b: b, safe: stable }",
        );
        assert_eq!(s.assign("r", subject("alice"), None).1, Why::Group);
        assert_eq!(s.assign("r", subject("alice"), None).0.map(|a| a.name.as_str()), Some("b"));
        assert!(s.assign("r", subject("alice"), Some("safe")).0.is_none(), "a scenario outranks a group");
        assert_eq!(s.assign("r", subject("carol"), Some("try-b")).0.map(|a| a.name.as_str()), Some("b"));
        assert!(matches!(s.assign("r", subject("carol"), Some("unknown")), (None, Why::Bucket(_))));
        // Sticky by user falls back to the key without one; by tenant, the tenant.
        let no_user = Subject { user: None, key: "alice", tenant: "t" };
        assert_eq!(s.assign("r", no_user, None).1, Why::Group);
    }

    #[test]
    fn buckets_are_fixed_forever() {
        // Pinned values: a change to the hash would move every subject.
        assert_eq!(bucket("chat", "user-1"), bucket("chat", "user-1"));
        assert_ne!(bucket("chat", "user-1"), bucket("chat2", "user-1"));
        let pinned = [bucket("chat", "user-1"), bucket("chat", "alice"), bucket("", "")];
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 3] = [5187, 8571, 4608];
}

#![allow(clippy::unwrap_used)]
use super::classify::{Classified, Source};
use super::needs::Needs;
use super::*;
use crate::runtime::{BuildContext, Runtime};
use std::time::Duration;
use switchyard_types::Classification;

fn build(routes: &str) -> Runtime {
    let yaml = format!(
        r#"
providers:
  - {{ name: dev, kind: openai_compatible, base_url: "http://127.0.0.1:9/v1", tier: L0, region: eu }}
  - {{ name: prem, kind: openai_compatible, base_url: "http://127.0.0.1:9/v1", tier: L1, region: eu }}
  - {{ name: cloud, kind: openai_compatible, base_url: "http://127.0.0.1:9/v1", tier: L2, region: us }}
deployments:
  - {{ name: a, provider: cloud, model: a, weight: 5, price: {{ input_per_mtok: 1, output_per_mtok: 2 }}, quality: 0.9, capabilities: [chat] }}
  - {{ name: b, provider: cloud, model: b, weight: 1, price: {{ input_per_mtok: 0.5, output_per_mtok: 1 }}, quality: 0.5, capabilities: [chat] }}
  - {{ name: c, provider: prem, model: c, weight: 1, context_window: 1000, capabilities: [chat, tools] }}
  - {{ name: d, provider: dev, model: d, capabilities: [chat] }}
routes:
{routes}
"#
    );
    let env = std::collections::HashMap::new();
    let config = switchyard_config::load_str(&yaml, "test.yaml", &env).unwrap();
    Runtime::build(config, BuildContext { sim_addr: None, previous: None }).unwrap()
}

fn request(class: Classification) -> Request<'static> {
    Request {
        needs: Needs { prompt_tokens: 100, output_tokens: 100, ..Needs::default() },
        class: Classified { class, source: Source::Default, findings: false },
        regions: None,
        subject: super::split::Subject { user: None, key: "key_1", tenant: "t" },
        scenario: None,
        nodes: None,
        resilience: None,
    }
}

fn order(rt: &Runtime, route: &str, req: &Request<'_>) -> Vec<String> {
    plan(&rt.routes[route], req).unwrap().steps.iter().map(|s| s.deployment.name.clone()).collect()
}

#[test]
fn smooth_weighted_round_robin_interleaves_by_weight() {
    let rt = build("  - { name: r, strategy: weighted, targets: [a, b, c] }");
    let req = request(Classification::P2);
    let firsts: Vec<String> = (0..14).map(|_| order(&rt, "r", &req)[0].clone()).collect();
    // nginx's sequence for 5:1:1, twice.
    let expected = ["a", "a", "b", "a", "c", "a", "a"];
    assert_eq!(firsts, [expected, expected].concat());
    // The rest follow by weight; a dry run does not move the rotation.
    let before = rt.routes["r"].rotation.lock().unwrap().clone();
    let dry = evaluate(&rt.routes["r"], &req, false);
    assert_eq!(dry.candidates[0].deployment.name, "a");
    assert_eq!(*rt.routes["r"].rotation.lock().unwrap(), before);
}

#[test]
fn cost_quality_and_least_busy_orders() {
    let rt = build(
        "  - { name: cost, strategy: cost, targets: [a, b, c] }\n  - { name: q, strategy: quality, targets: [b, c, a] }\n  - { name: busy, strategy: least_busy, targets: [a, b] }",
    );
    let req = request(Classification::P2);
    // c has no price (free), then b (half of a's prices).
    assert_eq!(order(&rt, "cost", &req), ["c", "b", "a"]);
    // a 0.9, b 0.5, c unset (0.5): equal ones keep their order.
    assert_eq!(order(&rt, "q", &req), ["a", "b", "c"]);
    let a = &rt.routes["busy"].targets[0];
    let _held = a.live.busy();
    assert_eq!(order(&rt, "busy", &req), ["b", "a"]);
}

#[test]
fn latency_ranks_untried_first_then_the_faster() {
    let rt = build("  - { name: lat, strategy: latency, targets: [a, b] }");
    let route = &rt.routes["lat"];
    let req = request(Classification::P2);
    route.targets[0].live.observe(Duration::from_millis(50));
    assert_eq!(order(&rt, "lat", &req), ["b", "a"], "b has no samples yet");
    route.targets[1].live.observe(Duration::from_millis(80));
    assert_eq!(order(&rt, "lat", &req), ["a", "b"]);
    route.targets[0].live.observe_failure(Duration::from_millis(1));
    assert_eq!(order(&rt, "lat", &req), ["b", "a"], "a failure counts as slow");
}

#[test]
fn checks_tier_capability_context_and_region() {
    let rt = build("  - { name: r, targets: [a, c, d] }\n  - { name: cloud, targets: [a, b] }");
    // P0: the cloud is not in the plan at all.
    assert_eq!(order(&rt, "r", &request(Classification::P0)), ["c", "d"]);
    // P1: the cloud only masked.
    let p = plan(&rt.routes["r"], &request(Classification::P1)).unwrap();
    let masked: Vec<bool> = p.steps.iter().map(|s| s.masked).collect();
    assert_eq!(masked, [true, false, false]);
    assert_eq!(p.reason, "priority; P1 (default); 3 of 3 eligible; masked on L2");

    let mut tools = request(Classification::P2);
    tools.needs.tools = true;
    assert_eq!(order(&rt, "r", &tools), ["c"]);
    let mut long = request(Classification::P2);
    long.needs.prompt_tokens = 950;
    assert_eq!(order(&rt, "r", &long), ["a", "d"], "c's window is 1000");

    let eu = ["eu".to_string()];
    let mut regional = request(Classification::P2);
    regional.regions = Some(&eu);
    assert_eq!(order(&rt, "r", &regional), ["c", "d"]);

    // Nothing eligible: policy (403) or the client's request (400).
    let e = plan(&rt.routes["cloud"], &request(Classification::P0)).err().unwrap();
    assert_eq!((e.kind, e.status()), (ErrorKind::PolicyRefused, 403));
    assert!(e.message.contains("a (tier L2: P0 data stays on L0/L1); b (tier L2"), "{}", e.message);
    let e = plan(&rt.routes["cloud"], &regional).err().unwrap();
    assert_eq!(e.kind, ErrorKind::PolicyRefused);
    assert!(e.message.contains("region us is not among the tenant's allowed regions"), "{}", e.message);
    let e = plan(&rt.routes["cloud"], &tools).err().unwrap();
    assert_eq!((e.status(), e.code()), (400, None));
    assert!(e.message.contains("a (no tools capability)"), "{}", e.message);
}

#[test]
fn score_weighs_security_capability_latency_and_cost() {
    let rt = build(
        "  - { name: s, strategy: score, targets: [a, b, c] }\n  - { name: cheap, strategy: score, score_weights: { security: 0, capability: 0, latency: 0, cost: 1 }, targets: [a, b] }",
    );
    let p1 = request(Classification::P1);
    let e = evaluate(&rt.routes["s"], &p1, true);
    let score = |name: &str| e.candidates.iter().find(|c| c.deployment.name == name).unwrap().score.unwrap();
    // c: on-prem (security 1), quality 0.5, free (cost 1), untried (latency 1).
    let c = score("c");
    assert_eq!((c.security, c.capability, c.latency, c.cost), (1.0, 0.5, 1.0, 1.0));
    assert!((c.total - (0.40 + 0.25 * 0.5 + 0.20 + 0.15)).abs() < 1e-9);
    // a: masked (0.5), quality 0.9, not free while c is: cost 0.
    let a = score("a");
    assert_eq!((a.security, a.capability, a.cost), (0.5, 0.9, 0.0));
    assert_eq!(e.candidates[0].deployment.name, "c");
    // Cost alone: b costs half of a.
    let e = evaluate(&rt.routes["cheap"], &request(Classification::P2), true);
    assert_eq!(e.candidates[0].deployment.name, "b");
    assert!((e.candidates[1].score.unwrap().cost - 0.5).abs() < 1e-9);
}

#[test]
fn reasons_are_written_by_hand_correctly() {
    let class = Classified { class: Classification::P1, source: Source::Detected, findings: true };
    assert_eq!(reason(Strategy::Cost, &class, 12, 130, true), "cost; P1 (detected); 12 of 130 eligible; masked on L2");
    assert_eq!(reason(Strategy::LeastBusy, &class, 0, 1, false), "least_busy; P1 (detected); 0 of 1 eligible");
}

#[test]
fn fallbacks_come_after_targets_whatever_the_strategy() {
    let rt = build("  - { name: r, strategy: cost, targets: [a, b], fallbacks: [c] }");
    assert_eq!(order(&rt, "r", &request(Classification::P2)), ["b", "a", "c"]);
    assert_eq!(order(&rt, "r", &request(Classification::P0)), ["c"]);
}

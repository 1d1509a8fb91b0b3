//! The router's decision as words and JSON: why a candidate was left out
//! (error messages), and the whole evaluation for `POST /api/v1/route`.

use super::{Candidate, Evaluation, Request};
use crate::runtime::Route;
use serde_json::{json, Value};
use switchyard_types::cost::usd_text;
use switchyard_types::TierAccess;

/// Why a candidate is not eligible, in a few words ("eligible" if it is).
pub fn why_not(c: &Candidate, req: &Request<'_>) -> String {
    let checks = &c.checks;
    let mut out = Vec::new();
    if let Some(cap) = checks.missing {
        out.push(format!("no {} capability", cap.as_str()));
    }
    if let Some((needed, window)) = checks.too_long {
        out.push(format!("needs ~{needed} tokens, context window {window}"));
    }
    if checks.tier == TierAccess::Refused {
        out.push(format!("tier {}: {} data stays on L0/L1", c.deployment.tier.as_str(), req.class.class.as_str()));
    }
    if !checks.region {
        let region = c.deployment.region.as_deref().unwrap_or("none");
        out.push(format!("region {region} is not among the tenant's allowed regions"));
    }
    if !checks.node {
        let node = c.deployment.node.as_deref().unwrap_or("-");
        out.push(format!("node {node} has sent no heartbeat within nodes.timeout"));
    }
    if let Some(down) = checks.down {
        out.push(down.as_str().to_string());
    }
    if out.is_empty() {
        "eligible".into()
    } else {
        out.join(", ")
    }
}

/// The dry run's answer: the request as the router saw it, and every
/// candidate with its checks, live figures, estimated cost and (for
/// `score`) score components, in plan order then the ineligible.
pub fn to_json(route: &Route, req: &Request<'_>, evaluation: &Evaluation) -> Value {
    let candidates: Vec<Value> = evaluation
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let d = &c.deployment;
            let tier = match c.checks.tier {
                TierAccess::Allowed => "allowed",
                TierAccess::Masked => "masked",
                TierAccess::Refused => "refused",
            };
            json!({
                "deployment": d.name,
                "provider": d.provider_name,
                "model": &*d.model,
                "tier": d.tier.as_str(),
                "region": d.region,
                "role": c.role.as_str(),
                "eligible": c.checks.eligible(),
                "position": (i < evaluation.eligible).then_some(i + 1),
                "why_not": (!c.checks.eligible()).then(|| why_not(c, req)),
                "masked": c.checks.tier == TierAccess::Masked && c.checks.eligible(),
                "checks": {
                    "capability": c.checks.missing.map_or("pass".to_string(), |m| format!("missing {}", m.as_str())),
                    "context": c.checks.too_long.map_or("pass".to_string(), |(n, w)| format!("needs ~{n} of {w} tokens")),
                    "classification": tier,
                    "region": if c.checks.region { "pass" } else { "refused" },
                    "node": match (&d.node, c.checks.node) { (None, _) => "none", (Some(_), true) => "alive", (Some(_), false) => "silent" },
                    "health": c.checks.down.map_or("up", |down| down.as_str()),
                },
                "estimated_cost_usd": usd_text(c.cost_nanos),
                "quality": d.quality,
                "weight": d.weight,
                "live": {
                    "in_flight": c.live.in_flight,
                    "latency_ewma_ms": c.live.latency_ms,
                    "latency_p95_ms": c.live.p95_ms,
                    "samples": c.live.samples,
                },
                "score": c.score,
            })
        })
        .collect();
    json!({
        "route": route.name,
        "strategy": route.strategy.as_str(),
        "classification": req.class.class.as_str(),
        "classified_by": req.class.source.as_str(),
        "findings": req.class.findings,
        "needs": {
            "tools": req.needs.tools,
            "vision": req.needs.vision,
            "json": req.needs.json,
            "embeddings": req.needs.embeddings,
            "prompt_tokens_estimate": req.needs.prompt_tokens,
            "output_tokens_allowance": req.needs.output_tokens,
        },
        "regions": req.regions,
        "arm": evaluation.arm.map(|(_, why)| json!({
            "name": evaluation.arm_name.as_deref().unwrap_or("stable"),
            "chosen_by": why.as_str(),
            "bucket": match why { super::split::Why::Bucket(b) => Some(b), _ => None },
        })),
        "eligible": evaluation.eligible,
        "plan": evaluation.candidates[..evaluation.eligible].iter().map(|c| c.deployment.name.as_str()).collect::<Vec<_>>(),
        "candidates": candidates,
    })
}

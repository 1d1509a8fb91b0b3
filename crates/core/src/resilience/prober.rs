//! Active health checks: every `resilience.health.interval`, each routed
//! deployment's provider is asked for its model list (through the
//! deployment's own client, so an injected fault on it is seen), within
//! `resilience.health.timeout`. `unhealthy_after` failures in a row take
//! the deployment out of routing; `healthy_after` successes bring it
//! back. Each flip is logged, counted, shown in `GET /api/v1/deployments`
//! and sent to the alert webhooks (`deployment.down`, `deployment.up`).

use crate::runtime::{Deployment, Runtime};
use crate::Gateway;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Every deployment some route can send to (targets, fallbacks, split
/// arms), once each, in route order.
pub fn routed(rt: &Runtime) -> Vec<Arc<Deployment>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for name in &rt.route_order {
        let Some(r) = rt.routes.get(name) else { continue };
        let arms = r.split.iter().flat_map(|s| s.arms.iter().flat_map(|a| a.targets.iter()));
        for d in r.targets.iter().chain(&r.fallbacks).chain(arms) {
            if seen.insert(d.name.clone()) {
                out.push(d.clone());
            }
        }
    }
    out
}

/// Probes due providers every second until `stop`.
pub async fn run(gateway: Arc<Gateway>, mut stop: watch::Receiver<bool>) {
    let mut last: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        probe_due(&gateway, &mut last).await;
    }
}

/// One round: the deployments whose interval has passed, at once.
pub async fn probe_due(gateway: &Gateway, last: &mut HashMap<String, Instant>) {
    let rt = gateway.runtime();
    let c = &rt.config.resilience;
    if !c.health.enabled {
        return;
    }
    let now = Instant::now();
    let due: Vec<Arc<Deployment>> = routed(&rt)
        .into_iter()
        .filter(|d| last.get(&d.name).is_none_or(|t| now.duration_since(*t) >= c.health.interval.get()))
        .collect();
    for d in &due {
        last.insert(d.name.clone(), now);
    }
    let timeout = c.health.timeout.get();
    let probes = due.iter().map(|d| async move {
        let result = match tokio::time::timeout(timeout, d.provider.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("{}: {}", e.kind.as_str(), e.message)),
            Err(_) => Err(format!("no answer within {}", c.health.timeout)),
        };
        (d, result)
    });
    for (d, result) in futures_util::future::join_all(probes).await {
        let outcome = if result.is_ok() { "ok" } else { "failed" };
        gateway.metrics.health_probes.inc(&[&d.name, outcome]);
        let Some(healthy) = d.live.health.probed(c, result.clone(), Instant::now()) else { continue };
        gateway.metrics.deployment_healthy.set(&[&d.name], i64::from(healthy));
        let (event, message) = if healthy {
            tracing::info!(deployment = %d.name, "deployment healthy again: back in routing");
            ("deployment.up", format!("Deployment {} passes its health checks again.", d.name))
        } else {
            let error = result.as_ref().err().map_or("", String::as_str);
            tracing::warn!(deployment = %d.name, error, "deployment failing health checks: out of routing");
            ("deployment.down", format!("Deployment {} fails its health checks: {error}.", d.name))
        };
        gateway.alerts.event(crate::alerts::Event {
            event,
            subject: format!("deployment:{}", d.name),
            message,
            details: serde_json::json!({"deployment": d.name, "provider": d.provider_name, "error": result.as_ref().err()}),
            fired_at: crate::now_unix_ms(),
        });
    }
}

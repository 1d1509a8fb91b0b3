//! `GET /api/v1/deployments`: every routed deployment's health as this
//! replica sees it — breaker state and opens, cool-down, active probes,
//! requests in flight and latency.

use super::breaker::State;
use crate::access::Principal;
use crate::error::GatewayError;
use crate::Gateway;
use serde_json::{json, Value};
use std::time::Instant;

impl Gateway {
    pub fn deployments_health(&self, who: &Principal) -> Result<Value, GatewayError> {
        crate::config_versions::platform_admin(who)?;
        let rt = self.runtime();
        let c = &rt.config.resilience;
        let now = Instant::now();
        let in_ms = |t: Instant| t.saturating_duration_since(now).as_millis() as u64;
        let data: Vec<Value> = super::prober::routed(&rt)
            .iter()
            .map(|d| {
                let (state, opens, cooling, probed) = d.live.health.snapshot();
                let live = d.live.snapshot(true);
                let available = d.live.health.check(c, now);
                json!({
                    "deployment": d.name,
                    "provider": d.provider_name,
                    "available": available.is_ok(),
                    "reason": available.err().map(|r| r.as_str()),
                    "breaker": {
                        "state": state.as_str(),
                        "opens": opens,
                        "probes_in_ms": match state { State::Open { until } => Some(in_ms(until)), _ => None },
                    },
                    "cooling_ms": cooling.filter(|u| *u > now).map(in_ms),
                    "health_check": {
                        "enabled": c.health.enabled,
                        "healthy": probed.healthy,
                        "streak": probed.streak,
                        "last_ms_ago": probed.last_at.map(|t| now.saturating_duration_since(t).as_millis() as u64),
                        "last_error": probed.last_error,
                    },
                    "in_flight": live.in_flight,
                    "latency_ms": live.latency_ms,
                    "p95_ms": live.p95_ms,
                })
            })
            .collect();
        Ok(json!({"object": "list", "data": data}))
    }
}

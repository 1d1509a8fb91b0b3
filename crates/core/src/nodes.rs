//! Compute nodes: on-premises inference servers (vLLM, Ollama, …) that
//! report themselves with `POST /api/v1/nodes/heartbeat`. A deployment
//! with `node:` is routed to only while its node's heartbeats arrive
//! within `nodes.timeout`; what a node reports (requests in flight, recent
//! latency) feeds `least_busy` and `score`.
//!
//! Replicas share heartbeats through the store: a heartbeat is stored (an
//! upsert that never moves time back) and kept here at once; every replica
//! reads the table every second ([`Gateway::poll_nodes`]), so a node that
//! talks to one replica is alive for all. A node going silent is logged,
//! counted (`switchyard_node_silences_total`), audited (`node.silent`) and
//! sent to the alert webhooks as a `node.silent` event.

use crate::access::audit::{Actor, AuditRecord, Origin};
use crate::error::{ErrorKind, GatewayError};
use crate::keys::digest;
use crate::store::NodeRow;
use crate::Gateway;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;
use switchyard_types::Tier;

/// What a node reports.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The node's name, as deployments' `node:` names it.
    pub node: String,
    #[serde(default)]
    pub tier: Option<Tier>,
    /// Models it serves (informational).
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub gpu_memory_free_mb: Option<u64>,
    /// 0–1.
    #[serde(default)]
    pub utilization: Option<f64>,
    /// Recent latency to the first token (or the whole answer), ms.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    pub tokens_per_s: Option<f64>,
    /// Requests it is serving now, from every gateway replica.
    #[serde(default)]
    pub in_flight: Option<u64>,
}

impl Heartbeat {
    fn check(&self) -> Result<(), GatewayError> {
        let bad = |param: &str, m: String| GatewayError::new(ErrorKind::InvalidRequest, m).with_param(param);
        let name_ok = !self.node.is_empty()
            && self.node.len() <= 100
            && self.node.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !name_ok {
            return Err(bad("node", "'node' must be 1–100 letters, digits, '-', '_' or '.'.".into()));
        }
        if self.models.len() > 256 || self.models.iter().any(|m| m.len() > 200) {
            return Err(bad("models", "'models' holds at most 256 names of at most 200 characters.".into()));
        }
        if self.utilization.is_some_and(|u| !(0.0..=1.0).contains(&u)) {
            return Err(bad("utilization", "'utilization' must be from 0 to 1.".into()));
        }
        for (field, v) in [("latency_ms", self.latency_ms), ("tokens_per_s", self.tokens_per_s)] {
            if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(bad(field, format!("'{field}' must be a number ≥ 0.")));
            }
        }
        Ok(())
    }
}

/// A node as this replica knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeState {
    /// Unix ms of its last heartbeat.
    pub seen_at: i64,
    pub beat: Heartbeat,
}

/// Every node's last heartbeat, and which were alive at the last poll.
#[derive(Default)]
pub struct Nodes {
    known: RwLock<HashMap<String, NodeState>>,
    /// Nodes alive at the last poll (to notice one going silent).
    alive: RwLock<HashMap<String, bool>>,
}

impl Nodes {
    /// The node's state if its last heartbeat is within `timeout` of `now`.
    pub fn live(&self, node: &str, now_ms: i64, timeout: Duration) -> Option<NodeState> {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        known.get(node).filter(|s| now_ms - s.seen_at <= timeout.as_millis() as i64).cloned()
    }

    /// Keeps a heartbeat unless a later one is known.
    pub fn record(&self, state: NodeState) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        let name = state.beat.node.clone();
        match known.get(&name) {
            Some(k) if k.seen_at > state.seen_at => {}
            _ => {
                known.insert(name, state);
            }
        }
    }

    pub fn all(&self) -> Vec<NodeState> {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<NodeState> = known.values().cloned().collect();
        all.sort_by(|a, b| a.beat.node.cmp(&b.beat.node));
        all
    }

    /// Nodes that were alive at the previous call and are not at `now`
    /// (each reported once per silence).
    fn newly_silent(&self, now_ms: i64, timeout: Duration) -> Vec<(String, i64)> {
        let states: Vec<(String, i64, bool)> = self
            .all()
            .into_iter()
            .map(|s| {
                let alive = now_ms - s.seen_at <= timeout.as_millis() as i64;
                (s.beat.node, s.seen_at, alive)
            })
            .collect();
        let mut was = self.alive.write().unwrap_or_else(|e| e.into_inner());
        let mut silent = Vec::new();
        for (name, seen_at, alive) in states {
            if was.insert(name.clone(), alive) == Some(true) && !alive {
                silent.push((name, seen_at));
            }
        }
        silent
    }
}

impl Gateway {
    /// `POST /api/v1/nodes/heartbeat`: `credential` must be `nodes.token`.
    pub async fn node_heartbeat(
        &self,
        credential: Option<&str>,
        body: &[u8],
    ) -> Result<serde_json::Value, GatewayError> {
        let rt = self.runtime();
        let token = rt.config.nodes.token.as_str();
        if token.is_empty() {
            return Err(GatewayError::new(
                ErrorKind::PermissionDenied,
                "Node registration is off: set nodes.token in the config.",
            ));
        }
        let presented = credential.unwrap_or_default();
        // Compare digests so timing does not leak the token.
        let diff = digest(presented).iter().zip(digest(token)).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        if presented.is_empty() || diff != 0 {
            return Err(GatewayError::new(ErrorKind::Unauthenticated, "Invalid node token."));
        }
        let beat: Heartbeat = serde_json::from_slice(body).map_err(|e| {
            GatewayError::new(ErrorKind::InvalidRequest, format!("The heartbeat could not be read: {e}."))
        })?;
        beat.check()?;
        let now = crate::now_unix_ms();
        let doc = serde_json::to_string(&beat).unwrap_or_default();
        let row = NodeRow { name: beat.node.clone(), seen_at: now, doc };
        if let Err(e) = self.store.put_node(&row).await {
            // Still alive here; other replicas learn it when the store is back.
            tracing::warn!(node = %beat.node, error = %e, "node heartbeat not stored");
        }
        self.metrics.node_heartbeats.inc(&[]);
        let deployments = deployments_on(&rt.config, &beat.node);
        let timeout = rt.config.nodes.timeout;
        self.nodes.record(NodeState { seen_at: now, beat: beat.clone() });
        Ok(serde_json::json!({
            "node": beat.node, "seen_at": now, "timeout_s": timeout.get().as_secs_f64(), "deployments": deployments,
        }))
    }

    /// `GET /api/v1/nodes`: every node known, alive or not (platform admin).
    pub fn nodes_list(&self) -> serde_json::Value {
        let rt = self.runtime();
        let timeout = rt.config.nodes.timeout.get();
        let now = crate::now_unix_ms();
        let data: Vec<serde_json::Value> = self
            .nodes
            .all()
            .into_iter()
            .map(|s| {
                let deployments = deployments_on(&rt.config, &s.beat.node);
                serde_json::json!({
                    "node": s.beat.node, "seen_at": s.seen_at, "age_s": (now - s.seen_at) as f64 / 1000.0,
                    "alive": now - s.seen_at <= timeout.as_millis() as i64, "deployments": deployments,
                    "heartbeat": s.beat,
                })
            })
            .collect();
        serde_json::json!({ "object": "list", "timeout_s": timeout.as_secs_f64(), "data": data })
    }

    /// Reads every node's last heartbeat from the store (what other
    /// replicas received) and reports nodes that went silent: logged,
    /// counted, audited and sent to the alert webhooks (`node.silent`).
    /// Called every second by the server.
    pub async fn poll_nodes(&self) {
        match self.store.nodes().await {
            Ok(rows) => {
                for row in rows {
                    match serde_json::from_str::<Heartbeat>(&row.doc) {
                        Ok(beat) => self.nodes.record(NodeState { seen_at: row.seen_at, beat }),
                        Err(e) => tracing::warn!(node = %row.name, error = %e, "stored heartbeat unreadable"),
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "nodes not read from the store"),
        }
        let rt = self.runtime();
        let timeout = rt.config.nodes.timeout.get();
        let timeout_s = timeout.as_secs_f64();
        let now = crate::now_unix_ms();
        for (node, seen_at) in self.nodes.newly_silent(now, timeout) {
            let silent_for = (now - seen_at) as f64 / 1000.0;
            tracing::warn!(node, silent_for_s = silent_for, "compute node silent: out of routing");
            self.metrics.node_silences.inc(&[]);
            let origin = Origin { ip: None, request_id: None };
            let record = AuditRecord::new(Actor::system(), "node.silent", &origin)
                .target("node", &node)
                .reason(format!("no heartbeat for {silent_for:.1} s (timeout {timeout_s} s)"));
            self.audit.send_or_drop(record);
            let deployments = deployments_on(&rt.config, &node);
            let serves = if deployments.is_empty() { "none".to_string() } else { deployments.join(", ") };
            self.alerts.event(crate::alerts::Event {
                event: "node.silent",
                subject: format!("node:{node}"),
                message: format!(
                    "Compute node {node} has sent no heartbeat for {silent_for:.1} s (timeout {timeout_s} s): \
                     out of routing (deployments: {serves})."
                ),
                details: serde_json::json!({
                    "node": node,
                    "last_seen_at": crate::budget::period::rfc3339(seen_at, self.ledger.zone()),
                    "silent_for_s": silent_for,
                    "timeout_s": timeout_s,
                    "deployments": deployments,
                }),
                fired_at: now,
            });
        }
    }
}

/// The deployments a node serves, by config.
fn deployments_on<'a>(config: &'a switchyard_config::Config, node: &str) -> Vec<&'a str> {
    config.deployments.iter().filter(|d| d.node.as_deref() == Some(node)).map(|d| d.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn state(node: &str, seen_at: i64) -> NodeState {
        NodeState { seen_at, beat: Heartbeat { node: node.into(), ..Heartbeat::default() } }
    }

    #[test]
    fn alive_within_the_timeout_and_silence_reported_once() {
        let nodes = Nodes::default();
        let t = Duration::from_secs(60);
        assert!(nodes.live("gpu-1", 0, t).is_none(), "never seen");
        nodes.record(state("gpu-1", 1_000));
        nodes.record(state("gpu-1", 500)); // late: an older heartbeat from the store
        assert_eq!(nodes.live("gpu-1", 61_000, t).map(|s| s.seen_at), Some(1_000));
        assert!(nodes.live("gpu-1", 61_001, t).is_none());
        assert!(nodes.newly_silent(2_000, t).is_empty(), "alive");
        assert_eq!(nodes.newly_silent(70_000, t), [("gpu-1".to_string(), 1_000)]);
        assert!(nodes.newly_silent(80_000, t).is_empty(), "reported once");
        nodes.record(state("gpu-1", 80_000));
        assert!(nodes.newly_silent(80_001, t).is_empty());
        assert_eq!(nodes.newly_silent(200_000, t).len(), 1, "silent again");
    }

    #[test]
    fn heartbeats_are_checked() {
        let ok = Heartbeat { node: "gpu-01.rack2".into(), utilization: Some(0.5), ..Heartbeat::default() };
        assert!(ok.check().is_ok());
        let e = Heartbeat { node: "bad name".into(), ..Heartbeat::default() }.check().unwrap_err();
        assert_eq!(e.param.as_deref(), Some("node"));
        let e = Heartbeat { utilization: Some(1.5), ..ok.clone() }.check().unwrap_err();
        assert_eq!(e.param.as_deref(), Some("utilization"));
        let e = Heartbeat { latency_ms: Some(f64::NAN), ..ok }.check().unwrap_err();
        assert_eq!(e.param.as_deref(), Some("latency_ms"));
    }
}

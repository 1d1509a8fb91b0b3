//! Fault injection for game days (docs/faults.md):
//! rules that make one deployment slow, failing, silent or cut off, added
//! and removed by the platform admin over `/api/v1/faults`, refused unless
//! `faults.enabled`.
//!
//! | kind | fields | what the attempt sees |
//! | --- | --- | --- |
//! | `latency` | `ms` | the upstream call is sent `ms` later (the deadlines count the wait) |
//! | `error` | `status`, `retry_after_s`? | no call: the error a real `status` answer would be, classified by [`ProviderError::from_status`] (retryable or not, as usual) |
//! | `hang` | — | no call, and no answer ever: the gateway's own deadlines end it (the request's `head_by` as for a real silent server) |
//! | `cut` | `after_chunks` | streams only: the body ends cleanly after N raw chunks, without its end event |
//! | `stall` | `after_chunks` | streams only: after N raw chunks nothing more arrives; the stream stays open |
//!
//! `error` and `hang` rules fail the deployment's health probe too, so a
//! "provider down" drill is seen by the active health checks as well.
//!
//! Rules live in this process's memory: **each replica has its own**, and
//! a restart forgets them. A game day targets one replica, or repeats the
//! call on each. A rule applies to `share` of the deployment's attempts
//! (drawn per attempt) until `expires_at`; then it no longer applies, and
//! is dropped at the next change. With several rules on one deployment,
//! the `latency` rules that hit add up, and of the others the oldest that
//! hits applies. Turning `faults.enabled` off drops every rule.
//!
//! Injection is a wrapper provider, [`Faulty`], that the runtime puts
//! around every deployment's provider while `faults.enabled`: an injected
//! failure goes through the same attempt loop, deadlines, fall-through,
//! breakers and accounting as a real one.

use crate::access::audit::{AuditRecord, Origin};
use crate::access::Principal;
use crate::error::{ErrorKind, GatewayError};
use crate::Gateway;
use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use switchyard_config::Config;
use switchyard_providers::{
    ProbeFuture, Provider, ProviderError, ProviderErrorKind, SendFuture, UpstreamBody, UpstreamRequest,
    UpstreamResponse,
};
use switchyard_telemetry::Metrics;
use tokio::time::Instant;

/// The longest a rule may stay in force.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The longest `latency` (beyond it, `hang` says what is meant).
const MAX_LATENCY_MS: u64 = 3_600_000;
const MAX_AFTER_CHUNKS: u64 = 1_000_000;
const MAX_REASON_CHARS: usize = 500;

/// What a rule does (JSON: `"kind"` and its fields, beside the rule's).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    Latency {
        ms: u64,
    },
    Error {
        status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_s: Option<u64>,
    },
    Hang,
    Cut {
        after_chunks: u64,
    },
    Stall {
        after_chunks: u64,
    },
}

impl FaultKind {
    /// The metric label and the name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency { .. } => "latency",
            FaultKind::Error { .. } => "error",
            FaultKind::Hang => "hang",
            FaultKind::Cut { .. } => "cut",
            FaultKind::Stall { .. } => "stall",
        }
    }

    /// Whether it touches an attempt (`cut` and `stall`: streams only).
    fn applies(self, stream: bool) -> bool {
        stream || !matches!(self, FaultKind::Cut { .. } | FaultKind::Stall { .. })
    }

    /// The fields each kind takes besides `kind`.
    fn fields(kind: &str) -> Option<&'static [&'static str]> {
        Some(match kind {
            "latency" => &["ms"],
            "error" => &["status", "retry_after_s"],
            "hang" => &[],
            "cut" | "stall" => &["after_chunks"],
            _ => return None,
        })
    }
}

/// One rule in force.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// `flt_…`
    pub id: String,
    /// A configured deployment's name.
    pub deployment: String,
    #[serde(flatten)]
    pub kind: FaultKind,
    /// The part (0–1) of the deployment's attempts it applies to.
    pub share: f64,
    /// Unix ms; from then on it no longer applies.
    pub expires_at: i64,
    pub created_by: String,
    /// Unix ms.
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Rule {
    fn view(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        v["object"] = json!("fault");
        v
    }

    fn hits(&self, deployment: &str, now: i64) -> bool {
        // `f64()` is in [0, 1): share 0 never hits, share 1 always does.
        self.deployment == deployment && self.expires_at > now && fastrand::f64() < self.share
    }

    /// For the audit entry and the log: "error 503 on chat-a, share 0.5, 300s".
    fn describe(&self) -> String {
        let what = match self.kind {
            FaultKind::Latency { ms } => format!("latency {ms} ms"),
            FaultKind::Error { status, .. } => format!("error {status}"),
            FaultKind::Hang => "hang".into(),
            FaultKind::Cut { after_chunks } => format!("cut after {after_chunks} chunks"),
            FaultKind::Stall { after_chunks } => format!("stall after {after_chunks} chunks"),
        };
        let secs = (self.expires_at - self.created_at) / 1000;
        let mut out = format!("{what} on {}, share {}, for {secs}s", self.deployment, self.share);
        if let Some(r) = &self.reason {
            out.push_str(": ");
            out.push_str(r);
        }
        out
    }
}

/// The rules of this process, keyed by deployment name so they survive
/// reloads. Read without a lock on every attempt; replaced whole on change.
pub struct Faults {
    /// In creation order.
    rules: ArcSwap<Vec<Arc<Rule>>>,
    metrics: Arc<Metrics>,
}

/// What one attempt gets: a delay, then at most one other rule.
#[derive(Default)]
struct Plan {
    delay_ms: u64,
    latency_rules: u64,
    then: Option<Arc<Rule>>,
}

impl Faults {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Faults { rules: ArcSwap::from_pointee(Vec::new()), metrics }
    }

    /// Rules not yet expired at `now` (unix ms), oldest first.
    pub fn active(&self, now: i64) -> Vec<Arc<Rule>> {
        self.rules.load().iter().filter(|r| r.expires_at > now).cloned().collect()
    }

    /// Adds `rule` unless `max` rules are in force; then answers how many are.
    fn add(&self, rule: Rule, max: usize, now: i64) -> Result<(), usize> {
        let rule = Arc::new(rule);
        let mut full = None;
        self.rules.rcu(|rules| {
            let mut next: Vec<Arc<Rule>> = rules.iter().filter(|r| r.expires_at > now).cloned().collect();
            full = (next.len() >= max).then_some(next.len());
            if full.is_none() {
                next.push(rule.clone());
            }
            next
        });
        full.map_or(Ok(()), Err)
    }

    /// Removes a rule in force; `None` when there is none by that id.
    fn remove(&self, id: &str, now: i64) -> Option<Arc<Rule>> {
        let mut removed = None;
        self.rules.rcu(|rules| {
            removed = rules.iter().find(|r| r.id == id && r.expires_at > now).cloned();
            rules.iter().filter(|r| r.id != id && r.expires_at > now).cloned().collect::<Vec<_>>()
        });
        removed
    }

    /// Drops every rule; how many there were.
    pub fn clear(&self) -> usize {
        self.rules.swap(Arc::new(Vec::new())).len()
    }

    /// The draw for one attempt on `deployment`.
    fn plan(&self, deployment: &str, stream: bool, now: i64) -> Plan {
        let rules = self.rules.load();
        let mut plan = Plan::default();
        for r in rules.iter().filter(|r| r.kind.applies(stream) && r.hits(deployment, now)) {
            match r.kind {
                FaultKind::Latency { ms } => {
                    plan.delay_ms = plan.delay_ms.saturating_add(ms);
                    plan.latency_rules += 1;
                }
                _ if plan.then.is_none() => plan.then = Some(r.clone()),
                _ => {}
            }
        }
        plan
    }

    /// The `error` or `hang` rule that fails a health probe, if one hits.
    fn probe_rule(&self, deployment: &str, now: i64) -> Option<Arc<Rule>> {
        let rules = self.rules.load();
        rules
            .iter()
            .filter(|r| matches!(r.kind, FaultKind::Error { .. } | FaultKind::Hang))
            .find(|r| r.hits(deployment, now))
            .cloned()
    }

    fn count(&self, deployment: &str, kind: &'static str, n: u64) {
        self.metrics.faults_injected.add(&[deployment, kind], n);
    }
}

/// A deployment's provider with the fault rules in front of it.
pub struct Faulty {
    pub inner: Arc<dyn Provider>,
    pub deployment: String,
    pub faults: Arc<Faults>,
}

impl Faulty {
    /// `provider` itself when `faults` is `None` (injection disabled).
    pub fn wrap(provider: Arc<dyn Provider>, deployment: &str, faults: Option<&Arc<Faults>>) -> Arc<dyn Provider> {
        match faults {
            Some(f) => Arc::new(Faulty { inner: provider, deployment: deployment.to_string(), faults: f.clone() }),
            None => provider,
        }
    }

    async fn inject(&self, plan: Plan, request: UpstreamRequest) -> Result<UpstreamResponse, ProviderError> {
        if plan.latency_rules > 0 {
            self.faults.count(&self.deployment, "latency", plan.latency_rules);
            let delay = Duration::from_millis(plan.delay_ms);
            match request.head_by.filter(|by| *by < Instant::now() + delay) {
                Some(by) => return Err(silent_until(Some(by)).await),
                None => tokio::time::sleep(delay).await,
            }
        }
        let Some(rule) = plan.then else { return self.inner.send(request).await };
        let after = match rule.kind {
            // Never: a latency rule is a delay, above.
            FaultKind::Latency { .. } => return self.inner.send(request).await,
            FaultKind::Error { status, retry_after_s } => {
                self.faults.count(&self.deployment, "error", 1);
                return Err(injected_error(&rule, status, retry_after_s));
            }
            FaultKind::Hang => {
                self.faults.count(&self.deployment, "hang", 1);
                return Err(silent_until(request.head_by).await);
            }
            FaultKind::Cut { after_chunks } | FaultKind::Stall { after_chunks } => after_chunks,
        };
        let mut response = self.inner.send(request).await?;
        // Replaced in place: the response's other fields stay as they came.
        response.body = match std::mem::replace(&mut response.body, UpstreamBody::Full(Bytes::new())) {
            UpstreamBody::Stream(inner) => UpstreamBody::Stream(Box::pin(Chunks {
                inner,
                left: after,
                stall: matches!(rule.kind, FaultKind::Stall { .. }),
                count: Some((self.faults.clone(), self.deployment.clone())),
            })),
            full => full,
        };
        Ok(response)
    }
}

impl Provider for Faulty {
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_> {
        let plan = self.faults.plan(&self.deployment, request.stream, crate::now_unix_ms());
        if plan.latency_rules == 0 && plan.then.is_none() {
            return self.inner.send(request);
        }
        Box::pin(self.inject(plan, request))
    }

    fn probe(&self) -> ProbeFuture<'_> {
        let Some(rule) = self.faults.probe_rule(&self.deployment, crate::now_unix_ms()) else {
            return self.inner.probe();
        };
        Box::pin(async move {
            match rule.kind {
                FaultKind::Error { status, retry_after_s } => {
                    self.faults.count(&self.deployment, "error", 1);
                    Err(injected_error(&rule, status, retry_after_s))
                }
                _ => {
                    self.faults.count(&self.deployment, "hang", 1);
                    std::future::pending().await
                }
            }
        })
    }
}

/// A server that does not answer: the request's `head_by` fails it as the
/// HTTP layer fails a real one (a timeout); without one, it waits forever
/// (the attempt loop's deadlines end it).
async fn silent_until(head_by: Option<Instant>) -> ProviderError {
    match head_by {
        Some(by) => {
            tokio::time::sleep_until(by).await;
            ProviderError::new(
                ProviderErrorKind::Timeout,
                "no response head before the first_token deadline (fault injected)",
            )
        }
        None => std::future::pending().await,
    }
}

/// The error a real `status` answer would be, with a small OpenAI-shaped
/// body naming the rule.
fn injected_error(rule: &Rule, status: u16, retry_after_s: Option<u64>) -> ProviderError {
    let message = format!("fault injected by rule {} on deployment {}", rule.id, rule.deployment);
    let body = json!({"error": {"message": message, "code": "fault_injected"}});
    ProviderError::from_status(status, body.to_string().as_bytes(), retry_after_s.map(Duration::from_secs))
}

/// A stream body that ends (`cut`) or goes silent (`stall`) after `left`
/// more raw chunks.
struct Chunks {
    inner: BoxStream<'static, Result<Bytes, ProviderError>>,
    left: u64,
    stall: bool,
    /// Where to count the fault (taken when it takes effect: once).
    count: Option<(Arc<Faults>, String)>,
}

impl Stream for Chunks {
    type Item = Result<Bytes, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.left == 0 {
            if let Some((faults, deployment)) = self.count.take() {
                faults.count(&deployment, if self.stall { "stall" } else { "cut" }, 1);
            }
            // Pending without a wake-up: silent until the reader gives up
            // (its idle deadline) and drops the stream, and the upstream
            // connection with it.
            return if self.stall { Poll::Pending } else { Poll::Ready(None) };
        }
        let next = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(Some(_)) = &next {
            self.left -= 1;
        }
        next
    }
}

/// A new rule as asked for, checked against the running config.
#[derive(Debug, PartialEq)]
struct Asked {
    deployment: String,
    kind: FaultKind,
    share: f64,
    duration: Duration,
    reason: Option<String>,
}

fn bad(param: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, message).with_param(param)
}

/// Reads `POST /api/v1/faults`'s body: `deployment`, `kind` and its
/// fields, `duration`, optional `share` and `reason`. The first problem is
/// a 400 naming its field.
fn parse(body: &[u8], config: &Config) -> Result<Asked, GatewayError> {
    const COMMON: &[&str] = &["deployment", "kind", "share", "duration", "reason"];
    const EXAMPLE: &str = r#"{"deployment": "…", "kind": "error", "status": 503, "duration": "5m"}"#;
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GatewayError::new(ErrorKind::InvalidRequest, format!("Expected a JSON object like {EXAMPLE}: {e}."))
    })?;
    let Value::Object(o) = value else {
        return Err(GatewayError::new(ErrorKind::InvalidRequest, format!("Expected a JSON object like {EXAMPLE}.")));
    };
    let kind_name = match o.get("kind") {
        Some(Value::String(k)) => k.as_str(),
        Some(_) => return Err(bad("kind", "`kind` must be a string: latency, error, hang, cut or stall.")),
        None => return Err(bad("kind", "`kind` is required: latency, error, hang, cut or stall.")),
    };
    let Some(fields) = FaultKind::fields(kind_name) else {
        return Err(bad(
            "kind",
            format!("Unknown fault kind `{kind_name}`: expected latency, error, hang, cut or stall."),
        ));
    };
    if let Some(k) = o.keys().find(|k| !COMMON.contains(&k.as_str()) && !fields.contains(&k.as_str())) {
        let takes = if fields.is_empty() { "no fields of its own".to_string() } else { fields.join(", ") };
        return Err(bad(k, format!("Unknown field `{k}` for kind `{kind_name}` (it takes {takes}).")));
    }
    let deployment = match o.get("deployment") {
        Some(Value::String(d)) => d.clone(),
        _ => return Err(bad("deployment", "`deployment` is required: the name of a configured deployment.")),
    };
    if !config.deployments.iter().any(|d| d.name == deployment) {
        let names: Vec<&str> = config.deployments.iter().map(|d| d.name.as_str()).collect();
        return Err(bad(
            "deployment",
            format!("No deployment named `{deployment}` in the running config (there are: {}).", names.join(", ")),
        ));
    }
    let kind = match kind_name {
        "latency" => FaultKind::Latency { ms: whole(&o, "ms", 1, MAX_LATENCY_MS)? },
        "error" => {
            let status = whole(&o, "status", 400, 599)? as u16;
            let retry_after_s =
                o.contains_key("retry_after_s").then(|| whole(&o, "retry_after_s", 0, 86_400)).transpose()?;
            FaultKind::Error { status, retry_after_s }
        }
        "hang" => FaultKind::Hang,
        "cut" => FaultKind::Cut { after_chunks: whole(&o, "after_chunks", 0, MAX_AFTER_CHUNKS)? },
        _ => FaultKind::Stall { after_chunks: whole(&o, "after_chunks", 0, MAX_AFTER_CHUNKS)? },
    };
    let share = match o.get("share") {
        None => 1.0,
        Some(v) => match v.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => x,
            _ => return Err(bad("share", format!("`share` must be a number from 0 to 1, found {v}."))),
        },
    };
    let duration = match o.get("duration") {
        None => return Err(bad("duration", "`duration` is required, e.g. \"5m\" (at most 24h): rules always expire.")),
        Some(v) => serde_json::from_value::<switchyard_config::Duration>(v.clone())
            .map_err(|e| bad("duration", format!("`duration`: {e}.")))?
            .get(),
    };
    if duration.is_zero() || duration > MAX_DURATION {
        return Err(bad("duration", "`duration` must be more than 0 and at most 24h."));
    }
    let reason = match o.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) if r.chars().count() <= MAX_REASON_CHARS => Some(r.clone()),
        Some(_) => {
            return Err(bad("reason", format!("`reason` must be a string of at most {MAX_REASON_CHARS} characters.")))
        }
    };
    Ok(Asked { deployment, kind, share, duration, reason })
}

/// A whole number field within `min..=max`.
fn whole(o: &Map<String, Value>, field: &str, min: u64, max: u64) -> Result<u64, GatewayError> {
    match o.get(field).map(|v| (v, v.as_u64())) {
        Some((_, Some(n))) if (min..=max).contains(&n) => Ok(n),
        Some((v, _)) => Err(bad(field, format!("`{field}` must be a whole number from {min} to {max}, found {v}."))),
        None => Err(bad(field, format!("`{field}` is required (a whole number from {min} to {max})."))),
    }
}

impl Gateway {
    /// The platform admin, on a gateway with `faults.enabled`.
    fn faults_allowed(&self, who: &Principal) -> Result<Arc<crate::runtime::Runtime>, GatewayError> {
        if !matches!(who, Principal::Bootstrap) {
            return Err(GatewayError::new(
                ErrorKind::PermissionDenied,
                "Fault injection is the platform admin's (the bootstrap token).",
            ));
        }
        let rt = self.runtime();
        if !rt.config.faults.enabled {
            return Err(GatewayError::new(
                ErrorKind::PermissionDenied,
                "Fault injection is disabled on this gateway: set `faults.enabled: true` in the config to allow it.",
            ));
        }
        Ok(rt)
    }

    /// `GET /api/v1/faults`: the rules in force on this replica.
    pub fn faults_list(&self, who: &Principal) -> Result<Value, GatewayError> {
        self.faults_allowed(who)?;
        let data: Vec<Value> = self.faults.active(crate::now_unix_ms()).iter().map(|r| r.view()).collect();
        Ok(json!({"object": "list", "data": data}))
    }

    /// `POST /api/v1/faults`: a new rule on this replica, audited
    /// `fault.add`.
    pub async fn fault_add(&self, who: &Principal, body: &[u8], origin: &Origin) -> Result<Value, GatewayError> {
        let rt = self.faults_allowed(who)?;
        let asked = parse(body, &rt.config)?;
        let now = crate::now_unix_ms();
        let rule = Rule {
            id: crate::ids::time_ordered("flt"),
            deployment: asked.deployment,
            kind: asked.kind,
            share: asked.share,
            expires_at: now.saturating_add(asked.duration.as_millis() as i64),
            created_by: who.actor().id.unwrap_or_else(|| "bootstrap".into()),
            created_at: now,
            reason: asked.reason,
        };
        let view = rule.view();
        let what = rule.describe();
        let id = rule.id.clone();
        let max = rt.config.faults.max_rules;
        self.faults.add(rule, max, now).map_err(|n| {
            GatewayError::new(
                ErrorKind::Conflict,
                format!(
                    "{n} fault rules are in force, the most `faults.max_rules` allows: remove one (DELETE /api/v1/faults/{{id}}) or wait for one to expire."
                ),
            )
        })?;
        let mut record = AuditRecord::new(who.actor(), "fault.add", origin).target("fault", &id).reason(what.clone());
        record.after = Some(view.clone());
        self.audit.send_or_drop(record);
        tracing::warn!(fault = %id, "fault rule added: {what}");
        Ok(view)
    }

    /// `DELETE /api/v1/faults/{id}`: removes a rule in force, audited
    /// `fault.remove`.
    pub fn fault_remove(&self, who: &Principal, id: &str, origin: &Origin) -> Result<Value, GatewayError> {
        self.faults_allowed(who)?;
        let Some(rule) = self.faults.remove(id, crate::now_unix_ms()) else {
            return Err(GatewayError::new(
                ErrorKind::NotFound,
                format!("No fault rule `{id}` in force on this replica."),
            ));
        };
        let mut view = rule.view();
        let mut record =
            AuditRecord::new(who.actor(), "fault.remove", origin).target("fault", id).reason(rule.describe());
        record.before = Some(view.clone());
        self.audit.send_or_drop(record);
        tracing::info!(fault = %id, "fault rule removed: {}", rule.describe());
        view["deleted"] = json!(true);
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::unreachable)]
    use super::*;
    use futures_util::stream;

    fn config() -> Config {
        let yaml = "providers:\n  - { name: p, kind: openai_compatible, base_url: \"http://127.0.0.1:9/v1\" }\n\
                    deployments:\n  - { name: chat-a, provider: p, model: m }\n\
                    routes:\n  - { name: r, targets: [chat-a] }\n";
        switchyard_config::load_str(yaml, "t.yaml", &std::collections::HashMap::new()).unwrap()
    }

    fn asked(body: Value) -> Result<Asked, GatewayError> {
        parse(body.to_string().as_bytes(), &config())
    }

    fn param(body: Value) -> String {
        asked(body).err().unwrap().param.unwrap_or_default()
    }

    fn rule(id: &str, kind: FaultKind, share: f64, expires_at: i64) -> Rule {
        Rule {
            id: id.into(),
            deployment: "chat-a".into(),
            kind,
            share,
            expires_at,
            created_by: "bootstrap".into(),
            created_at: 0,
            reason: None,
        }
    }

    fn faults() -> Faults {
        Faults::new(Arc::new(Metrics::new()))
    }

    #[test]
    fn rules_are_read_with_their_kind_fields_and_defaults() {
        let a = asked(
            json!({"deployment": "chat-a", "kind": "error", "status": 503, "retry_after_s": 2, "duration": "5m"}),
        )
        .unwrap();
        assert_eq!(a.kind, FaultKind::Error { status: 503, retry_after_s: Some(2) });
        assert_eq!((a.share, a.duration), (1.0, Duration::from_secs(300)));
        let a = asked(json!({"deployment": "chat-a", "kind": "latency", "ms": 300, "share": 0.25, "duration": 60}))
            .unwrap();
        assert_eq!((a.kind, a.share), (FaultKind::Latency { ms: 300 }, 0.25));
        let a = asked(
            json!({"deployment": "chat-a", "kind": "stall", "after_chunks": 3, "duration": "1h", "reason": "drill"}),
        );
        assert_eq!(a.unwrap().kind, FaultKind::Stall { after_chunks: 3 });
        assert_eq!(
            asked(json!({"deployment": "chat-a", "kind": "hang", "duration": "24h"})).unwrap().kind,
            FaultKind::Hang
        );
        // The API shows a rule as it was asked for.
        let v = rule("flt_1", FaultKind::Cut { after_chunks: 2 }, 1.0, 5).view();
        assert_eq!(
            (v["kind"].clone(), v["after_chunks"].clone(), v["object"].clone()),
            (json!("cut"), json!(2), json!("fault"))
        );
    }

    #[test]
    fn bad_rules_name_their_field() {
        let base = |extra: Value| {
            let mut b = json!({"deployment": "chat-a", "kind": "error", "status": 503, "duration": "5m"});
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        assert_eq!(param(base(json!({"deployment": "nope"}))), "deployment");
        assert!(asked(base(json!({"deployment": "nope"}))).err().unwrap().message.contains("chat-a"));
        assert_eq!(param(base(json!({"share": 1.5}))), "share");
        assert_eq!(param(base(json!({"share": -0.1}))), "share");
        assert_eq!(param(base(json!({"kind": "flood"}))), "kind");
        assert_eq!(param(json!({"deployment": "chat-a", "status": 503, "duration": "5m"})), "kind");
        assert_eq!(param(json!({"deployment": "chat-a", "kind": "error", "status": 503})), "duration");
        assert_eq!(param(base(json!({"duration": "25h"}))), "duration");
        assert_eq!(param(base(json!({"duration": "0s"}))), "duration");
        assert_eq!(param(base(json!({"duration": "soon"}))), "duration");
        assert_eq!(param(base(json!({"status": 302}))), "status");
        assert_eq!(param(base(json!({"status": 600}))), "status");
        assert_eq!(param(base(json!({"status": "503"}))), "status");
        assert_eq!(param(base(json!({"ms": 10}))), "ms", "a field of another kind");
        assert_eq!(param(base(json!({"typo": 1}))), "typo");
        assert_eq!(param(json!({"deployment": "chat-a", "kind": "latency", "duration": "5m"})), "ms");
        assert_eq!(param(json!({"deployment": "chat-a", "kind": "cut", "duration": "5m"})), "after_chunks");
        let e = parse(b"[1]", &config()).err().unwrap();
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
    }

    #[test]
    fn share_zero_never_applies_and_one_always_does() {
        let f = faults();
        f.add(rule("never", FaultKind::Error { status: 500, retry_after_s: None }, 0.0, i64::MAX), 10, 0).unwrap();
        assert!((0..1000).all(|_| f.plan("chat-a", false, 1).then.is_none()));
        f.add(rule("always", FaultKind::Hang, 1.0, i64::MAX), 10, 0).unwrap();
        assert!((0..1000).all(|_| f.plan("chat-a", false, 1).then.is_some_and(|r| r.id == "always")));
        assert!(f.plan("chat-b", false, 1).then.is_none(), "other deployments are untouched");
    }

    #[test]
    fn latencies_add_up_the_oldest_other_rule_wins_and_cuts_spare_whole_answers() {
        let f = faults();
        f.add(rule("l1", FaultKind::Latency { ms: 100 }, 1.0, i64::MAX), 10, 0).unwrap();
        f.add(rule("cut", FaultKind::Cut { after_chunks: 1 }, 1.0, i64::MAX), 10, 0).unwrap();
        f.add(rule("l2", FaultKind::Latency { ms: 50 }, 1.0, i64::MAX), 10, 0).unwrap();
        f.add(rule("err", FaultKind::Error { status: 503, retry_after_s: None }, 1.0, i64::MAX), 10, 0).unwrap();
        let p = f.plan("chat-a", true, 1);
        assert_eq!((p.delay_ms, p.latency_rules, p.then.unwrap().id.as_str()), (150, 2, "cut"));
        assert_eq!(f.plan("chat-a", false, 1).then.unwrap().id, "err", "cut is for streams only");
    }

    #[test]
    fn expired_rules_no_longer_apply_and_make_room() {
        let f = faults();
        f.add(rule("old", FaultKind::Hang, 1.0, 100), 1, 0).unwrap();
        assert_eq!(f.add(rule("second", FaultKind::Hang, 1.0, 500), 1, 50), Err(1), "max_rules");
        assert!(f.plan("chat-a", false, 99).then.is_some());
        assert!(f.plan("chat-a", false, 100).then.is_none());
        assert!(f.probe_rule("chat-a", 100).is_none());
        assert!(f.active(100).is_empty());
        f.add(rule("second", FaultKind::Hang, 1.0, 500), 1, 100).unwrap();
        assert_eq!(f.active(100).len(), 1, "the expired one was dropped");
        assert!(f.remove("old", 100).is_none());
        assert_eq!(f.remove("second", 100).unwrap().id, "second");
        assert_eq!(f.clear(), 0);
    }

    /// A provider whose streams send `chunks` chunks and end.
    struct Fake {
        chunks: usize,
    }

    impl Provider for Fake {
        fn send(&self, request: UpstreamRequest) -> SendFuture<'_> {
            let body = if request.stream {
                let items: Vec<Result<Bytes, ProviderError>> =
                    (0..self.chunks).map(|i| Ok(Bytes::from(format!("data: {i}\n\n")))).collect();
                UpstreamBody::Stream(stream::iter(items).boxed())
            } else {
                UpstreamBody::Full(Bytes::from_static(b"{}"))
            };
            Box::pin(async move { Ok(UpstreamResponse { status: 200, body, rate_limits: Vec::new() }) })
        }

        fn probe(&self) -> ProbeFuture<'_> {
            Box::pin(async { Ok(()) })
        }
    }

    fn faulty(kind: FaultKind) -> (Faulty, Arc<Faults>) {
        let f = Arc::new(faults());
        f.add(rule("flt_t", kind, 1.0, i64::MAX), 10, 0).unwrap();
        (Faulty { inner: Arc::new(Fake { chunks: 5 }), deployment: "chat-a".into(), faults: f.clone() }, f)
    }

    fn request(stream: bool) -> UpstreamRequest {
        UpstreamRequest {
            operation: switchyard_providers::Operation::Chat,
            model: Arc::from("m"),
            body: Bytes::new(),
            stream,
            request_id: "req_1".into(),
            head_by: None,
        }
    }

    async fn stream_of(p: &Faulty) -> BoxStream<'static, Result<Bytes, ProviderError>> {
        match p.send(request(true)).await.unwrap().body {
            UpstreamBody::Stream(s) => s,
            UpstreamBody::Full(_) => unreachable!("a stream was asked for"),
        }
    }

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn cut_ends_the_stream_after_n_chunks() {
        let (p, f) = faulty(FaultKind::Cut { after_chunks: 2 });
        let got: Vec<_> = tokio::time::timeout(SHORT, stream_of(&p).await.collect::<Vec<_>>()).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(f.metrics.faults_injected.get(&["chat-a", "cut"]), 1);
        // A whole answer is untouched.
        assert!(matches!(p.send(request(false)).await.unwrap().body, UpstreamBody::Full(_)));
    }

    #[tokio::test]
    async fn stall_keeps_the_stream_open_and_silent() {
        let (p, f) = faulty(FaultKind::Stall { after_chunks: 1 });
        let mut s = stream_of(&p).await;
        assert!(s.next().await.unwrap().is_ok());
        assert!(tokio::time::timeout(SHORT, s.next()).await.is_err(), "nothing more, and no end");
        assert_eq!(f.metrics.faults_injected.get(&["chat-a", "stall"]), 1);
    }

    #[tokio::test]
    async fn error_is_classified_as_a_real_answer_and_fails_the_probe() {
        let (p, f) = faulty(FaultKind::Error { status: 503, retry_after_s: Some(3) });
        let e = p.send(request(false)).await.err().unwrap();
        assert_eq!((e.status, e.retryable(), e.retry_after), (Some(503), true, Some(Duration::from_secs(3))));
        assert!(e.message.contains("flt_t"), "{}", e.message);
        assert!(p.probe().await.is_err());
        assert_eq!(f.metrics.faults_injected.get(&["chat-a", "error"]), 2);
        let (p, _) = faulty(FaultKind::Error { status: 400, retry_after_s: None });
        assert!(!p.send(request(false)).await.err().unwrap().retryable(), "a 4xx is the caller's, as usual");
    }

    #[tokio::test]
    async fn hang_never_answers_and_latency_delays() {
        let (p, _) = faulty(FaultKind::Hang);
        assert!(tokio::time::timeout(SHORT, p.send(request(false))).await.is_err());
        assert!(tokio::time::timeout(SHORT, p.probe()).await.is_err());
        // A head deadline ends it as it ends a real silent server.
        let by = Instant::now() + Duration::from_millis(20);
        let e = tokio::time::timeout(SHORT, p.send(UpstreamRequest { head_by: Some(by), ..request(false) }));
        assert_eq!(e.await.unwrap().err().unwrap().kind, ProviderErrorKind::Timeout);
        assert!(Instant::now() >= by);
        let (p, f) = faulty(FaultKind::Latency { ms: 30 });
        let start = std::time::Instant::now();
        assert!(p.send(request(false)).await.is_ok());
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(p.probe().await.is_ok(), "latency leaves probes alone");
        assert_eq!(f.metrics.faults_injected.get(&["chat-a", "latency"]), 1);
        // Slower than the head deadline: a timeout at the deadline.
        let by = Instant::now() + Duration::from_millis(10);
        let e = p.send(UpstreamRequest { head_by: Some(by), ..request(false) }).await.err().unwrap();
        assert_eq!(e.kind, ProviderErrorKind::Timeout);
        assert!(Instant::now() < by + Duration::from_millis(15));
    }

    #[tokio::test]
    async fn the_runtime_puts_rules_in_front_of_providers_only_when_enabled() {
        use crate::runtime::{BuildContext, Runtime};
        let f = Arc::new(faults());
        f.add(rule("flt_rt", FaultKind::Error { status: 503, retry_after_s: None }, 1.0, i64::MAX), 10, 0).unwrap();
        let status = |enabled: bool| {
            let mut c = config();
            c.faults.enabled = enabled;
            let rt = Runtime::build_with_faults(c, BuildContext { sim_addr: None, previous: None }, Some(&f)).unwrap();
            let provider = rt.routes["r"].targets[0].provider.clone();
            async move { provider.send(request(false)).await.err().and_then(|e| e.status) }
        };
        assert_eq!(status(true).await, Some(503));
        assert_eq!(status(false).await, None, "disabled: the real provider (nothing listens there)");
    }
}

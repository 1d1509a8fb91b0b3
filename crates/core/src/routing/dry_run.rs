//! `POST /api/v1/route`: which deployments would serve this request, in
//! what order, and why — without calling any. The caller's key is the one
//! the request is routed as (its allowed routes, classification default,
//! tenant regions); the body is the request itself, in OpenAI's format or
//! (`?format=anthropic`) Anthropic's; `x-switchyard-classification` applies
//! as on `/v1`. Nothing changes: no limits or budgets are touched and the
//! weighted rotation does not advance.

use super::classify::classify;
use super::split::Subject;
use super::{evaluate, explain, needs::Needs, Request};
use crate::access::audit::Origin;
use crate::error::GatewayError;
use crate::pipeline::{admit, resolve};
use crate::Gateway;
use bytes::Bytes;
use switchyard_providers::Operation;
use switchyard_translate::Format;

/// The request headers the dry run reads, as on `/v1`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DryRunHeaders<'a> {
    pub classification: Option<&'a str>,
    pub scenario: Option<&'a str>,
    /// `x-switchyard-user` (a split's sticky subject).
    pub user: Option<&'a str>,
    /// `x-switchyard-task`.
    pub task: Option<&'a str>,
}

impl Gateway {
    pub fn dry_run(
        &self,
        credential: Option<&str>,
        origin: Origin,
        headers: DryRunHeaders<'_>,
        dialect: Format,
        body: &[u8],
    ) -> Result<Bytes, GatewayError> {
        let key = self.authenticate(credential, || origin)?;
        let rt = self.runtime();
        // The route decides the operation: an embeddings route reads `input`.
        let model = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("model").and_then(|m| m.as_str()).map(str::to_string));
        let op = match model.as_deref().and_then(|m| rt.routes.get(m)) {
            Some(r) if r.embeddings => Operation::Embeddings,
            _ => Operation::Chat,
        };
        let head = admit::parse(op, dialect, body)?;
        let route = resolve::route(&rt, &key, &head.model, op)?;
        let needs = Needs::of(op, &head, body, rt.config.rate_limits.default_max_tokens);
        let (route, task) = super::tasks::resolve(&rt, route, headers.task, &needs, body)?;
        let class = classify(headers.classification, &key, &rt.config.classification, body)?;
        let user = headers.user.map(crate::pipeline::attribution::parse_user).transpose()?.flatten();
        let request = Request {
            needs,
            class,
            regions: key.tenant.as_ref().and_then(|t| t.allowed_regions.as_deref()),
            subject: Subject { user: user.as_deref(), key: &key.key.id, tenant: key.tenant_id() },
            scenario: headers.scenario,
            nodes: Some((&self.nodes, rt.config.nodes.timeout.get())),
            resilience: Some(&rt.config.resilience),
        };
        let evaluation = evaluate(&route, &request, false);
        let mut out = explain::to_json(&route, &request, &evaluation);
        if let Some(t) = task {
            out["task"] = serde_json::json!({"name": t.task, "chosen_by": t.by, "via": t.via});
        }
        if evaluation.eligible == 0 {
            let refusal = super::refusal(&route, &request, &evaluation);
            out["refusal"] = serde_json::json!({
                "status": refusal.status(),
                "code": refusal.code(),
                "message": refusal.message,
            });
        }
        Ok(Bytes::from(out.to_string()))
    }
}

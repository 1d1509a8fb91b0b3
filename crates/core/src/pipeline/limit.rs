//! Rate limits at admission: the caller's key, team and tenant limits
//! (from the directory), the route's and the endpoint's (from config, per
//! tenant), checked all at once by the limiter. Tokens are estimated here
//! (prompt bytes / 4 + `max_tokens`) and corrected when the real usage is
//! known ([`super::account::Account`] reconciles).

use super::admit::Head;
use crate::access::Caller;
use crate::error::{ErrorKind, GatewayError};
use crate::limits::{headers, Admission, Check, Limits, NotAdmitted};
use crate::routing::needs::Needs;
use crate::runtime::{Route, Runtime};
use crate::Gateway;
use std::sync::Arc;
use switchyard_providers::Operation;

/// Bytes per token of the admission estimate (a prompt's JSON is rarely
/// denser than this; the real count replaces it afterwards).
const BYTES_PER_TOKEN: usize = 4;

impl Gateway {
    /// Admits the request under every limit that applies, or refuses it
    /// with a 429 that says which limit and when to retry. `None`: no limit
    /// applies (nothing is counted).
    pub(crate) async fn admit_limits(
        &self,
        rt: &Runtime,
        caller: &Caller,
        route: &Route,
        op: Operation,
        needs: &Needs,
    ) -> Result<Option<Admission>, GatewayError> {
        let endpoint = match op {
            Operation::Chat => rt.config.rate_limits.chat,
            Operation::Embeddings => rt.config.rate_limits.embeddings,
        }
        .map(Limits::from)
        .unwrap_or_default();
        if caller.checks.is_empty() && route.limits.is_empty() && endpoint.is_empty() {
            return Ok(None);
        }
        let mut checks: Vec<Check> = caller.checks.clone();
        let tenant = caller.tenant_id();
        if !route.limits.is_empty() {
            checks.push(Check { scope: Arc::from(format!("route:{tenant}:{}", route.name)), limits: route.limits });
        }
        if !endpoint.is_empty() {
            checks.push(Check { scope: Arc::from(format!("endpoint:{tenant}:{}", op.as_str())), limits: endpoint });
        }
        let tokens = if checks.iter().any(|c| c.limits.tpm.is_some()) {
            // The router's estimate (prompt bytes / 4 + answer allowance).
            needs.prompt_tokens.saturating_add(needs.output_tokens)
        } else {
            0
        };
        let fell_back = |down: &crate::limits::BackendDown| {
            self.metrics.rate_limit_backend_failures.inc(&[]);
            tracing::warn!(error = %down.0, "rate-limit store unavailable; applying the configured failure mode");
        };
        match self.limiter.admit(&checks, tokens, fell_back).await {
            Ok(admission) => Ok(Some(admission)),
            Err(NotAdmitted::Unavailable(down)) => {
                let mut e = GatewayError::new(
                    ErrorKind::Overloaded,
                    format!("Rate limits cannot be checked right now ({}); try again shortly.", down.0),
                );
                e.retry_after = Some(std::time::Duration::from_secs(1));
                Err(e)
            }
            Err(NotAdmitted::Refused(refusal)) => {
                let scope_kind = refusal.scope.split(':').next().unwrap_or("-");
                let dimension = match refusal.dimension {
                    crate::limits::Dimension::Requests => "requests",
                    crate::limits::Dimension::Tokens => "tokens",
                    crate::limits::Dimension::Concurrency => "concurrency",
                };
                self.metrics.rate_limited.inc(&[scope_kind, dimension]);
                let mut e = GatewayError::new(ErrorKind::RateLimited, refusal.message());
                e.retry_after = refusal.retry_after;
                e.rate_limits = headers::headers(&refusal.quota);
                if refusal.retry_after.is_none() && refusal.dimension == crate::limits::Dimension::Tokens {
                    e.code = Some("request_too_large".into());
                }
                Err(e)
            }
        }
    }
}

/// Tokens a request is expected to use: the prompt's bytes / 4, and the
/// output allowance (`max_tokens`, `max_completion_tokens`, or the
/// configured default; none for embeddings) — split, as budgets price them
/// apart. Read once per request into [`crate::routing::needs::Needs`].
pub(crate) fn estimate(op: Operation, head: &Head<'_>, body_len: usize, default_max: u64) -> (u64, u64) {
    let prompt = (body_len / BYTES_PER_TOKEN) as u64;
    if op == Operation::Embeddings {
        return (prompt, 0);
    }
    let max = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|f| head.object.get(f).and_then(|raw| raw.get().parse::<u64>().ok()))
        .unwrap_or(default_max);
    (prompt, max)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use switchyard_translate::Format;

    fn total((prompt, output): (u64, u64)) -> u64 {
        prompt + output
    }

    #[test]
    fn estimates_prompt_and_allowance() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":100}"#;
        let head = super::super::admit::parse(Operation::Chat, Format::OpenAi, body).unwrap();
        assert_eq!(total(estimate(Operation::Chat, &head, body.len(), 256)), (body.len() / 4) as u64 + 100);
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let head = super::super::admit::parse(Operation::Chat, Format::OpenAi, body).unwrap();
        assert_eq!(total(estimate(Operation::Chat, &head, body.len(), 256)), (body.len() / 4) as u64 + 256);
        let body = br#"{"model":"m","input":"abcdefgh"}"#;
        let head = super::super::admit::parse(Operation::Embeddings, Format::OpenAi, body).unwrap();
        assert_eq!(total(estimate(Operation::Embeddings, &head, body.len(), 256)), (body.len() / 4) as u64);
    }
}

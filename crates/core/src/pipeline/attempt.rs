//! The attempt loop: try the plan's deployments in order until one
//! answers. Plain top-to-bottom code on purpose: the resilience layer
//! (retries with backoff, breakers, hedging) replaces this loop, not the
//! pipeline around it.
//!
//! A deployment is left for the next one when it fails *before any byte
//! reached the client*: connect error, timeout, 429, 5xx, or a stream that
//! broke before its first event. An upstream 4xx is the caller's error and
//! is returned at once.

use super::account::Account;
use super::admit::Head;
use super::stream::{Deadlines, Relay};
use crate::error::GatewayError;
use crate::runtime::Deployment;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use switchyard_providers::openai_compat::wire::rewrite_request;
use switchyard_providers::{Operation, ProviderError, ProviderErrorKind, UpstreamBody, UpstreamRequest};
use switchyard_telemetry::Metrics;
use tokio::time::Instant;

pub enum Answer {
    Full(Bytes),
    Stream(Box<Relay>),
}

pub struct Attempted {
    pub answer: Answer,
    pub deployment: Arc<Deployment>,
}

pub struct Context<'a> {
    pub op: Operation,
    pub head: &'a Head<'a>,
    pub body: &'a Bytes,
    pub request_id: &'a str,
    pub heartbeat: Duration,
    pub metrics: &'a Metrics,
}

pub async fn run(plan: &[Arc<Deployment>], cx: Context<'_>, account: &mut Account) -> Result<Attempted, GatewayError> {
    let mut last: Option<GatewayError> = None;
    for deployment in plan {
        account.record.attempts += 1;
        account.record.deployment = Some(deployment.name.clone());
        let started = Instant::now();
        let result = attempt(deployment, &cx).await;
        account.add_upstream_time(started.elapsed());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind.as_str(),
        };
        cx.metrics.attempts.inc(&[&deployment.name, outcome]);
        match result {
            Ok(answer) => return Ok(Attempted { answer, deployment: deployment.clone() }),
            Err(e) => {
                tracing::warn!(request_id = cx.request_id, deployment = %deployment.name, error_kind = e.kind.as_str(), "attempt failed: {}", e.message);
                let mut error = GatewayError::from_provider(&e, &deployment.name);
                error.attempts = account.record.attempts;
                if !e.retryable() {
                    return Err(error);
                }
                last = Some(error);
            }
        }
    }
    Err(last.unwrap_or_else(|| GatewayError::new(crate::ErrorKind::UpstreamUnavailable, "no deployment to try")))
}

async fn attempt(deployment: &Deployment, cx: &Context<'_>) -> Result<Answer, ProviderError> {
    let head = cx.head;
    // Streams always ask upstream for usage; the relay hides it again if
    // the client did not ask.
    let force_usage = head.stream && !head.include_usage;
    let body = match rewrite_request(&head.object, &head.model, &deployment.model, force_usage) {
        Some(rewritten) => Bytes::from(rewritten),
        None => cx.body.clone(), // fast path: unchanged bytes
    };
    let request =
        UpstreamRequest { operation: cx.op, body, stream: head.stream, request_id: cx.request_id.to_string() };
    let t = deployment.timeouts;
    let start = Instant::now();
    let total = start + t.total.get();
    if !head.stream {
        let response = tokio::time::timeout_at(total, deployment.provider.send(request)).await.map_err(|_| {
            ProviderError::new(ProviderErrorKind::Timeout, format!("no answer within the total deadline ({})", t.total))
        })??;
        return match response.body {
            UpstreamBody::Full(bytes) => Ok(Answer::Full(bytes)),
            UpstreamBody::Stream(_) => {
                Err(ProviderError::new(ProviderErrorKind::Protocol, "expected a whole body, got a stream"))
            }
        };
    }
    let first_token = (start + t.first_token.get()).min(total);
    let response = tokio::time::timeout_at(first_token, deployment.provider.send(request)).await.map_err(|_| {
        ProviderError::new(
            ProviderErrorKind::Timeout,
            format!("no response before the first_token deadline ({})", t.first_token),
        )
    })??;
    let UpstreamBody::Stream(upstream) = response.body else {
        return Err(ProviderError::new(ProviderErrorKind::Protocol, "expected a stream, got a whole body"));
    };
    let deadlines = Deadlines { first_token, idle: t.idle.get(), total, heartbeat: cx.heartbeat };
    let mut relay = Relay::new(upstream, deadlines, head.include_usage, cx.body.clone());
    relay.prime().await?;
    Ok(Answer::Stream(Box::new(relay)))
}

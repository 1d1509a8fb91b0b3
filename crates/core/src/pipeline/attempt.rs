//! The attempt loop: try the plan's deployments in order until one
//! answers, inside the request's deadline (docs/resilience.md).
//!
//! ```text
//! round 0: each step once — a failure moves on to the next (failover)
//! round 1..=retries.max: after a backoff with jitter (or the longest
//!   retry-after asked, when not over max_wait), the steps that
//!   failed with a retryable error again — each only if its retry budget
//!   and breaker allow
//! every attempt: a breaker slot first (half-open: probes only); its
//!   outcome recorded; a 429 with retry-after cools the deployment down
//! ```
//!
//! A deployment is left for the next one when it fails *before any byte
//! reached the client*: connect error, timeout, 429, 5xx, or a stream that
//! broke before its first event. An upstream 4xx is the caller's error and
//! is returned at once.

use super::account::Account;
use super::admit::Head;
use super::stream::{Deadlines, Mode, Relay, Restore};
use super::translate::{self, Canonical, Translation};
use crate::error::GatewayError;
use crate::routing::live::Busy;
use crate::routing::Step;
use crate::runtime::Deployment;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use switchyard_providers::openai_compat::wire::rewrite_request;
use switchyard_providers::{Operation, ProviderError, ProviderErrorKind, UpstreamBody, UpstreamRequest};
use switchyard_telemetry::Metrics;
use switchyard_translate::Format;
use switchyard_types::Usage;
use tokio::time::Instant;

pub enum Answer {
    /// A whole body in the client's format; its usage when the translator
    /// already read it (`None`: the pass-through body is peeked later).
    Full(Bytes, Option<Usage>),
    Stream(Box<Relay>),
}

pub struct Attempted {
    pub answer: Answer,
    pub deployment: Arc<Deployment>,
    /// It was sent the masked body (originals may be restored).
    pub masked: bool,
    /// A smaller sibling answered (`degrade_to`).
    pub degraded: bool,
    /// The provider's rate-limit headers (OpenAI's names), relayed.
    pub rate_limits: Vec<(&'static str, String)>,
}

pub struct Context<'a> {
    pub op: Operation,
    /// The client's wire format.
    pub dialect: Format,
    pub head: &'a Head<'a>,
    pub body: &'a Bytes,
    /// The body with its findings masked, for steps that need it.
    pub masked: Option<(&'a Head<'a>, &'a Bytes)>,
    /// Puts the originals back into answers from masked steps.
    pub restorer: Option<&'a Arc<switchyard_pii::Restorer>>,
    /// The route's cascade (whole answers escalated to the next step).
    pub cascade: Option<&'a crate::routing::cascade::Cascade>,
    /// The route's name, for the escalation counter.
    pub route: &'a str,
    pub request_id: &'a str,
    pub heartbeat: Duration,
    pub metrics: &'a Metrics,
    pub resilience: &'a switchyard_config::ResilienceConfig,
    /// The whole request's deadline (`x-switchyard-timeout`).
    pub deadline: Instant,
    /// Breaker opens are sent to the alert webhooks.
    pub alerts: &'a crate::alerts::Alerts,
    /// A stream on a route with `stream_rescue`.
    pub stream_rescue: bool,
    /// The route's hedging (non-stream requests only).
    pub hedge: Option<&'a switchyard_config::HedgeConfig>,
}

/// Why the cascade sends this whole answer on, if the route has one.
fn escalates(cx: &Context<'_>, body: &[u8]) -> Option<&'static str> {
    cx.cascade.and_then(|c| c.verdict(cx.dialect, body))
}

/// The body a step sent (for counting its prompt when usage is missing).
fn body_bytes<'a>(cx: &'a Context<'a>, step: &Step) -> &'a [u8] {
    match cx.masked {
        Some((_, masked)) if step.masked => masked,
        _ => cx.body,
    }
}

/// The request as one step sends it: the client's, or the masked one.
struct Body<'a> {
    head: &'a Head<'a>,
    bytes: &'a Bytes,
}

/// One deployment's request, ready to send.
struct Prepared {
    body: Bytes,
    /// `None`: same format, pass-through.
    translation: Option<Translation>,
}

pub async fn run(plan: &[Step], cx: Context<'_>, account: &mut Account) -> Result<Attempted, GatewayError> {
    let mut last: Option<GatewayError> = None;
    // Decoded the first time a deployment needs another format (one for
    // the client's body, one for the masked body).
    let mut canonical: [Option<Canonical>; 2] = [None, None];
    // The failed attempt before this one: recorded as such once the next
    // one starts (the last failure is the request's own final record).
    let mut failed: Option<(u16, &'static str, Duration)> = None;
    // Per step: it may be retried, not before then.
    let mut again: Vec<Option<Instant>> = vec![None; plan.len()];
    let retries = &cx.resilience.retries;
    'rounds: for round in 0..=retries.max {
        if round > 0 {
            // The wait: a backoff, or the retry-after asked, if longer.
            let Some(soonest) = again.iter().flatten().min().copied() else { break };
            let backoff = crate::resilience::backoff::backoff(
                retries.backoff.get(),
                retries.max_backoff.get(),
                round,
                fastrand::f64(),
            );
            let until = (Instant::now() + backoff).max(soonest);
            if until >= cx.deadline {
                break;
            }
            tokio::time::sleep_until(until).await;
        }
        for (i, step) in plan.iter().enumerate() {
            let deployment = &step.deployment;
            let retry = round > 0;
            if retry {
                // Due now: tried in this round; not yet (a longer
                // retry-after): kept for a later round.
                match again[i] {
                    Some(at) if at <= Instant::now() => again[i] = None,
                    _ => continue,
                }
            }
            if Instant::now() >= cx.deadline {
                break 'rounds;
            }
            // At its max_concurrency: passed over, like an open breaker.
            let Some(busy) = deployment.live.try_busy(deployment.max_concurrency) else {
                cx.metrics.requests_shed.inc(&["deployment_busy"]);
                continue;
            };
            let health = &deployment.live.health;
            let (admitted, moved) = health.begin(cx.resilience, retry, std::time::Instant::now());
            if let Some(t) = moved {
                crate::resilience::report(&deployment.name, &t, cx.metrics, cx.alerts);
            }
            if let Err(denied) = admitted {
                if retry {
                    let why = match denied {
                        crate::resilience::Denied::Budget => "budget_spent",
                        crate::resilience::Denied::Breaker => "breaker_open",
                    };
                    cx.metrics.retries.inc(&[&deployment.name, why]);
                }
                continue;
            }
            if retry {
                cx.metrics.retries.inc(&[&deployment.name, "sent"]);
            }
            let more = i + 1 < plan.len();
            if let Some((status, kind, took)) = failed.take() {
                account.attempt_failed(status, kind, took);
            }
            account.record.attempts += 1;
            account.record.deployment = Some(deployment.name.clone());
            account.record.model = Some(deployment.model.to_string());
            account.priced = Some(deployment.clone());
            // A body the target format cannot express is the client's error,
            // returned at once like an upstream 4xx.
            let (head, body) = match cx.masked {
                Some(masked) if step.masked => masked,
                _ => (cx.head, cx.body),
            };
            let body = Body { head, bytes: body };
            let prepared = match prepare(deployment, &cx, &body, &mut canonical[usize::from(step.masked)]) {
                Ok(p) => p,
                Err(mut e) => {
                    health.abandon();
                    e.attempts = account.record.attempts;
                    e.deployment = Some(deployment.name.clone());
                    return Err(e);
                }
            };
            account.busy = Some(busy);
            let started = Instant::now();
            let restore = cx.restorer.filter(|_| step.masked);
            let mut hedge_winner: Option<Arc<Deployment>> = None;
            // Mode degradation: a stream's retries ask for a whole answer.
            let result = if retry && head.stream && retries.buffer_streams {
                cx.metrics.buffered_streams.inc(&[&deployment.name]);
                // Boxed: rare, and its future would otherwise enlarge every
                // request's (ADR 0005).
                Box::pin(buffered(deployment, &cx, &body, &mut canonical[usize::from(step.masked)], restore)).await
            } else if cx.stream_rescue && !step.masked {
                // The rest of the plan may continue a cut stream.
                let others = plan
                    .iter()
                    .filter(|s| !s.masked && !Arc::ptr_eq(&s.deployment, deployment))
                    .map(|s| s.deployment.clone())
                    .collect();
                Box::pin(rescuable(deployment, &cx, &body, &mut canonical[0], others)).await
            } else if let Some((other, delay)) = hedge_of(&cx, plan, i, round) {
                // Hedged: a second attempt if the first is slow; the first
                // answer wins.
                let second = match prepare(&other, &cx, &body, &mut canonical[0]) {
                    Ok(p) => p,
                    Err(_) => {
                        return Err(GatewayError::new(
                            crate::ErrorKind::Internal,
                            "hedge: the request could not be prepared",
                        ));
                    }
                };
                let h = Box::pin(hedged(deployment, &other, delay, &cx, &body, prepared, second)).await;
                if h.launched {
                    cx.metrics.hedges.inc(&[cx.route, if h.second_won { "won" } else { "lost" }]);
                    let (loser, loser_took) =
                        if h.second_won { (deployment, h.first_took) } else { (&other, h.second_took) };
                    // The loser is numbered before the winner, whose record is
                    // the request's final one.
                    let loser_n = account.record.attempts;
                    account.record.attempts += 1;
                    match &h.loser_error {
                        // It failed: recorded as failed, no usage.
                        Some((status, kind)) => {
                            account.attempt_failed_at(loser, loser_n, *status, kind, loser_took);
                            loser.live.health.finish(cx.resilience, true, std::time::Instant::now());
                        }
                        // Cancelled: billed for the prompt it read.
                        None => {
                            let estimate = Usage::estimated(crate::tokenize::count_request(body.bytes), 0);
                            account.attempt_cancelled(loser, loser_n, &estimate, loser_took);
                            loser.live.health.abandon();
                        }
                    }
                    if h.second_won {
                        account.busy = h.busy;
                        account.record.deployment = Some(other.name.clone());
                        account.record.model = Some(other.model.to_string());
                        account.priced = Some(other.clone());
                        hedge_winner = Some(other.clone());
                    }
                }
                h.result
            } else {
                attempt(deployment, &cx, &body, prepared, restore).await
            };
            // A hedge's second attempt answered: the rest is about it.
            let winner = hedge_winner.take();
            let deployment = winner.as_ref().unwrap_or(deployment);
            let health = &deployment.live.health;
            let took = started.elapsed();
            account.add_upstream_time(took);
            let transition = match &result {
                Ok(_) => {
                    deployment.live.observe(took);
                    health.finish(cx.resilience, false, std::time::Instant::now())
                }
                Err(e) if e.kind == ProviderErrorKind::RateLimited => {
                    // Busy, not broken: no verdict; with retry-after, left
                    // alone for that long (capped).
                    health.abandon();
                    if let Some(ra) = e.retry_after.filter(|_| !retries.max_cooldown.get().is_zero()) {
                        health.cool(std::time::Instant::now() + ra.min(retries.max_cooldown.get()));
                    }
                    None
                }
                Err(e) if e.retryable() => {
                    deployment.live.observe_failure(took);
                    health.finish(cx.resilience, true, std::time::Instant::now())
                }
                // The caller's error, not the deployment's.
                Err(_) => health.finish(cx.resilience, false, std::time::Instant::now()),
            };
            if let Some(t) = transition {
                crate::resilience::report(&deployment.name, &t, cx.metrics, cx.alerts);
            }
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.kind.as_str(),
            };
            cx.metrics.attempts.inc(&[&deployment.name, outcome]);
            let escalate = match &result {
                Ok((Answer::Full(body, _), _)) if more => escalates(&cx, body),
                _ => None,
            };
            match result {
                Ok((Answer::Full(body, usage), _)) if escalate.is_some() => {
                    // A whole answer the cascade sends on: billed, then the next step.
                    let reason = escalate.unwrap_or("check");
                    let usage = usage.unwrap_or_else(|| super::response_usage(body_bytes(&cx, step), &body));
                    account.attempt_escalated(&usage, took, reason);
                    cx.metrics.cascade_escalations.inc(&[cx.route, reason]);
                    tracing::info!(request_id = cx.request_id, deployment = %deployment.name, reason, "answer escalated to the next deployment");
                }
                Ok((answer, rate_limits)) => {
                    if step.degraded {
                        cx.metrics.degradations.inc(&[cx.route, &deployment.name]);
                    }
                    return Ok(Attempted {
                        answer,
                        deployment: deployment.clone(),
                        masked: step.masked,
                        degraded: step.degraded,
                        rate_limits,
                    });
                }
                Err(e) => {
                    tracing::warn!(request_id = cx.request_id, deployment = %deployment.name, error_kind = e.kind.as_str(), round, "attempt failed: {}", e.message);
                    let mut error = GatewayError::from_provider(&e, &deployment.name);
                    error.attempts = account.record.attempts;
                    if !e.retryable() {
                        return Err(error);
                    }
                    if more {
                        cx.metrics.failovers.inc(&[&deployment.name]);
                    }
                    again[i] = retry_at(&e, retries).map(|wait| Instant::now() + wait);
                    failed = Some((e.status.unwrap_or(error.status()), e.kind.as_str(), took));
                    last = Some(error);
                }
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        let mut e = GatewayError::new(
            crate::ErrorKind::UpstreamUnavailable,
            "No deployment could take the request: their circuit breakers are open or their retry budgets spent.",
        );
        e.retry_after = Some(Duration::from_secs(1));
        e
    }))
}

/// When the same deployment may be tried again after `e` (the wait), if
/// at all: connect errors, timeouts, broken answers and 408, 429, 500,
/// 502, 503, 504, 529 — not after a `retry-after` longer than `max_wait`.
fn retry_at(e: &ProviderError, c: &switchyard_config::RetriesConfig) -> Option<Duration> {
    let same = match e.kind {
        ProviderErrorKind::Connect | ProviderErrorKind::Timeout | ProviderErrorKind::Protocol => true,
        ProviderErrorKind::RateLimited | ProviderErrorKind::Server => {
            matches!(e.status, None | Some(408 | 429 | 500 | 502 | 503 | 504 | 529))
        }
        ProviderErrorKind::Rejected => false,
    };
    let wait = e.retry_after.unwrap_or_default();
    (same && wait <= c.max_wait.get()).then_some(wait)
}

/// The body for one deployment: the client's bytes with `model` swapped
/// when formats match, else a translation through the canonical form.
fn prepare(
    deployment: &Deployment,
    cx: &Context<'_>,
    body: &Body<'_>,
    canonical: &mut Option<Canonical>,
) -> Result<Prepared, GatewayError> {
    let head = body.head;
    if deployment.format == cx.dialect {
        // Same format: pass-through. OpenAI streams always ask upstream for
        // usage; the relay hides it again if the client did not ask.
        let force_usage = cx.dialect == Format::OpenAi && head.stream && !head.include_usage;
        let body = match rewrite_request(&head.object, &head.model, &deployment.model, force_usage) {
            Some(rewritten) => Bytes::from(rewritten),
            None => body.bytes.clone(), // fast path: unchanged bytes
        };
        return Ok(Prepared { body, translation: None });
    }
    let canonical = match canonical {
        Some(c) => c,
        None => match translate::decode(cx.op, cx.dialect, body.bytes) {
            Ok(c) => canonical.insert(c),
            Err(e) => {
                cx.metrics.translations.inc(&[cx.dialect.as_str(), deployment.format.as_str(), "refused"]);
                tracing::info!(
                    request_id = cx.request_id,
                    param = e.param.as_deref().unwrap_or("-"),
                    "request refused by the translator: {}",
                    e.message
                );
                return Err(e);
            }
        },
    };
    let base64 = matches!(canonical, Canonical::Embed(e) if e.base64);
    let encoded = translate::encode(canonical, deployment.format, &deployment.model);
    let outcome = if encoded.is_ok() { "ok" } else { "refused" };
    cx.metrics.translations.inc(&[cx.dialect.as_str(), deployment.format.as_str(), outcome]);
    let body = encoded.inspect_err(|e| {
        tracing::info!(request_id = cx.request_id, deployment = %deployment.name, param = e.param.as_deref().unwrap_or("-"), "request refused by the translator: {}", e.message);
    })?;
    Ok(Prepared { body, translation: Some(Translation { from: deployment.format, to: cx.dialect, base64 }) })
}

type Limits = Vec<(&'static str, String)>;

/// Where a hedge would go and after how long: the plan's next deployment
/// (or this one again), for a first-round, non-stream, unmasked request on
/// a route with `hedge` — once the delay is known (configured, or this
/// deployment's p95 from 16 samples) and while that deployment is up. Its
/// slots are taken only when the hedge is sent.
fn hedge_of(cx: &Context<'_>, plan: &[Step], i: usize, round: u32) -> Option<(Arc<Deployment>, Duration)> {
    let hedge = cx.hedge?;
    let step = &plan[i];
    if round > 0 || step.masked || cx.masked.is_some() {
        return None;
    }
    let delay = match hedge.delay {
        Some(d) => d.get(),
        None => {
            let live = step.deployment.live.snapshot(true);
            let p95 = live.p95_ms.filter(|_| live.samples >= 16)?;
            Duration::from_secs_f64(p95 / 1000.0)
        }
    }
    .max(hedge.min_delay.get());
    let other = plan.get(i + 1).filter(|s| !s.masked).map_or(&step.deployment, |s| &s.deployment).clone();
    other.live.health.check(cx.resilience, std::time::Instant::now()).ok()?;
    Some((other, delay))
}

struct Hedge {
    result: Result<(Answer, Limits), ProviderError>,
    /// The second attempt was sent.
    launched: bool,
    /// Its place in flight at its deployment.
    busy: Option<Busy>,
    second_won: bool,
    /// The other attempt failed (its status and kind) rather than being
    /// cancelled.
    loser_error: Option<(u16, &'static str)>,
    first_took: Duration,
    second_took: Duration,
}

/// The first attempt; after `delay` without an answer, the second too. The
/// first success wins and the other is dropped (its connection closed); a
/// failure waits for the other.
async fn hedged(
    first: &Deployment,
    second: &Deployment,
    delay: Duration,
    cx: &Context<'_>,
    body: &Body<'_>,
    p1: Prepared,
    p2: Prepared,
) -> Hedge {
    let started = Instant::now();
    let a = attempt(first, cx, body, p1, None);
    tokio::pin!(a);
    tokio::select! {
        r = &mut a => {
            let (first_took, second_took) = (started.elapsed(), Duration::ZERO);
            return Hedge { result: r, launched: false, busy: None, second_won: false, loser_error: None, first_took, second_took };
        }
        () = tokio::time::sleep(delay) => {}
    }
    // The second deployment's slots, now: at its max_concurrency, or its
    // breaker closed to it meanwhile, there is no hedge.
    let admitted = second.live.try_busy(second.max_concurrency).filter(|_| {
        let (ok, moved) = second.live.health.begin(cx.resilience, false, std::time::Instant::now());
        if let Some(t) = moved {
            crate::resilience::report(&second.name, &t, cx.metrics, cx.alerts);
        }
        ok.is_ok()
    });
    let Some(busy) = admitted else {
        let r = a.await;
        let (first_took, second_took) = (started.elapsed(), Duration::ZERO);
        return Hedge {
            result: r,
            launched: false,
            busy: None,
            second_won: false,
            loser_error: None,
            first_took,
            second_took,
        };
    };
    let launched_at = Instant::now();
    let b = attempt(second, cx, body, p2, None);
    tokio::pin!(b);
    let failed = |e: &ProviderError| Some((e.status.unwrap_or(502), e.kind.as_str()));
    let (result, second_won, loser_error) = tokio::select! {
        r = &mut a => match r {
            Ok(x) => (Ok(x), false, None),
            Err(e) => (b.await, true, failed(&e)),
        },
        r = &mut b => match r {
            Ok(x) => (Ok(x), true, None),
            Err(e) => (a.await, false, failed(&e)),
        },
    };
    let (first_took, second_took) = (started.elapsed(), launched_at.elapsed());
    Hedge { result, launched: true, busy: Some(busy), second_won, loser_error, first_took, second_took }
}

/// The client's request in canonical form, decoded once per request.
fn canonical_of<'c>(
    cx: &Context<'_>,
    body: &Body<'_>,
    slot: &'c mut Option<Canonical>,
) -> Result<&'c mut Canonical, ProviderError> {
    match slot {
        Some(c) => Ok(c),
        None => Ok(slot.insert(translate::decode(cx.op, cx.dialect, body.bytes).map_err(rejected)?)),
    }
}

/// A body the translator refused, as an attempt's error (the caller's).
fn rejected(e: GatewayError) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Rejected, e.message)
}

/// A stream on a route with `stream_rescue`: relayed through the canonical
/// form (so a continuation can be re-encoded onto it), with what a rescue
/// needs.
async fn rescuable(
    deployment: &Arc<Deployment>,
    cx: &Context<'_>,
    body: &Body<'_>,
    canonical: &mut Option<Canonical>,
    others: Vec<Arc<Deployment>>,
) -> Result<(Answer, Limits), ProviderError> {
    let head = body.head;
    let Canonical::Chat(request) = canonical_of(cx, body, canonical)? else {
        return Err(ProviderError::new(ProviderErrorKind::Rejected, "only chat streams can be rescued"));
    };
    // Usage from upstream whatever the client asked (the client's encoder
    // still follows the client).
    request.include_usage = true;
    let request = request.clone();
    let canonical = Canonical::Chat(request.clone());
    let t = deployment.timeouts;
    let start = Instant::now();
    let total = (start + t.total.get()).min(cx.deadline);
    let first_token = (start + t.first_token.get()).min(total);
    let upstream_request =
        translate::upstream_request(cx.op, cx.request_id, deployment, &canonical, true).map_err(rejected)?;
    let response = tokio::time::timeout_at(first_token, deployment.provider.send(upstream_request))
        .await
        .map_err(|_| ProviderError::new(ProviderErrorKind::Timeout, "no response before the first_token deadline"))??;
    let UpstreamBody::Stream(upstream) = response.body else {
        return Err(ProviderError::new(ProviderErrorKind::Protocol, "expected a stream, got a whole body"));
    };
    let mode =
        Mode::translate(translate::decoder(deployment.format, cx.request_id), translate::encoder(cx.dialect, head));
    let deadlines = Deadlines { first_token, idle: t.idle.get(), total, heartbeat: cx.heartbeat };
    let mut relay = Relay::new(upstream, deadlines, mode, body.bytes.clone());
    relay.rescue_with(super::rescue::Rescue {
        request,
        fallbacks: others,
        request_id: cx.request_id.to_string(),
        deadline: cx.deadline,
        resilience: cx.resilience.clone(),
        current: deployment.clone(),
    });
    relay.prime().await?;
    Ok((Answer::Stream(Box::new(relay)), response.rate_limits))
}

/// A stream request sent for a whole answer, which is then relayed to the
/// client as the stream it asked for (its usage included).
async fn buffered(
    deployment: &Deployment,
    cx: &Context<'_>,
    body: &Body<'_>,
    canonical: &mut Option<Canonical>,
    restore: Option<&Arc<switchyard_pii::Restorer>>,
) -> Result<(Answer, Limits), ProviderError> {
    let head = body.head;
    let canonical = canonical_of(cx, body, canonical)?;
    // Every later attempt of this request is buffered too: set once.
    if let Canonical::Chat(r) = canonical {
        r.stream = false;
    }
    let request = translate::upstream_request(cx.op, cx.request_id, deployment, canonical, false).map_err(rejected)?;
    let t = deployment.timeouts;
    let start = Instant::now();
    let total = (start + t.total.get()).min(cx.deadline);
    let request = UpstreamRequest { head_by: Some((start + t.first_token.get()).min(total)), ..request };
    let response = tokio::time::timeout_at(total, deployment.provider.send(request)).await.map_err(|_| {
        ProviderError::new(ProviderErrorKind::Timeout, "no whole answer within the deadline (buffered retry)")
    })??;
    let UpstreamBody::Full(bytes) = response.body else {
        return Err(ProviderError::new(ProviderErrorKind::Protocol, "expected a whole body, got a stream"));
    };
    let sse = translate::replay(deployment.format, cx.dialect, head, cx.request_id, &bytes)?;
    let upstream: futures_util::stream::BoxStream<'static, Result<Bytes, ProviderError>> =
        Box::pin(futures_util::stream::once(async move { Ok(sse) }));
    // The replay is already in the client's format.
    let mode = stream_mode(cx.dialect, None, cx, head, restore);
    let deadlines = Deadlines { first_token: total, idle: t.idle.get(), total, heartbeat: cx.heartbeat };
    let mut relay = Relay::new(upstream, deadlines, mode, body.bytes.clone());
    relay.prime().await?;
    Ok((Answer::Stream(Box::new(relay)), response.rate_limits))
}

async fn attempt(
    deployment: &Deployment,
    cx: &Context<'_>,
    body: &Body<'_>,
    prepared: Prepared,
    restore: Option<&Arc<switchyard_pii::Restorer>>,
) -> Result<(Answer, Limits), ProviderError> {
    let head = body.head;
    let request = UpstreamRequest {
        operation: cx.op,
        model: deployment.model.clone(),
        body: prepared.body,
        stream: head.stream,
        request_id: cx.request_id.to_string(),
        head_by: None,
    };
    let t = deployment.timeouts;
    let start = Instant::now();
    let own = start + t.total.get();
    let total = own.min(cx.deadline);
    let deadline_text =
        if total < own { "the request's deadline".to_string() } else { format!("the total deadline ({})", t.total) };
    if !head.stream {
        let head_by = (start + t.first_token.get()).min(total);
        let request = UpstreamRequest { head_by: Some(head_by), ..request };
        let late = || ProviderError::new(ProviderErrorKind::Timeout, format!("no answer within {deadline_text}"));
        let response = match tokio::time::timeout_at(total, deployment.provider.send(request)).await {
            Err(_) => return Err(late()),
            // The head's deadline was the whole one.
            Ok(Err(e)) if e.kind == ProviderErrorKind::Timeout && head_by == total => return Err(late()),
            Ok(r) => r?,
        };
        let UpstreamBody::Full(bytes) = response.body else {
            return Err(ProviderError::new(ProviderErrorKind::Protocol, "expected a whole body, got a stream"));
        };
        let answer = match prepared.translation {
            None if cx.dialect == Format::OpenAi => Answer::Full(bytes, None),
            None => {
                let usage = translate::passed_usage(cx.dialect, head, body.bytes, &bytes);
                Answer::Full(bytes, Some(usage))
            }
            Some(tr) => {
                let (body, usage) = translate::response(tr, cx.op, head, body.bytes, cx.request_id, &bytes)?;
                Answer::Full(body, Some(usage))
            }
        };
        return Ok((answer, response.rate_limits));
    }
    let first_token = (start + t.first_token.get()).min(total);
    let response = tokio::time::timeout_at(first_token, deployment.provider.send(request)).await.map_err(|_| {
        let which = if first_token < start + t.first_token.get() {
            deadline_text.clone()
        } else {
            format!("the first_token deadline ({})", t.first_token)
        };
        ProviderError::new(ProviderErrorKind::Timeout, format!("no response before {which}"))
    })??;
    let rate_limits = response.rate_limits;
    let UpstreamBody::Stream(upstream) = response.body else {
        return Err(ProviderError::new(ProviderErrorKind::Protocol, "expected a stream, got a whole body"));
    };
    let deadlines = Deadlines { first_token, idle: t.idle.get(), total, heartbeat: cx.heartbeat };
    let mode = stream_mode(deployment.format, prepared.translation, cx, head, restore);
    let mut relay = Relay::new(upstream, deadlines, mode, body.bytes.clone());
    relay.prime().await?;
    Ok((Answer::Stream(Box::new(relay)), rate_limits))
}

/// How a relay handles events arriving in `source` format for the client:
/// forwarded as they are, observed for usage, translated, or decoded to put
/// masked text back (reachable only decoded, same format or not).
fn stream_mode(
    source: Format,
    translation: Option<Translation>,
    cx: &Context<'_>,
    head: &Head<'_>,
    restore: Option<&Arc<switchyard_pii::Restorer>>,
) -> Mode {
    match (translation, restore) {
        (tr, Some(restorer)) => {
            let from = tr.map_or(source, |t| t.from);
            let restore = Restore::new(restorer.clone());
            Mode::restoring(translate::decoder(from, cx.request_id), translate::encoder(cx.dialect, head), restore)
        }
        (None, None) if cx.dialect == Format::OpenAi => Mode::pass_through(head.include_usage),
        (None, None) => Mode::observe(translate::decoder(cx.dialect, cx.request_id)),
        (Some(tr), None) => {
            Mode::translate(translate::decoder(tr.from, cx.request_id), translate::encoder(tr.to, head))
        }
    }
}

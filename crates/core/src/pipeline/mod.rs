//! The request path, read top to bottom in [`Gateway::handle`]:
//!
//! ```text
//! admit (key, body head) → resolve (route → plan) → attempt (deadlines,
//! fall-through) → reply (whole JSON, or the stream relay) → account
//! ```
//!
//! Every step returns a typed [`GatewayError`]; the server turns it into
//! the client's wire format in one place. Every request, failed or not,
//! ends in exactly one usage record (see [`account`]).

pub mod account;
pub mod admit;
pub mod attempt;
pub mod attribution;
pub mod limit;
pub mod quota;
pub mod rescue;
pub mod resolve;
pub mod stream;
pub mod translate;

use crate::access::audit::Origin;
use crate::error::GatewayError;
use crate::reply::{Reply, ReplyBody};
use crate::routing::{self, classify, needs::Needs, split::Subject};
use crate::tokenize;
use crate::Gateway;
use account::Account;
use attempt::{Answer, Context};
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;
use switchyard_providers::openai_compat::wire::{self, ResponsePeek};
use switchyard_providers::Operation;
use switchyard_translate::Format;
use switchyard_types::Usage;

/// How long a request waits for room in a full usage queue before it is
/// shed (503): longer than a busy CPU makes the writer lag, shorter than a
/// store outage holds it (the writer turns to the spill file after 2 s).
const ADMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A request as the server hands it over.
pub struct Inbound {
    pub request_id: String,
    /// From `Authorization: Bearer` or `x-api-key`.
    pub credential: Option<String>,
    pub body: Bytes,
    /// The client's wire format: OpenAI (`/v1/chat/completions`,
    /// `/v1/embeddings`) or Anthropic (`/v1/messages`).
    pub dialect: Format,
    /// When the server saw the request (overhead is measured from here).
    pub received: Instant,
    /// The client's address (for the audit log).
    pub peer: Option<std::net::SocketAddr>,
    /// `x-switchyard-tags` and `x-switchyard-user`, as sent.
    pub tags: Option<String>,
    pub end_user: Option<String>,
    /// `x-switchyard-classification`, as sent.
    pub classification: Option<String>,
    /// `x-switchyard-scenario`, as sent (a split may map it to an arm).
    pub scenario: Option<String>,
    /// `x-switchyard-task`, as sent (a task route may map it to a route).
    pub task: Option<String>,
    /// `x-switchyard-timeout`, as sent (the request's deadline).
    pub timeout: Option<String>,
}

impl Inbound {
    fn origin(&self) -> Origin {
        Origin { ip: self.peer.map(|p| p.ip().to_string()), request_id: Some(self.request_id.clone()) }
    }
}

impl Gateway {
    /// Serves one chat-completions or embeddings request.
    pub async fn handle(&self, op: Operation, inbound: Inbound) -> Result<Reply, GatewayError> {
        if !self.usage.admit(ADMIT_WAIT).await {
            // The writer made no room for a while: refuse before any work.
            self.metrics.requests_shed.inc(&["usage_queue_full"]);
            let mut e = GatewayError::new(
                crate::ErrorKind::Overloaded,
                "The gateway is busy writing usage records; try again shortly.",
            );
            e.retry_after = Some(std::time::Duration::from_secs(1));
            return Err(e);
        }
        let rt = self.runtime();
        let mut account =
            Account::start(self.usage.clone(), self.metrics.clone(), op, &inbound.request_id, inbound.received);
        account.volume = Some(self.volume.clone());

        let key = match self.authenticate(inbound.credential.as_deref(), || inbound.origin()) {
            Ok(k) => k,
            Err(e) => return Err(fail(account, e).await),
        };
        account.record.key_id = Some(key.key.id.clone());
        account.record.tenant_id = Some(key.key.tenant_id.clone());
        account.record.team_id = key.key.team_id.clone();
        account.record.user_id = key.key.user_id.clone();
        let attributed = inbound.tags.as_deref().map(attribution::parse_tags).transpose().and_then(|tags| {
            Ok((tags.flatten(), inbound.end_user.as_deref().map(attribution::parse_user).transpose()?.flatten()))
        });
        match attributed {
            Ok((tags, end_user)) => {
                account.record.tags = tags;
                account.record.end_user = end_user;
            }
            Err(e) => return Err(fail(account, e).await),
        }

        let deadline =
            match crate::resilience::deadline::budget(&rt.config.resilience.deadline, inbound.timeout.as_deref()) {
                Ok(d) => tokio::time::Instant::from_std(inbound.received) + d,
                Err(e) => return Err(fail(account, e).await),
            };
        let head = match admit::parse(op, inbound.dialect, &inbound.body) {
            Ok(h) => h,
            Err(e) => return Err(fail(account, e).await),
        };
        account.record.stream = head.stream;

        let route = match resolve::route(&rt, &key, &head.model, op) {
            Ok(r) => r,
            Err(e) => {
                if rt.routes.contains_key(&head.model) && !key.may_use(&head.model) {
                    self.route_refused(&key, &head.model, inbound.origin());
                }
                return Err(fail(account, e).await);
            }
        };
        let needs = Needs::of(op, &head, &inbound.body, rt.config.rate_limits.default_max_tokens);
        let (route, task) = match routing::tasks::resolve(&rt, route, inbound.task.as_deref(), &needs, &inbound.body) {
            Ok(r) => r,
            Err(e) => return Err(fail(account, e).await),
        };
        if let Some(t) = &task {
            self.metrics.route_tasks.inc(&[&t.via, &t.task]);
        }
        account.record.route = Some(route.name.clone());
        let class =
            match classify::classify(inbound.classification.as_deref(), &key, &rt.config.classification, &inbound.body)
            {
                Ok(c) => c,
                Err(e) => return Err(fail(account, e).await),
            };
        account.record.classification = Some(class.class.as_str().to_string());
        let request = routing::Request {
            needs,
            class,
            regions: key.tenant.as_ref().and_then(|t| t.allowed_regions.as_deref()),
            subject: Subject { user: inbound.end_user.as_deref(), key: &key.key.id, tenant: key.tenant_id() },
            scenario: inbound.scenario.as_deref(),
            nodes: Some((&self.nodes, rt.config.nodes.timeout.get())),
            resilience: Some(&rt.config.resilience),
        };
        let decided = routing::plan(&route, &request);
        let outcome = if decided.is_ok() { "routed" } else { "refused" };
        self.metrics.route_decisions.inc(&[&route.name, route.strategy.as_str(), class.class.as_str(), outcome]);
        let mut plan = match decided {
            Ok(p) => p,
            Err(e) => {
                if e.kind == crate::ErrorKind::PolicyRefused {
                    self.policy_refused(&key, &route.name, &e.message, inbound.origin());
                }
                // A refusal counts against the request's arm too (a canary
                // whose deployments are all down is failing).
                account.arm = routing::arm_of(&route, &request);
                return Err(fail(account, e).await);
            }
        };

        match self.admit_limits(&rt, &key, &plan.route, op, &request.needs).await {
            Ok(admission) => account.admission = admission,
            Err(e) => return Err(fail(account, e).await),
        }
        // May replace the plan (a spent budget that downgrades).
        let budget_action = match self.reserve_budget(&rt, &key, &mut plan, &request).await {
            Ok(budgeted) => {
                if budgeted.hold.is_some() {
                    account.alerts = Some(self.alerts.clone());
                }
                account.hold = budgeted.hold;
                budgeted.action
            }
            Err(e) => return Err(fail(account, e).await),
        };
        account.record.route = Some(plan.route.name.clone());
        account.record.route_reason = Some(match &task {
            Some(t) => format!("task {} via {} ({}); {}", t.task, t.via, t.by, plan.reason),
            None => std::mem::take(&mut plan.reason),
        });
        // Per-arm outcomes are counted when the request ends.
        account.arm = plan.arm.take();
        // P1 data bound for L2: the body with its findings masked, once.
        let mut restorer = None;
        let masked_body = if plan.steps.iter().any(|s| s.masked) {
            let mut masker = switchyard_pii::Masker::new();
            let masked = match classify::mask_body(&inbound.body, &mut masker) {
                Ok(m) => m,
                Err(e) => return Err(fail(account, e).await),
            };
            for (kind, n) in masker.counts() {
                self.metrics.pii_masked.add(&[kind.as_str()], n as u64);
            }
            if rt.config.classification.restore {
                restorer = Some(masker.into_restorer()).filter(|r| !r.is_empty()).map(std::sync::Arc::new);
            }
            masked
        } else {
            None
        };
        let masked_head = match masked_body.as_ref().map(|b| admit::parse(op, inbound.dialect, b)).transpose() {
            Ok(h) => h,
            Err(e) => return Err(fail(account, e).await),
        };
        let quota = account.admission.as_ref().map(|a| crate::limits::headers::headers(a.quota()));
        // A slot in the route's and the gateway's queues, or shed.
        let queues = (&plan.route.name, plan.route.queue.as_ref(), &rt.config.resilience.admission);
        // Boxed, and only with a queue configured: its future would
        // otherwise enlarge every request's (ADR 0005).
        let queued = queues.1.is_some() || queues.2.max_concurrency > 0;
        let admitted = match queued {
            true => Box::pin(self.admission.admit(queues.0, queues.1, queues.2, deadline, &self.metrics)).await,
            false => Ok(Default::default()),
        };
        match admitted {
            Ok(admitted) => account.admitted = Some(admitted),
            Err((shed, which)) => {
                self.metrics.requests_shed.inc(&[shed.as_str()]);
                let why = match shed {
                    crate::resilience::admission::Shed::QueueFull => "is full",
                    crate::resilience::admission::Shed::Timeout => "had no free slot in time",
                };
                let mut e = GatewayError::new(
                    crate::ErrorKind::Overloaded,
                    format!("The {which} queue for `{}` {why}; try again shortly.", plan.route.name),
                );
                e.retry_after = Some(crate::resilience::admission::SHED_RETRY_AFTER);
                return Err(fail(account, e).await);
            }
        }

        let cx = Context {
            op,
            dialect: inbound.dialect,
            head: &head,
            body: &inbound.body,
            masked: masked_head.as_ref().zip(masked_body.as_ref()),
            restorer: restorer.as_ref(),
            cascade: plan.route.cascade.as_ref().filter(|_| !head.stream),
            route: &plan.route.name,
            request_id: &inbound.request_id,
            heartbeat: rt.config.server.heartbeat.get(),
            metrics: &self.metrics,
            resilience: &rt.config.resilience,
            deadline,
            alerts: &self.alerts,
            stream_rescue: plan.route.stream_rescue && head.stream,
            hedge: plan.route.hedge.as_ref().filter(|_| !head.stream),
        };
        let attempted = match attempt::run(&plan.steps, cx, &mut account).await {
            Ok(a) => a,
            Err(mut e) => {
                if let Some(q) = quota {
                    // The gateway's own figures replace the provider's.
                    e.rate_limits = q;
                }
                return Err(fail(account, e).await);
            }
        };

        let overhead = account.commit();
        let mut headers = vec![
            ("x-switchyard-route", attempted.deployment.name.clone()),
            ("x-switchyard-attempts", account.record.attempts.to_string()),
            ("x-switchyard-overhead-ms", millis_text(overhead)),
        ];
        match quota {
            Some(q) => headers.extend(q),
            None => headers.extend(attempted.rate_limits),
        }
        if let Some(action) = budget_action {
            headers.push(("x-switchyard-budget-action", action));
        }
        if attempted.degraded {
            headers.push(("x-switchyard-degraded", "true".to_string()));
        }
        match attempted.answer {
            Answer::Full(body, usage) => {
                let usage = usage.unwrap_or_else(|| response_usage(&inbound.body, &body));
                let body = match (&restorer, attempted.masked) {
                    (Some(r), true) => classify::restore_body(body, r),
                    _ => body,
                };
                if let Some(nanos) = account.cost(&usage) {
                    headers.push(("x-switchyard-cost-usd", switchyard_types::cost::usd_text(nanos)));
                }
                account.finish_async(200, None, usage, None).await;
                Ok(Reply { status: 200, headers, body: ReplyBody::Json(body) })
            }
            Answer::Stream(mut relay) => {
                relay.attach(account);
                Ok(Reply { status: 200, headers, body: ReplyBody::Stream(relay.into_stream()) })
            }
        }
    }
}

impl Gateway {
    /// Records a request the server refused before it could be handed over
    /// (its body was too large or unreadable), so that it too has its usage
    /// record; attributed to its key when the key is valid.
    pub async fn refuse(
        &self,
        op: Operation,
        request_id: &str,
        credential: Option<&str>,
        received: Instant,
        e: GatewayError,
    ) -> GatewayError {
        let mut account = Account::start(self.usage.clone(), self.metrics.clone(), op, request_id, received);
        if let Some(caller) = credential.and_then(|c| self.directory.load().caller(c)) {
            account.record.key_id = Some(caller.key.id.clone());
            account.record.tenant_id = Some(caller.key.tenant_id.clone());
        }
        fail(account, e).await
    }
}

/// Records a failed request and hands the error back. Boxed: `handle` has
/// a dozen ways to fail, and an unboxed future at each would each take
/// room in `handle`'s own future (~9 KB more, copied on every request).
fn fail(mut account: Account, mut e: GatewayError) -> Pin<Box<dyn Future<Output = GatewayError> + Send>> {
    Box::pin(async move {
        account.commit();
        e.attempts = account.record.attempts;
        account.finish_async(e.status(), Some(e.kind.as_str()), Usage::default(), None).await;
        e
    })
}

/// Usage of a whole response: as reported, or counted when absent.
pub(super) fn response_usage(request: &[u8], response: &[u8]) -> Usage {
    if let Some(u) = wire::response_usage(response) {
        return Usage::reported(u.prompt_tokens.unwrap_or(0), u.completion_tokens.unwrap_or(0))
            .with_cache(u.cached_tokens(), 0);
    }
    // Only without reported usage is the whole body parsed.
    match serde_json::from_slice::<ResponsePeek>(response) {
        Ok(peek) => {
            let mut text = String::new();
            peek.collect_text(&mut text);
            Usage::estimated(tokenize::count_request(request), tokenize::count(&text))
        }
        Err(_) => Usage::estimated(tokenize::count_request(request), 0),
    }
}

impl Gateway {
    /// `POST /v1/messages/count_tokens`: the prompt's tokens as the
    /// gateway's tokenizer counts them (`{"input_tokens": N}`), for a model
    /// the key may use. An estimate: no upstream is called. Blocking (the
    /// first call waits for the tokenizer to load): run it off the async
    /// workers.
    pub fn count_tokens(&self, credential: Option<&str>, origin: Origin, body: &[u8]) -> Result<Bytes, GatewayError> {
        let key = self.authenticate(credential, || origin)?;
        let translate::Canonical::Chat(request) = translate::decode(Operation::Chat, Format::Anthropic, body)? else {
            return Err(GatewayError::new(crate::ErrorKind::Internal, "count_tokens decoded a non-chat body"));
        };
        let rt = self.runtime();
        resolve::route(&rt, &key, &request.model, Operation::Chat)?;
        tokenize::warm_up();
        let n = tokenize::count(&translate::prompt_text(&request));
        Ok(Bytes::from(serde_json::json!({ "input_tokens": n }).to_string()))
    }

    /// `GET /v1/models`: the routes this key may use; with `only`, the one
    /// model (`GET /v1/models/{id}`). One shape serves both SDKs: OpenAI's
    /// fields (`object`, `created`, `owned_by`) and Anthropic's (`type`,
    /// `display_name`, `created_at`, and `has_more` / `first_id` /
    /// `last_id` on the list); each ignores the other's.
    pub fn models(&self, credential: Option<&str>, origin: Origin, only: Option<&str>) -> Result<Bytes, GatewayError> {
        let key = self.authenticate(credential, || origin)?;
        let rt = self.runtime();
        let created_at = rfc3339(rt.built_at);
        let entry = |name: &str| {
            serde_json::json!({"id": name, "object": "model", "created": rt.built_at, "owned_by": "switchyard",
                "type": "model", "display_name": name, "created_at": created_at})
        };
        let body = match only {
            Some(id) => {
                if !(rt.routes.contains_key(id) && key.may_use(id)) {
                    return Err(GatewayError::new(
                        crate::ErrorKind::ModelNotFound,
                        format!("The model `{id}` does not exist or you do not have access to it."),
                    )
                    .with_param("model"));
                }
                entry(id)
            }
            None => {
                let names: Vec<&String> = rt.route_order.iter().filter(|r| key.may_use(r)).collect();
                let data: Vec<_> = names.iter().map(|r| entry(r)).collect();
                serde_json::json!({"object": "list", "data": data, "has_more": false,
                    "first_id": names.first(), "last_id": names.last()})
            }
        };
        Ok(Bytes::from(body.to_string()))
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let (year, month, day) = crate::budget::period::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// A duration as milliseconds with three decimals ("0.042"), written by
/// hand: `format!("{:.3}")` of a float cost ~1,100 instructions a request.
fn millis_text(d: std::time::Duration) -> String {
    let micros = d.as_micros().min(u128::from(u64::MAX)) as u64;
    let mut s = (micros / 1000).to_string();
    let frac = micros % 1000;
    s.push('.');
    for digit in [frac / 100, frac / 10 % 10, frac % 10] {
        s.push(char::from(b'0' + digit as u8));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{millis_text, rfc3339};
    use std::time::Duration;

    #[test]
    fn overhead_header_has_three_decimals() {
        assert_eq!(millis_text(Duration::from_micros(42)), "0.042");
        assert_eq!(millis_text(Duration::from_micros(1_500)), "1.500");
        assert_eq!(millis_text(Duration::from_nanos(12_345_999)), "12.345");
        assert_eq!(millis_text(Duration::ZERO), "0.000");
    }

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(rfc3339(1_755_780_059), "2025-08-21T12:40:59Z");
    }
}

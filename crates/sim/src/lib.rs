//! switchyard-sim: a simulated OpenAI-compatible upstream with knobs for
//! latency, token rate and faults, and a log of what it received. Used by
//! `switchyard sim`, the integration tests and the benchmarks.
//!
//! # Data plane
//! | route | answer |
//! | --- | --- |
//! | `POST /v1/chat/completions` | `answer_tokens` lorem words per choice (`n`), `finish_reason` `stop`, or `length` when `max_completion_tokens`/`max_tokens` is smaller; a tool call instead when the request offers `tools`, `tool_choice` is not `"none"` and the last message is the user's (named `tool_choice` → that tool, else the first; arguments = every `required` property with a sample of its type). Streams follow `fixtures/wire/openai/chat_stream_*.sse`, including the `include_usage` chunk and `data: [DONE]` |
//! | `POST /v1/embeddings` | deterministic unit vectors from a hash of each input; `dimensions` (default 1536); `encoding_format: "base64"` = little-endian f32 |
//! | `GET /v1/models`, `GET /v1/models/{model}` | the models that have their own knobs |
//!
//! Bad JSON or a missing `model`/`messages`/`input` → 400 with OpenAI's
//! `{"error":{"message","type","param","code"}}`. Ids are `chatcmpl-sim<N>`
//! and `call_sim<N>`; every answer carries `x-request-id: req_sim<seq>`.
//! Usage: `prompt_tokens` ≈ characters of the message text / 4 (at least 1),
//! `completion_tokens` = words of all choices.
//!
//! # Knobs
//! Per model, with a default set for models without their own. All fields
//! are optional in input; unknown fields are rejected.
//!
//! | knob | default | effect |
//! | --- | --- | --- |
//! | `latency_ms` | 0 | non-stream: delay before the answer |
//! | `ttft_ms` | 0 | stream: delay before the first chunk (headers go out at once) |
//! | `tokens_per_sec` | 0 | stream pacing: the first word comes with the first chunk, each next one 1/rate later; 0 = as fast as possible |
//! | `answer_tokens` | 16 | words per text answer |
//! | `error_rate` / `error_status` | 0 / 500 | random injected errors (5xx body = OpenAI `server_error`) |
//! | `fail_next` | 0 | the next N requests fail with `error_status` |
//! | `rate_limit_rate` / `rate_limit_next` | 0 / 0 | 429 with `retry-after`, `x-ratelimit-*` and OpenAI's 429 body |
//! | `retry_after_s` | 1 | `retry-after` of those 429s |
//! | `hang` | false | accept and never answer until the client leaves |
//! | `cut_after_tokens` | none | stream: send the role chunk and that many content chunks (per choice), then drop the connection (no final chunk, no `[DONE]`); a shorter answer ends normally |
//! | `usage` | true | false = never report usage |
//! | `tool_calls` | `auto` | `never` = always answer with text |
//!
//! Faults are checked in the order `fail_next`, `rate_limit_next`,
//! `rate_limit_rate`, `error_rate`, `hang`, and answered at once (no latency).
//!
//! # Control API (JSON)
//! | route | effect |
//! | --- | --- |
//! | `GET /_sim/knobs` | `{"default": {...}, "models": {...}}`, countdowns at their remaining values |
//! | `PUT /_sim/knobs` | body = Knobs: replace the default knobs |
//! | `PUT /_sim/knobs/{model}` | body = Knobs: replace one model's knobs (and list it in `/v1/models`) |
//! | `DELETE /_sim/knobs/{model}` | drop one model's knobs |
//! | `GET /_sim/requests` | the last 10 000 requests received, oldest first ([`RecordedRequest`]) |
//! | `DELETE /_sim/requests` | forget them |
//! | `GET /_sim/health` | 200 |
//!
//! Outcomes: `in_progress`, `completed`, `cancelled` (the client went away
//! first), `failed` (an error status was sent), `cut` (`cut_after_tokens`).
//! `status` is 0 while no status was sent (in progress, or a `hang` cancelled).
//! In Rust, [`Sim::wait_for_request`] waits for a record without polling.

mod answer;
mod anthropic;
mod azure;
mod chat;
pub mod cli;
mod control;
mod embeddings;
mod faults;
mod gemini;
mod knobs;
mod pacing;
mod record;
mod stream;
mod text;
mod tools;
mod wire;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::serve::ListenerExt;
use axum::Router;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use knobs::{Knobs, ToolCalls};
pub use record::{Format, Outcome, RecordedRequest, LOG_CAPACITY};

use knobs::KnobTable;
use record::{Arrival, Recording, RequestLog};

/// Largest request body accepted (prompts with inline images are large).
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// How long [`serve`] waits for in-flight answers after the shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Knobs at start-up: the default set and per-model sets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub default: Knobs,
    pub models: BTreeMap<String, Knobs>,
}

impl SimConfig {
    /// Checks every knob set; the message names its path, e.g. `models.gpt-4o.error_rate`.
    pub fn validate(&self) -> Result<(), String> {
        self.default.validate().map_err(|e| format!("default.{e}"))?;
        for (name, k) in &self.models {
            k.validate().map_err(|e| format!("models.{name}.{e}"))?;
        }
        Ok(())
    }
}

/// The simulator's shared state: live knobs and the request log.
#[derive(Debug)]
pub struct Sim {
    knobs: KnobTable,
    log: RequestLog,
    next_id: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl Sim {
    pub fn new(config: SimConfig) -> Arc<Sim> {
        Arc::new(Sim {
            knobs: KnobTable::new(config.default, config.models),
            log: RequestLog::new(),
            next_id: AtomicU64::new(1),
            shutdown: watch::Sender::new(false),
        })
    }

    /// The data plane (`/v1/...`) and the control API (`/_sim/...`).
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat::completions))
            .route("/v1/embeddings", post(embeddings::create))
            .route("/v1/messages", post(anthropic::messages))
            .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
            .route("/v1beta/models/{model_action}", post(gemini::dispatch))
            .route("/openai/deployments/{deployment}/chat/completions", post(azure::deployment_chat))
            .route("/openai/deployments/{deployment}/embeddings", post(azure::deployment_embeddings))
            .route("/openai/v1/chat/completions", post(azure::v1_chat))
            .route("/openai/v1/embeddings", post(azure::v1_embeddings))
            .route("/v1/models", get(control::list_models))
            .route("/v1/models/{*model}", get(control::get_model))
            .route("/_sim/knobs", get(control::get_knobs).put(control::put_default))
            .route("/_sim/knobs/{*model}", put(control::put_model).delete(control::delete_model))
            .route("/_sim/requests", get(control::get_requests).delete(control::delete_requests))
            .route("/_sim/health", get(control::health))
            .fallback(control::not_found)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(self.clone())
    }

    /// Replaces the knobs of `model`, or the default knobs for `None`.
    /// Countdowns (`fail_next`, `rate_limit_next`) restart from the new values.
    pub fn set_knobs(&self, model: Option<&str>, knobs: Knobs) {
        self.knobs.set(model, knobs);
    }

    /// The knobs in force, countdowns at their remaining values.
    pub fn knobs(&self) -> SimConfig {
        let (default, models) = self.knobs.snapshot();
        SimConfig { default, models }
    }

    /// What the sim received, oldest first (at most [`LOG_CAPACITY`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log.all()
    }

    pub fn clear_requests(&self) {
        self.log.clear();
    }

    /// Waits until a recorded request matches `pred` and returns it, e.g.
    /// `sim.wait_for_request(|r| r.outcome == Outcome::Cancelled)`; for tests
    /// that must not poll with sleeps. Wrap it in a timeout.
    pub async fn wait_for_request(&self, pred: impl FnMut(&RecordedRequest) -> bool) -> RecordedRequest {
        self.log.wait_for(pred).await
    }

    pub(crate) fn next_ids(&self, n: u64) -> u64 {
        self.next_id.fetch_add(n, Ordering::Relaxed)
    }

    /// Starts recording a request; the guard records `Cancelled` if dropped.
    pub(crate) fn record(
        self: &Arc<Self>,
        path: &'static str,
        format: Format,
        headers: &HeaderMap,
        model: Option<String>,
        stream: bool,
        body: serde_json::Value,
    ) -> Recording {
        let header = |name| headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok()).map(str::to_owned);
        let seq = self.log.start(Arrival {
            path,
            format,
            model,
            stream,
            authorization: header(AUTHORIZATION.as_str()),
            request_id: header("x-request-id"),
            body,
        });
        Recording::new(self.clone(), seq, format)
    }

    /// Resolves once [`serve`] got its shutdown signal.
    pub(crate) async fn until_shutdown(&self) {
        let mut rx = self.shutdown.subscribe();
        // Err only if the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|down| *down).await;
    }
}

/// Serves `sim` on `listener` until `shutdown` resolves, then lets in-flight
/// answers finish for up to two seconds (hung requests are released with 503).
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Paced chunks must leave at once, not wait for Nagle.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!("set_nodelay failed: {e}");
        }
    });
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal_sim = sim.clone();
    let server = axum::serve(listener, sim.router())
        .with_graceful_shutdown(async move {
            shutdown.await;
            signal_sim.shutdown.send_replace(true);
            let _ = stopping_tx.send(());
        })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        res = &mut server => res,
        () = async {
            if stopping_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::debug!("switchyard-sim: in-flight answers outlived the shutdown grace");
            Ok(())
        }
    }
}

//! switchyard-sim: a simulated LLM upstream speaking the OpenAI, Anthropic
//! and Gemini wire formats (and Azure OpenAI's URLs), with knobs for
//! latency, token rate and faults, and a log of what it received. Used by
//! `switchyard sim`, the integration tests and the benchmarks. Shapes follow
//! `shared/fixtures/wire/`.
//!
//! # Data plane
//! | route | answer |
//! | --- | --- |
//! | `POST /v1/chat/completions` | `answer_tokens` lorem words per choice (`n`), `finish_reason` `stop`, or `length` when `max_completion_tokens`/`max_tokens` is smaller; a tool call instead when the request offers `tools`, `tool_choice` is not `"none"` and the last message is the user's (named `tool_choice` → that tool, else the first; arguments = every `required` property with a sample of its type). Streams follow `fixtures/wire/openai/chat_stream_*.sse`, including the `include_usage` chunk and `data: [DONE]` |
//! | `POST /v1/embeddings` | deterministic unit vectors from a hash of each input; `dimensions` (default 1536); `encoding_format: "base64"` = little-endian f32 |
//! | `GET /v1/models`, `GET /v1/models/{model}` | the models that have their own knobs |
//! | `POST /v1/messages` | Anthropic Message: one `text` block, `stop_reason` `end_turn`, or `max_tokens` when `max_tokens` is smaller; a short `text` block + `tool_use` (`toolu_sim<N>`) when custom `tools` are offered, `tool_choice` is not `{"type":"none"}` and the last message is the user's without a `tool_result` (`{"type":"tool","name"}` → that tool); only the `tool_use` block (index 0) when `tool_choice` is `any` or `tool`. Streams follow `messages_stream_{text,tool_use}.sse`: `message_start`, `content_block_start`, `ping`, a `content_block_delta` per word / `input_json_delta` piece (the first `""`), `content_block_stop`, `message_delta`, `message_stop`. Needs `x-api-key` (else 401 `authentication_error`) and `anthropic-version` (else 400) |
//! | `POST /v1/messages/count_tokens` | `{"input_tokens": N}`, the same estimate as `usage.input_tokens` |
//! | `POST /v1beta/models/{model}:generateContent` | Gemini `GenerateContentResponse`: one candidate, `finishReason` `STOP`, or `MAX_TOKENS` when `generationConfig.maxOutputTokens` is smaller; a `functionCall` part (`STOP`) when `tools[].functionDeclarations` are offered, `toolConfig.functionCallingConfig.mode` is not `NONE` and the last content has no `functionResponse` (`allowedFunctionNames[0]` → that function; schema from `parameters` or `parametersJsonSchema`) |
//! | `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` | `data: {…}\r\n\r\n` chunks of 4 words (a function call is one chunk), `finishReason` and full `usageMetadata` on the last, no `[DONE]`; without `alt=sse` → 400 (the JSON-array stream is not simulated) |
//! | `POST /v1beta/models/{model}:embedContent`, `:batchEmbedContents` | `{"embedding":{"values"}}` / `{"embeddings":[…]}`: the `/v1/embeddings` vector of the parts' text (joined by `\n`), `outputDimensionality` (default 768); a batch request's `model` must name the URL's |
//! | `POST /v1beta/models/{model}:countTokens` | `{"totalTokens": N, "promptTokensDetails"}`, the same estimate as `promptTokenCount` (`contents` or `generateContentRequest`) |
//! | `POST /openai/deployments/{deployment}/chat/completions?api-version=…`, `…/embeddings?api-version=…` | Azure: the OpenAI answer with `model` = the deployment (the body's `model` is ignored and may be absent). Needs `api-key` (else 401 with Azure's `{"error":{"code":"401","message"}}`) and `api-version` (else 400 with an OpenAI `invalid_request_error`, `param: "api-version"`) |
//! | `POST /openai/v1/chat/completions`, `/openai/v1/embeddings` | Azure v1: the OpenAI answer; `model` from the body; needs `api-key` or `Authorization: Bearer` |
//!
//! Gemini wants `x-goog-api-key` or `?key=`; without one it answers 400
//! `INVALID_ARGUMENT` with reason `API_KEY_INVALID` (its answer to a wrong
//! key). Keys are never checked beyond being present and not blank.
//!
//! Bad bodies → 400 in the format's own envelope: OpenAI (and Azure)
//! `{"error":{"message","type","param","code"}}`, Anthropic
//! `{"type":"error","error":{"type","message"},"request_id"}`, Gemini
//! `{"error":{"code","message","status","details"}}`. Ids are
//! `chatcmpl-sim<N>`, `call_sim<N>`, `msg_sim<N>`, `toolu_sim<N>` and
//! Gemini `responseId` `sim<N>`; every answer carries `req_sim<seq>` in
//! `x-request-id` (`request-id` for Anthropic). Token counts: prompt ≈
//! characters of the message (and system) text / 4, at least 1; output =
//! words (a tool call ≈ characters of its name and arguments / 4; `echo`:
//! the echoed words).
//!
//! # Knobs
//! Per model, with a default set for models without their own. All fields
//! are optional in input; unknown fields are rejected. The model is the
//! body's `model` (OpenAI, Anthropic, Azure v1), the URL's (Gemini) or the
//! deployment (Azure): one set of knobs, and one countdown, whatever the
//! format.
//!
//! | knob | default | effect |
//! | --- | --- | --- |
//! | `latency_ms` | 0 | non-stream: delay before the answer |
//! | `ttft_ms` | 0 | stream: delay before the first chunk (headers go out at once) |
//! | `tokens_per_sec` | 0 | stream pacing: the first word comes with the first chunk, each next one 1/rate later (a Gemini chunk when its first word is due); 0 = as fast as possible |
//! | `answer_tokens` | 16 | words per text answer |
//! | `echo` | false | true = a text answer (every format, stream or not) is the request's last user text instead of lorem words: OpenAI/Azure the last `role: user` message's `content` string or its `text` parts concatenated, Anthropic the last `role: user` message's string or `text` blocks, Gemini the last `role: user` (or role-less) content's `parts[].text`. Its words split on single spaces are the tokens (the first bare, the others with a leading space, so a stream joins back to the text), JSON-escaped; their number replaces `answer_tokens`, still cut by the output limit (`length` / `max_tokens` / `MAX_TOKENS`). No text is an empty answer (0 tokens). Tool calls are unchanged (an Anthropic tool preamble stays lorem) |
//! | `error_rate` / `error_status` | 0 / 500 | random injected errors, in the format's envelope with the knob's status: OpenAI `server_error` for 5xx; Anthropic `api_error` (500, other 5xx), `overloaded_error` (503, 529), 4xx by Anthropic's table; Gemini `INTERNAL` (500), `UNAVAILABLE` (503), … |
//! | `fail_next` | 0 | the next N requests fail with `error_status` |
//! | `rate_limit_rate` / `rate_limit_next` | 0 / 0 | 429: OpenAI body + `retry-after`, `x-ratelimit-*`; Anthropic `rate_limit_error` + `retry-after`, `anthropic-ratelimit-requests-{limit,remaining,reset}`; Gemini `RESOURCE_EXHAUSTED` with a `RetryInfo` `retryDelay` |
//! | `retry_after_s` | 1 | `retry-after` (Gemini: `retryDelay`) of those 429s |
//! | `hang` | false | accept and never answer until the client leaves |
//! | `cut_after_tokens` | none | stream: drop the connection after that many steps (no final chunk, no `[DONE]` / `message_stop` / `finishReason`); a shorter answer ends normally. OpenAI: the role chunk and that many content chunks per choice; Anthropic: that many `content_block_delta`s; Gemini: that many words (a function call counts as one) |
//! | `error_after_tokens` | none | stream: after that many steps (counted as for `cut_after_tokens`) send the format's in-band error event instead of the rest, then end the body cleanly (no `[DONE]` / `message_delta`, `message_stop` / `finishReason`); a shorter answer ends normally; non-stream answers ignore it. OpenAI (and Azure): `data: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`; Anthropic: `event: error` with `{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}` as in `messages_stream_error_overloaded.sse`; Gemini: a last chunk `data: {"error":{"code":500,"message":"An internal error has occurred. Please retry or try using a different model.","status":"INTERNAL"}}` (our choice: Gemini documents no SSE form of a mid-stream error). With `cut_after_tokens` too, the earlier one applies (the cut when equal) |
//! | `usage` | true | false = never report usage. OpenAI only: Anthropic and Gemini always report it, as their APIs do |
//! | `tool_calls` | `auto` | `never` = always answer with text |
//!
//! Faults are checked in the order `fail_next`, `rate_limit_next`,
//! `rate_limit_rate`, `error_rate`, `hang`, after the request was read and
//! its auth headers checked, and answered at once (no latency).
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
//! Every data-plane request is recorded, refused ones too, with its `format`
//! (`openai`, `anthropic`, `gemini`, `azure`), `path` (parameters as
//! placeholders, e.g. `/v1beta/models/{model}:generateContent`), model and
//! the body as received. Outcomes: `in_progress`, `completed`, `cancelled`
//! (the client went away first), `failed` (an error status was sent), `cut`
//! (`cut_after_tokens`), `errored` (`error_after_tokens`: the stream ended
//! with the format's error event; status 200). `status` is 0 while no status was sent (in
//! progress, or a `hang` cancelled). In Rust, [`Sim::wait_for_request`]
//! waits for a record without polling.

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
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
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

    /// The data plane (`/v1/...`, `/v1beta/...`, `/openai/...`) and the control API (`/_sim/...`).
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
///
/// HTTP/1.1 and HTTP/2 without TLS (h2c, prior knowledge) on the same port.
/// An HTTP/2 connection may carry any number of concurrent streams (hyper's
/// default cap is 200): a gateway multiplexing thousands of streams to one
/// provider must not be throttled by its simulated upstream.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sim: Arc<Sim>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let app = sim.router();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http2().max_concurrent_streams(None);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        // Out of descriptors and the like: wait, then go on.
                        tracing::debug!("switchyard-sim: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // Paced chunks must leave at once, not wait for Nagle.
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::trace!("set_nodelay failed: {e}");
                }
                let service = TowerToHyperService::new(app.clone());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::trace!("switchyard-sim: connection ended: {e}");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    sim.shutdown.send_replace(true);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::debug!("switchyard-sim: in-flight answers outlived the shutdown grace");
        }
    }
    Ok(())
}

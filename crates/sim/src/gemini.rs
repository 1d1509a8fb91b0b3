//! Gemini's API: `POST /v1beta/models/{model}:{method}` for
//! `generateContent`, `streamGenerateContent?alt=sse`, `countTokens`,
//! `embedContent` and `batchEmbedContents`, shaped like
//! `fixtures/wire/gemini/`. One axum route; the method is split off the
//! model at the last `:`. The knobs are the URL model's.
//!
//! - Auth: `x-goog-api-key` or `?key=` (any non-blank value); without one,
//!   400 `INVALID_ARGUMENT` with reason `API_KEY_INVALID`, as Gemini answers
//!   a wrong key.
//! - Errors: `{"error":{"code","message","status","details"?}}`; injected
//!   errors keep the knob's status (500 `INTERNAL`, 503 `UNAVAILABLE`, 429
//!   `RESOURCE_EXHAUSTED` with a `RetryInfo` of `retry_after_s`, …).
//! - Answers: one candidate; `finishReason` `STOP` (also for function
//!   calls) or `MAX_TOKENS` when `generationConfig.maxOutputTokens` is
//!   smaller than the answer (`answer_tokens`, or the `echo`ed words).
//!   `usageMetadata` is always reported (the `usage` knob only affects
//!   OpenAI). A function call is made when
//!   `tools[].functionDeclarations` are offered, `toolConfig.
//!   functionCallingConfig.mode` is not `NONE` and the last content has no
//!   `functionResponse` part; `allowedFunctionNames[0]` selects the function.
//! - Streams: `data: {GenerateContentResponse}\r\n\r\n` chunks of
//!   `CHUNK_WORDS` words (a function call is one chunk), `finishReason` and
//!   the full `usageMetadata` on the last chunk, no `[DONE]`. A chunk is due
//!   when its first word is; `cut_after_tokens` and `error_after_tokens`
//!   count words (a function call counts as one).
//! - `error_after_tokens` ends the stream with a last chunk
//!   `data: {"error":{"code":500,"message":…,"status":"INTERNAL"}}` (the
//!   envelope of `errors/500_internal.json`) instead of the rest of the
//!   answer and its `finishReason`. This SSE form is our choice: Gemini
//!   documents none (`errors/streaming_error_without_alt_sse.json` is the
//!   JSON-array form, where the error is an element of the array).
//! - Without `alt=sse` (the JSON-array stream) the sim answers 400.
//! - Embeddings: the vectors of OpenAI's `/v1/embeddings` for the same text
//!   (the parts' texts joined by `\n`), `outputDimensionality` or 768.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::answer::Answer;
use crate::faults::{self, Fault};
use crate::pacing::{self, Frames};
use crate::record::Format;
use crate::tools::{self, Function, ToolCall};
use crate::{embeddings, text, wire, Sim};

/// Words per streamed chunk.
const CHUNK_WORDS: u32 = 4;
const DEFAULT_DIMENSIONS: usize = 768;
const KEY_INVALID: &str = "API key not valid. Please pass a valid API key.";
/// The message of the error chunk that ends a stream (`error_after_tokens`).
const STREAM_ERROR: &str = "An internal error has occurred. Please retry or try using a different model.";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Generate,
    Stream,
    CountTokens,
    Embed,
    BatchEmbed,
    Unknown,
}

impl Method {
    fn from_name(name: &str) -> Self {
        match name {
            "generateContent" => Self::Generate,
            "streamGenerateContent" => Self::Stream,
            "countTokens" => Self::CountTokens,
            "embedContent" => Self::Embed,
            "batchEmbedContents" => Self::BatchEmbed,
            _ => Self::Unknown,
        }
    }

    /// The path in the log.
    fn path(self) -> &'static str {
        match self {
            Self::Generate => "/v1beta/models/{model}:generateContent",
            Self::Stream => "/v1beta/models/{model}:streamGenerateContent",
            Self::CountTokens => "/v1beta/models/{model}:countTokens",
            Self::Embed => "/v1beta/models/{model}:embedContent",
            Self::BatchEmbed => "/v1beta/models/{model}:batchEmbedContents",
            Self::Unknown => "/v1beta/models/{model}:{method}",
        }
    }
}

/// An error in Google's `google.rpc.Status` envelope.
#[derive(Debug)]
struct ApiError {
    code: u16,
    status: &'static str,
    message: String,
    /// The `details` array, as JSON text.
    details: Option<String>,
}

impl ApiError {
    /// 400 `INVALID_ARGUMENT` with a `BadRequest` field violation.
    fn invalid(field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut d =
            String::from("[{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":[{\"field\":");
        wire::push_str_lit(&mut d, field);
        d.push_str(",\"description\":");
        wire::push_str_lit(&mut d, &description);
        d.push_str("}]}]");
        Self { code: 400, status: "INVALID_ARGUMENT", message: description, details: Some(d) }
    }

    /// Like `errors/400_api_key_invalid.json`.
    fn key_invalid() -> Self {
        let mut d = String::from(
            "[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\
             \"domain\":\"googleapis.com\",\"metadata\":{\"service\":\"generativelanguage.googleapis.com\"}},\
             {\"@type\":\"type.googleapis.com/google.rpc.LocalizedMessage\",\"locale\":\"en-US\",\"message\":",
        );
        wire::push_str_lit(&mut d, KEY_INVALID);
        d.push_str("}]");
        Self { code: 400, status: "INVALID_ARGUMENT", message: KEY_INVALID.to_owned(), details: Some(d) }
    }

    fn not_found(model: &str, method: &str) -> Self {
        let message = format!(
            "models/{model} is not found for API version v1beta, or is not supported for {method}. Call \
             ListModels to see the list of available models and their supported methods."
        );
        Self { code: 404, status: "NOT_FOUND", message, details: None }
    }

    /// Like `errors/429_resource_exhausted.json`, with `retryDelay` = `retry_after_s`.
    fn rate_limited(model: &str, retry_after_s: u64) -> Self {
        let mut d = String::from(
            "[{\"@type\":\"type.googleapis.com/google.rpc.QuotaFailure\",\"violations\":[{\"quotaMetric\":\
             \"generativelanguage.googleapis.com/generate_content_free_tier_requests\",\"quotaId\":\
             \"GenerateRequestsPerMinutePerProjectPerModel-FreeTier\",\"quotaDimensions\":{\"location\":\"global\",\
             \"model\":",
        );
        wire::push_str_lit(&mut d, model);
        d.push_str(
            "},\"quotaValue\":\"15\"}]},{\"@type\":\"type.googleapis.com/google.rpc.Help\",\"links\":[{\"description\":\
             \"Learn more about Gemini API quotas\",\"url\":\"https://ai.google.dev/gemini-api/docs/rate-limits\"}]},\
             {\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"",
        );
        wire::push_num(&mut d, retry_after_s);
        d.push_str("s\"}]");
        let message = "You exceeded your current quota, please check your plan and billing details. For more \
                       information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
            .to_owned();
        Self { code: 429, status: "RESOURCE_EXHAUSTED", message, details: Some(d) }
    }

    /// An injected error: the knob's status with its `google.rpc.Code`.
    fn injected(status: u16, model: &str) -> Self {
        let (rpc, message) = match status {
            400 => ("INVALID_ARGUMENT", "Request contains an invalid argument (simulated).".to_owned()),
            401 => ("UNAUTHENTICATED", "Request had invalid authentication credentials (simulated).".to_owned()),
            403 => ("PERMISSION_DENIED", "The caller does not have permission (simulated).".to_owned()),
            404 => return Self::not_found(model, "generateContent"),
            409 => ("ABORTED", "The operation was aborted (simulated).".to_owned()),
            499 => ("CANCELLED", "The operation was cancelled (simulated).".to_owned()),
            500 => (
                "INTERNAL",
                "An internal error has occurred. Please retry or report in \
                 https://developers.generativeai.google/guide/troubleshooting"
                    .to_owned(),
            ),
            501 => ("UNIMPLEMENTED", "The method is not implemented (simulated).".to_owned()),
            503 => ("UNAVAILABLE", "The model is overloaded. Please try again later.".to_owned()),
            504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete.".to_owned()),
            s if s >= 500 => ("INTERNAL", "An internal error has occurred (simulated).".to_owned()),
            _ => ("FAILED_PRECONDITION", "Simulated client error (switchyard-sim).".to_owned()),
        };
        Self { code: status, status: rpc, message, details: None }
    }

    fn fault(fault: Fault, model: &str) -> Self {
        match fault {
            Fault::Error(status) => Self::injected(status, model),
            Fault::RateLimited { retry_after_s } => Self::rate_limited(model, retry_after_s),
        }
    }

    /// The in-band error that ends a stream (`error_after_tokens`).
    fn stream_error() -> Self {
        Self { code: 500, status: "INTERNAL", message: STREAM_ERROR.to_owned(), details: None }
    }

    /// `{"error":{"code","message","status","details"?}}`.
    fn push_json(&self, b: &mut String) {
        b.push_str("{\"error\":{\"code\":");
        wire::push_num(b, self.code);
        b.push_str(",\"message\":");
        wire::push_str_lit(b, &self.message);
        b.push_str(",\"status\":\"");
        b.push_str(self.status);
        b.push('"');
        if let Some(details) = &self.details {
            b.push_str(",\"details\":");
            b.push_str(details);
        }
        b.push_str("}}");
    }

    fn response(&self, seq: u64) -> Response {
        let mut b = String::with_capacity(128 + self.message.len() + self.details.as_ref().map_or(0, String::len));
        self.push_json(&mut b);
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        wire::json_response(Format::Gemini, status, seq, b)
    }
}

/// What a Gemini request asks for, read before the body moves to the log.
#[derive(Debug)]
enum Request {
    Generate {
        tool: Option<ToolCall>,
        max_tokens: Option<u64>,
        /// The last user content's text, for the `echo` knob.
        echo: String,
        prompt_tokens: u32,
    },
    CountTokens {
        tokens: u32,
    },
    /// One `(seed, dimensions)` per text; `batch` = `batchEmbedContents`.
    Embed {
        items: Vec<(u64, usize)>,
        batch: bool,
    },
}

/// `POST /v1beta/models/{model_action}`.
pub(crate) async fn dispatch(
    State(sim): State<Arc<Sim>>,
    Path(model_action): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (model, method_name) = model_action.rsplit_once(':').unwrap_or((&model_action, ""));
    let method = Method::from_name(method_name);
    let (parsed, logged) = match wire::logged_body(&body) {
        Ok(v) => (parse(method, model, &v), v),
        Err(text) => (Err(ApiError::invalid("", "Invalid JSON payload received.")), text),
    };
    let rec =
        sim.record(method.path(), Format::Gemini, &headers, Some(model.to_owned()), method == Method::Stream, logged);
    let seq = rec.seq();
    let key = wire::header(&headers, "x-goog-api-key").or(wire::query_param(query.as_deref(), "key"));
    let checked = if method == Method::Unknown {
        Err(ApiError::not_found(model, method_name))
    } else if key.is_none_or(|k| k.trim().is_empty()) {
        Err(ApiError::key_invalid())
    } else if method == Method::Stream && wire::query_param(query.as_deref(), "alt") != Some("sse") {
        Err(ApiError::invalid(
            "alt",
            "switchyard-sim streams streamGenerateContent only with ?alt=sse (the JSON-array form is not simulated).",
        ))
    } else {
        parsed
    };
    let req = match checked {
        Ok(r) => r,
        Err(e) => return rec.fail(e.response(seq)),
    };
    let slot = sim.knobs.slot(model);
    if let Some(fault) = faults::inject(&sim, &slot).await {
        return rec.fail(ApiError::fault(fault, model).response(seq));
    }
    let knobs = &slot.knobs;
    let body = match req {
        Request::Generate { tool, max_tokens, echo, prompt_tokens } => {
            let plan = Plan::new(&sim, model, Answer::decide(knobs, tool, max_tokens, echo), prompt_tokens);
            if method == Method::Stream {
                return pacing::respond(rec, StreamFrames::new(plan), knobs);
            }
            render(&plan)
        }
        Request::CountTokens { tokens } => {
            let mut b = String::from("{\"totalTokens\":");
            wire::push_num(&mut b, tokens);
            b.push_str(",\"promptTokensDetails\":");
            push_modality(&mut b, tokens);
            b.push('}');
            b
        }
        Request::Embed { items, batch } => render_embeddings(&items, batch),
    };
    pacing::latency(knobs).await;
    rec.complete(body)
}

fn parse(method: Method, model: &str, v: &Value) -> Result<Request, ApiError> {
    match method {
        Method::Generate | Method::Stream => {
            let contents = contents(v, "GenerateContentRequest")?;
            let max_tokens = match v.pointer("/generationConfig/maxOutputTokens") {
                None | Some(Value::Null) => None,
                Some(m) => Some(m.as_u64().ok_or_else(|| {
                    ApiError::invalid(
                        "generation_config.max_output_tokens",
                        "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32)",
                    )
                })?),
            };
            let prompt_tokens = prompt_tokens(v.get("systemInstruction"), contents);
            // Single-turn requests may leave out `role`.
            let echo = text::last_user_text(contents, "parts", true);
            Ok(Request::Generate { tool: offered_tool(v, contents), max_tokens, echo, prompt_tokens })
        }
        Method::CountTokens => {
            // Either `contents`, or a whole `generateContentRequest`.
            let request = v.get("generateContentRequest").unwrap_or(v);
            let contents = contents(request, "CountTokensRequest")?;
            Ok(Request::CountTokens { tokens: prompt_tokens(request.get("systemInstruction"), contents) })
        }
        Method::Embed => Ok(Request::Embed { items: vec![embed_item(v, None, "")?], batch: false }),
        Method::BatchEmbed => {
            let requests = v.get("requests").and_then(Value::as_array).filter(|r| !r.is_empty()).ok_or_else(|| {
                ApiError::invalid("requests", "* BatchEmbedContentsRequest.requests: requests is not specified\n")
            })?;
            let items = requests
                .iter()
                .enumerate()
                .map(|(i, r)| embed_item(r, Some(model), &format!("requests[{i}].")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Request::Embed { items, batch: true })
        }
        Method::Unknown => Err(ApiError::not_found(model, "this method")),
    }
}

fn contents<'a>(v: &'a Value, request: &str) -> Result<&'a [Value], ApiError> {
    v.get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .map(Vec::as_slice)
        .ok_or_else(|| ApiError::invalid("contents", format!("* {request}.contents: contents is not specified\n")))
}

/// The text of `systemInstruction` and `contents` parts, one token per four characters.
fn prompt_tokens(system: Option<&Value>, contents: &[Value]) -> u32 {
    let chars: usize = text::content_chars(system.and_then(|s| s.get("parts")))
        + contents.iter().map(|c| text::content_chars(c.get("parts"))).sum::<usize>();
    text::tokens_for_chars(chars)
}

/// The function call for a generate request, or `None` for a text answer.
fn offered_tool(v: &Value, contents: &[Value]) -> Option<ToolCall> {
    let config = v.pointer("/toolConfig/functionCallingConfig");
    let mode = config.and_then(|c| c.get("mode")).and_then(Value::as_str);
    if mode.is_some_and(|m| m.eq_ignore_ascii_case("NONE")) {
        return None;
    }
    let last = contents.last()?;
    // Single-turn requests may leave out `role`.
    if last.get("role").and_then(Value::as_str).is_some_and(|r| r != "user") {
        return None;
    }
    let parts = last.get("parts").and_then(Value::as_array);
    if parts.is_some_and(|p| p.iter().any(|p| p.get("functionResponse").is_some())) {
        return None;
    }
    let functions: Vec<Function<'_>> = v
        .get("tools")?
        .as_array()?
        .iter()
        .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
        .flatten()
        .filter_map(|f| {
            let schema = f.get("parameters").or_else(|| f.get("parametersJsonSchema"));
            Some(Function { name: f.get("name")?.as_str()?, schema })
        })
        .collect();
    let forced = config
        .and_then(|c| c.get("allowedFunctionNames"))
        .and_then(Value::as_array)
        .and_then(|names| names.first())
        .and_then(Value::as_str);
    tools::call(&functions, forced)
}

/// One text to embed: its seed and dimensions. `url_model`: in a batch,
/// each request's `model` must name the URL's.
fn embed_item(v: &Value, url_model: Option<&str>, prefix: &str) -> Result<(u64, usize), ApiError> {
    if let (Some(url_model), Some(m)) = (url_model, v.get("model").and_then(Value::as_str)) {
        if m.strip_prefix("models/").unwrap_or(m) != url_model {
            return Err(ApiError::invalid(
                &format!("{prefix}model"),
                format!("Model name in the request ({m}) does not match the model in the URL (models/{url_model})."),
            ));
        }
    }
    let parts = v.pointer("/content/parts").and_then(Value::as_array).ok_or_else(|| {
        ApiError::invalid(&format!("{prefix}content"), "* EmbedContentRequest.content: content is not specified\n")
    })?;
    let texts: Vec<&str> = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
    let dims = match v.get("outputDimensionality") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(d) => d
            .as_u64()
            .filter(|d| (1..=embeddings::MAX_DIMENSIONS).contains(d))
            .and_then(|d| usize::try_from(d).ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    &format!("{prefix}output_dimensionality"),
                    format!("outputDimensionality must be between 1 and {}", embeddings::MAX_DIMENSIONS),
                )
            })?,
    };
    Ok((embeddings::seed(&texts.join("\n")), dims))
}

/// `{"embedding":{"values":[…]}}` or `{"embeddings":[{"values":[…]},…]}`.
fn render_embeddings(items: &[(u64, usize)], batch: bool) -> String {
    let mut b = String::with_capacity(32 + items.iter().map(|(_, d)| 12 * d + 16).sum::<usize>());
    b.push_str(if batch { "{\"embeddings\":[" } else { "{\"embedding\":" });
    for (i, (seed, dims)) in items.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        b.push_str("{\"values\":");
        embeddings::push_vector(&mut b, *seed, *dims);
        b.push('}');
    }
    b.push_str(if batch { "]}" } else { "}" });
    b
}

/// The answer, decided before any byte is sent.
#[derive(Debug)]
struct Plan {
    model: String,
    response_id: u64,
    answer: Answer,
    prompt_tokens: u32,
}

impl Plan {
    fn new(sim: &Sim, model: &str, answer: Answer, prompt_tokens: u32) -> Self {
        Self { model: model.to_owned(), response_id: sim.next_ids(1), answer, prompt_tokens }
    }

    fn finish_reason(&self) -> &'static str {
        match self.answer {
            Answer::Text { truncated: true, .. } => "MAX_TOKENS",
            Answer::Text { truncated: false, .. } | Answer::Tool(_) => "STOP",
        }
    }

    fn candidates_tokens(&self) -> u32 {
        match &self.answer {
            Answer::Text { words, .. } => *words,
            Answer::Tool(call) => call.tokens(),
        }
    }

    /// One `GenerateContentResponse` with the words `from..to` (or the
    /// function call); `last` adds `finishReason` and the final usage.
    fn push_response(&self, b: &mut String, (from, to): (u32, u32), last: bool, stream: bool) {
        b.push_str("{\"candidates\":[{\"content\":{\"parts\":[");
        match &self.answer {
            Answer::Text { source, .. } => {
                b.push_str("{\"text\":\"");
                for k in from..to {
                    source.push_token(b, 0, k);
                }
                b.push_str("\"}");
            }
            Answer::Tool(call) => {
                b.push_str("{\"functionCall\":{\"name\":");
                wire::push_str_lit(b, &call.name);
                b.push_str(",\"args\":");
                b.push_str(&call.arguments);
                b.push_str("}}");
            }
        }
        b.push_str("],\"role\":\"model\"}");
        if last {
            b.push_str(",\"finishReason\":\"");
            b.push_str(self.finish_reason());
            b.push('"');
        }
        b.push_str(",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":");
        wire::push_num(b, self.prompt_tokens);
        let candidates = self.candidates_tokens();
        if last {
            b.push_str(",\"candidatesTokenCount\":");
            wire::push_num(b, candidates);
        }
        b.push_str(",\"totalTokenCount\":");
        wire::push_num(b, self.prompt_tokens + if last { candidates } else { 0 });
        b.push_str(",\"promptTokensDetails\":");
        push_modality(b, self.prompt_tokens);
        // As in `stream_generate_content_text.sse`: the last text chunk of a stream details its tokens.
        if last && stream && matches!(self.answer, Answer::Text { .. }) {
            b.push_str(",\"candidatesTokensDetails\":");
            push_modality(b, candidates);
        }
        b.push_str("},\"modelVersion\":");
        wire::push_str_lit(b, &self.model);
        b.push_str(",\"responseId\":\"sim");
        wire::push_num(b, self.response_id);
        b.push_str("\"}");
    }
}

/// `[{"modality":"TEXT","tokenCount":N}]`.
fn push_modality(b: &mut String, tokens: u32) {
    b.push_str("[{\"modality\":\"TEXT\",\"tokenCount\":");
    wire::push_num(b, tokens);
    b.push_str("}]");
}

/// The `GenerateContentResponse`, shaped like `generate_content_response_*.json`.
fn render(plan: &Plan) -> String {
    let words = match plan.answer {
        Answer::Text { words, .. } => words,
        Answer::Tool(_) => 0,
    };
    let mut b = String::with_capacity(400 + plan.model.len() + words as usize * 9);
    plan.push_response(&mut b, (0, words), true, false);
    b
}

/// The chunks of a streamed answer, as in `stream_generate_content_*.sse`.
struct StreamFrames {
    plan: Plan,
    /// Word ranges per chunk (one empty range for a function call or an empty answer).
    chunks: Vec<(u32, u32)>,
    /// The chunk before which the stream stops early (see [`Frames::stop_step`]).
    stop: Option<u32>,
}

impl StreamFrames {
    fn new(plan: Plan) -> Self {
        let chunks = Self::split(&plan.answer, None);
        Self { plan, chunks, stop: None }
    }

    /// Chunks of `CHUNK_WORDS` words, also split after `at` words; a
    /// function call is one chunk.
    fn split(answer: &Answer, at: Option<u32>) -> Vec<(u32, u32)> {
        let Answer::Text { words, .. } = *answer else {
            return vec![(0, 0)];
        };
        let mut chunks = Vec::with_capacity((words / CHUNK_WORDS) as usize + 2);
        let mut from = 0;
        while from < words {
            let mut to = (from + CHUNK_WORDS).min(words);
            if let Some(n) = at.filter(|n| from < *n && *n < to) {
                to = n;
            }
            chunks.push((from, to));
            from = to;
        }
        if chunks.is_empty() {
            chunks.push((0, 0));
        }
        chunks
    }
}

impl Frames for StreamFrames {
    fn start(&self, _buf: &mut String) {}

    fn steps(&self) -> u32 {
        u32::try_from(self.chunks.len()).unwrap_or(u32::MAX)
    }

    fn step(&self, buf: &mut String, k: u32) {
        let range = self.chunks.get(k as usize).copied().unwrap_or((0, 0));
        // The last chunk finishes, unless the stream stops right after it.
        let last = k + 1 == self.steps() && self.stop != Some(self.steps());
        buf.reserve(400 + self.plan.model.len() + (range.1 - range.0) as usize * 9);
        buf.push_str("data: ");
        self.plan.push_response(buf, range, last, true);
        buf.push_str("\r\n\r\n");
    }

    fn finish(&self, _buf: &mut String) {}

    fn error(&self, buf: &mut String) {
        buf.push_str("data: ");
        ApiError::stream_error().push_json(buf);
        buf.push_str("\r\n\r\n");
    }

    fn offset(&self, k: u32) -> u32 {
        self.chunks.get(k as usize).map_or(0, |r| r.0)
    }

    /// Counts words (a function call counts as one); splits the chunk in
    /// which the stream stops.
    fn stop_step(&mut self, tokens: u32) -> Option<u32> {
        self.stop = match self.plan.answer {
            Answer::Tool(_) => (tokens <= 1).then_some(tokens),
            Answer::Text { words, .. } if tokens <= words => {
                self.chunks = Self::split(&self.plan.answer, Some(tokens));
                let sent = self.chunks.iter().filter(|(a, b)| b > a && *b <= tokens).count();
                Some(u32::try_from(sent).unwrap_or(u32::MAX))
            }
            Answer::Text { .. } => None,
        };
        self.stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(words: u32) -> Plan {
        let answer = Answer::Text { words, truncated: false, source: text::Source::Lorem };
        Plan { model: "m".into(), response_id: 1, answer, prompt_tokens: 1 }
    }

    #[test]
    fn chunks_split_where_the_stream_stops() {
        let f = StreamFrames::new(plan(10));
        assert_eq!(f.chunks, [(0, 4), (4, 8), (8, 10)]);
        assert_eq!(f.stop, None);
        let mut f = StreamFrames::new(plan(10));
        assert_eq!(f.stop_step(6), Some(2));
        assert_eq!(f.chunks, [(0, 4), (4, 6), (6, 10)]);
        assert_eq!(StreamFrames::new(plan(10)).stop_step(10), Some(3));
        assert_eq!(StreamFrames::new(plan(10)).stop_step(11), None);
        assert_eq!(StreamFrames::new(plan(10)).stop_step(0), Some(0));
        let f = StreamFrames::new(plan(0));
        assert_eq!((f.chunks.as_slice(), f.stop), (&[(0, 0)][..], None));
        assert_eq!(f.offset(0), 0);
    }
}

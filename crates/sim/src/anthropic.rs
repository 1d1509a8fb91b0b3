//! Anthropic's Messages API: `POST /v1/messages` (non-stream and stream) and
//! `POST /v1/messages/count_tokens`, shaped like `fixtures/wire/anthropic/`.
//!
//! - Headers: `x-api-key` (any non-blank value; else 401
//!   `authentication_error`) and `anthropic-version` (else 400
//!   `invalid_request_error`). Every answer carries `request-id: req_sim<seq>`.
//! - Errors: `{"type":"error","error":{"type","message"},"request_id"}` with
//!   the status↔type pairs of Anthropic's docs; injected errors keep the
//!   knob's status (503 and 529 are `overloaded_error`).
//! - A text answer is one `text` block; a tool answer is a short `text`
//!   block and a `tool_use` block (`toolu_sim<N>`), as Claude answers and as
//!   in `messages_response_tool_use.json`, or only the `tool_use` block when
//!   `tool_choice` forces the call (`any`, `tool`), as the API prefills the
//!   turn then. `usage` is always reported (the `usage` knob only affects
//!   OpenAI).
//! - Streams: `message_start`, `content_block_start`, `ping`, one
//!   `content_block_delta` per word or piece of tool input (the first
//!   `input_json_delta` is `""`), `content_block_stop`, `message_delta`,
//!   `message_stop`. `cut_after_tokens` and `error_after_tokens` count
//!   deltas; the error is `event: error` with `overloaded_error`, byte for
//!   byte as in `messages_stream_error_overloaded.sse`, instead of the rest
//!   (no `content_block_stop`, `message_delta`, `message_stop`).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use crate::answer::Answer;
use crate::faults::{self, Fault};
use crate::knobs::Knobs;
use crate::pacing::{self, Frames};
use crate::record::{Format, Recording};
use crate::text::Source;
use crate::tools::{self, Function, ToolCall};
use crate::{text, wire, Sim};

const MESSAGES: &str = "/v1/messages";
const COUNT_TOKENS: &str = "/v1/messages/count_tokens";
/// Words of the text block before a `tool_use` block the model chose to make.
const TOOL_PREAMBLE_WORDS: u32 = 2;
/// The words of a tool answer's preamble.
static LOREM: Source = Source::Lorem;
/// `anthropic-ratelimit-requests-limit` of simulated 429s.
const REQUESTS_LIMIT: u32 = 500;
/// The `data` of the `error` event ending a stream (`error_after_tokens`),
/// spaced as in `messages_stream_error_overloaded.sse`.
const STREAM_ERROR: &str = r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#;

/// An error in Anthropic's envelope.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, kind: "invalid_request_error", message: message.into() }
    }

    fn response(&self, seq: u64) -> Response {
        let mut b = String::with_capacity(96 + self.message.len());
        b.push_str("{\"type\":\"error\",\"error\":{\"type\":");
        wire::push_str_lit(&mut b, self.kind);
        b.push_str(",\"message\":");
        wire::push_str_lit(&mut b, &self.message);
        b.push_str("},\"request_id\":\"req_sim");
        wire::push_num(&mut b, seq);
        b.push_str("\"}");
        wire::json_response(Format::Anthropic, self.status, seq, b)
    }
}

/// Anthropic's answer to an injected fault.
fn fault_response(fault: Fault, seq: u64, model: &str) -> Response {
    let status = match fault {
        Fault::Error(s) => s,
        Fault::RateLimited { .. } => 429,
    };
    let (kind, message) = match status {
        400 => ("invalid_request_error", "Simulated invalid request (switchyard-sim).".to_owned()),
        401 => ("authentication_error", "invalid x-api-key".to_owned()),
        402 => ("billing_error", "Your credit balance is too low to access the Anthropic API (simulated).".to_owned()),
        403 => ("permission_error", "Your API key does not have permission to use the specified resource.".to_owned()),
        404 => ("not_found_error", format!("model: {model}")),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes.".to_owned()),
        429 => (
            "rate_limit_error",
            format!(
                "This request would exceed the rate limit for your organization (switchyard-sim) of \
                 {REQUESTS_LIMIT} requests per minute. For details, refer to: \
                 https://docs.anthropic.com/en/api/rate-limits. You can see the response headers for current \
                 usage. Please reduce the prompt length or the maximum tokens requested, or try again later."
            ),
        ),
        503 | 529 => ("overloaded_error", "Overloaded".to_owned()),
        504 => ("timeout_error", "Request timed out (simulated).".to_owned()),
        s if s >= 500 => ("api_error", "Internal server error".to_owned()),
        _ => ("invalid_request_error", "Simulated client error (switchyard-sim).".to_owned()),
    };
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = ApiError { status: code, kind, message }.response(seq);
    if let Fault::RateLimited { retry_after_s } = fault {
        let h = resp.headers_mut();
        h.insert(RETRY_AFTER, HeaderValue::from(retry_after_s));
        let reset = wire::rfc3339(wire::unix_now() + retry_after_s);
        let values = [
            ("anthropic-ratelimit-requests-limit", REQUESTS_LIMIT.to_string()),
            ("anthropic-ratelimit-requests-remaining", "0".to_owned()),
            ("anthropic-ratelimit-requests-reset", reset),
        ];
        for (name, value) in values {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static(name), v);
            }
        }
    }
    resp
}

/// What every Anthropic route does first: record the request, then check
/// the headers and `parse` the body. `Err` is the answer, already recorded.
fn receive<T>(
    sim: &Arc<Sim>,
    path: &'static str,
    headers: &HeaderMap,
    body: &[u8],
    parse: impl FnOnce(&Value) -> Result<T, ApiError>,
) -> Result<(Recording, T), Response> {
    let (parsed, logged) = match wire::logged_body(body) {
        Ok(v) => (parse(&v), v),
        Err(text) => {
            (Err(ApiError::invalid("There was an error parsing the body of your request: not valid JSON.")), text)
        }
    };
    let model = wire::str_field(&logged, "model");
    let stream = logged.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let rec = sim.record(path, Format::Anthropic, headers, model, stream, logged);
    let seq = rec.seq();
    match check_headers(headers).and(parsed) {
        Ok(req) => Ok((rec, req)),
        Err(e) => Err(rec.fail(e.response(seq))),
    }
}

fn check_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    if wire::header(headers, "x-api-key").is_none() {
        return Err(ApiError {
            status: StatusCode::UNAUTHORIZED,
            kind: "authentication_error",
            message: "x-api-key header is required".to_owned(),
        });
    }
    if wire::header(headers, "anthropic-version").is_none() {
        return Err(ApiError::invalid("anthropic-version: header is required"));
    }
    Ok(())
}

/// The fields both routes need: `model`, and `input_tokens` from `system` + `messages`.
fn parse_prompt(v: &Value) -> Result<(String, u32), ApiError> {
    if !v.is_object() {
        return Err(ApiError::invalid("Input should be a valid dictionary"));
    }
    let model = match v.get("model") {
        None | Some(Value::Null) => return Err(ApiError::invalid("model: Field required")),
        Some(m) => m.as_str().ok_or_else(|| ApiError::invalid("model: Input should be a valid string"))?,
    };
    let messages = match v.get("messages") {
        None | Some(Value::Null) => return Err(ApiError::invalid("messages: Field required")),
        Some(m) => m.as_array().ok_or_else(|| ApiError::invalid("messages: Input should be a valid list"))?,
    };
    if messages.is_empty() {
        return Err(ApiError::invalid("messages: at least one message is required"));
    }
    Ok((model.to_owned(), text::prompt_tokens(v.get("system"), messages)))
}

#[derive(Debug)]
struct MessagesRequest {
    model: String,
    stream: bool,
    max_tokens: u64,
    tool: Option<ToolCall>,
    /// Words of text before the `tool_use` block (see [`ToolChoice::preamble_words`]).
    preamble_words: u32,
    /// The last user message's text, for the `echo` knob.
    echo: String,
    input_tokens: u32,
}

fn parse_messages(v: &Value) -> Result<MessagesRequest, ApiError> {
    let (model, input_tokens) = parse_prompt(v)?;
    let max_tokens = match v.get("max_tokens") {
        None | Some(Value::Null) => return Err(ApiError::invalid("max_tokens: Field required")),
        Some(m) => m.as_u64().filter(|m| *m >= 1).ok_or_else(|| {
            ApiError::invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
        })?,
    };
    let stream = match v.get("stream") {
        None | Some(Value::Null) => false,
        Some(s) => s.as_bool().ok_or_else(|| ApiError::invalid("stream: Input should be a valid boolean"))?,
    };
    let choice = ToolChoice::of(v);
    let tool = offered_tool(v, choice);
    // `parse_prompt` checked that `messages` is an array.
    let messages = v.get("messages").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let echo = text::last_user_text(messages, "content", false);
    Ok(MessagesRequest { model, stream, max_tokens, tool, preamble_words: choice.preamble_words(), echo, input_tokens })
}

/// The request's `tool_choice`; absent or of another type, `auto`.
#[derive(Clone, Copy, Debug)]
enum ToolChoice<'a> {
    Auto,
    None,
    /// `{"type":"any"}`: some tool must be called.
    Any,
    /// `{"type":"tool","name":…}`: that tool must be called.
    Tool(Option<&'a str>),
}

impl<'a> ToolChoice<'a> {
    fn of(body: &'a Value) -> Self {
        let choice = body.get("tool_choice");
        match choice.and_then(|c| c.get("type")).and_then(Value::as_str) {
            Some("none") => Self::None,
            Some("any") => Self::Any,
            Some("tool") => Self::Tool(choice.and_then(|c| c.get("name")).and_then(Value::as_str)),
            _ => Self::Auto,
        }
    }

    /// Words of text before a `tool_use` block: none when the call is
    /// forced, as the API then prefills the assistant turn with the call.
    fn preamble_words(self) -> u32 {
        match self {
            Self::Any | Self::Tool(_) => 0,
            Self::Auto | Self::None => TOOL_PREAMBLE_WORDS,
        }
    }
}

/// The tool call for a Messages request, or `None` for a text answer: custom
/// `tools` (with an `input_schema`) are offered, `tool_choice` is not
/// `{"type":"none"}`, and the last message is the user's without a
/// `tool_result` block. `{"type":"tool","name":…}` selects that tool.
fn offered_tool(body: &Value, choice: ToolChoice<'_>) -> Option<ToolCall> {
    let tools = body.get("tools")?.as_array()?;
    let forced = match choice {
        ToolChoice::None => return None,
        ToolChoice::Tool(name) => name,
        ToolChoice::Auto | ToolChoice::Any => None,
    };
    let last = body.get("messages")?.as_array()?.last()?;
    if last.get("role")?.as_str()? != "user" {
        return None;
    }
    let blocks = last.get("content").and_then(Value::as_array);
    if blocks.is_some_and(|b| b.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))) {
        return None;
    }
    let functions: Vec<Function<'_>> = tools
        .iter()
        .filter_map(|t| Some(Function { name: t.get("name")?.as_str()?, schema: Some(t.get("input_schema")?) }))
        .collect();
    tools::call(&functions, forced)
}

/// The answer, decided before any byte is sent.
#[derive(Debug)]
struct Plan {
    id: u64,
    model: String,
    reply: Reply,
    input_tokens: u32,
}

#[derive(Debug)]
enum Reply {
    /// `words` words of `source`, then `stop_reason` `end_turn` or `max_tokens`.
    Text { words: u32, stop_reason: &'static str, source: Source },
    /// A text block of `preamble_words` lorem words (none when 0), then the call
    /// with id `toolu_sim<tool_id>`.
    Tool { tool_id: u64, call: ToolCall, preamble_words: u32 },
}

impl Plan {
    fn new(sim: &Sim, req: MessagesRequest, knobs: &Knobs) -> Self {
        let reply = match Answer::decide(knobs, req.tool, Some(req.max_tokens), req.echo) {
            Answer::Tool(call) => Reply::Tool { tool_id: sim.next_ids(1), call, preamble_words: req.preamble_words },
            Answer::Text { words, truncated, source } => {
                Reply::Text { words, stop_reason: if truncated { "max_tokens" } else { "end_turn" }, source }
            }
        };
        Self { id: sim.next_ids(1), model: req.model, reply, input_tokens: req.input_tokens }
    }

    fn stop_reason(&self) -> &'static str {
        match self.reply {
            Reply::Text { stop_reason, .. } => stop_reason,
            Reply::Tool { .. } => "tool_use",
        }
    }

    fn output_tokens(&self) -> u32 {
        match &self.reply {
            Reply::Text { words, .. } => *words,
            Reply::Tool { call, preamble_words, .. } => preamble_words + call.tokens(),
        }
    }

    /// Words of the `text` block at index 0; `None` when the answer is
    /// only a `tool_use` block.
    fn text_words(&self) -> Option<u32> {
        match self.reply {
            Reply::Text { words, .. } => Some(words),
            Reply::Tool { preamble_words: 0, .. } => None,
            Reply::Tool { preamble_words, .. } => Some(preamble_words),
        }
    }

    /// Where the words of the `text` block come from (a tool preamble's are lorem).
    fn text_source(&self) -> &Source {
        match &self.reply {
            Reply::Text { source, .. } => source,
            Reply::Tool { .. } => &LOREM,
        }
    }

    /// Index of the last content block (the `tool_use` block of a tool answer).
    fn last_block(&self) -> u32 {
        match self.reply {
            Reply::Text { .. } => 0,
            Reply::Tool { preamble_words, .. } => u32::from(preamble_words > 0),
        }
    }
}

/// `usage` as in `messages_response_tool_use.json`.
fn push_usage(b: &mut String, input: u32, output: u32) {
    b.push_str("{\"input_tokens\":");
    wire::push_num(b, input);
    b.push_str(",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":");
    wire::push_num(b, output);
    b.push_str(",\"service_tier\":\"standard\"}");
}

/// `"id":"msg_sim…","type":"message","role":"assistant","model":…` (no braces).
fn push_message_head(b: &mut String, plan: &Plan) {
    b.push_str("\"id\":\"msg_sim");
    wire::push_num(b, plan.id);
    b.push_str("\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    wire::push_str_lit(b, &plan.model);
}

/// `"id":"toolu_sim…","name":…` of a `tool_use` block (no braces).
fn push_tool_head(b: &mut String, tool_id: u64, call: &ToolCall) {
    b.push_str("\"id\":\"toolu_sim");
    wire::push_num(b, tool_id);
    b.push_str("\",\"name\":");
    wire::push_str_lit(b, &call.name);
}

/// The Message object, shaped like `messages_response_{text,tool_use}.json`.
fn render(plan: &Plan) -> String {
    let text_words = plan.text_words();
    let mut b = String::with_capacity(400 + plan.model.len() + text_words.unwrap_or(0) as usize * 9);
    b.push('{');
    push_message_head(&mut b, plan);
    b.push_str(",\"content\":[");
    if let Some(words) = text_words {
        b.push_str("{\"type\":\"text\",\"text\":\"");
        plan.text_source().push_answer(&mut b, 0, words);
        b.push_str("\"}");
    }
    if let Reply::Tool { tool_id, call, .. } = &plan.reply {
        if text_words.is_some() {
            b.push(',');
        }
        b.push_str("{\"type\":\"tool_use\",");
        push_tool_head(&mut b, *tool_id, call);
        b.push_str(",\"input\":");
        b.push_str(&call.arguments);
        b.push('}');
    }
    b.push_str("],\"stop_reason\":\"");
    b.push_str(plan.stop_reason());
    b.push_str("\",\"stop_sequence\":null,\"usage\":");
    push_usage(&mut b, plan.input_tokens, plan.output_tokens());
    b.push('}');
    b
}

pub(crate) async fn messages(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let (rec, req) = match receive(&sim, MESSAGES, &headers, &body, parse_messages) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let slot = sim.knobs.slot(&req.model);
    if let Some(fault) = faults::inject(&sim, &slot).await {
        let seq = rec.seq();
        return rec.fail(fault_response(fault, seq, &req.model));
    }
    let knobs = &slot.knobs;
    let is_stream = req.stream;
    let plan = Plan::new(&sim, req, knobs);
    if is_stream {
        return pacing::respond(rec, MessageFrames::new(plan), knobs);
    }
    pacing::latency(knobs).await;
    rec.complete(render(&plan))
}

pub(crate) async fn count_tokens(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let (rec, (model, input_tokens)) = match receive(&sim, COUNT_TOKENS, &headers, &body, parse_prompt) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let slot = sim.knobs.slot(&model);
    if let Some(fault) = faults::inject(&sim, &slot).await {
        let seq = rec.seq();
        return rec.fail(fault_response(fault, seq, &model));
    }
    pacing::latency(&slot.knobs).await;
    rec.complete(format!("{{\"input_tokens\":{input_tokens}}}"))
}

/// The events of a streamed Message, as in `messages_stream_{text,tool_use}.sse`.
struct MessageFrames {
    plan: Plan,
    /// Tool input split into `input_json_delta` pieces (after the first, empty one).
    pieces: Vec<(usize, usize)>,
}

impl MessageFrames {
    fn new(plan: Plan) -> Self {
        let pieces = match &plan.reply {
            Reply::Text { .. } => Vec::new(),
            Reply::Tool { call, .. } => call.pieces(),
        };
        Self { plan, pieces }
    }

    fn event(buf: &mut String, name: &str, data: impl FnOnce(&mut String)) {
        buf.push_str("event: ");
        buf.push_str(name);
        buf.push_str("\ndata: ");
        data(buf);
        buf.push_str("\n\n");
    }

    fn block_stop(buf: &mut String, index: u32) {
        Self::event(buf, "content_block_stop", |b| {
            b.push_str("{\"type\":\"content_block_stop\",\"index\":");
            wire::push_num(b, index);
            b.push('}');
        });
    }

    /// A `content_block_delta` whose `delta` is `{"type":KIND,FIELD:…}`.
    fn delta(buf: &mut String, index: u32, kind_and_field: &str, value: impl FnOnce(&mut String)) {
        Self::event(buf, "content_block_delta", |b| {
            b.push_str("{\"type\":\"content_block_delta\",\"index\":");
            wire::push_num(b, index);
            b.push_str(",\"delta\":{\"type\":");
            b.push_str(kind_and_field);
            value(b);
            b.push_str("}}");
        });
    }

    fn text_delta(&self, buf: &mut String, k: u32) {
        Self::delta(buf, 0, "\"text_delta\",\"text\":", |b| {
            b.push('"');
            self.plan.text_source().push_token(b, 0, k);
            b.push('"');
        });
    }

    fn json_delta(buf: &mut String, index: u32, piece: &str) {
        Self::delta(buf, index, "\"input_json_delta\",\"partial_json\":", |b| wire::push_str_lit(b, piece));
    }

    fn tool_block_start(buf: &mut String, index: u32, tool_id: u64, call: &ToolCall) {
        Self::event(buf, "content_block_start", |b| {
            b.push_str("{\"type\":\"content_block_start\",\"index\":");
            wire::push_num(b, index);
            b.push_str(",\"content_block\":{\"type\":\"tool_use\",");
            push_tool_head(b, tool_id, call);
            b.push_str(",\"caller\":{\"type\":\"direct\"},\"input\":{}}}");
        });
    }
}

impl Frames for MessageFrames {
    fn start(&self, buf: &mut String) {
        buf.reserve(600 + self.steps() as usize * 110);
        Self::event(buf, "message_start", |b| {
            b.push_str("{\"type\":\"message_start\",\"message\":{");
            push_message_head(b, &self.plan);
            b.push_str(",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
            push_usage(b, self.plan.input_tokens, 1);
            b.push_str("}}");
        });
        match &self.plan.reply {
            Reply::Tool { tool_id, call, preamble_words: 0 } => Self::tool_block_start(buf, 0, *tool_id, call),
            _ => Self::event(buf, "content_block_start", |b| {
                b.push_str(
                    "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}",
                );
            }),
        }
        Self::event(buf, "ping", |b| b.push_str("{\"type\": \"ping\"}"));
    }

    /// Text: one per word. Tool: the preamble words, the empty first input
    /// piece (with the block change after a preamble), then the input pieces.
    fn steps(&self) -> u32 {
        let pieces = u32::try_from(self.pieces.len()).unwrap_or(u32::MAX);
        match self.plan.reply {
            Reply::Text { words, .. } => words,
            Reply::Tool { preamble_words, .. } => preamble_words + 1 + pieces,
        }
    }

    fn step(&self, buf: &mut String, k: u32) {
        let Reply::Tool { tool_id, call, preamble_words } = &self.plan.reply else {
            return self.text_delta(buf, k);
        };
        let preamble_words = *preamble_words;
        if k < preamble_words {
            return self.text_delta(buf, k);
        }
        let index = self.plan.last_block();
        if k == preamble_words {
            // Without a preamble the tool_use block started with the stream.
            if preamble_words > 0 {
                Self::block_stop(buf, 0);
                Self::tool_block_start(buf, index, *tool_id, call);
            }
            return Self::json_delta(buf, index, "");
        }
        let (from, to) = self.pieces.get((k - preamble_words - 1) as usize).copied().unwrap_or((0, 0));
        Self::json_delta(buf, index, call.arguments.get(from..to).unwrap_or(""));
    }

    fn finish(&self, buf: &mut String) {
        Self::block_stop(buf, self.plan.last_block());
        Self::event(buf, "message_delta", |b| {
            b.push_str("{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
            b.push_str(self.plan.stop_reason());
            b.push_str("\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":");
            wire::push_num(b, self.plan.output_tokens());
            b.push_str("}}");
        });
        Self::event(buf, "message_stop", |b| b.push_str("{\"type\":\"message_stop\"}"));
    }

    fn error(&self, buf: &mut String) {
        Self::event(buf, "error", |b| b.push_str(STREAM_ERROR));
    }
}

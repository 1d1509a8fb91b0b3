//! `POST /v1/chat/completions`: request parsing, the answer plan and the
//! non-stream body. The stream body is in [`crate::stream`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::knobs::{Knobs, ToolCalls};
use crate::record::Outcome;
use crate::tools::{self, ToolCall};
use crate::wire::{self, BadRequest};
use crate::{faults, stream, text, Sim};

const PATH: &str = "/v1/chat/completions";

/// What the sim needs from a chat request (owned: the body moves to the log).
#[derive(Debug)]
struct ChatRequest {
    model: String,
    stream: bool,
    include_usage: bool,
    n: u32,
    max_tokens: Option<u64>,
    tool: Option<ToolCall>,
    prompt_tokens: u32,
}

/// The answer, decided before any byte is sent.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) id: u64,
    pub(crate) created: u64,
    pub(crate) model: String,
    pub(crate) n: u32,
    pub(crate) reply: Reply,
    /// Stream only: `stream_options.include_usage` and the `usage` knob.
    pub(crate) include_usage: bool,
    /// `(prompt, completion)` tokens; `None` when the `usage` knob is off.
    pub(crate) usage: Option<(u32, u32)>,
}

#[derive(Debug)]
pub(crate) enum Reply {
    /// `words` tokens per choice, then `finish` (`stop` or `length`).
    Text { words: u32, finish: &'static str },
    /// One call per choice; choice `c` has id `call_sim<first_id + c>`.
    Tool { first_id: u64, call: ToolCall },
}

pub(crate) async fn completions(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return sim.reject(PATH, &headers, wire_text(&body), BadRequest::not_json()),
    };
    let parsed = parse(&value);
    let model = value.get("model").and_then(Value::as_str).map(str::to_owned);
    let is_stream = value.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let rec = sim.record(PATH, &headers, model, is_stream, value);
    let seq = rec.seq();
    let req = match parsed {
        Ok(r) => r,
        Err(bad) => {
            rec.finish(Outcome::Failed, 400);
            return bad.into_response(seq);
        }
    };
    let slot = sim.knobs.slot(&req.model);
    if let Some((resp, status)) = faults::inject(&sim, &slot, seq, &req.model).await {
        rec.finish(Outcome::Failed, status);
        return resp;
    }
    let knobs = &slot.knobs;
    let is_stream = req.stream;
    let plan = Plan::new(&sim, req, knobs);
    if is_stream {
        return stream::respond(rec, plan, knobs);
    }
    if knobs.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(knobs.latency_ms)).await;
    }
    let body = render(&plan);
    rec.finish(Outcome::Completed, 200);
    wire::json_response(StatusCode::OK, seq, body)
}

/// A non-JSON body, kept in the log as text.
pub(crate) fn wire_text(body: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(body).into_owned())
}

fn parse(v: &Value) -> Result<ChatRequest, BadRequest> {
    if !v.is_object() {
        return Err(BadRequest::invalid("body", "a JSON object"));
    }
    let model = match v.get("model") {
        None | Some(Value::Null) => return Err(BadRequest::missing("model")),
        Some(m) => m.as_str().ok_or_else(|| BadRequest::invalid("model", "a string"))?,
    };
    let messages = match v.get("messages") {
        None | Some(Value::Null) => return Err(BadRequest::missing("messages")),
        Some(m) => m
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| BadRequest::invalid("messages", "a non-empty array"))?,
    };
    let stream = opt(v, "stream", Value::as_bool, "a boolean")?.unwrap_or(false);
    let n = opt(v, "n", Value::as_u64, "an integer")?.unwrap_or(1);
    let n = u32::try_from(n)
        .ok()
        .filter(|n| (1..=128).contains(n))
        .ok_or_else(|| BadRequest::invalid("n", "an integer between 1 and 128"))?;
    let max_completion = opt(v, "max_completion_tokens", Value::as_u64, "an integer")?;
    let max_tokens = opt(v, "max_tokens", Value::as_u64, "an integer")?;
    let include_usage = v.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    Ok(ChatRequest {
        model: model.to_owned(),
        stream,
        include_usage,
        n,
        max_tokens: max_completion.or(max_tokens),
        tool: tools::pick(v),
        prompt_tokens: text::prompt_tokens(messages),
    })
}

/// An optional field: absent or `null` is `None`, the wrong type is a 400.
fn opt<T>(
    v: &Value,
    key: &'static str,
    get: impl Fn(&Value) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, BadRequest> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => get(x).map(Some).ok_or_else(|| BadRequest::invalid(key, expected)),
    }
}

impl Plan {
    fn new(sim: &Sim, req: ChatRequest, knobs: &Knobs) -> Self {
        let n = req.n;
        let tool = req.tool.filter(|_| knobs.tool_calls == ToolCalls::Auto);
        let (reply, per_choice) = match tool {
            Some(call) => {
                let tokens = text::tokens_for_chars(call.name.len() + call.arguments.len());
                let first_id = sim.next_ids(u64::from(n));
                (Reply::Tool { first_id, call }, tokens)
            }
            None => {
                let answer = knobs.answer_tokens;
                let (words, finish) = match req.max_tokens {
                    Some(max) if max < u64::from(answer) => (u32::try_from(max).unwrap_or(answer), "length"),
                    _ => (answer, "stop"),
                };
                (Reply::Text { words, finish }, words)
            }
        };
        Self {
            id: sim.next_ids(1),
            created: wire::unix_now(),
            model: req.model,
            n,
            reply,
            include_usage: req.stream && req.include_usage && knobs.usage,
            usage: knobs.usage.then(|| (req.prompt_tokens, per_choice.saturating_mul(n))),
        }
    }

    pub(crate) fn finish_reason(&self) -> &'static str {
        match self.reply {
            Reply::Text { finish, .. } => finish,
            Reply::Tool { .. } => "tool_calls",
        }
    }
}

/// The `chat.completion` body, shaped like `chat_response_text.json` /
/// `chat_response_tool_calls.json`.
fn render(plan: &Plan) -> String {
    let words = match plan.reply {
        Reply::Text { words, .. } => words as usize,
        Reply::Tool { .. } => 16,
    };
    let mut b = String::with_capacity(600 + plan.n as usize * (160 + words * 9));
    b.push_str("{\"id\":\"chatcmpl-sim");
    wire::push_num(&mut b, plan.id);
    b.push_str("\",\"object\":\"chat.completion\",\"created\":");
    wire::push_num(&mut b, plan.created);
    b.push_str(",\"model\":");
    wire::push_str_lit(&mut b, &plan.model);
    b.push_str(",\"choices\":[");
    for c in 0..plan.n {
        if c > 0 {
            b.push(',');
        }
        b.push_str("{\"index\":");
        wire::push_num(&mut b, c);
        b.push_str(",\"message\":{\"role\":\"assistant\",\"content\":");
        match &plan.reply {
            Reply::Text { words, .. } => {
                b.push('"');
                text::push_answer(&mut b, c, *words);
                b.push_str("\",\"refusal\":null,\"annotations\":[]}");
            }
            Reply::Tool { first_id, call } => {
                b.push_str("null,\"refusal\":null,\"annotations\":[],\"tool_calls\":[{\"id\":\"call_sim");
                wire::push_num(&mut b, first_id + u64::from(c));
                b.push_str("\",\"type\":\"function\",\"function\":{\"name\":");
                wire::push_str_lit(&mut b, &call.name);
                b.push_str(",\"arguments\":");
                wire::push_str_lit(&mut b, &call.arguments);
                b.push_str("}}]}");
            }
        }
        b.push_str(",\"logprobs\":null,\"finish_reason\":\"");
        b.push_str(plan.finish_reason());
        b.push_str("\"}");
    }
    b.push(']');
    if let Some((prompt, completion)) = plan.usage {
        b.push_str(",\"usage\":");
        wire::push_chat_usage(&mut b, prompt, completion);
    }
    b.push_str(",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_sim\"}");
    b
}

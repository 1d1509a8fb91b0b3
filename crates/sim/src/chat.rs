//! `POST /v1/chat/completions` (and Azure's chat routes, see
//! [`crate::azure`]): request parsing, the answer plan and the non-stream
//! body. The stream body is in [`crate::stream`].

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::answer::Answer;
use crate::knobs::Knobs;
use crate::record::Format;
use crate::text::Source;
use crate::tools::{self, Function, ToolCall};
use crate::wire::{self, BadRequest};
use crate::{faults, pacing, stream, text, Sim};

const PATH: &str = "/v1/chat/completions";

/// Where an OpenAI-shaped request came in: OpenAI's own route or one of Azure's.
#[derive(Debug)]
pub(crate) struct Route {
    /// For the log, e.g. `/openai/deployments/{deployment}/chat/completions`.
    pub(crate) path: &'static str,
    pub(crate) format: Format,
    /// Azure deployment routes: the model, whatever the body says (it may omit `model`).
    pub(crate) deployment: Option<String>,
}

impl Route {
    pub(crate) fn openai(path: &'static str) -> Self {
        Self { path, format: Format::OpenAi, deployment: None }
    }
}

/// What the sim needs from a chat request (owned: the body moves to the log).
#[derive(Debug)]
struct ChatRequest {
    model: String,
    stream: bool,
    include_usage: bool,
    n: u32,
    max_tokens: Option<u64>,
    tool: Option<ToolCall>,
    /// The last user message's text, for the `echo` knob.
    echo: String,
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
    /// `words` tokens of `source` per choice, then `finish` (`stop` or `length`).
    Text { words: u32, finish: &'static str, source: Source },
    /// One call per choice; choice `c` has id `call_sim<first_id + c>`.
    Tool { first_id: u64, call: ToolCall },
}

pub(crate) async fn completions(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(sim, &headers, &body, Route::openai(PATH)).await
}

/// Answers a chat completion that came in on `route`.
pub(crate) async fn serve(sim: Arc<Sim>, headers: &HeaderMap, body: &[u8], route: Route) -> Response {
    let (parsed, logged) = match wire::logged_body(body) {
        Ok(v) => (parse(&v, route.deployment.as_deref()), v),
        Err(text) => (Err(BadRequest::not_json()), text),
    };
    let model = route.deployment.or_else(|| wire::str_field(&logged, "model"));
    let is_stream = logged.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let rec = sim.record(route.path, route.format, headers, model, is_stream, logged);
    let seq = rec.seq();
    let req = match parsed {
        Ok(r) => r,
        Err(bad) => return rec.fail(bad.into_response(seq)),
    };
    let slot = sim.knobs.slot(&req.model);
    if let Some(fault) = faults::inject(&sim, &slot).await {
        return rec.fail(wire::fault_response(fault, seq, &req.model));
    }
    let knobs = &slot.knobs;
    let is_stream = req.stream;
    let plan = Plan::new(&sim, req, knobs);
    if is_stream {
        return stream::respond(rec, plan, knobs);
    }
    pacing::latency(knobs).await;
    rec.complete(render(&plan))
}

/// `deployment`: the model from the URL (Azure), which makes `model` optional.
fn parse(v: &Value, deployment: Option<&str>) -> Result<ChatRequest, BadRequest> {
    if !v.is_object() {
        return Err(BadRequest::invalid("body", "a JSON object"));
    }
    let model = match (deployment, v.get("model")) {
        (Some(d), _) => d,
        (None, None | Some(Value::Null)) => return Err(BadRequest::missing("model")),
        (None, Some(m)) => m.as_str().ok_or_else(|| BadRequest::invalid("model", "a string"))?,
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
        tool: offered_tool(v),
        echo: text::last_user_text(messages, "content", false),
        prompt_tokens: text::prompt_tokens(None, messages),
    })
}

/// The tool call for a chat request, or `None` for a text answer: `tools`
/// holds a function tool, `tool_choice` is not `"none"` and the last message
/// is the user's (after a `tool` result the model answers in text). A named
/// `tool_choice` selects that tool.
fn offered_tool(body: &Value) -> Option<ToolCall> {
    let tools = body.get("tools")?.as_array()?;
    let choice = body.get("tool_choice");
    if choice.and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last_role = body.get("messages")?.as_array()?.last()?.get("role")?.as_str()?;
    if last_role != "user" {
        return None;
    }
    let functions: Vec<Function<'_>> = tools
        .iter()
        .filter_map(|t| t.get("function"))
        .filter_map(|f| Some(Function { name: f.get("name")?.as_str()?, schema: f.get("parameters") }))
        .collect();
    let forced = choice.and_then(|c| c.pointer("/function/name")).and_then(Value::as_str);
    tools::call(&functions, forced)
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
        let (reply, per_choice) = match Answer::decide(knobs, req.tool, req.max_tokens, req.echo) {
            Answer::Tool(call) => {
                let tokens = call.tokens();
                let first_id = sim.next_ids(u64::from(n));
                (Reply::Tool { first_id, call }, tokens)
            }
            Answer::Text { words, truncated, source } => {
                let finish = if truncated { "length" } else { "stop" };
                (Reply::Text { words, finish, source }, words)
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
            Reply::Text { words, source, .. } => {
                b.push('"');
                source.push_answer(&mut b, c, *words);
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(tool_choice: Value, last_role: &str) -> Value {
        json!({
            "model": "m",
            "messages": [{"role": last_role, "content": "hi"}],
            "tools": [
                {"type":"function","function":{"name":"get_weather","parameters":{
                    "type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
                {"type":"function","function":{"name":"get_stock_price","parameters":{
                    "type":"object","properties":{"ticker":{"type":["string","null"]}},"required":["ticker"]}}}
            ],
            "tool_choice": tool_choice
        })
    }

    #[test]
    fn named_choice_none_and_tool_results() {
        let call = offered_tool(&body(json!("auto"), "user")).unwrap();
        assert_eq!((call.name.as_str(), call.arguments.as_str()), ("get_weather", r#"{"city":"sample"}"#));
        let named = json!({"type":"function","function":{"name":"get_stock_price"}});
        let call = offered_tool(&body(named, "user")).unwrap();
        assert_eq!(call.name, "get_stock_price");
        assert_eq!(call.arguments, r#"{"ticker":"sample"}"#);
        assert!(offered_tool(&body(json!("none"), "user")).is_none());
        assert!(offered_tool(&body(json!("required"), "tool")).is_none());
        assert!(offered_tool(&json!({"messages":[{"role":"user"}],"tools":[]})).is_none());
    }
}

//! OpenAI chat requests ⇄ canonical.

use super::wire::{
    is_null, join, member, members, objects, only_members, parse, required_str, signature_extra, Members,
    OutFunctionCall, OutToolCall,
};
use crate::canonical::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// Top-level fields [`decode_request`] translates.
const TRANSLATED: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "max_completion_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "stream",
    "stream_options",
    "user",
    "reasoning_effort",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "n",
];

/// Hints that change no output of another provider: accepted and ignored.
const IGNORED: &[&str] = &["store", "metadata", "service_tier", "prompt_cache_key", "safety_identifier"];

/// OpenAI features no other format can express: refused, unless the value
/// asks for nothing (`null`, `logprobs: false`, `logit_bias: {}`,
/// `modalities: ["text"]`).
const REFUSED: &[&str] = &[
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "audio",
    "modalities",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
];

/// OpenAI chat request (client body) → canonical.
///
/// Accepted and ignored (no effect on another provider's output): `store`,
/// `metadata`, `service_tier`, `prompt_cache_key`, `safety_identifier`,
/// `stream_options` keys other than `include_usage`, `name` on messages,
/// `annotations` and a null `refusal` on assistant messages, and
/// `response_format.json_schema.description`. Any field set to `null` is
/// treated as absent.
///
/// Refused with an error naming the field: `logprobs`, `top_logprobs`,
/// `logit_bias`, `audio`, `modalities`, `prediction`, `web_search_options`,
/// legacy `functions` / `function_call` (each unless its value asks for
/// nothing), message `audio` and `function_call`, content parts other than
/// `text` and `image_url` (`refusal` on assistant messages), tools other
/// than `function`, and every unknown field.
///
/// `top_k` is the vLLM extension; zero or negative (vLLM's "off") reads as
/// unset.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let body = std::str::from_utf8(body).map_err(|_| TranslateError::new("", "the body is not UTF-8"))?;
    let mut req = ChatRequest::default();
    let mut model = None;
    let mut messages = None;
    let mut max_tokens = None;
    let mut max_completion_tokens = None;
    for (key, raw) in members(body, "")? {
        let key = key.as_str();
        let known = TRANSLATED.contains(&key) || IGNORED.contains(&key) || REFUSED.contains(&key);
        if known && is_null(raw) {
            continue;
        }
        match key {
            "model" => model = Some(parse::<String>(raw, key)?),
            "messages" => messages = Some(raw),
            "tools" => req.tools = decode_tools(raw)?,
            "tool_choice" => req.tool_choice = Some(decode_tool_choice(raw)?),
            "parallel_tool_calls" => req.parallel_tool_calls = Some(parse(raw, key)?),
            "response_format" => req.response_format = Some(decode_response_format(raw)?),
            "max_completion_tokens" => max_completion_tokens = Some(parse::<u32>(raw, key)?),
            "max_tokens" => max_tokens = Some(parse::<u32>(raw, key)?),
            "temperature" => req.temperature = Some(parse(raw, key)?),
            "top_p" => req.top_p = Some(parse(raw, key)?),
            "top_k" => {
                let k = parse::<i64>(raw, key)?;
                req.top_k = if k <= 0 {
                    None
                } else {
                    Some(u32::try_from(k).map_err(|_| TranslateError::new(key, "`top_k` is too large"))?)
                };
            }
            "stop" => {
                req.stop = match parse::<OneOrMany>(raw, key)? {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(v) => v,
                }
            }
            "stream" => req.stream = parse(raw, key)?,
            "stream_options" => req.include_usage = parse::<StreamOptions>(raw, key)?.include_usage.unwrap_or(false),
            "user" => req.user = Some(parse(raw, key)?),
            "reasoning_effort" => {
                req.reasoning = Some(Reasoning { effort: Some(parse(raw, key)?), budget_tokens: None })
            }
            "seed" => req.seed = Some(parse(raw, key)?),
            "presence_penalty" => req.presence_penalty = Some(parse(raw, key)?),
            "frequency_penalty" => req.frequency_penalty = Some(parse(raw, key)?),
            "n" => req.n = Some(parse(raw, key)?),
            k if IGNORED.contains(&k) => {}
            k if REFUSED.contains(&k) => {
                if !asks_for_nothing(k, raw) {
                    return Err(TranslateError::new(
                        k,
                        format!("`{k}` cannot be translated to another provider's format"),
                    ));
                }
            }
            k => return Err(TranslateError::new(k, format!("unknown field `{k}`"))),
        }
    }
    req.model = model.ok_or_else(|| TranslateError::new("model", "`model` is required"))?;
    let messages = messages.ok_or_else(|| TranslateError::new("messages", "`messages` is required"))?;
    decode_messages(messages, &mut req)?;
    req.max_tokens = max_completion_tokens.or(max_tokens);
    Ok(req)
}

/// A refused field whose value asks for nothing.
fn asks_for_nothing(key: &str, raw: &RawValue) -> bool {
    match key {
        "logprobs" => raw.get().trim() == "false",
        "logit_bias" => {
            matches!(serde_json::from_str::<serde_json::Map<String, Value>>(raw.get()), Ok(m) if m.is_empty())
        }
        "modalities" => matches!(serde_json::from_str::<Vec<String>>(raw.get()), Ok(v) if v == ["text"]),
        _ => false,
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

// ---------------------------------------------------------------------------
// Messages

/// The members of one message, read and checked against its role.
struct WireMessage<'a> {
    role: WireRole,
    content: Option<&'a RawValue>,
    tool_calls: Option<&'a RawValue>,
    tool_call_id: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum WireRole {
    /// `system` or `developer`.
    System,
    User,
    Assistant,
    Tool,
}

impl<'a> WireMessage<'a> {
    fn read(fields: &Members<'a>, path: &str) -> Result<Self, TranslateError> {
        let name = required_str(fields, path, "role")?;
        let (role, allowed): (WireRole, &[&str]) = match name.as_str() {
            "system" | "developer" => (WireRole::System, &["role", "content", "name"]),
            "user" => (WireRole::User, &["role", "content", "name"]),
            "assistant" => (
                WireRole::Assistant,
                &["role", "content", "name", "tool_calls", "reasoning_content", "reasoning", "refusal", "annotations"],
            ),
            "tool" => (WireRole::Tool, &["role", "content", "tool_call_id", "name"]),
            other => return Err(TranslateError::new(join(path, "role"), format!("unknown message role `{other}`"))),
        };
        let mut m = WireMessage {
            role,
            content: None,
            tool_calls: None,
            tool_call_id: None,
            reasoning_content: None,
            reasoning: None,
            refusal: None,
        };
        for (key, value) in fields {
            let key = key.as_str();
            if is_null(value) {
                continue;
            }
            let field = join(path, key);
            if !allowed.contains(&key) {
                let message = match key {
                    "audio" | "function_call" => format!("`{key}` cannot be translated to another provider's format"),
                    _ => format!("`{key}` is not a field of a `{name}` message"),
                };
                return Err(TranslateError::new(field, message));
            }
            match key {
                "content" => m.content = Some(*value),
                "tool_calls" => m.tool_calls = Some(*value),
                "tool_call_id" => m.tool_call_id = Some(parse(value, &field)?),
                "reasoning_content" => m.reasoning_content = Some(parse(value, &field)?),
                "reasoning" => m.reasoning = Some(parse(value, &field)?),
                "refusal" => m.refusal = Some(parse(value, &field)?),
                _ => {} // role (read above), name, annotations: no effect
            }
        }
        Ok(m)
    }
}

fn decode_messages(raw: &RawValue, req: &mut ChatRequest) -> Result<(), TranslateError> {
    let mut prev_was_tool = false;
    for (i, fields) in objects(raw, "messages")?.into_iter().enumerate() {
        let path = format!("messages[{i}]");
        let m = WireMessage::read(&fields, &path)?;
        let role = m.role;
        let content_path = join(&path, "content");
        let required_content = || m.content.ok_or_else(|| TranslateError::new(&content_path, "`content` is required"));
        match role {
            WireRole::System => {
                for part in decode_content(required_content()?, &content_path, &["text"])? {
                    if let Part::Text { text, .. } = part {
                        req.system.push(SystemBlock { text, cache_control: None });
                    }
                }
            }
            WireRole::User => {
                let parts = decode_content(required_content()?, &content_path, &["text", "image_url"])?;
                // A user message right after tool results joins them (the
                // results first), as Anthropic and Gemini want.
                match req.messages.last_mut() {
                    Some(last) if prev_was_tool => last.parts.extend(parts),
                    _ => req.messages.push(Message { role: Role::User, parts }),
                }
            }
            WireRole::Assistant => req.messages.push(decode_assistant(m, &path)?),
            WireRole::Tool => {
                let call_id = m
                    .tool_call_id
                    .ok_or_else(|| TranslateError::new(join(&path, "tool_call_id"), "`tool_call_id` is required"))?;
                let content = match m.content {
                    Some(c) => decode_content(c, &content_path, &["text"])?,
                    None => Vec::new(),
                };
                let result = Part::ToolResult(ToolResult { call_id, content, is_error: false });
                match req.messages.last_mut() {
                    Some(last) if prev_was_tool => last.parts.push(result),
                    _ => req.messages.push(Message { role: Role::User, parts: vec![result] }),
                }
            }
        }
        prev_was_tool = role == WireRole::Tool;
    }
    Ok(())
}

/// Thinking (`reasoning_content`, else `reasoning`), then text (`content`,
/// then `refusal`), then tool calls. Empty text is dropped.
fn decode_assistant(m: WireMessage<'_>, path: &str) -> Result<Message, TranslateError> {
    let mut parts = Vec::new();
    if let Some(text) = m.reasoning_content.or(m.reasoning).filter(|t| !t.is_empty()) {
        parts.push(Part::Thinking { text, signature: None });
    }
    if let Some(content) = m.content {
        for part in decode_content(content, &join(path, "content"), &["text", "refusal"])? {
            if !matches!(&part, Part::Text { text, .. } if text.is_empty()) {
                parts.push(part);
            }
        }
    }
    if let Some(text) = m.refusal.filter(|t| !t.is_empty()) {
        parts.push(Part::text(text));
    }
    if let Some(raw) = m.tool_calls {
        let calls_path = join(path, "tool_calls");
        let calls: Vec<&RawValue> = parse(raw, &calls_path)?;
        for (j, call) in calls.into_iter().enumerate() {
            parts.push(Part::ToolCall(decode_tool_call(call, &format!("{calls_path}[{j}]"))?));
        }
    }
    Ok(Message { role: Role::Assistant, parts })
}

/// Message content: a string (one text part) or an array of parts whose
/// `type` is one of `kinds`.
fn decode_content(raw: &RawValue, path: &str, kinds: &[&str]) -> Result<Vec<Part>, TranslateError> {
    if raw.get().starts_with('"') {
        return Ok(vec![Part::text(parse::<String>(raw, path)?)]);
    }
    if !raw.get().starts_with('[') {
        return Err(TranslateError::new(path, "`content` must be a string or an array of content parts"));
    }
    let mut parts = Vec::new();
    for (j, fields) in objects(raw, path)?.into_iter().enumerate() {
        parts.push(decode_part(&fields, &format!("{path}[{j}]"), kinds)?);
    }
    Ok(parts)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InImageUrl<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
    detail: Option<String>,
}

fn decode_part(fields: &Members<'_>, path: &str, kinds: &[&str]) -> Result<Part, TranslateError> {
    let type_path = join(path, "type");
    let kind = required_str(fields, path, "type")?;
    if !kinds.contains(&kind.as_str()) {
        let message = match kind.as_str() {
            "text" | "image_url" | "refusal" | "input_audio" | "file" => {
                format!("`{kind}` content cannot be translated here (this message takes: {})", kinds.join(", "))
            }
            _ => format!("unknown content part type `{kind}`"),
        };
        return Err(TranslateError::new(type_path, message));
    }
    // The one field that carries the part's value is named like its type.
    let mut value = None;
    for (key, raw) in fields {
        match key.as_str() {
            "type" => {}
            k if k == kind => value = Some(*raw),
            k => return Err(TranslateError::new(join(path, k), format!("`{k}` is not a field of a `{kind}` part"))),
        }
    }
    let value_path = join(path, &kind);
    let value = value.ok_or_else(|| TranslateError::new(&value_path, format!("`{kind}` is required")))?;
    match kind.as_str() {
        "image_url" => {
            let image: InImageUrl = parse(value, &value_path)?;
            Ok(Part::Image(match split_data_url(&image.url) {
                Some((media_type, data)) => {
                    Image::Base64 { media_type: media_type.to_string(), data: data.to_string(), detail: image.detail }
                }
                None => Image::Url { url: image.url.into_owned(), detail: image.detail },
            }))
        }
        // "text" and "refusal": text
        _ => Ok(Part::text(parse::<String>(value, &value_path)?)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    function: InFunctionCall,
    extra_content: Option<InExtraContent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InFunctionCall {
    name: String,
    arguments: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InExtraContent {
    google: Option<InGoogleExtra>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InGoogleExtra {
    thought_signature: Option<String>,
}

fn decode_tool_call(raw: &RawValue, path: &str) -> Result<ToolCall, TranslateError> {
    let call: InToolCall = parse(raw, path)?;
    if let Some(kind) = call.kind.as_deref().filter(|k| *k != "function") {
        return Err(TranslateError::new(
            join(path, "type"),
            format!("tool calls of type `{kind}` cannot be translated"),
        ));
    }
    Ok(ToolCall {
        id: call.id,
        name: call.function.name,
        arguments: call.function.arguments.unwrap_or_default(),
        signature: call.extra_content.and_then(|e| e.google).and_then(|g| g.thought_signature),
    })
}

// ---------------------------------------------------------------------------
// Tools, tool_choice, response_format

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InFunction {
    name: String,
    description: Option<String>,
    parameters: Option<Value>,
    strict: Option<bool>,
}

fn decode_tools(raw: &RawValue) -> Result<Vec<Tool>, TranslateError> {
    let mut tools = Vec::new();
    for (i, fields) in objects(raw, "tools")?.into_iter().enumerate() {
        let path = format!("tools[{i}]");
        let kind = required_str(&fields, &path, "type")?;
        if kind != "function" {
            return Err(TranslateError::new(join(&path, "type"), format!("`{kind}` tools cannot be translated")));
        }
        only_members(&fields, &path, &["type", "function"])?;
        let function_path = join(&path, "function");
        let function =
            member(&fields, "function").ok_or_else(|| TranslateError::new(&function_path, "`function` is required"))?;
        let f: InFunction = parse(function, &function_path)?;
        tools.push(Tool {
            name: f.name,
            description: f.description,
            // A function without parameters takes none.
            parameters: f.parameters.unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            strict: f.strict,
        });
    }
    Ok(tools)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InNamedFunction {
    name: String,
}

fn decode_tool_choice(raw: &RawValue) -> Result<ToolChoice, TranslateError> {
    if raw.get().starts_with('"') {
        return match parse::<String>(raw, "tool_choice")?.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            other => Err(TranslateError::new("tool_choice", format!("unknown tool_choice `{other}`"))),
        };
    }
    let fields = members(raw.get(), "tool_choice")?;
    let kind = required_str(&fields, "tool_choice", "type")?;
    if kind != "function" {
        return Err(TranslateError::new("tool_choice.type", format!("tool_choice `{kind}` cannot be translated")));
    }
    only_members(&fields, "tool_choice", &["type", "function"])?;
    let function = member(&fields, "function")
        .ok_or_else(|| TranslateError::new("tool_choice.function", "`function` is required"))?;
    let f: InNamedFunction = parse(function, "tool_choice.function")?;
    Ok(ToolChoice::Named(f.name))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InJsonSchema {
    name: String,
    /// Ignored: no other format has a place for it.
    #[allow(dead_code)]
    description: Option<String>,
    schema: Option<Value>,
    strict: Option<bool>,
}

fn decode_response_format(raw: &RawValue) -> Result<ResponseFormat, TranslateError> {
    let path = "response_format";
    let fields = members(raw.get(), path)?;
    let kind = required_str(&fields, path, "type")?;
    match kind.as_str() {
        "text" => only_members(&fields, path, &["type"]).map(|_| ResponseFormat::Text),
        "json_object" => only_members(&fields, path, &["type"]).map(|_| ResponseFormat::JsonObject),
        "json_schema" => {
            only_members(&fields, path, &["type", "json_schema"])?;
            let raw = member(&fields, "json_schema")
                .ok_or_else(|| TranslateError::new("response_format.json_schema", "`json_schema` is required"))?;
            let s: InJsonSchema = parse(raw, "response_format.json_schema")?;
            Ok(ResponseFormat::JsonSchema {
                name: s.name,
                schema: s.schema.unwrap_or_else(|| Value::Object(Default::default())),
                strict: s.strict,
            })
        }
        other => Err(TranslateError::new("response_format.type", format!("unknown response_format type `{other}`"))),
    }
}

// ---------------------------------------------------------------------------
// Encoding

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: OutContent<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutContent<'a> {
    Null,
    Text(Cow<'a, str>),
    Parts(Vec<OutPart<'a>>),
}

impl<'a> OutContent<'a> {
    /// One text part is sent as a string (none as ""), anything else as
    /// parts.
    fn from_parts(parts: Vec<OutPart<'a>>) -> Self {
        match parts.as_slice() {
            [] => OutContent::Text(Cow::Borrowed("")),
            [OutPart::Text { text }] => OutContent::Text(Cow::Borrowed(text)),
            _ => OutContent::Parts(parts),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: OutImageUrl<'a> },
}

#[derive(Serialize)]
struct OutImageUrl<'a> {
    url: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct OutTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunction<'a>,
}

#[derive(Serialize)]
struct OutFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

/// Canonical → OpenAI chat request body for `model`. Streams always ask for
/// usage (`stream_options.include_usage`).
///
/// Lossy on purpose, with no effect an OpenAI model could act on:
/// `cache_control` is dropped (OpenAI caches prompts by itself); thinking
/// parts are not sent (chat completions has no input field for them, and
/// DeepSeek refuses `reasoning_content` in input); a thinking budget sent
/// together with an effort keeps only the effort, and a budget alone
/// becomes an effort (up to 2048 tokens `low`, up to 8192 `medium`, else
/// `high`); `tool_choice` and
/// `parallel_tool_calls` are sent only with tools (OpenAI refuses them
/// otherwise); the interleaving of text and tool calls in one assistant
/// message is not kept (OpenAI holds them in separate fields).
///
/// A tool result marked as an error has no OpenAI flag: its text is sent
/// prefixed with `Error: `.
///
/// Refused: `top_k`, images in tool results or assistant messages, tool calls in user
/// messages and tool results in assistant messages.
pub fn encode_request(req: &ChatRequest, model: &str) -> Result<Vec<u8>, TranslateError> {
    if req.top_k.is_some() {
        return Err(TranslateError::unsupported("top_k", Format::OpenAi));
    }
    let reasoning_effort = match &req.reasoning {
        Some(Reasoning { effort: Some(effort), .. }) => Some(effort.as_str()),
        // The inverse of the Anthropic encoder's effort → budget table
        // (1024 / 4096 / 16384), by nearest band.
        Some(Reasoning { effort: None, budget_tokens: Some(b) }) => Some(match b {
            0..=2048 => "low",
            2049..=8192 => "medium",
            _ => "high",
        }),
        _ => None,
    };
    let mut messages = Vec::with_capacity(req.system.len() + req.messages.len());
    for block in &req.system {
        messages.push(OutMessage {
            role: "system",
            content: OutContent::Text(Cow::Borrowed(&block.text)),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    }
    for (i, message) in req.messages.iter().enumerate() {
        match message.role {
            Role::User => encode_user(message, i, &mut messages)?,
            Role::Assistant => messages.push(encode_assistant(message, i)?),
        }
    }
    let has_tools = !req.tools.is_empty();
    let out = OutRequest {
        model,
        messages,
        tools: req
            .tools
            .iter()
            .map(|t| OutTool {
                kind: "function",
                function: OutFunction {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters: &t.parameters,
                    strict: t.strict,
                },
            })
            .collect(),
        tool_choice: req.tool_choice.as_ref().filter(|_| has_tools).map(|c| match c {
            ToolChoice::Auto => Value::from("auto"),
            ToolChoice::None => Value::from("none"),
            ToolChoice::Required => Value::from("required"),
            ToolChoice::Named(name) => serde_json::json!({"type": "function", "function": {"name": name}}),
        }),
        parallel_tool_calls: req.parallel_tool_calls.filter(|_| has_tools),
        response_format: req.response_format.as_ref().map(|f| match f {
            ResponseFormat::Text => serde_json::json!({"type": "text"}),
            ResponseFormat::JsonObject => serde_json::json!({"type": "json_object"}),
            ResponseFormat::JsonSchema { name, schema, strict } => {
                let mut s = serde_json::json!({"name": name, "schema": schema});
                if let (Some(strict), Some(obj)) = (strict, s.as_object_mut()) {
                    obj.insert("strict".to_string(), Value::Bool(*strict));
                }
                serde_json::json!({"type": "json_schema", "json_schema": s})
            }
        }),
        max_completion_tokens: req.max_tokens,
        temperature: req.temperature,
        top_p: req.top_p,
        stop: &req.stop,
        stream: req.stream.then_some(true),
        stream_options: req.stream.then(|| serde_json::json!({"include_usage": true})),
        user: req.user.as_deref(),
        reasoning_effort,
        seed: req.seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        n: req.n,
    };
    serde_json::to_vec(&out).map_err(|e| TranslateError::new("", format!("could not write the request: {e}")))
}

fn image_part(image: &Image) -> OutPart<'_> {
    let (url, detail) = match image {
        Image::Url { url, detail } => (Cow::Borrowed(url.as_str()), detail),
        Image::Base64 { media_type, data, detail } => (Cow::Owned(format!("data:{media_type};base64,{data}")), detail),
    };
    OutPart::ImageUrl { image_url: OutImageUrl { url, detail: detail.as_deref() } }
}

/// A user message: one `tool` message per tool result, in order, then a
/// `user` message with the other parts (if any).
fn encode_user<'a>(message: &'a Message, i: usize, out: &mut Vec<OutMessage<'a>>) -> Result<(), TranslateError> {
    let mut rest = Vec::new();
    let mut results = 0;
    for (j, part) in message.parts.iter().enumerate() {
        match part {
            Part::Text { text, .. } => rest.push(OutPart::Text { text }),
            Part::Image(image) => rest.push(image_part(image)),
            Part::Thinking { .. } => {}
            Part::ToolResult(result) => {
                results += 1;
                out.push(tool_message(result, i, j)?);
            }
            Part::ToolCall(_) => {
                return Err(TranslateError::new(
                    format!("messages[{i}].content[{j}]"),
                    "a tool call can only be part of an assistant message",
                ))
            }
        }
    }
    if !rest.is_empty() || results == 0 {
        out.push(OutMessage {
            role: "user",
            content: OutContent::from_parts(rest),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    }
    Ok(())
}

fn tool_message(result: &ToolResult, i: usize, j: usize) -> Result<OutMessage<'_>, TranslateError> {
    let mut texts = Vec::with_capacity(result.content.len());
    for (k, part) in result.content.iter().enumerate() {
        match part {
            Part::Text { text, .. } => texts.push(text.as_str()),
            _ => {
                return Err(TranslateError::new(
                    format!("messages[{i}].content[{j}].content[{k}]"),
                    "an openai provider takes only text in tool results",
                ))
            }
        }
    }
    let content = if result.is_error {
        OutContent::Text(Cow::Owned(format!("Error: {}", texts.join("\n"))))
    } else {
        OutContent::from_parts(texts.into_iter().map(|text| OutPart::Text { text }).collect())
    };
    Ok(OutMessage { role: "tool", content, tool_calls: Vec::new(), tool_call_id: Some(&result.call_id) })
}

fn encode_assistant(message: &Message, i: usize) -> Result<OutMessage<'_>, TranslateError> {
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for (j, part) in message.parts.iter().enumerate() {
        match part {
            Part::Text { text, .. } => texts.push(OutPart::Text { text }),
            Part::ToolCall(call) => tool_calls.push(OutToolCall {
                id: &call.id,
                kind: "function",
                function: OutFunctionCall { name: &call.name, arguments: &call.arguments },
                extra_content: signature_extra(call.signature.as_deref()),
            }),
            Part::Thinking { .. } => {}
            Part::Image(_) | Part::ToolResult(_) => {
                return Err(TranslateError::new(
                    format!("messages[{i}].content[{j}]"),
                    "an openai assistant message takes only text and tool calls",
                ))
            }
        }
    }
    // OpenAI's own form for a message that only calls tools.
    let content =
        if texts.is_empty() && !tool_calls.is_empty() { OutContent::Null } else { OutContent::from_parts(texts) };
    Ok(OutMessage { role: "assistant", content, tool_calls, tool_call_id: None })
}

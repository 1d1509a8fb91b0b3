//! Anthropic messages requests ⇄ canonical.

use super::{DEFAULT_MAX_TOKENS, JSON_TOOL};
use crate::canonical::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Image media types Anthropic accepts in a `base64` source.
const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Smallest `thinking.budget_tokens` Anthropic accepts.
const MIN_THINKING_BUDGET: u32 = 1024;

// ---------------------------------------------------------------------------
// Wire shapes (decoding). Unknown keys inside these are ignored.

#[derive(Deserialize)]
struct TextBlock {
    text: String,
    #[serde(default)]
    cache_control: Option<Value>,
}

#[derive(Deserialize)]
struct ToolUseBlock {
    id: String,
    name: String,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
struct ToolResultBlock {
    tool_use_id: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    is_error: Option<bool>,
}

#[derive(Deserialize)]
struct ThinkingBlock {
    thinking: String,
    #[serde(default)]
    signature: Option<String>,
}

#[derive(Deserialize)]
struct RedactedThinkingBlock {
    data: String,
}

#[derive(Deserialize)]
struct Base64Source {
    media_type: String,
    data: String,
}

#[derive(Deserialize)]
struct UrlSource {
    url: String,
}

#[derive(Deserialize)]
struct WireTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    input_schema: Value,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct WireThinking {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    budget_tokens: Option<u32>,
}

// ---------------------------------------------------------------------------
// Decoding helpers

fn parse<T: DeserializeOwned>(value: Value, field: &str) -> Result<T, TranslateError> {
    serde_json::from_value(value).map_err(|e| TranslateError::new(field, format!("invalid `{field}`: {e}")))
}

/// Removes `key` from the body and parses it; absent and `null` are `None`.
fn take<T: DeserializeOwned>(body: &mut Map<String, Value>, key: &str) -> Result<Option<T>, TranslateError> {
    match body.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse(v, key).map(Some),
    }
}

/// The `type` of the block at `field`.
fn type_of<'a>(block: &'a Value, field: &str) -> Result<&'a str, TranslateError> {
    block
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| TranslateError::new(format!("{field}.type"), "the block has no `type`"))
}

fn unsupported_block(field: &str, kind: &str) -> TranslateError {
    TranslateError::new(format!("{field}.type"), format!("content block type `{kind}` is not supported"))
}

// ---------------------------------------------------------------------------
// Decoding

/// Anthropic messages request (client body) → canonical.
///
/// Also decodes `count_tokens` bodies, so `max_tokens` is optional here (the
/// caller checks it for `/v1/messages`); `model` and `messages` are required.
///
/// - `system`: a string or `text` blocks (`cache_control` kept).
/// - content blocks: `text` (`cache_control` kept), `image` (`base64` or
///   `url` source), `tool_use` (input becomes compact JSON text),
///   `tool_result` (string or `text`/`image` content, `is_error`),
///   `thinking` (with `signature`), `redacted_thinking` (a thinking part
///   with empty text and the data as signature, as [`super::decode_response`]
///   does, so a client can send back what it received). Any other block
///   (`document`, `search_result`, server-tool blocks, …) is refused naming
///   its `type`.
/// - `tools`: client tools only (no `type`, or `type:"custom"`); server tools
///   (`web_search_20250305`, …) are refused naming `tools[i].type`.
/// - `tool_choice.disable_parallel_tool_use: true` → `parallel_tool_calls:
///   Some(false)`.
/// - `metadata.user_id` → `user`; other `metadata` keys are refused.
/// - `thinking: {type:"enabled", budget_tokens}` → reasoning budget;
///   `type:"disabled"` → none.
/// - Any other top-level field (`container`, `mcp_servers`, `service_tier`,
///   `context_management`, …) is refused naming it.
/// - Ignored: `cache_control` on images, tool blocks and tool definitions
///   (the canonical model has no place for it; it changes cost, not output),
///   and unknown keys inside blocks (e.g. `citations`).
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let mut body: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| TranslateError::new("", format!("the request body is not a JSON object: {e}")))?;

    let model: String = take(&mut body, "model")?.ok_or_else(|| TranslateError::new("model", "`model` is required"))?;
    let max_tokens = take(&mut body, "max_tokens")?;
    let system = match body.remove("system") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => decode_system(v)?,
    };
    let messages = match body.remove("messages") {
        Some(Value::Array(items)) => {
            items.into_iter().enumerate().map(|(i, m)| decode_message(i, m)).collect::<Result<Vec<_>, _>>()?
        }
        Some(Value::Null) | None => return Err(TranslateError::new("messages", "`messages` is required")),
        Some(_) => return Err(TranslateError::new("messages", "`messages` must be an array")),
    };
    let tools = match take::<Vec<Value>>(&mut body, "tools")? {
        Some(tools) => tools.into_iter().enumerate().map(|(i, t)| decode_tool(i, t)).collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let (tool_choice, parallel_tool_calls) = match take::<WireToolChoice>(&mut body, "tool_choice")? {
        Some(choice) => decode_tool_choice(choice)?,
        None => (None, None),
    };
    let stop = take::<Vec<String>>(&mut body, "stop_sequences")?.unwrap_or_default();
    let temperature = take(&mut body, "temperature")?;
    let top_p = take(&mut body, "top_p")?;
    let top_k = take(&mut body, "top_k")?;
    let stream = take::<bool>(&mut body, "stream")?.unwrap_or(false);
    let user = match take::<Map<String, Value>>(&mut body, "metadata")? {
        Some(metadata) => decode_metadata(metadata)?,
        None => None,
    };
    let reasoning = match take::<WireThinking>(&mut body, "thinking")? {
        Some(thinking) => decode_thinking(thinking)?,
        None => None,
    };
    if let Some(key) = body.keys().next() {
        return Err(TranslateError::new(key.as_str(), format!("`{key}` is not supported by this gateway")));
    }

    Ok(ChatRequest {
        model,
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        max_tokens,
        temperature,
        top_p,
        top_k,
        stop,
        stream,
        user,
        reasoning,
        ..ChatRequest::default()
    })
}

fn decode_system(value: Value) -> Result<Vec<SystemBlock>, TranslateError> {
    match value {
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![SystemBlock { text, cache_control: None }]),
        Value::Array(blocks) => blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| {
                let field = format!("system[{i}]");
                let kind = type_of(&block, &field)?;
                if kind != "text" {
                    return Err(unsupported_block(&field, kind));
                }
                let b: TextBlock = parse(block, &field)?;
                Ok(SystemBlock { text: b.text, cache_control: b.cache_control })
            })
            .collect(),
        _ => Err(TranslateError::new("system", "`system` must be a string or an array of text blocks")),
    }
}

fn decode_message(i: usize, value: Value) -> Result<Message, TranslateError> {
    let field = format!("messages[{i}]");
    let Value::Object(mut message) = value else {
        return Err(TranslateError::new(field, "a message must be an object"));
    };
    let role = match message.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some(other) => {
            return Err(TranslateError::new(
                format!("{field}.role"),
                format!("role `{other}` is not supported: messages are `user` or `assistant`, system prompts go in the top-level `system`"),
            ))
        }
        None => return Err(TranslateError::new(format!("{field}.role"), "`role` is required")),
    };
    let parts = match message.remove("content") {
        Some(Value::String(text)) => vec![Part::text(text)],
        Some(Value::Array(blocks)) => blocks
            .into_iter()
            .enumerate()
            .map(|(j, block)| decode_block(block, &format!("{field}.content[{j}]")))
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(TranslateError::new(
                format!("{field}.content"),
                "`content` must be a string or an array of blocks",
            ))
        }
    };
    Ok(Message { role, parts })
}

fn decode_block(block: Value, field: &str) -> Result<Part, TranslateError> {
    let kind = type_of(&block, field)?;
    if kind == "text" {
        let b: TextBlock = parse(block, field)?;
        Ok(Part::Text { text: b.text, cache_control: b.cache_control })
    } else if kind == "image" {
        decode_image(block, field)
    } else if kind == "tool_use" {
        let b: ToolUseBlock = parse(block, field)?;
        let arguments = b.input.map_or_else(|| "{}".to_string(), |input| input.to_string());
        Ok(Part::ToolCall(ToolCall { id: b.id, name: b.name, arguments, signature: None }))
    } else if kind == "tool_result" {
        decode_tool_result(block, field)
    } else if kind == "thinking" {
        let b: ThinkingBlock = parse(block, field)?;
        Ok(Part::Thinking { text: b.thinking, signature: b.signature })
    } else if kind == "redacted_thinking" {
        let b: RedactedThinkingBlock = parse(block, field)?;
        Ok(Part::Thinking { text: String::new(), signature: Some(b.data) })
    } else {
        Err(unsupported_block(field, kind))
    }
}

fn decode_image(mut block: Value, field: &str) -> Result<Part, TranslateError> {
    let source = block.get_mut("source").map(Value::take).unwrap_or(Value::Null);
    let field = format!("{field}.source");
    let kind = type_of(&source, &field)?;
    if kind == "base64" {
        let s: Base64Source = parse(source, &field)?;
        Ok(Part::Image(Image::Base64 { media_type: s.media_type, data: s.data, detail: None }))
    } else if kind == "url" {
        let s: UrlSource = parse(source, &field)?;
        Ok(Part::Image(Image::Url { url: s.url, detail: None }))
    } else {
        Err(TranslateError::new(format!("{field}.type"), format!("image source type `{kind}` is not supported")))
    }
}

fn decode_tool_result(block: Value, field: &str) -> Result<Part, TranslateError> {
    let b: ToolResultBlock = parse(block, field)?;
    let content = match b.content {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![Part::text(text)],
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(k, item)| {
                let field = format!("{field}.content[{k}]");
                let kind = type_of(&item, &field)?;
                if kind == "text" {
                    let t: TextBlock = parse(item, &field)?;
                    Ok(Part::Text { text: t.text, cache_control: t.cache_control })
                } else if kind == "image" {
                    decode_image(item, &field)
                } else {
                    Err(unsupported_block(&field, kind))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(TranslateError::new(
                format!("{field}.content"),
                "`content` must be a string or an array of blocks",
            ))
        }
    };
    Ok(Part::ToolResult(ToolResult { call_id: b.tool_use_id, content, is_error: b.is_error.unwrap_or(false) }))
}

fn decode_tool(i: usize, tool: Value) -> Result<Tool, TranslateError> {
    let field = format!("tools[{i}]");
    match tool.get("type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind == "custom" => {}
        Some(kind) => {
            return Err(TranslateError::new(
                format!("{field}.type"),
                format!("tool type {kind} (a server tool) is not supported; only client tools are"),
            ))
        }
    }
    let t: WireTool = parse(tool, &field)?;
    Ok(Tool { name: t.name, description: t.description, parameters: t.input_schema, strict: t.strict })
}

fn decode_tool_choice(choice: WireToolChoice) -> Result<(Option<ToolChoice>, Option<bool>), TranslateError> {
    let tool_choice = match choice.kind.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => match choice.name {
            Some(name) => ToolChoice::Named(name),
            None => return Err(TranslateError::new("tool_choice.name", "`tool_choice` of type `tool` needs a `name`")),
        },
        other => {
            return Err(TranslateError::new("tool_choice.type", format!("tool_choice type `{other}` is not supported")))
        }
    };
    let parallel = if choice.disable_parallel_tool_use == Some(true) { Some(false) } else { None };
    Ok((Some(tool_choice), parallel))
}

fn decode_metadata(metadata: Map<String, Value>) -> Result<Option<String>, TranslateError> {
    let mut user = None;
    for (key, value) in metadata {
        if key != "user_id" {
            return Err(TranslateError::new(format!("metadata.{key}"), format!("`metadata.{key}` is not supported")));
        }
        user = parse::<Option<String>>(value, "metadata.user_id")?;
    }
    Ok(user)
}

fn decode_thinking(thinking: WireThinking) -> Result<Option<Reasoning>, TranslateError> {
    match thinking.kind.as_str() {
        "enabled" => match thinking.budget_tokens {
            Some(budget) => Ok(Some(Reasoning { effort: None, budget_tokens: Some(budget) })),
            None => Err(TranslateError::new("thinking.budget_tokens", "`thinking.budget_tokens` is required")),
        },
        "disabled" => Ok(None),
        other => Err(TranslateError::new("thinking.type", format!("thinking type `{other}` is not supported"))),
    }
}

// ---------------------------------------------------------------------------
// Encoding

/// Canonical → Anthropic messages request body for `model`.
///
/// Refused: `seed`, `presence_penalty`, `frequency_penalty`, `n` > 1 (no
/// Anthropic equivalent); tool-call arguments that are not a JSON object;
/// base64 images other than jpeg/png/gif/webp; `response_format` JSON
/// together with tools or thinking; a `reasoning_effort` that does not fit.
///
/// Changed:
/// - `max_tokens`: the client's value, else [`DEFAULT_MAX_TOKENS`] (or the
///   thinking budget plus [`DEFAULT_MAX_TOKENS`] when thinking needs more);
/// - `temperature` above 1 is clamped to 1.0 (Anthropic's range is 0–1);
/// - `reasoning.budget_tokens` → `thinking.budget_tokens`; `reasoning.effort`
///   alone maps `minimal`/`low` → 1024, `medium` → 4096, `high` → 16384
///   (capped below `max_tokens`), `none` → no thinking;
/// - JSON output (`response_format` `json_schema` / `json_object`) is
///   emulated by one forced tool named [`JSON_TOOL`] whose input schema is the
///   wanted schema (`{"type":"object"}` for `json_object`); the response
///   decoders turn its input back into text;
/// - consecutive messages of one role are merged; in a user message the
///   tool results come first;
/// - a tool without a schema gets `{"type":"object","properties":{}}`;
/// - `tool_choice` is only sent with tools; `parallel_tool_calls: false`
///   becomes `disable_parallel_tool_use: true` (on `auto` when no choice).
///
/// Dropped: image `detail`, tool `strict` (the schema still applies),
/// `include_usage` (Anthropic always reports usage), empty text parts,
/// thinking parts without a signature (Anthropic only accepts its own
/// signed thinking; it would refuse them), and empty messages. A thinking
/// part with empty text and a signature is sent as `redacted_thinking`.
pub fn encode_request(req: &ChatRequest, model: &str) -> Result<Vec<u8>, TranslateError> {
    if req.seed.is_some() {
        return Err(TranslateError::unsupported("seed", Format::Anthropic));
    }
    if req.presence_penalty.is_some() {
        return Err(TranslateError::unsupported("presence_penalty", Format::Anthropic));
    }
    if req.frequency_penalty.is_some() {
        return Err(TranslateError::unsupported("frequency_penalty", Format::Anthropic));
    }
    if req.n.is_some_and(|n| n > 1) {
        return Err(TranslateError::unsupported("n", Format::Anthropic));
    }

    let budget = thinking_budget(req)?;
    let max_tokens = match (req.max_tokens, budget) {
        (Some(max), _) => max,
        (None, Some(budget)) if budget >= DEFAULT_MAX_TOKENS => budget.saturating_add(DEFAULT_MAX_TOKENS),
        (None, _) => DEFAULT_MAX_TOKENS,
    };

    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(max_tokens));
    if let Some(system) = encode_system(&req.system) {
        body.insert("system".into(), system);
    }
    body.insert("messages".into(), Value::Array(encode_messages(&req.messages)?));

    let (tools, tool_choice) = match &req.response_format {
        Some(ResponseFormat::JsonSchema { name, schema, .. }) => json_tool(req, budget, name, schema.clone())?,
        Some(ResponseFormat::JsonObject) => json_tool(req, budget, "", json!({"type": "object"}))?,
        Some(ResponseFormat::Text) | None => (req.tools.iter().map(encode_tool).collect(), encode_tool_choice(req)),
    };
    if !tools.is_empty() {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = tool_choice {
            body.insert("tool_choice".into(), choice);
        }
    }
    if !req.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(req.stop));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t.min(1.0)));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    if let Some(k) = req.top_k {
        body.insert("top_k".into(), json!(k));
    }
    if let Some(user) = &req.user {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    if let Some(budget) = budget {
        body.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": budget}));
    }
    if req.stream {
        body.insert("stream".into(), json!(true));
    }
    serde_json::to_vec(&Value::Object(body)).map_err(|e| TranslateError::new("", e.to_string()))
}

/// The thinking budget to send, if any (see [`encode_request`]).
fn thinking_budget(req: &ChatRequest) -> Result<Option<u32>, TranslateError> {
    let Some(reasoning) = &req.reasoning else { return Ok(None) };
    if let Some(budget) = reasoning.budget_tokens {
        return Ok(Some(budget));
    }
    let Some(effort) = reasoning.effort.as_deref() else { return Ok(None) };
    let mapped = match effort {
        "none" => return Ok(None),
        "minimal" | "low" => 1024,
        "medium" => 4096,
        "high" => 16384,
        other => {
            return Err(TranslateError::new(
                "reasoning_effort",
                format!("reasoning effort `{other}` has no Anthropic thinking budget (low, medium or high)"),
            ))
        }
    };
    let budget = match req.max_tokens {
        Some(max) => mapped.min(max.saturating_sub(1)),
        None => mapped,
    };
    if budget < MIN_THINKING_BUDGET {
        return Err(TranslateError::new(
            "reasoning_effort",
            format!("Anthropic thinking needs a budget of at least {MIN_THINKING_BUDGET} tokens below max_tokens"),
        ));
    }
    Ok(Some(budget))
}

fn encode_system(system: &[SystemBlock]) -> Option<Value> {
    match system {
        [] => None,
        [only] if only.cache_control.is_none() => Some(json!(only.text)),
        blocks => Some(Value::Array(blocks.iter().map(|b| text_block(&b.text, b.cache_control.as_ref())).collect())),
    }
}

fn text_block(text: &str, cache_control: Option<&Value>) -> Value {
    let mut block = json!({"type": "text", "text": text});
    if let (Some(cc), Some(obj)) = (cache_control, block.as_object_mut()) {
        obj.insert("cache_control".into(), cc.clone());
    }
    block
}

fn image_block(image: &Image, field: impl Fn() -> String) -> Result<Value, TranslateError> {
    match image {
        Image::Base64 { media_type, data, .. } => {
            if !IMAGE_TYPES.contains(&media_type.as_str()) {
                return Err(TranslateError::new(
                    field(),
                    format!("image type `{media_type}` is not supported by Anthropic (jpeg, png, gif or webp)"),
                ));
            }
            Ok(json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}))
        }
        Image::Url { url, .. } => Ok(json!({"type": "image", "source": {"type": "url", "url": url}})),
    }
}

fn role_str(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// One outgoing message being assembled: tool results first, then the rest.
struct Turn {
    role: Role,
    results: Vec<Value>,
    others: Vec<Value>,
}

fn encode_messages(messages: &[Message]) -> Result<Vec<Value>, TranslateError> {
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let mut results = Vec::new();
        let mut others = Vec::new();
        let mut calls = 0usize;
        for (j, part) in message.parts.iter().enumerate() {
            match part {
                Part::Text { text, cache_control } => {
                    if !text.is_empty() || cache_control.is_some() {
                        others.push(text_block(text, cache_control.as_ref()));
                    }
                }
                Part::Image(image) => others.push(image_block(image, || format!("messages[{i}].content[{j}]"))?),
                Part::ToolCall(call) => {
                    let field = format!("messages[{i}].tool_calls[{calls}].function.arguments");
                    calls += 1;
                    let input = arguments_object(&call.arguments, &field)?;
                    others.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                Part::ToolResult(result) => {
                    let block = tool_result_block(result, i, j)?;
                    match message.role {
                        Role::User => results.push(block),
                        Role::Assistant => others.push(block),
                    }
                }
                Part::Thinking { text, signature: Some(signature) } if text.is_empty() => {
                    others.push(json!({"type": "redacted_thinking", "data": signature}));
                }
                Part::Thinking { text, signature: Some(signature) } => {
                    others.push(json!({"type": "thinking", "thinking": text, "signature": signature}));
                }
                Part::Thinking { signature: None, .. } => {}
            }
        }
        match turns.last_mut() {
            Some(last) if last.role == message.role => {
                last.results.append(&mut results);
                last.others.append(&mut others);
            }
            _ => turns.push(Turn { role: message.role, results, others }),
        }
    }
    Ok(turns
        .into_iter()
        .filter(|t| !t.results.is_empty() || !t.others.is_empty())
        .map(|mut t| {
            t.results.append(&mut t.others);
            json!({"role": role_str(t.role), "content": t.results})
        })
        .collect())
}

fn tool_result_block(result: &ToolResult, i: usize, j: usize) -> Result<Value, TranslateError> {
    let mut block = Map::new();
    block.insert("type".into(), json!("tool_result"));
    block.insert("tool_use_id".into(), json!(result.call_id));
    match result.content.as_slice() {
        [] => {}
        [Part::Text { text, cache_control: None }] => {
            block.insert("content".into(), json!(text));
        }
        parts => {
            let mut content = Vec::with_capacity(parts.len());
            for (k, part) in parts.iter().enumerate() {
                let field = || format!("messages[{i}].content[{j}].content[{k}]");
                match part {
                    Part::Text { text, cache_control } => content.push(text_block(text, cache_control.as_ref())),
                    Part::Image(image) => content.push(image_block(image, field)?),
                    _ => return Err(TranslateError::new(field(), "a tool result may hold only text and images")),
                }
            }
            block.insert("content".into(), Value::Array(content));
        }
    }
    if result.is_error {
        block.insert("is_error".into(), json!(true));
    }
    Ok(Value::Object(block))
}

fn encode_tool(tool: &Tool) -> Value {
    let schema =
        if tool.parameters.is_null() { json!({"type": "object", "properties": {}}) } else { tool.parameters.clone() };
    let mut out = json!({"name": tool.name, "input_schema": schema});
    if let (Some(description), Some(obj)) = (&tool.description, out.as_object_mut()) {
        obj.insert("description".into(), json!(description));
    }
    out
}

fn encode_tool_choice(req: &ChatRequest) -> Option<Value> {
    let disable_parallel = req.parallel_tool_calls == Some(false);
    let mut choice = match &req.tool_choice {
        Some(ToolChoice::None) => return Some(json!({"type": "none"})),
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Named(name)) => json!({"type": "tool", "name": name}),
        None if disable_parallel => json!({"type": "auto"}),
        None => return None,
    };
    if let (true, Some(obj)) = (disable_parallel, choice.as_object_mut()) {
        obj.insert("disable_parallel_tool_use".into(), json!(true));
    }
    Some(choice)
}

/// Tools and tool choice emulating JSON output with [`JSON_TOOL`].
fn json_tool(
    req: &ChatRequest,
    budget: Option<u32>,
    name: &str,
    schema: Value,
) -> Result<(Vec<Value>, Option<Value>), TranslateError> {
    if !req.tools.is_empty() {
        return Err(TranslateError::new(
            "response_format",
            "JSON output cannot be combined with tools on an Anthropic provider (it is emulated with a forced tool call)",
        ));
    }
    if budget.is_some() {
        return Err(TranslateError::new(
            "response_format",
            "JSON output cannot be combined with thinking on an Anthropic provider (forced tool calls exclude thinking)",
        ));
    }
    let description = if name.is_empty() {
        "Give the answer by calling this tool: its input is the JSON output.".to_string()
    } else {
        format!("Give the answer by calling this tool: its input is the JSON output `{name}`.")
    };
    let tool = json!({"name": JSON_TOOL, "description": description, "input_schema": schema});
    Ok((vec![tool], Some(json!({"type": "tool", "name": JSON_TOOL}))))
}

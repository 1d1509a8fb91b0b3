//! Canonical request → `generateContent` body (camelCase).

use crate::canonical::*;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Thinking budgets for OpenAI-style reasoning efforts (the mapping common
/// for Gemini 2.5 models; not shown in the wire fixtures).
const EFFORT_BUDGETS: [(&str, u32); 3] = [("low", 1024), ("medium", 8192), ("high", 24576)];

/// Canonical → `generateContent` request body. The model is not in the
/// body: it goes in the URL ([`super::chat_path`]). See the module docs
/// for what is refused, ignored or approximated.
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, TranslateError> {
    if req.parallel_tool_calls == Some(false) {
        return Err(TranslateError::unsupported("parallel_tool_calls", Format::Gemini));
    }
    let mut body = Map::new();

    let system: Vec<Value> =
        req.system.iter().filter(|b| !b.text.is_empty()).map(|b| json!({ "text": b.text })).collect();
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    body.insert("contents".into(), Value::Array(encode_contents(&req.messages)?));
    if !req.tools.is_empty() {
        body.insert("tools".into(), encode_tools(&req.tools)?);
    }
    if let Some(config) = encode_tool_choice(req.tool_choice.as_ref(), !req.tools.is_empty())? {
        body.insert("toolConfig".into(), config);
    }
    let generation = encode_generation_config(req)?;
    if !generation.is_empty() {
        body.insert("generationConfig".into(), Value::Object(generation));
    }
    serde_json::to_vec(&Value::Object(body)).map_err(|e| TranslateError::new("", e.to_string()))
}

/// Messages → `contents`. Tool results are linked to their calls by name
/// (Gemini has no ids) and put in call order; empty messages are skipped.
fn encode_contents(messages: &[Message]) -> Result<Vec<Value>, TranslateError> {
    // call id → (function name, position among all calls of the request)
    let mut calls: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut contents: Vec<Turn> = Vec::new();
    for (i, msg) in messages.iter().enumerate() {
        let mut responses: Vec<(usize, Value)> = Vec::new();
        let mut parts: Vec<Value> = Vec::new();
        for (j, part) in msg.parts.iter().enumerate() {
            let field = || format!("messages[{i}].content[{j}]");
            match part {
                Part::Text { text, .. } => {
                    if !text.is_empty() {
                        parts.push(json!({ "text": text }));
                    }
                }
                Part::Image(image) => parts.push(encode_image(image)),
                Part::ToolCall(call) => {
                    if msg.role != Role::Assistant {
                        return Err(TranslateError::new(field(), "tool calls can only appear in assistant messages"));
                    }
                    let args = arguments_object(&call.arguments, "").map_err(|mut e| {
                        e.field = format!("{}.arguments", field());
                        e
                    })?;
                    let mut value = json!({ "functionCall": { "name": call.name, "args": args } });
                    if let (Some(sig), Value::Object(map)) = (&call.signature, &mut value) {
                        map.insert("thoughtSignature".into(), Value::String(sig.clone()));
                    }
                    let position = calls.len();
                    calls.insert(call.id.as_str(), (call.name.as_str(), position));
                    parts.push(value);
                }
                Part::ToolResult(result) => {
                    if msg.role != Role::User {
                        return Err(TranslateError::new(field(), "tool results can only appear in user messages"));
                    }
                    let Some(&(name, position)) = calls.get(result.call_id.as_str()) else {
                        return Err(TranslateError::new(
                            format!("{}.tool_call_id", field()),
                            format!(
                                "no earlier tool call has the id `{}`; Gemini needs the function name",
                                result.call_id
                            ),
                        ));
                    };
                    let response = encode_tool_result(result, &field())?;
                    responses.push((position, json!({ "functionResponse": { "name": name, "response": response } })));
                }
                // Gemini needs only the signatures on function calls back.
                Part::Thinking { .. } => {}
            }
        }
        if responses.is_empty() && parts.is_empty() {
            continue;
        }
        // Results split over consecutive user messages join the previous
        // results-only content: Gemini wants one response turn per call turn.
        if let Some(last) = contents.last_mut() {
            if msg.role == Role::User && last.role == Role::User && last.parts.is_empty() && !responses.is_empty() {
                last.responses.append(&mut responses);
                last.parts = parts;
                continue;
            }
        }
        contents.push(Turn { role: msg.role, responses, parts });
    }
    Ok(contents.into_iter().map(Turn::into_content).collect())
}

/// One `contents` entry being built: function responses (with the position
/// of their call) and the other parts.
struct Turn {
    role: Role,
    responses: Vec<(usize, Value)>,
    parts: Vec<Value>,
}

impl Turn {
    /// Parallel results go first, in the order of their calls.
    fn into_content(mut self) -> Value {
        self.responses.sort_by_key(|(position, _)| *position);
        let mut all: Vec<Value> = self.responses.into_iter().map(|(_, v)| v).collect();
        all.append(&mut self.parts);
        let role = match self.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        json!({ "role": role, "parts": all })
    }
}

/// An image as `inlineData`, or `fileData` for a URL (MIME type guessed
/// from the extension).
fn encode_image(image: &Image) -> Value {
    match image {
        Image::Base64 { media_type, data, .. } => json!({ "inlineData": { "mimeType": media_type, "data": data } }),
        Image::Url { url, .. } => match split_data_url(url) {
            Some((media_type, data)) => json!({ "inlineData": { "mimeType": media_type, "data": data } }),
            None => json!({ "fileData": { "mimeType": guess_image_mime(url), "fileUri": url } }),
        },
    }
}

/// The image MIME type for a URL's extension: png, jpeg/jpg, gif, webp;
/// `image/jpeg` otherwise.
pub(crate) fn guess_image_mime(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase());
    match ext.as_deref() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        _ => "image/jpeg",
    }
}

/// A tool result's `functionResponse.response`: the text if it is a JSON
/// object, else `{"result": text}`; `{"error": text}` for an error.
fn encode_tool_result(result: &ToolResult, field: &str) -> Result<Value, TranslateError> {
    let mut text = String::new();
    for (k, part) in result.content.iter().enumerate() {
        match part {
            Part::Text { text: t, .. } => text.push_str(t),
            Part::Image(_) => return Err(TranslateError::unsupported(format!("{field}.content[{k}]"), Format::Gemini)),
            _ => {
                return Err(TranslateError::new(
                    format!("{field}.content[{k}]"),
                    "tool results hold only text and images",
                ))
            }
        }
    }
    if result.is_error {
        return Ok(json!({ "error": text }));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Ok(json!({ "result": text })),
    }
}

/// Tools → one `Tool` holding every function declaration.
fn encode_tools(tools: &[Tool]) -> Result<Value, TranslateError> {
    let mut declarations = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let mut decl = Map::new();
        decl.insert("name".into(), Value::String(tool.name.clone()));
        if let Some(description) = tool.description.as_ref().filter(|d| !d.is_empty()) {
            decl.insert("description".into(), Value::String(description.clone()));
        }
        let schema = sanitize_schema(&tool.parameters, &format!("tools[{i}].function.parameters"))?;
        if !is_empty_object_schema(&schema) {
            decl.insert("parameters".into(), schema);
        }
        declarations.push(Value::Object(decl));
    }
    Ok(json!([{ "functionDeclarations": declarations }]))
}

/// True for a schema that declares no arguments (`null`, `{}`, or an object
/// type without properties), which Gemini wants left out.
fn is_empty_object_schema(schema: &Value) -> bool {
    match schema {
        Value::Null => true,
        Value::Object(map) => {
            let object_type = match map.get("type") {
                None => true,
                Some(Value::String(t)) => t.eq_ignore_ascii_case("object"),
                Some(_) => false,
            };
            let no_properties = match map.get("properties") {
                None => true,
                Some(Value::Object(p)) => p.is_empty(),
                Some(_) => false,
            };
            object_type && no_properties && !map.contains_key("anyOf")
        }
        _ => false,
    }
}

/// JSON Schema → Gemini's OpenAPI-subset schema: drops `$schema`,
/// `additionalProperties`, `$defs`, `definitions`, `strict`; turns
/// `type: [T, "null"]` into `type: T, nullable: true`; refuses `$ref`
/// (error naming `field`).
pub(crate) fn sanitize_schema(schema: &Value, field: &str) -> Result<Value, TranslateError> {
    let Value::Object(map) = schema else {
        return Ok(schema.clone());
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "$ref" => {
                return Err(TranslateError::new(
                    field,
                    "`$ref` cannot be sent to a gemini provider: inline the referenced schema",
                ))
            }
            "$schema" | "additionalProperties" | "$defs" | "definitions" | "strict" => {}
            "properties" => {
                let value = match value {
                    Value::Object(props) => {
                        let mut clean = Map::new();
                        for (name, prop) in props {
                            clean.insert(name.clone(), sanitize_schema(prop, field)?);
                        }
                        Value::Object(clean)
                    }
                    other => other.clone(),
                };
                out.insert(key.clone(), value);
            }
            "items" | "not" => {
                out.insert(key.clone(), sanitize_schema_or_list(value, field)?);
            }
            "anyOf" | "oneOf" | "allOf" | "prefixItems" => {
                out.insert(key.clone(), sanitize_schema_or_list(value, field)?);
            }
            "type" => match nullable_type(value) {
                Some(t) => {
                    out.insert("type".into(), Value::String(t.to_string()));
                    out.entry("nullable").or_insert(Value::Bool(true));
                }
                None => {
                    out.insert(key.clone(), value.clone());
                }
            },
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(Value::Object(out))
}

fn sanitize_schema_or_list(value: &Value, field: &str) -> Result<Value, TranslateError> {
    match value {
        Value::Array(items) => {
            items.iter().map(|v| sanitize_schema(v, field)).collect::<Result<Vec<_>, _>>().map(Value::Array)
        }
        other => sanitize_schema(other, field),
    }
}

/// `["T", "null"]` (either order) → `T`.
fn nullable_type(value: &Value) -> Option<&str> {
    let Value::Array(types) = value else {
        return None;
    };
    let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
    if names.len() != types.len() || !names.contains(&"null") {
        return None;
    }
    match names.iter().filter(|t| **t != "null").collect::<Vec<_>>().as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// `tool_choice` → `toolConfig`. Without tools, `auto` / `none` say nothing
/// and are left out; `required` / named are refused.
fn encode_tool_choice(choice: Option<&ToolChoice>, has_tools: bool) -> Result<Option<Value>, TranslateError> {
    let Some(choice) = choice else {
        return Ok(None);
    };
    let config = match choice {
        ToolChoice::Auto | ToolChoice::None if !has_tools => return Ok(None),
        ToolChoice::Required | ToolChoice::Named(_) if !has_tools => {
            return Err(TranslateError::new("tool_choice", "a required or named tool choice needs tools"))
        }
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Named(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
    };
    Ok(Some(json!({ "functionCallingConfig": config })))
}

/// Sampling, limits, JSON output and thinking → `generationConfig`.
fn encode_generation_config(req: &ChatRequest) -> Result<Map<String, Value>, TranslateError> {
    let mut gc = Map::new();
    if let Some(v) = req.max_tokens {
        gc.insert("maxOutputTokens".into(), json!(v));
    }
    if let Some(v) = req.temperature {
        gc.insert("temperature".into(), json!(v));
    }
    if let Some(v) = req.top_p {
        gc.insert("topP".into(), json!(v));
    }
    if let Some(v) = req.top_k {
        gc.insert("topK".into(), json!(v));
    }
    if !req.stop.is_empty() {
        gc.insert("stopSequences".into(), json!(req.stop));
    }
    if let Some(seed) = req.seed {
        let seed = i32::try_from(seed).map_err(|_| TranslateError::new("seed", "Gemini seeds are 32-bit integers"))?;
        gc.insert("seed".into(), json!(seed));
    }
    if let Some(v) = req.presence_penalty {
        gc.insert("presencePenalty".into(), json!(v));
    }
    if let Some(v) = req.frequency_penalty {
        gc.insert("frequencyPenalty".into(), json!(v));
    }
    match req.n {
        None => {}
        Some(0) => return Err(TranslateError::new("n", "`n` must be at least 1")),
        Some(1) => {
            gc.insert("candidateCount".into(), json!(1));
        }
        Some(_) => {
            return Err(TranslateError::new("n", "only `n: 1` is supported: the gateway serves one choice per answer"))
        }
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
            gc.insert("responseSchema".into(), sanitize_schema(schema, "response_format.json_schema.schema")?);
        }
    }
    if let Some(reasoning) = &req.reasoning {
        let budget = match (reasoning.budget_tokens, reasoning.effort.as_deref()) {
            (Some(budget), _) => Some(budget),
            (None, Some(effort)) => match EFFORT_BUDGETS.iter().find(|(name, _)| *name == effort) {
                Some((_, budget)) => Some(*budget),
                None => {
                    return Err(TranslateError::new(
                        "reasoning_effort",
                        format!("reasoning effort `{effort}` has no Gemini thinking budget; use low, medium or high"),
                    ))
                }
            },
            (None, None) => None,
        };
        if let Some(budget) = budget {
            gc.insert("thinkingConfig".into(), json!({ "thinkingBudget": budget, "includeThoughts": true }));
        }
    }
    Ok(gc)
}

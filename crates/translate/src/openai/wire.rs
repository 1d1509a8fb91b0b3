//! Pieces every OpenAI direction shares: reading JSON objects member by
//! member (so errors can name the exact path), usage, finish reasons, ids.

use crate::canonical::*;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// The members of one JSON object, in document order, values unparsed.
pub(super) type Members<'a> = Vec<(String, &'a RawValue)>;

struct Object<'a>(Members<'a>);

impl<'de> Deserialize<'de> for Object<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Object<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(Object(members))
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

/// `a.b` (or `b` when `a` is the root).
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A serde error as a [`TranslateError`] at `path`. Positions are dropped
/// from type errors: they count from the start of a nested value, not of
/// the body.
pub(super) fn shape_error(path: &str, e: serde_json::Error) -> TranslateError {
    let text = e.to_string();
    let text = match (e.is_data(), text.rsplit_once(" at line ")) {
        (true, Some((head, _))) => head.to_string(),
        _ => text,
    };
    TranslateError::new(path, text)
}

/// Parses `raw` (the value at `path`) as `T`.
pub(super) fn parse<'a, T: Deserialize<'a>>(raw: &'a RawValue, path: &str) -> Result<T, TranslateError> {
    serde_json::from_str(raw.get()).map_err(|e| shape_error(path, e))
}

/// The members of the object `text` (the value at `path`).
pub(super) fn members<'a>(text: &'a str, path: &str) -> Result<Members<'a>, TranslateError> {
    match serde_json::from_str::<Object<'a>>(text) {
        Ok(o) => Ok(o.0),
        Err(e) => Err(shape_error(path, e)),
    }
}

/// The members of each object in the array at `path`. One pass when the
/// shape is right; on an error, a second pass finds the element to name.
pub(super) fn objects<'a>(raw: &'a RawValue, path: &str) -> Result<Vec<Members<'a>>, TranslateError> {
    match serde_json::from_str::<Vec<Object<'a>>>(raw.get()) {
        Ok(list) => Ok(list.into_iter().map(|o| o.0).collect()),
        Err(e) => {
            let items: Vec<&RawValue> = parse(raw, path)?;
            for (i, item) in items.iter().enumerate() {
                members(item.get(), &format!("{path}[{i}]"))?;
            }
            Err(shape_error(path, e))
        }
    }
}

/// The string member `key` of the object at `path`, required.
pub(super) fn required_str(fields: &Members<'_>, path: &str, key: &str) -> Result<String, TranslateError> {
    let path = join(path, key);
    match member(fields, key) {
        Some(raw) => parse(raw, &path),
        None => Err(TranslateError::new(&path, format!("`{key}` is required"))),
    }
}

/// The value of `key` in `fields`, if present.
pub(super) fn member<'a>(fields: &Members<'a>, key: &str) -> Option<&'a RawValue> {
    fields.iter().find(|(k, _)| k == key).map(|(_, raw)| *raw)
}

/// Refuses members of the object at `path` that are not in `allowed`.
pub(super) fn only_members(fields: &Members<'_>, path: &str, allowed: &[&str]) -> Result<(), TranslateError> {
    match fields.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((k, _)) => Err(TranslateError::new(join(path, k), format!("unknown field `{k}`"))),
        None => Ok(()),
    }
}

/// JSON `null` (OpenAI treats a null field as an absent one).
pub(super) fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

// ---------------------------------------------------------------------------
// Usage

/// OpenAI `usage`, with the DeepSeek extra it may carry.
#[derive(Deserialize)]
pub(super) struct InUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<InPromptDetails>,
    completion_tokens_details: Option<InCompletionDetails>,
    /// DeepSeek's name for cached prompt tokens.
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct InPromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct InCompletionDetails {
    reasoning_tokens: Option<u64>,
}

impl InUsage {
    pub(super) fn canonical(&self) -> TokenUsage {
        let cached = self.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens);
        TokenUsage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: self.completion_tokens.unwrap_or(0),
            cache_read_tokens: cached.or(self.prompt_cache_hit_tokens).unwrap_or(0),
            cache_write_tokens: 0,
            reasoning_tokens: self.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

/// OpenAI `usage` as written to clients. Cache writes have no OpenAI field
/// (they are part of `prompt_tokens`).
#[derive(Serialize)]
pub(super) struct OutUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: OutPromptDetails,
    completion_tokens_details: OutCompletionDetails,
}

#[derive(Serialize)]
struct OutPromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct OutCompletionDetails {
    reasoning_tokens: u64,
}

impl OutUsage {
    pub(super) fn new(u: &TokenUsage) -> Self {
        OutUsage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.input_tokens.saturating_add(u.output_tokens),
            prompt_tokens_details: OutPromptDetails { cached_tokens: u.cache_read_tokens },
            completion_tokens_details: OutCompletionDetails { reasoning_tokens: u.reasoning_tokens },
        }
    }
}

// ---------------------------------------------------------------------------
// Tool calls

/// An assistant message's tool call, in requests and responses.
#[derive(Serialize)]
pub(super) struct OutToolCall<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: OutFunctionCall<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_content: Option<serde_json::Value>,
}

#[derive(Serialize)]
pub(super) struct OutFunctionCall<'a> {
    pub name: &'a str,
    pub arguments: &'a str,
}

// ---------------------------------------------------------------------------
// Finish reasons, ids, signatures

/// OpenAI `finish_reason` → canonical. Values other servers add (DeepSeek
/// `insufficient_system_resource`, Ollama `load`/`unload`) read as `Stop`.
pub(super) fn finish_reason(s: &str) -> FinishReason {
    match s {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

pub(super) fn finish_reason_str(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// vLLM's `stop_reason` names the stop string when one ended the answer
/// (it is a token id or null otherwise).
pub(super) fn stop_sequence(stop_reason: Option<&serde_json::Value>) -> Option<String> {
    stop_reason.and_then(|v| v.as_str()).map(str::to_string)
}

/// A chat completion id for clients: `chatcmpl-` prefixed. An empty id
/// becomes `chatcmpl-<created>`.
pub(super) fn completion_id(id: &str, created: i64) -> String {
    if id.is_empty() {
        format!("chatcmpl-{created}")
    } else if id.starts_with("chatcmpl-") {
        id.to_string()
    } else {
        format!("chatcmpl-{id}")
    }
}

/// Gemini's OpenAI-compatible endpoint carries a function call's thought
/// signature in `extra_content.google.thought_signature`.
pub(super) fn signature_extra(signature: Option<&str>) -> Option<serde_json::Value> {
    signature.map(|s| serde_json::json!({ "google": { "thought_signature": s } }))
}

/// The thought signature in a provider's `extra_content`, if any.
pub(super) fn signature_from_extra(extra: Option<&serde_json::Value>) -> Option<String> {
    extra?.pointer("/google/thought_signature")?.as_str().map(str::to_string)
}

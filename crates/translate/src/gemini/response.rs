//! `GenerateContentResponse` → canonical, and the wire types the stream
//! decoder shares.

use super::ApiError;
use crate::canonical::*;
use serde::Deserialize;
use serde_json::Value;

/// One `GenerateContentResponse` (a whole body, or one stream chunk).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    pub candidates: Vec<Candidate>,
    pub prompt_feedback: Option<PromptFeedback>,
    pub usage_metadata: Option<UsageMetadata>,
    pub model_version: Option<String>,
    pub response_id: Option<String>,
    pub error: Option<ApiError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct Candidate {
    pub content: Option<Content>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Content {
    pub parts: Vec<WirePart>,
}

/// A response part. Kinds other than text and function calls are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WirePart {
    pub text: Option<String>,
    pub thought: bool,
    pub thought_signature: Option<String>,
    pub function_call: Option<FunctionCall>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FunctionCall {
    pub id: Option<String>,
    pub name: String,
    pub args: Option<Value>,
}

impl FunctionCall {
    /// The arguments as compact JSON text (`{}` when absent).
    pub fn arguments(&self) -> String {
        match &self.args {
            None | Some(Value::Null) => "{}".to_string(),
            Some(v) => v.to_string(),
        }
    }

    /// Gemini's id when it sent one, else `call_{prefix}_{n}`.
    pub fn call_id(&self, id_prefix: &str, n: u32) -> String {
        match self.id.as_deref() {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => format!("call_{id_prefix}_{n}"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct PromptFeedback {
    pub block_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    pub prompt_token_count: u64,
    pub candidates_token_count: u64,
    pub thoughts_token_count: u64,
    pub cached_content_token_count: u64,
    pub tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    /// Canonical usage: tool-use prompt tokens count as input, thoughts as
    /// output (and reasoning).
    pub fn to_canonical(&self) -> TokenUsage {
        TokenUsage {
            input_tokens: self.prompt_token_count.saturating_add(self.tool_use_prompt_token_count),
            output_tokens: self.candidates_token_count.saturating_add(self.thoughts_token_count),
            cache_read_tokens: self.cached_content_token_count,
            cache_write_tokens: 0,
            reasoning_tokens: self.thoughts_token_count,
        }
    }
}

/// `finishReason` → canonical. `STOP` with function calls is `ToolCalls`;
/// safety-type reasons are `ContentFilter`; anything else (including
/// `MALFORMED_FUNCTION_CALL`, `OTHER` and unknown values) is `Stop`.
pub(crate) fn finish_reason(reason: &str, has_tool_calls: bool) -> FinishReason {
    match reason {
        "STOP" if has_tool_calls => FinishReason::ToolCalls,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "LANGUAGE"
        | "MODEL_ARMOR"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Parses a body or chunk; an `{"error":…}` envelope is an error.
pub(crate) fn parse(body: &[u8], field: &str) -> Result<GenerateContentResponse, TranslateError> {
    let parsed: GenerateContentResponse = serde_json::from_slice(body)
        .map_err(|e| TranslateError::new(field, format!("invalid Gemini response JSON: {e}")))?;
    Ok(parsed)
}

/// `generateContent` response → canonical. Gemini has no tool-call ids:
/// they are synthesised as `call_{id_prefix}_{n}` (`n` = 0, 1, … over the
/// function calls of the answer) unless `functionCall.id` is present.
/// Consecutive text (or thought) parts are joined into one part; `created`
/// is left 0 (Gemini does not say; the caller stamps it).
pub fn decode_response(body: &[u8], id_prefix: &str) -> Result<ChatResponse, TranslateError> {
    if let Some(err) = array_error(body) {
        return Err(err.into_translate_error());
    }
    let resp = parse(body, "body")?;
    if let Some(err) = resp.error {
        return Err(err.into_translate_error());
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut finish = None;
    if let Some(candidate) = resp.candidates.first() {
        let wire_parts = candidate.content.as_ref().map(|c| c.parts.as_slice()).unwrap_or_default();
        let mut calls: u32 = 0;
        for part in wire_parts {
            if let Some(call) = &part.function_call {
                parts.push(Part::ToolCall(ToolCall {
                    id: call.call_id(id_prefix, calls),
                    name: call.name.clone(),
                    arguments: call.arguments(),
                    signature: part.thought_signature.clone(),
                }));
                calls = calls.saturating_add(1);
            } else if let Some(text) = part.text.as_deref() {
                push_text(&mut parts, text, part.thought, part.thought_signature.as_deref());
            }
        }
        finish = candidate.finish_reason.as_deref().map(|r| finish_reason(r, calls > 0));
    } else if resp.prompt_feedback.as_ref().is_some_and(|f| f.block_reason.is_some()) {
        finish = Some(FinishReason::ContentFilter);
    }
    Ok(ChatResponse {
        id: resp.response_id.unwrap_or_default(),
        model: resp.model_version.unwrap_or_default(),
        created: 0,
        parts,
        finish,
        stop_sequence: None,
        usage: resp.usage_metadata.as_ref().map(UsageMetadata::to_canonical),
    })
}

/// Appends text to the last part when it is of the same kind (and, for
/// thinking, not yet closed by a signature); a thought part's signature
/// closes it. A signature on plain text, or on an empty thought that
/// follows no open thinking part, is not kept (the stream decoder does the
/// same).
fn push_text(parts: &mut Vec<Part>, text: &str, thought: bool, signature: Option<&str>) {
    if thought {
        if let Some(Part::Thinking { text: last, signature: last_sig @ None }) = parts.last_mut() {
            last.push_str(text);
            *last_sig = signature.map(str::to_string);
        } else if !text.is_empty() {
            parts.push(Part::Thinking { text: text.to_string(), signature: signature.map(str::to_string) });
        }
    } else if !text.is_empty() {
        if let Some(Part::Text { text: last, .. }) = parts.last_mut() {
            last.push_str(text);
        } else {
            parts.push(Part::text(text));
        }
    }
}

/// The error of a JSON-array body (a stream read without `alt=sse`).
fn array_error(body: &[u8]) -> Option<ApiError> {
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &body[i..])?;
    if trimmed.first() != Some(&b'[') {
        return None;
    }
    super::find_error(body)
}

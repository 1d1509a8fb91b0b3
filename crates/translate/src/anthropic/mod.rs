//! Anthropic messages ⇄ canonical. Used as an ingress (`POST /v1/messages`,
//! `POST /v1/messages/count_tokens`) and as a provider format.
//!
//! - [`decode_request`] / [`encode_request`]: request bodies (`request.rs`);
//! - [`decode_response`] / [`encode_response`]: non-streamed messages
//!   (`response.rs`);
//! - [`Decoder`] / [`Encoder`]: SSE streams (`stream.rs`);
//! - [`error_type_for_status`] / [`status_for_error_type`]: the error table
//!   of Anthropic's error envelope `{"type":"error","error":{"type","message"}}`.
//!
//! What each direction refuses, changes or ignores is listed on the function.

use crate::canonical::*;

mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{Decoder, Encoder};

/// `max_tokens` sent to Anthropic when the client gave none (Anthropic
/// requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Name of the tool that emulates JSON output (`response_format`) on
/// Anthropic, which has no JSON mode: the request forces a call to this tool
/// whose input schema is the wanted schema, and the decoders turn the call's
/// input back into text.
pub const JSON_TOOL: &str = "switchyard_json_output";

/// Anthropic's error `type` for an HTTP status (docs.claude.com/en/api/errors):
/// 400 `invalid_request_error`, 401 `authentication_error`, 403
/// `permission_error`, 404 `not_found_error`, 413 `request_too_large`, 429
/// `rate_limit_error`, 500 `api_error`, 503 and 529 `overloaded_error`, 504
/// `timeout_error`; any other 4xx `invalid_request_error`, anything else
/// `api_error`.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        500 => "api_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ if (400..500).contains(&status) => "invalid_request_error",
        _ => "api_error",
    }
}

/// The HTTP status Anthropic sends with an error `type`; `None` for a type
/// that is not one of Anthropic's.
pub fn status_for_error_type(error_type: &str) -> Option<u16> {
    match error_type {
        "invalid_request_error" => Some(400),
        "authentication_error" => Some(401),
        "permission_error" => Some(403),
        "not_found_error" => Some(404),
        "request_too_large" => Some(413),
        "rate_limit_error" => Some(429),
        "api_error" => Some(500),
        "timeout_error" => Some(504),
        "overloaded_error" => Some(529),
        _ => None,
    }
}

/// Anthropic `stop_reason` → canonical. Unknown future values are `Stop`.
fn finish_from_stop_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn and anything newer.
        _ => FinishReason::Stop,
    }
}

/// Canonical finish → Anthropic `stop_reason`. `Stop` with a stop sequence
/// is `stop_sequence`.
fn stop_reason_for(finish: FinishReason, stop_sequence: Option<&str>) -> &'static str {
    match finish {
        FinishReason::Stop if stop_sequence.is_some() => "stop_sequence",
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// `msg_`-prefixed message id: kept when it already is one, else prefixed;
/// `msg_switchyard` when empty.
fn message_id(id: &str) -> String {
    if id.is_empty() {
        "msg_switchyard".to_string()
    } else if id.starts_with("msg_") {
        id.to_string()
    } else {
        format!("msg_{id}")
    }
}

/// Anthropic usage numbers for canonical usage: `input_tokens` is only the
/// uncached part.
fn wire_usage(usage: &TokenUsage) -> serde_json::Value {
    let uncached = usage.input_tokens.saturating_sub(usage.cache_read_tokens).saturating_sub(usage.cache_write_tokens);
    serde_json::json!({
        "input_tokens": uncached,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    })
}

/// Anthropic wire usage (every count optional; missing is 0).
#[derive(serde::Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Canonical usage: input includes cache reads and writes.
    fn canonical(&self) -> TokenUsage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        TokenUsage {
            input_tokens: self.input_tokens.unwrap_or(0).saturating_add(read).saturating_add(write),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: read,
            cache_write_tokens: write,
            reasoning_tokens: 0,
        }
    }
}

//! Google Gemini (generateContent, streamGenerateContent with `alt=sse`,
//! batchEmbedContents) ⇄ canonical. Provider side only.
//!
//! The model goes in the URL, not the body: [`chat_path`] and
//! [`embed_path`] give the path after the API version (`/v1beta`); the
//! provider adapter adds the host and the `x-goog-api-key` header.
//!
//! What the request encoder refuses, ignores or approximates:
//!
//! - refused: `parallel_tool_calls: false`, `n` other than 1 (the gateway
//!   serves one choice), images inside tool results, tool calls whose
//!   arguments are not a JSON object, tool results whose call id names no
//!   earlier tool call, tool calls in user messages or results in assistant
//!   messages, `$ref` in a tool or response schema, reasoning efforts other
//!   than `low` / `medium` / `high`, a `seed` outside 32 bits, and a
//!   `required` / named `tool_choice` without tools;
//! - ignored: `user` (Gemini has no end-user field), `cache_control`, image
//!   `detail`, tool `strict`, the JSON-schema `name` and `strict`, thinking
//!   parts of earlier turns (Gemini needs only the `thoughtSignature` of
//!   function calls, which is kept), tool-call ids (Gemini links results by
//!   name and order), empty text parts and messages left empty (Gemini
//!   rejects them), `auto` / `none` `tool_choice` without tools;
//! - approximated: image URLs become `fileData` with the MIME type guessed
//!   from the extension (png, jpeg/jpg, gif, webp; `image/jpeg` otherwise),
//!   which Gemini fetches only for some URIs (Files API, GCS); reasoning
//!   effort `low` / `medium` / `high` becomes a thinking budget of 1024 /
//!   8192 / 24576 tokens, and any budget asks for the thoughts
//!   (`includeThoughts`); tool and response schemas lose `$schema`,
//!   `additionalProperties`, `$defs`, `definitions` and `strict`, and
//!   `type: [T, "null"]` becomes `type: T, nullable: true` (other keywords
//!   pass as sent); a tool without arguments is declared without
//!   `parameters`; a tool result is its text as a JSON object when it is
//!   one, else `{"result": text}` (`{"error": text}` for an error); results
//!   are put in the order of their calls, and results split over
//!   consecutive user messages are joined into one turn.
//!
//! Responses: Gemini has no tool-call ids, so the decoders synthesise
//! `call_{id_prefix}_{n}` (`n` counts the function calls of one answer) and
//! keep `functionCall.id` when Gemini sends one. Output parts other than
//! text, thoughts and function calls (`inlineData`, `executableCode`, …)
//! are not carried (the gateway never asks for them), nor is a
//! `thoughtSignature` on a non-thought text part. Gemini reports neither a
//! creation time (`created` is left 0 for the caller) nor the stop
//! sequence that matched.

use crate::canonical::*;
use serde::Deserialize;
use serde_json::Value;

mod embeddings;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

pub use embeddings::{decode_embed_response, encode_embed_request};
pub use request::encode_request;
pub use response::decode_response;
pub use stream::Decoder;

/// The chat path after the API version: `/models/{model}:generateContent`,
/// or `/models/{model}:streamGenerateContent?alt=sse` for a stream.
pub fn chat_path(model: &str, stream: bool) -> String {
    if stream {
        format!("/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/models/{model}:generateContent")
    }
}

/// The embeddings path after the API version: `/models/{model}:batchEmbedContents`.
pub fn embed_path(model: &str) -> String {
    format!("/models/{model}:batchEmbedContents")
}

/// Gemini's error envelope (`google.rpc.Status`), as an HTTP error body or
/// as a stream chunk. Fields are read leniently: an odd envelope still
/// reports what it can.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ApiError {
    code: Value,
    message: Value,
    status: Value,
    details: Value,
}

impl ApiError {
    /// The numeric code (`429`).
    fn code(&self) -> Option<i64> {
        self.code.as_i64().or_else(|| self.code.as_str()?.parse().ok())
    }

    /// The status name (`RESOURCE_EXHAUSTED`).
    fn status(&self) -> Option<&str> {
        self.status.as_str().filter(|s| !s.is_empty())
    }

    /// The message text.
    pub fn message(&self) -> String {
        match &self.message {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// The status name, else the numeric code, else `error`.
    pub fn kind(&self) -> String {
        match (self.status(), self.code()) {
            (Some(s), _) => s.to_string(),
            (None, Some(c)) => c.to_string(),
            (None, None) => "error".to_string(),
        }
    }

    /// The error as a translation error (a provider failure in a body that
    /// should have been an answer).
    pub fn into_translate_error(self) -> TranslateError {
        TranslateError::new("error", format!("Gemini returned an error ({}): {}", self.kind(), self.message()))
    }

    fn details(&self) -> &[Value] {
        self.details.as_array().map(Vec::as_slice).unwrap_or_default()
    }

    /// The `reason` of a `google.rpc.ErrorInfo` detail, if any.
    fn reason(&self) -> Option<&str> {
        self.details().iter().find_map(|d| d.get("reason").and_then(Value::as_str))
    }

    /// Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "30s"`).
    fn retry_delay(&self) -> Option<f64> {
        self.details().iter().find_map(|d| {
            let kind = d.get("@type").and_then(Value::as_str)?;
            if !kind.ends_with("google.rpc.RetryInfo") {
                return None;
            }
            parse_duration(d.get("retryDelay")?)
        })
    }
}

/// A protobuf JSON duration (`"30s"`, `"1.5s"`) in seconds.
fn parse_duration(v: &Value) -> Option<f64> {
    let secs = v.as_str()?.trim().strip_suffix('s')?.parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some(secs)
}

/// The error envelope in a body: `{"error":{…}}`, or the JSON-array form of
/// a stream without `alt=sse` (`[{"error":{…}}]`).
fn find_error(body: &[u8]) -> Option<ApiError> {
    #[derive(Deserialize)]
    struct Envelope {
        error: ApiError,
    }
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Array(items) => items.into_iter().find_map(|v| serde_json::from_value::<Envelope>(v).ok()),
        v => serde_json::from_value::<Envelope>(v).ok(),
    }
    .map(|e| e.error)
}

/// Maps a Gemini error body to what a client should see: the HTTP status,
/// the message and the retry delay in seconds (from `RetryInfo`).
///
/// Status: `API_KEY_INVALID` (sent as 400) → 401, `RESOURCE_EXHAUSTED` →
/// 429, `UNAVAILABLE` → 503, otherwise `http_status`; when `http_status`
/// is not an error (an error inside a stream that began with 200), the
/// envelope's `code`, else 502. A body that is not an envelope keeps
/// `http_status` and its text (up to 1000 characters) as the message.
pub fn error_status(body: &[u8], http_status: u16) -> (u16, String, Option<f64>) {
    let Some(err) = find_error(body) else {
        let text: String = String::from_utf8_lossy(body).trim().chars().take(1000).collect();
        return (http_status, text, None);
    };
    let status = if err.reason() == Some("API_KEY_INVALID") {
        401
    } else {
        match err.status() {
            Some("RESOURCE_EXHAUSTED") => 429,
            Some("UNAVAILABLE") => 503,
            _ if http_status >= 400 => http_status,
            _ => match err.code().and_then(|c| u16::try_from(c).ok()) {
                Some(c) if (400..=599).contains(&c) => c,
                _ => 502,
            },
        }
    };
    (status, err.message(), err.retry_delay())
}

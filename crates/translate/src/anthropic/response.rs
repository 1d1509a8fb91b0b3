//! Anthropic messages responses (non-streamed) ⇄ canonical.

use super::{finish_from_stop_reason, message_id, stop_reason_for, wire_usage, WireUsage, JSON_TOOL};
use crate::canonical::*;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// A content block as Anthropic sends it, in a whole message or at the
/// start of a streamed block (where text and thinking start empty).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum WireBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Option<Value>,
    },
    #[serde(other)]
    Other,
}

/// Anthropic message (provider body) → canonical.
///
/// - `redacted_thinking` becomes a thinking part with empty text and the
///   block's `data` as its signature;
/// - a `tool_use` of [`JSON_TOOL`] (emulated JSON output) becomes a text part
///   holding its input JSON, and a `tool_use` stop reason then means `Stop`;
/// - usage: canonical input = `input_tokens` + cache writes + cache reads;
/// - `created` is 0 (Anthropic does not say);
/// - other block types (server-tool use and results, …) are skipped: the
///   translated path never asks for them (requests refuse server tools), and
///   a same-format pass-through only reads the usage here.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let message: WireMessage = serde_json::from_slice(body)
        .map_err(|e| TranslateError::new("", format!("the response is not an Anthropic message: {e}")))?;
    if let Some(kind) = message.kind.as_deref().filter(|k| *k != "message") {
        return Err(TranslateError::new("type", format!("expected a `message`, got `{kind}`")));
    }
    let mut parts = Vec::with_capacity(message.content.len());
    let mut json_output = false;
    for block in message.content {
        parts.push(match block {
            WireBlock::Text { text } => Part::text(text),
            WireBlock::Thinking { thinking, signature } => Part::Thinking { text: thinking, signature },
            WireBlock::RedactedThinking { data } => Part::Thinking { text: String::new(), signature: Some(data) },
            WireBlock::ToolUse { name, input, .. } if name == JSON_TOOL => {
                json_output = true;
                Part::text(input.map_or_else(|| "{}".to_string(), |v| v.to_string()))
            }
            WireBlock::ToolUse { id, name, input } => Part::ToolCall(ToolCall {
                id,
                name,
                arguments: input.map_or_else(|| "{}".to_string(), |v| v.to_string()),
                signature: None,
            }),
            WireBlock::Other => continue,
        });
    }
    let finish = message.stop_reason.as_deref().map(|reason| match finish_from_stop_reason(reason) {
        FinishReason::ToolCalls if json_output => FinishReason::Stop,
        other => other,
    });
    Ok(ChatResponse {
        id: message.id,
        model: message.model,
        created: 0,
        parts,
        finish,
        stop_sequence: message.stop_sequence,
        usage: message.usage.map(|u| u.canonical()),
    })
}

/// Canonical → Anthropic message body, reporting `model`.
///
/// - the id is kept when it starts with `msg_`, else prefixed with `msg_`;
/// - tool-call arguments become the `input` object: empty → `{}`, text that
///   is not a JSON object → `{"_raw": "<text>"}`;
/// - thinking → `thinking` block (signature `""` when there is none); empty
///   thinking text with a signature → `redacted_thinking`;
/// - image and tool-result parts (which answers do not hold) are left out;
/// - usage `input_tokens` is the uncached part (canonical input minus cache
///   reads and writes); no usage → zeros.
pub fn encode_response(resp: &ChatResponse, model: &str) -> Vec<u8> {
    let content: Vec<Value> = resp.parts.iter().filter_map(content_block).collect();
    let stop_reason = resp.finish.map(|f| stop_reason_for(f, resp.stop_sequence.as_deref()));
    let body = json!({
        "id": message_id(&resp.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": resp.stop_sequence,
        "usage": wire_usage(&resp.usage.unwrap_or_default()),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn content_block(part: &Part) -> Option<Value> {
    match part {
        Part::Text { text, .. } => Some(json!({"type": "text", "text": text})),
        Part::Thinking { text, signature: Some(signature) } if text.is_empty() => {
            Some(json!({"type": "redacted_thinking", "data": signature}))
        }
        Part::Thinking { text, signature } => {
            Some(json!({"type": "thinking", "thinking": text, "signature": signature.as_deref().unwrap_or("")}))
        }
        Part::ToolCall(call) => {
            let input =
                arguments_object(&call.arguments, "arguments").unwrap_or_else(|_| json!({ "_raw": call.arguments }));
            Some(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}))
        }
        Part::Image(_) | Part::ToolResult(_) => None,
    }
}

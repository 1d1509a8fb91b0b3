//! Anthropic SSE streams ⇄ canonical stream events.

use super::response::WireBlock;
use super::{
    error_type_for_status, finish_from_stop_reason, message_id, stop_reason_for, wire_usage, WireUsage, JSON_TOOL,
};
use crate::canonical::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

// ---------------------------------------------------------------------------
// Wire shapes

#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct MessageStart {
    message: StartMessage,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct BlockStart {
    index: u32,
    content_block: WireBlock,
}

#[derive(Deserialize)]
struct BlockDelta {
    index: u32,
    delta: Delta,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct BlockStop {
    index: u32,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    delta: MessageDeltaBody,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize, Default)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    #[serde(default)]
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default = "api_error", rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

impl Default for ErrorBody {
    fn default() -> Self {
        ErrorBody { kind: api_error(), message: String::new() }
    }
}

fn api_error() -> String {
    "api_error".to_string()
}

fn parse<T: DeserializeOwned>(data: &[u8], event: &str) -> Result<T, TranslateError> {
    serde_json::from_slice(data).map_err(|e| TranslateError::new(event, format!("invalid `{event}` event: {e}")))
}

// ---------------------------------------------------------------------------
// Decoder

/// What a content block of the upstream stream is, for its deltas.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Tool,
    /// A [`JSON_TOOL`] call: its input is the answer text.
    JsonOutput,
    /// A block type this decoder does not know (e.g. a server-tool block):
    /// its deltas and stop are skipped.
    Skipped,
}

/// Anthropic SSE events → canonical stream events.
///
/// Canonical indices are Anthropic block indices. The event type comes from
/// the SSE `event:` name, or from the payload's `type` when there is none.
/// `ping` and unknown event, block and delta types are ignored. A
/// `redacted_thinking` block becomes a [`StreamEvent::ThinkingSignature`]
/// carrying its data. A `tool_use` block named [`JSON_TOOL`] streams as text
/// and its `tool_use` stop reason becomes `Stop`.
#[derive(Default)]
pub struct Decoder {
    /// Usage from `message_start` (input and cache counts), updated by
    /// `message_delta`.
    usage: WireUsage,
    /// Blocks whose deltas need more than their delta type to translate.
    blocks: HashMap<u32, BlockKind>,
    /// A [`JSON_TOOL`] block was seen.
    json_output: bool,
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, name: Option<&str>, data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        let from_data;
        let kind = match name {
            Some(name) if !name.is_empty() && name != "message" => name,
            _ => {
                from_data = parse::<TypeOnly>(data, "type")?.kind;
                from_data.as_str()
            }
        };
        match kind {
            "message_start" => self.message_start(parse(data, kind)?, out),
            "content_block_start" => self.block_start(parse(data, kind)?, out),
            "content_block_delta" => self.block_delta(parse(data, kind)?, out),
            "content_block_stop" => {
                let stop: BlockStop = parse(data, kind)?;
                if self.blocks.get(&stop.index) != Some(&BlockKind::Skipped) {
                    out.push(StreamEvent::PartEnd { index: stop.index });
                }
            }
            "message_delta" => self.message_delta(parse(data, kind)?, out),
            "message_stop" => out.push(StreamEvent::Done),
            "error" => {
                let e: ErrorEvent = parse(data, kind)?;
                out.push(StreamEvent::Error(StreamError { kind: e.error.kind, message: e.error.message }));
            }
            // `ping` and event types added after this was written.
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) {}
}

impl Decoder {
    fn message_start(&mut self, start: MessageStart, out: &mut Vec<StreamEvent>) {
        self.usage = start.message.usage;
        out.push(StreamEvent::Start {
            id: start.message.id,
            model: start.message.model,
            input_tokens: Some(self.usage.canonical().input_tokens),
        });
    }

    fn block_start(&mut self, start: BlockStart, out: &mut Vec<StreamEvent>) {
        let index = start.index;
        match start.content_block {
            WireBlock::Text { text } => {
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta { index, text });
                }
            }
            WireBlock::Thinking { thinking, signature } => {
                if !thinking.is_empty() {
                    out.push(StreamEvent::ThinkingDelta { index, text: thinking });
                }
                if let Some(signature) = signature.filter(|s| !s.is_empty()) {
                    out.push(StreamEvent::ThinkingSignature { index, signature });
                }
            }
            WireBlock::RedactedThinking { data } => {
                out.push(StreamEvent::ThinkingSignature { index, signature: data });
            }
            WireBlock::ToolUse { name, input, .. } if name == JSON_TOOL => {
                self.blocks.insert(index, BlockKind::JsonOutput);
                self.json_output = true;
                if let Some(text) = initial_input(input) {
                    out.push(StreamEvent::TextDelta { index, text });
                }
            }
            WireBlock::ToolUse { id, name, input } => {
                self.blocks.insert(index, BlockKind::Tool);
                out.push(StreamEvent::ToolCallStart { index, id, name, signature: None });
                if let Some(arguments) = initial_input(input) {
                    out.push(StreamEvent::ToolCallDelta { index, arguments });
                }
            }
            WireBlock::Other => {
                self.blocks.insert(index, BlockKind::Skipped);
            }
        }
    }

    fn block_delta(&mut self, delta: BlockDelta, out: &mut Vec<StreamEvent>) {
        let index = delta.index;
        let kind = self.blocks.get(&index).copied();
        if kind == Some(BlockKind::Skipped) {
            return;
        }
        match delta.delta {
            Delta::Text { text } => {
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta { index, text });
                }
            }
            Delta::InputJson { partial_json } if partial_json.is_empty() => {}
            Delta::InputJson { partial_json } if kind == Some(BlockKind::JsonOutput) => {
                out.push(StreamEvent::TextDelta { index, text: partial_json });
            }
            Delta::InputJson { partial_json } => {
                out.push(StreamEvent::ToolCallDelta { index, arguments: partial_json });
            }
            Delta::Thinking { thinking } => {
                if !thinking.is_empty() {
                    out.push(StreamEvent::ThinkingDelta { index, text: thinking });
                }
            }
            Delta::Signature { signature } => out.push(StreamEvent::ThinkingSignature { index, signature }),
            Delta::Other => {}
        }
    }

    fn message_delta(&mut self, delta: MessageDelta, out: &mut Vec<StreamEvent>) {
        if let Some(reason) = delta.delta.stop_reason.as_deref() {
            let reason = match finish_from_stop_reason(reason) {
                FinishReason::ToolCalls if self.json_output => FinishReason::Stop,
                other => other,
            };
            out.push(StreamEvent::Finish { reason, stop_sequence: delta.delta.stop_sequence });
        }
        if let Some(u) = delta.usage {
            let start = self.usage;
            self.usage = WireUsage {
                input_tokens: u.input_tokens.or(start.input_tokens),
                output_tokens: u.output_tokens.or(start.output_tokens),
                cache_creation_input_tokens: u.cache_creation_input_tokens.or(start.cache_creation_input_tokens),
                cache_read_input_tokens: u.cache_read_input_tokens.or(start.cache_read_input_tokens),
            };
        }
        out.push(StreamEvent::Usage(self.usage.canonical()));
    }
}

/// A `tool_use` start's `input` as JSON text, when it holds anything (it is
/// normally `{}` and streamed in deltas).
fn initial_input(input: Option<Value>) -> Option<String> {
    match input {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) if map.is_empty() => None,
        Some(v) => Some(v.to_string()),
    }
}

// ---------------------------------------------------------------------------
// Encoder

/// Anthropic's error types, which [`Encoder::error`] passes through.
const ERROR_TYPES: [&str; 9] = [
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpenKind {
    Text,
    Thinking,
    Tool,
}

#[derive(Clone, Copy)]
struct Open {
    /// Canonical index.
    index: u32,
    /// Anthropic block index.
    block: u32,
    kind: OpenKind,
}

/// Canonical stream events → Anthropic SSE events (`event: …\ndata: …\n\n`).
///
/// Every delta is written at once; only `message_delta` (stop reason and
/// usage) waits for [`StreamEvent::Done`]. Block indices count 0, 1, 2… in
/// output order whatever the canonical indices; a block is opened on its
/// first event and closed when another starts, at its `PartEnd`, or at the
/// end. Empty text, thinking and argument deltas are skipped (Anthropic
/// refuses empty text blocks when a client sends them back). A thinking
/// signature with no open thinking block at its index is a redacted
/// thinking block and is written as one (`redacted_thinking`, whole). The
/// `message_start` usage reports the canonical input tokens (cache split
/// unknown then; `message_delta` carries the exact split).
pub struct Encoder {
    model: String,
    started: bool,
    /// `message_stop` or an error was written; later events are ignored.
    ended: bool,
    next_block: u32,
    open: Option<Open>,
    /// Canonical index → Anthropic block of every tool call, so late argument
    /// pieces land in their call's block.
    tools: HashMap<u32, u32>,
    finish: Option<(FinishReason, Option<String>)>,
    usage: Option<TokenUsage>,
}

impl Encoder {
    /// `model` is reported in `message_start`.
    pub fn new(model: &str) -> Self {
        Encoder {
            model: model.to_string(),
            started: false,
            ended: false,
            next_block: 0,
            open: None,
            tools: HashMap::new(),
            finish: None,
            usage: None,
        }
    }

    fn start(&mut self, id: &str, input_tokens: Option<u64>, out: &mut Vec<u8>) {
        self.started = true;
        let data = json!({
            "type": "message_start",
            "message": {
                "id": message_id(id),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {"input_tokens": input_tokens.unwrap_or(0), "output_tokens": 1},
            },
        });
        write_event(out, "message_start", &data);
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start("msg_switchyard", None, out);
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(open) = self.open.take() {
            write_event(out, "content_block_stop", &json!({"type": "content_block_stop", "index": open.block}));
        }
    }

    /// Opens a new block at canonical `index`, closing the open one.
    fn open_block(&mut self, index: u32, kind: OpenKind, content_block: Value, out: &mut Vec<u8>) -> u32 {
        self.close(out);
        let block = self.next_block;
        self.next_block = self.next_block.saturating_add(1);
        let data = json!({"type": "content_block_start", "index": block, "content_block": content_block});
        write_event(out, "content_block_start", &data);
        self.open = Some(Open { index, block, kind });
        block
    }

    /// The Anthropic block for a delta of `kind` at canonical `index`,
    /// opening one if needed.
    fn block_for(&mut self, index: u32, kind: OpenKind, out: &mut Vec<u8>) -> u32 {
        if let Some(open) = self.open.filter(|o| o.index == index && o.kind == kind) {
            return open.block;
        }
        match kind {
            OpenKind::Text => self.open_block(index, kind, json!({"type": "text", "text": ""}), out),
            OpenKind::Thinking => self.open_block(index, kind, json!({"type": "thinking", "thinking": ""}), out),
            OpenKind::Tool => match self.tools.get(&index) {
                Some(&block) => block,
                // Arguments without a start: open the call with what is known.
                None => self.tool_start(index, &format!("toolu_switchyard_{index}"), "", out),
            },
        }
    }

    fn tool_start(&mut self, index: u32, id: &str, name: &str, out: &mut Vec<u8>) -> u32 {
        let content_block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
        let block = self.open_block(index, OpenKind::Tool, content_block, out);
        self.tools.insert(index, block);
        block
    }

    fn delta(&mut self, index: u32, kind: OpenKind, delta: Value, out: &mut Vec<u8>) {
        self.ensure_started(out);
        let block = self.block_for(index, kind, out);
        write_event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": block, "delta": delta}),
        );
    }

    /// A signature with no thinking text before it: a redacted thinking
    /// block (how the decoder and `decode_response` read one, and what
    /// `encode_response` writes for it), sent whole in its start event as
    /// Anthropic does. A `thinking` block with empty text would hand the
    /// client a redacted block's data as a thinking signature.
    fn redacted_thinking(&mut self, index: u32, data: &str, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.open_block(index, OpenKind::Thinking, json!({"type": "redacted_thinking", "data": data}), out);
        self.close(out);
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.close(out);
        let (reason, stop_sequence) = self.finish.take().unwrap_or((FinishReason::Stop, None));
        let usage = match &self.usage {
            Some(usage) => wire_usage(usage),
            None => json!({"output_tokens": 0}),
        };
        let data = json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason_for(reason, stop_sequence.as_deref()), "stop_sequence": stop_sequence},
            "usage": usage,
        });
        write_event(out, "message_delta", &data);
        write_event(out, "message_stop", &json!({"type": "message_stop"}));
        self.ended = true;
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match event {
            StreamEvent::Start { id, input_tokens, .. } => {
                if !self.started {
                    self.start(id, *input_tokens, out);
                }
            }
            StreamEvent::TextDelta { index, text } => {
                if !text.is_empty() {
                    self.delta(*index, OpenKind::Text, json!({"type": "text_delta", "text": text}), out);
                }
            }
            StreamEvent::ThinkingDelta { index, text } => {
                if !text.is_empty() {
                    self.delta(*index, OpenKind::Thinking, json!({"type": "thinking_delta", "thinking": text}), out);
                }
            }
            StreamEvent::ThinkingSignature { index, signature } => {
                if self.open.is_some_and(|o| o.index == *index && o.kind == OpenKind::Thinking) {
                    let delta = json!({"type": "signature_delta", "signature": signature});
                    self.delta(*index, OpenKind::Thinking, delta, out);
                } else {
                    self.redacted_thinking(*index, signature, out);
                }
            }
            StreamEvent::ToolCallStart { index, id, name, .. } => {
                self.ensure_started(out);
                self.tool_start(*index, id, name, out);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if !arguments.is_empty() {
                    let delta = json!({"type": "input_json_delta", "partial_json": arguments});
                    self.delta(*index, OpenKind::Tool, delta, out);
                }
            }
            StreamEvent::PartEnd { index } => {
                if self.open.is_some_and(|o| o.index == *index) {
                    self.close(out);
                }
            }
            StreamEvent::Finish { reason, stop_sequence } => self.finish = Some((*reason, stop_sequence.clone())),
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Error(e) => self.error(&e.kind, &e.message, out),
            StreamEvent::Done => self.done(out),
        }
    }

    /// `event: error` with Anthropic's error type for `kind`: one of
    /// Anthropic's own types as is; an HTTP status by
    /// [`error_type_for_status`]; otherwise `overloaded_error` when it
    /// mentions "overloaded" or "unavailable", `timeout_error` when it
    /// mentions "timeout" or "deadline" (any case), else `api_error`.
    fn error(&mut self, kind: &str, message: &str, out: &mut Vec<u8>) {
        let data = json!({"type": "error", "error": {"type": error_type_for_kind(kind), "message": message}});
        write_event(out, "error", &data);
        self.ended = true;
    }
}

fn error_type_for_kind(kind: &str) -> &'static str {
    if let Some(known) = ERROR_TYPES.iter().find(|t| **t == kind) {
        return known;
    }
    if let Ok(status) = kind.parse::<u16>() {
        return error_type_for_status(status);
    }
    let lower = kind.to_ascii_lowercase();
    if lower.contains("overloaded") || lower.contains("unavailable") {
        "overloaded_error"
    } else if lower.contains("timeout") || lower.contains("deadline") {
        "timeout_error"
    } else {
        "api_error"
    }
}

fn write_event(out: &mut Vec<u8>, event: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

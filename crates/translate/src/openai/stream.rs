//! OpenAI chat completion streams (SSE `data:` chunks) ⇄ canonical events.

use super::wire::{
    completion_id, finish_reason, finish_reason_str, shape_error, signature_extra, signature_from_extra, stop_sequence,
    InUsage, OutUsage,
};
use crate::canonical::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

// ---------------------------------------------------------------------------
// Decoding

#[derive(Deserialize)]
struct InChunk<'a> {
    /// Parsed only for `Start`.
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    choices: Option<Vec<InChoice>>,
    usage: Option<InUsage>,
    /// `{"error":{…}}` sent in-band.
    error: Option<Value>,
    /// Older vLLM / SGLang flat errors: `{"object":"error","message",…}`.
    #[serde(borrow)]
    object: Option<&'a RawValue>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InChoice {
    index: Option<u64>,
    delta: Option<InDelta>,
    finish_reason: Option<String>,
    stop_reason: Option<Value>,
}

#[derive(Deserialize)]
struct InDelta {
    content: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<InToolCall>>,
}

#[derive(Deserialize)]
struct InToolCall {
    index: Option<u32>,
    id: Option<String>,
    function: Option<InFunction>,
    extra_content: Option<Value>,
}

#[derive(Deserialize)]
struct InFunction {
    name: Option<String>,
    arguments: Option<String>,
}

/// The part being streamed.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text(u32),
    Thinking(u32),
    Tool(u32),
}

impl Open {
    fn index(self) -> u32 {
        match self {
            Open::Text(i) | Open::Thinking(i) | Open::Tool(i) => i,
        }
    }
}

/// A tool call seen in the stream.
struct ToolSlot {
    /// Its OpenAI `index`.
    key: u32,
    /// Its canonical index.
    index: u32,
    id: String,
}

/// OpenAI SSE chunks → canonical stream events.
///
/// Canonical indices count parts (thinking, text, each tool call) in order
/// of first appearance. A part ends when another begins: text or thinking
/// after another part opens a new part; arguments for a tool call that has
/// already ended are an error. Only choice 0 is read. Chunks with no
/// choices and no usage (Azure's prompt-filter chunk), `usage: null`,
/// `obfuscation` and other vendor extras are ignored.
#[derive(Default)]
pub struct Decoder {
    started: bool,
    finished: bool,
    /// The canonical index the next new part gets.
    next_index: u32,
    open: Option<Open>,
    /// Every tool call seen, in order.
    tools: Vec<ToolSlot>,
    /// A `refusal` delta was seen: the finish is a content filter.
    refused: bool,
}

impl Decoder {
    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(open) = self.open.take() {
            out.push(StreamEvent::PartEnd { index: open.index() });
        }
    }

    /// The index of the open text (`thinking`: thinking) part, opening a
    /// new one if another kind of part is open.
    fn text_part(&mut self, thinking: bool, out: &mut Vec<StreamEvent>) -> u32 {
        match self.open {
            Some(Open::Thinking(i)) if thinking => return i,
            Some(Open::Text(i)) if !thinking => return i,
            _ => {}
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some(if thinking { Open::Thinking(index) } else { Open::Text(index) });
        index
    }

    /// A `delta.tool_calls` entry. A call is known by its `index`; a new
    /// `id` under a known index is a new call (Ollama numbers the calls of
    /// each chunk from 0; Gemini's compatible endpoint may omit `index`).
    fn tool_call(
        &mut self,
        position: usize,
        call: InToolCall,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), TranslateError> {
        let key = call.index.unwrap_or(position as u32);
        let id = call.id.filter(|id| !id.is_empty());
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments.filter(|a| !a.is_empty())),
            None => (None, None),
        };
        let known = self.tools.iter().rev().find(|t| t.key == key).filter(|t| id.as_ref().is_none_or(|id| *id == t.id));
        let index = match known {
            Some(slot) if self.open == Some(Open::Tool(slot.index)) => slot.index,
            Some(_) if arguments.is_none() => return Ok(()),
            Some(_) => {
                return Err(TranslateError::new(
                    format!("choices[0].delta.tool_calls[{position}].index"),
                    format!("tool call {key} continued after another part began"),
                ))
            }
            None => {
                self.close(out);
                let index = self.next_index;
                self.next_index += 1;
                let id = id.unwrap_or_else(|| format!("call_{key}"));
                self.tools.push(ToolSlot { key, index, id: id.clone() });
                self.open = Some(Open::Tool(index));
                let signature = signature_from_extra(call.extra_content.as_ref());
                out.push(StreamEvent::ToolCallStart { index, id, name: name.unwrap_or_default(), signature });
                index
            }
        };
        if let Some(arguments) = arguments {
            out.push(StreamEvent::ToolCallDelta { index, arguments });
        }
        Ok(())
    }

    fn choice(&mut self, choice: InChoice, out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.reasoning_content.or(delta.reasoning).filter(|t| !t.is_empty()) {
                let index = self.text_part(true, out);
                out.push(StreamEvent::ThinkingDelta { index, text });
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                let index = self.text_part(false, out);
                out.push(StreamEvent::TextDelta { index, text });
            }
            if let Some(text) = delta.refusal.filter(|t| !t.is_empty()) {
                self.refused = true;
                let index = self.text_part(false, out);
                out.push(StreamEvent::TextDelta { index, text });
            }
            for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                self.tool_call(position, call, out)?;
            }
        }
        if let Some(reason) = choice.finish_reason {
            if !self.finished {
                self.finished = true;
                self.close(out);
                let reason = if self.refused { FinishReason::ContentFilter } else { finish_reason(&reason) };
                out.push(StreamEvent::Finish { reason, stop_sequence: stop_sequence(choice.stop_reason.as_ref()) });
            }
        }
        Ok(())
    }
}

/// The text of an id/model/message value, or "" for another shape.
fn text_of(raw: Option<&RawValue>) -> String {
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok()).unwrap_or_default()
}

fn value_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// An in-band error value: `{"message","type","code"}` or a bare string.
fn stream_error(error: &Value) -> StreamError {
    let kind = value_text(error.get("type")).or_else(|| value_text(error.get("code")));
    let message = match error {
        Value::String(s) => s.clone(),
        _ => value_text(error.get("message")).unwrap_or_else(|| error.to_string()),
    };
    StreamError { kind: kind.unwrap_or_else(|| "upstream_error".to_string()), message }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, _name: Option<&str>, data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        let data = data.trim_ascii();
        if data.is_empty() {
            return Ok(());
        }
        if data == b"[DONE]" {
            self.close(out);
            out.push(StreamEvent::Done);
            return Ok(());
        }
        let chunk: InChunk = serde_json::from_slice(data).map_err(|e| shape_error("", e))?;
        if let Some(error) = &chunk.error {
            out.push(StreamEvent::Error(stream_error(error)));
            return Ok(());
        }
        if chunk.object.is_some_and(|o| o.get() == r#""error""#) {
            let kind = text_of(chunk.kind);
            let kind = if kind.is_empty() { "upstream_error".to_string() } else { kind };
            out.push(StreamEvent::Error(StreamError { kind, message: text_of(chunk.message) }));
            return Ok(());
        }
        let choices = chunk.choices.unwrap_or_default();
        if choices.is_empty() && chunk.usage.is_none() {
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { id: text_of(chunk.id), model: text_of(chunk.model), input_tokens: None });
        }
        for choice in choices.into_iter().filter(|c| c.index.unwrap_or(0) == 0) {
            self.choice(choice, out)?;
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(usage.canonical()));
        }
        Ok(())
    }

    /// OpenAI ends with `[DONE]`: nothing to add.
    fn end(&mut self, _out: &mut Vec<StreamEvent>) {}
}

// ---------------------------------------------------------------------------
// Encoding

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: &'a [OutChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OutUsage>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    delta: OutDelta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Default, Serialize)]
struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[OutToolCall<'a>; 1]>,
}

#[derive(Serialize)]
struct OutToolCall<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: OutFunction<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<Value>,
}

#[derive(Serialize)]
struct OutFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct OutError<'a> {
    error: OutErrorBody<'a>,
}

#[derive(Serialize)]
struct OutErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: (),
    code: (),
}

/// Canonical stream events → OpenAI SSE chunks (`data: …\n\n`, ending
/// with `data: [DONE]`).
///
/// Every delta is written at once. Thinking goes out as
/// `delta.reasoning_content`; thinking signatures and part ends have no
/// OpenAI form and write nothing. Tool calls are numbered 0, 1, … in the
/// order they start. The usage chunk (`choices: []`) is written before
/// `[DONE]` only when the client asked for it; its counts are zero when the
/// provider gave none.
pub struct Encoder {
    model: String,
    created: i64,
    include_usage: bool,
    /// Set by `Start` (or the first event, when there was no `Start`).
    id: Option<String>,
    /// Canonical index → tool ordinal.
    tools: Vec<(u32, u32)>,
    usage: Option<TokenUsage>,
}

impl Encoder {
    /// `model` is reported in every chunk; `created` is unix seconds;
    /// `include_usage` adds the final usage-only chunk.
    pub fn new(model: &str, created: i64, include_usage: bool) -> Self {
        Encoder { model: model.to_string(), created, include_usage, id: None, tools: Vec::new(), usage: None }
    }

    /// Writes the opening role chunk once.
    fn begin(&mut self, id: &str, out: &mut Vec<u8>) {
        if self.id.is_none() {
            self.id = Some(completion_id(id, self.created));
            let delta = OutDelta { role: Some("assistant"), content: Some(""), ..OutDelta::default() };
            self.chunk(delta, None, out);
        }
    }

    fn chunk(&self, delta: OutDelta<'_>, finish_reason: Option<&'static str>, out: &mut Vec<u8>) {
        let choices = [OutChoice { index: 0, delta, logprobs: (), finish_reason }];
        self.write_chunk(&choices, None, out);
    }

    fn write_chunk(&self, choices: &[OutChoice<'_>], usage: Option<OutUsage>, out: &mut Vec<u8>) {
        let id = self.id.as_deref().unwrap_or_default();
        let chunk =
            OutChunk { id, object: "chat.completion.chunk", created: self.created, model: &self.model, choices, usage };
        write_data(&chunk, out);
    }

    fn tool_ordinal(&mut self, index: u32) -> u32 {
        if let Some(&(_, ordinal)) = self.tools.iter().find(|(i, _)| *i == index) {
            return ordinal;
        }
        let ordinal = self.tools.len() as u32;
        self.tools.push((index, ordinal));
        ordinal
    }
}

/// `data: <json>\n\n`; nothing if `value` cannot be written (it always can:
/// strings, numbers and nulls only).
fn write_data<T: Serialize>(value: &T, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.extend_from_slice(b"\n\n");
    } else {
        out.truncate(start);
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        match event {
            StreamEvent::Start { id, .. } => self.begin(id, out),
            StreamEvent::TextDelta { text, .. } if !text.is_empty() => {
                self.begin("", out);
                self.chunk(OutDelta { content: Some(text), ..OutDelta::default() }, None, out);
            }
            StreamEvent::ThinkingDelta { text, .. } if !text.is_empty() => {
                self.begin("", out);
                self.chunk(OutDelta { reasoning_content: Some(text), ..OutDelta::default() }, None, out);
            }
            StreamEvent::ToolCallStart { index, id, name, signature } => {
                self.begin("", out);
                let call = OutToolCall {
                    index: self.tool_ordinal(*index),
                    id: Some(id),
                    kind: Some("function"),
                    function: OutFunction { name: Some(name), arguments: "" },
                    extra_content: signature_extra(signature.as_deref()),
                };
                self.chunk(OutDelta { tool_calls: Some([call]), ..OutDelta::default() }, None, out);
            }
            StreamEvent::ToolCallDelta { index, arguments } if !arguments.is_empty() => {
                self.begin("", out);
                let call = OutToolCall {
                    index: self.tool_ordinal(*index),
                    id: None,
                    kind: None,
                    function: OutFunction { name: None, arguments },
                    extra_content: None,
                };
                self.chunk(OutDelta { tool_calls: Some([call]), ..OutDelta::default() }, None, out);
            }
            StreamEvent::Finish { reason, .. } => {
                self.begin("", out);
                self.chunk(OutDelta::default(), Some(finish_reason_str(*reason)), out);
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Done => {
                if self.include_usage {
                    self.begin("", out);
                    let usage = OutUsage::new(&self.usage.unwrap_or_default());
                    self.write_chunk(&[], Some(usage), out);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
            }
            // Written by `error`, which the caller invokes for it.
            StreamEvent::Error(_) => {}
            StreamEvent::TextDelta { .. }
            | StreamEvent::ThinkingDelta { .. }
            | StreamEvent::ToolCallDelta { .. }
            | StreamEvent::ThinkingSignature { .. }
            | StreamEvent::PartEnd { .. } => {}
        }
    }

    fn error(&mut self, kind: &str, message: &str, out: &mut Vec<u8>) {
        write_data(&OutError { error: OutErrorBody { message, kind, param: (), code: () } }, out);
    }
}

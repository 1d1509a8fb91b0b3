//! `streamGenerateContent?alt=sse` chunks → canonical stream events.
//!
//! Every `data:` payload is a whole `GenerateContentResponse` holding only
//! the new parts. Gemini has no part boundaries, no tool-call ids and no
//! end sentinel, so the decoder numbers parts itself, synthesises ids like
//! [`super::decode_response`] does, and ends the stream in
//! [`StreamDecoder::end`].

use super::response::{finish_reason, parse, FunctionCall, WirePart};
use crate::canonical::*;

/// The kind of the text part that is open (receiving deltas).
#[derive(Clone, Copy, PartialEq, Eq)]
enum TextKind {
    Text,
    Thinking,
}

/// `streamGenerateContent?alt=sse` chunks → canonical stream events.
pub struct Decoder {
    id_prefix: String,
    started: bool,
    /// Canonical index of the next part.
    next_index: u32,
    /// The open text or thinking part and its index.
    open: Option<(TextKind, u32)>,
    /// Function calls seen so far (numbers synthesised ids).
    calls: u32,
    /// The finish reason, once seen.
    finish: Option<FinishReason>,
    /// The latest usage and the last one emitted.
    usage: Option<TokenUsage>,
    emitted_usage: Option<TokenUsage>,
    /// An error chunk arrived or `end` ran: nothing more is emitted.
    ended: bool,
}

impl Decoder {
    /// Tool-call ids are synthesised as `call_{id_prefix}_{n}`.
    pub fn new(id_prefix: &str) -> Self {
        Decoder {
            id_prefix: id_prefix.to_string(),
            started: false,
            next_index: 0,
            open: None,
            calls: 0,
            finish: None,
            usage: None,
            emitted_usage: None,
            ended: false,
        }
    }

    fn take_index(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        index
    }

    fn close_open(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((_, index)) = self.open.take() {
            out.push(StreamEvent::PartEnd { index });
        }
    }

    /// The index of the open part of `kind`, opening one if needed.
    fn index_for(&mut self, kind: TextKind, out: &mut Vec<StreamEvent>) -> u32 {
        match self.open {
            Some((open_kind, index)) if open_kind == kind => index,
            _ => {
                self.close_open(out);
                let index = self.take_index();
                self.open = Some((kind, index));
                index
            }
        }
    }

    fn text_part(&mut self, part: WirePart, out: &mut Vec<StreamEvent>) {
        let text = part.text.unwrap_or_default();
        if !part.thought {
            // A signature on plain text has no canonical place.
            if !text.is_empty() {
                let index = self.index_for(TextKind::Text, out);
                out.push(StreamEvent::TextDelta { index, text });
            }
            return;
        }
        if !text.is_empty() {
            let index = self.index_for(TextKind::Thinking, out);
            out.push(StreamEvent::ThinkingDelta { index, text });
        }
        if let (Some(signature), Some((TextKind::Thinking, index))) = (part.thought_signature, self.open) {
            out.push(StreamEvent::ThinkingSignature { index, signature });
            self.close_open(out);
        }
    }

    fn call_part(&mut self, call: FunctionCall, signature: Option<String>, out: &mut Vec<StreamEvent>) {
        self.close_open(out);
        let index = self.take_index();
        let id = call.call_id(&self.id_prefix, self.calls);
        self.calls = self.calls.saturating_add(1);
        let arguments = call.arguments();
        out.push(StreamEvent::ToolCallStart { index, id, name: call.name, signature });
        out.push(StreamEvent::ToolCallDelta { index, arguments });
        out.push(StreamEvent::PartEnd { index });
    }

    fn emit_usage(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(usage) = self.usage {
            if self.emitted_usage != Some(usage) {
                out.push(StreamEvent::Usage(usage));
                self.emitted_usage = Some(usage);
            }
        }
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, _name: Option<&str>, data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        if self.ended {
            return Ok(());
        }
        let data = data.trim_ascii();
        if data.is_empty() {
            return Ok(());
        }
        let chunk = parse(data, "data")?;
        if let Some(err) = chunk.error {
            self.close_open(out);
            out.push(StreamEvent::Error(StreamError { kind: err.kind(), message: err.message() }));
            self.ended = true;
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.response_id.clone().unwrap_or_default(),
                model: chunk.model_version.clone().unwrap_or_default(),
                input_tokens: None,
            });
        }

        let mut reason = None;
        if let Some(candidate) = chunk.candidates.into_iter().next() {
            for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                match part.function_call {
                    Some(call) => self.call_part(call, part.thought_signature, out),
                    None if part.text.is_some() => self.text_part(part, out),
                    None => {}
                }
            }
            reason = candidate.finish_reason.map(|r| finish_reason(&r, self.calls > 0));
        } else if chunk.prompt_feedback.is_some_and(|f| f.block_reason.is_some()) {
            reason = Some(FinishReason::ContentFilter);
        }

        if let Some(usage) = chunk.usage_metadata {
            self.usage = Some(usage.to_canonical());
        }
        if let (Some(reason), None) = (reason, self.finish) {
            self.close_open(out);
            out.push(StreamEvent::Finish { reason, stop_sequence: None });
            self.finish = Some(reason);
        }
        self.emit_usage(out);
        Ok(())
    }

    /// After a finish reason: the final usage (if not yet emitted) and
    /// `Done`. Without one, nothing: the caller treats it as a cut stream.
    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.finish.is_some() {
            self.close_open(out);
            self.emit_usage(out);
            out.push(StreamEvent::Done);
        }
    }
}

//! Stream rescue (docs/resilience.md#stream-rescue): a stream cut or stalled
//! after text reached the client is continued on another deployment of the
//! plan, on the same response, so the client reads one complete answer.
//!
//! ```text
//! relay: text delivered so far ──(cut, broken, silent past idle)──▶ Rescue::continuation
//!   → the client's request + an assistant turn holding the delivered text
//!     (Anthropic: a prefill it continues; others: plus a user turn asking
//!     to continue without repeating)
//!   → the next deployment of the plan, streamed; its events re-indexed so
//!     its text continues the text part the client is reading, its start
//!     dropped, its finish, usage and end passed on
//! ```
//!
//! Only text is continued: a stream cut inside a tool call (or after one
//! started) is not rescued — the client gets the in-band error event, as
//! when rescue is off. The cut attempt is recorded with what it produced
//! (`error_kind: cut_rescued`), billed; the continuation is the request's
//! final record.

use crate::runtime::Deployment;
use std::sync::Arc;
use switchyard_translate::{ChatRequest, Message, Part, Role, StreamEvent};

/// The instruction a non-Anthropic fallback gets after the delivered text.
pub const CONTINUE: &str =
    "Continue your previous answer exactly where it stops. Do not repeat any of it and do not comment on the interruption.";

/// What a relay needs to continue its stream elsewhere.
pub struct Rescue {
    /// The client's request, in canonical form.
    pub request: ChatRequest,
    /// The plan's other deployments, in order.
    pub fallbacks: Vec<Arc<Deployment>>,
    pub request_id: String,
    /// The request's deadline.
    pub deadline: tokio::time::Instant,
    pub resilience: switchyard_config::ResilienceConfig,
    /// The deployment streaming now.
    pub current: Arc<Deployment>,
}

/// What the client has been sent, for continuing it.
#[derive(Default)]
pub struct Delivered {
    /// The text of the answer's text parts, in order.
    pub text: String,
    /// The part index of the text the client is reading.
    pub text_index: Option<u32>,
    /// One past the highest part index sent.
    pub next_index: u32,
    /// A tool call started: not continued.
    pub tool_call: bool,
}

impl Delivered {
    pub fn see(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::TextDelta { index, text } => {
                self.text.push_str(text);
                self.text_index = Some(*index);
                self.next_index = self.next_index.max(index + 1);
            }
            StreamEvent::ThinkingDelta { index, .. } | StreamEvent::PartEnd { index } => {
                self.next_index = self.next_index.max(index + 1);
            }
            StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta { .. } => self.tool_call = true,
            _ => {}
        }
    }

    /// Whether a continuation can make the answer whole.
    pub fn rescuable(&self) -> bool {
        !self.tool_call && !self.text.is_empty()
    }
}

/// The request that asks `to` to continue `delivered`.
pub fn continuation(request: &ChatRequest, delivered: &str, anthropic: bool) -> ChatRequest {
    let mut r = request.clone();
    r.stream = true;
    let prefix = if anthropic { delivered.trim_end() } else { delivered };
    r.messages.push(Message {
        role: Role::Assistant,
        parts: vec![Part::Text { text: prefix.to_string(), cache_control: None }],
    });
    if !anthropic {
        r.messages.push(Message {
            role: Role::User,
            parts: vec![Part::Text { text: CONTINUE.to_string(), cache_control: None }],
        });
    }
    r
}

/// Maps a continuation's events onto the stream the client is reading:
/// its start is dropped; its first text part continues the client's text
/// part; its other parts follow the parts already sent.
pub struct Remap {
    pub text_index: u32,
    pub base: u32,
    /// The continuation's text part, once seen.
    first_text: Option<u32>,
    /// Whitespace an Anthropic prefill had trimmed, put back before the
    /// continuation's first text.
    pub pad: String,
}

impl Remap {
    pub fn new(delivered: &Delivered, pad: String) -> Remap {
        Remap { text_index: delivered.text_index.unwrap_or(0), base: delivered.next_index, first_text: None, pad }
    }

    fn index(&mut self, i: u32, text: bool) -> u32 {
        if text && self.first_text.is_none() {
            self.first_text = Some(i);
        }
        if self.first_text == Some(i) {
            self.text_index
        } else {
            self.base + i
        }
    }

    pub fn apply(&mut self, events: &mut Vec<StreamEvent>) {
        let mut out = Vec::with_capacity(events.len());
        for event in events.drain(..) {
            let mapped = match event {
                StreamEvent::Start { .. } => continue,
                StreamEvent::TextDelta { index, mut text } => {
                    let index = self.index(index, true);
                    if !self.pad.is_empty() && !text.is_empty() {
                        let needs = !text.starts_with(char::is_whitespace);
                        let pad = std::mem::take(&mut self.pad);
                        if needs {
                            text.insert_str(0, &pad);
                        }
                    }
                    StreamEvent::TextDelta { index, text }
                }
                StreamEvent::ThinkingDelta { index, text } => {
                    StreamEvent::ThinkingDelta { index: self.index(index, false), text }
                }
                StreamEvent::ThinkingSignature { index, signature } => {
                    StreamEvent::ThinkingSignature { index: self.index(index, false), signature }
                }
                StreamEvent::ToolCallStart { index, id, name, signature } => {
                    StreamEvent::ToolCallStart { index: self.index(index, false), id, name, signature }
                }
                StreamEvent::ToolCallDelta { index, arguments } => {
                    StreamEvent::ToolCallDelta { index: self.index(index, false), arguments }
                }
                StreamEvent::PartEnd { index } => StreamEvent::PartEnd { index: self.index(index, false) },
                other => other,
            };
            out.push(mapped);
        }
        *events = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_translate::FinishReason;

    #[test]
    fn continuations_carry_the_delivered_text() {
        let request = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                parts: vec![Part::Text { text: "hi".into(), cache_control: None }],
            }],
            ..ChatRequest::default()
        };
        let anthropic = continuation(&request, "Once upon a ", true);
        assert_eq!(anthropic.messages.len(), 2);
        assert_eq!(anthropic.messages[1].parts, [Part::Text { text: "Once upon a".into(), cache_control: None }]);
        let other = continuation(&request, "Once upon a ", false);
        assert_eq!(other.messages.len(), 3);
        assert_eq!(other.messages[1].parts, [Part::Text { text: "Once upon a ".into(), cache_control: None }]);
        assert_eq!(other.messages[2].role, Role::User);
        assert!(other.stream);
    }

    #[test]
    fn the_continuation_continues_the_clients_text_part() {
        let mut delivered = Delivered::default();
        for e in [
            StreamEvent::ThinkingDelta { index: 0, text: "hm".into() },
            StreamEvent::PartEnd { index: 0 },
            StreamEvent::TextDelta { index: 1, text: "Once upon a".into() },
        ] {
            delivered.see(&e);
        }
        assert!(delivered.rescuable());
        let mut remap = Remap::new(&delivered, " ".into());
        let mut events = vec![
            StreamEvent::Start { id: "x".into(), model: "m".into(), input_tokens: None },
            StreamEvent::TextDelta { index: 0, text: "time".into() },
            StreamEvent::TextDelta { index: 0, text: " there".into() },
            StreamEvent::PartEnd { index: 0 },
            StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None },
            StreamEvent::Done,
        ];
        remap.apply(&mut events);
        assert_eq!(
            events,
            [
                StreamEvent::TextDelta { index: 1, text: " time".into() },
                StreamEvent::TextDelta { index: 1, text: " there".into() },
                StreamEvent::PartEnd { index: 1 },
                StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None },
                StreamEvent::Done,
            ]
        );
        let mut cut_in_a_tool = Delivered::default();
        cut_in_a_tool.see(&StreamEvent::TextDelta { index: 0, text: "Let me look".into() });
        cut_in_a_tool.see(&StreamEvent::ToolCallStart { index: 1, id: "c".into(), name: "f".into(), signature: None });
        assert!(!cut_in_a_tool.rescuable());
        assert!(!Delivered::default().rescuable(), "nothing to continue");
    }
}

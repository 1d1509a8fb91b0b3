//! A whole answer replayed as the stream that would have carried it.
//!
//! When the gateway serves a client that asked for a stream from a
//! non-stream (buffered) upstream answer ("mode degradation"), it runs
//! [`stream_events`] and feeds the events to the client format's
//! [`StreamEncoder`] like any live stream. The events are what a decoder
//! would have produced for the same answer, one delta per part:
//!
//! | `ChatResponse` | events, in order |
//! | --- | --- |
//! | (always) | `Start { id, model, input_tokens }` (input tokens when the usage is known) |
//! | `Part::Text` | `TextDelta` (the whole text), `PartEnd` |
//! | `Part::Thinking` | `ThinkingDelta` (the whole text), `ThinkingSignature` when signed, `PartEnd` |
//! | `Part::Thinking`, empty text and a signature (Anthropic `redacted_thinking`) | the same: an empty `ThinkingDelta`, then the signature carrying the redacted data (which the Anthropic encoder writes as a `redacted_thinking` block) |
//! | `Part::ToolCall` | `ToolCallStart { id, name, signature }`, `ToolCallDelta` (the whole arguments), `PartEnd` |
//! | `Part::Image`, `Part::ToolResult` | nothing, and no index: answers never hold them, and [`encode_response`](crate::openai::encode_response) leaves them out too |
//! | `finish` | `Finish { reason, stop_sequence }`; a stop sequence without a reason is `Stop` (it is what ended the answer) |
//! | `usage` | `Usage` |
//! | (always) | `Done` |
//!
//! Parts are numbered 0, 1, … in order. A delta is written even when its
//! text is empty, so the stream is lossless: folding the events back gives
//! the answer's parts exactly. Encoders skip empty deltas and say what their
//! format cannot (OpenAI has no thinking signatures, for one), exactly as
//! for a live stream. A text part's `cache_control` (a request-side
//! Anthropic field, never set on an answer) has no stream form and is not
//! carried; `created` neither: the caller gives it to the encoder.
//!
//! [`StreamEncoder`]: crate::canonical::StreamEncoder

use crate::canonical::*;

/// The canonical stream of `resp`: `Start`, each part's events ending with
/// its `PartEnd`, `Finish` (when the answer says why it ended), `Usage`
/// (when known) and `Done`. See the module docs for the mapping.
pub fn stream_events(resp: &ChatResponse) -> Vec<StreamEvent> {
    // Start, three events per part at most, finish, usage, done.
    let mut events = Vec::with_capacity(resp.parts.len().saturating_mul(3).saturating_add(4));
    events.push(StreamEvent::Start {
        id: resp.id.clone(),
        model: resp.model.clone(),
        input_tokens: resp.usage.map(|u| u.input_tokens),
    });
    let mut index: u32 = 0;
    for part in &resp.parts {
        match part {
            Part::Text { text, cache_control: _ } => {
                events.push(StreamEvent::TextDelta { index, text: text.clone() });
            }
            Part::Thinking { text, signature } => {
                events.push(StreamEvent::ThinkingDelta { index, text: text.clone() });
                if let Some(signature) = signature {
                    events.push(StreamEvent::ThinkingSignature { index, signature: signature.clone() });
                }
            }
            Part::ToolCall(ToolCall { id, name, arguments, signature }) => {
                events.push(StreamEvent::ToolCallStart {
                    index,
                    id: id.clone(),
                    name: name.clone(),
                    signature: signature.clone(),
                });
                events.push(StreamEvent::ToolCallDelta { index, arguments: arguments.clone() });
            }
            Part::Image(_) | Part::ToolResult(_) => continue,
        }
        events.push(StreamEvent::PartEnd { index });
        index = index.saturating_add(1);
    }
    let reason = resp.finish.or(resp.stop_sequence.as_ref().map(|_| FinishReason::Stop));
    if let Some(reason) = reason {
        events.push(StreamEvent::Finish { reason, stop_sequence: resp.stop_sequence.clone() });
    }
    if let Some(usage) = resp.usage {
        events.push(StreamEvent::Usage(usage));
    }
    events.push(StreamEvent::Done);
    events
}

#[cfg(test)]
mod tests;

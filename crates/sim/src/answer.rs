//! What the sim answers, decided the same way for every wire format: a
//! tool call when the request allows one and the `tool_calls` knob is
//! `auto`, else a text of `answer_tokens` lorem words (with the `echo` knob:
//! the words of the request's last user text), fewer when the request's
//! output limit (`max_completion_tokens`/`max_tokens`, Anthropic
//! `max_tokens`, Gemini `maxOutputTokens`) is smaller.

use crate::knobs::{Knobs, ToolCalls};
use crate::text::{Echo, Source};
use crate::tools::ToolCall;

#[derive(Debug)]
pub(crate) enum Answer {
    /// `words` words (≈ tokens) of `source`; `truncated` when the output
    /// limit cut them short.
    Text {
        words: u32,
        truncated: bool,
        source: Source,
    },
    Tool(ToolCall),
}

impl Answer {
    /// `tool` is the call the request allows (see [`crate::tools::call`]);
    /// `echo` the request's last user text (see [`crate::text::last_user_text`]).
    pub(crate) fn decide(knobs: &Knobs, tool: Option<ToolCall>, max_tokens: Option<u64>, echo: String) -> Self {
        if let Some(call) = tool.filter(|_| knobs.tool_calls == ToolCalls::Auto) {
            return Answer::Tool(call);
        }
        let source = if knobs.echo { Source::Echo(Echo::new(echo)) } else { Source::Lorem };
        let answer = source.words(knobs.answer_tokens);
        match max_tokens {
            Some(max) if max < u64::from(answer) => {
                Answer::Text { words: u32::try_from(max).unwrap_or(answer), truncated: true, source }
            }
            _ => Answer::Text { words: answer, truncated: false, source },
        }
    }
}

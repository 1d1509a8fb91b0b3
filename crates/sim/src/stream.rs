//! The frames of a streamed OpenAI chat completion (paced and cut by
//! [`crate::pacing`]).
//!
//! Frames, as in `fixtures/wire/openai/chat_stream_*.sse`, each `data: …\n\n`:
//! 1. per choice, `delta: {role, content: "" | null (+ tool_calls), refusal: null}`
//! 2. per step and choice, a content word or a piece of the tool arguments
//! 3. per choice, `delta: {}` with `finish_reason`
//! 4. with `include_usage`, `choices: []` + `usage` (other chunks then carry `"usage": null`)
//! 5. `data: [DONE]`
//!
//! `error_after_tokens` replaces what follows that many steps with one
//! [`STREAM_ERROR`] event and no `[DONE]`.

use axum::response::Response;

use crate::chat::{Plan, Reply};
use crate::knobs::Knobs;
use crate::pacing::{self, Frames};
use crate::record::Recording;
use crate::wire;

/// The in-band error of a stream that fails after HTTP 200: OpenAI's error
/// envelope on a `data:` line (the message of
/// `fixtures/wire/openai/responses_stream_error_event.sse`; Chat Completions
/// does not document the shape).
const STREAM_ERROR: &str = "data: {\"error\":{\"message\":\"The server had an error while processing your request. \
                            Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";

/// Starts streaming `plan`; `cut_after_tokens` and `error_after_tokens`
/// count steps (words or argument pieces), per choice.
pub(crate) fn respond(rec: Recording, plan: Plan, knobs: &Knobs) -> Response {
    pacing::respond(rec, ChatFrames::new(plan), knobs)
}

struct ChatFrames {
    plan: Plan,
    /// `data: {"id":…,"choices":[` shared by every chunk.
    head: String,
    /// Tool arguments split into streamed pieces.
    pieces: Vec<(usize, usize)>,
    steps: u32,
}

impl ChatFrames {
    fn new(plan: Plan) -> Self {
        let mut head = String::with_capacity(160 + plan.model.len());
        head.push_str("data: {\"id\":\"chatcmpl-sim");
        wire::push_num(&mut head, plan.id);
        head.push_str("\",\"object\":\"chat.completion.chunk\",\"created\":");
        wire::push_num(&mut head, plan.created);
        head.push_str(",\"model\":");
        wire::push_str_lit(&mut head, &plan.model);
        head.push_str(",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_sim\",\"choices\":[");
        let (pieces, steps) = match &plan.reply {
            Reply::Text { words, .. } => (Vec::new(), *words),
            Reply::Tool { call, .. } => {
                let p = call.pieces();
                let n = u32::try_from(p.len()).unwrap_or(u32::MAX);
                (p, n)
            }
        };
        Self { plan, head, pieces, steps }
    }

    /// One choice chunk: `head{"index":c,"delta":DELTA,"logprobs":null,"finish_reason":F}]…}`.
    fn chunk(&self, buf: &mut String, c: u32, delta: impl FnOnce(&mut String), finish: bool) {
        buf.push_str(&self.head);
        buf.push_str("{\"index\":");
        wire::push_num(buf, c);
        buf.push_str(",\"delta\":");
        delta(buf);
        buf.push_str(",\"logprobs\":null,\"finish_reason\":");
        if finish {
            buf.push('"');
            buf.push_str(self.plan.finish_reason());
            buf.push('"');
        } else {
            buf.push_str("null");
        }
        buf.push_str("}]");
        if self.plan.include_usage {
            buf.push_str(",\"usage\":null");
        }
        buf.push_str("}\n\n");
    }
}

impl Frames for ChatFrames {
    fn start(&self, buf: &mut String) {
        buf.reserve(self.head.len() * 2 * (self.steps as usize + 2));
        for c in 0..self.plan.n {
            self.chunk(
                buf,
                c,
                |b| match &self.plan.reply {
                    Reply::Text { .. } => {
                        b.push_str("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}");
                    }
                    Reply::Tool { first_id, call } => {
                        b.push_str(
                            "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_sim",
                        );
                        wire::push_num(b, first_id + u64::from(c));
                        b.push_str("\",\"type\":\"function\",\"function\":{\"name\":");
                        wire::push_str_lit(b, &call.name);
                        b.push_str(",\"arguments\":\"\"}}],\"refusal\":null}");
                    }
                },
                false,
            );
        }
    }

    fn steps(&self) -> u32 {
        self.steps
    }

    fn step(&self, buf: &mut String, k: u32) {
        for c in 0..self.plan.n {
            self.chunk(
                buf,
                c,
                |b| match &self.plan.reply {
                    Reply::Text { source, .. } => {
                        b.push_str("{\"content\":\"");
                        source.push_token(b, c, k);
                        b.push_str("\"}");
                    }
                    Reply::Tool { call, .. } => {
                        let (from, to) = self.pieces.get(k as usize).copied().unwrap_or((0, 0));
                        b.push_str("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
                        wire::push_str_lit(b, call.arguments.get(from..to).unwrap_or(""));
                        b.push_str("}}]}");
                    }
                },
                false,
            );
        }
    }

    fn finish(&self, buf: &mut String) {
        for c in 0..self.plan.n {
            self.chunk(buf, c, |b| b.push_str("{}"), true);
        }
        if self.plan.include_usage {
            if let Some((prompt, completion)) = self.plan.usage {
                buf.push_str(&self.head);
                buf.push_str("],\"usage\":");
                wire::push_chat_usage(buf, prompt, completion);
                buf.push_str("}\n\n");
            }
        }
        buf.push_str("data: [DONE]\n\n");
    }

    fn error(&self, buf: &mut String) {
        buf.push_str(STREAM_ERROR);
    }
}

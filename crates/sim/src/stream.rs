//! The SSE body of a streamed chat completion, generated lazily chunk by
//! chunk (nothing per token is allocated up front), paced by `ttft_ms` and
//! `tokens_per_sec`, and cut on purpose by `cut_after_tokens`.
//!
//! Frames, as in `fixtures/wire/openai/chat_stream_*.sse`, each `data: …\n\n`:
//! 1. per choice, `delta: {role, content: "" | null (+ tool_calls), refusal: null}`
//! 2. per step and choice, a content word or a piece of the tool arguments
//! 3. per choice, `delta: {}` with `finish_reason`
//! 4. with `include_usage`, `choices: []` + `usage` (other chunks then carry `"usage": null`)
//! 5. `data: [DONE]`
//!
//! Without pacing everything ready is sent as one frame, so the sim costs
//! little in benchmarks; with pacing each step is its own frame.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::HeaderValue;
use tokio::time::{Instant, Sleep};

use crate::chat::{Plan, Reply};
use crate::knobs::Knobs;
use crate::record::{Outcome, Recording};
use crate::{text, wire};

/// Bytes of tool-call arguments per streamed piece.
const ARG_PIECE: usize = 8;

/// Starts streaming `plan`; headers go out at once, chunks after `ttft_ms`.
pub(crate) fn respond(rec: Recording, plan: Plan, knobs: &Knobs) -> Response {
    rec.set_status(200);
    let seq = rec.seq();
    let stream = ChunkStream::new(rec, plan, knobs);
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    wire::set_request_id(&mut resp, seq);
    resp
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Start,
    Steps,
    /// Data before the cut was handed over; yield once so it is flushed.
    Cut {
        yielded: bool,
    },
    Finish,
    Done,
}

struct ChunkStream {
    rec: Option<Recording>,
    plan: Plan,
    /// `data: {"id":…,"choices":[` shared by every chunk.
    head: String,
    /// Tool arguments split at char boundaries into pieces of `ARG_PIECE` bytes.
    pieces: Vec<(usize, usize)>,
    steps: u32,
    step: u32,
    cut_after: Option<u32>,
    interval: Option<Duration>,
    t0: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    phase: Phase,
}

impl ChunkStream {
    fn new(rec: Recording, plan: Plan, knobs: &Knobs) -> Self {
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
                let p = split(&call.arguments);
                let n = u32::try_from(p.len()).unwrap_or(u32::MAX);
                (p, n)
            }
        };
        let interval = (knobs.tokens_per_sec > 0.0)
            .then(|| Duration::try_from_secs_f64(1.0 / knobs.tokens_per_sec).ok())
            .flatten();
        let ttft = Duration::from_millis(knobs.ttft_ms);
        let now = Instant::now();
        Self {
            rec: Some(rec),
            plan,
            head,
            pieces,
            steps,
            step: 0,
            cut_after: knobs.cut_after_tokens,
            interval,
            t0: now + ttft,
            sleep: (!ttft.is_zero()).then(|| Box::pin(tokio::time::sleep_until(now + ttft))),
            phase: Phase::Start,
        }
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

    fn write_start(&self, buf: &mut String) {
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

    fn write_step(&self, buf: &mut String, k: u32) {
        for c in 0..self.plan.n {
            self.chunk(
                buf,
                c,
                |b| match &self.plan.reply {
                    Reply::Text { .. } => {
                        b.push_str("{\"content\":\"");
                        text::push_token(b, c, k);
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

    fn write_finish(&self, buf: &mut String) {
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

    fn end(&mut self, outcome: Outcome) {
        if let Some(rec) = self.rec.take() {
            rec.finish(outcome, 200);
        }
    }
}

fn split(s: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(s.len() / ARG_PIECE + 1);
    let mut from = 0;
    while from < s.len() {
        let mut to = (from + ARG_PIECE).min(s.len());
        while !s.is_char_boundary(to) {
            to += 1;
        }
        out.push((from, to));
        from = to;
    }
    out
}

fn frame(buf: String) -> Poll<Option<io::Result<Bytes>>> {
    Poll::Ready(Some(Ok(Bytes::from(buf))))
}

impl Stream for ChunkStream {
    type Item = io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(sleep) = this.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        let mut buf = String::new();
        loop {
            match this.phase {
                Phase::Start => {
                    buf.reserve(this.head.len() * 2 * (this.steps as usize + 2));
                    this.write_start(&mut buf);
                    this.phase = Phase::Steps;
                }
                Phase::Steps => {
                    if this.cut_after == Some(this.step) {
                        this.phase = Phase::Cut { yielded: false };
                        if !buf.is_empty() {
                            return frame(buf);
                        }
                    } else if this.step >= this.steps {
                        this.phase = Phase::Finish;
                    } else {
                        this.write_step(&mut buf, this.step);
                        this.step += 1;
                        if let Some(interval) = this.interval {
                            if this.step < this.steps {
                                let at = this.t0 + interval.saturating_mul(this.step);
                                this.sleep = Some(Box::pin(tokio::time::sleep_until(at)));
                                return frame(buf);
                            }
                        }
                    }
                }
                Phase::Cut { yielded: false } => {
                    // Returning Pending lets hyper flush what was sent before
                    // the error below aborts the connection.
                    this.phase = Phase::Cut { yielded: true };
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Phase::Cut { yielded: true } => {
                    this.end(Outcome::Cut);
                    this.phase = Phase::Done;
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "switchyard-sim: stream cut on purpose (cut_after_tokens)",
                    ))));
                }
                Phase::Finish => {
                    this.write_finish(&mut buf);
                    this.phase = Phase::Done;
                    return frame(buf);
                }
                Phase::Done => {
                    this.end(Outcome::Completed);
                    return Poll::Ready(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn split_keeps_char_boundaries() {
        let s = r#"{"city":"Zürich ✓✓✓"}"#;
        let pieces = split(s);
        let joined: String = pieces.iter().map(|&(a, b)| &s[a..b]).collect();
        assert_eq!(joined, s);
        assert!(pieces.iter().all(|&(a, b)| b > a));
    }
}

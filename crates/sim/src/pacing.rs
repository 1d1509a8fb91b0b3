//! The paced body of every streamed answer, whatever its wire format: a
//! format writes its frames ([`Frames`]), this module decides when they go
//! out (`ttft_ms`, `tokens_per_sec`), cuts the connection on purpose
//! (`cut_after_tokens`) and records how the stream ended. Frames are
//! generated lazily step by step (nothing per token is allocated up front).
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

use crate::knobs::Knobs;
use crate::record::{Format, Outcome, Recording};
use crate::wire;

/// One wire format's stream of an answer, as steps (a word, a piece of tool
/// arguments, a few words) between a start and a finish.
pub(crate) trait Frames: Send + Unpin + 'static {
    /// What goes out before the first step (may be nothing).
    fn start(&self, buf: &mut String);
    /// How many steps the answer has.
    fn steps(&self) -> u32;
    /// Step `k`.
    fn step(&self, buf: &mut String, k: u32);
    /// What goes out after the last step (may be nothing).
    fn finish(&self, buf: &mut String);
    /// The answer token step `k` starts with: step `k` is due
    /// `offset(k) / tokens_per_sec` after the first.
    fn offset(&self, k: u32) -> u32 {
        k
    }
}

/// Waits `latency_ms`, the delay of a non-stream answer.
pub(crate) async fn latency(knobs: &Knobs) {
    if knobs.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(knobs.latency_ms)).await;
    }
}

/// Starts streaming `frames`; headers go out at once, the start after
/// `ttft_ms`. With `cut_step`, the connection is dropped right before that
/// step (or before the finish when it equals the number of steps).
pub(crate) fn respond(rec: Recording, frames: impl Frames, knobs: &Knobs, cut_step: Option<u32>) -> Response {
    rec.set_status(200);
    let seq = rec.seq();
    let format = rec.format();
    let stream = Paced::new(rec, frames, knobs, cut_step);
    let mut resp = Response::new(Body::from_stream(stream));
    let content_type = match format {
        Format::Gemini => "text/event-stream",
        Format::OpenAi | Format::Azure | Format::Anthropic => "text/event-stream; charset=utf-8",
    };
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    wire::set_request_id(&mut resp, format, seq);
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

struct Paced<F> {
    rec: Option<Recording>,
    frames: F,
    steps: u32,
    step: u32,
    cut_step: Option<u32>,
    interval: Option<Duration>,
    t0: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    phase: Phase,
}

impl<F: Frames> Paced<F> {
    fn new(rec: Recording, frames: F, knobs: &Knobs, cut_step: Option<u32>) -> Self {
        let interval = (knobs.tokens_per_sec > 0.0)
            .then(|| Duration::try_from_secs_f64(1.0 / knobs.tokens_per_sec).ok())
            .flatten();
        let ttft = Duration::from_millis(knobs.ttft_ms);
        let now = Instant::now();
        Self {
            rec: Some(rec),
            steps: frames.steps(),
            frames,
            step: 0,
            cut_step,
            interval,
            t0: now + ttft,
            sleep: (!ttft.is_zero()).then(|| Box::pin(tokio::time::sleep_until(now + ttft))),
            phase: Phase::Start,
        }
    }

    fn end(&mut self, outcome: Outcome) {
        if let Some(rec) = self.rec.take() {
            rec.finish(outcome, 200);
        }
    }
}

fn frame(buf: String) -> Poll<Option<io::Result<Bytes>>> {
    Poll::Ready(Some(Ok(Bytes::from(buf))))
}

impl<F: Frames> Stream for Paced<F> {
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
                    this.frames.start(&mut buf);
                    this.phase = Phase::Steps;
                }
                Phase::Steps => {
                    if this.cut_step == Some(this.step) {
                        this.phase = Phase::Cut { yielded: false };
                        if !buf.is_empty() {
                            return frame(buf);
                        }
                    } else if this.step >= this.steps {
                        this.phase = Phase::Finish;
                    } else {
                        this.frames.step(&mut buf, this.step);
                        this.step += 1;
                        if let Some(interval) = this.interval {
                            if this.step < this.steps {
                                let at = this.t0 + interval.saturating_mul(this.frames.offset(this.step));
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
                    this.frames.finish(&mut buf);
                    this.phase = Phase::Done;
                    if !buf.is_empty() {
                        return frame(buf);
                    }
                }
                Phase::Done => {
                    this.end(Outcome::Completed);
                    return Poll::Ready(None);
                }
            }
        }
    }
}

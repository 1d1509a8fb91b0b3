//! The paced body of every streamed answer, whatever its wire format: a
//! format writes its frames ([`Frames`]), this module decides when they go
//! out (`ttft_ms`, `tokens_per_sec`), when a stream ends early on purpose
//! (`cut_after_tokens` drops the connection, `error_after_tokens` sends the
//! format's error event and ends the body cleanly) and records how the
//! stream ended. Frames are generated lazily step by step (nothing per token
//! is allocated up front).
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
    /// The format's in-band error event, sent instead of the rest of the
    /// answer (and of the finish) when `error_after_tokens` stops the stream.
    fn error(&self, buf: &mut String);
    /// The answer token step `k` starts with: step `k` is due
    /// `offset(k) / tokens_per_sec` after the first.
    fn offset(&self, k: u32) -> u32 {
        k
    }
    /// The step before which a stream that must stop after `tokens` answer
    /// tokens (`cut_after_tokens`, `error_after_tokens`) stops: the number
    /// of steps stops it before the finish; `None` (the answer is shorter)
    /// lets it end normally. Called once, before the start. By default a
    /// step is a token.
    fn stop_step(&mut self, tokens: u32) -> Option<u32> {
        (tokens <= self.steps()).then_some(tokens)
    }
}

/// How a stream ends early on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// `cut_after_tokens`: drop the connection.
    Cut,
    /// `error_after_tokens`: the format's error event, then a clean end.
    Error,
}

impl Stop {
    /// The early end the knobs ask for and after how many answer tokens:
    /// the earlier of `cut_after_tokens` and `error_after_tokens` (the cut
    /// when both are equal).
    fn of(knobs: &Knobs) -> Option<(u32, Stop)> {
        [knobs.cut_after_tokens.map(|n| (n, Stop::Cut)), knobs.error_after_tokens.map(|n| (n, Stop::Error))]
            .into_iter()
            .flatten()
            .min_by_key(|(n, _)| *n)
    }
}

/// Waits `latency_ms`, the delay of a non-stream answer.
pub(crate) async fn latency(knobs: &Knobs) {
    if knobs.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(knobs.latency_ms)).await;
    }
}

/// Starts streaming `frames`; headers go out at once, the start after
/// `ttft_ms`. With `cut_after_tokens` / `error_after_tokens`, the stream
/// stops right before the step [`Frames::stop_step`] names (before the
/// finish when that is the number of steps): the connection is dropped, or
/// the format's error event is sent and the body ends.
pub(crate) fn respond(rec: Recording, frames: impl Frames, knobs: &Knobs) -> Response {
    rec.set_status(200);
    let seq = rec.seq();
    let format = rec.format();
    let stream = Paced::new(rec, frames, knobs);
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
    /// The error event, instead of the rest and the finish.
    Error,
    Finish,
    /// Everything was handed over; the stream ends with this outcome.
    Done(Outcome),
}

struct Paced<F> {
    rec: Option<Recording>,
    frames: F,
    steps: u32,
    step: u32,
    /// Where and how the stream stops early.
    stop: Option<(u32, Stop)>,
    interval: Option<Duration>,
    t0: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    phase: Phase,
}

impl<F: Frames> Paced<F> {
    fn new(rec: Recording, mut frames: F, knobs: &Knobs) -> Self {
        // Before `steps`: a format may split its steps where the stream stops.
        let stop = Stop::of(knobs).and_then(|(tokens, stop)| Some((frames.stop_step(tokens)?, stop)));
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
            stop,
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
                    if let Some((_, stop)) = this.stop.filter(|(at, _)| *at == this.step) {
                        match stop {
                            Stop::Cut => {
                                this.phase = Phase::Cut { yielded: false };
                                if !buf.is_empty() {
                                    return frame(buf);
                                }
                            }
                            Stop::Error => this.phase = Phase::Error,
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
                    this.phase = Phase::Done(Outcome::Cut);
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "switchyard-sim: stream cut on purpose (cut_after_tokens)",
                    ))));
                }
                Phase::Error => {
                    this.frames.error(&mut buf);
                    this.phase = Phase::Done(Outcome::Errored);
                    if !buf.is_empty() {
                        return frame(buf);
                    }
                }
                Phase::Finish => {
                    this.frames.finish(&mut buf);
                    this.phase = Phase::Done(Outcome::Completed);
                    if !buf.is_empty() {
                        return frame(buf);
                    }
                }
                Phase::Done(outcome) => {
                    this.end(outcome);
                    return Poll::Ready(None);
                }
            }
        }
    }
}

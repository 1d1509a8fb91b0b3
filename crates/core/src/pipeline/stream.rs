//! The stream relay: upstream SSE in, client SSE out, event by event.
//!
//! - Pass-through (client and deployment both speak OpenAI): an event the
//!   gateway does not change is forwarded as the exact bytes that arrived
//!   (a `Bytes` slice, no re-serialisation).
//! - Translation (any other pair): each upstream event goes through the
//!   deployment format's decoder into canonical events and out through the
//!   client format's encoder at once — nothing is held back but what the
//!   client format can only say at the end (Anthropic's `message_delta`).
//! - Usage: read from whichever chunk carries it; the usage-only chunk is
//!   dropped when the client did not ask for it (we asked upstream on its
//!   behalf). With no usage at the end, tokens are counted and marked
//!   estimated.
//! - Deadlines: first event by `first_token`, then at most `idle` between
//!   events, `total` overall. After the first byte reached the client a
//!   failure is an in-band `data: {"error":…}` event, never a clean end.
//! - Heartbeats: an SSE comment after `heartbeat` of silence.
//! - Cancellation: dropping the relay (the client went away) drops the
//!   upstream response, which closes that connection at once; the account
//!   records status 499 with the usage seen so far.

use super::account::{Account, CLIENT_CLOSED};
use super::translate;
use crate::error::{ErrorKind, GatewayError};
use crate::tokenize;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use switchyard_pii::Restorer;
use switchyard_providers::openai_compat::wire::{carries_usage, chunk_text, ChunkPeek};
use switchyard_providers::sse::{SseEvent, SseFramer};
use switchyard_providers::{ProviderError, ProviderErrorKind};
use switchyard_translate::{StreamDecoder, StreamEncoder, StreamEvent};
use switchyard_types::Usage;
use tokio::time::Instant;

const HEARTBEAT: &[u8] = b": keep-alive\n\n";

/// Most answer text kept for counting tokens when no usage arrives; past
/// it, tokens are estimated from the length (~4 bytes per token).
const MAX_SEEN_TEXT: usize = 1024 * 1024;

pub struct Deadlines {
    pub first_token: Instant,
    pub idle: Duration,
    pub total: Instant,
    pub heartbeat: Duration,
}

/// How upstream events become client events.
pub enum Mode {
    PassThrough {
        client_wants_usage: bool,
    },
    /// Same format, other than OpenAI: events pass through as received;
    /// the decoder only watches for usage, the end and errors.
    Observe {
        decoder: Box<dyn StreamDecoder>,
        events: Vec<StreamEvent>,
    },
    Translate {
        decoder: Box<dyn StreamDecoder>,
        encoder: Box<dyn StreamEncoder>,
        /// Scratch space, reused for every event.
        events: Vec<StreamEvent>,
        /// Originals put back into the text of an answer to a masked
        /// request (same format too: the text is only reachable decoded).
        restore: Option<Restore>,
    },
}

/// Puts masked originals back into a stream's text deltas. A placeholder
/// cut across two deltas (`[EMA` + `IL_1]`) is held back until the next
/// delta of its part decides it, and flushed at the part's end, the
/// finish, the end or an error — whichever comes first.
pub struct Restore {
    restorer: Arc<Restorer>,
    /// Held-back text per part index.
    pending: Vec<(u32, String)>,
}

impl Restore {
    pub fn new(restorer: Arc<Restorer>) -> Self {
        Restore { restorer, pending: Vec::new() }
    }

    fn apply(&mut self, events: &mut Vec<StreamEvent>) {
        let mut out = Vec::with_capacity(events.len() + 1);
        for event in events.drain(..) {
            match event {
                StreamEvent::TextDelta { index, text } => {
                    let held = self.take(Some(index)).map(|(_, t)| t).unwrap_or_default();
                    let mut stream = self.restorer.stream();
                    let ready = stream.push(&(held + &text));
                    let rest = stream.finish();
                    if !rest.is_empty() {
                        self.pending.push((index, rest));
                    }
                    if !ready.is_empty() {
                        out.push(StreamEvent::TextDelta { index, text: ready });
                    }
                }
                StreamEvent::PartEnd { index } => {
                    if let Some((index, text)) = self.take(Some(index)) {
                        out.push(StreamEvent::TextDelta { index, text });
                    }
                    out.push(event);
                }
                StreamEvent::Finish { .. } | StreamEvent::Done | StreamEvent::Error(_) => {
                    while let Some((index, text)) = self.take(None) {
                        out.push(StreamEvent::TextDelta { index, text });
                    }
                    out.push(event);
                }
                other => out.push(other),
            }
        }
        *events = out;
    }

    /// The held-back text of part `index` (any part: `None`).
    fn take(&mut self, index: Option<u32>) -> Option<(u32, String)> {
        let at = self.pending.iter().position(|(i, _)| index.is_none_or(|x| x == *i))?;
        Some(self.pending.swap_remove(at))
    }
}

impl Mode {
    pub fn pass_through(client_wants_usage: bool) -> Self {
        Mode::PassThrough { client_wants_usage }
    }

    pub fn observe(decoder: Box<dyn StreamDecoder>) -> Self {
        Mode::Observe { decoder, events: Vec::new() }
    }

    pub fn translate(decoder: Box<dyn StreamDecoder>, encoder: Box<dyn StreamEncoder>) -> Self {
        Mode::Translate { decoder, encoder, events: Vec::new(), restore: None }
    }

    /// Translating, with masked originals put back into the text.
    pub fn restoring(decoder: Box<dyn StreamDecoder>, encoder: Box<dyn StreamEncoder>, restore: Restore) -> Self {
        Mode::Translate { decoder, encoder, events: Vec::new(), restore: Some(restore) }
    }
}

pub struct Relay {
    upstream: BoxStream<'static, Result<Bytes, ProviderError>>,
    framer: SseFramer,
    queue: VecDeque<SseEvent>,
    deadlines: Deadlines,
    mode: Mode,
    request_body: Bytes,
    /// Set once the first data event arrived.
    first_event_at: Option<Instant>,
    last_event_at: Instant,
    usage: Option<Usage>,
    /// The text of the answer so far (content, reasoning, tool arguments),
    /// so tokens can be counted at the end if no usage arrives. Only the
    /// text: keeping whole events cost ~150 bytes per token held, which is
    /// most of a long stream's memory.
    seen: SeenText,
    done: bool,
    account: Option<Account>,
    /// Set on routes with `stream_rescue`: how to continue elsewhere.
    rescue: Option<Box<super::rescue::Rescue>>,
    /// What the client was sent (kept only with `rescue`).
    delivered: super::rescue::Delivered,
    /// A continuation's events mapped onto the client's stream.
    remap: Option<super::rescue::Remap>,
    /// A continuation's first event is awaited (its `first_token` applies).
    awaiting: bool,
    /// When the current upstream attempt began.
    attempt_started: Instant,
}

impl Relay {
    pub fn new(
        upstream: BoxStream<'static, Result<Bytes, ProviderError>>,
        deadlines: Deadlines,
        mode: Mode,
        request_body: Bytes,
    ) -> Self {
        Relay {
            upstream,
            framer: SseFramer::default(),
            queue: VecDeque::new(),
            deadlines,
            mode,
            request_body,
            first_event_at: None,
            last_event_at: Instant::now(),
            usage: None,
            seen: SeenText::default(),
            done: false,
            account: None,
            rescue: None,
            delivered: super::rescue::Delivered::default(),
            remap: None,
            awaiting: false,
            attempt_started: Instant::now(),
        }
    }

    /// Lets a cut stream continue on another deployment (the mode must
    /// translate: the client's events are re-encoded).
    pub fn rescue_with(&mut self, rescue: super::rescue::Rescue) {
        self.rescue = Some(Box::new(rescue));
    }

    /// Reads until the first data event, before anything is sent to the
    /// client, so a failure here can still fall through to the next
    /// deployment. Also `Ok` when nothing arrived within a heartbeat
    /// interval: the caller commits anyway and the relay keeps the client's
    /// connection alive while it waits (docs/adr/0004).
    pub async fn prime(&mut self) -> Result<(), ProviderError> {
        let slow_at = Instant::now() + self.deadlines.heartbeat;
        let first = loop {
            if let Some(event) = self.queue.iter().find(|e| e.data().is_some()) {
                break event.clone();
            }
            let wait = self.deadlines.first_token.min(self.deadlines.total).min(slow_at);
            match tokio::time::timeout_at(wait, self.upstream.next()).await {
                Ok(Some(Ok(chunk))) => self.push(chunk)?,
                Ok(Some(Err(e))) => return Err(e),
                Ok(None) => {
                    return Err(ProviderError::new(
                        ProviderErrorKind::Protocol,
                        "upstream closed the stream before sending any event",
                    ))
                }
                Err(_) if wait == slow_at && slow_at < self.deadlines.first_token.min(self.deadlines.total) => {
                    return Ok(())
                }
                Err(_) => {
                    return Err(ProviderError::new(
                        ProviderErrorKind::Timeout,
                        "no first token before the first_token deadline",
                    ))
                }
            }
        };
        // An error object as the first event (some servers answer 200 and
        // then report the failure in-band) still counts as a failed attempt.
        if let Some(data) = error_event(&first) {
            let detail = switchyard_providers::error::normalize_error_body(500, &data);
            return Err(ProviderError::new(
                ProviderErrorKind::Server,
                format!("upstream stream error: {}", detail.message),
            ));
        }
        self.first_event_at = Some(Instant::now());
        Ok(())
    }

    /// The data of the first queued event that has any.
    fn first_data(&self) -> Option<Bytes> {
        self.queue.iter().find_map(SseEvent::data)
    }

    pub fn attach(&mut self, account: Account) {
        self.account = Some(account);
    }

    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes, Infallible>> {
        futures_util::stream::unfold(self, |mut relay| async move {
            let frame = relay.next_frame().await?;
            Some((Ok(frame), relay))
        })
        .boxed()
    }

    fn push(&mut self, chunk: Bytes) -> Result<(), ProviderError> {
        let mut events = Vec::new();
        let result = self.framer.push(chunk, &mut events);
        self.queue.extend(events);
        result.map_err(|_| ProviderError::new(ProviderErrorKind::Protocol, "upstream sent an oversized stream event"))
    }

    fn mark_first_event(&mut self) {
        if self.first_event_at.is_none() && self.first_data().is_some() {
            self.first_event_at = Some(Instant::now());
        }
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            if let Some(frame) = self.drain_queue() {
                return Some(frame);
            }
            if self.done {
                return None;
            }
            let now = Instant::now();
            let event_deadline = match self.first_event_at {
                None => self.deadlines.first_token,
                Some(_) if self.awaiting => self.deadlines.first_token,
                Some(_) => self.last_event_at + self.deadlines.idle,
            };
            let hard = event_deadline.min(self.deadlines.total);
            let wait = hard.min(now + self.deadlines.heartbeat);
            match tokio::time::timeout_at(wait, self.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    self.last_event_at = Instant::now();
                    if let Err(e) = self.push(chunk) {
                        return Some(self.fail(ErrorKind::UpstreamFailed, &e.message));
                    }
                    self.awaiting = self.awaiting && self.first_data().is_none();
                    self.mark_first_event();
                }
                Ok(Some(Err(e))) => {
                    let why = format!("upstream stream broke: {}", e.message);
                    if Box::pin(self.rescue(&why)).await {
                        continue;
                    }
                    return Some(self.fail(ErrorKind::UpstreamFailed, &why));
                }
                Ok(None) => {
                    // Formats without an end sentinel (Gemini) end here.
                    let last = self.end_of_upstream();
                    if self.done {
                        return last;
                    }
                    if Box::pin(self.rescue("upstream closed the stream before it finished")).await {
                        match last {
                            Some(frame) => return Some(frame),
                            None => continue,
                        }
                    }
                    return Some(self.fail(ErrorKind::UpstreamFailed, "upstream closed the stream before it finished"));
                }
                Err(_) if wait < hard => return Some(Bytes::from_static(HEARTBEAT)),
                Err(_) => {
                    let what = if self.first_event_at.is_none() || self.awaiting {
                        "no first token before the first_token deadline"
                    } else if hard == self.deadlines.total {
                        "the stream exceeded its total deadline"
                    } else {
                        "upstream went silent for longer than the idle deadline"
                    };
                    if hard != self.deadlines.total && Box::pin(self.rescue(what)).await {
                        continue;
                    }
                    return Some(self.fail(ErrorKind::UpstreamTimeout, what));
                }
            }
        }
    }

    /// Everything already received, as one frame: events that arrived
    /// together leave together (one write instead of one per event; no
    /// waiting is added). A single event is passed on without a copy.
    fn drain_queue(&mut self) -> Option<Bytes> {
        let mut first: Option<Bytes> = None;
        let mut joined: Option<bytes::BytesMut> = None;
        while let Some(event) = self.queue.pop_front() {
            if let Some(frame) = self.process(event) {
                match (&mut first, &mut joined) {
                    (None, _) => first = Some(frame),
                    (Some(f), None) => {
                        let mut buf = bytes::BytesMut::with_capacity(f.len() + frame.len() * (self.queue.len() + 1));
                        buf.extend_from_slice(f);
                        buf.extend_from_slice(&frame);
                        joined = Some(buf);
                    }
                    (Some(_), Some(buf)) => buf.extend_from_slice(&frame),
                }
            }
            if self.done {
                break;
            }
        }
        match joined {
            Some(buf) => Some(buf.freeze()),
            None => first,
        }
    }

    /// What to send for one upstream event, if anything.
    fn process(&mut self, event: SseEvent) -> Option<Bytes> {
        let data = event.data()?; // comments: our own heartbeats replace them
        match &mut self.mode {
            Mode::PassThrough { client_wants_usage } => {
                let client_wants_usage = *client_wants_usage;
                self.pass_through(event, data, client_wants_usage)
            }
            Mode::Observe { decoder, events } | Mode::Translate { decoder, events, .. } => {
                events.clear();
                if let Err(e) = decoder.decode(event.name(), &data, events) {
                    return Some(self.fail(ErrorKind::UpstreamFailed, &format!("unreadable upstream event: {e}")));
                }
                if let (Some(remap), Mode::Translate { events, .. }) = (&mut self.remap, &mut self.mode) {
                    remap.apply(events);
                }
                if let Mode::Translate { restore: Some(restore), events, .. } = &mut self.mode {
                    restore.apply(events);
                }
                let translated = self.encode_events();
                match self.mode {
                    Mode::Observe { .. } => Some(event.raw),
                    _ => translated,
                }
            }
        }
    }

    fn pass_through(&mut self, event: SseEvent, data: Bytes, client_wants_usage: bool) -> Option<Bytes> {
        if &data[..] == b"[DONE]" {
            self.finish(200, None);
            return Some(event.raw);
        }
        if data.starts_with(b"{\"error\"") {
            // The upstream failed mid-stream and said so: forward its
            // words, and end the stream as failed.
            self.finish(200, Some(ErrorKind::UpstreamFailed.as_str()));
            return Some(event.raw);
        }
        if carries_usage(&data) {
            if let Ok(peek) = serde_json::from_slice::<ChunkPeek>(&data) {
                let usage_only = peek.is_usage_only();
                self.usage = peek.usage.map(|u| {
                    Usage::reported(u.prompt_tokens.unwrap_or(0), u.completion_tokens.unwrap_or(0))
                        .with_cache(u.cached_tokens(), 0)
                });
                if usage_only && !client_wants_usage {
                    return None;
                }
            }
        } else if self.usage.is_none() {
            self.seen.push_chunk(&data);
        }
        Some(event.raw)
    }

    /// Encodes the canonical events the decoder just produced into client
    /// bytes, noting usage, the end and in-band errors on the way.
    fn encode_events(&mut self) -> Option<Bytes> {
        let (mut encoder, events) = match &mut self.mode {
            Mode::Translate { encoder, events, .. } => (Some(encoder), events),
            Mode::Observe { events, .. } => (None, events),
            Mode::PassThrough { .. } => return None,
        };
        let mut out = Vec::new();
        let mut end: Option<Option<&'static str>> = None;
        if self.rescue.is_some() {
            for event in events.iter() {
                self.delivered.see(event);
            }
        }
        for event in events.iter() {
            match event {
                StreamEvent::Usage(u) => self.usage = Some(translate::reported(u)),
                StreamEvent::TextDelta { text, .. }
                | StreamEvent::ThinkingDelta { text, .. }
                | StreamEvent::ToolCallDelta { arguments: text, .. } => self.seen.push(text),
                StreamEvent::Done => end = Some(None),
                StreamEvent::Error(e) => {
                    tracing::warn!(error_kind = %e.kind, "upstream failed mid-stream: {}", e.message);
                    if let Some(encoder) = encoder.as_mut() {
                        encoder.error(&e.kind, &e.message, &mut out);
                    }
                    end = Some(Some(ErrorKind::UpstreamFailed.as_str()));
                    break;
                }
                _ => {}
            }
            if let Some(encoder) = encoder.as_mut() {
                encoder.encode(event, &mut out);
            }
        }
        if let Some(error_kind) = end {
            self.finish(200, error_kind);
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    /// The upstream body ended: a translated stream whose format has no
    /// end sentinel may still end cleanly here.
    fn end_of_upstream(&mut self) -> Option<Bytes> {
        let (Mode::Translate { decoder, events, .. } | Mode::Observe { decoder, events }) = &mut self.mode else {
            return None;
        };
        events.clear();
        decoder.end(events);
        if !events.iter().any(|e| matches!(e, StreamEvent::Done | StreamEvent::Error(_))) {
            return None;
        }
        if let (Some(remap), Mode::Translate { events, .. }) = (&mut self.remap, &mut self.mode) {
            remap.apply(events);
        }
        if let Mode::Translate { restore: Some(restore), events, .. } = &mut self.mode {
            restore.apply(events);
        }
        self.encode_events()
    }

    /// Continues a broken stream on the next deployment that answers
    /// (`true`), or says why not (`false`: the caller sends the error).
    /// Callers box it: every open stream holds `next_frame`'s future, which
    /// would otherwise have room for this one's (~2 KB per stream).
    async fn rescue(&mut self, why: &str) -> bool {
        let Some(mut rescue) = self.rescue.take() else { return false };
        let rescued = self.continue_on(&mut rescue, why).await;
        self.rescue = Some(rescue);
        rescued
    }

    async fn continue_on(&mut self, rescue: &mut super::rescue::Rescue, why: &str) -> bool {
        let broken = rescue.current.name.clone();
        rescue.current.live.health.finish(&rescue.resilience, true, std::time::Instant::now());
        if !self.delivered.rescuable() || !matches!(self.mode, Mode::Translate { .. }) {
            if let Some(a) = &self.account {
                a.metrics().stream_rescues.inc(&[&broken, "impossible"]);
            }
            return false;
        }
        while !rescue.fallbacks.is_empty() {
            let next = rescue.fallbacks.remove(0);
            let now = Instant::now();
            if now >= rescue.deadline || next.live.health.check(&rescue.resilience, now.into_std()).is_err() {
                continue;
            }
            let anthropic = next.format == switchyard_translate::Format::Anthropic;
            let request = super::rescue::continuation(&rescue.request, &self.delivered.text, anthropic);
            let canonical = translate::Canonical::Chat(request);
            let op = switchyard_providers::Operation::Chat;
            let Ok(request) = translate::upstream_request(op, &rescue.request_id, &next, &canonical, true) else {
                continue;
            };
            let t = next.timeouts;
            let total = (now + t.total.get()).min(rescue.deadline);
            let first = (now + t.first_token.get()).min(total);
            let sent = tokio::time::timeout_at(first, next.provider.send(request)).await;
            let upstream = match sent {
                Ok(Ok(switchyard_providers::UpstreamResponse {
                    body: switchyard_providers::UpstreamBody::Stream(s),
                    ..
                })) => s,
                _ => {
                    next.live.health.finish(&rescue.resilience, true, std::time::Instant::now());
                    continue;
                }
            };
            tracing::warn!(from = %broken, to = %next.name, why, delivered_bytes = self.delivered.text.len(), "stream cut: continued on the next deployment");
            // The cut attempt is billed for what it produced; the
            // continuation is a new attempt.
            let usage = self.usage();
            if let Some(account) = self.account.as_mut() {
                account.attempt_cut(&usage, self.attempt_started.elapsed());
                account.metrics().stream_rescues.inc(&[&broken, "ok"]);
                account.record.attempts += 1;
                account.record.deployment = Some(next.name.clone());
                account.record.model = Some(next.model.to_string());
                account.priced = Some(next.clone());
                account.busy = Some(next.live.busy());
            }
            if let Mode::Translate { decoder, .. } = &mut self.mode {
                *decoder = translate::decoder(next.format, &rescue.request_id);
            }
            let trimmed = self.delivered.text.trim_end().len();
            let pad = if anthropic { self.delivered.text[trimmed..].to_string() } else { String::new() };
            self.remap = Some(super::rescue::Remap::new(&self.delivered, pad));
            self.upstream = upstream;
            self.framer = SseFramer::default();
            self.queue.clear();
            self.usage = None;
            self.seen = SeenText::default();
            self.deadlines.first_token = first;
            self.deadlines.total = total;
            self.awaiting = true;
            self.attempt_started = now;
            rescue.current = next;
            return true;
        }
        if let Some(a) = &self.account {
            a.metrics().stream_rescues.inc(&[&broken, "failed"]);
        }
        false
    }

    /// An in-band error event in the client's format; ends the stream.
    fn fail(&mut self, kind: ErrorKind, message: &str) -> Bytes {
        tracing::warn!(error_kind = kind.as_str(), "stream failed after commit: {message}");
        self.finish(200, Some(kind.as_str()));
        let e = GatewayError::new(kind, message);
        let mut frame = Vec::new();
        match &mut self.mode {
            Mode::Translate { encoder, .. } => encoder.error(e.wire_type(), message, &mut frame),
            Mode::Observe { .. } => {
                // Same format, not OpenAI: Anthropic's error event.
                let mut encoder = switchyard_translate::anthropic::Encoder::new("");
                encoder.error(e.wire_type(), message, &mut frame);
            }
            Mode::PassThrough { .. } => {
                frame.extend_from_slice(b"data: ");
                frame.extend_from_slice(&e.openai_body());
                frame.extend_from_slice(b"\n\n");
            }
        }
        Bytes::from(frame)
    }

    fn usage(&self) -> Usage {
        self.usage.unwrap_or_else(|| {
            Usage::estimated(tokenize::count_request(&self.request_body), self.seen.estimate_tokens())
        })
    }

    fn finish(&mut self, status: u16, error_kind: Option<&str>) {
        self.done = true;
        if let Some(account) = self.account.take() {
            let ttft = self.first_event_at.map(|t| t.into_std().saturating_duration_since(account.received()));
            account.finish(status, error_kind, self.usage(), ttft);
        }
    }
}

/// The data of an event that reports an upstream failure, in any format:
/// OpenAI-style `{"error":…}`, Anthropic's `event: error`.
fn error_event(event: &SseEvent) -> Option<Bytes> {
    let data = event.data()?;
    let is_error =
        data.starts_with(b"{\"error\"") || data.starts_with(b"{\"type\":\"error\"") || event.name() == Some("error");
    is_error.then_some(data)
}

impl Drop for Relay {
    fn drop(&mut self) {
        if self.account.is_some() {
            self.finish(CLIENT_CLOSED, Some("client_disconnected"));
        }
    }
}

/// The answer's text as it streams by, kept up to [`MAX_SEEN_TEXT`] and
/// measured beyond, for estimating completion tokens.
#[derive(Default)]
struct SeenText {
    text: String,
    beyond: usize,
}

impl SeenText {
    fn push(&mut self, text: &str) {
        if self.text.len() + text.len() <= MAX_SEEN_TEXT {
            self.text.push_str(text);
        } else {
            self.beyond += text.len();
        }
    }

    /// An OpenAI-style chunk's text, found without parsing it.
    fn push_chunk(&mut self, data: &[u8]) {
        if self.text.len() < MAX_SEEN_TEXT {
            chunk_text(data, &mut self.text);
        } else {
            let mut text = String::new();
            chunk_text(data, &mut text);
            self.beyond += text.len();
        }
    }

    fn estimate_tokens(&self) -> u64 {
        tokenize::count(&self.text) + (self.beyond as u64).div_ceil(4)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(index: u32, t: &str) -> StreamEvent {
        StreamEvent::TextDelta { index, text: t.into() }
    }

    #[test]
    fn restore_puts_originals_back_across_deltas() {
        let mut masker = switchyard_pii::Masker::new();
        let masked = masker.mask("write to bob@example.com").unwrap();
        assert_eq!(masked, "write to [EMAIL_1]");
        let mut restore = Restore::new(Arc::new(masker.into_restorer()));
        // A placeholder cut over three deltas, then one cut at the end.
        let mut out = String::new();
        for chunk in ["Sent to [EM", "AIL", "_1] ok [EMAIL_"] {
            let mut events = vec![text(0, chunk)];
            restore.apply(&mut events);
            for e in &events {
                if let StreamEvent::TextDelta { text, .. } = e {
                    out.push_str(text);
                }
            }
        }
        assert_eq!(out, "Sent to bob@example.com ok ");
        // The part's end flushes what was held back (an unfinished
        // placeholder is just text), before the end event itself.
        let mut events = vec![StreamEvent::PartEnd { index: 0 }, StreamEvent::Done];
        restore.apply(&mut events);
        assert_eq!(events, [text(0, "[EMAIL_"), StreamEvent::PartEnd { index: 0 }, StreamEvent::Done]);
        // Held back on two parts: `Done` flushes both.
        let mut events = vec![text(0, "a [E"), text(1, "b [EMAIL_1"), StreamEvent::Done];
        restore.apply(&mut events);
        assert_eq!(events.len(), 5, "{events:?}");
        assert_eq!(events[..2], [text(0, "a "), text(1, "b ")]);
        assert_eq!(events[4], StreamEvent::Done);
    }
}

//! Server-Sent Events framing, written once for every provider.
//!
//! [`SseFramer`] turns arbitrary body chunks into whole events without
//! copying when an event sits inside one chunk (the common case): it hands
//! out `Bytes` slices of the chunk. Events split across chunks are
//! assembled in a buffer. Both `\n\n` and `\r\n\r\n` separators are
//! accepted (Gemini uses the latter).

use bytes::{Bytes, BytesMut};

/// One event as received: `raw` is the exact bytes including the trailing
/// blank line, so an unchanged event can be forwarded as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub raw: Bytes,
}

impl SseEvent {
    /// The `data:` payload (lines joined with `\n`), or `None` for events
    /// without data (comments such as `: keep-alive`).
    pub fn data(&self) -> Option<Bytes> {
        let raw: &[u8] = &self.raw;
        // Common case, checked first: one `data:` line at the start and no
        // other `data:` line after it.
        if let Some(rest) = raw.strip_prefix(b"data:") {
            let end = memchr::memchr2(b'\n', b'\r', rest).unwrap_or(rest.len());
            if memchr::memmem::find(&rest[end..], b"data:").is_none() {
                let skip = if rest.first() == Some(&b' ') { 1 } else { 0 };
                let start = 5 + skip;
                return Some(self.raw.slice(start..5 + end.max(skip)));
            }
        }
        let mut lines = lines(raw).filter_map(|line| {
            let rest = line.strip_prefix(b"data:")?;
            Some(rest.strip_prefix(b" ").unwrap_or(rest))
        });
        let first = lines.next()?;
        match lines.next() {
            None => {
                // Zero-copy: slice of the raw event.
                let start = first.as_ptr() as usize - self.raw.as_ptr() as usize;
                Some(self.raw.slice(start..start + first.len()))
            }
            Some(second) => {
                let mut joined = BytesMut::from(first);
                joined.extend_from_slice(b"\n");
                joined.extend_from_slice(second);
                for l in lines {
                    joined.extend_from_slice(b"\n");
                    joined.extend_from_slice(l);
                }
                Some(joined.freeze())
            }
        }
    }

    /// The `event:` name, if any (Anthropic uses it; OpenAI does not).
    pub fn name(&self) -> Option<&str> {
        lines(&self.raw).find_map(|line| {
            let rest = line.strip_prefix(b"event:")?;
            std::str::from_utf8(rest.strip_prefix(b" ").unwrap_or(rest)).ok()
        })
    }
}

/// The lines of an event: ended by CRLF, LF or CR, as the SSE spec says.
/// (A CRLF also yields an empty line between CR and LF; empty lines carry
/// no field, so readers skip them like any other non-matching line.)
fn lines(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    raw.split(|b| *b == b'\n' || *b == b'\r')
}

/// Incremental framer. Bounded: an event larger than `max_event` bytes is
/// an error rather than an ever-growing buffer.
pub struct SseFramer {
    buf: BytesMut,
    max_event: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub struct EventTooLarge;

impl Default for SseFramer {
    fn default() -> Self {
        SseFramer::new(16 * 1024 * 1024)
    }
}

impl SseFramer {
    pub fn new(max_event: usize) -> Self {
        SseFramer { buf: BytesMut::new(), max_event }
    }

    /// Feeds one chunk; complete events are pushed to `out`.
    pub fn push(&mut self, chunk: Bytes, out: &mut Vec<SseEvent>) -> Result<(), EventTooLarge> {
        let mut chunk = chunk;
        if !self.buf.is_empty() {
            // Finish the pending event first. Look for a separator that
            // straddles the boundary by searching from a little before it.
            let old = self.buf.len();
            self.buf.extend_from_slice(&chunk);
            let from = old.saturating_sub(3);
            match find_separator(&self.buf[from..]) {
                Some((pos, len)) => {
                    let end = from + pos + len;
                    let event = self.buf.split_to(end).freeze();
                    out.push(SseEvent { raw: event });
                    // What is left in buf came from `chunk`: continue on it
                    // zero-copy.
                    let consumed_from_chunk = end - old;
                    chunk = chunk.slice(consumed_from_chunk.min(chunk.len())..);
                    self.buf.clear();
                }
                None => return self.check_size(),
            }
        }
        let mut start = 0;
        while let Some((pos, len)) = find_separator(&chunk[start..]) {
            let end = start + pos + len;
            out.push(SseEvent { raw: chunk.slice(start..end) });
            start = end;
        }
        if start < chunk.len() {
            self.buf.extend_from_slice(&chunk[start..]);
        }
        self.check_size()
    }

    fn check_size(&self) -> Result<(), EventTooLarge> {
        if self.buf.len() > self.max_event {
            Err(EventTooLarge)
        } else {
            Ok(())
        }
    }

    /// Bytes of an unfinished event (non-empty at end of stream means the
    /// stream was cut mid-event).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// Position and length of the first event separator: a line end (CRLF,
/// LF or CR) followed by an empty line, so `\n\n`, `\r\n\r\n`, `\r\r` and
/// mixed forms such as `\n\r\n`. A CR at the very end of `b` may be the
/// first half of a CRLF: the search waits for the next byte. Jumps from
/// line end to line end with memchr.
fn find_separator(b: &[u8]) -> Option<(usize, usize)> {
    // The length of the line end starting at `i`, if one does; `None` when
    // `b` ends in the middle of deciding.
    let line_end = |i: usize| -> Option<Option<usize>> {
        match (b.get(i), b.get(i + 1)) {
            (Some(b'\n'), _) => Some(Some(1)),
            (Some(b'\r'), Some(b'\n')) => Some(Some(2)),
            (Some(b'\r'), Some(_)) => Some(Some(1)),
            (Some(b'\r'), None) => None,
            _ => Some(None),
        }
    };
    let mut from = 0;
    while let Some(off) = memchr::memchr2(b'\n', b'\r', &b[from..]) {
        let i = from + off;
        let first = line_end(i)??;
        match line_end(i + first)? {
            Some(second) => return Some((i, first + second)),
            None => from = i + first,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_fixtures::fixture;

    fn frame_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut f = SseFramer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.push(Bytes::copy_from_slice(c), &mut out).unwrap();
        }
        out
    }

    #[test]
    fn splits_events_in_one_chunk() {
        let events = frame_all(&[b"data: a\n\ndata: b\n\n"]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].raw, Bytes::from_static(b"data: a\n\n"));
        assert_eq!(events[1].data().unwrap(), Bytes::from_static(b"b"));
    }

    #[test]
    fn any_split_point_gives_the_same_events() {
        for name in [
            "openai/chat_stream_text_include_usage.sse",
            "openai/chat_stream_parallel_tool_calls.sse",
            "openai_compatible/deepseek_chat_stream_reasoning.sse",
            "gemini/stream_generate_content_text.sse",
            "anthropic/messages_stream_text.sse",
        ] {
            let body = fixture(name);
            let whole = frame_all(&[&body]);
            assert!(!whole.is_empty(), "{name}");
            for cut in 1..body.len() {
                let parts = frame_all(&[&body[..cut], &body[cut..]]);
                assert_eq!(parts, whole, "{name} cut at {cut}");
            }
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(frame_all(&bytes), whole, "{name} byte by byte");
        }
    }

    #[test]
    fn crlf_and_comments_and_names() {
        let events = frame_all(&[b": keep-alive\r\n\r\nevent: ping\r\ndata: {\"x\":1}\r\n\r\n"]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data(), None);
        assert_eq!(events[1].name(), Some("ping"));
        assert_eq!(events[1].data().unwrap(), Bytes::from_static(b"{\"x\":1}"));
    }

    #[test]
    fn multi_line_data_is_joined() {
        let events = frame_all(&[b"data: a\ndata:b\n\n"]);
        assert_eq!(events[0].data().unwrap(), Bytes::from_static(b"a\nb"));
    }

    /// The line-by-line reading of the SSE spec (lines end with CRLF, LF
    /// or CR), written independently of `lines`, to check `data()`.
    fn reference_data(raw: &[u8]) -> Option<Vec<u8>> {
        let mut lines: Vec<&[u8]> = Vec::new();
        let (mut start, mut i) = (0, 0);
        while i < raw.len() {
            match raw[i] {
                b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                    lines.push(&raw[start..i]);
                    i += 2;
                    start = i;
                }
                b'\r' | b'\n' => {
                    lines.push(&raw[start..i]);
                    i += 1;
                    start = i;
                }
                _ => i += 1,
            }
        }
        lines.push(&raw[start..]);
        let data: Vec<&[u8]> = lines
            .into_iter()
            .filter_map(|l| l.strip_prefix(b"data:"))
            .map(|l| l.strip_prefix(b" ").unwrap_or(l))
            .collect();
        (!data.is_empty()).then(|| data.join(&b'\n'))
    }

    #[test]
    fn data_fast_path_matches_the_spec_reading() {
        let mut cases: Vec<Vec<u8>> = vec![
            b"data:\n\n".to_vec(),
            b"data: \n\n".to_vec(),
            b"data:x\r\n\r\n".to_vec(),
            b"data: a\r\ndata: b\r\n\r\n".to_vec(),
            b"data: a\nid: 1\n\n".to_vec(),
            b"data: a\nid: 1\ndata: b\n\n".to_vec(),
            b"data: a\n: note\ndata: b\n\n".to_vec(),
            b"data: a\rdata: b\r\r".to_vec(),
            b"event: e\rdata: b\r\r".to_vec(),
            b"event: e\ndata: a\n\n".to_vec(),
            b": comment\n\n".to_vec(),
        ];
        for name in [
            "openai/chat_stream_parallel_tool_calls.sse",
            "anthropic/messages_stream_tool_use.sse",
            "gemini/stream_generate_content_function_call.sse",
            "openai_compatible/deepseek_chat_stream_reasoning.sse",
        ] {
            let mut f = SseFramer::default();
            let mut out = Vec::new();
            f.push(Bytes::from(fixture(name)), &mut out).unwrap();
            cases.extend(out.into_iter().map(|e| e.raw.to_vec()));
        }
        for raw in cases {
            let e = SseEvent { raw: Bytes::from(raw.clone()) };
            assert_eq!(e.data().map(|b| b.to_vec()), reference_data(&raw), "{}", String::from_utf8_lossy(&raw));
        }
    }

    /// xorshift64: a seeded generator for the randomised check below (this
    /// crate has no proptest; a fixed seed keeps CI deterministic).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Events and pending bytes after pushing `chunks` (no size limit hit).
    fn frame_with_pending(chunks: &[&[u8]]) -> (Vec<SseEvent>, usize) {
        let mut f = SseFramer::new(usize::MAX);
        let mut out = Vec::new();
        for c in chunks {
            f.push(Bytes::copy_from_slice(c), &mut out).unwrap();
        }
        (out, f.pending())
    }

    /// Property over random bodies built from SSE-significant pieces (every
    /// separator and line ending, comments, names, invalid UTF-8) cut into
    /// random chunks: framing never panics, does not depend on the cuts,
    /// loses no byte (events then pending bytes are the body), and `data()`
    /// / `name()` never panic and `data()` agrees with the line-by-line
    /// reading. A stand-in for `fuzz/fuzz_targets/sse_framer.rs` on every
    /// CI run.
    #[test]
    fn random_bodies_frame_the_same_whatever_the_cuts() {
        const PIECES: &[&[u8]] = &[
            b"data:",
            b"data: ",
            b"event: ",
            b"event:",
            b": keep-alive",
            b"id: 7",
            b"retry: 1",
            b"\n",
            b"\r",
            b"\r\n",
            b"\n\n",
            b"\r\n\r\n",
            b"\r\r",
            b"x",
            b"{\"a\":[1,2]}",
            b" ",
            b"[DONE]",
            b"\xff\xfe",
            "\u{e9}\u{1f600}".as_bytes(),
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for case in 0..3000 {
            let mut body = Vec::new();
            for _ in 0..rng.below(32) {
                if rng.below(10) == 0 {
                    body.push(rng.next() as u8);
                } else {
                    body.extend_from_slice(PIECES[rng.below(PIECES.len())]);
                }
            }
            let (whole, whole_pending) = frame_with_pending(&[&body]);

            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut rest = &body[..];
            let byte_by_byte = rng.below(4) == 0;
            while !rest.is_empty() {
                let n = if byte_by_byte { 1 } else { 1 + rng.below(rest.len().min(12)) };
                let (chunk, tail) = rest.split_at(n);
                chunks.push(chunk);
                rest = tail;
            }
            let (split, split_pending) = frame_with_pending(&chunks);
            let shown = String::from_utf8_lossy(&body);
            assert_eq!(split, whole, "case {case}: {shown:?} cut as {chunks:?}");
            assert_eq!(split_pending, whole_pending, "case {case}: {shown:?}");

            let framed: Vec<u8> = whole.iter().flat_map(|e| e.raw.iter().copied()).collect();
            assert_eq!(framed.len() + whole_pending, body.len(), "case {case}: {shown:?}");
            assert_eq!(framed, body[..framed.len()], "case {case}: {shown:?}");

            for e in &whole {
                let _ = e.name();
                let raw = String::from_utf8_lossy(&e.raw);
                assert_eq!(e.data().map(|b| b.to_vec()), reference_data(&e.raw), "case {case}: event {raw:?}");
            }
        }
    }

    #[test]
    fn oversized_event_is_refused() {
        let mut f = SseFramer::new(8);
        let mut out = Vec::new();
        assert_eq!(f.push(Bytes::from_static(b"data: 0123456789"), &mut out), Err(EventTooLarge));
    }

    #[test]
    fn pending_reports_cut_events() {
        let mut f = SseFramer::default();
        let mut out = Vec::new();
        f.push(Bytes::from_static(b"data: a\n\ndata: b"), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(f.pending(), 7);
    }
}

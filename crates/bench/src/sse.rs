//! A minimal server-sent-events scanner: counts `data:` chunks and spots the
//! first one carrying content, across arbitrary frame boundaries.
//!
//! It is deliberately not a parser: per frame it looks for newlines and, until
//! the first content has been seen, for a non-empty `"content"` string. Only a
//! line split across frames is copied (into a buffer reused between requests).

/// Scanner state for one response; [`SseScanner::reset`] before reuse.
#[derive(Debug, Default)]
pub(crate) struct SseScanner {
    /// The unfinished tail of the previous frame.
    partial: Vec<u8>,
    /// `data:` lines seen, other than `[DONE]`.
    pub chunks: u64,
    /// Whether a `data:` line with non-empty content has been seen.
    pub content_seen: bool,
}

impl SseScanner {
    pub(crate) fn reset(&mut self) {
        self.partial.clear();
        self.chunks = 0;
        self.content_seen = false;
    }

    /// Scans one body frame; returns true when this frame held the first
    /// content of the stream (the moment to take the TTFT sample).
    pub(crate) fn feed(&mut self, mut frame: &[u8]) -> bool {
        let before = self.content_seen;
        while let Some(nl) = find_byte(frame, b'\n') {
            let (line, rest) = frame.split_at(nl);
            frame = &rest[1..];
            if self.partial.is_empty() {
                self.line(line);
            } else {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(line);
                self.line(&joined);
                joined.clear();
                self.partial = joined;
            }
        }
        self.partial.extend_from_slice(frame);
        !before && self.content_seen
    }

    /// Handles a final line that had no trailing newline.
    pub(crate) fn finish(&mut self) -> bool {
        let before = self.content_seen;
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
        !before && self.content_seen
    }

    fn line(&mut self, line: &[u8]) {
        let Some(payload) = line.strip_prefix(b"data:") else {
            return;
        };
        let payload = payload.trim_ascii();
        if payload == b"[DONE]" {
            return;
        }
        self.chunks += 1;
        if !self.content_seen && has_content(payload) {
            self.content_seen = true;
        }
    }
}

/// Whether the JSON text holds `"content"` whose value is a non-empty string
/// (OpenAI streams open with a role-only or `"content":""` chunk).
fn has_content(json: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\"";
    let mut rest = json;
    while let Some(at) = find(rest, KEY) {
        rest = &rest[at + KEY.len()..];
        let value = rest.trim_ascii_start();
        let Some(value) = value.strip_prefix(b":") else {
            continue;
        };
        if let Some(string) = value.trim_ascii_start().strip_prefix(b"\"") {
            if string.first().is_some_and(|&b| b != b'"') {
                return true;
            }
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let mut from = 0;
    while let Some(at) = find_byte(&haystack[from..], first) {
        if haystack[from + at..].starts_with(needle) {
            return Some(from + at);
        }
        from += at + 1;
    }
    None
}

/// Position of the first `needle` byte, eight bytes at a time: the scan runs
/// over every byte of every stream, and a byte-wise `position` was the load
/// generator's top cost in profiles.
fn find_byte(haystack: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = ONES * u64::from(needle);
    let mut words = haystack.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        // Bytes equal to `needle` become zero; the classic has-zero-byte test
        // flags them (the lowest flag is always exact).
        let x = u64::from_le_bytes(bytes) ^ pattern;
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(offset + (zeros.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    let tail = words.remainder();
    tail.iter().position(|&b| b == needle).map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\": \"lo\"}}]}\n\n",
        ": keep-alive comment\n\n",
        "data: {\"choices\":[],\"usage\":{\"completion_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn whole_stream_in_one_frame() {
        let mut s = SseScanner::default();
        assert!(s.feed(STREAM.as_bytes()));
        assert!(!s.finish());
        assert_eq!(s.chunks, 4);
    }

    #[test]
    fn every_split_point_gives_the_same_answer() {
        let bytes = STREAM.as_bytes();
        let first_content = STREAM.find("Hel").unwrap_or(0);
        let mut s = SseScanner::default();
        for split in 0..=bytes.len() {
            s.reset();
            let first = s.feed(&bytes[..split]);
            let second = s.feed(&bytes[split..]);
            assert!(!s.finish());
            assert_eq!(s.chunks, 4, "split at {split}");
            // Content is detected in the frame that completes its line.
            let line_end = first_content + STREAM[first_content..].find('\n').unwrap_or(0);
            assert_eq!(first, split > line_end, "split at {split}");
            assert_eq!(second, split <= line_end, "split at {split}");
        }
    }

    #[test]
    fn byte_by_byte_and_crlf() {
        let crlf = STREAM.replace('\n', "\r\n");
        let mut s = SseScanner::default();
        let hits = crlf.as_bytes().chunks(1).filter(|b| s.feed(b)).count();
        assert_eq!(hits, 1);
        assert_eq!(s.chunks, 4);
    }

    #[test]
    fn last_line_without_newline() {
        let mut s = SseScanner::default();
        assert!(!s.feed(b"data: {\"content\":\"x\"}"));
        assert!(s.finish());
        assert_eq!(s.chunks, 1);
    }

    #[test]
    fn find_byte_matches_position() {
        let hay: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
        for len in [0, 1, 7, 8, 9, 15, 16, 17, 100, 512] {
            let hay = &hay[..len];
            for needle in [0u8, 1, 7, 8, 9, 10, 0x80, 0x81, 255] {
                assert_eq!(find_byte(hay, needle), hay.iter().position(|&b| b == needle), "len {len} needle {needle}");
            }
        }
        // Bytes just above the needle next to it must not confuse the test.
        let tricky = [b'\n' + 1, b'\n' + 1, 0x8a, b'\n', b'a', b'\n', 0, 0, 0];
        assert_eq!(find_byte(&tricky, b'\n'), Some(3));
        assert_eq!(find(b"xx\"contenX\"content\"", b"\"content\""), Some(10));
        assert_eq!(find(b"", b"\"content\""), None);
    }

    #[test]
    fn content_detection() {
        assert!(has_content(br#"{"delta":{"content":"a"}}"#));
        assert!(has_content(br#"{"delta":{"content" : "a"}}"#));
        assert!(!has_content(br#"{"delta":{"content":""}}"#));
        assert!(!has_content(br#"{"delta":{"content":null}}"#));
        assert!(!has_content(br#"{"delta":{"role":"assistant"}}"#));
        assert!(has_content(br#"{"x":{"content":""},"delta":{"content":"b"}}"#));
    }
}

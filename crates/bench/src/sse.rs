//! A minimal server-sent-events scanner for OpenAI and Anthropic streams:
//! counts `data:` chunks and content events, spots the end marker, an in-band
//! error and the reported output tokens, across arbitrary frame boundaries.
//!
//! It is deliberately not a JSON parser: per line it looks for a few keys.
//! Only a line split across frames is copied (into a buffer reused between
//! requests).
//!
//! | API       | content event                      | end              | error                  | output tokens |
//! | --------- | ---------------------------------- | ---------------- | ---------------------- | ------------- |
//! | OpenAI    | `data:` with a non-empty `content` | `data: [DONE]`   | `data: {"error":…}`    | last `completion_tokens` of a chunk without content |
//! | Anthropic | `event: content_block_delta`       | `event: message_stop` | `event: error`    | `usage.output_tokens` of `message_delta` |

use crate::api::Api;

/// The Anthropic event the next `data:` line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    ContentBlockDelta,
    MessageDelta,
    MessageStop,
    Error,
    Other,
}

impl Event {
    fn parse(name: &[u8]) -> Self {
        match name {
            b"content_block_delta" => Self::ContentBlockDelta,
            b"message_delta" => Self::MessageDelta,
            b"message_stop" => Self::MessageStop,
            b"error" => Self::Error,
            _ => Self::Other,
        }
    }
}

/// Scanner state for one response; [`SseScanner::reset`] before reuse.
#[derive(Debug)]
pub(crate) struct SseScanner {
    api: Api,
    /// The unfinished tail of the previous frame.
    partial: Vec<u8>,
    /// Anthropic: the `event:` of the current event (reset by a blank line).
    event: Event,
    /// Content events completed by the current `feed`/`finish` call.
    fresh: u32,
    /// `data:` lines seen, other than `[DONE]`.
    pub chunks: u64,
    /// Content events seen (see the module table).
    pub content_events: u64,
    /// Output tokens the server reported, if it did.
    pub usage_tokens: Option<u64>,
    /// The end marker was seen.
    pub done: bool,
    /// An in-band error event was seen.
    pub error: bool,
}

impl SseScanner {
    pub(crate) fn new(api: Api) -> Self {
        Self {
            api,
            partial: Vec::new(),
            event: Event::Other,
            fresh: 0,
            chunks: 0,
            content_events: 0,
            usage_tokens: None,
            done: false,
            error: false,
        }
    }

    pub(crate) fn reset(&mut self) {
        let mut partial = std::mem::take(&mut self.partial);
        partial.clear();
        *self = Self { partial, ..Self::new(self.api) };
    }

    /// Scans one body frame; returns how many content events it completed
    /// (all of them arrived at the moment this frame was read).
    pub(crate) fn feed(&mut self, mut frame: &[u8]) -> u32 {
        self.fresh = 0;
        while let Some(nl) = memchr::memchr(b'\n', frame) {
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
        self.fresh
    }

    /// Handles a final line that had no trailing newline; returns the
    /// content events it completed.
    pub(crate) fn finish(&mut self) -> u32 {
        self.fresh = 0;
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last);
        }
        self.fresh
    }

    fn line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.event = Event::Other;
            return;
        }
        if let Some(name) = line.strip_prefix(b"event:") {
            self.event = Event::parse(name.trim_ascii());
            return;
        }
        let Some(payload) = line.strip_prefix(b"data:") else {
            return;
        };
        let payload = payload.trim_ascii();
        match self.api {
            Api::OpenAi => self.openai_data(payload),
            Api::Anthropic => self.anthropic_data(payload),
        }
    }

    fn openai_data(&mut self, payload: &[u8]) {
        if payload == b"[DONE]" {
            self.done = true;
            return;
        }
        self.chunks += 1;
        if is_error(payload) {
            self.error = true;
        } else if has_content(payload) {
            self.content();
        } else if let Some(n) = number_after(payload, b"\"completion_tokens\"") {
            // Usage comes in a chunk without content (`"choices": []`).
            self.usage_tokens = Some(n);
        }
    }

    fn anthropic_data(&mut self, payload: &[u8]) {
        self.chunks += 1;
        match self.event {
            Event::ContentBlockDelta => self.content(),
            Event::MessageDelta => {
                if let Some(n) = number_after(payload, b"\"output_tokens\"") {
                    self.usage_tokens = Some(n);
                }
            }
            Event::MessageStop => self.done = true,
            Event::Error => self.error = true,
            Event::Other => {}
        }
    }

    fn content(&mut self) {
        self.content_events += 1;
        self.fresh += 1;
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

/// Whether the JSON object's first key is `"error"` (OpenAI's in-band error
/// event, `{"error":{…}}`; a chunk never starts with it).
fn is_error(json: &[u8]) -> bool {
    json.strip_prefix(b"{").is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"error\""))
}

/// The unsigned integer value of the first `key` (a quoted JSON key) that
/// has one, e.g. `"output_tokens": 6` → 6; `null` values are skipped.
pub(crate) fn number_after(json: &[u8], key: &[u8]) -> Option<u64> {
    let mut rest = json;
    while let Some(at) = find(rest, key) {
        rest = &rest[at + key.len()..];
        let Some(value) = rest.trim_ascii_start().strip_prefix(b":") else {
            continue;
        };
        let value = value.trim_ascii_start();
        let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            let text = std::str::from_utf8(&value[..digits]).ok()?;
            return text.parse().ok();
        }
    }
    None
}

/// Position of the first `needle` in `haystack` (SIMD-accelerated: the scan
/// runs over every byte of every stream, and the load generator shares a
/// core with the server it measures).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\": \"lo\"}}]}\n\n",
        ": keep-alive comment\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    );

    /// The Anthropic stream of the wire fixtures, as Anthropic sends it.
    const ANTHROPIC: &str = include_str!("../../../../shared/fixtures/wire/anthropic/messages_stream_text.sse");
    const ANTHROPIC_ERROR: &str =
        include_str!("../../../../shared/fixtures/wire/anthropic/messages_stream_error_overloaded.sse");

    fn scan(api: Api, frames: &[&[u8]]) -> (SseScanner, Vec<u32>) {
        let mut s = SseScanner::new(api);
        let mut per_frame: Vec<u32> = frames.iter().map(|f| s.feed(f)).collect();
        per_frame.push(s.finish());
        (s, per_frame)
    }

    #[test]
    fn whole_openai_stream_in_one_frame() {
        let (s, per_frame) = scan(Api::OpenAi, &[STREAM.as_bytes()]);
        assert_eq!(per_frame, [2, 0]);
        assert_eq!((s.chunks, s.content_events, s.usage_tokens), (4, 2, Some(2)));
        assert!(s.done && !s.error);
    }

    #[test]
    fn every_split_point_gives_the_same_answer() {
        for (api, text, events) in [(Api::OpenAi, STREAM, 2), (Api::Anthropic, ANTHROPIC, 3)] {
            let bytes = text.as_bytes();
            let mut s = SseScanner::new(api);
            for split in 0..=bytes.len() {
                s.reset();
                let counted = s.feed(&bytes[..split]) + s.feed(&bytes[split..]) + s.finish();
                assert_eq!(counted, events, "{api:?} split at {split}");
                assert_eq!(s.content_events, u64::from(events));
                assert!(s.done && !s.error, "{api:?} split at {split}");
            }
        }
    }

    #[test]
    fn byte_by_byte_and_crlf() {
        let crlf = STREAM.replace('\n', "\r\n");
        let mut s = SseScanner::new(Api::OpenAi);
        let events: u32 = crlf.as_bytes().chunks(1).map(|b| s.feed(b)).sum();
        assert_eq!(events, 2);
        assert_eq!(s.chunks, 4);
        assert!(s.done);

        let crlf = ANTHROPIC.replace('\n', "\r\n");
        let mut s = SseScanner::new(Api::Anthropic);
        let events: u32 = crlf.as_bytes().chunks(1).map(|b| s.feed(b)).sum();
        assert_eq!((events, s.usage_tokens, s.done), (3, Some(6), true));
    }

    #[test]
    fn last_line_without_newline() {
        let mut s = SseScanner::new(Api::OpenAi);
        assert_eq!(s.feed(b"data: {\"content\":\"x\"}"), 0);
        assert_eq!(s.finish(), 1);
        assert_eq!(s.chunks, 1);
        assert!(!s.done, "no [DONE]: the stream was cut");
    }

    #[test]
    fn openai_in_band_error() {
        let text = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n";
        let (s, _) = scan(Api::OpenAi, &[text.as_bytes()]);
        assert!(s.error && !s.done);
        assert_eq!(s.content_events, 1);
    }

    #[test]
    fn anthropic_fixture() {
        // message_start (usage.output_tokens 1), content_block_start, ping,
        // three content_block_delta, content_block_stop, message_delta
        // (usage.output_tokens 6), message_stop.
        let (s, per_frame) = scan(Api::Anthropic, &[ANTHROPIC.as_bytes()]);
        assert_eq!(per_frame, [3, 0]);
        assert_eq!(s.chunks, 9);
        assert_eq!(s.content_events, 3);
        // From message_delta, not message_start's running count.
        assert_eq!(s.usage_tokens, Some(6));
        assert!(s.done && !s.error);

        // One event per frame: the first content arrives with the 4th event.
        let events: Vec<&str> = ANTHROPIC.split_inclusive("\n\n").collect();
        let frames: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
        let (_, per_frame) = scan(Api::Anthropic, &frames);
        assert_eq!(per_frame, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn anthropic_error_event() {
        let (s, _) = scan(Api::Anthropic, &[ANTHROPIC_ERROR.as_bytes()]);
        assert!(s.error, "{ANTHROPIC_ERROR}");
        assert!(!s.done);
    }

    #[test]
    fn anthropic_data_without_event_line_is_not_content() {
        // The event name decides; it does not leak past the blank line.
        let text = "event: content_block_delta\ndata: {}\n\ndata: {\"type\":\"content_block_delta\"}\n\n";
        let (s, _) = scan(Api::Anthropic, &[text.as_bytes()]);
        assert_eq!((s.chunks, s.content_events), (2, 1));
    }

    #[test]
    fn find_keys() {
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

    #[test]
    fn numbers_and_errors() {
        let key = b"\"completion_tokens\"";
        assert_eq!(number_after(br#"{"usage":{"completion_tokens": 12}}"#, key), Some(12));
        assert_eq!(number_after(br#"{"completion_tokens":null,"x":{"completion_tokens":3}}"#, key), Some(3));
        assert_eq!(number_after(br#"{"usage":null}"#, key), None);
        assert!(is_error(br#"{ "error": {"message":"x"}}"#));
        assert!(!is_error(br#"{"choices":[],"error":null}"#));
    }
}

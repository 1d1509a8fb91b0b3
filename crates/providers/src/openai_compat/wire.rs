//! The parts of the OpenAI wire format the gateway reads or edits, with the
//! tolerance OpenAI-compatible servers need:
//!
//! | difference | where | handling |
//! | --- | --- | --- |
//! | `"usage": null` on every chunk vs. key absent | OpenAI (2025+) vs. 2024 captures | both parse to `None` |
//! | usage on a separate `choices: []` chunk vs. on the finish chunk | OpenAI vs. DeepSeek | usage taken from whichever chunk has it |
//! | `choices: []` chunk *without* usage | Azure (prompt filter results) | not a usage chunk: forwarded |
//! | `reasoning` vs. `reasoning_content` | vLLM new/old, Ollama, DeepSeek | counted as output text |
//! | `: keep-alive` comments | DeepSeek | not data; ignored |
//! | `include_usage` defaults to true when `stream_options` is present | vLLM | we always set it explicitly |

use serde::Deserialize;
use std::borrow::Cow;
use switchyard_types::openai::{PromptTokensDetails, WireUsage};
use switchyard_types::RawObject;

/// The upstream body for a request: `model` replaced by the deployment's
/// model, and for streams `stream_options.include_usage` forced on so usage
/// can be recorded (other `stream_options` keys are kept).
///
/// Returns `None` when the body can go upstream unchanged (the fast path).
pub fn rewrite_request(
    obj: &RawObject<'_>,
    current_model: &str,
    upstream_model: &str,
    force_usage: bool,
) -> Option<Vec<u8>> {
    let model_changes = current_model != upstream_model;
    let stream_options = if force_usage { Some(stream_options_with_usage(obj)) } else { None };
    if !model_changes && stream_options.is_none() {
        return None;
    }
    let model_json = serde_json::to_string(upstream_model).unwrap_or_else(|_| "\"\"".into());
    let mut overrides: Vec<(&str, Option<&str>)> = Vec::with_capacity(2);
    if model_changes {
        overrides.push(("model", Some(&model_json)));
    }
    if let Some(so) = &stream_options {
        overrides.push(("stream_options", Some(so)));
    }
    Some(obj.write_with(&overrides))
}

fn stream_options_with_usage(obj: &RawObject<'_>) -> String {
    let mut map: serde_json::Map<String, serde_json::Value> =
        obj.get("stream_options").and_then(|raw| serde_json::from_str(raw.get()).ok()).unwrap_or_default();
    map.insert("include_usage".into(), serde_json::Value::Bool(true));
    serde_json::Value::Object(map).to_string()
}

/// Whether a chunk's JSON has a non-null top-level-looking `"usage": {…}`,
/// found without parsing: most chunks carry `"usage":null` or nothing, and
/// only the one with usage needs a parse. A `"usage":` inside a string value
/// cannot match: JSON escapes its quotes (`\"usage\":`).
pub fn carries_usage(data: &[u8]) -> bool {
    usage_objects(data).next().is_some()
}

/// Every `"usage": {…}` in `data`, each as the bytes from its `{` on, found
/// with a forward (SIMD) search; `"usage": null` and the like are skipped.
fn usage_objects(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"usage\""));
    FINDER.find_iter(data).filter_map(move |i| {
        let value = data[i + 7..].trim_ascii_start().strip_prefix(b":")?.trim_ascii_start();
        value.starts_with(b"{").then_some(value)
    })
}

/// Appends the generated text of one `chat.completion.chunk` (the string
/// values of `content`, `reasoning_content`, `reasoning`, and a tool call's
/// `name` and `arguments`) to `out`, without parsing the chunk: a walk over
/// its JSON strings, so a key-like text inside a value never matches. For
/// estimating tokens when no usage arrives; the same text
/// [`ChunkPeek::collect_text`] gives.
pub fn chunk_text(data: &[u8], out: &mut String) {
    const KEYS: [&[u8]; 5] = [b"content", b"reasoning_content", b"reasoning", b"arguments", b"name"];
    let mut at = 0;
    while let Some(start) = memchr::memchr(b'"', &data[at..]).map(|i| at + i) {
        let Some(end) = string_end(data, start) else { return };
        at = end + 1;
        let rest = data[at..].trim_ascii_start();
        let Some(value) = rest.strip_prefix(b":") else { continue };
        let value_at = data.len() - value.trim_ascii_start().len();
        // A key: its value is read only when it is one of ours and a string.
        if data.get(value_at) != Some(&b'"') || !KEYS.contains(&&data[start + 1..end]) {
            at = value_at;
            continue;
        }
        let Some(value_end) = string_end(data, value_at) else { return };
        let raw = &data[value_at + 1..value_end];
        if memchr::memchr(b'\\', raw).is_none() {
            out.push_str(&String::from_utf8_lossy(raw));
        } else if let Ok(text) = serde_json::from_slice::<Cow<'_, str>>(&data[value_at..=value_end]) {
            out.push_str(&text);
        }
        at = value_end + 1;
    }
}

/// The index of the quote closing the JSON string that opens at `start`.
fn string_end(data: &[u8], start: usize) -> Option<usize> {
    let mut at = start + 1;
    loop {
        let i = at + memchr::memchr2(b'"', b'\\', &data[at..])?;
        if data[i] == b'"' {
            return Some(i);
        }
        at = i + 2; // an escape: skip the escaped character
        if at > data.len() {
            return None;
        }
    }
}

/// The `usage` object of a whole (non-stream) response, parsed alone: the
/// last `"usage":{` in the body (it follows `choices`), then just that
/// object. `None` when there is none or it does not parse.
pub fn response_usage(body: &[u8]) -> Option<WireUsage> {
    // Searching the whole body forward (SIMD) beats searching back from the
    // end (byte by byte): ~1,000 fewer instructions a response.
    read_usage(usage_objects(body).last()?)
}

/// The `usage` object that starts `value` (at its `{`): its three counts
/// read in one pass over the bytes, the rest skipped. The derived parse
/// cost ~4,000 instructions on OpenAI's usage with its two detail objects;
/// this ~10× less. Anything unexpected (a count that is not a plain
/// non-negative integer, broken JSON) goes to the derived parse.
pub fn read_usage(value: &[u8]) -> Option<WireUsage> {
    scan_usage(value).or_else(|| {
        let mut de = serde_json::Deserializer::from_slice(value);
        serde::Deserialize::deserialize(&mut de).ok()
    })
}

fn scan_usage(value: &[u8]) -> Option<WireUsage> {
    if value.first() != Some(&b'{') {
        return None; // (serde also reads a struct from an array)
    }
    let mut usage = WireUsage::default();
    let mut cached: Option<Option<u64>> = None;
    // The depth inside `prompt_tokens_details`, once its `{` is seen.
    let (mut at, mut depth, mut details, mut entering) = (0, 0usize, None::<usize>, false);
    loop {
        let b = *value.get(at)?;
        match b {
            b'{' | b'[' => {
                depth += 1;
                if std::mem::take(&mut entering) && b == b'{' {
                    details = Some(depth);
                }
            }
            b'}' | b']' => {
                if details == Some(depth) {
                    details = None;
                }
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    if let Some(c) = cached {
                        usage.prompt_tokens_details = Some(PromptTokensDetails { cached_tokens: c });
                    }
                    return Some(usage);
                }
            }
            b'"' => {
                let end = string_end(value, at)?;
                let key = &value[at + 1..end];
                at = end + 1;
                let after = value[at..].trim_ascii_start();
                let is_key = after.first() == Some(&b':');
                if is_key && (depth == 1 || details == Some(depth)) && key.contains(&b'\\') {
                    return None; // an escaped key may spell one of ours
                }
                let slot = match (depth, key) {
                    (1, b"prompt_tokens") => &mut usage.prompt_tokens,
                    (1, b"completion_tokens") => &mut usage.completion_tokens,
                    (1, b"total_tokens") => &mut usage.total_tokens,
                    (1, b"prompt_tokens_details") if is_key => {
                        let value = after[1..].trim_ascii_start();
                        if value.starts_with(b"{") {
                            entering = true;
                        } else if !value.starts_with(b"null") {
                            return None;
                        }
                        continue;
                    }
                    (d, b"cached_tokens") if is_key && details == Some(d) => cached.insert(None),
                    _ => continue,
                };
                if is_key {
                    let number = after[1..].trim_ascii_start();
                    let digits = number.iter().take_while(|c| c.is_ascii_digit()).count();
                    match number.get(digits) {
                        _ if number.starts_with(b"null") => *slot = None,
                        Some(b',' | b'}' | b' ' | b'\n' | b'\r' | b'\t') if digits > 0 => {
                            *slot = Some(std::str::from_utf8(&number[..digits]).ok()?.parse().ok()?);
                        }
                        _ => return None, // not a plain count: the derived parse decides
                    }
                }
                continue;
            }
            _ => {}
        }
        at += 1;
    }
}

/// What the gateway reads from one `chat.completion.chunk`.
#[derive(Debug, Default, Deserialize)]
pub struct ChunkPeek<'a> {
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default, borrow)]
    pub choices: Option<Vec<ChoicePeek<'a>>>,
}

impl ChunkPeek<'_> {
    /// A chunk that exists only to carry usage (`choices: []` + usage).
    pub fn is_usage_only(&self) -> bool {
        self.usage.is_some() && self.choices.as_ref().is_some_and(Vec::is_empty)
    }

    /// Appends the generated text in this chunk (content, reasoning, tool
    /// arguments) to `out`, for token estimation when no usage arrives.
    pub fn collect_text(&self, out: &mut String) {
        for c in self.choices.iter().flatten() {
            if let Some(d) = &c.delta {
                d.collect_text(out);
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ChoicePeek<'a> {
    #[serde(default, borrow)]
    pub delta: Option<MessagePeek<'a>>,
}

/// A `delta` (stream) or `message` (non-stream).
#[derive(Debug, Default, Deserialize)]
pub struct MessagePeek<'a> {
    #[serde(default, borrow)]
    pub content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub tool_calls: Option<Vec<ToolCallPeek<'a>>>,
}

impl MessagePeek<'_> {
    fn collect_text(&self, out: &mut String) {
        for t in [&self.content, &self.reasoning_content, &self.reasoning].into_iter().flatten() {
            out.push_str(t);
        }
        for call in self.tool_calls.iter().flatten() {
            if let Some(f) = &call.function {
                for t in [&f.name, &f.arguments].into_iter().flatten() {
                    out.push_str(t);
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ToolCallPeek<'a> {
    #[serde(default, borrow)]
    pub function: Option<FunctionPeek<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FunctionPeek<'a> {
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub arguments: Option<Cow<'a, str>>,
}

/// What the gateway reads from a non-stream chat or embeddings response.
#[derive(Debug, Default, Deserialize)]
pub struct ResponsePeek<'a> {
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default, borrow)]
    pub choices: Option<Vec<ResponseChoicePeek<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ResponseChoicePeek<'a> {
    #[serde(default, borrow)]
    pub message: Option<MessagePeek<'a>>,
}

impl ResponsePeek<'_> {
    pub fn collect_text(&self, out: &mut String) {
        for c in self.choices.iter().flatten() {
            if let Some(m) = &c.message {
                m.collect_text(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_fixtures::{fixture, fixture_events};

    /// Runs a fixture stream through the framer and the peek, returning the
    /// usage found, the text collected, and how many chunks were usage-only.
    fn scan(path: &str) -> (Option<WireUsage>, String, usize) {
        let events = fixture_events(path);
        let (mut usage, mut text, mut usage_only) = (None, String::new(), 0);
        for e in events {
            let Some(data) = e.data() else { continue };
            if &data[..] == b"[DONE]" {
                continue;
            }
            let peek: ChunkPeek = serde_json::from_slice(&data).unwrap();
            if peek.is_usage_only() {
                usage_only += 1;
            }
            peek.collect_text(&mut text);
            if peek.usage.is_some() {
                usage = peek.usage;
            }
        }
        (usage, text, usage_only)
    }

    #[test]
    fn usage_is_spotted_without_parsing() {
        assert!(carries_usage(br#"{"choices":[],"usage":{"prompt_tokens":1}}"#));
        assert!(carries_usage(br#"{"usage" : {"prompt_tokens":1}}"#));
        assert!(!carries_usage(br#"{"choices":[{"delta":{"content":"hi"}}],"usage":null}"#));
        assert!(!carries_usage(br#"{"choices":[{"delta":{"content":"\"usage\":{"}}]}"#));
        assert!(!carries_usage(br#"{"choices":[]}"#));
        // Every fixture chunk: the fast check agrees with a full parse.
        for path in [
            "openai/chat_stream_text_include_usage.sse",
            "openai/chat_stream_text.sse",
            "openai/chat_stream_parallel_tool_calls.sse",
            "openai_compatible/deepseek_chat_stream_reasoning.sse",
            "openai_compatible/azure_chat_stream.sse",
            "openai_compatible/vllm_chat_stream_reasoning.sse",
            "openai_compatible/ollama_v1_chat_stream.sse",
        ] {
            for e in fixture_events(path).iter().filter_map(|e| e.data()).filter(|d| &d[..] != b"[DONE]") {
                let peek: ChunkPeek = serde_json::from_slice(&e).unwrap();
                assert_eq!(carries_usage(&e), peek.usage.is_some(), "{path}: {}", String::from_utf8_lossy(&e));
                // The same for the text: the scan and the parse agree.
                let (mut scanned, mut parsed) = (String::new(), String::new());
                chunk_text(&e, &mut scanned);
                peek.collect_text(&mut parsed);
                assert_eq!(scanned, parsed, "{path}: {}", String::from_utf8_lossy(&e));
            }
        }
    }

    #[test]
    fn chunk_text_reads_strings_not_look_alikes() {
        let text = |data: &[u8]| {
            let mut out = String::new();
            chunk_text(data, &mut out);
            out
        };
        // Escapes are decoded; a key-like text inside a value is not a key.
        assert_eq!(
            text(br#"{"choices":[{"delta":{"content":"say \"content\":\"x\" \u00e9\n"}}]}"#),
            "say \"content\":\"x\" é\n"
        );
        // Spaces around the colon (Python's json.dumps), and values that are not strings.
        assert_eq!(text(br#"{"id": "content", "delta": {"content" : "a", "reasoning": null, "content2": "b"}}"#), "a");
        assert_eq!(text(br#"{"logprobs":{"content":[{"token":"x"}]},"delta":{"reasoning_content":"r"}}"#), "r");
        assert_eq!(
            text(br#"{"delta":{"tool_calls":[{"function":{"name":"get","arguments":"{\"q\":1}"}}]}}"#),
            "get{\"q\":1}"
        );
        // Cut or broken data: what was whole is kept, nothing panics.
        assert_eq!(text(br#"{"delta":{"content":"ab"#), "");
        assert_eq!(text(br#"{"delta":{"content":"ab\"#), "");
        assert_eq!(text(br#"{"a":"x\""#), "");
        assert_eq!(text(b""), "");
        assert_eq!(text(br#"""#), "");
    }

    #[test]
    fn openai_streams() {
        let (usage, text, only) = scan("openai/chat_stream_text_include_usage.sse");
        assert_eq!(usage.unwrap().completion_tokens, Some(10));
        assert_eq!(text, "Hello! How can I help you today?");
        assert_eq!(only, 1);
        let (usage, text, only) = scan("openai/chat_stream_text.sse");
        assert!(usage.is_none());
        assert!(!text.is_empty());
        assert_eq!(only, 0);
        let (usage, text, _) = scan("openai/chat_stream_parallel_tool_calls.sse");
        assert!(usage.is_some());
        assert!(text.contains("Edinburgh"), "{text}");
        let (usage, _, _) = scan("openai/chat_stream_tool_call_single.sse");
        assert!(usage.is_some());
    }

    #[test]
    fn compatible_server_streams() {
        let (usage, text, only) = scan("openai_compatible/deepseek_chat_stream_reasoning.sse");
        assert!(usage.is_some(), "usage on the finish chunk");
        assert_eq!(only, 0);
        assert!(!text.is_empty());
        for f in [
            "openai_compatible/vllm_chat_stream_reasoning.sse",
            "openai_compatible/vllm_chat_stream_reasoning_content_legacy.sse",
            "openai_compatible/ollama_v1_chat_stream.sse",
        ] {
            let (_, text, _) = scan(f);
            assert!(!text.is_empty(), "{f}");
        }
        let (_, _, only) = scan("openai_compatible/azure_chat_stream.sse");
        assert_eq!(only, 1, "only the real usage chunk counts, not the choices:[] prompt-filter chunk");
    }

    #[test]
    fn response_usage_agrees_with_a_full_parse() {
        for f in [
            "openai/chat_response_text.json",
            "openai/chat_response_tool_calls.json",
            "openai_compatible/vllm_chat_response_tool_call.json",
            "openai_compatible/deepseek_chat_response_reasoning.json",
            "openai_compatible/azure_chat_response.json",
            "openai/embeddings_response_float.json",
            "openai/embeddings_response_base64.json",
        ] {
            let body = fixture(f);
            let peek: ResponsePeek = serde_json::from_slice(&body).unwrap();
            assert!(peek.usage.is_some(), "{f} has usage");
            assert_eq!(response_usage(&body), peek.usage, "{f}");
        }
        assert_eq!(response_usage(br#"{"choices":[{"message":{"content":"\"usage\":{}"}}]}"#), None);
        // Cached prompt tokens are read from the details object, only there.
        let body = br#"{"usage":{"prompt_tokens":1200,"completion_tokens":5,"total_tokens":1205,
            "completion_tokens_details":{"cached_tokens":7},"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":1000}}}"#;
        let u = response_usage(body).unwrap();
        assert_eq!((u.prompt_tokens, u.cached_tokens()), (Some(1200), 1000));
        assert_eq!(scan_usage(&body[9..]), serde_json::from_slice(&body[9..body.len() - 1]).ok());
        let none =
            response_usage(br#"{"usage":{"prompt_tokens":3,"completion_tokens":1,"prompt_tokens_details":null}}"#);
        assert_eq!(none.map(|u| u.cached_tokens()), Some(0));
        assert_eq!(response_usage(br#"{"usage":null}"#), None);
    }

    #[test]
    fn usage_is_read_without_the_derived_parse_and_agrees_with_it() {
        let cases: [&[u8]; 9] = [
            br#"{"prompt_tokens":2,"completion_tokens":16,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#,
            br#"{ "prompt_tokens" : 7 , "total_tokens": 9, "completion_tokens":2 }"#,
            br#"{"prompt_tokens":null,"completion_tokens":3}"#,
            // A nested key of the same name is not the count.
            br#"{"details":{"prompt_tokens":99},"prompt_tokens":1,"completion_tokens":2}"#,
            br#"{"note":"a } and \" inside","prompt_tokens":4,"completion_tokens":5,"x":[1,{"y":2}]}"#,
            br#"{}"#,
            // Not plain counts: left to the derived parse, which refuses them.
            br#"{"prompt_tokens":-1,"completion_tokens":2}"#,
            br#"{"prompt_tokens":1.5,"completion_tokens":2}"#,
            br#"{"prompt_tokens":"3"}"#,
        ];
        for case in cases {
            let derived: Option<WireUsage> = serde_json::from_slice(case).ok();
            assert_eq!(read_usage(case), derived, "{}", String::from_utf8_lossy(case));
        }
        assert_eq!(read_usage(br#"{"prompt_tokens":1"#), None, "cut");
        assert_eq!(read_usage(b""), None);
        assert_eq!(read_usage(b"}{"), None);
        // Found by fuzz/wire_scanners: serde reads a struct from an array too.
        assert_eq!(read_usage(b"[0,1]").unwrap().completion_tokens, Some(1));
        assert_eq!(read_usage(br#"{"prompt\u005ftokens":3}"#).unwrap().prompt_tokens, Some(3));
        assert_eq!(read_usage(br#"{"prompt_tokens":1}"#).unwrap().prompt_tokens, Some(1));
    }

    #[test]
    fn rewrite_sets_model_and_usage_keeping_other_options() {
        let body = br#"{"model":"chat","messages":[],"stream":true,"stream_options":{"include_obfuscation":false}}"#;
        let obj = RawObject::parse(body).unwrap();
        let out = rewrite_request(&obj, "chat", "gpt-4o-mini", true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "gpt-4o-mini");
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["stream_options"]["include_obfuscation"], false);
        assert_eq!(v["messages"], serde_json::json!([]));
    }

    #[test]
    fn unchanged_requests_take_the_fast_path() {
        let obj = RawObject::parse(br#"{"model":"m","messages":[]}"#).unwrap();
        assert!(rewrite_request(&obj, "m", "m", false).is_none());
    }

    #[test]
    fn every_request_fixture_survives_a_rewrite() {
        for f in [
            "openai/chat_request_full.json",
            "openai/chat_request_tool_results.json",
            "openai/embeddings_request_float.json",
            "openai_compatible/vllm_chat_request_extra_params.json",
        ] {
            let body = fixture(f);
            let original: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let obj = RawObject::parse(&body).unwrap();
            let out = rewrite_request(&obj, "x", "y", false).unwrap();
            let mut rewritten: serde_json::Value = serde_json::from_slice(&out).unwrap();
            rewritten["model"] = original["model"].clone();
            assert_eq!(rewritten, original, "{f}: every other field passes through");
        }
    }
}

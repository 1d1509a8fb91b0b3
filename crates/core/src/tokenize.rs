//! Counting tokens when a provider reports none (the record is then marked
//! `estimated`).
//!
//! Uses OpenAI's `o200k_base` encoding: exact for GPT-4o-family models and a
//! close estimate for others.
//!
//! The encoder costs ~40 MiB of memory and ~0.3 s to build, and most
//! deployments report usage themselves, so it is built only when first
//! needed, on a thread of its own: [`count`] never waits for it. Until it
//! is ready (or if it cannot be built) a count is one token per four bytes,
//! still marked estimated. [`warm_up`] builds it and waits, for callers that
//! want the exact count at once (`/v1/messages/count_tokens`, tests).

use std::sync::{Once, OnceLock};
use tiktoken_rs::CoreBPE;

/// Tokens OpenAI adds per chat message for role and separators.
const PER_MESSAGE_OVERHEAD: u64 = 4;

static ENCODER: OnceLock<Option<CoreBPE>> = OnceLock::new();

fn build() -> Option<CoreBPE> {
    tiktoken_rs::o200k_base().ok()
}

/// The encoder if it is ready; otherwise starts building it (once, in the
/// background) and answers `None`.
fn encoder() -> Option<&'static CoreBPE> {
    if let Some(ready) = ENCODER.get() {
        return ready.as_ref();
    }
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new().name("tokenizer-load".into()).spawn(|| {
            ENCODER.get_or_init(build);
        });
        if let Err(e) = spawned {
            tracing::warn!("could not start loading the tokenizer: {e}");
        }
    });
    None
}

/// Builds the encoder now if it is not built yet, and waits for it. Blocks:
/// call from a blocking thread.
pub fn warm_up() {
    ENCODER.get_or_init(build);
}

/// Tokens in `text`: exact once the encoder is ready, else one token per
/// four bytes.
pub fn count(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    match encoder() {
        Some(bpe) => bpe.encode_ordinary(text).len() as u64,
        None => (text.len() as u64).div_ceil(4),
    }
}

/// Estimated prompt tokens of an OpenAI chat or embeddings request body:
/// every string under `messages[].content` (plain or text parts), tool
/// definitions, and `input` for embeddings, plus a per-message overhead.
pub fn count_request(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return 0 };
    let mut text = String::new();
    let mut messages = 0u64;
    if let Some(list) = value.get("messages").and_then(|m| m.as_array()) {
        for m in list {
            messages += 1;
            collect_strings(m, &mut text);
        }
    }
    if let Some(tools) = value.get("tools") {
        collect_strings(tools, &mut text);
    }
    if let Some(input) = value.get("input") {
        collect_strings(input, &mut text);
    }
    count(&text) + messages * PER_MESSAGE_OVERHEAD
}

fn collect_strings(v: &serde_json::Value, out: &mut String) {
    match v {
        // Inline images (data: URLs) are not text tokens.
        serde_json::Value::String(s) if !s.starts_with("data:") => {
            out.push_str(s);
            out.push(' ');
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_with_the_real_encoding() {
        warm_up();
        assert_eq!(count(""), 0);
        assert_eq!(count("Hello world"), 2);
    }

    #[test]
    fn request_counting_sees_messages_and_input() {
        let chat = br#"{"model":"m","messages":[{"role":"user","content":"Hello world"},{"role":"user","content":[{"type":"text","text":"Hello world"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        let n = count_request(chat);
        assert!(n >= 2 * PER_MESSAGE_OVERHEAD + 4, "{n}");
        assert!(count_request(br#"{"input":["a b c"]}"#) > 0);
        assert_eq!(count_request(b"not json"), 0);
    }
}

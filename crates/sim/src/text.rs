//! Deterministic answer text and the rough token count of a prompt.
//!
//! A word stands for a token: token `k` of a choice is one word, with a
//! leading space except for the first, so a stream's content chunks
//! concatenate to exactly the non-stream content.

use serde_json::Value;

const WORDS: [&str; 64] = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "ad",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "ea",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "in",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
    "fugiat",
    "nulla",
    "pariatur",
    "excepteur",
    "sint",
    "occaecat",
    "cupidatat",
    "non",
    "proident",
    "sunt",
    "culpa",
    "qui",
    "officia",
    "deserunt",
    "mollit",
    "anim",
    "id",
    "est",
    "laborum",
    "switchyard",
    "gateway",
];

/// The word for token `k` of choice `choice`; choices start at different
/// places so `n > 1` answers differ.
pub(crate) fn word(choice: u32, k: u32) -> &'static str {
    let i = (k as usize).wrapping_add((choice as usize).wrapping_mul(7)) % WORDS.len();
    WORDS[i]
}

/// Appends token `k` of `choice`. Words need no JSON escaping.
pub(crate) fn push_token(buf: &mut String, choice: u32, k: u32) {
    if k > 0 {
        buf.push(' ');
    }
    buf.push_str(word(choice, k));
}

/// Appends the first `words` tokens of `choice`.
pub(crate) fn push_answer(buf: &mut String, choice: u32, words: u32) {
    for k in 0..words {
        push_token(buf, choice, k);
    }
}

/// About one token per four characters of all message text (and of the
/// `system` prompt, for formats that keep it apart), at least 1.
pub(crate) fn prompt_tokens(system: Option<&Value>, messages: &[Value]) -> u32 {
    let chars: usize = content_chars(system) + messages.iter().map(message_chars).sum::<usize>();
    tokens_for_chars(chars)
}

pub(crate) fn tokens_for_chars(chars: usize) -> u32 {
    u32::try_from(chars / 4).unwrap_or(u32::MAX).max(1)
}

/// Characters of a content value: a string, or the `text` of each part of
/// an array (OpenAI content parts, Anthropic blocks, Gemini `parts`).
pub(crate) fn content_chars(content: Option<&Value>) -> usize {
    match content {
        Some(Value::String(s)) => s.chars().count(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).map(|s| s.chars().count()).sum()
        }
        _ => 0,
    }
}

fn message_chars(m: &Value) -> usize {
    let calls: usize = m
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .filter_map(|c| c.pointer("/function/arguments").and_then(Value::as_str))
                .map(|s| s.chars().count())
                .sum()
        })
        .unwrap_or(0);
    content_chars(m.get("content")) + calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answer_is_space_separated_words() {
        let mut s = String::new();
        push_answer(&mut s, 0, 3);
        assert_eq!(s, "lorem ipsum dolor");
        let mut t = String::new();
        push_answer(&mut t, 1, 3);
        assert_ne!(s, t);
        assert!(WORDS.iter().all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
    }

    #[test]
    fn prompt_tokens_counts_text_parts() {
        let msgs = [
            json!({"role":"system","content":"12345678"}),
            json!({"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"data:..."}}]}),
        ];
        assert_eq!(prompt_tokens(None, &msgs), 3);
        assert_eq!(prompt_tokens(None, &[]), 1);
        assert_eq!(prompt_tokens(Some(&json!("abcdefgh")), &msgs), 5);
        assert_eq!(prompt_tokens(Some(&json!([{"type":"text","text":"abcd"}])), &msgs), 4);
    }
}

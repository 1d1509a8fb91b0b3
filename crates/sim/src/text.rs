//! Deterministic answer text and the rough token count of a prompt.
//!
//! A word stands for a token: token `k` of a choice is one word, with a
//! leading space except for the first, so a stream's content chunks
//! concatenate to exactly the non-stream content. The words are lorem
//! ipsum ([`Source::Lorem`]) or, with the `echo` knob, the words of the
//! request's last user text ([`Source::Echo`]).

use serde_json::Value;

use crate::wire;

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

/// Appends token `k` of `choice`. Lorem words need no JSON escaping.
fn push_token(buf: &mut String, choice: u32, k: u32) {
    if k > 0 {
        buf.push(' ');
    }
    buf.push_str(word(choice, k));
}

/// Where the words of a text answer come from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source {
    /// The lorem words; choices start at different places.
    Lorem,
    /// The `echo` knob: the request's last user text, the same for every choice.
    Echo(Echo),
}

impl Source {
    /// The words a full answer has: `answer_tokens` lorem words, or the
    /// words of the echoed text.
    pub(crate) fn words(&self, answer_tokens: u32) -> u32 {
        match self {
            Self::Lorem => answer_tokens,
            Self::Echo(echo) => u32::try_from(echo.words.len()).unwrap_or(u32::MAX),
        }
    }

    /// Appends token `k` of `choice`, escaped for the inside of a JSON string.
    pub(crate) fn push_token(&self, buf: &mut String, choice: u32, k: u32) {
        match self {
            Self::Lorem => push_token(buf, choice, k),
            Self::Echo(echo) => {
                if k > 0 {
                    buf.push(' ');
                }
                wire::push_escaped(buf, echo.word(k));
            }
        }
    }

    /// Appends the first `words` tokens of `choice`, escaped for the inside
    /// of a JSON string.
    pub(crate) fn push_answer(&self, buf: &mut String, choice: u32, words: u32) {
        match self {
            Self::Lorem => (0..words).for_each(|k| push_token(buf, choice, k)),
            // Tokens 0..words joined are the text up to the end of the last one.
            Self::Echo(echo) => wire::push_escaped(buf, echo.prefix(words)),
        }
    }
}

/// A text to echo, split on single spaces: `"a  b"` has the words `a`, an
/// empty one and `b`, so its tokens `"a"`, `" "` and `" b"` join back to the
/// text. An empty text has no words.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Echo {
    text: String,
    /// Byte range of each word in `text`.
    words: Vec<(usize, usize)>,
}

impl Echo {
    pub(crate) fn new(text: String) -> Self {
        let mut words = Vec::new();
        if !text.is_empty() {
            let mut from = 0;
            for (i, _) in text.match_indices(' ') {
                words.push((from, i));
                from = i + 1;
            }
            words.push((from, text.len()));
        }
        Self { text, words }
    }

    fn word(&self, k: u32) -> &str {
        let (from, to) = self.words.get(k as usize).copied().unwrap_or((0, 0));
        self.text.get(from..to).unwrap_or("")
    }

    /// The text of the first `words` words (with the spaces between them).
    fn prefix(&self, words: u32) -> &str {
        let last = (words as usize).checked_sub(1).and_then(|k| self.words.get(k).or(self.words.last()));
        self.text.get(..last.map_or(0, |w| w.1)).unwrap_or("")
    }
}

/// The text `echo` answers with: the content of the last message whose
/// `role` is `user` (`untyped_user`: or that has no `role`, as Gemini's
/// single-turn contents), `content_key` naming its content (`content`,
/// Gemini `parts`); empty when there is none. See [`content_text`].
pub(crate) fn last_user_text(messages: &[Value], content_key: &str, untyped_user: bool) -> String {
    let is_user = |m: &&Value| match m.get("role").and_then(Value::as_str) {
        Some(role) => role == "user",
        None => untyped_user,
    };
    content_text(messages.iter().rev().find(is_user).and_then(|m| m.get(content_key)))
}

/// The text of a content value: a string, or the `text` of each text part
/// of an array (OpenAI content parts and Anthropic blocks of `type`
/// `text`, Gemini `parts`, which have no `type`), concatenated.
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").is_none_or(|t| t.as_str() == Some("text")))
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answer_is_space_separated_words() {
        let mut s = String::new();
        Source::Lorem.push_answer(&mut s, 0, 3);
        assert_eq!(s, "lorem ipsum dolor");
        let mut t = String::new();
        Source::Lorem.push_answer(&mut t, 1, 3);
        assert_ne!(s, t);
        assert!(WORDS.iter().all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
    }

    /// The answer of `source`: all its tokens one by one, and the first `n` at once.
    fn tokens_and_prefix(source: &Source, n: u32) -> (Vec<String>, String) {
        let tokens = (0..source.words(16))
            .map(|k| {
                let mut b = String::new();
                source.push_token(&mut b, 0, k);
                b
            })
            .collect();
        let mut prefix = String::new();
        source.push_answer(&mut prefix, 0, n);
        (tokens, prefix)
    }

    #[test]
    fn echo_splits_on_single_spaces_and_escapes() {
        let text = "say \"hi\"  to C:\\tmp, Zürich ✓ [EMAIL_1] ";
        let echo = Source::Echo(Echo::new(text.to_owned()));
        assert_eq!(echo.words(16), 9);
        let (tokens, whole) = tokens_and_prefix(&echo, 9);
        assert_eq!(tokens[..3], ["say", " \\\"hi\\\"", " "]);
        assert_eq!(tokens[8], " ");
        assert_eq!(tokens.concat(), whole);
        assert_eq!(serde_json::from_str::<String>(&format!("\"{whole}\"")).unwrap(), text);
        let (_, cut) = tokens_and_prefix(&echo, 2);
        assert_eq!(cut, "say \\\"hi\\\"");
        assert_eq!(tokens_and_prefix(&echo, 0).1, "");

        let empty = Source::Echo(Echo::new(String::new()));
        assert_eq!(empty.words(16), 0);
        assert_eq!(tokens_and_prefix(&empty, 0), (vec![], String::new()));
        let one = Source::Echo(Echo::new("x".to_owned()));
        assert_eq!(tokens_and_prefix(&one, 1), (vec!["x".to_owned()], "x".to_owned()));
    }

    #[test]
    fn last_user_text_of_each_shape() {
        let openai = [
            json!({"role":"user","content":"first"}),
            json!({"role":"user","content":[{"type":"text","text":"a "},{"type":"image_url","image_url":{"url":"x"}},
                {"type":"text","text":"b"}]}),
            json!({"role":"assistant","content":"not this"}),
        ];
        assert_eq!(last_user_text(&openai, "content", false), "a b");
        let anthropic = [json!({"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r"},
            {"type":"text","text":"after"}]})];
        assert_eq!(last_user_text(&anthropic, "content", false), "after");
        let gemini = [json!({"parts":[{"text":"one "},{"inlineData":{}},{"text":"two"}]})];
        assert_eq!(last_user_text(&gemini, "parts", true), "one two");
        assert_eq!(last_user_text(&gemini, "parts", false), "");
        assert_eq!(last_user_text(&[json!({"role":"system","content":"s"})], "content", false), "");
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

//! Properties over arbitrary text: nothing panics, findings are well formed,
//! and masking always restores exactly, whole or streamed.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use switchyard_pii::{contains_pii, detect, Masker};

/// Pieces that make the detectors work: PII, near misses, placeholders and
/// their fragments, separators, multi-byte text.
const PIECES: &[&str] = &[
    "alice@example.com",
    "a@b.co",
    "@",
    "git@github.com:x",
    "13812345678",
    "138-1234-5678",
    "+86 ",
    "(415) 555-2671",
    "+1 ",
    "4111 1111 1111 1111",
    "11010519491231002X",
    "sk-proj-4fGh7JkL9mNp2QrS5tUv8WxY1zAb3CdE6fGh9IjK",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
    "-----BEGIN PRIVATE KEY-----",
    "-----END PRIVATE KEY-----",
    "password: ",
    "password=",
    "hunter22",
    "密码：",
    "密码是",
    "api_key=",
    "Authorization: Bearer ",
    "[EMAIL_1]",
    "[PHONE_2]",
    "[API_KEY_1]",
    "[EMAIL_",
    "[",
    "]",
    "_1",
    "0",
    "9",
    " ",
    "-",
    ".",
    ":",
    "=",
    "\"",
    "\n",
    "手机",
    "，",
    "é",
    "😀",
];

fn pieced_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|pieces| pieces.concat())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), pieced_text(), "[0-9 +()\\-.@a-zA-Z_:=\\[\\]]{0,60}"]
}

/// Streams `answer` cut at the given fractions of its length.
fn streamed(restorer: &switchyard_pii::Restorer, answer: &str, cuts: &[usize]) -> String {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (answer.len() + 1)).collect();
    points.push(answer.len());
    points.sort_unstable();
    let mut stream = restorer.stream();
    let mut out = String::new();
    let mut from = 0;
    for mut p in points {
        while !answer.is_char_boundary(p) {
            p += 1;
        }
        if p < from {
            continue;
        }
        out.push_str(&stream.push(&answer[from..p]));
        from = p;
    }
    out.push_str(&stream.finish());
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn findings_are_sorted_disjoint_and_on_char_boundaries(text in any_text()) {
        let found = detect(&text);
        for f in &found {
            prop_assert!(f.start < f.end && f.end <= text.len());
            prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        }
        for pair in found.windows(2) {
            prop_assert!(pair[0].end <= pair[1].start);
        }
        prop_assert_eq!(contains_pii(&text), !found.is_empty());
    }

    #[test]
    fn restore_of_mask_is_the_original(texts in prop::collection::vec(any_text(), 1..4), cuts in prop::collection::vec(any::<usize>(), 0..5)) {
        let mut masker = Masker::new();
        let masked: Vec<Option<String>> = texts.iter().map(|t| masker.mask(t)).collect();
        let restorer = masker.into_restorer();
        for (text, masked) in texts.iter().zip(&masked) {
            let sent = masked.as_deref().unwrap_or(text);
            if masked.is_none() {
                prop_assert!(detect(text).is_empty());
            }
            prop_assert_eq!(restorer.restore(sent), text.as_str());
            prop_assert_eq!(streamed(&restorer, sent, &cuts), text.as_str());
        }
    }

    #[test]
    fn streamed_restore_equals_whole_restore(answer in any_text(), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let mut masker = Masker::new();
        masker.mask("alice@example.com 13812345678 [EMAIL_1] password: hunter22");
        let restorer = masker.into_restorer();
        let whole = restorer.restore(&answer).into_owned();
        prop_assert_eq!(streamed(&restorer, &answer, &cuts), whole);
    }
}

#![allow(clippy::unwrap_used)]

use crate::Masker;

fn restorer_for(texts: &[&str]) -> (crate::Restorer, Vec<String>) {
    let mut masker = Masker::new();
    let masked = texts.iter().map(|t| masker.mask(t).unwrap_or_else(|| t.to_string())).collect();
    (masker.into_restorer(), masked)
}

fn streamed(restorer: &crate::Restorer, chunks: &[&str]) -> String {
    let mut stream = restorer.stream();
    let mut out = String::new();
    for chunk in chunks {
        out.push_str(&stream.push(chunk));
    }
    out.push_str(&stream.finish());
    out
}

#[test]
fn unknown_placeholders_are_left_alone() {
    let (restorer, _) = restorer_for(&["alice@example.com"]);
    let answer = "[EMAIL_1] [EMAIL_2] [EMAIL_01] [email_1] [PHONE_1] [EMAIL_1";
    assert_eq!(restorer.restore(answer), "alice@example.com [EMAIL_2] [EMAIL_01] [email_1] [PHONE_1] [EMAIL_1");
}

#[test]
fn nothing_to_restore_borrows() {
    let (restorer, _) = restorer_for(&["alice@example.com"]);
    assert!(matches!(restorer.restore("no placeholders [here]"), std::borrow::Cow::Borrowed(_)));
    let empty = Masker::new().into_restorer();
    assert!(empty.is_empty());
    assert!(matches!(empty.restore("[EMAIL_1]"), std::borrow::Cow::Borrowed(_)));
}

#[test]
fn stream_holds_back_only_unfinished_placeholders() {
    let (restorer, _) = restorer_for(&["alice@example.com"]);
    let mut stream = restorer.stream();
    assert_eq!(stream.push("Hello [EMA"), "Hello ");
    assert_eq!(stream.push("IL_1"), "");
    assert_eq!(stream.push("], and [x"), "alice@example.com, and [x");
    assert_eq!(stream.push(" [EMAIL_12"), " ");
    assert_eq!(stream.push("3 done"), "[EMAIL_123 done");
    assert_eq!(stream.push(" ["), " ");
    assert_eq!(stream.finish(), "[");
}

#[test]
fn stream_equals_whole_at_every_split() {
    let (restorer, _) = restorer_for(&["alice@example.com 手机13812345678 password: hunter22"]);
    let answer = "好的，[EMAIL_1] 和 [PHONE_1]，口令 [PASSWORD_1]；[EMAIL_2] [[EMAIL_1]]";
    let whole = restorer.restore(answer).into_owned();
    assert!(whole.contains("alice@example.com") && whole.contains("hunter22"));
    let cuts: Vec<usize> = (0..=answer.len()).filter(|&i| answer.is_char_boundary(i)).collect();
    for &i in &cuts {
        for &j in cuts.iter().filter(|&&j| j >= i) {
            let got = streamed(&restorer, &[&answer[..i], &answer[i..j], &answer[j..]]);
            assert_eq!(got, whole, "cut at {i}, {j}");
        }
    }
    let by_char: Vec<String> = answer.chars().map(String::from).collect();
    let by_char: Vec<&str> = by_char.iter().map(String::as_str).collect();
    assert_eq!(streamed(&restorer, &by_char), whole);
}

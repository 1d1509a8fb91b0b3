#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn nothing_found_returns_none() {
    let mut masker = Masker::new();
    assert_eq!(masker.mask("Ordinary text, version 1.2.3, 2024-01-15."), None);
    assert_eq!(masker.findings(), 0);
    assert!(masker.into_restorer().is_empty());
}

#[test]
fn same_original_same_placeholder_across_texts() {
    let mut masker = Masker::new();
    let a = masker.mask("Write to alice@example.com or bob@example.com.").unwrap();
    let b = masker.mask("CC alice@example.com; call 138 1234 5678.").unwrap();
    assert_eq!(a, "Write to [EMAIL_1] or [EMAIL_2].");
    assert_eq!(b, "CC [EMAIL_1]; call [PHONE_1].");
    assert_eq!(masker.findings(), 4);
    assert_eq!(masker.counts().collect::<Vec<_>>(), [(Kind::Email, 3), (Kind::Phone, 1)]);
    let restorer = masker.into_restorer();
    assert_eq!(restorer.restore(&b), "CC alice@example.com; call 138 1234 5678.");
}

#[test]
fn literal_placeholders_in_the_same_text_reserve_their_numbers() {
    let mut masker = Masker::new();
    let text = "Template: Dear [EMAIL_1], see [PHONE_2]. Real: carol@example.com";
    let masked = masker.mask(text).unwrap();
    assert_eq!(masked, "Template: Dear [EMAIL_1], see [PHONE_2]. Real: [EMAIL_2]");
    let restorer = masker.into_restorer();
    // The model echoes both: the literal stays, the real one comes back.
    assert_eq!(restorer.restore("[EMAIL_1] and [EMAIL_2]"), "[EMAIL_1] and carol@example.com");
    assert_eq!(restorer.restore(&masked), text);
}

#[test]
fn literal_equal_to_an_issued_placeholder_is_renumbered() {
    let mut masker = Masker::new();
    let first = masker.mask("My mail is alice@example.com").unwrap();
    assert_eq!(first, "My mail is [EMAIL_1]");
    // A later message quotes an unrestored earlier answer.
    let second_text = "You wrote [EMAIL_1] earlier; also dave@example.com";
    let second = masker.mask(second_text).unwrap();
    assert_eq!(second, "You wrote [EMAIL_2] earlier; also [EMAIL_3]");
    assert_eq!(masker.findings(), 2, "the literal is not a finding");
    let restorer = masker.into_restorer();
    assert_eq!(restorer.restore(&first), "My mail is alice@example.com");
    assert_eq!(restorer.restore(&second), second_text);
    assert_eq!(restorer.restore("[EMAIL_2]"), "[EMAIL_1]", "restored once, not again");
}

#[test]
fn reserve_keeps_literals_unchanged() {
    let texts = ["My mail is alice@example.com", "You wrote [EMAIL_1] earlier"];
    let mut masker = Masker::new();
    for text in texts {
        masker.reserve(text);
    }
    assert_eq!(masker.mask(texts[0]).unwrap(), "My mail is [EMAIL_2]");
    assert_eq!(masker.mask(texts[1]), None);
}

#[test]
fn literal_only_text_is_not_changed() {
    let mut masker = Masker::new();
    assert_eq!(masker.mask("Use [EMAIL_1] and [CARD_7] in the template."), None);
    assert_eq!(masker.mask("bob@example.com").unwrap(), "[EMAIL_2]");
}

#[test]
fn numbers_count_per_kind() {
    let mut masker = Masker::new();
    let masked = masker
        .mask("a@example.com 13812345678 b@example.com password: hunter22 4111 1111 1111 1111 a@example.com")
        .unwrap();
    assert_eq!(masked, "[EMAIL_1] [PHONE_1] [EMAIL_2] password: [PASSWORD_1] [CARD_1] [EMAIL_1]");
}

#[test]
fn debug_output_holds_no_originals() {
    let mut masker = Masker::new();
    masker.mask("alice@example.com, password: hunter22").unwrap();
    let shown = format!("{masker:?}");
    assert!(!shown.contains("alice") && !shown.contains("hunter22"), "{shown}");
    let restorer = masker.into_restorer();
    let shown = format!("{restorer:?} {:?}", restorer.stream());
    assert!(!shown.contains("alice") && !shown.contains("hunter22"), "{shown}");
}

//! Where a finding may begin and end.
//!
//! Word boundaries here are ASCII ones on purpose: Chinese text is written
//! without spaces, so `手机13812345678` must still yield the number, which
//! Unicode `\b` would not allow (both `机` and `1` are word characters).

/// The char that ends just before byte `at`, if any.
pub(crate) fn char_before(text: &str, at: usize) -> Option<char> {
    text.get(..at)?.chars().next_back()
}

/// The char that starts at byte `at`, if any.
pub(crate) fn char_after(text: &str, at: usize) -> Option<char> {
    text.get(at..)?.chars().next()
}

/// ASCII letters, digits and `_`: characters that glue two tokens into one.
pub(crate) fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether a number-like finding may start at byte `at`.
///
/// Not after a letter, digit or `_` (`v13812345678`, `id_4111…`), not after a
/// currency or reference sign (`$`, `¥`, `#`, `@`, `%`, `&`, `+`), and not
/// after `.`, `-`, `/` or `\` that is itself glued to a letter or digit
/// (`SO-13812345678`, `/users/13812345678`), which makes the number part of a
/// longer token.
pub(crate) fn number_may_start(text: &str, at: usize) -> bool {
    let Some(c) = char_before(text, at) else { return true };
    if is_word(c) || matches!(c, '$' | '¥' | '€' | '£' | '#' | '@' | '%' | '&' | '+') {
        return false;
    }
    if matches!(c, '.' | '-' | '/' | '\\') {
        let glued = char_before(text, at - c.len_utf8()).is_some_and(|b| b.is_ascii_alphanumeric());
        return !glued;
    }
    true
}

/// Whether a number-like finding may end at byte `at` (mirror of
/// [`number_may_start`]): not before a letter, digit, `_`, `@` (a phone
/// number used as a mailbox is an email) or `%`, and not before `.`, `-`,
/// `/`, `\` or `:` glued to a letter or digit (`13812345678.txt`).
pub(crate) fn number_may_end(text: &str, at: usize) -> bool {
    let Some(c) = char_after(text, at) else { return true };
    if is_word(c) || matches!(c, '@' | '%') {
        return false;
    }
    if matches!(c, '.' | '-' | '/' | '\\' | ':') {
        let glued = char_after(text, at + c.len_utf8()).is_some_and(|b| b.is_ascii_alphanumeric());
        return !glued;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_is_a_boundary_for_numbers() {
        let text = "手机13812345678。";
        let start = "手机".len();
        assert!(number_may_start(text, start));
        assert!(number_may_end(text, start + 11));
    }

    #[test]
    fn glued_tokens_are_not_boundaries() {
        assert!(!number_may_start("v13812345678", 1));
        assert!(!number_may_start("SO-13812345678", 3));
        assert!(number_may_start("call: -13812345678", 7));
        assert!(!number_may_end("13812345678.txt", 11));
        assert!(number_may_end("13812345678.", 11));
        assert!(!number_may_end("13812345678@qq.com", 11));
    }
}

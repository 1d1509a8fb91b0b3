//! The placeholder format: `[` tag `_` number `]`, e.g. `[EMAIL_1]`,
//! `[API_KEY_12]`.
//!
//! The number is decimal, 1 to `u32::MAX`, without leading zeros; tags are
//! upper case and matched exactly. So `[EMAIL_01]`, `[email_1]` and
//! `[EMAIL_1 ]` are ordinary text. A placeholder holds no `[`, which is what
//! lets the stream restorer hold back only from the last `[` of a chunk.

use crate::Kind;

/// Most digits a number can have (`u32::MAX` has ten).
const MAX_NUMBER_DIGITS: usize = 10;

/// Appends the placeholder for `kind` number `n`.
pub(crate) fn push(out: &mut String, kind: Kind, n: u32) {
    out.push('[');
    out.push_str(kind.placeholder_tag());
    out.push('_');
    out.push_str(&n.to_string());
    out.push(']');
}

/// The placeholder starting at byte `at` (where `text` has a `[`): its kind,
/// number and end.
pub(crate) fn parse_at(text: &str, at: usize) -> Option<(Kind, u32, usize)> {
    let rest = text.get(at..)?.strip_prefix('[')?;
    let (kind, after_tag) = Kind::ALL.into_iter().find_map(|k| Some((k, rest.strip_prefix(k.placeholder_tag())?)))?;
    let digits = after_tag.strip_prefix('_')?;
    let len = digits.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || len > MAX_NUMBER_DIGITS || digits.starts_with('0') || !digits[len..].starts_with(']') {
        return None;
    }
    let n: u32 = digits[..len].parse().ok()?;
    let end = at + 1 + kind.placeholder_tag().len() + 1 + len + 1;
    Some((kind, n, end))
}

/// Whether `tail` (starting with `[`) could still grow into a placeholder:
/// `[`, `[EM`, `[EMAIL_`, `[EMAIL_12` — but not `[EMAIL_0`, `[EMAIL_1x` or a
/// finished `[EMAIL_1]`.
pub(crate) fn is_unfinished(tail: &str) -> bool {
    let Some(rest) = tail.strip_prefix('[') else { return false };
    Kind::ALL.into_iter().any(|kind| {
        let tag = kind.placeholder_tag();
        if tag.starts_with(rest) {
            return true;
        }
        let Some(number) = rest.strip_prefix(tag).and_then(|r| r.strip_prefix('_')) else { return false };
        number.is_empty()
            || (number.len() <= MAX_NUMBER_DIGITS
                && number.bytes().all(|b| b.is_ascii_digit())
                && !number.starts_with('0')
                && number.parse::<u32>().is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse() {
        let mut s = String::from("x ");
        push(&mut s, Kind::ApiKey, 12);
        assert_eq!(s, "x [API_KEY_12]");
        assert_eq!(parse_at(&s, 2), Some((Kind::ApiKey, 12, s.len())));
        assert_eq!(parse_at("[CN_ID_3] …", 0), Some((Kind::CnId, 3, 9)));
        assert_eq!(parse_at("[CARD_4294967295]", 0), Some((Kind::CreditCard, u32::MAX, 17)));
        for not in ["[EMAIL_01]", "[email_1]", "[EMAIL_1 ]", "[EMAIL_]", "[EMAIL1]", "[CARD_4294967296]", "[EMAIL_1"] {
            assert_eq!(parse_at(not, 0), None, "{not}");
        }
    }

    #[test]
    fn unfinished_prefixes() {
        for tail in ["[", "[E", "[EMAIL", "[EMAIL_", "[EMAIL_12", "[API_", "[API_KEY_9", "[CN", "[PASSWORD_4294967295"]
        {
            assert!(is_unfinished(tail), "{tail}");
        }
        for tail in ["[EMAIL_0", "[EMAIL_1]", "[EMAIL_1x", "[X", "[EMAIL_4294967296", "[ EMAIL", "no"] {
            assert!(!is_unfinished(tail), "{tail}");
        }
    }
}

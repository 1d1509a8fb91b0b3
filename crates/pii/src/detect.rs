//! Running every detector over a text in one pass, and settling overlaps.
//!
//! Each byte is looked up once in [`TRIGGERS`]; only bytes that can start a
//! finding wake a detector:
//!
//! | byte | detector |
//! | --- | --- |
//! | `0-9` (first of a digit chunk) | `numbers`: phones, IDs, cards |
//! | `@` | `email` |
//! | `k y A g x -` (the `k` of `sk`/`rk`, the `y` of `ey`, then the bytes around are checked) | `keys` |
//! | `:` `=` `：` and the first byte of `密` / `口` | `assign`: passwords, labelled secrets |
//!
//! Ordinary prose wakes a detector on a small share of its bytes, and each
//! wake-up is a few comparisons; see docs/pii.md for the measured cost.

use std::collections::BTreeMap;

use crate::numbers::Group;
use crate::{assign, email, keys, numbers, Finding};

/// Every finding in `text`, sorted by start and never overlapping.
///
/// Where two detectors claim overlapping text, the longer finding wins, and
/// on equal length the more specific kind (an ID number's checksum beats a
/// card's Luhn digit, which beats a phone's shape). So `password: sk-ant-…`
/// is one API key, and a phone number inside a longer secret is part of it.
pub fn detect(text: &str) -> Vec<Finding> {
    let mut found = Vec::new();
    scan(text, &mut found, false);
    settle_overlaps(found)
}

/// Whether `text` has any finding; stops at the first one.
pub fn contains_pii(text: &str) -> bool {
    let mut found = Vec::new();
    scan(text, &mut found, true);
    !found.is_empty()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Nothing,
    Digit,
    At,
    Key,
    Label,
}

/// What each byte value may start.
const TRIGGERS: [Trigger; 256] = {
    let mut table = [Trigger::Nothing; 256];
    let mut b = b'0';
    while b <= b'9' {
        table[b as usize] = Trigger::Digit;
        b += 1;
    }
    table[b'@' as usize] = Trigger::At;
    // Keys are woken by their second byte where the first is one of the
    // commonest letters: `sk`, `rk` by the `k`, `ey` by the `y`.
    let key_starts = *b"kyAgx-";
    let mut i = 0;
    while i < key_starts.len() {
        table[key_starts[i] as usize] = Trigger::Key;
        i += 1;
    }
    table[b':' as usize] = Trigger::Label;
    table[b'=' as usize] = Trigger::Label;
    // Lead bytes of '：' (U+FF1A), and of '密' (U+5BC6) and '口' (U+53E3).
    table[0xEF] = Trigger::Label;
    table[0xE5] = Trigger::Label;
    table
};

/// One pass over `text`, pushing every detector's findings (which may
/// overlap across detectors, never within one: each resumes after its own
/// last finding). With `first_only`, stops at the first finding.
fn scan(text: &str, out: &mut Vec<Finding>, first_only: bool) {
    let bytes = text.as_bytes();
    let mut groups: Vec<Group> = Vec::new();
    // Per detector: the byte where it may next start.
    let (mut numbers_from, mut email_from, mut key_from, mut label_from) = (0, 0, 0, 0);
    let mut i = 0;
    // The tight skip over bytes that start nothing is most of the cost.
    while let Some(skip) = bytes[i..].iter().position(|&b| TRIGGERS[usize::from(b)] != Trigger::Nothing) {
        i += skip;
        let before = out.len();
        match TRIGGERS[usize::from(bytes[i])] {
            Trigger::Digit if i >= numbers_from => numbers_from = numbers::chunk_at(text, i, &mut groups, out),
            Trigger::At if i >= email_from => {
                if let Some(f) = email::at(text, i, email_from) {
                    email_from = f.end;
                    out.push(f);
                }
            }
            Trigger::Key => {
                let start = keys::start_for(bytes, i);
                if let Some(f) = start.filter(|&s| s >= key_from).and_then(|s| keys::at(text, s)) {
                    key_from = f.end;
                    out.push(f);
                }
            }
            Trigger::Label if i >= label_from && assign::may_start(bytes, i) => {
                if let Some(f) = assign::at(text, i) {
                    label_from = f.end;
                    out.push(f);
                }
            }
            _ => {}
        }
        if first_only && out.len() > before {
            return;
        }
        i += 1;
    }
}

/// Keeps the longest (then most specific) of overlapping findings; each
/// detector's own findings never overlap, so this only settles disputes
/// between detectors.
fn settle_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    if found.len() < 2 {
        return found;
    }
    found.sort_by(|a, b| {
        b.len().cmp(&a.len()).then(b.kind.specificity().cmp(&a.kind.specificity())).then(a.start.cmp(&b.start))
    });
    // Kept findings by start; a candidate overlaps a kept one only if it is
    // the nearest on its left or right.
    let mut kept: BTreeMap<usize, Finding> = BTreeMap::new();
    for f in found {
        let left_clear = kept.range(..=f.start).next_back().is_none_or(|(_, k)| k.end <= f.start);
        let right_clear = kept.range(f.start..).next().is_none_or(|(_, k)| k.start >= f.end);
        if left_clear && right_clear {
            kept.insert(f.start, f);
        }
    }
    kept.into_values().collect()
}

/// The text of every `kind` finding, for the detectors' unit tests.
#[cfg(test)]
pub(crate) fn found(text: &str, kind: crate::Kind) -> Vec<&str> {
    detect(text).iter().filter(|f| f.kind == kind).map(|f| &text[f.range()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn f(kind: Kind, start: usize, end: usize) -> Finding {
        Finding { kind, start, end }
    }

    #[test]
    fn longer_then_more_specific_wins() {
        let found = vec![f(Kind::Phone, 5, 16), f(Kind::ApiKey, 0, 40), f(Kind::Email, 50, 60)];
        assert_eq!(settle_overlaps(found), [f(Kind::ApiKey, 0, 40), f(Kind::Email, 50, 60)]);
        let tie = vec![f(Kind::Password, 3, 20), f(Kind::ApiKey, 3, 20)];
        assert_eq!(settle_overlaps(tie), [f(Kind::ApiKey, 3, 20)]);
        let apart = vec![f(Kind::Phone, 10, 20), f(Kind::Email, 0, 10), f(Kind::Email, 20, 30)];
        assert_eq!(settle_overlaps(apart), [f(Kind::Email, 0, 10), f(Kind::Phone, 10, 20), f(Kind::Email, 20, 30)]);
    }

    #[test]
    fn secret_label_and_value_are_one_finding() {
        let text = "OPENAI_API_KEY=sk-proj-4fGh7JkL9mNp2QrS5tUv8WxY1zAb3CdE6fGh9IjK";
        let found = detect(text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, Kind::ApiKey);
        assert_eq!(&text[found[0].range()], &text[15..]);
    }

    #[test]
    fn contains_pii_agrees_with_detect() {
        for text in ["", "hello", "mail bob@example.com", "call 138 1234 5678", "password: hunter22", "v1.2.3"] {
            assert_eq!(contains_pii(text), !detect(text).is_empty(), "{text}");
        }
    }
}

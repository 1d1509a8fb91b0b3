//! Number-like findings — phones, Chinese resident IDs, payment cards — found
//! in one pass over the digits.
//!
//! The text is cut into *chunks*: runs of digit groups joined by short
//! separators (up to three of ` - . / : , ( )`), so `2024-01-15 10:30`,
//! `+1 (415) 555-2671` and `4111 1111 1111 1111` are one chunk each. A chunk
//! with fewer than ten digits in all is skipped at once; that is the common
//! case and costs one look at each byte.
//!
//! Inside a chunk, every *window* of consecutive whole groups (up to five,
//! the largest first) is offered to the ID, card and phone rules, in that
//! order. A window is never cut out of a digit run, and its edges must be
//! soft: a separator containing a space (or a lone `,`), or a clean text
//! boundary ([`number_may_start`], [`number_may_end`]). So `138-1234-5678`
//! matches, while the same digits inside `2024-138-1234-5678-01` or
//! `10.415.555.2671` do not.

use crate::boundary::{number_may_end, number_may_start};
use crate::{card, cn_id, phone, Finding, Kind};

/// Fewest digits of any number kind (a NANP number without country code).
const MIN_DIGITS: usize = 10;
/// Most digits of any number kind (`0086` + 11, a 19-digit card + slack).
const MAX_DIGITS: usize = 24;
/// Most groups in one finding: `4000 1234 5678 9010 123` has five.
const MAX_GROUPS: usize = 5;
/// Longest separator between two groups of one chunk: `) `, ` - `.
const MAX_SEPARATOR: usize = 3;

/// One run of ASCII digits: `text[start..end]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Group {
    pub start: usize,
    pub end: usize,
}

/// Consecutive groups of one chunk, as offered to a rule.
pub(crate) struct Window<'a> {
    pub text: &'a str,
    pub groups: &'a [Group],
}

impl<'a> Window<'a> {
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// The digits of group `i` (the caller keeps `i < len()`).
    pub fn digits(&self, i: usize) -> &'a str {
        let g = self.groups[i];
        &self.text[g.start..g.end]
    }

    /// The separator between group `i` and group `i + 1`.
    pub fn sep(&self, i: usize) -> &'a str {
        &self.text[self.groups[i].end..self.groups[i + 1].start]
    }

    /// Lengths of the groups, for matching shapes like `[3, 4, 4]`.
    pub fn shape_is(&self, lengths: &[usize]) -> bool {
        self.groups.len() == lengths.len() && self.groups.iter().zip(lengths).all(|(g, &n)| g.end - g.start == n)
    }

    /// Whether every separator in the window is the same and one of `allowed`.
    pub fn uniform_separator(&self, allowed: &[&str]) -> bool {
        if self.len() < 2 {
            return true;
        }
        let first = self.sep(0);
        allowed.contains(&first) && (1..self.len() - 1).all(|i| self.sep(i) == first)
    }

    /// The window from group `from` on.
    pub fn tail(&self, from: usize) -> Window<'a> {
        Window { text: self.text, groups: &self.groups[from..] }
    }

    pub fn start(&self) -> usize {
        self.groups.first().map_or(0, |g| g.start)
    }

    pub fn end(&self) -> usize {
        self.groups.last().map_or(0, |g| g.end)
    }

    /// The char just before the first digit (`+`, `(` …).
    pub fn char_before(&self) -> Option<char> {
        crate::boundary::char_before(self.text, self.start())
    }

    /// All digits of the window, separators dropped.
    pub fn all_digits(&self) -> Digits {
        let mut out = Digits { bytes: [0; MAX_DIGITS], len: 0 };
        for g in self.groups {
            for &b in &self.text.as_bytes()[g.start..g.end] {
                if out.len < MAX_DIGITS {
                    out.bytes[out.len] = b;
                }
                out.len += 1;
            }
        }
        out
    }
}

/// Up to [`MAX_DIGITS`] ASCII digits on the stack; `len` counts all digits
/// seen, so a longer window shows as `len > MAX_DIGITS` and matches nothing.
pub(crate) struct Digits {
    bytes: [u8; MAX_DIGITS],
    pub len: usize,
}

impl Digits {
    /// The digits, or nothing when there were too many.
    pub fn get(&self) -> &[u8] {
        if self.len > MAX_DIGITS {
            &[]
        } else {
            &self.bytes[..self.len]
        }
    }
}

/// Looks at the chunk whose first digit is at byte `at`, pushing what it
/// holds; returns the chunk's end. `groups` is scratch space, reused so a
/// text costs at most one allocation here.
pub(crate) fn chunk_at(text: &str, at: usize, groups: &mut Vec<Group>, out: &mut Vec<Finding>) -> usize {
    let bytes = text.as_bytes();
    let mut digits = 0;
    let end = walk_chunk(bytes, at, |g| digits += g.end - g.start);
    if digits >= MIN_DIGITS {
        groups.clear();
        walk_chunk(bytes, at, |g| groups.push(g));
        scan_chunk(text, groups, out);
    }
    end
}

fn is_separator_byte(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'/' | b':' | b',' | b'(' | b')')
}

/// Walks the chunk whose first digit is at `from`, calling `on_group` for
/// each digit group; returns the end of the last group.
fn walk_chunk(bytes: &[u8], from: usize, mut on_group: impl FnMut(Group)) -> usize {
    let mut pos = from;
    loop {
        let start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        on_group(Group { start, end: pos });
        let group_end = pos;
        let mut next = pos;
        while next < bytes.len() && next - group_end < MAX_SEPARATOR && is_separator_byte(bytes[next]) {
            next += 1;
        }
        let joined = next > group_end && next < bytes.len() && bytes[next].is_ascii_digit();
        if !joined {
            return group_end;
        }
        pos = next;
    }
}

type Rule = fn(&Window) -> Option<(usize, usize)>;

/// The rules in the order they are tried on a window: the most specific first.
const RULES: [(Kind, Rule); 3] =
    [(Kind::CnId, cn_id::check), (Kind::CreditCard, card::check), (Kind::Phone, phone::check)];

fn scan_chunk(text: &str, groups: &[Group], out: &mut Vec<Finding>) {
    let mut first = 0;
    while first < groups.len() {
        let last_max = (first + MAX_GROUPS).min(groups.len()) - 1;
        let mut matched = None;
        'windows: for last in (first..=last_max).rev() {
            let window = Window { text, groups: &groups[first..=last] };
            let digits = window.all_digits().len;
            if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) {
                continue;
            }
            for (kind, rule) in RULES {
                if let Some((start, end)) = rule(&window) {
                    if edges_are_soft(text, groups, first, last, start, end) {
                        matched = Some((Finding { kind, start, end }, last));
                        break 'windows;
                    }
                }
            }
        }
        match matched {
            Some((finding, last)) => {
                out.push(finding);
                first = last + 1;
            }
            None => first += 1,
        }
    }
}

/// Whether the finding `start..end`, made of groups `first..=last` of the
/// chunk, stands apart from its neighbours.
fn edges_are_soft(text: &str, groups: &[Group], first: usize, last: usize, start: usize, end: usize) -> bool {
    let left = if first == 0 {
        number_may_start(text, start)
    } else {
        text.get(groups[first - 1].end..start).is_some_and(is_soft_separator)
    };
    let right = if last + 1 == groups.len() {
        number_may_end(text, end)
    } else {
        text.get(end..groups[last + 1].start).is_some_and(is_soft_separator)
    };
    left && right
}

/// A separator that parts two numbers rather than joining one: it has a
/// space (`2024-01-15 13812345678`) or is a lone comma (a list:
/// `13812345678,13987654321`; thousands never leave a 10-digit group).
fn is_soft_separator(sep: &str) -> bool {
    sep.contains(' ') || sep == ","
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(text: &str) -> Vec<(Kind, &str)> {
        let number_kinds = [Kind::Phone, Kind::CnId, Kind::CreditCard];
        crate::detect(text)
            .iter()
            .filter(|f| number_kinds.contains(&f.kind))
            .map(|f| (f.kind, &text[f.range()]))
            .collect()
    }

    #[test]
    fn chunks_and_windows() {
        assert_eq!(numbers("2024-01-15 13812345678"), [(Kind::Phone, "13812345678")]);
        assert_eq!(numbers("13812345678,13987654321"), [(Kind::Phone, "13812345678"), (Kind::Phone, "13987654321")]);
        assert_eq!(numbers("2024-138-1234-5678-01"), []);
        assert_eq!(numbers("10.415.555.2671"), []);
        assert_eq!(numbers("1 2 3 4 5 6 7 8 9 10 11 12 13"), []);
        assert_eq!(numbers("4111 1111 1111 1111 exp 12/29"), [(Kind::CreditCard, "4111 1111 1111 1111")]);
    }

    #[test]
    fn long_runs_stay_linear() {
        let text = "1 ".repeat(100_000);
        assert_eq!(numbers(&text), []);
    }
}

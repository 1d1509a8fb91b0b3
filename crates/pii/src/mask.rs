//! Masking one request: findings become numbered placeholders.
//!
//! Numbers count per kind and per request from 1, in the order findings are
//! met: the first email of the request is `[EMAIL_1]`, the second distinct
//! one `[EMAIL_2]`, and the same original text gets the same placeholder in
//! every text of the request (so the model can tell "the same address" from
//! "another address").
//!
//! ## Placeholders already in the client's text
//! A client may send text that already holds `[EMAIL_1]` — a template, or an
//! earlier answer that was not restored. Two rules keep every placeholder
//! the provider sees unambiguous, and `restore(mask(x)) == x`:
//!
//! 1. A placeholder-shaped literal *reserves* its number: no finding of the
//!    request is given that number later, and the literal is sent unchanged
//!    (it is restored as itself, i.e. left alone).
//! 2. A literal equal to a placeholder *already given* to a finding (it can
//!    only come in a later text) is itself replaced by a fresh placeholder
//!    whose original is the literal text; restoring that one gives back the
//!    literal. It is not counted as a finding.
//!
//! Rule 2 renumbers client text only when needed. To avoid it altogether,
//! call [`Masker::reserve`] on every text of the request before masking any.

use std::collections::{HashMap, HashSet};

use crate::restore::Restorer;
use crate::{detect, placeholder, Finding, Kind};

const KINDS: usize = Kind::ALL.len();

/// One request's masking state. See the module docs for numbering and for
/// placeholders that the client's text already holds.
///
/// `Debug` shows counts only: the originals are what must not reach a log.
#[derive(Default)]
pub struct Masker {
    /// Per kind: original text → its number.
    numbers: [HashMap<String, u32>; KINDS],
    /// Per kind: number → original text, for the restorer.
    originals: [HashMap<u32, String>; KINDS],
    /// Per kind: numbers seen as literal placeholders in the client's text.
    reserved: [HashSet<u32>; KINDS],
    /// Per kind: the next number to try.
    next: [u32; KINDS],
    /// Per kind: findings masked (each occurrence counts).
    counts: [usize; KINDS],
}

/// A span of the text that `mask` replaces with `[TAG_number]`.
struct Replacement {
    start: usize,
    end: usize,
    kind: Kind,
    /// Whether this is a real finding (counted) or a renumbered literal.
    finding: bool,
}

impl Masker {
    /// An empty masker, for one request.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves the numbers of placeholder-shaped text in `text`, so that
    /// masking gives them to no finding. Optional; see the module docs.
    pub fn reserve(&mut self, text: &str) {
        for (kind, n, _, _) in literals(text) {
            if !self.originals[kind.index()].contains_key(&n) {
                self.reserved[kind.index()].insert(n);
            }
        }
    }

    /// Masks one text (a message's content). Returns `None` when nothing in
    /// it needs replacing; that path does not allocate.
    pub fn mask(&mut self, text: &str) -> Option<String> {
        let findings = detect(text);
        let mut replacements: Vec<Replacement> = Vec::new();

        // Literals first, so this text's own literals reserve their numbers
        // before its findings are numbered. A literal inside or across a
        // finding is replaced with the finding and needs nothing.
        for (kind, n, start, end) in literals(text) {
            let inside_finding = findings.iter().any(|f| f.start < end && start < f.end);
            if inside_finding {
                continue;
            }
            if self.originals[kind.index()].contains_key(&n) {
                replacements.push(Replacement { start, end, kind, finding: false });
            } else {
                self.reserved[kind.index()].insert(n);
            }
        }
        if findings.is_empty() && replacements.is_empty() {
            return None;
        }
        replacements.extend(findings.iter().map(|f: &Finding| Replacement {
            start: f.start,
            end: f.end,
            kind: f.kind,
            finding: true,
        }));
        replacements.sort_by_key(|r| r.start);

        let mut out = String::with_capacity(text.len() + 16 * replacements.len());
        let mut copied = 0;
        for r in &replacements {
            out.push_str(&text[copied..r.start]);
            let n = self.number_for(r.kind, &text[r.start..r.end]);
            placeholder::push(&mut out, r.kind, n);
            if r.finding {
                self.counts[r.kind.index()] += 1;
            }
            copied = r.end;
        }
        out.push_str(&text[copied..]);
        Some(out)
    }

    /// Findings masked so far, every occurrence counted.
    pub fn findings(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Findings masked so far per kind, for metrics: kinds with none are
    /// left out; `Kind` order.
    pub fn counts(&self) -> impl Iterator<Item = (Kind, usize)> + '_ {
        Kind::ALL.into_iter().map(|k| (k, self.counts[k.index()])).filter(|(_, n)| *n > 0)
    }

    /// What the answer needs to put originals back.
    pub fn into_restorer(self) -> Restorer {
        Restorer::new(self.originals)
    }

    /// The number of `original`, giving it the next free one if it has none.
    fn number_for(&mut self, kind: Kind, original: &str) -> u32 {
        let k = kind.index();
        if let Some(&n) = self.numbers[k].get(original) {
            return n;
        }
        let mut n = self.next[k].max(1);
        // Bounded by the number of reserved literals, which the texts hold.
        // Past u32::MAX numbers (four billion findings) they repeat.
        while self.reserved[k].contains(&n) {
            match n.checked_add(1) {
                Some(next) => n = next,
                None => break,
            }
        }
        self.next[k] = n.saturating_add(1);
        self.numbers[k].insert(original.to_owned(), n);
        self.originals[k].insert(n, original.to_owned());
        n
    }
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masker").field("counts", &self.counts().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

/// Placeholder-shaped substrings of `text`: kind, number, start, end.
fn literals(text: &str) -> impl Iterator<Item = (Kind, u32, usize, usize)> + '_ {
    text.match_indices('[').filter_map(|(at, _)| {
        let (kind, n, end) = placeholder::parse_at(text, at)?;
        Some((kind, n, at, end))
    })
}

#[cfg(test)]
mod tests;

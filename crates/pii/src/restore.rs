//! Putting originals back into the answer, whole or streamed.
//!
//! Only placeholders this request gave out are replaced; anything else that
//! looks like one (`[EMAIL_99]`, `[EMAIL_01]`, a literal the client sent) is
//! left as it is. Replacement is a single left-to-right pass: an original
//! that itself reads like a placeholder is never expanded again.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::{placeholder, Kind};

const KINDS: usize = Kind::ALL.len();

/// Puts originals back into answer text.
///
/// `Debug` shows how many placeholders it knows, never the originals.
#[derive(Default, Clone)]
pub struct Restorer {
    /// Per kind: placeholder number → original text.
    originals: [HashMap<u32, String>; KINDS],
}

impl Restorer {
    pub(crate) fn new(originals: [HashMap<u32, String>; KINDS]) -> Self {
        Self { originals }
    }

    /// Whether there is nothing to restore (no finding was masked).
    pub fn is_empty(&self) -> bool {
        self.originals.iter().all(HashMap::is_empty)
    }

    /// The original behind a placeholder, if this request gave it out.
    pub fn original(&self, kind: Kind, n: u32) -> Option<&str> {
        self.originals[kind.index()].get(&n).map(String::as_str)
    }

    /// `text` with every known placeholder replaced by its original;
    /// borrowed when there was none.
    pub fn restore<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out: Option<String> = None;
        let mut copied = 0;
        for (at, _) in text.match_indices('[') {
            if at < copied {
                continue;
            }
            let Some((kind, n, end)) = placeholder::parse_at(text, at) else { continue };
            let Some(original) = self.original(kind, n) else { continue };
            let out = out.get_or_insert_with(|| String::with_capacity(text.len() + 64));
            out.push_str(&text[copied..at]);
            out.push_str(original);
            copied = end;
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut out) => {
                out.push_str(&text[copied..]);
                Cow::Owned(out)
            }
        }
    }

    /// A restorer for an answer that arrives in chunks.
    pub fn stream(&self) -> StreamRestorer<'_> {
        StreamRestorer { restorer: self, pending: String::new() }
    }
}

impl std::fmt::Debug for Restorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let placeholders: usize = self.originals.iter().map(HashMap::len).sum();
        f.debug_struct("Restorer").field("placeholders", &placeholders).finish()
    }
}

/// Restores a streamed answer chunk by chunk.
///
/// Text goes out as soon as it cannot be part of a placeholder: only an
/// unfinished placeholder at the very end of a chunk (`[EMA`, `[EMAIL_1`) is
/// held back — at most 20 bytes — until the next chunk decides it. The
/// concatenated output equals [`Restorer::restore`] of the concatenated
/// input, however the input was cut.
#[derive(Debug)]
pub struct StreamRestorer<'r> {
    restorer: &'r Restorer,
    pending: String,
}

impl StreamRestorer<'_> {
    /// Takes the next chunk; returns the text that can go out now (possibly
    /// empty).
    pub fn push(&mut self, chunk: &str) -> String {
        if self.restorer.is_empty() {
            return chunk.to_owned();
        }
        let mut buffer = std::mem::take(&mut self.pending);
        buffer.push_str(chunk);
        let hold = held_back_from(&buffer);
        let out = self.restorer.restore(&buffer[..hold]).into_owned();
        self.pending = buffer[hold..].to_owned();
        out
    }

    /// The end of the answer: whatever was held back goes out as it is (an
    /// unfinished placeholder is just text).
    pub fn finish(self) -> String {
        self.pending
    }
}

/// Where the held-back tail of `buffer` starts: at its last `[` if what
/// follows could still become a placeholder, else at the end. Only the last
/// `[` matters: a placeholder holds no `[`, so one starting earlier would
/// already be finished or impossible.
fn held_back_from(buffer: &str) -> usize {
    match buffer.rfind('[') {
        Some(at) if placeholder::is_unfinished(&buffer[at..]) => at,
        _ => buffer.len(),
    }
}

#[cfg(test)]
mod tests;

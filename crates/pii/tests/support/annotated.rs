//! The corpus annotation format, shared by the corpus test and the bench.
//!
//! `crates/pii/corpus/pii.txt` writes each expected finding inline as
//! `{{kind:text}}`, where `kind` is a [`Kind::as_str`] name: stripping the
//! braces and the `kind:` gives the input text, and their positions give the
//! expected findings. `{{` not followed by a known kind and `:` is ordinary
//! text. Lines starting with `%%` are comments; blank lines are skipped.

use switchyard_pii::{Finding, Kind};

/// One corpus line: the input text and what must be found in it.
pub struct Annotated {
    pub text: String,
    pub expected: Vec<Finding>,
}

/// The lines of a corpus file that are not comments or blank.
pub fn corpus_lines(corpus: &str) -> impl Iterator<Item = &str> {
    corpus.lines().filter(|line| !line.trim().is_empty() && !line.starts_with("%%"))
}

/// Strips the annotations from one line.
pub fn parse(line: &str) -> Result<Annotated, String> {
    let mut text = String::with_capacity(line.len());
    let mut expected = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find("{{") {
        text.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let kind = after.find(':').and_then(|colon| Some((Kind::from_name(&after[..colon])?, colon)));
        let Some((kind, colon)) = kind else {
            text.push_str("{{");
            rest = after;
            continue;
        };
        let value_and_more = &after[colon + 1..];
        let close = value_and_more.find("}}").ok_or_else(|| format!("unclosed {{{{ in: {line}"))?;
        let start = text.len();
        text.push_str(&value_and_more[..close]);
        expected.push(Finding { kind, start, end: text.len() });
        rest = &value_and_more[close + 2..];
    }
    text.push_str(rest);
    Ok(Annotated { text, expected })
}

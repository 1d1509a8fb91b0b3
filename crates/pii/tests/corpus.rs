//! Detection measured on the two corpora, and masking round trips on every
//! corpus line.
//!
//! `cargo nextest run -p switchyard-pii --no-capture corpus` prints the
//! precision / recall table that docs/pii.md quotes.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashSet};

use support::annotated::{corpus_lines, parse, Annotated};
use switchyard_pii::{detect, Finding, Kind, Masker};

const PII: &str = include_str!("../corpus/pii.txt");
const ORDINARY: &str = include_str!("../corpus/ordinary.txt");

fn pii_lines() -> Vec<Annotated> {
    corpus_lines(PII).map(|line| parse(line).unwrap()).collect()
}

fn ordinary_lines() -> Vec<&'static str> {
    corpus_lines(ORDINARY).collect()
}

#[derive(Default)]
struct Tally {
    expected: usize,
    true_positives: usize,
    false_positives: usize,
    false_negatives: usize,
}

impl Tally {
    fn precision(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_positives)
    }
    fn recall(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_negatives)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn describe(text: &str, f: &Finding) -> String {
    format!("{} {:?}", f.kind.as_str(), &text[f.range()])
}

#[test]
fn corpora_are_big_enough() {
    assert!(pii_lines().len() >= 150, "pii.txt has {} lines", pii_lines().len());
    assert!(ordinary_lines().len() >= 200, "ordinary.txt has {} lines", ordinary_lines().len());
    let kinds: HashSet<Kind> = pii_lines().iter().flat_map(|l| l.expected.iter().map(|f| f.kind)).collect();
    assert_eq!(kinds.len(), Kind::ALL.len(), "every kind is in pii.txt");
    for line in pii_lines() {
        assert!(!line.expected.is_empty(), "a pii.txt line without a finding: {}", line.text);
    }
}

#[test]
fn precision_and_recall() {
    let mut tallies: BTreeMap<Kind, Tally> = Kind::ALL.into_iter().map(|k| (k, Tally::default())).collect();
    let mut mistakes = Vec::new();

    for line in pii_lines() {
        let found = detect(&line.text);
        let expected: HashSet<Finding> = line.expected.iter().copied().collect();
        let found_set: HashSet<Finding> = found.iter().copied().collect();
        for f in &line.expected {
            let tally = tallies.entry(f.kind).or_default();
            tally.expected += 1;
            if found_set.contains(f) {
                tally.true_positives += 1;
            } else {
                tally.false_negatives += 1;
                mistakes.push(format!("missed {} in: {}", describe(&line.text, f), line.text));
            }
        }
        for f in found.iter().filter(|f| !expected.contains(f)) {
            tallies.entry(f.kind).or_default().false_positives += 1;
            mistakes.push(format!("unexpected {} in: {}", describe(&line.text, f), line.text));
        }
    }
    for text in ordinary_lines() {
        for f in detect(text) {
            tallies.entry(f.kind).or_default().false_positives += 1;
            mistakes.push(format!("ordinary text gave {} in: {}", describe(text, &f), text));
        }
    }

    let mut all = Tally::default();
    println!("| kind | expected | found correctly | false positives | missed | precision | recall |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (kind, t) in &tallies {
        println!(
            "| {} | {} | {} | {} | {} | {:.3} | {:.3} |",
            kind.as_str(),
            t.expected,
            t.true_positives,
            t.false_positives,
            t.false_negatives,
            t.precision(),
            t.recall()
        );
        all.expected += t.expected;
        all.true_positives += t.true_positives;
        all.false_positives += t.false_positives;
        all.false_negatives += t.false_negatives;
    }
    println!(
        "| **all** | {} | {} | {} | {} | {:.3} | {:.3} |",
        all.expected,
        all.true_positives,
        all.false_positives,
        all.false_negatives,
        all.precision(),
        all.recall()
    );
    println!("({} annotated lines, {} ordinary lines)", corpus_lines(PII).count(), corpus_lines(ORDINARY).count());
    assert!(mistakes.is_empty(), "{} mistakes:\n{}", mistakes.len(), mistakes.join("\n"));
}

/// Restores `answer` fed in two chunks cut at byte `cut`.
fn streamed_in_two(restorer: &switchyard_pii::Restorer, answer: &str, cut: usize) -> String {
    let mut stream = restorer.stream();
    let mut out = stream.push(&answer[..cut]);
    out.push_str(&stream.push(&answer[cut..]));
    out.push_str(&stream.finish());
    out
}

#[test]
fn masking_round_trips_on_every_line() {
    let lines: Vec<(String, Vec<Finding>)> = pii_lines()
        .into_iter()
        .map(|l| (l.text, l.expected))
        .chain(ordinary_lines().into_iter().map(|t| (t.to_owned(), Vec::new())))
        .collect();
    for (text, expected) in &lines {
        let mut masker = Masker::new();
        let masked = masker.mask(text);
        assert_eq!(masked.is_some(), !expected.is_empty(), "{text}");
        let masked = masked.unwrap_or_else(|| text.clone());
        for f in expected {
            let original = &text[f.range()];
            assert!(!masked.contains(original), "{original:?} left in {masked:?}");
        }
        assert_eq!(masker.findings(), expected.len(), "{text}");

        let restorer = masker.into_restorer();
        assert_eq!(restorer.restore(&masked), *text);
        for cut in (0..=masked.len()).filter(|&i| masked.is_char_boundary(i)) {
            assert_eq!(streamed_in_two(&restorer, &masked, cut), *text, "cut at {cut} of {masked:?}");
        }
        let mut stream = restorer.stream();
        let mut by_char: String = masked.chars().map(|c| stream.push(c.encode_utf8(&mut [0; 4]))).collect();
        by_char.push_str(&stream.finish());
        assert_eq!(by_char, *text);
    }
}

#[test]
fn one_request_over_the_whole_corpus() {
    // All lines as the messages of one request: numbers are shared, and
    // every message still restores to itself.
    let lines = pii_lines();
    let mut masker = Masker::new();
    let masked: Vec<String> = lines.iter().map(|l| masker.mask(&l.text).unwrap()).collect();
    let total: usize = lines.iter().map(|l| l.expected.len()).sum();
    assert_eq!(masker.findings(), total);
    let per_kind: usize = masker.counts().map(|(_, n)| n).sum();
    assert_eq!(per_kind, total);
    let restorer = masker.into_restorer();
    for (line, masked) in lines.iter().zip(&masked) {
        assert_eq!(restorer.restore(masked), line.text);
    }
    let whole_answer = masked.join("\n");
    let whole_text: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(restorer.restore(&whole_answer), whole_text.join("\n"));
}

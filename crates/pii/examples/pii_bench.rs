//! Cost of detection and masking, in nanoseconds per KiB of text.
//!
//! `cargo run --release -p switchyard-pii --example pii_bench`
//!
//! Texts: plain chat prose without findings (the common case on the request
//! path), the adversarial `corpus/ordinary.txt` (no findings, but full of
//! digits, `@`, `:` and `=`), and `corpus/pii.txt` with its annotations
//! stripped (a finding every 50 bytes or so).

#[path = "../tests/support/annotated.rs"]
mod annotated;

use std::hint::black_box;
use std::time::{Duration, Instant};

use annotated::{corpus_lines, parse};
use switchyard_pii::{contains_pii, detect, Masker};

const PROSE: &str = "You are a helpful assistant. Summarise the following meeting notes in three bullet points \
and suggest next steps. The team discussed the roadmap for the next quarter: the migration to the new storage \
engine is on track, the mobile release slipped by a week because of review feedback, and hiring for the platform \
team continues. 请用中文回答，并保持简洁。会议讨论了下一季度的路线图：存储引擎迁移按计划进行，移动端发布推迟一周，\
平台团队继续招聘。Please keep the tone neutral and avoid jargon; the audience is the whole company. ";

/// Runs `f` over `text` repeatedly for about `budget`; returns ns per KiB.
fn ns_per_kib(text: &str, budget: Duration, mut f: impl FnMut(&str)) -> f64 {
    // Warm up, then size the batch so the clock is read rarely.
    f(text);
    let mut iterations: u64 = 0;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..16 {
            f(black_box(text));
        }
        iterations += 16;
    }
    let nanos = start.elapsed().as_nanos() as f64;
    nanos / iterations as f64 / (text.len() as f64 / 1024.0)
}

fn main() {
    let budget = Duration::from_millis(700);
    let prose = PROSE.repeat(16);
    let ordinary: String = corpus_lines(include_str!("../corpus/ordinary.txt")).collect::<Vec<_>>().join("\n");
    let annotated: Vec<_> =
        corpus_lines(include_str!("../corpus/pii.txt")).filter_map(|line| parse(line).ok()).collect();
    let expected: usize = annotated.iter().map(|a| a.expected.len()).sum();
    let pii = annotated.iter().map(|a| a.text.as_str()).collect::<Vec<_>>().join("\n");
    assert_eq!(detect(&prose).len(), 0, "prose must have no findings");
    assert_eq!(detect(&ordinary).len(), 0, "ordinary.txt must have no findings");
    assert_eq!(detect(&pii).len(), expected, "pii.txt must give its annotated findings");

    println!("| text | size | findings | detect ns/KiB | contains_pii ns/KiB | mask ns/KiB |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, text) in
        [("chat prose, no findings", &prose), ("ordinary.txt, no findings", &ordinary), ("pii.txt", &pii)]
    {
        let findings = detect(text).len();
        let detect_cost = ns_per_kib(text, budget, |t| {
            black_box(detect(t));
        });
        let contains_cost = ns_per_kib(text, budget, |t| {
            black_box(contains_pii(t));
        });
        // One request masking the text line by line, as a gateway masks
        // message by message.
        let mask_cost = ns_per_kib(text, budget, |t| {
            let mut masker = Masker::new();
            for line in t.lines() {
                black_box(masker.mask(line));
            }
            black_box(masker.into_restorer());
        });
        println!(
            "| {name} | {:.1} KiB | {findings} | {detect_cost:.0} | {contains_cost:.0} | {mask_cost:.0} |",
            text.len() as f64 / 1024.0
        );
    }
}

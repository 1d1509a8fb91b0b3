//! `--prompt-tokens`: prompt lengths drawn from a seeded distribution, and
//! prompts of about that many tokens.
//!
//! A prompt is N words drawn from [`WORDS`]: common three-letter English
//! words, each one token for OpenAI's o200k and cl100k tokenizers (with its
//! leading space) and four characters with it, so the chars ÷ 4 estimate
//! many servers use gives N too.

use std::str::FromStr;

/// Longest prompt accepted, in tokens.
pub(crate) const MAX_TOKENS: u32 = 1_000_000;
/// Distinct bodies generated for a run (fewer for long prompts, see [`pool_size`]).
const MAX_POOL: usize = 256;
/// Memory budget for the generated bodies.
const POOL_BYTES: usize = 64 << 20;

/// Each one token with its leading space, in o200k and cl100k.
const WORDS: [&str; 64] = [
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was", "one", "our", "out",
    "day", "get", "has", "him", "his", "how", "man", "new", "now", "old", "see", "two", "way", "who", "did", "its",
    "let", "put", "say", "she", "too", "use", "big", "end", "far", "few", "got", "may", "own", "run", "set", "top",
    "yes", "yet", "red", "sun", "sea", "air", "art", "car", "cat", "dog", "eye", "job", "law", "map", "oil", "sky",
];

/// A prompt-length distribution, in tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PromptTokens {
    /// `N`: every prompt N tokens.
    Fixed(u32),
    /// `uniform:A-B`: uniform over A..=B.
    Uniform(u32, u32),
    /// `normal:MEAN,SD`: normal, rounded, clamped to 1..=1 000 000.
    Normal { mean: f64, sd: f64 },
}

impl FromStr for PromptTokens {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let count = |s: &str| -> Result<u32, String> {
            match s.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_TOKENS).contains(&n) => Ok(n),
                _ => Err(format!("expected a whole number of tokens from 1 to {MAX_TOKENS}, got {s:?}")),
            }
        };
        let number = |s: &str| -> Result<f64, String> {
            match s.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(format!("expected a non-negative number, got {s:?}")),
            }
        };
        if let Some(range) = spec.strip_prefix("uniform:") {
            let (a, b) = range.split_once('-').ok_or_else(|| format!("expected uniform:A-B, got {spec:?}"))?;
            let (a, b) = (count(a)?, count(b)?);
            if a > b {
                return Err(format!("uniform:A-B needs A <= B, got {spec:?}"));
            }
            Ok(Self::Uniform(a, b))
        } else if let Some(params) = spec.strip_prefix("normal:") {
            let (mean, sd) = params.split_once(',').ok_or_else(|| format!("expected normal:MEAN,SD, got {spec:?}"))?;
            let (mean, sd) = (number(mean)?, number(sd)?);
            if mean > f64::from(MAX_TOKENS) {
                return Err(format!("normal:MEAN,SD needs MEAN <= {MAX_TOKENS}, got {spec:?}"));
            }
            Ok(Self::Normal { mean, sd })
        } else {
            count(spec).map(Self::Fixed).map_err(|e| format!("{e} (or uniform:A-B, normal:MEAN,SD)"))
        }
    }
}

impl std::fmt::Display for PromptTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fixed(n) => write!(f, "{n}"),
            Self::Uniform(a, b) => write!(f, "uniform:{a}-{b}"),
            Self::Normal { mean, sd } => write!(f, "normal:{mean},{sd}"),
        }
    }
}

impl PromptTokens {
    /// One length.
    pub(crate) fn sample(&self, rng: &mut fastrand::Rng) -> u32 {
        match *self {
            Self::Fixed(n) => n,
            Self::Uniform(a, b) => rng.u32(a..=b),
            Self::Normal { mean, sd } => {
                // Box–Muller; 1 - f64() lies in (0, 1], so ln is finite.
                let (u1, u2) = (1.0 - rng.f64(), rng.f64());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                (mean + sd * z).round().clamp(1.0, f64::from(MAX_TOKENS)) as u32
            }
        }
    }

    fn mean(&self) -> f64 {
        match *self {
            Self::Fixed(n) => f64::from(n),
            Self::Uniform(a, b) => (f64::from(a) + f64::from(b)) / 2.0,
            Self::Normal { mean, .. } => mean.max(1.0),
        }
    }
}

/// `words` words from [`WORDS`], separated by single spaces.
pub(crate) fn prompt(words: u32, rng: &mut fastrand::Rng) -> String {
    let mut out = String::with_capacity(words as usize * 4);
    for i in 0..words {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(WORDS[rng.usize(..WORDS.len())]);
    }
    out
}

/// How many distinct prompts to generate: up to 256, fewer when they are
/// long, so the bodies stay within about 64 MiB.
pub(crate) fn pool_size(spec: &PromptTokens) -> usize {
    let bytes_each = (spec.mean() * 4.0).max(1.0) as usize;
    (POOL_BYTES / bytes_each).clamp(1, MAX_POOL)
}

/// The prompts of a run: request k uses `prompts[k % len]`. The same seed
/// gives the same prompts in the same order.
pub(crate) fn prompts(spec: &PromptTokens, seed: u64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..pool_size(spec))
        .map(|_| {
            let n = spec.sample(&mut rng);
            prompt(n, &mut rng)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> PromptTokens {
        match s.parse() {
            Ok(p) => p,
            Err(e) => unreachable!("{s}: {e}"),
        }
    }

    #[test]
    fn parsing() {
        assert_eq!(parse("128"), PromptTokens::Fixed(128));
        assert_eq!(parse("uniform:10-20"), PromptTokens::Uniform(10, 20));
        assert_eq!(parse("normal:500,50.5"), PromptTokens::Normal { mean: 500.0, sd: 50.5 });
        for bad in ["0", "-1", "x", "uniform:20-10", "uniform:5", "normal:5", "normal:-5,1", "normal:5,nan", "2000000"]
        {
            assert!(bad.parse::<PromptTokens>().is_err(), "{bad}");
        }
        for spec in ["128", "uniform:10-20", "normal:500,50.5"] {
            assert_eq!(parse(spec).to_string(), spec);
        }
    }

    #[test]
    fn uniform_stays_in_range_and_covers_it() {
        let mut rng = fastrand::Rng::with_seed(7);
        let spec = PromptTokens::Uniform(10, 20);
        let samples: Vec<u32> = (0..10_000).map(|_| spec.sample(&mut rng)).collect();
        assert!(samples.iter().all(|n| (10..=20).contains(n)));
        for n in 10..=20 {
            let share = samples.iter().filter(|&&s| s == n).count() as f64 / 10_000.0;
            assert!((share - 1.0 / 11.0).abs() < 0.02, "{n}: {share}");
        }
    }

    #[test]
    fn normal_has_its_mean_and_sd_and_is_clamped() {
        let mut rng = fastrand::Rng::with_seed(7);
        let spec = PromptTokens::Normal { mean: 500.0, sd: 50.0 };
        let samples: Vec<f64> = (0..20_000).map(|_| f64::from(spec.sample(&mut rng))).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let var = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!((mean - 500.0).abs() < 2.0, "{mean}");
        assert!((var.sqrt() - 50.0).abs() < 2.0, "{}", var.sqrt());
        // About 68 % within one SD.
        let within = samples.iter().filter(|x| (**x - 500.0).abs() <= 50.0).count() as f64 / 20_000.0;
        assert!((within - 0.683).abs() < 0.02, "{within}");

        let low = PromptTokens::Normal { mean: 0.0, sd: 10.0 };
        assert!((0..1000).all(|_| low.sample(&mut rng) >= 1));
    }

    #[test]
    fn prompts_have_the_sampled_word_count_and_are_reproducible() {
        let spec = PromptTokens::Uniform(5, 9);
        let a = prompts(&spec, 42);
        assert_eq!(a.len(), 256);
        assert!(a.iter().all(|p| (5..=9).contains(&p.split(' ').count())));
        assert!(a.iter().all(|p| p.split(' ').all(|w| WORDS.contains(&w))));
        assert_eq!(a, prompts(&spec, 42));
        assert_ne!(a, prompts(&spec, 43));
        // Four characters per word with its separator: chars / 4 ≈ tokens.
        let fixed = prompts(&PromptTokens::Fixed(100), 1);
        assert!(fixed.iter().all(|p| p.len() == 399));
    }

    #[test]
    fn long_prompts_get_a_smaller_pool() {
        assert_eq!(pool_size(&PromptTokens::Fixed(100)), 256);
        assert_eq!(pool_size(&PromptTokens::Fixed(1_000_000)), 16);
        assert!(WORDS.iter().all(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_lowercase())));
    }
}

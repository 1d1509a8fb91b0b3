//! What a request costs, in exact integer arithmetic.
//!
//! Prices are held as pico-dollars (10⁻¹² USD) per token: a price per
//! million tokens with up to six decimals (`$0.0375` → 37,500 p$ per token)
//! is an integer there, so every cost below is exact. A usage record keeps
//! its cost in nano-dollars (10⁻⁹ USD), rounded half up once per record:
//! at most half a nano-dollar off per record, and room in an `i64` for
//! sums up to ~$9.2 billion.
//!
//! | price form | charged for |
//! | --- | --- |
//! | `input` | prompt tokens not served from a cache |
//! | `cached_input` | prompt tokens read from the provider's prompt cache (`input` when absent) |
//! | `cache_write` | prompt tokens written to the cache (Anthropic; `input` when absent) |
//! | `output` | generated tokens (reasoning included) |
//! | `per_request` | each request, whatever its tokens |
//!
//! Volume discounts: a provider's tiers give a percentage off once its
//! tokens this month reach a threshold; the tier reached *before* the
//! request applies to the whole request.

use serde::{Deserialize, Serialize};

/// Pico-dollars per token (or per request for `per_request`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceSheet {
    pub input: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub output: u64,
    pub per_request: u64,
}

/// The most decimals a price per million tokens may have (1 p$ per token).
pub const PRICE_DECIMALS: u32 = 6;

impl PriceSheet {
    /// From prices in USD per million tokens (and USD per request).
    /// `cached_input` and `cache_write` default to `input`.
    pub fn from_usd(
        input: f64,
        cached_input: Option<f64>,
        cache_write: Option<f64>,
        output: f64,
        per_request: f64,
    ) -> Result<PriceSheet, String> {
        let per_token = |name: &str, usd_per_mtok: f64| picos(name, usd_per_mtok, 1e6);
        let input_p = per_token("input_per_mtok", input)?;
        Ok(PriceSheet {
            input: input_p,
            cached_input: cached_input.map(|c| per_token("cached_input_per_mtok", c)).transpose()?.unwrap_or(input_p),
            cache_write: cache_write.map(|c| per_token("cache_write_per_mtok", c)).transpose()?.unwrap_or(input_p),
            output: per_token("output_per_mtok", output)?,
            per_request: picos("per_request", per_request, 1.0)?,
        })
    }

    pub fn is_free(&self) -> bool {
        *self == PriceSheet::default()
    }
}

/// `usd / per` in pico-dollars, refusing negatives, non-numbers and more
/// precision than a pico-dollar (so the conversion is exact).
fn picos(name: &str, usd: f64, per: f64) -> Result<u64, String> {
    if !usd.is_finite() || usd < 0.0 {
        return Err(format!("{name}: expected a price of 0 or more, found {usd}"));
    }
    let scaled = usd * 1e12 / per;
    let rounded = scaled.round();
    if rounded > 9.0e15 {
        return Err(format!("{name}: {usd} is too large a price"));
    }
    // f64 carries ~15 significant digits: a price with ≤ 6 decimals lands
    // within a hair of an integer; anything finer does not.
    if (scaled - rounded).abs() > 1e-6 * rounded.max(1.0) {
        return Err(format!("{name}: {usd} has more than {PRICE_DECIMALS} decimals per million tokens"));
    }
    Ok(rounded as u64)
}

/// Tokens of one attempt, split the way prices are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Prompt tokens not read from or written to a cache.
    pub input: u64,
    pub cached_input: u64,
    pub cache_write: u64,
    pub output: u64,
}

/// A volume discount: `percent` off once the provider's tokens this month
/// reach `from_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    pub from_tokens: u64,
    /// Hundredths of a percent (`1250` = 12.5%), up to 10,000.
    pub basis_points: u32,
}

/// The cost of one attempt in pico-dollars, before discounts.
pub fn cost_picos(price: &PriceSheet, tokens: &Tokens) -> u128 {
    let line = |n: u64, p: u64| u128::from(n) * u128::from(p);
    line(tokens.input, price.input)
        + line(tokens.cached_input, price.cached_input)
        + line(tokens.cache_write, price.cache_write)
        + line(tokens.output, price.output)
        + u128::from(price.per_request)
}

/// `cost` less the discount of the highest tier reached by `month_tokens`
/// (the provider's volume before this request), rounded half up.
pub fn discounted(cost: u128, tiers: &[Tier], month_tokens: u64) -> u128 {
    let bp = tiers.iter().filter(|t| month_tokens >= t.from_tokens).map(|t| t.basis_points.min(10_000)).max();
    match bp {
        None | Some(0) => cost,
        Some(bp) => (cost * u128::from(10_000 - bp) + 5_000) / 10_000,
    }
}

/// Pico-dollars to the nano-dollars a record keeps, rounded half up.
pub fn to_nanos(picos: u128) -> i64 {
    i64::try_from((picos + 500) / 1000).unwrap_or(i64::MAX)
}

/// Nano-dollars as a decimal text of dollars: `"0.000123"`, `"1.5"`, `"0"`.
pub fn usd_text(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let (whole, frac) = (n / 1_000_000_000, n % 1_000_000_000);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:09}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sheet(input: f64, cached: Option<f64>, write: Option<f64>, output: f64, per_request: f64) -> PriceSheet {
        PriceSheet::from_usd(input, cached, write, output, per_request).unwrap()
    }

    #[test]
    fn prices_become_exact_picos_per_token() {
        let p = sheet(0.15, Some(0.075), None, 0.60, 0.0);
        assert_eq!((p.input, p.cached_input, p.cache_write, p.output), (150_000, 75_000, 150_000, 600_000));
        assert_eq!(sheet(0.0375, None, None, 0.000001, 0.0).input, 37_500);
        assert_eq!(sheet(0.0, None, None, 0.000001, 0.0).output, 1);
        assert_eq!(sheet(0.0, None, None, 0.0, 0.002).per_request, 2_000_000_000);
        assert!(PriceSheet::from_usd(0.0000001, None, None, 0.0, 0.0).unwrap_err().contains("decimals"));
        assert!(PriceSheet::from_usd(-1.0, None, None, 0.0, 0.0).unwrap_err().contains("0 or more"));
        assert!(PriceSheet::from_usd(f64::NAN, None, None, 0.0, 0.0).is_err());
        assert!(sheet(0.0, None, None, 0.0, 0.0).is_free());
    }

    /// Hand-computed: gpt-4o-mini at $0.15 / $0.075 cached / $0.60 per Mtok.
    /// 1,200 prompt tokens of which 1,000 cached, 350 output:
    /// (200 × 0.15 + 1,000 × 0.075 + 350 × 0.60) / 10⁶ = (30 + 75 + 210) / 10⁶
    /// = $0.000315.
    #[test]
    fn cached_tokens_are_charged_at_the_cached_price() {
        let p = sheet(0.15, Some(0.075), None, 0.60, 0.0);
        let t = Tokens { input: 200, cached_input: 1_000, cache_write: 0, output: 350 };
        let c = cost_picos(&p, &t);
        assert_eq!(c, 315_000_000);
        assert_eq!(to_nanos(c), 315_000);
        assert_eq!(usd_text(to_nanos(c)), "0.000315");
    }

    /// Hand-computed: Claude Sonnet at $3 input, $0.30 cache read, $3.75
    /// cache write, $15 output. 100 uncached + 2,000 read + 500 written, 40
    /// out: 0.0003 + 0.0006 + 0.001875 + 0.0006 = $0.003375.
    #[test]
    fn cache_writes_have_their_own_price() {
        let p = sheet(3.0, Some(0.30), Some(3.75), 15.0, 0.0);
        let t = Tokens { input: 100, cached_input: 2_000, cache_write: 500, output: 40 };
        assert_eq!(usd_text(to_nanos(cost_picos(&p, &t))), "0.003375");
    }

    /// Hand-computed: $0.002 per request plus $0.50 / $1.50 per Mtok; 10 in,
    /// 20 out: 0.002 + 0.000005 + 0.00003 = $0.002035.
    #[test]
    fn a_per_request_fee_is_added_once() {
        let p = sheet(0.50, None, None, 1.50, 0.002);
        let t = Tokens { input: 10, output: 20, ..Tokens::default() };
        assert_eq!(usd_text(to_nanos(cost_picos(&p, &t))), "0.002035");
        assert_eq!(usd_text(to_nanos(cost_picos(&p, &Tokens::default()))), "0.002");
    }

    /// Tiers: 10% off from 1M tokens a month, 25% from 10M. $1.00 of usage
    /// costs $1.00 at 999,999 tokens so far, $0.90 at 1M, $0.75 at 10M.
    #[test]
    fn volume_discounts_apply_from_their_threshold() {
        let tiers = [
            Tier { from_tokens: 1_000_000, basis_points: 1_000 },
            Tier { from_tokens: 10_000_000, basis_points: 2_500 },
        ];
        let dollar = 1_000_000_000_000u128;
        assert_eq!(discounted(dollar, &tiers, 999_999), dollar);
        assert_eq!(discounted(dollar, &tiers, 1_000_000), 900_000_000_000);
        assert_eq!(discounted(dollar, &tiers, 50_000_000), 750_000_000_000);
        assert_eq!(discounted(dollar, &[], 50_000_000), dollar);
        // 12.5% off 3 p$: 2.625 → 3 (half up).
        assert_eq!(discounted(3, &[Tier { from_tokens: 0, basis_points: 1_250 }], 0), 3);
        assert_eq!(discounted(5, &[Tier { from_tokens: 0, basis_points: 10_000 }], 0), 0);
    }

    #[test]
    fn rounding_to_nanos_is_half_up_and_text_is_trimmed() {
        assert_eq!(to_nanos(499), 0);
        assert_eq!(to_nanos(500), 1);
        assert_eq!(to_nanos(1_499), 1);
        assert_eq!(usd_text(0), "0");
        assert_eq!(usd_text(1_500_000_000), "1.5");
        assert_eq!(usd_text(1), "0.000000001");
        assert_eq!(usd_text(-2_000_000_000), "-2");
    }

    /// The documented bound: per-record rounding is off by at most half a
    /// nano-dollar per record (10 million records of 150 p$, a token of
    /// gpt-4o-mini input, each stored as 0 n$).
    #[test]
    fn the_rounding_bound_holds() {
        let per = 150u128;
        let exact: u128 = per * 10_000_000;
        let stored: i64 = (0..10_000_000).map(|_| to_nanos(per)).sum();
        let diff = (exact as i128 - i128::from(stored) * 1000).unsigned_abs();
        assert!(diff <= 500 * 10_000_000, "{diff}");
        assert_eq!(to_nanos(per * 10_000_000), 1_500_000, "the sum itself is exact");
    }
}

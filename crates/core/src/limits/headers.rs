//! What clients are told about their limits, in OpenAI's header names and
//! value formats, so SDKs that read them (and back off on them) just work.
//!
//! | header | value |
//! | --- | --- |
//! | `x-ratelimit-limit-requests` / `-tokens` | the limit per minute |
//! | `x-ratelimit-remaining-requests` / `-tokens` | units that fit now |
//! | `x-ratelimit-reset-requests` / `-tokens` | until the window is full again: `"20ms"`, `"1s"`, `"1.5s"`, `"6m0s"` |
//! | `retry-after` (on a refusal) | whole seconds, rounded up, at least 1 |
//!
//! Durations are written like Go's `time.Duration` after rounding up to
//! whole milliseconds, which is what OpenAI sends.

use super::Quota;
use std::time::Duration;

/// The `x-ratelimit-*` headers of `quota`: requests first, then tokens; a
/// dimension without a limit has none.
pub fn headers(quota: &Quota) -> Vec<(&'static str, String)> {
    let mut out = Vec::with_capacity(6);
    if let Some(w) = &quota.requests {
        out.push(("x-ratelimit-limit-requests", w.limit.to_string()));
        out.push(("x-ratelimit-remaining-requests", w.remaining.to_string()));
        out.push(("x-ratelimit-reset-requests", format_duration(w.reset)));
    }
    if let Some(w) = &quota.tokens {
        out.push(("x-ratelimit-limit-tokens", w.limit.to_string()));
        out.push(("x-ratelimit-remaining-tokens", w.remaining.to_string()));
        out.push(("x-ratelimit-reset-tokens", format_duration(w.reset)));
    }
    out
}

/// `retry-after` value: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    secs.max(1)
}

/// `d` rounded up to whole ms, then "0s", "NNms" under a second, else
/// `[Hh][Mm]S[.fff]s` with the fraction's trailing zeros trimmed.
pub(super) fn format_duration(d: Duration) -> String {
    let ms = d.as_nanos().div_ceil(1_000_000);
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, minutes) = (ms / 3_600_000, ms / 60_000 % 60);
    let (secs, frac) = (ms / 1000 % 60, ms % 1000);
    let secs = if frac == 0 {
        secs.to_string()
    } else {
        let frac = format!("{frac:03}");
        format!("{secs}.{}", frac.trim_end_matches('0'))
    };
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::super::Window;
    use super::*;

    #[test]
    fn durations_are_written_like_openai() {
        let table = [
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(1), "1ms"),
            (Duration::from_micros(12_300), "13ms"),
            (Duration::from_millis(20), "20ms"),
            (Duration::from_micros(999_500), "1s"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(1230), "1.23s"),
            (Duration::from_millis(2836), "2.836s"),
            (Duration::from_secs(59), "59s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_millis(90_500), "1m30.5s"),
            (Duration::from_secs(360), "6m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_millis(3_723_040), "1h2m3.04s"),
        ];
        for (d, want) in table {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(42)), 42);
        assert_eq!(retry_after_secs(Duration::MAX), u64::MAX);
    }

    #[test]
    fn headers_follow_the_quota() {
        assert!(headers(&Quota::default()).is_empty());
        let quota = Quota {
            requests: Some(Window { limit: 60, remaining: 59, reset: Duration::from_secs(1) }),
            tokens: Some(Window { limit: 150_000, remaining: 149_984, reset: Duration::from_secs(360) }),
        };
        let want = [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-tokens", "149984"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ];
        let got = headers(&quota);
        assert_eq!(got.len(), want.len());
        for ((name, value), (want_name, want_value)) in got.iter().zip(want) {
            assert_eq!((*name, value.as_str()), (want_name, want_value));
        }
        let only_tokens = Quota { requests: None, ..quota };
        assert_eq!(headers(&only_tokens).len(), 3);
    }
}

//! Provider rate-limit headers, relayed to clients under OpenAI's names
//! (`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`), the names the
//! official SDKs and most tools read. OpenAI and Azure already use them;
//! Anthropic's `anthropic-ratelimit-*` are renamed, and its reset times
//! (RFC 3339 instants) become durations from now (`"23s"`), as OpenAI says
//! them. Gemini sends none.

use http::HeaderMap;

/// (OpenAI name, Anthropic name, is a reset time).
const NAMES: [(&str, &str, bool); 6] = [
    ("x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit", false),
    ("x-ratelimit-remaining-requests", "anthropic-ratelimit-requests-remaining", false),
    ("x-ratelimit-reset-requests", "anthropic-ratelimit-requests-reset", true),
    ("x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit", false),
    ("x-ratelimit-remaining-tokens", "anthropic-ratelimit-tokens-remaining", false),
    ("x-ratelimit-reset-tokens", "anthropic-ratelimit-tokens-reset", true),
];

/// The rate-limit headers of an upstream answer, in OpenAI's names.
/// `now_unix` gives the current time in seconds (for Anthropic's reset
/// instants); it is only called when one is present. One pass over the
/// headers, comparing prefixes: this runs on every upstream answer.
pub fn relay_headers(headers: &HeaderMap, now_unix: impl Fn() -> i64) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.as_str();
        if !(name.starts_with("x-ratelimit-") || name.starts_with("anthropic-ratelimit-")) {
            continue;
        }
        let Some((openai, _, is_reset)) = NAMES.iter().find(|(o, a, _)| *o == name || *a == name) else {
            continue;
        };
        let Ok(v) = value.to_str() else { continue };
        let v = v.trim();
        let from_anthropic = name.starts_with('a');
        if from_anthropic && out.iter().any(|(o, _)| o == openai) {
            continue; // OpenAI's own name wins when both are present
        }
        let v = match (from_anthropic && *is_reset, parse_rfc3339(v)) {
            (true, Some(at)) => format!("{}s", (at - now_unix()).max(0)),
            _ => v.to_string(),
        };
        out.retain(|(o, _)| o != openai);
        out.push((openai, v));
    }
    out
}

/// `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)` → unix seconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let h = rest.get(1..3)?.parse::<i64>().ok()?;
            let m = rest.get(4..6)?.parse::<i64>().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn headers_of(fixture: &str) -> HeaderMap {
        let text = String::from_utf8(crate::test_fixtures::fixture(fixture)).unwrap();
        let mut map = HeaderMap::new();
        for line in text.lines().skip(1) {
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if let (Ok(n), Ok(v)) =
                    (http::HeaderName::from_bytes(name.trim().as_bytes()), http::HeaderValue::from_str(value.trim()))
                {
                    map.append(n, v);
                }
            }
        }
        map
    }

    #[test]
    fn anthropic_limits_are_renamed_and_resets_become_durations() {
        let h = headers_of("anthropic/errors/headers_429.http");
        // 2025-08-21T12:45:00Z
        let now = parse_rfc3339("2025-08-21T12:45:00Z").unwrap();
        let out = relay_headers(&h, || now);
        let get = |n: &str| out.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-ratelimit-limit-requests"), Some("50"));
        assert_eq!(get("x-ratelimit-remaining-requests"), Some("49"));
        assert_eq!(get("x-ratelimit-reset-requests"), Some("14s"));
        assert_eq!(get("x-ratelimit-remaining-tokens"), Some("8000"));
        assert_eq!(get("x-ratelimit-reset-tokens"), Some("36s"));
    }

    #[test]
    fn openai_names_pass_unchanged() {
        let out = relay_headers(&headers_of("openai/response_headers_200.http"), || 0);
        let get = |n: &str| out.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-ratelimit-remaining-requests"), Some("4999"));
        assert_eq!(get("x-ratelimit-reset-tokens"), Some("9ms"));
        assert_eq!(out.len(), 6);
        let anthropic = relay_headers(&headers_of("anthropic/response_headers_200.http"), || 0);
        assert_eq!(anthropic.len(), 6);
    }

    #[test]
    fn azure_and_openai_429_heads_keep_their_limits_and_retry_after() {
        for name in ["openai_compatible/azure_headers_429.http", "openai/errors/headers_429.http"] {
            let h = headers_of(name);
            let out = relay_headers(&h, || 0);
            let get = |n: &str| out.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
            assert!(get("x-ratelimit-remaining-requests").is_some(), "{name}: {out:?}");
            assert_eq!(get("x-ratelimit-remaining-tokens"), Some("0"), "{name}");
            assert!(crate::error::parse_retry_after(&h).is_some(), "{name}");
        }
        let azure = crate::error::parse_retry_after(&headers_of("openai_compatible/azure_headers_429.http"));
        assert_eq!(azure, Some(std::time::Duration::from_millis(6000)), "retry-after-ms is the precise one");
    }

    #[test]
    fn openai_names_win_over_anthropic_ones_in_any_order() {
        for order in [
            ["anthropic-ratelimit-requests-remaining", "x-ratelimit-remaining-requests"],
            ["x-ratelimit-remaining-requests", "anthropic-ratelimit-requests-remaining"],
        ] {
            let mut h = HeaderMap::new();
            for name in order {
                let v = if name.starts_with('x') { "7" } else { "9" };
                h.insert(http::HeaderName::from_static(name), http::HeaderValue::from_static(v));
            }
            assert_eq!(relay_headers(&h, || 0), vec![("x-ratelimit-remaining-requests", "7".to_string())]);
        }
        assert!(relay_headers(&HeaderMap::new(), || panic!("no clock needed")).is_empty());
    }

    #[test]
    fn timestamps_parse_or_are_refused() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800));
        assert_eq!(parse_rfc3339("2000-03-01T01:00:00+01:00"), Some(951_868_800));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00.123Z"), Some(951_868_800));
        assert_eq!(parse_rfc3339("soon"), None);
        assert_eq!(parse_rfc3339("2000-13-01T00:00:00Z"), None);
    }
}

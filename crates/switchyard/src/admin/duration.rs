//! Durations and instants on the command line: `--overlap 10m`,
//! `--expires-in 30d`, `--since 1h`.

/// Seconds from `90`, `90s`, `10m`, `1h`, `2d`, `1w` or a sum such as
/// `1h30m`. A bare number is seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a duration (seconds, or a number with s, m, h, d or w: 90s, 10m, 1h, 2d)");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(bad)?;
    }
    if !number.is_empty() {
        // `1h30`: a number after a unit needs its own unit.
        return Err(bad());
    }
    Ok(total)
}

/// Unix milliseconds from `UNIX_MS`, or from a duration meaning that long
/// before `now_ms` (`--since 1h`).
pub fn parse_instant(text: &str, now_ms: u64) -> Result<u64, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| format!("{text:?} is too large for unix milliseconds"));
    }
    let ago = parse_duration(text)
        .map_err(|_| format!("{text:?} is neither unix milliseconds nor a duration ago (90s, 10m, 1h, 2d)"))?;
    Ok(now_ms.saturating_sub(ago.saturating_mul(1000)))
}

/// The instant `--expires-in` names: a positive duration after `now_ms`.
pub fn expires_in(text: &str, now_ms: u64) -> Result<u64, String> {
    let secs = parse_duration(text).map_err(|e| format!("--expires-in: {e}"))?;
    if secs == 0 {
        return Err("--expires-in: must be more than 0".to_string());
    }
    secs.checked_mul(1000)
        .and_then(|ms| now_ms.checked_add(ms))
        .ok_or_else(|| format!("--expires-in: {text:?} is too far"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_take_seconds_or_units() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("30d"), Ok(2_592_000));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        for bad in ["", "h", "1x", "-5", "1.5h", "1h30", "1 h", "99999999999999999999s", "9999999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_duration("1x").unwrap_err().contains("\"1x\" is not a duration"));
    }

    #[test]
    fn instants_are_unix_ms_or_a_duration_ago() {
        assert_eq!(parse_instant("1764900000000", 5), Ok(1_764_900_000_000));
        assert_eq!(parse_instant("1h", 10_000_000), Ok(10_000_000 - 3_600_000));
        assert_eq!(parse_instant("1d", 1000), Ok(0));
        assert!(parse_instant("yesterday", 0).is_err());
    }

    #[test]
    fn expires_in_is_after_now() {
        assert_eq!(expires_in("30d", 1_000), Ok(1_000 + 2_592_000_000));
        assert_eq!(expires_in("90", 0), Ok(90_000));
        assert!(expires_in("0s", 0).unwrap_err().contains("more than 0"));
        assert!(expires_in("soon", 0).unwrap_err().starts_with("--expires-in: "));
    }
}

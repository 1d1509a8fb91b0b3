//! Dates and instants of the analytics API in a time zone — the budgets'
//! (`budgets.time_zone`: UTC, a fixed offset, or an IANA zone with its
//! daylight-saving rules) unless the query names one: `YYYY-MM-DD` dates,
//! RFC 3339 instants, local days, and the labels of hour, day and month
//! buckets.

use super::rollup::{DAY_MS, HOUR_MS};
use crate::budget::period::{civil_from_days, days_from_civil};
use crate::budget::{rfc3339, Offset, Zone};

/// The zone's offset from UTC at `ms`, in ms.
pub fn offset_at(zone: &Zone, ms: i64) -> i64 {
    match zone {
        Zone::Fixed(o) => i64::from(o.0) * 60_000,
        Zone::Named(tz) => {
            let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            i64::from(tz.to_offset(at).seconds()) * 1000
        }
    }
}

/// The zone's offsets over `[start_ms, end_ms)`: `(from_ms, offset_ms)`
/// pairs, ascending; the first holds from `start_ms` (and before).
pub fn offsets(zone: &Zone, start_ms: i64, end_ms: i64) -> Vec<(i64, i64)> {
    let mut out = vec![(i64::MIN, offset_at(zone, start_ms))];
    if let Zone::Named(tz) = zone {
        let from = jiff::Timestamp::from_millisecond(start_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        for t in tz.following(from) {
            let at = t.timestamp().as_millisecond();
            if at >= end_ms {
                break;
            }
            let offset = i64::from(t.offset().seconds()) * 1000;
            if out.last().is_some_and(|(_, o)| *o != offset) {
                out.push((at, offset));
            }
        }
    }
    out
}

/// The local day (days since 1970-01-01) holding `ms`, given the offsets.
pub fn day_in(offsets: &[(i64, i64)], ms: i64) -> i64 {
    let offset = offsets.iter().rev().find(|(from, _)| *from <= ms).or(offsets.first()).map_or(0, |(_, o)| *o);
    (ms + offset).div_euclid(DAY_MS)
}

/// The local day holding instant `ms`.
pub fn day_of(ms: i64, zone: &Zone) -> i64 {
    (ms + offset_at(zone, ms)).div_euclid(DAY_MS)
}

/// The first instant of local day `day` (midnight, or where daylight
/// saving skips it, the first instant the date has).
pub fn day_start(day: i64, zone: &Zone) -> i64 {
    match zone {
        Zone::Fixed(o) => day * DAY_MS - i64::from(o.0) * 60_000,
        Zone::Named(tz) => {
            let (y, m, d) = civil_from_days(day);
            let first = i16::try_from(y)
                .ok()
                .and_then(|y| jiff::civil::Date::new(y, m as i8, d as i8).ok())
                .and_then(|date| date.to_zoned(tz.clone()).ok())
                .map(|z| z.timestamp().as_millisecond());
            // Outside jiff's years: the offset at UTC midnight, fixed.
            first.unwrap_or_else(|| day * DAY_MS - offset_at(zone, day * DAY_MS))
        }
    }
}

/// `YYYY-MM-DD` → days since 1970-01-01, or `None` when it is not a real
/// date of years 1970–9999.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&s[0..4])?;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let n = days_from_civil(year, month as u32, day as u32);
    // Day 31 of a 30-day month rolls over into the next month: refuse it.
    (civil_from_days(n) == (year, month as u32, day as u32)).then_some(n)
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An RFC 3339 instant (`2026-01-02T03:04:05Z`, `…T03:04:05.250+05:30`;
/// fractions beyond milliseconds are dropped) → unix ms.
pub fn parse_instant(s: &str) -> Option<i64> {
    if s.len() < 20 || !s.is_ascii() {
        return None;
    }
    let day = parse_date(&s[..10])?;
    let b = s.as_bytes();
    if !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&s[11..13])?, digits(&s[14..16])?, digits(&s[17..19])?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        millis = digits(&format!("{:0<3}", &frac[..n.min(3)]))?;
        rest = &frac[n..];
    }
    let zone = match rest {
        "Z" | "z" => 0,
        _ => i64::from(Offset::parse(rest).ok().filter(|_| rest.len() == 6)?.0) * 60_000,
    };
    // A leap second is read as the next second's start.
    Some(day * DAY_MS + h * HOUR_MS + m * 60_000 + sec * 1000 + millis - zone)
}

/// `2026-01-02`.
pub fn day_label(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `2026-01` for the month holding local day `day`.
pub fn month_label(day: i64) -> String {
    let (y, m, _) = civil_from_days(day);
    format!("{y:04}-{m:02}")
}

/// The first day of the month holding `day`.
pub fn month_of(day: i64) -> i64 {
    let (y, m, _) = civil_from_days(day);
    days_from_civil(y, m, 1)
}

/// `ms` in RFC 3339 in the zone (its offset then), to the second.
pub fn instant_label(ms: i64, zone: &Zone) -> String {
    rfc3339(ms, zone)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates_are_checked_against_the_calendar() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-01-01"), Some(1_767_225_600 / 86_400));
        assert_eq!(parse_date("2024-02-29").map(day_label).as_deref(), Some("2024-02-29"));
        for bad in ["2025-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-1-01", "26-01-01", "1969-12-31", ""] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn instants_read_rfc3339() {
        let base = parse_date("2026-01-02").unwrap() * DAY_MS;
        assert_eq!(parse_instant("2026-01-02T03:04:05Z"), Some(base + 3 * HOUR_MS + 4 * 60_000 + 5000));
        assert_eq!(parse_instant("2026-01-02T05:30:00+05:30"), Some(base));
        assert_eq!(parse_instant("2026-01-02T00:00:00.25-01:00"), Some(base + HOUR_MS + 250));
        assert_eq!(parse_instant("2026-01-02T00:00:00.123456789Z"), Some(base + 123));
        for bad in [
            "2026-01-02",
            "2026-01-02T24:00:00Z",
            "2026-01-02T00:00:00",
            "2026-01-02T00:00:00+5:30",
            "2026-01-02T00:00:00.Z",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_begin_at_local_midnight() {
        let ist = Zone::Fixed(Offset(330));
        let day = parse_date("2026-01-02").unwrap();
        assert_eq!(instant_label(day_start(day, &ist), &ist), "2026-01-02T00:00:00+05:30");
        assert_eq!(instant_label(day_start(day, &ist), &Zone::default()), "2026-01-01T18:30:00Z");
        assert_eq!(day_of(day_start(day, &ist), &ist), day);
        assert_eq!(day_of(day_start(day, &ist) - 1, &ist), day - 1);
        assert_eq!((month_label(day), day_label(month_of(day))), ("2026-01".into(), "2026-01-01".into()));
    }

    #[test]
    fn named_zones_follow_daylight_saving() {
        // Berlin: +01:00 in winter, +02:00 from 2026-03-29T01:00Z.
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let (before, after) = (parse_date("2026-03-29").unwrap(), parse_date("2026-03-30").unwrap());
        assert_eq!(day_start(before, &berlin), before * DAY_MS - HOUR_MS);
        assert_eq!(day_start(after, &berlin), after * DAY_MS - 2 * HOUR_MS, "a 23-hour day");
        let o = offsets(&berlin, day_start(before - 1, &berlin), day_start(after + 1, &berlin));
        assert_eq!(o.iter().map(|(_, o)| *o / HOUR_MS).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(o[1].0, before * DAY_MS + HOUR_MS);
        assert_eq!(day_in(&o, day_start(after, &berlin)), after);
        assert_eq!(day_in(&o, day_start(after, &berlin) - 1), before);
        assert_eq!(offsets(&Zone::Fixed(Offset(-90)), 0, DAY_MS), [(i64::MIN, -90 * 60_000)]);
    }
}

//! Calendar periods in a time zone: a fixed offset from UTC, computed by
//! hand (Howard Hinnant's days-from-civil and civil-from-days), or an IANA
//! zone such as `Europe/Berlin`, whose days begin at local midnight
//! whatever daylight-saving time does (a 23- or 25-hour day, or — where
//! midnight is skipped — the first instant of the date), computed with
//! `jiff` and the tz database compiled into the binary.
//!
//! Every window is half-open, `[start_ms, end_ms)` in unix milliseconds: the
//! instant a day or month begins in the zone belongs to the new window.

use serde::{Deserialize, Serialize};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// The widest offset in use anywhere (Kiribati, +14:00; the widest negative
/// is −12:00, but ±14 h is what ISO 8601 tools accept).
const MAX_OFFSET_MINUTES: i32 = 14 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Month,
}

/// A fixed offset from UTC in minutes (−14h..+14h), e.g. +08:00 = 480;
/// parse from "+08:00", "-05:30", "Z", "UTC".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offset(pub i32);

impl Offset {
    /// `Z` or `UTC` (any case), or a sign and `HH:MM` (also `HHMM` or `HH`)
    /// within ±14:00.
    pub fn parse(s: &str) -> Result<Offset, String> {
        let bad = || format!("expected `UTC`, `Z` or an offset like `+08:00` or `-05:30`, found `{s}`");
        if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
            return Ok(Offset(0));
        }
        if !s.is_ascii() {
            return Err(bad());
        }
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'+') => (1, &s[1..]),
            Some(b'-') => (-1, &s[1..]),
            _ => return Err(bad()),
        };
        let (hours, minutes) = match rest.len() {
            2 => (rest, "00"),
            4 => rest.split_at(2),
            5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
            _ => return Err(bad()),
        };
        let two_digits = |t: &str| -> Option<i32> {
            let b = t.as_bytes();
            (b.len() == 2 && b.iter().all(u8::is_ascii_digit))
                .then(|| i32::from(b[0] - b'0') * 10 + i32::from(b[1] - b'0'))
        };
        let (Some(h), Some(m)) = (two_digits(hours), two_digits(minutes)) else {
            return Err(bad());
        };
        let total = h * 60 + m;
        if m >= 60 || total > MAX_OFFSET_MINUTES {
            return Err(format!("{}: offsets range from -14:00 to +14:00", bad()));
        }
        Ok(Offset(sign * total))
    }

    fn millis(self) -> i64 {
        i64::from(self.0) * MINUTE_MS
    }
}

/// Where days and months begin (`budgets.time_zone`): cheap to clone.
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    Fixed(Offset),
    /// An IANA zone, by its name.
    Named(jiff::tz::TimeZone),
}

impl Default for Zone {
    /// UTC.
    fn default() -> Self {
        Zone::Fixed(Offset(0))
    }
}

impl Zone {
    /// `UTC`, `Z`, an offset like `+08:00`, or an IANA name like
    /// `America/New_York` (case as in the tz database).
    pub fn parse(s: &str) -> Result<Zone, String> {
        if s.starts_with(['+', '-']) || s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
            return Offset::parse(s).map(Zone::Fixed);
        }
        match jiff::tz::TimeZone::get(s) {
            Ok(tz) => Ok(Zone::Named(tz)),
            Err(_) => Err(format!(
                "expected `UTC`, an offset like `+08:00` or an IANA time zone like `Europe/Berlin`, found `{s}`"
            )),
        }
    }

    /// The zone's offset from UTC at `ms`, in minutes.
    fn offset_at(&self, ms: i64) -> Offset {
        match self {
            Zone::Fixed(offset) => *offset,
            Zone::Named(tz) => {
                let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
                Offset(tz.to_offset(at).seconds().div_euclid(60))
            }
        }
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Zone::Fixed(Offset(0)) => f.write_str("UTC"),
            Zone::Fixed(offset) => offset.fmt(f),
            Zone::Named(tz) => f.write_str(tz.iana_name().unwrap_or("?")),
        }
    }
}

/// `Z` for UTC, else `+08:00` / `-05:30` (the RFC 3339 suffix).
impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 {
            return f.write_str("Z");
        }
        let sign = if self.0 < 0 { '-' } else { '+' };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{:02}:{:02}", abs / 60, abs % 60)
    }
}

/// The calendar period containing `now_ms` (unix ms) in that offset:
/// [start_ms, end_ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub period: Period,
    pub start_ms: i64,
    pub end_ms: i64,
}

pub fn window(period: Period, now_ms: i64, zone: &Zone) -> Window {
    match zone {
        Zone::Fixed(offset) => fixed_window(period, now_ms, *offset),
        Zone::Named(tz) => named_window(period, now_ms, tz).unwrap_or_else(|| {
            // Outside jiff's range (years beyond ±9999): the zone's offset
            // then, fixed.
            fixed_window(period, now_ms, zone.offset_at(now_ms))
        }),
    }
}

/// The window in an IANA zone: from the first instant of the local date
/// (or month) to the first instant of the next.
fn named_window(period: Period, now_ms: i64, tz: &jiff::tz::TimeZone) -> Option<Window> {
    let now = jiff::Timestamp::from_millisecond(now_ms).ok()?.to_zoned(tz.clone());
    let (first, after) = match period {
        Period::Day => (now.date(), now.date().tomorrow().ok()?),
        Period::Month => {
            let first = now.date().first_of_month();
            (first, first.last_of_month().tomorrow().ok()?)
        }
    };
    let instant = |date: jiff::civil::Date| date.to_zoned(tz.clone()).ok().map(|z| z.timestamp().as_millisecond());
    Some(Window { period, start_ms: instant(first)?, end_ms: instant(after)? })
}

fn fixed_window(period: Period, now_ms: i64, offset: Offset) -> Window {
    let shift = offset.millis();
    let day = now_ms.saturating_add(shift).div_euclid(DAY_MS);
    let (first, after) = match period {
        Period::Day => (day, day + 1),
        Period::Month => {
            let (year, month, _) = civil_from_days(day);
            let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
            (days_from_civil(year, month, 1), days_from_civil(next_year, next_month, 1))
        }
    };
    let instant = |day: i64| day.saturating_mul(DAY_MS).saturating_sub(shift);
    Window { period, start_ms: instant(first), end_ms: instant(after) }
}

/// "2026-12" / "2026-12-05" naming the window in that zone (for alerts
/// and the API).
pub fn label(w: &Window, zone: &Zone) -> String {
    let offset = zone.offset_at(w.start_ms);
    let (year, month, day) = civil_from_days(w.start_ms.saturating_add(offset.millis()).div_euclid(DAY_MS));
    match w.period {
        Period::Day => format!("{year:04}-{month:02}-{day:02}"),
        Period::Month => format!("{year:04}-{month:02}"),
    }
}

/// `ms` as `2027-01-01T00:00:00+08:00` in that zone (seconds, truncated;
/// the offset is the zone's at that instant).
pub fn rfc3339(ms: i64, zone: &Zone) -> String {
    let offset = zone.offset_at(ms);
    let local = ms.saturating_add(offset.millis());
    let (year, month, day) = civil_from_days(local.div_euclid(DAY_MS));
    let secs = local.rem_euclid(DAY_MS) / 1000;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{offset}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1..=12).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1..=12, day 1..=31) `days` after 1970-01-01
/// (Howard Hinnant's algorithm; also used for `/v1/models` timestamps).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // In range by construction: day 1..=31, month 1..=12.
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HOUR_MS: i64 = 3_600_000;
    const UTC: Zone = Zone::Fixed(Offset(0));
    const PLUS_8: Zone = Zone::Fixed(Offset(480));
    const MINUS_5_30: Zone = Zone::Fixed(Offset(-330));

    /// Unix ms of a UTC date and time.
    fn utc(year: i64, month: u32, day: u32, hour: i64, minute: i64) -> i64 {
        days_from_civil(year, month, day) * DAY_MS + hour * HOUR_MS + minute * MINUTE_MS
    }

    fn span(period: Period, start: i64, end: i64) -> Window {
        Window { period, start_ms: start, end_ms: end }
    }

    #[test]
    fn day_numbers_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 951_868_800 / 86_400);
        assert_eq!(days_from_civil(2026, 1, 1), 1_767_225_600 / 86_400);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(1_767_225_600 / 86_400), (2026, 1, 1));
    }

    /// Walks every day from 1899 to 2401 and checks each step against the
    /// Gregorian rules written out independently.
    #[test]
    fn every_day_follows_the_calendar() {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let length = |y: i64, m: u32| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1899, 1, 1);
        for days in days_from_civil(1899, 1, 1)..days_from_civil(2401, 1, 1) {
            assert_eq!(civil_from_days(days), (y, m, d));
            assert_eq!(days_from_civil(y, m, d), days);
            d += 1;
            if d > length(y, m) {
                (m, d) = (m + 1, 1);
                if m > 12 {
                    (y, m) = (y + 1, 1);
                }
            }
        }
    }

    #[test]
    fn utc_days_and_months() {
        let now = utc(2026, 12, 5, 13, 45);
        let day = span(Period::Day, utc(2026, 12, 5, 0, 0), utc(2026, 12, 6, 0, 0));
        assert_eq!(window(Period::Day, now, &UTC), day);
        assert_eq!(window(Period::Day, day.start_ms, &UTC), day, "the start belongs to the window");
        assert_eq!(window(Period::Day, day.end_ms - 1, &UTC), day);
        assert_eq!(window(Period::Day, day.end_ms, &UTC).start_ms, day.end_ms, "the end does not");
        let month = window(Period::Month, now, &UTC);
        assert_eq!(month, span(Period::Month, utc(2026, 12, 1, 0, 0), utc(2027, 1, 1, 0, 0)));
        assert_eq!(window(Period::Month, month.end_ms, &UTC).start_ms, utc(2027, 1, 1, 0, 0));
        assert_eq!(window(Period::Month, month.end_ms - 1, &UTC), month);
        assert_eq!((label(&day, &UTC), label(&month, &UTC)), ("2026-12-05".into(), "2026-12".into()));
    }

    #[test]
    fn before_1970_rounds_down() {
        let now = utc(1969, 12, 31, 23, 0);
        assert_eq!(window(Period::Day, now, &UTC), span(Period::Day, -DAY_MS, 0));
        assert_eq!(window(Period::Month, now, &UTC).start_ms, utc(1969, 12, 1, 0, 0));
    }

    /// 2026-12-31T20:00Z is 2027-01-01 04:00 in +08:00.
    #[test]
    fn a_positive_offset_starts_the_year_early() {
        let now = utc(2026, 12, 31, 20, 0);
        let day = window(Period::Day, now, &PLUS_8);
        assert_eq!(day, span(Period::Day, utc(2026, 12, 31, 16, 0), utc(2027, 1, 1, 16, 0)));
        let month = window(Period::Month, now, &PLUS_8);
        assert_eq!(month, span(Period::Month, utc(2026, 12, 31, 16, 0), utc(2027, 1, 31, 16, 0)));
        assert_eq!((label(&day, &PLUS_8), label(&month, &PLUS_8)), ("2027-01-01".into(), "2027-01".into()));
        // The same instant in UTC is still December.
        assert_eq!(label(&window(Period::Month, now, &UTC), &UTC), "2026-12");
        // One minute before local midnight.
        let before = window(Period::Month, utc(2026, 12, 31, 15, 59), &PLUS_8);
        assert_eq!(before, span(Period::Month, utc(2026, 11, 30, 16, 0), utc(2026, 12, 31, 16, 0)));
        assert_eq!(label(&before, &PLUS_8), "2026-12");
    }

    /// 2027-01-01T03:00Z is 2026-12-31 21:30 in −05:30.
    #[test]
    fn a_negative_offset_ends_the_year_late() {
        let now = utc(2027, 1, 1, 3, 0);
        let day = window(Period::Day, now, &MINUS_5_30);
        assert_eq!(day, span(Period::Day, utc(2026, 12, 31, 5, 30), utc(2027, 1, 1, 5, 30)));
        let month = window(Period::Month, now, &MINUS_5_30);
        assert_eq!(month, span(Period::Month, utc(2026, 12, 1, 5, 30), utc(2027, 1, 1, 5, 30)));
        assert_eq!((label(&day, &MINUS_5_30), label(&month, &MINUS_5_30)), ("2026-12-31".into(), "2026-12".into()));
        assert_eq!(label(&window(Period::Day, utc(2027, 1, 1, 5, 30), &MINUS_5_30), &MINUS_5_30), "2027-01-01");
    }

    #[test]
    fn months_have_their_lengths() {
        let days = |year: i64, month: u32| {
            let w = window(Period::Month, utc(year, month, 15, 12, 0), &PLUS_8);
            (w.end_ms - w.start_ms) / DAY_MS
        };
        let lengths: Vec<i64> = (1..=12).map(|m| days(2026, m)).collect();
        assert_eq!(lengths, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
        assert_eq!(days(2028, 2), 29);
        assert_eq!(days(2000, 2), 29, "divisible by 400");
        assert_eq!(days(2100, 2), 28, "divisible by 100");
        let leap_day = window(Period::Day, utc(2028, 2, 29, 12, 0), &UTC);
        assert_eq!(label(&leap_day, &UTC), "2028-02-29");
        assert_eq!(label(&window(Period::Day, leap_day.end_ms, &UTC), &UTC), "2028-03-01");
    }

    #[test]
    fn offsets_parse() {
        for (text, minutes) in [
            ("Z", 0),
            ("z", 0),
            ("UTC", 0),
            ("utc", 0),
            ("+08:00", 480),
            ("-05:30", -330),
            ("+0545", 345),
            ("-03", -180),
            ("+00:00", 0),
            ("-00:00", 0),
            ("+14:00", 840),
            ("-14:00", -840),
        ] {
            assert_eq!(Offset::parse(text), Ok(Offset(minutes)), "{text}");
        }
        for text in [
            "", "+", "08:00", "+8:00", "+08:0", "+08-00", "+08:60", "+14:01", "-15:00", "GMT", " +08:00", "+08:00 ",
            "+０8:00", "+€1",
        ] {
            let err = Offset::parse(text).unwrap_err();
            assert!(err.contains("expected `UTC`, `Z` or an offset like `+08:00`"), "{text}: {err}");
        }
        assert!(Offset::parse("+14:30").unwrap_err().contains("range from -14:00 to +14:00"));
    }

    #[test]
    fn offsets_print_as_rfc3339_suffixes() {
        for text in ["+08:00", "-05:30", "+05:45", "-14:00"] {
            assert_eq!(Offset::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Offset(0).to_string(), "Z");
        assert_eq!(rfc3339(utc(2026, 12, 31, 16, 0), &PLUS_8), "2027-01-01T00:00:00+08:00");
        assert_eq!(rfc3339(utc(2027, 1, 1, 3, 0) + 59_999, &MINUS_5_30), "2026-12-31T21:30:59-05:30");
        assert_eq!(rfc3339(0, &UTC), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn periods_serialize_in_snake_case() {
        assert_eq!(serde_json::to_string(&Period::Month).unwrap(), "\"month\"");
        assert_eq!(serde_json::from_str::<Period>("\"day\"").unwrap(), Period::Day);
    }

    #[test]
    fn extreme_instants_do_not_overflow() {
        for now in [i64::MIN, i64::MIN / 2, i64::MAX / 2, i64::MAX] {
            for period in [Period::Day, Period::Month] {
                let zones = [
                    UTC,
                    Zone::Fixed(Offset(840)),
                    Zone::Fixed(Offset(-840)),
                    Zone::parse("America/New_York").unwrap(),
                ];
                for zone in &zones {
                    let w = window(period, now, zone);
                    assert!(w.start_ms <= w.end_ms);
                    let _ = label(&w, zone);
                    let _ = rfc3339(now, zone);
                }
            }
        }
    }

    #[test]
    fn zones_parse_offsets_and_iana_names() {
        assert_eq!(Zone::parse("UTC").unwrap(), UTC);
        assert_eq!(Zone::parse("+08:00").unwrap(), PLUS_8);
        assert_eq!(Zone::parse("Europe/Berlin").unwrap().to_string(), "Europe/Berlin");
        assert_eq!(PLUS_8.to_string(), "+08:00");
        assert_eq!(UTC.to_string(), "UTC");
        for bad in ["Mars/Olympus", "", "+25:00", "europe/nowhere", "08:00"] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
    }

    /// Days begin at local midnight through daylight-saving changes: the
    /// spring-forward day is 23 hours, the fall-back day 25.
    #[test]
    fn iana_days_follow_daylight_saving_time() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // 2026-03-29: clocks go 02:00 → 03:00 (CET +01:00 → CEST +02:00).
        let spring = window(Period::Day, utc(2026, 3, 29, 12, 0), &berlin);
        assert_eq!(spring, span(Period::Day, utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0)));
        assert_eq!(spring.end_ms - spring.start_ms, 23 * HOUR_MS);
        // 2026-10-25: 03:00 → 02:00 (CEST → CET).
        let fall = window(Period::Day, utc(2026, 10, 25, 12, 0), &berlin);
        assert_eq!(fall, span(Period::Day, utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0)));
        assert_eq!(fall.end_ms - fall.start_ms, 25 * HOUR_MS);
        assert_eq!(label(&fall, &berlin), "2026-10-25");
        assert_eq!(rfc3339(fall.start_ms, &berlin), "2026-10-25T00:00:00+02:00");
        assert_eq!(rfc3339(fall.end_ms, &berlin), "2026-10-26T00:00:00+01:00");
        // The month holding the change: from CET midnight to CET midnight.
        let october = window(Period::Month, utc(2026, 10, 10, 0, 0), &berlin);
        assert_eq!(october, span(Period::Month, utc(2026, 9, 30, 22, 0), utc(2026, 10, 31, 23, 0)));
        assert_eq!(label(&october, &berlin), "2026-10");
        // Consecutive days tile the year with no gap or overlap.
        let mut at = window(Period::Day, utc(2026, 1, 1, 12, 0), &berlin);
        for _ in 0..365 {
            let next = window(Period::Day, at.end_ms, &berlin);
            assert_eq!(next.start_ms, at.end_ms);
            assert!([23, 24, 25].contains(&((next.end_ms - next.start_ms) / HOUR_MS)));
            at = next;
        }
    }

    /// Where midnight itself is skipped (Chile springs forward at 00:00),
    /// the day begins at the first instant that exists: 01:00.
    #[test]
    fn a_skipped_midnight_begins_the_day_at_the_first_instant() {
        let santiago = Zone::parse("America/Santiago").unwrap();
        // 2026-09-06 00:00 -04:00 does not exist: 01:00 -03:00 = 04:00Z.
        let day = window(Period::Day, utc(2026, 9, 6, 15, 0), &santiago);
        assert_eq!(day.start_ms, utc(2026, 9, 6, 4, 0));
        assert_eq!(rfc3339(day.start_ms, &santiago), "2026-09-06T01:00:00-03:00");
        assert_eq!(day.end_ms - day.start_ms, 23 * HOUR_MS);
    }
}

//! Which records a time range is made of: whole UTC hours, read from the
//! hourly rollups, and the partial hours at its edges (and, for days at an
//! offset that is not a whole number of hours, the hour each local
//! midnight cuts), read from the raw records. The answer is exact either
//! way; the raw reads are what keep it exact for any instant and zone.

use super::rollup::{hour_of, utc_day_of, Dim, RollupQuery, Source, TimeKey, DAY_MS, HOUR_MS};

/// A rollup query over `[start_ms, end_ms)`.
pub fn over(
    source: Source,
    dims: Vec<Dim>,
    filters: Vec<(Dim, String)>,
    time: TimeKey,
    start_ms: i64,
    end_ms: i64,
) -> RollupQuery {
    let mut q =
        RollupQuery { source, dims, filters, time, days: None, hours: Vec::new(), skip: Vec::new(), raw: Vec::new() };
    if start_ms >= end_ms {
        return q;
    }
    let first = ceil(start_ms, HOUR_MS);
    let last = hour_of(end_ms);
    if first >= last {
        q.raw.push((start_ms, end_ms));
        return q;
    }
    // Whole UTC days from the daily rollup where its rows key the answer:
    // no time, or UTC days.
    let utc_days = match &q.time {
        TimeKey::Total => true,
        TimeKey::Day { offsets } => offsets.iter().all(|(_, o)| *o == 0),
        TimeKey::Hour => false,
    };
    let (first_day, last_day) = (ceil(first, DAY_MS), utc_day_of(last));
    if q.source == Source::Usage && utc_days && first_day < last_day {
        q.days = Some((first_day, last_day));
        q.hours = [(first, first_day), (last_day, last)].into_iter().filter(|(a, b)| a < b).collect();
    } else {
        q.hours = vec![(first, last)];
    }
    if start_ms < first {
        q.raw.push((start_ms, first));
    }
    if matches!(q.time, TimeKey::Day { .. }) {
        for (from, to) in q.hours.clone() {
            let mut h = from;
            while h < to {
                if q.cut(h) {
                    q.skip.push(h);
                    q.raw.push((h, h + HOUR_MS));
                }
                h += HOUR_MS;
            }
        }
    }
    if last < end_ms {
        q.raw.push((last, end_ms));
    }
    q.raw = coalesce(std::mem::take(&mut q.raw));
    q
}

/// Every record created at or after `since_ms`: what budgets rebuild
/// their counters from at start (dimensions tenant, team, key).
pub fn since(since_ms: i64) -> RollupQuery {
    since_by(since_ms, vec![Dim::Tenant, Dim::Team, Dim::Key])
}

/// Totals by `dims` of the usage recorded at or after `since_ms`, read like
/// [`since`] (whole days, then whole hours, then raw minutes).
pub fn since_by(since_ms: i64, dims: Vec<Dim>) -> RollupQuery {
    let first = ceil(since_ms, HOUR_MS);
    let first_day = ceil(first, DAY_MS);
    RollupQuery {
        source: Source::Usage,
        dims,
        filters: Vec::new(),
        time: TimeKey::Total,
        days: Some((first_day, i64::MAX)),
        hours: if first < first_day { vec![(first, first_day)] } else { Vec::new() },
        skip: Vec::new(),
        raw: if since_ms < first { vec![(since_ms, first)] } else { Vec::new() },
    }
}

/// `ms` rounded up to a multiple of `unit`.
fn ceil(ms: i64, unit: i64) -> i64 {
    let down = ms.div_euclid(unit) * unit;
    if down == ms {
        down
    } else {
        down.saturating_add(unit)
    }
}

/// Sorted ranges with touching ones joined.
fn coalesce(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        match out.last_mut() {
            Some(last) if last.1 >= from => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(start: i64, end: i64, time: TimeKey) -> RollupQuery {
        over(Source::Usage, vec![], vec![], time, start, end)
    }

    /// Each instant of `[start - 2 days, end + 2 days)`, minute by minute,
    /// is read once if inside, never if outside.
    fn read_once(q: &RollupQuery, start: i64, end: i64) {
        for ms in (start - 2 * DAY_MS..end + 2 * DAY_MS).step_by(60_000) {
            let in_raw = q.raw.iter().filter(|(a, b)| ms >= *a && ms < *b).count();
            let reads = in_raw + usize::from(q.reads_hour(hour_of(ms))) + usize::from(q.reads_day(ms));
            let inside = ms >= start && ms < end;
            assert_eq!(reads, usize::from(inside), "at {ms} in {q:?}");
        }
    }

    #[test]
    fn whole_days_and_hours_come_from_rollups_and_edges_from_raw_records() {
        let q = plain(HOUR_MS, 5 * HOUR_MS, TimeKey::Total);
        assert_eq!((q.days, q.hours.clone(), q.raw.len()), (None, vec![(HOUR_MS, 5 * HOUR_MS)], 0));
        let q = plain(HOUR_MS + 10, 5 * HOUR_MS + 20, TimeKey::Total);
        assert_eq!(q.hours, [(2 * HOUR_MS, 5 * HOUR_MS)]);
        assert_eq!(q.raw, [(HOUR_MS + 10, 2 * HOUR_MS), (5 * HOUR_MS, 5 * HOUR_MS + 20)]);
        let q = plain(HOUR_MS + 10, 2 * HOUR_MS + 20, TimeKey::Total);
        assert_eq!((q.hours.len(), q.raw), (0, vec![(HOUR_MS + 10, 2 * HOUR_MS + 20)]));
        let q = plain(7, 7, TimeKey::Total);
        assert_eq!((q.hours.len(), q.raw.len()), (0, 0), "an empty range reads nothing");
        // Ten days from 05:30 on: days from the daily rollup, whole hours
        // around them, the half hour raw.
        let (start, end) = (5 * HOUR_MS + 1_800_000, 10 * DAY_MS + 5 * HOUR_MS);
        let q = plain(start, end, TimeKey::Total);
        assert_eq!(q.days, Some((DAY_MS, 10 * DAY_MS)));
        assert_eq!(q.hours, [(6 * HOUR_MS, DAY_MS), (10 * DAY_MS, 10 * DAY_MS + 5 * HOUR_MS)]);
        assert_eq!(q.raw, [(start, 6 * HOUR_MS)]);
        read_once(&q, start, end);
        // Not by hour, nor for tags.
        assert_eq!(plain(start, end, TimeKey::Hour).days, None);
        assert_eq!(over(Source::Tags, vec![], vec![], TimeKey::Total, start, end).days, None);
        read_once(&plain(start, end, TimeKey::Hour), start, end);
    }

    #[test]
    fn days_in_an_offset_read_hours_and_cut_ones_raw() {
        // Days at +05:45 over three days starting mid-hour.
        let offsets = vec![(i64::MIN, 345 * 60_000)];
        let (start, end) = (DAY_MS - 345 * 60_000 + 17, 4 * DAY_MS - 345 * 60_000 + 5 * 60_000);
        let q = plain(start, end, TimeKey::Day { offsets: offsets.clone() });
        assert_eq!(q.days, None, "UTC days are not local days");
        assert_eq!(q.raw.len(), 4, "two edges and the two cut hours between: {:?}", q.raw);
        assert_eq!(q.skip.len(), 2);
        read_once(&q, start, end);
        // UTC days may use the daily rollup.
        let utc = plain(start, end, TimeKey::Day { offsets: vec![(i64::MIN, 0)] });
        assert_eq!(utc.days, Some((DAY_MS, 3 * DAY_MS)));
        read_once(&utc, start, end);
    }

    #[test]
    fn since_reads_from_the_next_hour_and_day_on() {
        let q = since(DAY_MS + HOUR_MS + 1);
        assert_eq!(q.days, Some((2 * DAY_MS, i64::MAX)));
        assert_eq!(q.hours, [(2 * HOUR_MS + DAY_MS, 2 * DAY_MS)]);
        assert_eq!(q.raw, [(DAY_MS + HOUR_MS + 1, DAY_MS + 2 * HOUR_MS)]);
        let q = since(DAY_MS);
        assert!(q.raw.is_empty() && q.hours.is_empty());
        assert!(q.selects(DAY_MS) && q.selects(i64::MAX / 2) && !q.selects(DAY_MS - 1));
    }
}

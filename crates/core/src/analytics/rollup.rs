//! The rollups' vocabulary, shared by the writer (what one batch adds to
//! them), the stores (what they keep, and how a query reads them) and the
//! in-memory fake (the same answers computed from raw records).
//!
//! Three tables of buckets (`bucket` = the UTC hour's or day's first unix
//! ms), kept by the usage writer in the transaction that inserts the raw
//! records, from the records that transaction actually inserted:
//!
//! | table | one row per | sums |
//! | --- | --- | --- |
//! | `usage_rollup_hourly` | hour × tenant × team × key × user × route × deployment × model × operation | [`Sums`] |
//! | `usage_rollup_daily` | the same per UTC day: what month-long reads scan (a 24th of the rows) | [`Sums`] |
//! | `usage_rollup_tags` | hour × tenant × tag key × tag value (a record with three tags is in three rows) | [`Sums`] |
//!
//! A dimension a record does not have is stored as `''` (unique keys treat
//! NULLs as distinct) and read back as `None`.

use crate::usage::UsageRecord;
use std::collections::{BTreeMap, HashSet};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// The first unix ms of the UTC hour holding `ms`: a record's bucket.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// The first unix ms of the UTC day holding `ms`.
pub fn utc_day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

/// A dimension usage is grouped or filtered by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    Tenant,
    Team,
    Key,
    User,
    Route,
    Deployment,
    Model,
    Operation,
    /// Tag rollup only.
    TagKey,
    /// Tag rollup only.
    TagValue,
}

impl Dim {
    /// Its column in the rollup tables (and, except for tags, in
    /// `usage_records`).
    pub fn column(self) -> &'static str {
        match self {
            Dim::Tenant => "tenant_id",
            Dim::Team => "team_id",
            Dim::Key => "key_id",
            Dim::User => "user_id",
            Dim::Route => "route",
            Dim::Deployment => "deployment",
            Dim::Model => "model",
            Dim::Operation => "operation",
            Dim::TagKey => "tag_key",
            Dim::TagValue => "tag_value",
        }
    }

    /// The record's value (`None` for the tag dimensions: a record has
    /// several).
    pub fn of(self, r: &UsageRecord) -> Option<&str> {
        match self {
            Dim::Tenant => r.tenant_id.as_deref(),
            Dim::Team => r.team_id.as_deref(),
            Dim::Key => r.key_id.as_deref(),
            Dim::User => r.user_id.as_deref(),
            Dim::Route => r.route.as_deref(),
            Dim::Deployment => r.deployment.as_deref(),
            Dim::Model => r.model.as_deref(),
            Dim::Operation => Some(r.operation.as_str()),
            Dim::TagKey | Dim::TagValue => None,
        }
    }

    /// Whether the tag rollup has this dimension.
    pub fn in_tags(self) -> bool {
        matches!(self, Dim::Tenant | Dim::TagKey | Dim::TagValue)
    }
}

/// Integer sums over a set of usage records: exact, and the same whether
/// read from the rollups or computed from the raw records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sums {
    /// Final records: one per request.
    pub requests: i64,
    /// Final records with a status ≥ 400 or an error kind (a stream cut
    /// after its `200` keeps the status and names the error).
    pub errors: i64,
    /// Records of upstream attempts (`attempt` ≥ 1).
    pub attempts: i64,
    /// Attempts with a status ≥ 400 or an error kind.
    pub failed_attempts: i64,
    /// Over every record (failed attempts included; they are usually 0).
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    /// Nano-dollars, over every record.
    pub cost_nanos: i64,
    /// Latency of final records, each truncated to whole microseconds.
    pub latency_us: i64,
}

impl Sums {
    /// The column names, in the order of [`Sums::values`].
    pub const FIELDS: [&'static str; 10] = [
        "requests",
        "errors",
        "attempts",
        "failed_attempts",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_nanos",
        "latency_us",
    ];

    /// One record's contribution.
    pub fn of(r: &UsageRecord) -> Sums {
        let failed = r.status >= 400 || r.error_kind.is_some();
        let upstream = r.attempt >= 1;
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Sums {
            requests: i64::from(r.is_final),
            errors: i64::from(r.is_final && failed),
            attempts: i64::from(upstream),
            failed_attempts: i64::from(upstream && failed),
            input_tokens: int(r.input_tokens.unwrap_or(0)),
            output_tokens: int(r.output_tokens.unwrap_or(0)),
            cache_read_tokens: int(r.cache_read_tokens),
            cache_write_tokens: int(r.cache_write_tokens),
            cost_nanos: r.cost_nanos.unwrap_or(0),
            // Truncation toward zero, as SQL's CAST / TRUNC do.
            latency_us: if r.is_final { (r.latency_ms * 1000.0) as i64 } else { 0 },
        }
    }

    pub fn values(&self) -> [i64; 10] {
        [
            self.requests,
            self.errors,
            self.attempts,
            self.failed_attempts,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cost_nanos,
            self.latency_us,
        ]
    }

    pub fn from_values(v: [i64; 10]) -> Sums {
        Sums {
            requests: v[0],
            errors: v[1],
            attempts: v[2],
            failed_attempts: v[3],
            input_tokens: v[4],
            output_tokens: v[5],
            cache_read_tokens: v[6],
            cache_write_tokens: v[7],
            cost_nanos: v[8],
            latency_us: v[9],
        }
    }

    pub fn add(&mut self, o: &Sums) {
        let mut v = self.values();
        for (a, b) in v.iter_mut().zip(o.values()) {
            *a = a.saturating_add(b);
        }
        *self = Sums::from_values(v);
    }

    pub fn total_tokens(&self) -> i64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

// ---------------------------------------------------------------------------
// Writing: what one batch adds

/// A row of `usage_rollup_hourly`; absent dimensions are `""`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UsageGroup<'a> {
    pub bucket: i64,
    pub tenant_id: &'a str,
    pub team_id: &'a str,
    pub key_id: &'a str,
    pub user_id: &'a str,
    pub route: &'a str,
    pub deployment: &'a str,
    pub model: &'a str,
    pub operation: &'a str,
}

/// A row of `usage_rollup_tags`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TagGroup<'a> {
    pub bucket: i64,
    pub tenant_id: &'a str,
    pub tag_key: String,
    pub tag_value: String,
}

/// What a batch adds to each rollup, one entry per row, in key order:
/// every writer upserts rows in the same order, so two replicas writing at
/// once cannot deadlock on PostgreSQL's row locks.
#[derive(Debug, Default)]
pub struct BatchRollup<'a> {
    /// `usage_rollup_hourly`.
    pub usage: Vec<(UsageGroup<'a>, Sums)>,
    /// `usage_rollup_daily`: the same groups by UTC day.
    pub daily: Vec<(UsageGroup<'a>, Sums)>,
    pub tags: Vec<(TagGroup<'a>, Sums)>,
}

/// The tags of a record (`{"k":"v",…}` as the gateway writes them);
/// anything else is no tags. Values that are not strings are skipped, as
/// the stores' SQL does.
pub fn tags_of(tags: Option<&str>) -> Vec<(String, String)> {
    let Some(text) = tags else { return Vec::new() };
    match serde_json::from_str::<BTreeMap<String, serde_json::Value>>(text) {
        Ok(map) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Folds the records a transaction inserted into rollup rows.
pub fn rollup<'a>(records: impl IntoIterator<Item = &'a UsageRecord>) -> BatchRollup<'a> {
    let mut usage: BTreeMap<UsageGroup<'a>, Sums> = BTreeMap::new();
    let mut tags: BTreeMap<TagGroup<'a>, Sums> = BTreeMap::new();
    for r in records {
        let s = Sums::of(r);
        let bucket = hour_of(r.created_at);
        let text = |v: &'a Option<String>| v.as_deref().unwrap_or("");
        let group = UsageGroup {
            bucket,
            tenant_id: text(&r.tenant_id),
            team_id: text(&r.team_id),
            key_id: text(&r.key_id),
            user_id: text(&r.user_id),
            route: text(&r.route),
            deployment: text(&r.deployment),
            model: text(&r.model),
            operation: r.operation.as_str(),
        };
        usage.entry(group).or_default().add(&s);
        for (tag_key, tag_value) in tags_of(r.tags.as_deref()) {
            tags.entry(TagGroup { bucket, tenant_id: text(&r.tenant_id), tag_key, tag_value }).or_default().add(&s);
        }
    }
    let mut daily: BTreeMap<UsageGroup<'a>, Sums> = BTreeMap::new();
    for (g, s) in &usage {
        daily.entry(UsageGroup { bucket: utc_day_of(g.bucket), ..g.clone() }).or_default().add(s);
    }
    BatchRollup {
        usage: usage.into_iter().collect(),
        daily: daily.into_iter().collect(),
        tags: tags.into_iter().collect(),
    }
}

/// The records of `chunk` that an `INSERT … RETURNING id` inserted, given
/// the ids it returned: all of them when every row came back, else the
/// first record of each returned id (a batch may hold a record twice).
pub fn inserted<'a>(chunk: &'a [UsageRecord], returned: &[String]) -> Vec<&'a UsageRecord> {
    if returned.len() == chunk.len() {
        return chunk.iter().collect();
    }
    let mut left: HashSet<&str> = returned.iter().map(String::as_str).collect();
    chunk.iter().filter(|r| left.remove(r.id.as_str())).collect()
}

// ---------------------------------------------------------------------------
// Reading

/// Which rollup a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Usage,
    /// By tag: dimensions [`Dim::Tenant`], [`Dim::TagKey`], [`Dim::TagValue`] only.
    Tags,
}

/// How rows are keyed in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeKey {
    /// One row per group over the whole selection.
    Total,
    /// Per UTC hour: the row's time is the hour's first unix ms.
    Hour,
    /// Per local calendar day: the row's time is the day's number since
    /// 1970-01-01, `(ms + offset) / day` with the offset in effect at `ms`.
    /// `offsets` are `(from_ms, offset_ms)`, ascending; the first holds
    /// before the second too (one pair for a fixed offset, one more per
    /// daylight-saving change). An hour that a local midnight cuts in two
    /// (offsets that are not whole hours) is never read from the rollup:
    /// the query lists it in `skip` and reads it in `raw`.
    Day { offsets: Vec<(i64, i64)> },
}

/// A read of the rollups: sums grouped by `dims` (and time), over the
/// records that `days`, `hours` and `raw` select (never one record twice),
/// that match every filter.
#[derive(Clone, Debug, PartialEq)]
pub struct RollupQuery {
    pub source: Source,
    pub dims: Vec<Dim>,
    /// Equality filters (`Dim::Tenant` scopes a tenant).
    pub filters: Vec<(Dim, String)>,
    pub time: TimeKey,
    /// Whole UTC days `[from, to)` (day-aligned) read from the daily
    /// rollup (source `Usage`, time `Total` or UTC days only).
    pub days: Option<(i64, i64)>,
    /// Whole hours `[from, to)` (hour-aligned) read from the hourly rollup…
    pub hours: Vec<(i64, i64)>,
    /// …but these (sorted hour starts).
    pub skip: Vec<i64>,
    /// Ranges `[from, to)` of `created_at` read from the raw records
    /// (partial hours); never overlapping an hour read from the rollup.
    pub raw: Vec<(i64, i64)>,
}

/// One group's sums. Rows may repeat a key (a store answers the rollup and
/// the raw records apart); the reader adds them up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RollupRow {
    /// In the order of the query's `dims`.
    pub keys: Vec<Option<String>>,
    /// Per [`TimeKey`]; `None` for `Total`.
    pub time: Option<i64>,
    pub sums: Sums,
}

impl RollupQuery {
    /// Whether the hour beginning at `bucket` is read from the hourly rollup.
    pub fn reads_hour(&self, bucket: i64) -> bool {
        let in_range = self.hours.iter().any(|&(from, to)| bucket >= from && bucket < to);
        in_range && self.skip.binary_search(&bucket).is_err()
    }

    /// Whether the instant `ms` is read from the daily rollup.
    pub fn reads_day(&self, ms: i64) -> bool {
        self.days.is_some_and(|(from, to)| ms >= from && ms < to)
    }

    /// Whether the row time changes inside the hour beginning at `bucket`
    /// (a local midnight strictly inside it).
    pub fn cut(&self, bucket: i64) -> bool {
        let TimeKey::Day { offsets } = &self.time else { return false };
        let day = |ms| super::calendar::day_in(offsets, ms);
        let first = day(bucket);
        let inner = offsets.iter().filter(|(from, _)| *from > bucket && *from < bucket + HOUR_MS);
        day(bucket + HOUR_MS - 1) != first
            || inner.into_iter().any(|(from, _)| day(from - 1) != first || day(*from) != first)
    }

    /// Whether a record created at `ms` is selected.
    pub fn selects(&self, ms: i64) -> bool {
        self.reads_day(ms) || self.reads_hour(hour_of(ms)) || self.raw.iter().any(|&(from, to)| ms >= from && ms < to)
    }

    /// The row time of an instant (a record's, or an hour's first ms).
    pub fn time_of(&self, ms: i64) -> Option<i64> {
        match &self.time {
            TimeKey::Total => None,
            TimeKey::Hour => Some(hour_of(ms)),
            TimeKey::Day { offsets } => Some(super::calendar::day_in(offsets, ms)),
        }
    }

    /// The answer computed from raw records (each id once): what the
    /// in-memory store answers, and what a real store must equal.
    pub fn evaluate(&self, records: &[UsageRecord]) -> Vec<RollupRow> {
        let mut out: BTreeMap<(Vec<Option<String>>, Option<i64>), Sums> = BTreeMap::new();
        for r in records.iter().filter(|r| self.selects(r.created_at)) {
            let s = Sums::of(r);
            let time = self.time_of(r.created_at);
            let plain = |d: Dim| d.of(r).filter(|v| !v.is_empty()).map(str::to_string);
            match self.source {
                Source::Usage => {
                    if self.filters.iter().all(|(d, v)| d.of(r) == Some(v.as_str())) {
                        let keys = self.dims.iter().map(|d| plain(*d)).collect();
                        out.entry((keys, time)).or_default().add(&s);
                    }
                }
                Source::Tags => {
                    for (k, v) in tags_of(r.tags.as_deref()) {
                        let value = |d: Dim| match d {
                            Dim::TagKey => Some(k.clone()),
                            Dim::TagValue => Some(v.clone()),
                            other => plain(other),
                        };
                        if self.filters.iter().all(|(d, want)| value(*d).as_deref() == Some(want.as_str())) {
                            let keys = self.dims.iter().map(|d| value(*d)).collect();
                            out.entry((keys, time)).or_default().add(&s);
                        }
                    }
                }
            }
        }
        out.into_iter().map(|((keys, time), sums)| RollupRow { keys, time, sums }).collect()
    }
}

/// Adds up rows with the same keys and time, in key order.
pub fn merge(rows: Vec<RollupRow>) -> Vec<RollupRow> {
    let mut out: BTreeMap<(Vec<Option<String>>, Option<i64>), Sums> = BTreeMap::new();
    for r in rows {
        out.entry((r.keys, r.time)).or_default().add(&r.sums);
    }
    out.into_iter().map(|((keys, time), sums)| RollupRow { keys, time, sums }).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(id: &str, at: i64, key: &str, cost: i64) -> UsageRecord {
        UsageRecord {
            id: id.into(),
            created_at: at,
            key_id: Some(key.into()),
            operation: "chat".into(),
            status: 200,
            attempt: 1,
            attempts: 1,
            cost_nanos: Some(cost),
            input_tokens: Some(10),
            output_tokens: Some(5),
            latency_ms: 1.2345,
            ..UsageRecord::default()
        }
    }

    #[test]
    fn a_record_counts_as_its_kind_says() {
        let ok = record("a", 0, "k", 7);
        assert_eq!(
            Sums::of(&ok),
            Sums {
                requests: 1,
                attempts: 1,
                input_tokens: 10,
                output_tokens: 5,
                cost_nanos: 7,
                latency_us: 1234,
                ..Sums::default()
            }
        );
        let failed_attempt = UsageRecord { is_final: false, status: 503, ..record("b", 0, "k", 0) };
        let s = Sums::of(&failed_attempt);
        assert_eq!((s.requests, s.errors, s.attempts, s.failed_attempts, s.latency_us), (0, 0, 1, 1, 0));
        let cut = UsageRecord { error_kind: Some("upstream_failed".into()), ..record("c", 0, "k", 3) };
        assert_eq!((Sums::of(&cut).errors, Sums::of(&cut).requests), (1, 1), "a stream cut after its 200");
        let refused = UsageRecord { status: 429, attempt: 0, ..record("d", 0, "k", 0) };
        assert_eq!((Sums::of(&refused).errors, Sums::of(&refused).attempts), (1, 0));
    }

    #[test]
    fn a_batch_folds_into_sorted_groups_by_hour_and_tag() {
        let mut a = record("a", HOUR_MS + 5, "k2", 1);
        a.tags = Some(r#"{"env":"prod","team":"x"}"#.into());
        let b = record("b", HOUR_MS + 9, "k2", 2);
        let c = record("c", 2 * HOUR_MS, "k1", 4);
        let mut d = record("d", 5, "k9", 8);
        d.tags = Some("not json".into());
        let batch = [a, b, c, d];
        let r = rollup(batch.iter());
        let keys: Vec<(i64, &str, i64)> = r.usage.iter().map(|(g, s)| (g.bucket, g.key_id, s.cost_nanos)).collect();
        assert_eq!(keys, [(0, "k9", 8), (HOUR_MS, "k2", 3), (2 * HOUR_MS, "k1", 4)]);
        let days: Vec<(i64, &str, i64)> = r.daily.iter().map(|(g, s)| (g.bucket, g.key_id, s.cost_nanos)).collect();
        assert_eq!(days, [(0, "k1", 4), (0, "k2", 3), (0, "k9", 8)]);
        let tags: Vec<(&str, &str)> = r.tags.iter().map(|(g, _)| (g.tag_key.as_str(), g.tag_value.as_str())).collect();
        assert_eq!(tags, [("env", "prod"), ("team", "x")]);
        assert_eq!(r.usage[1].0.tenant_id, "", "an absent dimension is ''");
    }

    #[test]
    fn only_what_was_inserted_is_counted_once() {
        let batch = [record("a", 0, "k", 1), record("b", 0, "k", 1), record("a", 0, "k", 1)];
        assert_eq!(inserted(&batch, &["a".into(), "b".into(), "c".into()]).len(), 3);
        let got: Vec<&str> = inserted(&batch, &["a".into(), "b".into()]).iter().map(|r| r.id.as_str()).collect();
        assert_eq!(got, ["a", "b"]);
        assert!(inserted(&batch, &[]).is_empty());
    }

    #[test]
    fn a_day_key_in_a_half_hour_offset_leaves_cut_hours_to_raw_reads() {
        // +05:30: local midnight is 18:30 UTC.
        let q = RollupQuery {
            source: Source::Usage,
            dims: vec![],
            filters: vec![],
            time: TimeKey::Day { offsets: vec![(i64::MIN, 330 * 60_000)] },
            days: None,
            hours: vec![(0, DAY_MS)],
            skip: vec![],
            raw: vec![],
        };
        let cut: Vec<i64> = (0..24).filter(|h| q.cut(h * HOUR_MS)).collect();
        assert_eq!(cut, [18]);
        assert_eq!(q.time_of(18 * HOUR_MS + 29 * 60_000), Some(0));
        assert_eq!(q.time_of(18 * HOUR_MS + 30 * 60_000), Some(1));
        let whole = RollupQuery { time: TimeKey::Day { offsets: vec![(i64::MIN, 8 * HOUR_MS)] }, ..q.clone() };
        assert!((0..24).all(|h| !whole.cut(h * HOUR_MS)), "whole-hour offsets cut nothing");
        // A change of offset inside an hour across midnight (+00:30 → -00:30
        // at 00:10 UTC: local 00:40 → 23:40) cuts it.
        let odd = RollupQuery {
            time: TimeKey::Day { offsets: vec![(i64::MIN, 1_800_000), (DAY_MS + 600_000, -1_800_000)] },
            ..q
        };
        assert!(odd.cut(DAY_MS) && !odd.cut(DAY_MS + HOUR_MS));
        let skipping = RollupQuery { skip: vec![HOUR_MS], ..whole };
        assert!(skipping.reads_hour(0) && !skipping.reads_hour(HOUR_MS));
    }

    #[test]
    fn evaluation_filters_groups_and_reads_tags() {
        let mut a = record("a", 10, "k1", 1);
        a.tags = Some(r#"{"env":"prod"}"#.into());
        a.tenant_id = Some("t".into());
        let mut b = record("b", 20, "k2", 2);
        b.tags = Some(r#"{"env":"dev","n":1}"#.into());
        b.tenant_id = Some("t".into());
        let records = [a, b, record("c", HOUR_MS, "k1", 4)];
        let q = RollupQuery {
            source: Source::Usage,
            dims: vec![Dim::Key],
            filters: vec![],
            time: TimeKey::Total,
            days: None,
            hours: vec![],
            skip: vec![],
            raw: vec![(0, 15), (15, HOUR_MS)],
        };
        let costs: Vec<i64> = q.evaluate(&records).iter().map(|r| r.sums.cost_nanos).collect();
        assert_eq!(costs, [1, 2], "the record at HOUR_MS is outside");
        let tags = RollupQuery {
            source: Source::Tags,
            dims: vec![Dim::TagKey, Dim::TagValue],
            filters: vec![(Dim::Tenant, "t".into())],
            ..q
        };
        let rows = tags.evaluate(&records);
        let got: Vec<(Option<&str>, i64)> = rows.iter().map(|r| (r.keys[1].as_deref(), r.sums.cost_nanos)).collect();
        assert_eq!(got, [(Some("dev"), 2), (Some("prod"), 1)], "a number-valued tag is skipped");
    }
}

//! The hourly usage rollups in SQL, for both backends (see
//! `switchyard_core::analytics::rollup` for what they hold): the upserts
//! the usage writer runs in the transaction that inserts the raw records,
//! and the reads of a [`RollupQuery`].
//!
//! | part of a read | from | selected by |
//! | --- | --- | --- |
//! | whole UTC days | `usage_rollup_daily` | `bucket` (the primary key's first column) |
//! | whole hours | `usage_rollup_hourly` / `usage_rollup_tags` | `bucket` |
//! | partial hours | `usage_records` | `id` (the primary key: ids begin with the millisecond they were made) and `created_at` |
//!
//! What differs between the dialects is named where it is used: placeholders,
//! the tags' JSON (`json_each` / `jsonb_each`), truncating a double.

use crate::sql::{err, Placeholders};
use sqlx::database::HasStatementCache;
use sqlx::encode::Encode;
use sqlx::error::BoxDynError;
use sqlx::{Arguments, ColumnIndex, Database, Decode, Executor, IntoArguments, Row, Transaction, Type};
use switchyard_core::analytics::rollup::{rollup, Sums, TagGroup, UsageGroup, DAY_MS, HOUR_MS};
use switchyard_core::analytics::{Dim, RollupQuery, RollupRow, Source, TimeKey};
use switchyard_core::ids::time_ordered_floor;
use switchyard_core::store::StoreError;
use switchyard_core::usage::{UsageRecord, ID_PREFIX};

/// Rows per multi-row upsert, largest first; each size's statement is
/// prepared once (19 columns × 64 rows = 1,216 parameters).
pub(crate) const UPSERT_SIZES: &[usize] = &[64, 16, 4, 1];

/// Raw ranges per read statement.
const RANGES_PER_READ: usize = 64;

/// How far a record's id may be from its `created_at`: both are taken when
/// the request arrives, the id first. The bound only narrows the index
/// range; `created_at` decides.
const ID_SLACK_MS: i64 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn placeholders(self) -> Placeholders {
        match self {
            Dialect::Sqlite => Placeholders::Anonymous,
            Dialect::Postgres => Placeholders::Numbered,
        }
    }
}

fn placeholder(p: Placeholders, n: usize) -> String {
    match p {
        Placeholders::Anonymous => "?".to_string(),
        Placeholders::Numbered => format!("${n}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Table {
    Usage,
    Daily,
    Tags,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Usage => "usage_rollup_hourly",
            Table::Daily => "usage_rollup_daily",
            Table::Tags => "usage_rollup_tags",
        }
    }

    /// The primary key.
    fn keys(self) -> &'static str {
        match self {
            Table::Usage | Table::Daily => {
                "bucket, tenant_id, team_id, key_id, user_id, route, deployment, model, operation"
            }
            Table::Tags => "bucket, tenant_id, tag_key, tag_value",
        }
    }

    fn width(self) -> usize {
        self.keys().split(", ").count() + Sums::FIELDS.len()
    }
}

/// `INSERT … VALUES (…) × rows ON CONFLICT (key) DO UPDATE SET x = x + excluded.x`.
pub(crate) fn upsert_sql(table: Table, rows: usize, p: Placeholders) -> String {
    let name = table.name();
    let width = table.width();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=width).map(|c| placeholder(p, r * width + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect();
    let sets: Vec<String> = Sums::FIELDS.iter().map(|f| format!("{f} = {name}.{f} + excluded.{f}")).collect();
    format!(
        "INSERT INTO {name} ({}, {}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {}",
        table.keys(),
        Sums::FIELDS.join(", "),
        values.join(", "),
        table.keys(),
        sets.join(", ")
    )
}

/// The upsert statements of each size, built once per backend.
pub(crate) fn upsert_statements(p: Placeholders) -> Vec<(Table, usize, String)> {
    let mut out = Vec::new();
    for table in [Table::Usage, Table::Daily, Table::Tags] {
        for &n in UPSERT_SIZES {
            out.push((table, n, upsert_sql(table, n, p)));
        }
    }
    out
}

fn bind_sums<'q, A>(args: &mut A, s: &Sums) -> Result<(), BoxDynError>
where
    A: Arguments<'q>,
    i64: Encode<'q, A::Database> + Type<A::Database>,
{
    for v in s.values() {
        args.add(v)?;
    }
    Ok(())
}

pub(crate) fn bind_usage_group<'q, A>(args: &mut A, g: &UsageGroup<'q>, s: &Sums) -> Result<(), BoxDynError>
where
    A: Arguments<'q>,
    &'q str: Encode<'q, A::Database> + Type<A::Database>,
    i64: Encode<'q, A::Database> + Type<A::Database>,
{
    args.add(g.bucket)?;
    for v in [g.tenant_id, g.team_id, g.key_id, g.user_id, g.route, g.deployment, g.model, g.operation] {
        args.add(v)?;
    }
    bind_sums(args, s)
}

pub(crate) fn bind_tag_group<'q, A>(args: &mut A, g: &'q TagGroup<'q>, s: &Sums) -> Result<(), BoxDynError>
where
    A: Arguments<'q>,
    &'q str: Encode<'q, A::Database> + Type<A::Database>,
    i64: Encode<'q, A::Database> + Type<A::Database>,
{
    args.add(g.bucket)?;
    args.add(g.tenant_id)?;
    args.add(g.tag_key.as_str())?;
    args.add(g.tag_value.as_str())?;
    bind_sums(args, s)
}

/// The upsert statements of one backend, built once (see [`upsert_statements`]).
pub(crate) type Upserts = [(Table, usize, String)];

fn upsert_text(upserts: &'static Upserts, table: Table, rows: usize) -> &'static str {
    upserts.iter().find(|(t, n, _)| *t == table && *n == rows).map_or("", |(_, _, sql)| sql.as_str())
}

/// Adds what `inserted` (the records this transaction inserted, and only
/// those) holds to both rollups: one row per group, in key order.
pub(crate) async fn upsert<DB>(
    tx: &mut Transaction<'_, DB>,
    upserts: &'static Upserts,
    inserted: &[&UsageRecord],
) -> Result<(), StoreError>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: Default + IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
{
    if inserted.is_empty() {
        return Ok(());
    }
    let batch = rollup(inserted.iter().copied());
    for (table, groups) in [(Table::Usage, &batch.usage), (Table::Daily, &batch.daily)] {
        let mut rest = &groups[..];
        while !rest.is_empty() {
            let size = UPSERT_SIZES.iter().copied().find(|n| *n <= rest.len()).unwrap_or(1);
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let mut args = DB::Arguments::default();
            for (g, s) in chunk {
                bind_usage_group(&mut args, g, s).map_err(err)?;
            }
            let sql = upsert_text(upserts, table, size);
            sqlx::query_with(sql, args).persistent(true).execute(&mut **tx).await.map_err(err)?;
        }
    }
    let mut rest = &batch.tags[..];
    while !rest.is_empty() {
        let size = UPSERT_SIZES.iter().copied().find(|n| *n <= rest.len()).unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut args = DB::Arguments::default();
        for (g, s) in chunk {
            bind_tag_group(&mut args, g, s).map_err(err)?;
        }
        let sql = upsert_text(upserts, Table::Tags, size);
        sqlx::query_with(sql, args).persistent(true).execute(&mut **tx).await.map_err(err)?;
    }
    Ok(())
}

/// Answers `q` inside `tx` (a read transaction: one snapshot for the
/// rollup and the raw reads).
pub(crate) async fn read<DB>(
    tx: &mut Transaction<'_, DB>,
    dialect: Dialect,
    q: &RollupQuery,
) -> Result<Vec<RollupRow>, StoreError>
where
    DB: Database + HasStatementCache,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: Default + IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB>,
{
    let mut out = Vec::new();
    for s in reads(q, dialect) {
        let mut args = DB::Arguments::default();
        for a in &s.args {
            match a {
                Arg::Text(t) => args.add(t.as_str()),
                Arg::Int(i) => args.add(*i),
            }
            .map_err(err)?;
        }
        // Not kept prepared: the text varies with the query.
        let rows = sqlx::query_with(&s.sql, args).persistent(false).fetch_all(&mut **tx).await.map_err(err)?;
        for row in &rows {
            out.push(decode(row, q)?);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Reads

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// One statement of a read, with its arguments in placeholder order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Read {
    pub sql: String,
    pub args: Vec<Arg>,
}

/// Builds a statement's WHERE with numbered or anonymous placeholders.
struct Builder {
    p: Placeholders,
    args: Vec<Arg>,
}

impl Builder {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        placeholder(self.p, self.args.len())
    }
}

/// The statements that answer `q`: one for the whole days, one per range
/// of whole hours, and one per `RANGES_PER_READ` raw ranges. None for an
/// empty selection.
pub(crate) fn reads(q: &RollupQuery, d: Dialect) -> Vec<Read> {
    let mut out = Vec::new();
    if let Some((from, to)) = q.days.filter(|(from, to)| from < to) {
        out.push(rollup_read(q, d, Table::Daily, from, to));
    }
    let hourly = match q.source {
        Source::Usage => Table::Usage,
        Source::Tags => Table::Tags,
    };
    for &(from, to) in q.hours.iter().filter(|(from, to)| from < to) {
        out.push(rollup_read(q, d, hourly, from, to));
    }
    for ranges in q.raw.chunks(RANGES_PER_READ) {
        out.push(raw_read(q, d, ranges));
    }
    out
}

/// The sums as SELECT expressions over rollup rows.
fn rollup_sums() -> String {
    Sums::FIELDS.iter().map(|f| format!("CAST(SUM({f}) AS BIGINT)")).collect::<Vec<_>>().join(", ")
}

fn group_by(q: &RollupQuery) -> String {
    let n = q.dims.len() + usize::from(q.time != TimeKey::Total);
    if n == 0 {
        // One row, and none at all when nothing matched (as evaluated).
        return " HAVING COUNT(*) > 0".to_string();
    }
    let positions: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    format!(" GROUP BY {}", positions.join(", "))
}

/// The local day of the instant `at` (a column): `(at + offset) / day`
/// with the offset in effect then, one branch per daylight-saving change.
/// Integers only, written into the text (not client input).
fn day_expr(at: &str, offsets: &[(i64, i64)]) -> String {
    let day = |offset: i64| format!("({at} + ({offset})) / {DAY_MS}");
    match offsets {
        [] => day(0),
        [(_, only)] => day(*only),
        [(_, first), rest @ ..] => {
            let mut sql = String::from("CASE");
            let mut offset = *first;
            for (from, next) in rest {
                sql.push_str(&format!(" WHEN {at} < {from} THEN {}", day(offset)));
                offset = *next;
            }
            sql.push_str(&format!(" ELSE {} END", day(offset)));
            sql
        }
    }
}

fn rollup_read(q: &RollupQuery, d: Dialect, table: Table, from: i64, to: i64) -> Read {
    let mut b = Builder { p: d.placeholders(), args: Vec::new() };
    let mut select: Vec<String> = q.dims.iter().map(|dim| dim.column().to_string()).collect();
    match &q.time {
        TimeKey::Total => {}
        TimeKey::Hour => select.push("bucket".into()),
        TimeKey::Day { offsets } => select.push(day_expr("bucket", offsets)),
    }
    select.push(rollup_sums());
    let mut sql = format!("SELECT {} FROM {}", select.join(", "), table.name());
    sql.push_str(&format!(" WHERE bucket >= {}", b.arg(Arg::Int(from))));
    sql.push_str(&format!(" AND bucket < {}", b.arg(Arg::Int(to))));
    let skip: Vec<i64> = match table {
        Table::Daily => Vec::new(),
        _ => q.skip.iter().copied().filter(|h| *h >= from && *h < to).collect(),
    };
    if !skip.is_empty() {
        // Hours a local midnight cuts are read from the raw records.
        let list: Vec<String> = skip.iter().map(|h| b.arg(Arg::Int(*h))).collect();
        sql.push_str(&format!(" AND bucket NOT IN ({})", list.join(", ")));
    }
    for (dim, value) in &q.filters {
        sql.push_str(&format!(" AND {} = {}", dim.column(), b.arg(Arg::Text(value.clone()))));
    }
    sql.push_str(&group_by(q));
    Read { sql, args: b.args }
}

/// A dimension's expression over a raw record (`u`) and its tag (`t`).
fn raw_dim(dim: Dim, d: Dialect) -> String {
    match (dim, d) {
        (Dim::TagKey, _) => "t.key".into(),
        (Dim::TagValue, Dialect::Sqlite) => "t.value".into(),
        (Dim::TagValue, Dialect::Postgres) => "(t.value #>> '{}')".into(),
        (other, _) => format!("u.{}", other.column()),
    }
}

fn raw_read(q: &RollupQuery, d: Dialect, ranges: &[(i64, i64)]) -> Read {
    let mut b = Builder { p: d.placeholders(), args: Vec::new() };
    let failed = "(u.status >= 400 OR u.error_kind IS NOT NULL)";
    // Truncated toward zero, as the writer does.
    let latency = match d {
        Dialect::Sqlite => "CAST(u.latency_ms * 1000 AS INTEGER)",
        Dialect::Postgres => "CAST(TRUNC(u.latency_ms * 1000) AS BIGINT)",
    };
    let sums = [
        "CASE WHEN u.is_final THEN 1 ELSE 0 END".to_string(),
        format!("CASE WHEN u.is_final AND {failed} THEN 1 ELSE 0 END"),
        "CASE WHEN u.attempt >= 1 THEN 1 ELSE 0 END".to_string(),
        format!("CASE WHEN u.attempt >= 1 AND {failed} THEN 1 ELSE 0 END"),
        "COALESCE(u.input_tokens, 0)".to_string(),
        "COALESCE(u.output_tokens, 0)".to_string(),
        "u.cache_read_tokens".to_string(),
        "u.cache_write_tokens".to_string(),
        "COALESCE(u.cost_nanos, 0)".to_string(),
        format!("CASE WHEN u.is_final THEN {latency} ELSE 0 END"),
    ];
    let mut select: Vec<String> = q.dims.iter().map(|dim| format!("COALESCE({}, '')", raw_dim(*dim, d))).collect();
    match &q.time {
        TimeKey::Total => {}
        TimeKey::Hour => select.push(format!("(u.created_at / {HOUR_MS}) * {HOUR_MS}")),
        TimeKey::Day { offsets } => select.push(day_expr("u.created_at", offsets)),
    }
    select.extend(sums.iter().map(|s| format!("CAST(SUM({s}) AS BIGINT)")));
    // One branch per range, each an index range on the primary key: with
    // the ranges OR'ed in one WHERE, SQLite (3.46, no statistics) chose a
    // scan of the whole table.
    let branches: Vec<String> = ranges
        .iter()
        .map(|&(lo, hi)| {
            let id_lo = b.arg(Arg::Text(time_ordered_floor(ID_PREFIX, lo.saturating_sub(ID_SLACK_MS))));
            let id_hi = b.arg(Arg::Text(time_ordered_floor(ID_PREFIX, hi.saturating_add(ID_SLACK_MS))));
            let at_lo = b.arg(Arg::Int(lo));
            let at_hi = b.arg(Arg::Int(hi));
            format!(
                "SELECT * FROM usage_records WHERE id >= {id_lo} AND id < {id_hi} \
                 AND created_at >= {at_lo} AND created_at < {at_hi}"
            )
        })
        .collect();
    let records = format!("({}) u", branches.join(" UNION ALL "));
    let from = match (q.source, d) {
        (Source::Usage, _) => records,
        // A record with three tags is three rows; anything but a JSON
        // object of strings is no tags (as the writer reads them).
        (Source::Tags, Dialect::Sqlite) => format!(
            "{records}, json_each(CASE WHEN json_valid(u.tags) THEN \
             CASE WHEN json_type(u.tags) = 'object' THEN u.tags END END) t"
        ),
        (Source::Tags, Dialect::Postgres) => format!(
            "{records} CROSS JOIN LATERAL jsonb_each(CASE WHEN u.tags LIKE '{{%' \
             THEN u.tags::jsonb ELSE '{{}}'::jsonb END) t"
        ),
    };
    let mut sql = format!("SELECT {} FROM {from} WHERE 1 = 1", select.join(", "));
    match (q.source, d) {
        (Source::Tags, Dialect::Sqlite) => sql.push_str(" AND t.type = 'text'"),
        (Source::Tags, Dialect::Postgres) => sql.push_str(" AND jsonb_typeof(t.value) = 'string'"),
        (Source::Usage, _) => {}
    }
    for (dim, value) in &q.filters {
        sql.push_str(&format!(" AND {} = {}", raw_dim(*dim, d), b.arg(Arg::Text(value.clone()))));
    }
    sql.push_str(&group_by(q));
    Read { sql, args: b.args }
}

/// A row of a read: the dimensions (`''` is absent), the time, the sums.
pub(crate) fn decode<'r, R>(row: &'r R, q: &RollupQuery) -> Result<RollupRow, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut keys = Vec::with_capacity(q.dims.len());
    for i in 0..q.dims.len() {
        let v: String = row.try_get(i).map_err(err)?;
        keys.push(Some(v).filter(|v| !v.is_empty()));
    }
    let mut at = q.dims.len();
    let time = if q.time == TimeKey::Total {
        None
    } else {
        at += 1;
        Some(row.try_get::<i64, _>(at - 1).map_err(err)?)
    };
    let mut sums = [0i64; 10];
    for (i, s) in sums.iter_mut().enumerate() {
        *s = row.try_get(at + i).map_err(err)?;
    }
    Ok(RollupRow { keys, time, sums: Sums::from_values(sums) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_add_to_what_is_there() {
        let sql = upsert_sql(Table::Tags, 2, Placeholders::Numbered);
        assert!(sql.starts_with("INSERT INTO usage_rollup_tags (bucket, tenant_id, tag_key, tag_value, requests,"));
        assert!(sql.contains("$28) ON CONFLICT (bucket, tenant_id, tag_key, tag_value) DO UPDATE SET"), "{sql}");
        assert!(sql.ends_with("latency_us = usage_rollup_tags.latency_us + excluded.latency_us"), "{sql}");
        assert_eq!(Table::Usage.width(), 19);
    }

    #[test]
    fn reads_split_whole_hours_from_raw_ranges() {
        let q = RollupQuery {
            source: Source::Usage,
            dims: vec![Dim::Model],
            filters: vec![(Dim::Tenant, "acme".into())],
            time: TimeKey::Day { offsets: vec![(i64::MIN, 330 * 60_000)] },
            days: None,
            hours: vec![(0, 10 * HOUR_MS)],
            skip: vec![HOUR_MS, 20 * HOUR_MS],
            raw: (0..70).map(|i| (i * 10, i * 10 + 5)).collect(),
        };
        let r = reads(&q, Dialect::Postgres);
        assert_eq!(r.len(), 3, "whole hours, then 64 + 6 ranges");
        assert_eq!(
            r[0].sql,
            "SELECT model, (bucket + (19800000)) / 86400000, CAST(SUM(requests) AS BIGINT), \
             CAST(SUM(errors) AS BIGINT), CAST(SUM(attempts) AS BIGINT), CAST(SUM(failed_attempts) AS BIGINT), \
             CAST(SUM(input_tokens) AS BIGINT), CAST(SUM(output_tokens) AS BIGINT), \
             CAST(SUM(cache_read_tokens) AS BIGINT), CAST(SUM(cache_write_tokens) AS BIGINT), \
             CAST(SUM(cost_nanos) AS BIGINT), CAST(SUM(latency_us) AS BIGINT) FROM usage_rollup_hourly \
             WHERE bucket >= $1 AND bucket < $2 AND bucket NOT IN ($3) AND tenant_id = $4 GROUP BY 1, 2"
        );
        assert_eq!(r[1].args.len(), 64 * 4 + 1);
        assert!(r[2].sql.ends_with("AND u.tenant_id = $25 GROUP BY 1, 2"), "{}", r[2].sql);
        assert_eq!(r[1].args[0], Arg::Text("use_000000000000".into()), "ids from the range's start less the slack");
        let none = RollupQuery { hours: vec![], raw: vec![], ..q.clone() };
        assert!(reads(&none, Dialect::Sqlite).is_empty());
        // Whole days from the daily rollup, keyed by UTC day.
        let days = RollupQuery {
            time: TimeKey::Day { offsets: vec![(i64::MIN, 0)] },
            days: Some((0, 2 * DAY_MS)),
            hours: vec![(2 * DAY_MS, 2 * DAY_MS + HOUR_MS)],
            skip: vec![],
            raw: vec![],
            ..q.clone()
        };
        let r = reads(&days, Dialect::Sqlite);
        assert!(
            r[0].sql.contains("(bucket + (0)) / 86400000") && r[0].sql.contains("FROM usage_rollup_daily"),
            "{}",
            r[0].sql
        );
        assert!(r[1].sql.contains("FROM usage_rollup_hourly"));
        // Daylight saving: one branch per offset.
        let dst = RollupQuery { time: TimeKey::Day { offsets: vec![(i64::MIN, 3_600_000), (500, 7_200_000)] }, ..q };
        assert!(reads(&dst, Dialect::Sqlite)[0].sql.starts_with(
            "SELECT model, CASE WHEN bucket < 500 THEN (bucket + (3600000)) / 86400000 \
             ELSE (bucket + (7200000)) / 86400000 END,"
        ));
    }
}

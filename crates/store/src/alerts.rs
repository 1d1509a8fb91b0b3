//! Budget alerts in both backends (`budget_alerts`: SQLite migration 0007,
//! PostgreSQL 0006). The SQL is written once with the backend's
//! placeholders; only binding and reading differ (`refused` is INTEGER 0/1
//! in SQLite and BOOLEAN in PostgreSQL, whose INTEGER columns read as
//! `i32`).
//!
//! | operation | SQL |
//! | --- | --- |
//! | insert once | `INSERT … ON CONFLICT (scope, period, window_start, dimension, threshold) DO NOTHING`: one row affected = fired now |
//! | mark | `UPDATE … SET status, attempts, last_error, updated_at WHERE id` |
//! | claim | `UPDATE … SET updated_at = now WHERE id AND status = 'pending' AND updated_at = seen`: one row affected = taken over |
//! | page | filters like the audit page, newest first by id |

use crate::sql::{err, Placeholders};
use switchyard_core::alerts::record::{dimension_str, parse_dimension, parse_period, period_str};
use switchyard_core::alerts::{AlertQuery, AlertRecord, AlertStatus, Delivery};
use switchyard_core::store::StoreError;

const COLUMNS: &str = "id, tenant_id, scope, period, window_start, window_end, dimension, threshold, limit_value, \
    spent, refused, fired_at, status, attempts, last_error, updated_at";
const COLUMN_COUNT: usize = 16;

fn insert_sql(p: Placeholders) -> String {
    let values: Vec<String> = (1..=COLUMN_COUNT).map(|n| p.at(n)).collect();
    format!(
        "INSERT INTO budget_alerts ({COLUMNS}) VALUES ({}) \
         ON CONFLICT (scope, period, window_start, dimension, threshold) DO NOTHING",
        values.join(", ")
    )
}

fn mark_sql(p: Placeholders) -> String {
    format!(
        "UPDATE budget_alerts SET status = {}, attempts = {}, last_error = {}, updated_at = {} WHERE id = {}",
        p.at(1),
        p.at(2),
        p.at(3),
        p.at(4),
        p.at(5)
    )
}

fn claim_sql(p: Placeholders) -> String {
    format!(
        "UPDATE budget_alerts SET updated_at = {} WHERE id = {} AND status = 'pending' AND updated_at = {}",
        p.at(1),
        p.at(2),
        p.at(3)
    )
}

fn pending_sql(p: Placeholders) -> String {
    format!(
        "SELECT {COLUMNS} FROM budget_alerts WHERE status = 'pending' AND updated_at < {} \
         ORDER BY updated_at, id LIMIT {}",
        p.at(1),
        p.at(2)
    )
}

/// One argument of the page query.
#[derive(Debug, PartialEq)]
enum Arg<'a> {
    Text(&'a str),
    Int(i64),
}

/// `SELECT … FROM budget_alerts …` for `q`, newest first, and its
/// arguments in placeholder order.
fn page_sql(q: &AlertQuery, p: Placeholders) -> (String, Vec<Arg<'_>>) {
    let mut conditions: Vec<(&str, Arg<'_>)> = Vec::new();
    if let Some(t) = &q.tenant_id {
        conditions.push(("tenant_id =", Arg::Text(t)));
    }
    if let Some(s) = &q.scope {
        conditions.push(("scope =", Arg::Text(s)));
    }
    if let Some(s) = q.status {
        conditions.push(("status =", Arg::Text(s.as_str())));
    }
    if let Some(s) = q.since {
        conditions.push(("fired_at >=", Arg::Int(s)));
    }
    if let Some(u) = q.until {
        conditions.push(("fired_at <", Arg::Int(u)));
    }
    if let Some(b) = &q.before {
        conditions.push(("id <", Arg::Text(b)));
    }
    let mut sql = format!("SELECT {COLUMNS} FROM budget_alerts WHERE 1 = 1");
    let mut args = Vec::with_capacity(conditions.len() + 1);
    for (condition, arg) in conditions {
        args.push(arg);
        sql.push_str(&format!(" AND {condition} {}", p.at(args.len())));
    }
    args.push(Arg::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", p.at(args.len())));
    (sql, args)
}

/// A row's text columns, checked.
fn record(
    (id, tenant_id, scope): (String, Option<String>, String),
    (period, dimension, status): (String, String, String),
    (window_start, window_end, threshold, limit, spent, fired_at): (i64, i64, i64, i64, i64, i64),
    (refused, attempts, last_error, updated_at): (bool, i64, Option<String>, i64),
) -> Result<AlertRecord, StoreError> {
    let bad = |what: &str, v: &str| err(format!("budget_alerts row {id}: unknown {what} {v:?}"));
    Ok(AlertRecord {
        period: parse_period(&period).ok_or_else(|| bad("period", &period))?,
        dimension: parse_dimension(&dimension).ok_or_else(|| bad("dimension", &dimension))?,
        delivery: Delivery {
            status: AlertStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
            attempts: u32::try_from(attempts).unwrap_or(0),
            last_error,
            updated_at,
        },
        threshold: u32::try_from(threshold).unwrap_or(0),
        id,
        tenant_id,
        scope,
        window_start,
        window_end,
        limit,
        spent,
        refused,
        fired_at,
    })
}

pub(crate) mod sqlite {
    use super::*;
    use sqlx::sqlite::{SqliteArguments, SqliteRow};
    use sqlx::{Arguments, Row, SqlitePool};

    const P: Placeholders = Placeholders::Anonymous;

    fn read(row: &SqliteRow) -> Result<AlertRecord, StoreError> {
        let text = |c: &str| row.try_get::<String, _>(c).map_err(err);
        let int = |c: &str| row.try_get::<i64, _>(c).map_err(err);
        record(
            (text("id")?, row.try_get("tenant_id").map_err(err)?, text("scope")?),
            (text("period")?, text("dimension")?, text("status")?),
            (
                int("window_start")?,
                int("window_end")?,
                int("threshold")?,
                int("limit_value")?,
                int("spent")?,
                int("fired_at")?,
            ),
            (int("refused")? != 0, int("attempts")?, row.try_get("last_error").map_err(err)?, int("updated_at")?),
        )
    }

    pub(crate) async fn insert(pool: &SqlitePool, a: &AlertRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(&insert_sql(P))
            .bind(&a.id)
            .bind(&a.tenant_id)
            .bind(&a.scope)
            .bind(period_str(a.period))
            .bind(a.window_start)
            .bind(a.window_end)
            .bind(dimension_str(a.dimension))
            .bind(i64::from(a.threshold))
            .bind(a.limit)
            .bind(a.spent)
            .bind(i64::from(a.refused))
            .bind(a.fired_at)
            .bind(a.delivery.status.as_str())
            .bind(i64::from(a.delivery.attempts))
            .bind(&a.delivery.last_error)
            .bind(a.delivery.updated_at)
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn mark(pool: &SqlitePool, id: &str, d: &Delivery) -> Result<(), StoreError> {
        sqlx::query(&mark_sql(P))
            .bind(d.status.as_str())
            .bind(i64::from(d.attempts))
            .bind(&d.last_error)
            .bind(d.updated_at)
            .bind(id)
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    pub(crate) async fn claim(pool: &SqlitePool, id: &str, seen: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(&claim_sql(P)).bind(now).bind(id).bind(seen).execute(pool).await.map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn pending(
        pool: &SqlitePool,
        stale_before: i64,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(&pending_sql(P))
            .bind(stale_before)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await
            .map_err(err)?;
        rows.iter().map(read).collect()
    }

    pub(crate) async fn page(pool: &SqlitePool, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let (sql, values) = page_sql(q, P);
        let mut args = SqliteArguments::default();
        for v in values {
            match v {
                Arg::Text(t) => args.add(t),
                Arg::Int(i) => args.add(i),
            }
            .map_err(err)?;
        }
        let rows = sqlx::query_with(&sql, args).fetch_all(pool).await.map_err(err)?;
        rows.iter().map(read).collect()
    }
}

pub(crate) mod postgres {
    use super::*;
    use sqlx::postgres::{PgArguments, PgRow};
    use sqlx::{Arguments, PgPool, Row};

    const P: Placeholders = Placeholders::Numbered;

    fn read(row: &PgRow) -> Result<AlertRecord, StoreError> {
        let text = |c: &str| row.try_get::<String, _>(c).map_err(err);
        let int = |c: &str| row.try_get::<i64, _>(c).map_err(err);
        let int32 = |c: &str| row.try_get::<i32, _>(c).map(i64::from).map_err(err);
        record(
            (text("id")?, row.try_get("tenant_id").map_err(err)?, text("scope")?),
            (text("period")?, text("dimension")?, text("status")?),
            (
                int("window_start")?,
                int("window_end")?,
                int32("threshold")?,
                int("limit_value")?,
                int("spent")?,
                int("fired_at")?,
            ),
            (
                row.try_get("refused").map_err(err)?,
                int32("attempts")?,
                row.try_get("last_error").map_err(err)?,
                int("updated_at")?,
            ),
        )
    }

    fn int32(n: u32) -> i32 {
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    pub(crate) async fn insert(pool: &PgPool, a: &AlertRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(&insert_sql(P))
            .bind(&a.id)
            .bind(&a.tenant_id)
            .bind(&a.scope)
            .bind(period_str(a.period))
            .bind(a.window_start)
            .bind(a.window_end)
            .bind(dimension_str(a.dimension))
            .bind(int32(a.threshold))
            .bind(a.limit)
            .bind(a.spent)
            .bind(a.refused)
            .bind(a.fired_at)
            .bind(a.delivery.status.as_str())
            .bind(int32(a.delivery.attempts))
            .bind(&a.delivery.last_error)
            .bind(a.delivery.updated_at)
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn mark(pool: &PgPool, id: &str, d: &Delivery) -> Result<(), StoreError> {
        sqlx::query(&mark_sql(P))
            .bind(d.status.as_str())
            .bind(int32(d.attempts))
            .bind(&d.last_error)
            .bind(d.updated_at)
            .bind(id)
            .execute(pool)
            .await
            .map_err(err)?;
        Ok(())
    }

    pub(crate) async fn claim(pool: &PgPool, id: &str, seen: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(&claim_sql(P)).bind(now).bind(id).bind(seen).execute(pool).await.map_err(err)?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn pending(
        pool: &PgPool,
        stale_before: i64,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(&pending_sql(P))
            .bind(stale_before)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(pool)
            .await
            .map_err(err)?;
        rows.iter().map(read).collect()
    }

    pub(crate) async fn page(pool: &PgPool, q: &AlertQuery) -> Result<Vec<AlertRecord>, StoreError> {
        let (sql, values) = page_sql(q, P);
        let mut args = PgArguments::default();
        for v in values {
            match v {
                Arg::Text(t) => args.add(t),
                Arg::Int(i) => args.add(i),
            }
            .map_err(err)?;
        }
        let rows = sqlx::query_with(&sql, args).fetch_all(pool).await.map_err(err)?;
        rows.iter().map(read).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_arguments() {
        let q = AlertQuery {
            tenant_id: Some("t".into()),
            status: Some(AlertStatus::Failed),
            until: Some(9),
            limit: 5,
            ..AlertQuery::default()
        };
        let (sql, args) = page_sql(&q, Placeholders::Numbered);
        assert!(
            sql.ends_with("WHERE 1 = 1 AND tenant_id = $1 AND status = $2 AND fired_at < $3 ORDER BY id DESC LIMIT $4"),
            "{sql}"
        );
        assert_eq!(args, [Arg::Text("t"), Arg::Text("failed"), Arg::Int(9), Arg::Int(5)]);
        assert!(insert_sql(Placeholders::Numbered).contains("$16) ON CONFLICT"));
        assert_eq!(insert_sql(Placeholders::Anonymous).matches('?').count(), COLUMN_COUNT);
        assert!(claim_sql(Placeholders::Anonymous).ends_with("id = ? AND status = 'pending' AND updated_at = ?"));
    }
}

//! What both backends say alike: how a database error is classified, the
//! usage INSERT's columns, and the audit page's filters. Only the
//! placeholders differ (`?` for SQLite, `$n` for PostgreSQL).

use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;
use switchyard_core::access::audit::AuditQuery;
use switchyard_core::store::StoreError;

/// A migrator over embedded `(version, description, sql)` files.
pub(crate) fn migrator(files: &'static [(i64, &'static str, &'static str)]) -> Migrator {
    let migrations: Vec<Migration> = files
        .iter()
        .map(|(v, d, sql)| Migration::new(*v, Cow::Borrowed(*d), MigrationType::Simple, Cow::Borrowed(*sql), false))
        .collect();
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

pub(crate) fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A uniqueness rule refusing a write is a conflict, not an outage.
pub(crate) fn write_err(e: sqlx::Error) -> StoreError {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_string()),
        _ => err(e),
    }
}

/// The columns of `usage_records`, in the order every backend binds them.
pub(crate) const USAGE_COLUMNS: &str = "id, request_id, created_at, key_id, tenant_id, operation, route, deployment, \
    stream, status, error_kind, input_tokens, output_tokens, usage_source, attempts, latency_ms, ttft_ms, overhead_ms, \
    cache_read_tokens, cache_write_tokens, cost_nanos, team_id, user_id, end_user, tags, attempt, is_final, model, \
    classification, route_reason";

pub(crate) const USAGE_COLUMN_COUNT: usize = 30;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Placeholders {
    /// `?`, `?`, … (SQLite)
    Anonymous,
    /// `$1`, `$2`, … (PostgreSQL)
    Numbered,
}

impl Placeholders {
    /// The placeholder of the `n`th argument, counting from 1.
    pub(crate) fn at(self, n: usize) -> String {
        match self {
            Placeholders::Anonymous => "?".to_string(),
            Placeholders::Numbered => format!("${n}"),
        }
    }
}

/// `(…), (…)`: the VALUES of a multi-row usage INSERT of `rows` rows.
pub(crate) fn usage_values(rows: usize, p: Placeholders) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=USAGE_COLUMN_COUNT).map(|c| p.at(r * USAGE_COLUMN_COUNT + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// One argument of the audit page's query.
#[derive(Debug, PartialEq)]
pub(crate) enum AuditArg<'a> {
    Text(&'a str),
    Int(i64),
}

/// `SELECT doc FROM audit_log …` for `q`, newest first, and its arguments
/// in placeholder order.
pub(crate) fn audit_page(q: &AuditQuery, p: Placeholders) -> (String, Vec<AuditArg<'_>>) {
    let mut conditions: Vec<(String, AuditArg<'_>)> = Vec::new();
    let text = [
        ("tenant_id", &q.tenant_id),
        ("actor_id", &q.actor_id),
        ("action", &q.action),
        ("target_kind", &q.target_kind),
        ("target_id", &q.target_id),
    ];
    for (column, value) in text {
        if let Some(v) = value {
            conditions.push((format!("{column} ="), AuditArg::Text(v)));
        }
    }
    if let Some(s) = q.since {
        conditions.push(("at >=".into(), AuditArg::Int(s)));
    }
    if let Some(u) = q.until {
        conditions.push(("at <".into(), AuditArg::Int(u)));
    }
    if let Some(b) = &q.before {
        conditions.push(("id <".into(), AuditArg::Text(b)));
    }
    let mut sql = String::from("SELECT doc FROM audit_log WHERE 1 = 1");
    let mut args = Vec::with_capacity(conditions.len() + 1);
    for (condition, arg) in conditions {
        args.push(arg);
        sql.push_str(&format!(" AND {condition} {}", p.at(args.len())));
    }
    args.push(AuditArg::Int(q.limit as i64));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", p.at(args.len())));
    (sql, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_argument_order() {
        let q = AuditQuery { action: Some("a".into()), since: Some(5), limit: 3, ..AuditQuery::default() };
        let (sql, args) = audit_page(&q, Placeholders::Numbered);
        assert_eq!(sql, "SELECT doc FROM audit_log WHERE 1 = 1 AND action = $1 AND at >= $2 ORDER BY id DESC LIMIT $3");
        assert_eq!(args, [AuditArg::Text("a"), AuditArg::Int(5), AuditArg::Int(3)]);
        let (sql, _) = audit_page(&q, Placeholders::Anonymous);
        assert!(sql.ends_with("action = ? AND at >= ? ORDER BY id DESC LIMIT ?"), "{sql}");
        assert_eq!(usage_values(2, Placeholders::Numbered).matches('$').count(), 2 * USAGE_COLUMN_COUNT);
        assert!(usage_values(2, Placeholders::Numbered).ends_with("$59, $60)"));
        assert_eq!(usage_values(1, Placeholders::Anonymous), format!("({})", vec!["?"; USAGE_COLUMN_COUNT].join(", ")));
    }
}

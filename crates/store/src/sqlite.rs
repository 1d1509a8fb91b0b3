//! SQLite implementation. WAL mode so the usage writer and readers do not
//! block each other; a small pool because SQLite has one writer anyway.

use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Arguments, Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use switchyard_core::access::audit::{AuditQuery, AuditRecord};
use switchyard_core::access::Kind;
use switchyard_core::alerts::{AlertQuery, AlertRecord, Delivery};
use switchyard_core::analytics::{self, RollupQuery, RollupRow};
use switchyard_core::store::{Change, ConfigVersion, DirEntry, NodeRow, SpendRow, Store, StoreError, StoreFuture};
use switchyard_core::usage::UsageRecord;
use switchyard_types::UsageSource;

use crate::rollup::Dialect;

use crate::sql::{
    audit_page, err, migrator, usage_values, write_err, AuditArg, Placeholders, USAGE_COLUMNS, USAGE_COLUMN_COUNT,
};

/// Rows per multi-row INSERT, largest first; 25 columns × 256 rows stays
/// under SQLite's 32 766 bound parameters.
const CHUNK_SIZES: &[usize] = &[256, 64, 16, 4, 1];

/// The INSERT for `rows` rows (one of [`CHUNK_SIZES`]), written once (building
/// it per batch cost ~2,700 instructions per record). With `returning` it
/// answers the ids of the rows inserted, not of those ignored: what
/// the rollups may count when a batch is replayed.
fn insert_usage_sql(rows: usize, returning: bool) -> &'static str {
    static SQL: std::sync::LazyLock<[Vec<String>; 2]> = std::sync::LazyLock::new(|| {
        [false, true].map(|returning| {
            CHUNK_SIZES
                .iter()
                .map(|&n| {
                    let values = usage_values(n, Placeholders::Anonymous);
                    let tail = if returning { " RETURNING id" } else { "" };
                    format!(
                        "INSERT OR IGNORE INTO usage_records ({USAGE_COLUMNS}) VALUES {values}{tail}",
                        values = values,
                        tail = tail
                    )
                })
                .collect()
        })
    });
    let i = CHUNK_SIZES.iter().position(|&n| n == rows).unwrap_or(CHUNK_SIZES.len() - 1);
    &SQL[usize::from(returning)][i]
}

/// Inserts `batch` in multi-row chunks of fixed sizes (one round trip per
/// chunk, each statement prepared once). Answers the records inserted; with
/// `returning` false, `None` as soon as a chunk met an existing record
/// (the caller starts again with `returning`).
async fn insert_usage<'b>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    batch: &'b [UsageRecord],
    returning: bool,
) -> Result<Option<Vec<&'b UsageRecord>>, StoreError> {
    let mut inserted = Vec::with_capacity(batch.len());
    let mut rest = batch;
    while !rest.is_empty() {
        let size = CHUNK_SIZES.iter().copied().find(|n| *n <= rest.len()).unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut args = SqliteArguments::default();
        args.reserve(size * USAGE_COLUMN_COUNT, 0);
        for r in chunk {
            bind_usage(&mut args, r).map_err(err)?;
        }
        let sql = insert_usage_sql(size, returning);
        if returning {
            let ids: Vec<String> =
                sqlx::query_scalar_with(sql, args).persistent(true).fetch_all(&mut **tx).await.map_err(err)?;
            inserted.extend(analytics::rollup::inserted(chunk, &ids));
        } else {
            let done = sqlx::query_with(sql, args).persistent(true).execute(&mut **tx).await.map_err(err)?;
            if done.rows_affected() != chunk.len() as u64 {
                return Ok(None);
            }
            inserted.extend(chunk);
        }
    }
    Ok(Some(inserted))
}

/// The rollups' upserts, built once.
static ROLLUP_UPSERTS: std::sync::LazyLock<Vec<(crate::rollup::Table, usize, String)>> =
    std::sync::LazyLock::new(|| crate::rollup::upsert_statements(Placeholders::Anonymous));

/// One usage record's values, in the order of `insert_usage_sql`'s columns.
fn bind_usage<'q>(args: &mut SqliteArguments<'q>, r: &'q UsageRecord) -> Result<(), sqlx::error::BoxDynError> {
    args.add(r.id.as_str())?;
    args.add(r.request_id.as_str())?;
    args.add(r.created_at)?;
    args.add(r.key_id.as_deref())?;
    args.add(r.tenant_id.as_deref())?;
    args.add(r.operation.as_str())?;
    args.add(r.route.as_deref())?;
    args.add(r.deployment.as_deref())?;
    args.add(r.stream as i64)?;
    args.add(r.status as i64)?;
    args.add(r.error_kind.as_deref())?;
    args.add(r.input_tokens.map(|n| n as i64))?;
    args.add(r.output_tokens.map(|n| n as i64))?;
    args.add(r.usage_source.as_str())?;
    args.add(r.attempts as i64)?;
    args.add(r.latency_ms)?;
    args.add(r.ttft_ms)?;
    args.add(r.overhead_ms)?;
    args.add(i64::try_from(r.cache_read_tokens).unwrap_or(i64::MAX))?;
    args.add(i64::try_from(r.cache_write_tokens).unwrap_or(i64::MAX))?;
    args.add(r.cost_nanos)?;
    args.add(r.team_id.as_deref())?;
    args.add(r.user_id.as_deref())?;
    args.add(r.end_user.as_deref())?;
    args.add(r.tags.as_deref())?;
    args.add(i64::from(r.attempt))?;
    args.add(r.is_final as i64)?;
    args.add(r.model.as_deref())?;
    args.add(r.classification.as_deref())?;
    args.add(r.route_reason.as_deref())?;
    Ok(())
}

/// Embedded migrations, in order. Add a file and a line; never edit an
/// applied one (the checksum would refuse to start).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "keys and usage", include_str!("../migrations/0001_keys_and_usage.sql")),
    (2, "directory and audit", include_str!("../migrations/0002_directory_and_audit.sql")),
    (3, "usage cost", include_str!("../migrations/0003_usage_cost.sql")),
    (4, "usage attribution", include_str!("../migrations/0004_usage_attribution.sql")),
    (5, "usage attempts", include_str!("../migrations/0005_usage_attempts.sql")),
    (6, "usage rollups", include_str!("../migrations/0006_usage_rollups.sql")),
    (7, "budget alerts", include_str!("../migrations/0007_budget_alerts.sql")),
    (8, "usage routing", include_str!("../migrations/0008_usage_routing.sql")),
    (9, "nodes", include_str!("../migrations/0009_nodes.sql")),
    (10, "config versions", include_str!("../migrations/0010_config_versions.sql")),
];

pub struct SqliteStore {
    pool: SqlitePool,
}

fn entry_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<DirEntry, StoreError> {
    let kind: String = row.try_get("kind").map_err(err)?;
    Ok(DirEntry {
        kind: Kind::parse(&kind).ok_or_else(|| err(format!("unknown directory kind {kind:?}")))?,
        id: row.try_get("id").map_err(err)?,
        tenant_id: row.try_get("tenant_id").map_err(err)?,
        name: row.try_get("name").map_err(err)?,
        secret_hash: row.try_get("secret_hash").map_err(err)?,
        doc: row.try_get("doc").map_err(err)?,
        seq: row.try_get("seq").map_err(err)?,
        deleted: row.try_get::<i64, _>("deleted").map_err(err)? != 0,
    })
}

async fn insert_audit(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, r: &AuditRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT OR IGNORE INTO audit_log (id, at, tenant_id, actor_id, action, target_kind, target_id, doc)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&r.id)
    .bind(r.at)
    .bind(&r.tenant_id)
    .bind(&r.actor.id)
    .bind(&r.action)
    .bind(r.target.as_ref().map(|t| t.kind.as_str()))
    .bind(r.target.as_ref().map(|t| t.id.as_str()))
    .bind(serde_json::to_string(r).map_err(err)?)
    .execute(&mut **tx)
    .await
    .map_err(err)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` — `sqlite://path`
    /// or `sqlite::memory:` — and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let memory = url.contains(":memory:");
        if !memory {
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
            }
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            // A larger page cache keeps index pages in memory between
            // batches instead of re-reading them (seen in profiles).
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        // An in-memory database exists per connection: keep exactly one.
        let pool = SqlitePoolOptions::new()
            .max_connections(if memory { 1 } else { 4 })
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if memory { None } else { Some(Duration::from_secs(3600)) })
            .connect_with(options)
            .await
            .map_err(err)?;
        let migrator = migrator(MIGRATIONS);
        migrator.run(&pool).await.map_err(|e| StoreError::Unavailable(format!("migrations failed: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Every usage record, oldest first (tests and analytics).
    pub async fn usage_records(&self) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM usage_records ORDER BY id").fetch_all(&self.pool).await.map_err(err)?;
        rows.iter().map(usage_from_row).collect()
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn usage_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<UsageRecord, StoreError> {
    let source = match row.try_get::<String, _>("usage_source").map_err(err)?.as_str() {
        "reported" => UsageSource::Reported,
        "estimated" => UsageSource::Estimated,
        _ => UsageSource::None,
    };
    Ok(UsageRecord {
        id: row.try_get("id").map_err(err)?,
        request_id: row.try_get("request_id").map_err(err)?,
        created_at: row.try_get("created_at").map_err(err)?,
        key_id: row.try_get("key_id").map_err(err)?,
        tenant_id: row.try_get("tenant_id").map_err(err)?,
        operation: row.try_get("operation").map_err(err)?,
        route: row.try_get("route").map_err(err)?,
        deployment: row.try_get("deployment").map_err(err)?,
        stream: row.try_get::<i64, _>("stream").map_err(err)? != 0,
        status: row.try_get::<i64, _>("status").map_err(err)? as u16,
        error_kind: row.try_get("error_kind").map_err(err)?,
        input_tokens: row.try_get::<Option<i64>, _>("input_tokens").map_err(err)?.map(|n| n as u64),
        output_tokens: row.try_get::<Option<i64>, _>("output_tokens").map_err(err)?.map(|n| n as u64),
        usage_source: source,
        attempts: row.try_get::<i64, _>("attempts").map_err(err)? as u32,
        latency_ms: row.try_get("latency_ms").map_err(err)?,
        ttft_ms: row.try_get("ttft_ms").map_err(err)?,
        overhead_ms: row.try_get("overhead_ms").map_err(err)?,
        cache_read_tokens: row.try_get::<i64, _>("cache_read_tokens").map_err(err)? as u64,
        cache_write_tokens: row.try_get::<i64, _>("cache_write_tokens").map_err(err)? as u64,
        cost_nanos: row.try_get("cost_nanos").map_err(err)?,
        team_id: row.try_get("team_id").map_err(err)?,
        user_id: row.try_get("user_id").map_err(err)?,
        end_user: row.try_get("end_user").map_err(err)?,
        tags: row.try_get("tags").map_err(err)?,
        attempt: row.try_get::<i64, _>("attempt").map_err(err)? as u32,
        is_final: row.try_get::<i64, _>("is_final").map_err(err)? != 0,
        model: row.try_get("model").map_err(err)?,
        classification: row.try_get("classification").map_err(err)?,
        route_reason: row.try_get("route_reason").map_err(err)?,
    })
}

impl Store for SqliteStore {
    fn directory_since(&self, after: i64) -> StoreFuture<'_, Vec<DirEntry>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT kind, id, tenant_id, name, secret_hash, doc, seq, deleted FROM directory WHERE seq > ? ORDER BY seq",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
            rows.iter().map(entry_from_row).collect()
        })
    }

    fn directory_seq(&self) -> StoreFuture<'_, i64> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT seq FROM directory_sequence WHERE id = 1")
                .fetch_one(&self.pool)
                .await
                .map_err(err)
        })
    }

    fn apply<'a>(&'a self, changes: &'a [Change], audit: &'a AuditRecord) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(err)?;
            // Writing first takes SQLite's write lock at once: changes are
            // serialised, so seq order is commit order.
            let last: i64 =
                sqlx::query_scalar("UPDATE directory_sequence SET seq = seq + ? WHERE id = 1 RETURNING seq")
                    .bind(changes.len() as i64)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(err)?;
            let first = last - changes.len() as i64 + 1;
            for (i, c) in changes.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO directory (kind, id, tenant_id, name, secret_hash, doc, seq, deleted)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (kind, id) DO UPDATE SET tenant_id = excluded.tenant_id, name = excluded.name,
                       secret_hash = excluded.secret_hash, doc = excluded.doc, seq = excluded.seq, deleted = excluded.deleted",
                )
                .bind(c.kind.as_str())
                .bind(&c.id)
                .bind(&c.tenant_id)
                .bind(&c.name)
                .bind(c.doc.as_ref().and(c.secret_hash.as_deref()))
                .bind(c.doc.as_deref().unwrap_or(""))
                .bind(first + i as i64)
                .bind(i64::from(c.doc.is_none()))
                .execute(&mut *tx)
                .await
                .map_err(write_err)?;
            }
            insert_audit(&mut tx, audit).await?;
            tx.commit().await.map_err(write_err)?;
            Ok(last)
        })
    }

    fn write_audit<'a>(&'a self, batch: &'a [AuditRecord]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await.map_err(err)?;
            for r in batch {
                insert_audit(&mut tx, r).await?;
            }
            tx.commit().await.map_err(err)
        })
    }

    fn audit_page<'a>(&'a self, q: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>> {
        Box::pin(async move {
            let (sql, values) = audit_page(q, Placeholders::Anonymous);
            let mut args = SqliteArguments::default();
            for v in values {
                match v {
                    AuditArg::Text(t) => args.add(t),
                    AuditArg::Int(i) => args.add(i),
                }
                .map_err(err)?;
            }
            let docs: Vec<String> = sqlx::query_scalar_with(&sql, args).fetch_all(&self.pool).await.map_err(err)?;
            docs.iter().map(|d| serde_json::from_str(d).map_err(err)).collect()
        })
    }

    fn write_usage<'a>(&'a self, batch: &'a [UsageRecord]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // Almost always every record is new: insert without RETURNING and
            // check the count. Only a replay that meets records already
            // stored (a spill file, a retried batch that had committed)
            // takes the slower way, which learns which rows went in.
            let mut tx = self.pool.begin().await.map_err(err)?;
            let inserted = match insert_usage(&mut tx, batch, false).await? {
                Some(all) => all,
                None => {
                    tx.rollback().await.map_err(err)?;
                    tx = self.pool.begin().await.map_err(err)?;
                    insert_usage(&mut tx, batch, true).await?.unwrap_or_default()
                }
            };
            // The rollups in the same transaction: committed together or not
            // at all (rows upserted in key order, so concurrent writers take
            // row locks in one order).
            crate::rollup::upsert(&mut tx, &ROLLUP_UPSERTS, &inserted).await?;
            tx.commit().await.map_err(err)
        })
    }

    fn spend_since(&self, since_ms: i64) -> StoreFuture<'_, Vec<SpendRow>> {
        Box::pin(async move {
            let rows = self.usage_rollup(std::slice::from_ref(&analytics::plan::since(since_ms))).await?;
            Ok(analytics::spend_rows(rows.into_iter().flatten().collect()))
        })
    }

    fn usage_rollup<'a>(&'a self, queries: &'a [RollupQuery]) -> StoreFuture<'a, Vec<Vec<RollupRow>>> {
        Box::pin(async move {
            // A read transaction: one snapshot (WAL) for every statement.
            let mut tx = self.pool.begin().await.map_err(err)?;
            let mut answers = Vec::with_capacity(queries.len());
            for query in queries {
                answers.push(crate::rollup::read(&mut tx, Dialect::Sqlite, query).await?);
            }
            tx.rollback().await.map_err(err)?;
            Ok(answers)
        })
    }

    fn insert_alert<'a>(&'a self, alert: &'a AlertRecord) -> StoreFuture<'a, bool> {
        Box::pin(crate::alerts::sqlite::insert(&self.pool, alert))
    }

    fn mark_alert<'a>(&'a self, id: &'a str, delivery: &'a Delivery) -> StoreFuture<'a, ()> {
        Box::pin(crate::alerts::sqlite::mark(&self.pool, id, delivery))
    }

    fn alerts_page<'a>(&'a self, query: &'a AlertQuery) -> StoreFuture<'a, Vec<AlertRecord>> {
        Box::pin(crate::alerts::sqlite::page(&self.pool, query))
    }

    fn pending_alerts(&self, stale_before: i64, limit: usize) -> StoreFuture<'_, Vec<AlertRecord>> {
        Box::pin(crate::alerts::sqlite::pending(&self.pool, stale_before, limit))
    }

    fn claim_alert<'a>(&'a self, id: &'a str, seen: i64, now: i64) -> StoreFuture<'a, bool> {
        Box::pin(crate::alerts::sqlite::claim(&self.pool, id, seen, now))
    }

    fn put_node<'a>(&'a self, row: &'a NodeRow) -> StoreFuture<'a, ()> {
        Box::pin(crate::nodes::put_sqlite(&self.pool, row))
    }

    fn nodes(&self) -> StoreFuture<'_, Vec<NodeRow>> {
        Box::pin(crate::nodes::all_sqlite(&self.pool))
    }

    fn put_config_version<'a>(&'a self, v: &'a ConfigVersion, after: i64) -> StoreFuture<'a, i64> {
        Box::pin(crate::config_versions::put_sqlite(&self.pool, v, after))
    }

    fn newest_config_version(&self) -> StoreFuture<'_, Option<ConfigVersion>> {
        Box::pin(crate::config_versions::newest_sqlite(&self.pool))
    }

    fn newest_config_version_number(&self) -> StoreFuture<'_, i64> {
        Box::pin(crate::config_versions::number_sqlite(&self.pool))
    }

    fn config_versions(&self) -> StoreFuture<'_, Vec<ConfigVersion>> {
        Box::pin(crate::config_versions::all_sqlite(&self.pool))
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.pool).await.map_err(err)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    // Behaviour shared with PostgreSQL is tested for both in `crate::tests`;
    // what is here is SQLite's own history.
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;

    #[tokio::test]
    async fn keys_of_the_first_schema_move_into_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/old.db", dir.path().display());
        let pool = SqlitePool::connect(&format!("{url}?mode=rwc")).await.unwrap();
        // A database at schema 1, holding two keys of the same name.
        let m1 = Migrator {
            migrations: Cow::Owned(vec![Migration::new(
                1,
                Cow::Borrowed("keys and usage"),
                MigrationType::Simple,
                Cow::Borrowed(MIGRATIONS[0].2),
                false,
            )]),
            ..Migrator::DEFAULT
        };
        m1.run(&pool).await.unwrap();
        for (id, name, meta) in [("key_1", "ci", "null"), ("key_2", "ci", "{\"a\":1}")] {
            sqlx::query("INSERT INTO api_keys VALUES (?, ?, ?, 'sk-sy-abcd', 'default', NULL, NULL, '[]', '[\"chat\"]', 'active', NULL, ?, 5)")
                .bind(id).bind(name).bind(format!("hash{id}")).bind(meta).execute(&pool).await.unwrap();
        }
        pool.close().await;
        let store = SqliteStore::open(&url).await.unwrap();
        let entries = store.directory_since(0).await.unwrap();
        assert_eq!(entries.len(), 2);
        let keys: Vec<switchyard_core::keys::KeyRecord> =
            entries.iter().map(|e| serde_json::from_str(&e.doc).unwrap()).collect();
        assert_ne!(keys[0].name, keys[1].name, "duplicate names were made unique");
        assert_eq!(keys[0].roles, [switchyard_core::access::Role::Developer]);
        assert_eq!(keys[1].metadata["a"], 1);
        assert_eq!(keys[0].allowed_routes.as_deref(), Some(&["chat".to_string()][..]));
        assert_eq!(entries[1].secret_hash.as_deref(), Some("hashkey_2"));
        assert_eq!(store.directory_seq().await.unwrap(), 2);
    }
}

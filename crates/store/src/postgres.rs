//! PostgreSQL implementation: the same tables, columns and rules as SQLite
//! (see `migrations/postgres/`), for several replicas sharing one database.
//!
//! | concern | SQLite | PostgreSQL |
//! | --- | --- | --- |
//! | `apply` serialised by | the database's one write lock | the `directory_sequence` row lock, taken first |
//! | replayed usage / audit ids | `INSERT OR IGNORE` | `ON CONFLICT (id) DO NOTHING` |
//! | bound parameters per statement | 32 766 | 65 535 |
//! | flags (`stream`, `deleted`) | INTEGER 0/1 | BOOLEAN |

use crate::sql::{audit_page, err, migrator, usage_values, write_err, AuditArg, Placeholders, USAGE_COLUMNS};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::{Arguments, Connection, Row};
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

/// Embedded migrations, in order; a list of its own (the SQLite history
/// starts from an older schema). Add a file and a line; never edit an
/// applied one (the checksum would refuse to start).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "schema", include_str!("../migrations/postgres/0001_schema.sql")),
    (2, "usage cost", include_str!("../migrations/postgres/0002_usage_cost.sql")),
    (3, "usage attribution", include_str!("../migrations/postgres/0003_usage_attribution.sql")),
    (4, "usage attempts", include_str!("../migrations/postgres/0004_usage_attempts.sql")),
    (5, "usage rollups", include_str!("../migrations/postgres/0005_usage_rollups.sql")),
    (6, "budget alerts", include_str!("../migrations/postgres/0006_budget_alerts.sql")),
    (7, "usage routing", include_str!("../migrations/postgres/0007_usage_routing.sql")),
    (8, "nodes", include_str!("../migrations/postgres/0008_nodes.sql")),
    (9, "config versions", include_str!("../migrations/postgres/0009_config_versions.sql")),
];

/// Connections per replica: the usage and audit writers, the directory
/// poll and admin requests, with room to spare.
const POOL_SIZE: u32 = 8;

/// How long opening the store or taking a connection may wait; a database
/// that is down fails `/ready` and admin writes within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows per multi-row INSERT, largest first; fixed sizes so each statement
/// is prepared once per connection and cached. 25 columns × 256 rows is far
/// under PostgreSQL's 65 535 bound parameters; larger chunks were slower
/// (2,000-record batches on loopback: ~12 µs a record at 1024 rows, ~9 µs
/// at 256, ~10 µs at 64).
const CHUNK_SIZES: &[usize] = &[256, 64, 16, 4, 1];

/// The INSERT for `rows` rows (one of [`CHUNK_SIZES`]), written once (building
/// it per batch cost ~2,700 instructions per record). With `returning` it
/// answers the ids of the rows inserted, not of those in conflict: what
/// the rollups may count when a batch is replayed.
fn insert_usage_sql(rows: usize, returning: bool) -> &'static str {
    static SQL: std::sync::LazyLock<[Vec<String>; 2]> = std::sync::LazyLock::new(|| {
        [false, true].map(|returning| {
            CHUNK_SIZES
                .iter()
                .map(|&n| {
                    let values = usage_values(n, Placeholders::Numbered);
                    let tail = if returning { " RETURNING id" } else { "" };
                    format!(
                        "INSERT INTO usage_records ({USAGE_COLUMNS}) VALUES {values} ON CONFLICT (id) DO NOTHING{tail}",
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
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    batch: &'b [UsageRecord],
    returning: bool,
) -> Result<Option<Vec<&'b UsageRecord>>, StoreError> {
    let mut inserted = Vec::with_capacity(batch.len());
    let mut rest = batch;
    while !rest.is_empty() {
        let size = CHUNK_SIZES.iter().copied().find(|n| *n <= rest.len()).unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        let mut args = PgArguments::default();
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
    std::sync::LazyLock::new(|| crate::rollup::upsert_statements(Placeholders::Numbered));

/// One usage record's values, in the order of [`USAGE_COLUMNS`].
fn bind_usage(args: &mut PgArguments, r: &UsageRecord) -> Result<(), sqlx::error::BoxDynError> {
    args.add(r.id.as_str())?;
    args.add(r.request_id.as_str())?;
    args.add(r.created_at)?;
    args.add(r.key_id.as_deref())?;
    args.add(r.tenant_id.as_deref())?;
    args.add(r.operation.as_str())?;
    args.add(r.route.as_deref())?;
    args.add(r.deployment.as_deref())?;
    args.add(r.stream)?;
    args.add(i32::from(r.status))?;
    args.add(r.error_kind.as_deref())?;
    args.add(r.input_tokens.map(|n| n as i64))?;
    args.add(r.output_tokens.map(|n| n as i64))?;
    args.add(r.usage_source.as_str())?;
    args.add(i32::try_from(r.attempts).unwrap_or(i32::MAX))?;
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
    args.add(i32::try_from(r.attempt).unwrap_or(i32::MAX))?;
    args.add(r.is_final)?;
    args.add(r.model.as_deref())?;
    args.add(r.classification.as_deref())?;
    args.add(r.route_reason.as_deref())?;
    Ok(())
}

pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` — `postgres://user:password@host:port/database`
    /// (or `postgresql://`, with libpq-style `?sslmode=…` options) — and
    /// applies pending migrations. The database must exist. Replicas
    /// starting at once are safe: migrations hold an advisory lock.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("switchyard");
        // Errors name the server, never the URL: it may hold a password.
        let at = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or_else(|| options.get_username())
        );
        // One connection first, for its error: the pool retries a refused
        // connection until its timeout and then only says it timed out.
        let cannot =
            |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("cannot connect to PostgreSQL at {at}: {e}"));
        let probe = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| cannot(&format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| cannot(&e))?;
        probe.close().await.map_err(|e| cannot(&e))?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(CONNECT_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(600)))
            .max_lifetime(Some(Duration::from_secs(1800)))
            .connect_lazy_with(options);
        migrator(MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrations failed on {at}: {e}")))?;
        Ok(PostgresStore { pool })
    }

    /// Every usage record, oldest first (tests and analytics).
    pub async fn usage_records(&self) -> Result<Vec<UsageRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM usage_records ORDER BY id").fetch_all(&self.pool).await.map_err(err)?;
        rows.iter().map(usage_from_row).collect()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn entry_from_row(row: &PgRow) -> Result<DirEntry, StoreError> {
    let kind: String = row.try_get("kind").map_err(err)?;
    Ok(DirEntry {
        kind: Kind::parse(&kind).ok_or_else(|| err(format!("unknown directory kind {kind:?}")))?,
        id: row.try_get("id").map_err(err)?,
        tenant_id: row.try_get("tenant_id").map_err(err)?,
        name: row.try_get("name").map_err(err)?,
        secret_hash: row.try_get("secret_hash").map_err(err)?,
        doc: row.try_get("doc").map_err(err)?,
        seq: row.try_get("seq").map_err(err)?,
        deleted: row.try_get("deleted").map_err(err)?,
    })
}

fn usage_from_row(row: &PgRow) -> Result<UsageRecord, StoreError> {
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
        stream: row.try_get("stream").map_err(err)?,
        status: row.try_get::<i32, _>("status").map_err(err)? as u16,
        error_kind: row.try_get("error_kind").map_err(err)?,
        input_tokens: row.try_get::<Option<i64>, _>("input_tokens").map_err(err)?.map(|n| n as u64),
        output_tokens: row.try_get::<Option<i64>, _>("output_tokens").map_err(err)?.map(|n| n as u64),
        usage_source: source,
        attempts: row.try_get::<i32, _>("attempts").map_err(err)? as u32,
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
        attempt: row.try_get::<i32, _>("attempt").map_err(err)? as u32,
        is_final: row.try_get("is_final").map_err(err)?,
        model: row.try_get("model").map_err(err)?,
        classification: row.try_get("classification").map_err(err)?,
        route_reason: row.try_get("route_reason").map_err(err)?,
    })
}

async fn insert_audit(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, r: &AuditRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, tenant_id, actor_id, action, target_kind, target_id, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
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

impl Store for PostgresStore {
    fn directory_since(&self, after: i64) -> StoreFuture<'_, Vec<DirEntry>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT kind, id, tenant_id, name, secret_hash, doc, seq, deleted FROM directory WHERE seq > $1 ORDER BY seq",
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
            // The UPDATE locks the one sequence row until commit: a second
            // `apply` waits here, then reads the committed value, so seq
            // order is commit order and a reader that sees seq N has every
            // change up to N.
            let last: i64 =
                sqlx::query_scalar("UPDATE directory_sequence SET seq = seq + $1 WHERE id = 1 RETURNING seq")
                    .bind(changes.len() as i64)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(err)?;
            let first = last - changes.len() as i64 + 1;
            for (i, c) in changes.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO directory (kind, id, tenant_id, name, secret_hash, doc, seq, deleted)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
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
                .bind(c.doc.is_none())
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
            let (sql, values) = audit_page(q, Placeholders::Numbered);
            let mut args = PgArguments::default();
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
            let mut tx = self.pool.begin().await.map_err(err)?;
            // One snapshot for the rollup and the raw reads.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            let mut answers = Vec::with_capacity(queries.len());
            for query in queries {
                answers.push(crate::rollup::read(&mut tx, Dialect::Postgres, query).await?);
            }
            tx.rollback().await.map_err(err)?;
            Ok(answers)
        })
    }

    fn insert_alert<'a>(&'a self, alert: &'a AlertRecord) -> StoreFuture<'a, bool> {
        Box::pin(crate::alerts::postgres::insert(&self.pool, alert))
    }

    fn mark_alert<'a>(&'a self, id: &'a str, delivery: &'a Delivery) -> StoreFuture<'a, ()> {
        Box::pin(crate::alerts::postgres::mark(&self.pool, id, delivery))
    }

    fn alerts_page<'a>(&'a self, query: &'a AlertQuery) -> StoreFuture<'a, Vec<AlertRecord>> {
        Box::pin(crate::alerts::postgres::page(&self.pool, query))
    }

    fn pending_alerts(&self, stale_before: i64, limit: usize) -> StoreFuture<'_, Vec<AlertRecord>> {
        Box::pin(crate::alerts::postgres::pending(&self.pool, stale_before, limit))
    }

    fn claim_alert<'a>(&'a self, id: &'a str, seen: i64, now: i64) -> StoreFuture<'a, bool> {
        Box::pin(crate::alerts::postgres::claim(&self.pool, id, seen, now))
    }

    fn put_node<'a>(&'a self, row: &'a NodeRow) -> StoreFuture<'a, ()> {
        Box::pin(crate::nodes::put_postgres(&self.pool, row))
    }

    fn nodes(&self) -> StoreFuture<'_, Vec<NodeRow>> {
        Box::pin(crate::nodes::all_postgres(&self.pool))
    }

    fn put_config_version<'a>(&'a self, v: &'a ConfigVersion, after: i64) -> StoreFuture<'a, i64> {
        Box::pin(crate::config_versions::put_postgres(&self.pool, v, after))
    }

    fn newest_config_version(&self) -> StoreFuture<'_, Option<ConfigVersion>> {
        Box::pin(crate::config_versions::newest_postgres(&self.pool))
    }

    fn newest_config_version_number(&self) -> StoreFuture<'_, i64> {
        Box::pin(crate::config_versions::number_postgres(&self.pool))
    }

    fn config_versions(&self) -> StoreFuture<'_, Vec<ConfigVersion>> {
        Box::pin(crate::config_versions::all_postgres(&self.pool))
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.pool).await.map_err(err)?;
            Ok(())
        })
    }
}

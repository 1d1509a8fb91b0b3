//! SQLite implementation. WAL mode so the usage writer and readers do not
//! block each other; a small pool because SQLite has one writer anyway.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Arguments, Row, SqlitePool};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;
use switchyard_core::keys::{KeyRecord, KeyStatus};
use switchyard_core::store::{Store, StoreError, StoreFuture};
use switchyard_core::usage::UsageRecord;
use switchyard_types::UsageSource;

/// Embedded migrations, in order. Add a file and a line; never edit an
/// applied one (the checksum would refuse to start).
/// Rows per multi-row INSERT, largest first; 18 columns × 256 rows stays
/// under SQLite's 32 766 bound parameters.
const CHUNK_SIZES: &[usize] = &[256, 64, 16, 4, 1];

/// The INSERT for `rows` rows (one of [`CHUNK_SIZES`]), written once: building
/// it per batch (a placeholder formatted per value) cost ~2,700 instructions
/// per record, more than SQLite's own work on the row.
fn insert_usage_sql(rows: usize) -> &'static str {
    const COLUMNS: &str =
        "id, request_id, created_at, key_id, tenant_id, operation, route, deployment, stream, status, \
        error_kind, input_tokens, output_tokens, usage_source, attempts, latency_ms, ttft_ms, overhead_ms";
    static SQL: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
        CHUNK_SIZES
            .iter()
            .map(|&n| {
                let row = format!("({})", vec!["?"; USAGE_COLUMNS].join(", "));
                format!("INSERT OR IGNORE INTO usage_records ({COLUMNS}) VALUES {}", vec![row; n].join(", "))
            })
            .collect()
    });
    let i = CHUNK_SIZES.iter().position(|&n| n == rows).unwrap_or(CHUNK_SIZES.len() - 1);
    &SQL[i]
}

const USAGE_COLUMNS: usize = 18;

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
    Ok(())
}

const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "keys and usage", include_str!("../migrations/0001_keys_and_usage.sql"))];

pub struct SqliteStore {
    pool: SqlitePool,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
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
                    .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
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
        let migrations: Vec<Migration> = MIGRATIONS
            .iter()
            .map(|(v, d, sql)| Migration::new(*v, Cow::Borrowed(*d), MigrationType::Simple, Cow::Borrowed(*sql), false))
            .collect();
        let migrator = Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT };
        migrator.run(&pool).await.map_err(|e| StoreError(format!("migrations failed: {e}")))?;
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
    })
}

fn key_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord, StoreError> {
    let json = |col: &str| -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = row.try_get(col).map_err(err)?;
        text.map(|t| serde_json::from_str(&t).map_err(err)).transpose()
    };
    let strings =
        |v: Option<serde_json::Value>| -> Option<Vec<String>> { v.and_then(|v| serde_json::from_value(v).ok()) };
    let status: String = row.try_get("status").map_err(err)?;
    Ok(KeyRecord {
        id: row.try_get("id").map_err(err)?,
        name: row.try_get("name").map_err(err)?,
        hash: row.try_get("key_hash").map_err(err)?,
        prefix: row.try_get("prefix").map_err(err)?,
        tenant_id: row.try_get("tenant_id").map_err(err)?,
        team_id: row.try_get("team_id").map_err(err)?,
        user_id: row.try_get("user_id").map_err(err)?,
        roles: strings(json("roles")?).unwrap_or_default(),
        allowed_routes: strings(json("allowed_routes")?),
        status: KeyStatus::parse(&status).ok_or_else(|| StoreError(format!("unknown key status {status:?}")))?,
        expires_at: row.try_get("expires_at").map_err(err)?,
        metadata: json("metadata")?.unwrap_or(serde_json::Value::Null),
        created_at: row.try_get("created_at").map_err(err)?,
    })
}

impl Store for SqliteStore {
    fn insert_key(&self, k: &KeyRecord) -> StoreFuture<'_, ()> {
        let k = k.clone();
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO api_keys (id, name, key_hash, prefix, tenant_id, team_id, user_id, roles, allowed_routes, status, expires_at, metadata, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&k.id)
            .bind(&k.name)
            .bind(&k.hash)
            .bind(&k.prefix)
            .bind(&k.tenant_id)
            .bind(&k.team_id)
            .bind(&k.user_id)
            .bind(serde_json::to_string(&k.roles).map_err(err)?)
            .bind(k.allowed_routes.as_ref().map(serde_json::to_string).transpose().map_err(err)?)
            .bind(k.status.as_str())
            .bind(k.expires_at)
            .bind(k.metadata.to_string())
            .bind(k.created_at)
            .execute(&self.pool)
            .await
            .map_err(err)?;
            Ok(())
        })
    }

    fn load_keys(&self) -> StoreFuture<'_, Vec<KeyRecord>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT * FROM api_keys").fetch_all(&self.pool).await.map_err(err)?;
            rows.iter().map(key_from_row).collect()
        })
    }

    fn write_usage<'a>(&'a self, batch: &'a [UsageRecord]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // Multi-row INSERTs: one round trip to SQLite's worker thread per
            // chunk instead of per record (each round trip is two context
            // switches on the gateway's core).
            let mut tx = self.pool.begin().await.map_err(err)?;
            let mut rest = batch;
            while !rest.is_empty() {
                // Fixed chunk sizes so each statement is prepared once and
                // cached (preparing a 500-row INSERT cost more than running it).
                let size = CHUNK_SIZES.iter().copied().find(|n| *n <= rest.len()).unwrap_or(1);
                let (chunk, tail) = rest.split_at(size);
                rest = tail;
                let mut args = SqliteArguments::default();
                args.reserve(size * USAGE_COLUMNS, 0);
                for r in chunk {
                    bind_usage(&mut args, r).map_err(err)?;
                }
                sqlx::query_with(insert_usage_sql(size), args).persistent(true).execute(&mut *tx).await.map_err(err)?;
            }
            tx.commit().await.map_err(err)
        })
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(id: &str, hash: &str) -> KeyRecord {
        KeyRecord {
            id: id.into(),
            name: "n".into(),
            hash: hash.into(),
            prefix: "sk-sy-abcd".into(),
            tenant_id: "t".into(),
            team_id: None,
            user_id: Some("u".into()),
            roles: vec!["developer".into()],
            allowed_routes: Some(vec!["chat".into()]),
            status: KeyStatus::Active,
            expires_at: Some(5),
            metadata: serde_json::json!({"a": 1}),
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn keys_round_trip_and_hashes_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/k.db", dir.path().display());
        let store = SqliteStore::open(&url).await.unwrap();
        store.insert_key(&key("k1", "h1")).await.unwrap();
        assert!(store.insert_key(&key("k2", "h1")).await.is_err(), "same hash twice");
        let keys = store.load_keys().await.unwrap();
        assert_eq!(keys, vec![key("k1", "h1")]);
        // Reopening applies no migration twice and keeps the data.
        drop(store);
        let store = SqliteStore::open(&url).await.unwrap();
        assert_eq!(store.load_keys().await.unwrap().len(), 1);
        store.ping().await.unwrap();
    }

    #[tokio::test]
    async fn usage_batches_are_idempotent() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let mut r = UsageRecord::new("req1", "chat");
        r.status = 200;
        r.input_tokens = Some(3);
        r.usage_source = UsageSource::Estimated;
        store.write_usage(std::slice::from_ref(&r)).await.unwrap();
        store.write_usage(std::slice::from_ref(&r)).await.unwrap();
        let rows = store.usage_records().await.unwrap();
        assert_eq!(rows.len(), 1, "a replayed record is not counted twice");
        assert_eq!(rows[0], r);
        // Another request that reuses the client's request id is its own row.
        let again = UsageRecord::new("req1", "chat");
        store.write_usage(&[again]).await.unwrap();
        assert_eq!(store.usage_records().await.unwrap().len(), 2);
    }
}

//! Config versions (`config_versions` table), the same SQL for both
//! backends: an insert numbered one past the newest, made only if the
//! newest is still the one the writer read (one statement; two writers at
//! the same instant get a conflict, not a duplicate or a lost change), and
//! reads.

use crate::sql::{err, write_err, Placeholders};
use switchyard_core::store::{ConfigVersion, StoreError};

fn insert_sql(p: Placeholders) -> &'static str {
    match p {
        Placeholders::Anonymous => {
            "INSERT INTO config_versions (version, created_at, actor, source, text) \
             SELECT m + 1, ?, ?, ?, ? FROM (SELECT COALESCE(MAX(version), 0) AS m FROM config_versions) newest \
             WHERE m = ? RETURNING version"
        }
        Placeholders::Numbered => {
            "INSERT INTO config_versions (version, created_at, actor, source, text) \
             SELECT m + 1, $1, $2, $3, $4 FROM (SELECT COALESCE(MAX(version), 0) AS m FROM config_versions) newest \
             WHERE m = $5 RETURNING version"
        }
    }
}

const SELECT_ALL: &str = "SELECT version, created_at, actor, source, text FROM config_versions ORDER BY version";
const SELECT_NEWEST_NUMBER: &str = "SELECT COALESCE(MAX(version), 0) AS version FROM config_versions";
const SELECT_NEWEST: &str =
    "SELECT version, created_at, actor, source, text FROM config_versions ORDER BY version DESC LIMIT 1";

/// A row of either backend as a version.
trait FromRow {
    fn config_version(&self) -> Result<ConfigVersion, StoreError>;
}

macro_rules! backend {
    ($put:ident, $all:ident, $newest:ident, $number:ident, $pool:ty, $row:ty, $p:expr) => {
        pub(crate) async fn $put(pool: &$pool, v: &ConfigVersion, after: i64) -> Result<i64, StoreError> {
            use sqlx::Row;
            let inserted = sqlx::query(insert_sql($p))
                .bind(v.created_at)
                .bind(&v.actor)
                .bind(&v.source)
                .bind(&v.text)
                .bind(after)
                .fetch_optional(pool)
                .await
                .map_err(write_err)?;
            match inserted {
                Some(r) => r.try_get::<i64, _>("version").map_err(err),
                None => Err(StoreError::Conflict(format!("the config changed after version {after}"))),
            }
        }

        pub(crate) async fn $all(pool: &$pool) -> Result<Vec<ConfigVersion>, StoreError> {
            let rows = sqlx::query(SELECT_ALL).fetch_all(pool).await.map_err(err)?;
            rows.iter().map(FromRow::config_version).collect()
        }

        pub(crate) async fn $newest(pool: &$pool) -> Result<Option<ConfigVersion>, StoreError> {
            let found = sqlx::query(SELECT_NEWEST).fetch_optional(pool).await.map_err(err)?;
            found.as_ref().map(FromRow::config_version).transpose()
        }

        pub(crate) async fn $number(pool: &$pool) -> Result<i64, StoreError> {
            use sqlx::Row;
            let row = sqlx::query(SELECT_NEWEST_NUMBER).fetch_one(pool).await.map_err(err)?;
            row.try_get::<i64, _>("version").map_err(err)
        }

        impl FromRow for $row {
            fn config_version(&self) -> Result<ConfigVersion, StoreError> {
                use sqlx::Row;
                Ok(ConfigVersion {
                    version: self.try_get("version").map_err(err)?,
                    created_at: self.try_get("created_at").map_err(err)?,
                    actor: self.try_get("actor").map_err(err)?,
                    source: self.try_get("source").map_err(err)?,
                    text: self.try_get("text").map_err(err)?,
                })
            }
        }
    };
}

backend!(
    put_sqlite,
    all_sqlite,
    newest_sqlite,
    number_sqlite,
    sqlx::SqlitePool,
    sqlx::sqlite::SqliteRow,
    Placeholders::Anonymous
);
backend!(
    put_postgres,
    all_postgres,
    newest_postgres,
    number_postgres,
    sqlx::PgPool,
    sqlx::postgres::PgRow,
    Placeholders::Numbered
);

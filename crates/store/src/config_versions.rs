//! Config versions (`config_versions` table), the same SQL for both
//! backends: an insert numbered one past the newest (one statement, so
//! one process cannot hand out a number twice; two replicas changing the
//! config at the same instant get a conflict, not a duplicate), and reads.

use crate::sql::{err, write_err, Placeholders};
use switchyard_core::store::{ConfigVersion, StoreError};

fn insert_sql(p: Placeholders) -> &'static str {
    match p {
        Placeholders::Anonymous => {
            "INSERT INTO config_versions (version, created_at, actor, source, text) \
             SELECT COALESCE(MAX(version), 0) + 1, ?, ?, ?, ? FROM config_versions RETURNING version"
        }
        Placeholders::Numbered => {
            "INSERT INTO config_versions (version, created_at, actor, source, text) \
             SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4 FROM config_versions RETURNING version"
        }
    }
}

const SELECT_ALL: &str = "SELECT version, created_at, actor, source, text FROM config_versions ORDER BY version";

macro_rules! backend {
    ($put:ident, $all:ident, $pool:ty, $p:expr) => {
        pub(crate) async fn $put(pool: &$pool, v: &ConfigVersion) -> Result<i64, StoreError> {
            use sqlx::Row;
            let row = sqlx::query(insert_sql($p))
                .bind(v.created_at)
                .bind(&v.actor)
                .bind(&v.source)
                .bind(&v.text)
                .fetch_one(pool)
                .await
                .map_err(write_err)?;
            row.try_get::<i64, _>("version").map_err(err)
        }

        pub(crate) async fn $all(pool: &$pool) -> Result<Vec<ConfigVersion>, StoreError> {
            use sqlx::Row;
            let rows = sqlx::query(SELECT_ALL).fetch_all(pool).await.map_err(err)?;
            rows.iter()
                .map(|r| {
                    Ok(ConfigVersion {
                        version: r.try_get("version").map_err(err)?,
                        created_at: r.try_get("created_at").map_err(err)?,
                        actor: r.try_get("actor").map_err(err)?,
                        source: r.try_get("source").map_err(err)?,
                        text: r.try_get("text").map_err(err)?,
                    })
                })
                .collect()
        }
    };
}

backend!(put_sqlite, all_sqlite, sqlx::SqlitePool, Placeholders::Anonymous);
backend!(put_postgres, all_postgres, sqlx::PgPool, Placeholders::Numbered);

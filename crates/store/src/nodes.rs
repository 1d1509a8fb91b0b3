//! Compute nodes' last heartbeats (`nodes` table), the same SQL for both
//! backends: an upsert that never moves `seen_at` back, and a read of all.

use crate::sql::{err, Placeholders};
use switchyard_core::store::{NodeRow, StoreError};

fn upsert_sql(p: Placeholders) -> &'static str {
    match p {
        Placeholders::Anonymous => {
            "INSERT INTO nodes (name, seen_at, doc) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE \
             SET seen_at = excluded.seen_at, doc = excluded.doc WHERE excluded.seen_at >= nodes.seen_at"
        }
        Placeholders::Numbered => {
            "INSERT INTO nodes (name, seen_at, doc) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE \
             SET seen_at = excluded.seen_at, doc = excluded.doc WHERE excluded.seen_at >= nodes.seen_at"
        }
    }
}

const SELECT: &str = "SELECT name, seen_at, doc FROM nodes ORDER BY name";

macro_rules! backend {
    ($put:ident, $all:ident, $pool:ty, $p:expr) => {
        pub(crate) async fn $put(pool: &$pool, row: &NodeRow) -> Result<(), StoreError> {
            let q = sqlx::query(upsert_sql($p)).bind(&row.name).bind(row.seen_at).bind(&row.doc);
            q.execute(pool).await.map_err(err)?;
            Ok(())
        }

        pub(crate) async fn $all(pool: &$pool) -> Result<Vec<NodeRow>, StoreError> {
            use sqlx::Row;
            let rows = sqlx::query(SELECT).fetch_all(pool).await.map_err(err)?;
            rows.iter()
                .map(|r| {
                    Ok(NodeRow {
                        name: r.try_get("name").map_err(err)?,
                        seen_at: r.try_get("seen_at").map_err(err)?,
                        doc: r.try_get("doc").map_err(err)?,
                    })
                })
                .collect()
        }
    };
}

backend!(put_sqlite, all_sqlite, sqlx::SqlitePool, Placeholders::Anonymous);
backend!(put_postgres, all_postgres, sqlx::PgPool, Placeholders::Numbered);

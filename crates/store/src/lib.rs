//! Persistent state behind the core's [`Store`] trait: SQLite (embedded,
//! zero set-up) or PostgreSQL (several replicas sharing one database),
//! both through sqlx and chosen by the URL's scheme. Migrations are plain
//! SQL files under `migrations/` (SQLite) and `migrations/postgres/`,
//! embedded at compile time and applied at start.

mod alerts;
mod config_versions;
mod nodes;
mod postgres;
mod rollup;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::sync::Arc;
use switchyard_core::store::{Store, StoreError};

/// Opens the store `url` names: `sqlite://path`, `sqlite::memory:`,
/// `postgres://…` or `postgresql://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        // Only the scheme is echoed: the rest may hold a password.
        let found = url.split_once(':').map_or("no scheme".to_string(), |(s, _)| format!("scheme {s:?}"));
        Err(StoreError::Unavailable(format!(
            "storage URL has {found}: expected sqlite://path, sqlite::memory:, postgres://… or postgresql://…"
        )))
    }
}

mod redis;
pub use self::redis::{RedisBudgets, RedisFeed, RedisLimiter};

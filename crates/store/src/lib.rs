//! Persistent state behind the core's [`Store`] trait: SQLite through sqlx
//! (embedded, zero set-up). Migrations are plain SQL files under
//! `migrations/`, embedded at compile time and applied at start.

mod sqlite;

pub use sqlite::SqliteStore;

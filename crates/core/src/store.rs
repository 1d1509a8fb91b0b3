//! What the core needs from persistent storage. Implemented by
//! `switchyard-store` (SQLite today, PostgreSQL later) and by an in-memory
//! fake in tests. The core never calls it on the request path: keys are
//! served from memory and usage goes through the batched writer.

use crate::keys::KeyRecord;
use crate::usage::UsageRecord;
use std::future::Future;
use std::pin::Pin;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

#[derive(Debug, Clone)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

pub trait Store: Send + Sync + 'static {
    /// Persists a new key (its hash only, never the secret).
    fn insert_key(&self, key: &KeyRecord) -> StoreFuture<'_, ()>;
    /// Every key, for the in-memory cache at start.
    fn load_keys(&self) -> StoreFuture<'_, Vec<KeyRecord>>;
    /// Writes a batch of usage records in one transaction; idempotent on
    /// `request_id` so a replayed batch does not double-count.
    fn write_usage<'a>(&'a self, batch: &'a [UsageRecord]) -> StoreFuture<'a, ()>;
    /// Cheap reachability check for `/ready`.
    fn ping(&self) -> StoreFuture<'_, ()>;
}

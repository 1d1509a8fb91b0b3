//! What the core needs from persistent storage. Implemented by
//! `switchyard-store` (SQLite; PostgreSQL behind the same trait) and by
//! in-memory fakes in tests. The core never calls it on the request path:
//! the directory (keys, tenants, limits) is served from memory and usage
//! and audit records go through the batched writer.
//!
//! The directory — plans, tenants, teams, users, keys — is stored as one
//! JSON document per object, each stamped with a sequence number from one
//! counter that every change advances. A replica asks for "everything
//! after the sequence number I have" to catch up (see
//! `access::directory`); a delete leaves a tombstone so it too is seen.

use crate::access::audit::{AuditQuery, AuditRecord};
use crate::access::Kind;
use crate::usage::UsageRecord;
use std::future::Future;
use std::pin::Pin;

pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// The store could not be reached or failed; nothing was changed.
    Unavailable(String),
    /// A uniqueness rule refused the change (e.g. two replicas created the
    /// same name at once); nothing was changed.
    Conflict(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(m) => write!(f, "store: {m}"),
            StoreError::Conflict(m) => write!(f, "store conflict: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// One stored object of the directory.
#[derive(Clone, Debug, PartialEq)]
pub struct DirEntry {
    pub kind: Kind,
    pub id: String,
    /// The owning tenant (a tenant's own id for a tenant; empty for a plan).
    pub tenant_id: String,
    /// Unique per (kind, tenant_id) among live entries.
    pub name: String,
    /// Keys only: hex SHA-256 of the secret, kept out of `doc`.
    pub secret_hash: Option<String>,
    /// The object as JSON; empty for a tombstone.
    pub doc: String,
    pub seq: i64,
    pub deleted: bool,
}

/// A change to apply: an upsert, or a delete when `doc` is `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub kind: Kind,
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub doc: Option<String>,
}

/// Committed spend of one (tenant, team, key) since some instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpendRow {
    pub tenant_id: Option<String>,
    pub team_id: Option<String>,
    pub key_id: Option<String>,
    pub nanos: i64,
    /// Input + output tokens.
    pub tokens: i64,
}

pub trait Store: Send + Sync + 'static {
    /// Directory entries (tombstones included) with `seq` greater than
    /// `after`, in `seq` order.
    fn directory_since(&self, after: i64) -> StoreFuture<'_, Vec<DirEntry>>;
    /// The highest `seq` given so far: cheap, polled by every replica.
    fn directory_seq(&self) -> StoreFuture<'_, i64>;
    /// Applies `changes` and writes `audit` in one transaction, stamping
    /// each change with the next `seq`; answers the last `seq` given.
    /// Changes are serialised so `seq` order is commit order.
    fn apply<'a>(&'a self, changes: &'a [Change], audit: &'a AuditRecord) -> StoreFuture<'a, i64>;
    /// Appends audit records (security decisions, batched).
    fn write_audit<'a>(&'a self, batch: &'a [AuditRecord]) -> StoreFuture<'a, ()>;
    /// Audit records matching `query`, newest first.
    fn audit_page<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>>;
    /// Writes a batch of usage records in one transaction; idempotent on
    /// the record id so a replayed batch does not double-count.
    fn write_usage<'a>(&'a self, batch: &'a [UsageRecord]) -> StoreFuture<'a, ()>;
    /// Spend per (tenant, team, key) of the usage records created at or
    /// after `since_ms`: rebuilds budget counters at start.
    fn spend_since(&self, since_ms: i64) -> StoreFuture<'_, Vec<SpendRow>>;
    /// Cheap reachability check for `/ready`.
    fn ping(&self) -> StoreFuture<'_, ()>;
}

/// An in-memory store for tests: the same rules as the real ones (names
/// unique per kind and tenant among live entries, sequence numbers,
/// tombstones), and a switch to make it fail like a database that is down.
#[cfg(test)]
pub mod memory {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct MemoryStore {
        pub entries: Mutex<Vec<DirEntry>>,
        pub audit: Mutex<Vec<AuditRecord>>,
        pub usage_batches: Mutex<Vec<Vec<UsageRecord>>>,
        pub down: AtomicBool,
    }

    impl MemoryStore {
        fn check(&self) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            Ok(())
        }

        fn seq(entries: &[DirEntry]) -> i64 {
            entries.iter().map(|e| e.seq).max().unwrap_or(0)
        }
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    impl Store for MemoryStore {
        fn directory_since(&self, after: i64) -> StoreFuture<'_, Vec<DirEntry>> {
            Box::pin(async move {
                self.check()?;
                let mut out: Vec<DirEntry> = lock(&self.entries).iter().filter(|e| e.seq > after).cloned().collect();
                out.sort_by_key(|e| e.seq);
                Ok(out)
            })
        }

        fn directory_seq(&self) -> StoreFuture<'_, i64> {
            Box::pin(async move {
                self.check()?;
                Ok(Self::seq(&lock(&self.entries)))
            })
        }

        fn apply<'a>(&'a self, changes: &'a [Change], audit: &'a AuditRecord) -> StoreFuture<'a, i64> {
            Box::pin(async move {
                self.check()?;
                let mut entries = lock(&self.entries);
                let mut next = entries.clone();
                let mut seq = Self::seq(&next);
                for c in changes {
                    seq += 1;
                    next.retain(|e| !(e.kind == c.kind && e.id == c.id));
                    let live = c.doc.is_some();
                    let clash = next
                        .iter()
                        .any(|e| !e.deleted && e.kind == c.kind && e.tenant_id == c.tenant_id && e.name == c.name);
                    if live && clash {
                        return Err(StoreError::Conflict(format!("{} name {}", c.kind.as_str(), c.name)));
                    }
                    next.push(DirEntry {
                        kind: c.kind,
                        id: c.id.clone(),
                        tenant_id: c.tenant_id.clone(),
                        name: c.name.clone(),
                        secret_hash: c.secret_hash.clone().filter(|_| live),
                        doc: c.doc.clone().unwrap_or_default(),
                        seq,
                        deleted: !live,
                    });
                }
                *entries = next;
                lock(&self.audit).push(audit.clone());
                Ok(seq)
            })
        }

        fn write_audit<'a>(&'a self, batch: &'a [AuditRecord]) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.check()?;
                lock(&self.audit).extend_from_slice(batch);
                Ok(())
            })
        }

        fn audit_page<'a>(&'a self, query: &'a AuditQuery) -> StoreFuture<'a, Vec<AuditRecord>> {
            Box::pin(async move {
                self.check()?;
                let mut rows: Vec<AuditRecord> =
                    lock(&self.audit).iter().filter(|r| query.matches(r)).cloned().collect();
                rows.sort_by(|a, b| b.id.cmp(&a.id));
                rows.truncate(query.limit);
                Ok(rows)
            })
        }

        fn write_usage<'a>(&'a self, batch: &'a [UsageRecord]) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.check()?;
                lock(&self.usage_batches).push(batch.to_vec());
                Ok(())
            })
        }

        fn spend_since(&self, since_ms: i64) -> StoreFuture<'_, Vec<SpendRow>> {
            Box::pin(async move {
                self.check()?;
                let mut rows: Vec<SpendRow> = Vec::new();
                for r in lock(&self.usage_batches).iter().flatten().filter(|r| r.created_at >= since_ms) {
                    let tokens = (r.input_tokens.unwrap_or(0) + r.output_tokens.unwrap_or(0)) as i64;
                    let at = rows
                        .iter()
                        .position(|x| x.tenant_id == r.tenant_id && x.team_id == r.team_id && x.key_id == r.key_id);
                    let row = match at {
                        Some(i) => &mut rows[i],
                        None => {
                            rows.push(SpendRow {
                                tenant_id: r.tenant_id.clone(),
                                team_id: r.team_id.clone(),
                                key_id: r.key_id.clone(),
                                ..SpendRow::default()
                            });
                            rows.last_mut().unwrap_or_else(|| unreachable!())
                        }
                    };
                    row.nanos += r.cost_nanos.unwrap_or(0);
                    row.tokens += tokens;
                }
                Ok(rows)
            })
        }

        fn ping(&self) -> StoreFuture<'_, ()> {
            Box::pin(async move { self.check() })
        }
    }
}

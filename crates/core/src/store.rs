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
use crate::alerts::{AlertQuery, AlertRecord, Delivery};
use crate::analytics::{RollupQuery, RollupRow};
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

/// One config the gateway ran (docs/routing.md#config-versions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigVersion {
    /// Set by the store (ignored on insert).
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// `system` (the file at start or on reload), `bootstrap`, or a key id.
    pub actor: String,
    /// `file`, `rollback`, `route-rollback`, `rollout`.
    pub source: String,
    /// The file's text before `${VAR}` interpolation.
    pub text: String,
}

/// A compute node's last heartbeat as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    /// Unix ms.
    pub seen_at: i64,
    /// The heartbeat, JSON.
    pub doc: String,
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
    /// after `since_ms`: rebuilds budget counters at start. Read from the
    /// hourly rollups ([`crate::analytics::plan::since`]), so it does not
    /// scan the period's raw records.
    fn spend_since(&self, since_ms: i64) -> StoreFuture<'_, Vec<SpendRow>>;
    /// Usage sums grouped as each query says, from the rollups (whole days
    /// and hours) and the raw records (`raw`), all in one snapshot: one
    /// answer per query, in order. Rows may repeat a key; the caller adds
    /// them up. Each answer must equal [`RollupQuery::evaluate`] over the
    /// stored records. Analytics and start-up only: never called on the
    /// request path.
    fn usage_rollup<'a>(&'a self, queries: &'a [RollupQuery]) -> StoreFuture<'a, Vec<Vec<RollupRow>>>;
    /// Input + output tokens per deployment of the usage records created at
    /// or after `since_ms`: rebuilds volume-discount counters at start.
    fn volume_since(&self, since_ms: i64) -> StoreFuture<'_, Vec<(String, i64)>> {
        Box::pin(async move {
            let query = crate::analytics::plan::since_by(since_ms, vec![crate::analytics::Dim::Deployment]);
            let rows = self.usage_rollup(std::slice::from_ref(&query)).await?;
            Ok(rows
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    let deployment = r.keys.into_iter().next().flatten()?;
                    Some((deployment, r.sums.total_tokens()))
                })
                .collect())
        })
    }
    /// Records a budget alert unless one exists for its
    /// (scope, period, window start, dimension, threshold): `true` when
    /// inserted — it fired now — `false` when it had fired before (here or
    /// on another replica).
    fn insert_alert<'a>(&'a self, alert: &'a AlertRecord) -> StoreFuture<'a, bool>;
    /// Sets an alert's delivery status, attempts, last error and
    /// `updated_at`.
    fn mark_alert<'a>(&'a self, id: &'a str, delivery: &'a Delivery) -> StoreFuture<'a, ()>;
    /// Alerts matching `query`, newest first.
    fn alerts_page<'a>(&'a self, query: &'a AlertQuery) -> StoreFuture<'a, Vec<AlertRecord>>;
    /// `pending` alerts last updated before `stale_before` (unix ms),
    /// oldest first, at most `limit`.
    fn pending_alerts(&self, stale_before: i64, limit: usize) -> StoreFuture<'_, Vec<AlertRecord>>;
    /// Takes over a `pending` alert to send it: sets its `updated_at` to
    /// `now` if it is still pending and last updated at `seen`. `true` for
    /// exactly one of several replicas trying at once.
    fn claim_alert<'a>(&'a self, id: &'a str, seen: i64, now: i64) -> StoreFuture<'a, bool>;
    /// Cheap reachability check for `/ready`.
    /// Stores a compute node's heartbeat unless a later one is stored.
    fn put_node<'a>(&'a self, row: &'a NodeRow) -> StoreFuture<'a, ()>;
    /// Every node's last heartbeat (polled by every replica).
    fn nodes(&self) -> StoreFuture<'_, Vec<NodeRow>>;
    /// Stores a config version numbered one past the newest, if the newest
    /// is still `after` (0: none); its number. `Conflict` when another
    /// version came first.
    fn put_config_version<'a>(&'a self, v: &'a ConfigVersion, after: i64) -> StoreFuture<'a, i64>;
    /// The newest config version.
    fn newest_config_version(&self) -> StoreFuture<'_, Option<ConfigVersion>>;
    /// The newest config version's number, 0 when none (polled by every
    /// replica: no text read until there is a newer one).
    fn newest_config_version_number(&self) -> StoreFuture<'_, i64>;
    /// Every config version, oldest first (`version` as stored).
    fn config_versions(&self) -> StoreFuture<'_, Vec<ConfigVersion>>;
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
        pub alerts: Mutex<Vec<AlertRecord>>,
        pub nodes: Mutex<Vec<NodeRow>>,
        pub config_versions: Mutex<Vec<ConfigVersion>>,
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

        fn insert_alert<'a>(&'a self, alert: &'a AlertRecord) -> StoreFuture<'a, bool> {
            Box::pin(async move {
                self.check()?;
                let mut alerts = lock(&self.alerts);
                if alerts.iter().any(|a| a.key() == alert.key()) {
                    return Ok(false);
                }
                alerts.push(alert.clone());
                Ok(true)
            })
        }

        fn mark_alert<'a>(&'a self, id: &'a str, delivery: &'a Delivery) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.check()?;
                for a in lock(&self.alerts).iter_mut().filter(|a| a.id == id) {
                    a.delivery = delivery.clone();
                }
                Ok(())
            })
        }

        fn alerts_page<'a>(&'a self, query: &'a AlertQuery) -> StoreFuture<'a, Vec<AlertRecord>> {
            Box::pin(async move {
                self.check()?;
                let mut rows: Vec<AlertRecord> =
                    lock(&self.alerts).iter().filter(|a| query.matches(a)).cloned().collect();
                rows.sort_by(|a, b| b.id.cmp(&a.id));
                rows.truncate(query.limit);
                Ok(rows)
            })
        }

        fn pending_alerts(&self, stale_before: i64, limit: usize) -> StoreFuture<'_, Vec<AlertRecord>> {
            Box::pin(async move {
                self.check()?;
                let pending = crate::alerts::AlertStatus::Pending;
                let mut rows: Vec<AlertRecord> = lock(&self.alerts)
                    .iter()
                    .filter(|a| a.delivery.status == pending && a.delivery.updated_at < stale_before)
                    .cloned()
                    .collect();
                rows.sort_by_key(|a| a.delivery.updated_at);
                rows.truncate(limit);
                Ok(rows)
            })
        }

        fn claim_alert<'a>(&'a self, id: &'a str, seen: i64, now: i64) -> StoreFuture<'a, bool> {
            Box::pin(async move {
                self.check()?;
                let pending = crate::alerts::AlertStatus::Pending;
                let mut alerts = lock(&self.alerts);
                let Some(a) = alerts
                    .iter_mut()
                    .find(|a| a.id == id && a.delivery.status == pending && a.delivery.updated_at == seen)
                else {
                    return Ok(false);
                };
                a.delivery.updated_at = now;
                Ok(true)
            })
        }

        fn usage_rollup<'a>(&'a self, queries: &'a [RollupQuery]) -> StoreFuture<'a, Vec<Vec<RollupRow>>> {
            Box::pin(async move {
                self.check()?;
                let records = self.usage_records();
                Ok(queries.iter().map(|q| q.evaluate(&records)).collect())
            })
        }

        fn put_node<'a>(&'a self, row: &'a NodeRow) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.check()?;
                let mut nodes = lock(&self.nodes);
                match nodes.iter_mut().find(|n| n.name == row.name) {
                    Some(n) if n.seen_at <= row.seen_at => *n = row.clone(),
                    Some(_) => {}
                    None => nodes.push(row.clone()),
                }
                Ok(())
            })
        }

        fn nodes(&self) -> StoreFuture<'_, Vec<NodeRow>> {
            Box::pin(async move {
                self.check()?;
                Ok(lock(&self.nodes).clone())
            })
        }

        fn put_config_version<'a>(&'a self, v: &'a ConfigVersion, after: i64) -> StoreFuture<'a, i64> {
            Box::pin(async move {
                self.check()?;
                let mut versions = lock(&self.config_versions);
                let newest = versions.last().map_or(0, |l| l.version);
                if newest != after {
                    return Err(StoreError::Conflict(format!("the config changed after version {after}")));
                }
                versions.push(ConfigVersion { version: newest + 1, ..v.clone() });
                Ok(newest + 1)
            })
        }

        fn newest_config_version(&self) -> StoreFuture<'_, Option<ConfigVersion>> {
            Box::pin(async move {
                self.check()?;
                Ok(lock(&self.config_versions).last().cloned())
            })
        }

        fn newest_config_version_number(&self) -> StoreFuture<'_, i64> {
            Box::pin(async move {
                self.check()?;
                Ok(lock(&self.config_versions).last().map_or(0, |v| v.version))
            })
        }

        fn config_versions(&self) -> StoreFuture<'_, Vec<ConfigVersion>> {
            Box::pin(async move {
                self.check()?;
                Ok(lock(&self.config_versions).clone())
            })
        }

        fn ping(&self) -> StoreFuture<'_, ()> {
            Box::pin(async move { self.check() })
        }
    }

    impl MemoryStore {
        /// Every record written, each id once (the first written wins, as
        /// with the databases' insert-or-ignore).
        pub fn usage_records(&self) -> Vec<UsageRecord> {
            let mut seen = std::collections::HashSet::new();
            lock(&self.usage_batches).iter().flatten().filter(|r| seen.insert(r.id.clone())).cloned().collect()
        }
    }
}

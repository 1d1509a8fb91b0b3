//! The directory in memory: every plan, tenant, team, user and key, and
//! for each key secret the resolved [`Caller`] the request path needs
//! (tenant, permissions, allowed routes, limit scopes). One immutable
//! snapshot, swapped whole ([`DirectoryHandle`]); requests read it without
//! a lock and without a database round trip.
//!
//! Catching up: every stored change carries a sequence number. A replica
//! polls the store's highest number (`admin.refresh_interval`) and, when it
//! moved, loads the entries after its own and applies them. An admin
//! change made through this replica refreshes it at once.

use super::model::{Budget, Entity, Kind, Plan, Team, Tenant, User};
use super::roles::Permissions;
use crate::budget::Cap;
use crate::keys::{digest, parse_hex, KeyRecord, KeyStatus};
use crate::limits::{Check, Limits};
use crate::store::{DirEntry, Store, StoreError};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A key, resolved against its tenant, team and plan.
#[derive(Debug)]
pub struct Caller {
    pub key: Arc<KeyRecord>,
    /// `None` when the key's tenant does not exist (the key is refused).
    pub tenant: Option<Arc<Tenant>>,
    pub permissions: Permissions,
    /// The intersection of the plan's, tenant's, team's and key's lists;
    /// `None` = every route.
    pub allowed_routes: Option<Vec<String>>,
    /// The key's, team's and tenant's limits, as scopes to check (only
    /// those with a limit).
    pub checks: Vec<Check>,
    /// The key's, team's and tenant's budgets (empty for an unlimited key).
    pub caps: Vec<Cap>,
}

impl Caller {
    pub fn may_use(&self, route: &str) -> bool {
        self.allowed_routes.as_ref().is_none_or(|r| r.iter().any(|x| x == route))
    }

    pub fn tenant_id(&self) -> &str {
        &self.key.tenant_id
    }

    /// Why this key is refused at `now`, if it is: the message the client
    /// gets (401).
    pub fn refusal(&self, now_ms: i64) -> Option<&'static str> {
        match self.key.status {
            KeyStatus::Active => {}
            KeyStatus::Disabled => return Some("This API key is disabled."),
            KeyStatus::Revoked => return Some("This API key is revoked."),
        }
        if self.key.expires_at.is_some_and(|t| t <= now_ms) {
            return Some("This API key has expired.");
        }
        match &self.tenant {
            None => Some("This API key's organization no longer exists."),
            Some(t) => t.refusal(now_ms),
        }
    }
}

#[derive(Default)]
pub struct Directory {
    /// The last change applied.
    pub seq: i64,
    pub plans: BTreeMap<String, Arc<Plan>>,
    pub tenants: BTreeMap<String, Arc<Tenant>>,
    pub teams: BTreeMap<String, Arc<Team>>,
    pub users: BTreeMap<String, Arc<User>>,
    pub keys: BTreeMap<String, Arc<KeyRecord>>,
    callers: HashMap<[u8; 32], Arc<Caller>>,
}

/// Typed access to one kind's map, so the admin code is written once.
pub trait Listed: Entity {
    fn all(dir: &Directory) -> &BTreeMap<String, Arc<Self>>;
    fn all_mut(dir: &mut Directory) -> &mut BTreeMap<String, Arc<Self>>;
}

macro_rules! listed {
    ($t:ty, $field:ident) => {
        impl Listed for $t {
            fn all(dir: &Directory) -> &BTreeMap<String, Arc<Self>> {
                &dir.$field
            }
            fn all_mut(dir: &mut Directory) -> &mut BTreeMap<String, Arc<Self>> {
                &mut dir.$field
            }
        }
    };
}
listed!(Plan, plans);
listed!(Tenant, tenants);
listed!(Team, teams);
listed!(User, users);
listed!(KeyRecord, keys);

impl Directory {
    /// Whether any tenant, team or key carries a budget.
    pub fn has_budgets(&self) -> bool {
        self.tenants.values().any(|t| !t.budgets.is_empty())
            || self.teams.values().any(|t| !t.budgets.is_empty())
            || self.keys.values().any(|k| !k.budgets.is_empty())
    }

    pub fn caller(&self, secret: &str) -> Option<Arc<Caller>> {
        self.callers.get(&digest(secret)).cloned()
    }

    /// Finds a live object of `T` by name within `tenant_id`'s scope
    /// (names are unique per kind and tenant; plans and tenants globally).
    pub fn by_name<T: Listed>(&self, tenant_id: Option<&str>, name: &str) -> Option<&Arc<T>> {
        T::all(self).values().find(|o| o.name() == name && (T::KIND == Kind::Tenant || o.tenant_id() == tenant_id))
    }

    /// A new snapshot with `entries` applied. An entry whose document
    /// does not parse is skipped with an error log (it was written by a
    /// newer or broken version); the rest still apply.
    pub fn apply(&self, entries: &[DirEntry]) -> Directory {
        let mut next = Directory {
            seq: self.seq,
            plans: self.plans.clone(),
            tenants: self.tenants.clone(),
            teams: self.teams.clone(),
            users: self.users.clone(),
            keys: self.keys.clone(),
            callers: HashMap::new(),
        };
        for e in entries {
            next.seq = next.seq.max(e.seq);
            let applied = match e.kind {
                Kind::Plan => put::<Plan>(&mut next, e),
                Kind::Tenant => put::<Tenant>(&mut next, e),
                Kind::Team => put::<Team>(&mut next, e),
                Kind::User => put::<User>(&mut next, e),
                Kind::Key => put_key(&mut next, e),
            };
            if let Err(err) = applied {
                tracing::error!(kind = e.kind.as_str(), id = %e.id, seq = e.seq, error = %err, "directory entry skipped");
            }
        }
        next.callers =
            next.keys.values().filter_map(|k| Some((parse_hex(&k.hash)?, Arc::new(next.resolve(k))))).collect();
        next
    }

    fn resolve(&self, key: &Arc<KeyRecord>) -> Caller {
        let tenant = self.tenants.get(&key.tenant_id).cloned();
        let plan = tenant.as_ref().and_then(|t| t.plan_id.as_ref()).and_then(|p| self.plans.get(p));
        let team = key.team_id.as_ref().and_then(|t| self.teams.get(t));
        let lists = [
            plan.and_then(|p| p.allowed_routes.as_ref()),
            tenant.as_ref().and_then(|t| t.allowed_routes.as_ref()),
            team.and_then(|t| t.allowed_routes.as_ref()),
            key.allowed_routes.as_ref(),
        ];
        let mut allowed: Option<Vec<String>> = None;
        for list in lists.into_iter().flatten() {
            allowed = Some(match allowed {
                None => list.clone(),
                Some(mut have) => {
                    have.retain(|r| list.contains(r));
                    have
                }
            });
        }
        let plan_limits = plan.map(|p| p.limits).unwrap_or_default();
        let plan_key_limits = plan.map(|p| p.key_limits).unwrap_or_default();
        let mut checks = Vec::new();
        let mut scope = |name: String, limits: Limits| {
            if !limits.is_empty() {
                checks.push(Check { scope: Arc::from(name), limits });
            }
        };
        scope(format!("key:{}", key.id), key.limits.or(plan_key_limits));
        if let Some(team) = team {
            scope(format!("team:{}", team.id), team.limits);
        }
        let tenant_limits = tenant.as_ref().map(|t| t.limits).unwrap_or_default().or(plan_limits);
        scope(format!("tenant:{}", key.tenant_id), tenant_limits);
        let mut caps = Vec::new();
        if !key.unlimited {
            let mut add = |scope: String, budgets: &[Budget]| {
                let scope: Arc<str> = Arc::from(scope);
                for b in budgets {
                    caps.push(Cap {
                        scope: scope.clone(),
                        period: b.period,
                        max_nanos: b.max_nanos(),
                        max_tokens: b.max_tokens,
                        action: b.action(),
                        enforce: true,
                    });
                }
            };
            add(format!("key:{}", key.id), &key.budgets);
            if let Some(team) = team {
                add(format!("team:{}", team.id), &team.budgets);
            }
            if let Some(t) = &tenant {
                add(format!("tenant:{}", t.id), &t.budgets);
            }
        }
        Caller {
            key: key.clone(),
            tenant,
            permissions: Permissions::of(&key.roles),
            allowed_routes: allowed,
            checks,
            caps,
        }
    }
}

fn put<T: Listed>(dir: &mut Directory, e: &DirEntry) -> Result<(), String> {
    if e.deleted {
        T::all_mut(dir).remove(&e.id);
        return Ok(());
    }
    let object: T = serde_json::from_str(&e.doc).map_err(|err| err.to_string())?;
    T::all_mut(dir).insert(e.id.clone(), Arc::new(object));
    Ok(())
}

fn put_key(dir: &mut Directory, e: &DirEntry) -> Result<(), String> {
    if e.deleted {
        dir.keys.remove(&e.id);
        return Ok(());
    }
    let mut key: KeyRecord = serde_json::from_str(&e.doc).map_err(|err| err.to_string())?;
    key.hash = e.secret_hash.clone().ok_or("a key without its secret hash")?;
    dir.keys.insert(e.id.clone(), Arc::new(key));
    Ok(())
}

/// Tells other replicas that the directory or the config changed, so they
/// refresh at once instead of at their next poll (Redis pub/sub, in the
/// store crate). One channel, one number: the directory's sequence (≥ 0),
/// or a config version n as −n.
pub trait ChangeFeed: Send + Sync + 'static {
    /// Announces that the store's directory reached `seq`. Fire and
    /// forget: a lost announcement is covered by polling.
    fn announce(&self, seq: i64);

    /// Announces that config version `version` was stored.
    fn announce_config(&self, version: i64) {
        self.announce(-version);
    }
}

/// The live directory, and how it catches up with the store.
#[derive(Default)]
pub struct DirectoryHandle {
    current: ArcSwap<Directory>,
    /// One refresh at a time, so snapshots are applied in order.
    refreshing: tokio::sync::Mutex<()>,
}

impl DirectoryHandle {
    pub fn load(&self) -> arc_swap::Guard<Arc<Directory>> {
        self.current.load()
    }

    pub fn snapshot(&self) -> Arc<Directory> {
        self.current.load_full()
    }

    /// Applies what the store holds beyond this snapshot; answers how many
    /// entries were applied.
    pub async fn refresh(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let _one = self.refreshing.lock().await;
        let current = self.current.load_full();
        let entries = store.directory_since(current.seq).await?;
        if entries.is_empty() {
            return Ok(0);
        }
        self.current.store(Arc::new(current.apply(&entries)));
        Ok(entries.len())
    }

    /// Refreshes when the store's sequence number is ahead of ours.
    pub async fn poll(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let theirs = store.directory_seq().await?;
        if theirs <= self.current.load().seq {
            return Ok(0);
        }
        self.refresh(store).await
    }
}

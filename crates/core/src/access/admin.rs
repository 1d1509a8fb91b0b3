//! The admin operations behind `/api/v1/{plans,tenants,teams,users,keys}`
//! and `/api/v1/audit`, written once for every kind ([`Rules`] holds what
//! differs). Each one: check the permission (403, audited), scope a tenant
//! admin to its tenant (another tenant's objects are 404), validate the
//! body (400 naming the field; nothing changes), write the change and its
//! audit entry in one store transaction, refresh this replica's directory.

use super::audit::{AuditQuery, AuditRecord, Origin};
use super::directory::{Directory, Listed};
use super::model::{
    check_body, check_budgets, check_limits, decode, invalid, Entity, Kind, Plan, Team, Tenant, TenantStatus, User,
};
use super::{Permission, Principal};
use crate::error::{ErrorKind, GatewayError};
use crate::keys::{generate_secret, hash_secret, KeyRecord, KeyStatus};
use crate::limits::Limits;
use crate::store::{Change, StoreError};
use crate::Gateway;
use serde_json::{Map, Value};

/// The largest page of a list.
pub(crate) const MAX_PAGE: usize = 500;
pub(crate) const DEFAULT_PAGE: usize = 50;
/// The longest overlap of a rotation: 30 days.
const MAX_OVERLAP_SECONDS: u64 = 30 * 86_400;

/// What differs between kinds: their reference checks, list filters and
/// who still uses them.
pub trait Rules: Listed {
    const READ: Permission;
    const WRITE: Permission;
    /// Exact-match filters a list accepts (object fields; `role` matches
    /// one of a key's roles).
    const FILTERS: &'static [&'static str];
    /// Checks an object about to be stored against the directory.
    fn check(&self, dir: &Directory, route_exists: &dyn Fn(&str) -> bool) -> Result<(), GatewayError>;
    /// How many objects still refer to this one (a delete is refused).
    fn used_by(&self, dir: &Directory) -> usize;
    /// Carries what the document does not hold from the stored object to
    /// its updated version (a key's hash).
    fn carry(&mut self, _before: &Self) {}
    /// A key's secret hash (kept beside its document); other kinds have none.
    fn secret_hash(&self) -> Option<String> {
        None
    }
}

fn routes_exist(list: &Option<Vec<String>>, route_exists: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
    for (i, r) in list.iter().flatten().enumerate() {
        if !route_exists(r) {
            return Err(invalid(&format!("allowed_routes[{i}]"), format!("There is no route named '{r}'.")));
        }
    }
    Ok(())
}

fn tenant_exists(dir: &Directory, id: &str) -> Result<(), GatewayError> {
    if dir.tenants.contains_key(id) {
        Ok(())
    } else {
        Err(invalid("tenant_id", format!("There is no tenant '{id}'.")))
    }
}

impl Rules for Plan {
    const READ: Permission = Permission::PlansRead;
    const WRITE: Permission = Permission::PlansWrite;
    const FILTERS: &'static [&'static str] = &["name"];
    fn check(&self, _: &Directory, route_exists: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
        check_limits(&self.limits, "limits")?;
        check_limits(&self.key_limits, "key_limits")?;
        routes_exist(&self.allowed_routes, route_exists)
    }
    fn used_by(&self, dir: &Directory) -> usize {
        dir.tenants.values().filter(|t| t.plan_id.as_deref() == Some(&self.id)).count()
    }
}

impl Rules for Tenant {
    const READ: Permission = Permission::TenantsRead;
    const WRITE: Permission = Permission::TenantsWrite;
    const FILTERS: &'static [&'static str] = &["name", "status", "plan_id"];
    fn check(&self, dir: &Directory, route_exists: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
        if let Some(p) = &self.plan_id {
            if !dir.plans.contains_key(p) {
                return Err(invalid("plan_id", format!("There is no plan '{p}'.")));
            }
        }
        if self.trial_ends_at.is_some() && self.status != TenantStatus::Trial {
            return Err(invalid("trial_ends_at", "'trial_ends_at' applies to a tenant in status 'trial' only."));
        }
        check_limits(&self.limits, "limits")?;
        check_budgets(&self.budgets, "budgets")?;
        routes_exist(&self.allowed_routes, route_exists)
    }
    fn used_by(&self, dir: &Directory) -> usize {
        let of = |t: &str| t == self.id;
        dir.teams.values().filter(|x| of(&x.tenant_id)).count()
            + dir.users.values().filter(|x| of(&x.tenant_id)).count()
            + dir.keys.values().filter(|x| of(&x.tenant_id)).count()
    }
}

impl Rules for Team {
    const READ: Permission = Permission::TeamsRead;
    const WRITE: Permission = Permission::TeamsWrite;
    const FILTERS: &'static [&'static str] = &["tenant_id", "name"];
    fn check(&self, dir: &Directory, route_exists: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
        tenant_exists(dir, &self.tenant_id)?;
        check_limits(&self.limits, "limits")?;
        check_budgets(&self.budgets, "budgets")?;
        routes_exist(&self.allowed_routes, route_exists)
    }
    fn used_by(&self, dir: &Directory) -> usize {
        let of = |t: &Option<String>| t.as_deref() == Some(&self.id);
        dir.users.values().filter(|x| of(&x.team_id)).count() + dir.keys.values().filter(|x| of(&x.team_id)).count()
    }
}

fn team_in(dir: &Directory, team_id: &Option<String>, tenant_id: &str) -> Result<(), GatewayError> {
    match team_id {
        Some(t) if dir.teams.get(t).is_none_or(|team| team.tenant_id != tenant_id) => {
            Err(invalid("team_id", format!("There is no team '{t}' in tenant '{tenant_id}'.")))
        }
        _ => Ok(()),
    }
}

impl Rules for User {
    const READ: Permission = Permission::UsersRead;
    const WRITE: Permission = Permission::UsersWrite;
    const FILTERS: &'static [&'static str] = &["tenant_id", "team_id", "email"];
    fn check(&self, dir: &Directory, _: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
        tenant_exists(dir, &self.tenant_id)?;
        team_in(dir, &self.team_id, &self.tenant_id)?;
        if let Some(email) = &self.email {
            let taken = dir
                .users
                .values()
                .any(|u| u.id != self.id && u.tenant_id == self.tenant_id && u.email.as_deref() == Some(email));
            if taken {
                return Err(invalid("email", format!("A user with email '{email}' already exists in this tenant.")));
            }
        }
        Ok(())
    }
    fn used_by(&self, dir: &Directory) -> usize {
        dir.keys.values().filter(|k| k.user_id.as_deref() == Some(&self.id)).count()
    }
}

impl Rules for KeyRecord {
    const READ: Permission = Permission::KeysRead;
    const WRITE: Permission = Permission::KeysWrite;
    const FILTERS: &'static [&'static str] = &["tenant_id", "team_id", "user_id", "status", "role", "name"];
    fn check(&self, dir: &Directory, route_exists: &dyn Fn(&str) -> bool) -> Result<(), GatewayError> {
        tenant_exists(dir, &self.tenant_id)?;
        team_in(dir, &self.team_id, &self.tenant_id)?;
        if let Some(u) = &self.user_id {
            match dir.users.get(u) {
                Some(user) if user.tenant_id == self.tenant_id => {
                    if let (Some(ut), Some(kt)) = (&user.team_id, &self.team_id) {
                        if ut != kt {
                            return Err(invalid("team_id", format!("User '{u}' is in team '{ut}', not '{kt}'.")));
                        }
                    }
                }
                _ => return Err(invalid("user_id", format!("There is no user '{u}' in tenant '{}'.", self.tenant_id))),
            }
        }
        if self.roles.is_empty() {
            return Err(invalid("roles", "'roles' must name at least one role."));
        }
        if self.expires_at.is_some_and(|t| t <= crate::now_unix_ms()) && self.status == KeyStatus::Active {
            return Err(invalid("expires_at", "'expires_at' is in the past."));
        }
        check_limits(&self.limits, "limits")?;
        check_budgets(&self.budgets, "budgets")?;
        routes_exist(&self.allowed_routes, route_exists)
    }
    fn used_by(&self, _: &Directory) -> usize {
        0
    }
    fn carry(&mut self, before: &Self) {
        self.hash = before.hash.clone();
    }
    fn secret_hash(&self) -> Option<String> {
        Some(self.hash.clone())
    }
}

/// What a create (or a rotation) answers: the object, and a key's secret.
pub struct Created {
    pub view: Value,
    pub secret: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAction {
    Disable,
    Enable,
    Revoke,
    Rotate { overlap_seconds: u64 },
}

impl KeyAction {
    pub fn parse(verb: &str, body: &[u8]) -> Result<KeyAction, GatewayError> {
        match verb {
            "disable" => Ok(KeyAction::Disable),
            "enable" => Ok(KeyAction::Enable),
            "revoke" => Ok(KeyAction::Revoke),
            "rotate" => {
                let body = object_body(body, true)?;
                check_body(&body, &["overlap_seconds"])?;
                let overlap = match body.get("overlap_seconds") {
                    None => 3600,
                    Some(v) => v.as_u64().filter(|n| *n <= MAX_OVERLAP_SECONDS).ok_or_else(|| {
                        invalid("overlap_seconds", "'overlap_seconds' must be an integer from 0 to 2592000.")
                    })?,
                };
                Ok(KeyAction::Rotate { overlap_seconds: overlap })
            }
            other => Err(GatewayError::new(ErrorKind::NotFound, format!("No key action '{other}'."))),
        }
    }

    fn verb(self) -> &'static str {
        match self {
            KeyAction::Disable => "disable",
            KeyAction::Enable => "enable",
            KeyAction::Revoke => "revoke",
            KeyAction::Rotate { .. } => "rotate",
        }
    }
}

/// A JSON object body; an empty body is `{}` when `empty_ok`.
fn object_body(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, GatewayError> {
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(GatewayError::new(ErrorKind::InvalidRequest, "The body must be a JSON object.")),
        Err(e) => Err(GatewayError::new(ErrorKind::InvalidRequest, format!("The body is not valid JSON: {e}."))),
    }
}

fn not_found(kind: Kind, id: &str) -> GatewayError {
    GatewayError::new(ErrorKind::NotFound, format!("No {} with id '{id}'.", kind.as_str()))
}

/// RFC 7386 JSON merge patch: objects merge, `null` removes, the rest
/// replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn view<T: serde::Serialize>(object: &T) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

fn change<T: Entity>(object: &T, secret_hash: Option<String>) -> Change {
    Change {
        kind: T::KIND,
        id: object.id().to_string(),
        // The store's tenant column: plans belong to no tenant.
        tenant_id: object.tenant_id().unwrap_or_default().to_string(),
        name: object.name().to_string(),
        secret_hash,
        doc: Some(serde_json::to_string(object).unwrap_or_default()),
    }
}

fn store_error(e: StoreError) -> GatewayError {
    match e {
        StoreError::Conflict(m) => {
            invalid("name", format!("The name is already taken (changed at the same time elsewhere): {m}."))
        }
        StoreError::Unavailable(m) => {
            GatewayError::new(ErrorKind::Overloaded, format!("The change could not be saved; nothing changed: {m}"))
        }
    }
}

impl Gateway {
    /// Refuses (403) and audits when `who` lacks `p`.
    pub async fn require(&self, who: &Principal, p: Permission, origin: &Origin) -> Result<(), GatewayError> {
        if who.allows(p) {
            return Ok(());
        }
        self.metrics.access_denied.inc(&["admin", "forbidden"]);
        let record = AuditRecord::new(who.actor(), "access.denied", origin)
            .tenant(who.tenant_scope())
            .reason(format!("missing permission {}", p.as_str()));
        self.audit.send(record).await;
        Err(GatewayError::new(ErrorKind::PermissionDenied, format!("This key's roles do not allow '{}'.", p.as_str())))
    }

    /// `unlimited` (a key exempt from every budget) is the platform admin's
    /// to give or take: a tenant admin asking is refused (403) and audited.
    async fn platform_only(
        &self,
        who: &Principal,
        body: &Map<String, Value>,
        origin: &Origin,
    ) -> Result<(), GatewayError> {
        if !body.contains_key("unlimited") || matches!(who, Principal::Bootstrap) {
            return Ok(());
        }
        self.metrics.access_denied.inc(&["admin", "forbidden"]);
        let record = AuditRecord::new(who.actor(), "access.denied", origin)
            .tenant(who.tenant_scope())
            .reason("'unlimited' is set by the platform admin only");
        self.audit.send(record).await;
        Err(GatewayError::new(
            ErrorKind::PermissionDenied,
            "Only the platform admin (the bootstrap token) may make a key unlimited or limited again.",
        )
        .with_param("unlimited"))
    }

    /// Writes `changes` with their audit entry, then brings this replica's
    /// directory up to date so the caller reads its own write.
    async fn commit(&self, changes: &[Change], audit: AuditRecord) -> Result<(), GatewayError> {
        let seq = self.store.apply(changes, &audit).await.map_err(store_error)?;
        if let Some(feed) = &self.changes {
            feed.announce(seq);
        }
        if let Err(e) = self.directory.refresh(&*self.store).await {
            tracing::warn!(error = %e, "directory refresh after a change failed; the poller will retry");
        }
        tracing::info!(action = %audit.action, target = ?audit.target, actor = ?audit.actor.id, "admin change");
        Ok(())
    }

    fn route_exists(&self) -> impl Fn(&str) -> bool {
        let rt = self.runtime();
        move |r: &str| rt.routes.contains_key(r)
    }

    /// Finds an object `who` may see, or 404. Another tenant's object is
    /// answered as if it did not exist, and the attempt is audited.
    fn visible<T: Rules>(
        &self,
        dir: &Directory,
        who: &Principal,
        id: &str,
        origin: &Origin,
    ) -> Result<std::sync::Arc<T>, GatewayError> {
        match T::all(dir).get(id) {
            Some(o) if who.sees(o.tenant_id()) => Ok(o.clone()),
            Some(_) => {
                self.metrics.access_denied.inc(&["admin", "forbidden"]);
                let record = AuditRecord::new(who.actor(), "access.denied", origin)
                    .tenant(who.tenant_scope())
                    .target(T::KIND.as_str(), id)
                    .reason("object of another tenant");
                self.audit.send_or_drop(record);
                Err(not_found(T::KIND, id))
            }
            None => Err(not_found(T::KIND, id)),
        }
    }

    pub async fn admin_create(
        &self,
        who: &Principal,
        kind: Kind,
        body: &[u8],
        origin: &Origin,
    ) -> Result<Created, GatewayError> {
        match kind {
            Kind::Plan => self.create::<Plan>(who, body, origin).await,
            Kind::Tenant => self.create::<Tenant>(who, body, origin).await,
            Kind::Team => self.create::<Team>(who, body, origin).await,
            Kind::User => self.create::<User>(who, body, origin).await,
            Kind::Key => self.create::<KeyRecord>(who, body, origin).await,
        }
    }

    async fn create<T: Rules>(&self, who: &Principal, body: &[u8], origin: &Origin) -> Result<Created, GatewayError> {
        self.require(who, T::WRITE, origin).await?;
        let mut map = object_body(body, false)?;
        check_body(&map, T::CREATE_FIELDS)?;
        self.platform_only(who, &map, origin).await?;
        let now = crate::now_unix_ms();
        if !map.contains_key("id") {
            map.insert("id".into(), Value::String(crate::ids::time_ordered(T::KIND.id_prefix())));
        }
        map.insert("created_at".into(), now.into());
        map.insert("updated_at".into(), now.into());
        if T::CREATE_FIELDS.contains(&"tenant_id") {
            let own = who.tenant_scope().unwrap_or("default").to_string();
            match map.get("tenant_id") {
                None | Some(Value::Null) => {
                    map.insert("tenant_id".into(), Value::String(own));
                }
                Some(Value::String(t)) if !who.sees(Some(t)) => {
                    return Err(invalid("tenant_id", format!("There is no tenant '{t}'.")));
                }
                Some(_) => {}
            }
        }
        let mut secret = None;
        if T::KIND == Kind::Key {
            let s = generate_secret().map_err(|e| GatewayError::new(ErrorKind::Internal, e))?;
            map.insert("prefix".into(), Value::String(s.chars().take(10).collect()));
            secret = Some(s);
        }
        let object: T = decode(Value::Object(map))?;
        let dir = self.directory.snapshot();
        if T::all(&dir).contains_key(object.id()) {
            return Err(invalid("id", format!("A {} with id '{}' already exists.", T::KIND.as_str(), object.id())));
        }
        if dir.by_name::<T>(object.tenant_id(), object.name()).is_some() {
            return Err(invalid("name", format!("A {} named '{}' already exists.", T::KIND.as_str(), object.name())));
        }
        object.check(&dir, &self.route_exists())?;
        let after = view(&object);
        let audit = AuditRecord::new(who.actor(), format!("{}.create", T::KIND.as_str()), origin)
            .target(T::KIND.as_str(), object.id())
            .tenant(object.tenant_id());
        let audit = AuditRecord { after: Some(after.clone()), ..audit };
        self.commit(&[change(&object, secret.as_deref().map(hash_secret))], audit).await?;
        let mut view = after;
        if let Some(s) = &secret {
            view["key"] = Value::String(s.clone());
        }
        Ok(Created { view, secret })
    }

    pub async fn admin_get(
        &self,
        who: &Principal,
        kind: Kind,
        id: &str,
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        let dir = self.directory.snapshot();
        match kind {
            Kind::Plan => self.get::<Plan>(&dir, who, id, origin).await,
            Kind::Tenant => self.get::<Tenant>(&dir, who, id, origin).await,
            Kind::Team => self.get::<Team>(&dir, who, id, origin).await,
            Kind::User => self.get::<User>(&dir, who, id, origin).await,
            Kind::Key => self.get::<KeyRecord>(&dir, who, id, origin).await,
        }
    }

    async fn get<T: Rules>(
        &self,
        dir: &Directory,
        who: &Principal,
        id: &str,
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        self.require(who, T::READ, origin).await?;
        Ok(view(&*self.visible::<T>(dir, who, id, origin)?))
    }

    /// A page of objects, filtered by `query` (`limit`, `after` and the
    /// kind's filters; anything else is a 400 naming it).
    pub async fn admin_list(
        &self,
        who: &Principal,
        kind: Kind,
        query: &[(String, String)],
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        let dir = self.directory.snapshot();
        match kind {
            Kind::Plan => self.list::<Plan>(&dir, who, query, origin).await,
            Kind::Tenant => self.list::<Tenant>(&dir, who, query, origin).await,
            Kind::Team => self.list::<Team>(&dir, who, query, origin).await,
            Kind::User => self.list::<User>(&dir, who, query, origin).await,
            Kind::Key => self.list::<KeyRecord>(&dir, who, query, origin).await,
        }
    }

    async fn list<T: Rules>(
        &self,
        dir: &Directory,
        who: &Principal,
        query: &[(String, String)],
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        self.require(who, T::READ, origin).await?;
        let (limit, after, filters) = page_query(query, T::FILTERS)?;
        let range = match &after {
            Some(a) => T::all(dir).range::<String, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => T::all(dir).range::<String, _>(..),
        };
        let mut data = Vec::new();
        let mut has_more = false;
        for (_, object) in range {
            if !who.sees(object.tenant_id()) {
                continue;
            }
            let v = view(&**object);
            if !filters.iter().all(|(k, want)| field_matches(&v, k, want)) {
                continue;
            }
            if data.len() == limit {
                has_more = true;
                break;
            }
            data.push(v);
        }
        let next = if has_more { data.last().and_then(|v| v.get("id").cloned()) } else { None };
        Ok(serde_json::json!({"object": "list", "data": data, "has_more": has_more, "next_after": next}))
    }

    pub async fn admin_update(
        &self,
        who: &Principal,
        kind: Kind,
        id: &str,
        body: &[u8],
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        match kind {
            Kind::Plan => self.update::<Plan>(who, id, body, origin).await,
            Kind::Tenant => self.update::<Tenant>(who, id, body, origin).await,
            Kind::Team => self.update::<Team>(who, id, body, origin).await,
            Kind::User => self.update::<User>(who, id, body, origin).await,
            Kind::Key => self.update::<KeyRecord>(who, id, body, origin).await,
        }
    }

    async fn update<T: Rules>(
        &self,
        who: &Principal,
        id: &str,
        body: &[u8],
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        self.require(who, T::WRITE, origin).await?;
        let dir = self.directory.snapshot();
        let before = self.visible::<T>(&dir, who, id, origin)?;
        let patch = object_body(body, false)?;
        check_body(&patch, T::PATCH_FIELDS)?;
        self.platform_only(who, &patch, origin).await?;
        let mut merged = view(&*before);
        merge(&mut merged, &Value::Object(patch));
        // The merged object must fit the same bounds as a new one.
        if let Value::Object(m) = &merged {
            let fields: Map<String, Value> = m
                .iter()
                .filter(|(k, _)| T::PATCH_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            check_body(&fields, T::PATCH_FIELDS)?;
        }
        merged["updated_at"] = crate::now_unix_ms().into();
        let mut object: T = decode(merged)?;
        object.carry(&before);
        if object.name() != before.name() && dir.by_name::<T>(object.tenant_id(), object.name()).is_some() {
            return Err(invalid("name", format!("A {} named '{}' already exists.", T::KIND.as_str(), object.name())));
        }
        object.check(&dir, &self.route_exists())?;
        let after = view(&object);
        self.save(who, origin, "update", &*before, &object).await?;
        Ok(after)
    }

    /// Stores `object` (which replaces `before`) with its audit entry.
    async fn save<T: Rules>(
        &self,
        who: &Principal,
        origin: &Origin,
        verb: &str,
        before: &T,
        object: &T,
    ) -> Result<(), GatewayError> {
        let mut audit = AuditRecord::new(who.actor(), format!("{}.{verb}", T::KIND.as_str()), origin)
            .target(T::KIND.as_str(), object.id())
            .tenant(object.tenant_id());
        audit.before = Some(view(before));
        audit.after = Some(view(object));
        self.commit(&[change(object, object.secret_hash())], audit).await
    }

    pub async fn admin_delete(
        &self,
        who: &Principal,
        kind: Kind,
        id: &str,
        origin: &Origin,
    ) -> Result<(), GatewayError> {
        match kind {
            Kind::Plan => self.delete::<Plan>(who, id, origin).await,
            Kind::Tenant => self.delete::<Tenant>(who, id, origin).await,
            Kind::Team => self.delete::<Team>(who, id, origin).await,
            Kind::User => self.delete::<User>(who, id, origin).await,
            Kind::Key => self.delete::<KeyRecord>(who, id, origin).await,
        }
    }

    async fn delete<T: Rules>(&self, who: &Principal, id: &str, origin: &Origin) -> Result<(), GatewayError> {
        self.require(who, T::WRITE, origin).await?;
        let dir = self.directory.snapshot();
        let before = self.visible::<T>(&dir, who, id, origin)?;
        let users = before.used_by(&dir);
        if users > 0 {
            return Err(GatewayError::new(
                ErrorKind::Conflict,
                format!("{} '{id}' is still used by {users} object(s); delete or move them first.", T::KIND.as_str()),
            ));
        }
        let mut audit = AuditRecord::new(who.actor(), format!("{}.delete", T::KIND.as_str()), origin)
            .target(T::KIND.as_str(), id)
            .tenant(before.tenant_id());
        audit.before = Some(view(&*before));
        let mut gone = change(&*before, before.secret_hash());
        gone.doc = None;
        self.commit(&[gone], audit).await
    }

    /// Disable, enable, revoke or rotate a key.
    pub async fn key_action(
        &self,
        who: &Principal,
        id: &str,
        verb: &str,
        body: &[u8],
        origin: &Origin,
    ) -> Result<Created, GatewayError> {
        self.require(who, Permission::KeysWrite, origin).await?;
        let dir = self.directory.snapshot();
        let before = self.visible::<KeyRecord>(&dir, who, id, origin)?;
        let action = KeyAction::parse(verb, body)?;
        let conflict = |m: &str| GatewayError::new(ErrorKind::Conflict, m.to_string());
        let now = crate::now_unix_ms();
        let mut key = KeyRecord::clone(&before);
        key.updated_at = now;
        match action {
            KeyAction::Disable | KeyAction::Enable if before.status == KeyStatus::Revoked => {
                return Err(conflict("This key is revoked; revocation cannot be undone."));
            }
            KeyAction::Disable => key.status = KeyStatus::Disabled,
            KeyAction::Enable => key.status = KeyStatus::Active,
            KeyAction::Revoke => key.status = KeyStatus::Revoked,
            KeyAction::Rotate { overlap_seconds } => {
                if before.status == KeyStatus::Revoked {
                    return Err(conflict("A revoked key cannot be rotated."));
                }
                return self.rotate(who, &before, overlap_seconds, origin).await;
            }
        }
        self.save(who, origin, action.verb(), &*before, &key).await?;
        Ok(Created { view: view(&key), secret: None })
    }

    async fn rotate(
        &self,
        who: &Principal,
        old: &KeyRecord,
        overlap_seconds: u64,
        origin: &Origin,
    ) -> Result<Created, GatewayError> {
        let now = crate::now_unix_ms();
        let secret = generate_secret().map_err(|e| GatewayError::new(ErrorKind::Internal, e))?;
        let mut new = old.clone();
        new.id = crate::ids::time_ordered(Kind::Key.id_prefix());
        new.name = rotated_name(&old.name, &new.id);
        new.hash = hash_secret(&secret);
        new.prefix = secret.chars().take(10).collect();
        new.status = KeyStatus::Active;
        new.replaced_by = None;
        new.created_at = now;
        new.updated_at = now;
        let mut retired = old.clone();
        let until = now.saturating_add((overlap_seconds as i64).saturating_mul(1000));
        retired.expires_at = Some(retired.expires_at.map_or(until, |t| t.min(until)));
        retired.replaced_by = Some(new.id.clone());
        retired.updated_at = now;
        let mut audit =
            AuditRecord::new(who.actor(), "key.rotate", origin).target("key", &old.id).tenant(Some(&old.tenant_id));
        audit.before = Some(view(old));
        audit.after = Some(serde_json::json!({"old": view(&retired), "new": view(&new)}));
        let changes = [change(&retired, Some(retired.hash.clone())), change(&new, Some(new.hash.clone()))];
        self.commit(&changes, audit).await?;
        let mut v = view(&new);
        v["key"] = Value::String(secret.clone());
        Ok(Created { view: v, secret: Some(secret) })
    }

    /// `GET /api/v1/audit`: newest first; a tenant admin sees its tenant's
    /// entries only.
    pub async fn audit_list(
        &self,
        who: &Principal,
        query: &[(String, String)],
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        self.require(who, Permission::AuditRead, origin).await?;
        let mut q = AuditQuery { limit: DEFAULT_PAGE, ..AuditQuery::default() };
        for (k, v) in query {
            let int = || v.parse::<i64>().map_err(|_| invalid(k, format!("'{k}' must be an integer (unix ms).")));
            match k.as_str() {
                "tenant_id" => q.tenant_id = Some(v.clone()),
                "actor_id" => q.actor_id = Some(v.clone()),
                "action" => q.action = Some(v.clone()),
                "target_kind" => q.target_kind = Some(v.clone()),
                "target_id" => q.target_id = Some(v.clone()),
                "since" => q.since = Some(int()?),
                "until" => q.until = Some(int()?),
                "before" => q.before = Some(v.clone()),
                "limit" => q.limit = parse_limit(v)?,
                other => {
                    return Err(unknown_param(
                        other,
                        "tenant_id, actor_id, action, target_kind, target_id, since, until, before, limit",
                    ))
                }
            }
        }
        if let Some(mine) = who.tenant_scope() {
            if q.tenant_id.as_deref().is_some_and(|t| t != mine) {
                return Ok(serde_json::json!({"object": "list", "data": [], "has_more": false, "next_before": null}));
            }
            q.tenant_id = Some(mine.to_string());
        }
        let limit = q.limit;
        q.limit += 1;
        let mut rows = self.store.audit_page(&q).await.map_err(store_error)?;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next = if has_more { rows.last().map(|r| r.id.clone()) } else { None };
        Ok(serde_json::json!({"object": "list", "data": rows, "has_more": has_more, "next_before": next}))
    }
}

fn rotated_name(name: &str, new_id: &str) -> String {
    let base: String = name.chars().take(80).collect();
    let tail: String = new_id.chars().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{base} rotated-{tail}")
}

pub(crate) fn unknown_param(name: &str, allowed: &str) -> GatewayError {
    invalid(name, format!("Unknown query parameter '{name}'. Allowed: {allowed}."))
}

pub(crate) fn parse_limit(v: &str) -> Result<usize, GatewayError> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| invalid("limit", format!("'limit' must be an integer from 1 to {MAX_PAGE}.")))
}

type Filters = Vec<(String, String)>;

fn page_query(query: &[(String, String)], filters: &[&str]) -> Result<(usize, Option<String>, Filters), GatewayError> {
    let (mut limit, mut after, mut out) = (DEFAULT_PAGE, None, Vec::new());
    for (k, v) in query {
        match k.as_str() {
            "limit" => limit = parse_limit(v)?,
            "after" => after = Some(v.clone()),
            f if filters.contains(&f) => out.push((k.clone(), v.clone())),
            other => return Err(unknown_param(other, &format!("limit, after, {}", filters.join(", ")))),
        }
    }
    Ok((limit, after, out))
}

/// Does the object's field `k` equal `want` (`role`: one of `roles`)?
fn field_matches(v: &Value, k: &str, want: &str) -> bool {
    if k == "role" {
        return v["roles"].as_array().is_some_and(|a| a.iter().any(|r| r.as_str() == Some(want)));
    }
    match &v[k] {
        Value::String(s) => s == want,
        Value::Null => false,
        other => *other == want.parse::<Value>().unwrap_or(Value::Null),
    }
}

/// The objects a first start creates: the `default` tenant and three plans.
pub fn seed(now: i64) -> (Vec<Plan>, Tenant) {
    let plan = |id: &str, name: &str, limits: Limits, key_limits: Limits| Plan {
        id: id.into(),
        name: name.into(),
        limits,
        key_limits,
        allowed_routes: None,
        metadata: Map::new(),
        created_at: now,
        updated_at: now,
    };
    let l = |rpm, tpm, c| Limits { rpm: Some(rpm), tpm: Some(tpm), max_concurrent: Some(c) };
    let k = |rpm| Limits { rpm: Some(rpm), ..Limits::default() };
    let plans = vec![
        plan("basic", "basic", l(60, 100_000, 10), k(30)),
        plan("professional", "professional", l(600, 1_000_000, 100), k(300)),
        plan("enterprise", "enterprise", Limits::default(), Limits::default()),
    ];
    let tenant = Tenant {
        id: "default".into(),
        name: "default".into(),
        status: TenantStatus::Active,
        trial_ends_at: None,
        plan_id: None,
        limits: Limits::default(),
        budgets: Vec::new(),
        allowed_routes: None,
        classification: None,
        allowed_regions: None,
        metadata: Map::new(),
        created_at: now,
        updated_at: now,
    };
    (plans, tenant)
}

impl Gateway {
    /// Loads the directory and, on a store that has never held one, creates
    /// the `default` tenant and the three plans (audited as `system`).
    /// Answers how many keys are in memory.
    pub async fn load_directory(&self) -> Result<usize, StoreError> {
        self.directory.refresh(&*self.store).await?;
        let dir = self.directory.snapshot();
        if dir.tenants.is_empty() && dir.plans.is_empty() {
            let (plans, tenant) = seed(crate::now_unix_ms());
            let mut changes: Vec<Change> = plans.iter().map(|p| change(p, None)).collect();
            changes.push(change(&tenant, None));
            let audit = AuditRecord::new(super::audit::Actor::system(), "directory.seed", &Origin::default());
            match self.store.apply(&changes, &audit).await {
                Ok(_) | Err(StoreError::Conflict(_)) => {} // another replica seeded first
                Err(e) => return Err(e),
            }
            self.directory.refresh(&*self.store).await?;
        }
        Ok(self.directory.load().keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let mut t = json!({"a": 1, "m": {"x": 1, "y": 2}, "l": {"rpm": 5, "tpm": 6}});
        merge(&mut t, &json!({"a": null, "m": {"x": null, "z": 3}, "l": {"rpm": 7}, "n": [1]}));
        assert_eq!(t, json!({"m": {"y": 2, "z": 3}, "l": {"rpm": 7, "tpm": 6}, "n": [1]}));
    }

    #[test]
    fn queries_name_unknown_parameters() {
        let q = vec![("colour".to_string(), "red".to_string())];
        assert_eq!(page_query(&q, &["name"]).err().and_then(|e| e.param).as_deref(), Some("colour"));
        let q = vec![("limit".to_string(), "0".to_string())];
        assert_eq!(page_query(&q, &["name"]).err().and_then(|e| e.param).as_deref(), Some("limit"));
        let q = vec![("limit".to_string(), "7".to_string()), ("name".to_string(), "x".to_string())];
        let (limit, after, filters) = page_query(&q, &["name"]).ok().unwrap_or_default();
        assert_eq!((limit, after, filters.len()), (7, None, 1));
    }

    #[test]
    fn filters_match_fields_and_roles() {
        let v = json!({"status": "active", "roles": ["admin", "viewer"], "n": 5, "team_id": null});
        assert!(field_matches(&v, "status", "active"));
        assert!(field_matches(&v, "role", "viewer"));
        assert!(!field_matches(&v, "role", "billing"));
        assert!(field_matches(&v, "n", "5"));
        assert!(!field_matches(&v, "team_id", "null"));
    }

    #[test]
    fn rotated_names_stay_short_and_distinct() {
        let n = rotated_name(&"k".repeat(100), "key_0123456789abcdef");
        assert!(n.chars().count() <= 100 && n.ends_with("abcdef"));
    }
}

//! The audit log: every admin change (written in the same transaction as
//! the change, see [`crate::store::Store::apply`]) and every security
//! decision (denied access, refused requests: through the batched writer,
//! drained on shutdown).

use crate::store::{Store, StoreFuture};
use crate::writer::{Batched, Sink};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_telemetry::{CounterFamily, GaugeFamily, Metrics};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: String,
    /// Unix ms.
    pub at: i64,
    /// The tenant the entry belongs to (what a tenant admin may read).
    pub tenant_id: Option<String>,
    pub actor: Actor,
    /// `{kind}.{verb}` for changes; `auth.denied`, `access.denied`,
    /// `request.refused` for security decisions.
    pub action: String,
    pub target: Option<Target>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The client's address.
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The bootstrap token (the platform admin).
    Bootstrap,
    Key,
    /// No valid credential.
    Anonymous,
    /// The gateway itself (seeding defaults at first start).
    System,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub tenant_id: Option<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor { kind: ActorKind::System, id: None, tenant_id: None }
    }

    pub fn of_key(key: &crate::keys::KeyRecord) -> Actor {
        Actor { kind: ActorKind::Key, id: Some(key.id.clone()), tenant_id: Some(key.tenant_id.clone()) }
    }

    pub fn anonymous() -> Actor {
        Actor { kind: ActorKind::Anonymous, id: None, tenant_id: None }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub kind: String,
    pub id: String,
}

/// Where a request came from, for the record.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl AuditRecord {
    pub fn new(actor: Actor, action: impl Into<String>, origin: &Origin) -> AuditRecord {
        AuditRecord {
            id: crate::ids::time_ordered("aud"),
            at: crate::now_unix_ms(),
            tenant_id: None,
            actor,
            action: action.into(),
            target: None,
            before: None,
            after: None,
            ip: origin.ip.clone(),
            request_id: origin.request_id.clone(),
            reason: None,
        }
    }

    pub fn target(mut self, kind: &str, id: &str) -> Self {
        self.target = Some(Target { kind: kind.to_string(), id: id.to_string() });
        self
    }

    pub fn tenant(mut self, tenant_id: Option<&str>) -> Self {
        self.tenant_id = tenant_id.map(str::to_string);
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// Filters of `GET /api/v1/audit`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    pub tenant_id: Option<String>,
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<String>,
    /// Unix ms, inclusive.
    pub since: Option<i64>,
    /// Unix ms, exclusive.
    pub until: Option<i64>,
    /// Only entries with an id below this one (paging, newest first).
    pub before: Option<String>,
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `r` passes the filters (used by in-memory fakes; the stores
    /// say the same in SQL).
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| Some(w) == have);
        eq(&self.tenant_id, r.tenant_id.as_deref())
            && eq(&self.actor_id, r.actor.id.as_deref())
            && eq(&self.action, Some(&r.action))
            && eq(&self.target_kind, r.target.as_ref().map(|t| t.kind.as_str()))
            && eq(&self.target_id, r.target.as_ref().map(|t| t.id.as_str()))
            && self.since.is_none_or(|s| r.at >= s)
            && self.until.is_none_or(|u| r.at < u)
            && self.before.as_deref().is_none_or(|b| r.id.as_str() < b)
    }
}

/// The sending side of the audit writer.
pub type AuditSink = Sink<AuditRecord>;

impl Batched for AuditRecord {
    const WHAT: &'static str = "audit";
    fn write<'a>(store: &'a dyn Store, batch: &'a [Self]) -> StoreFuture<'a, ()> {
        store.write_audit(batch)
    }
    fn records(metrics: &Metrics) -> &CounterFamily {
        &metrics.audit_records
    }
    fn depth(metrics: &Metrics) -> &GaugeFamily {
        &metrics.audit_queue_depth
    }
}

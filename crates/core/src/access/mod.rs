//! Who may do what: the access model (plans → tenants → teams → users,
//! and keys that belong to them), the role table, the in-memory
//! directory the request path reads, the admin operations that change it,
//! and the audit log that records every change and every refusal.
//!
//! - [`roles`] — roles and permissions: the one table.
//! - [`model`] — the objects and the checks on their fields.
//! - [`directory`] — the snapshot in memory and how replicas catch up.
//! - [`admin`] — create / list / get / update / delete, key actions,
//!   scoping a tenant admin to its tenant; every change audited.
//! - [`audit`] — audit entries and their writer.

pub mod admin;
pub mod audit;
pub mod directory;
pub mod model;
pub mod roles;

pub use directory::{Caller, ChangeFeed, Directory, DirectoryHandle};
pub use model::{Kind, Plan, Team, Tenant, TenantStatus, User};
pub use roles::{Permission, Permissions, Role};

use audit::{Actor, ActorKind};
use std::sync::Arc;

/// Who is calling the admin API.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The bootstrap token: the platform admin, every tenant.
    Bootstrap,
    /// An API key: its own tenant, what its roles allow.
    Key(Arc<Caller>),
}

impl Principal {
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Bootstrap => Actor { kind: ActorKind::Bootstrap, id: None, tenant_id: None },
            Principal::Key(c) => Actor::of_key(&c.key),
        }
    }

    pub fn allows(&self, p: Permission) -> bool {
        match self {
            Principal::Bootstrap => true,
            Principal::Key(c) => c.permissions.allows(p),
        }
    }

    /// The one tenant this caller may see; `None` = all.
    pub fn tenant_scope(&self) -> Option<&str> {
        match self {
            Principal::Bootstrap => None,
            Principal::Key(c) => Some(c.tenant_id()),
        }
    }

    /// May this caller see objects of `tenant_id` (`None`: not of a tenant)?
    pub fn sees(&self, tenant_id: Option<&str>) -> bool {
        match (self.tenant_scope(), tenant_id) {
            (None, _) | (Some(_), None) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
        }
    }
}

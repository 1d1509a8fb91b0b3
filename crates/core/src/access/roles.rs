//! Roles and what each may do: the one table (`GRANTS`). The docs carry
//! the same table (docs/admin-api.md, "Roles"); a test keeps them equal.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Developer,
    Viewer,
    Billing,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Developer, Role::Viewer, Role::Billing];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
            Role::Billing => "billing",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Call `/v1/*`.
    Inference,
    TenantsRead,
    /// Create, change and delete tenants: the platform admin only.
    TenantsWrite,
    PlansRead,
    /// The platform admin only.
    PlansWrite,
    TeamsRead,
    TeamsWrite,
    UsersRead,
    UsersWrite,
    KeysRead,
    KeysWrite,
    AuditRead,
    UsageRead,
}

impl Permission {
    pub const ALL: [Permission; 13] = [
        Permission::Inference,
        Permission::TenantsRead,
        Permission::TenantsWrite,
        Permission::PlansRead,
        Permission::PlansWrite,
        Permission::TeamsRead,
        Permission::TeamsWrite,
        Permission::UsersRead,
        Permission::UsersWrite,
        Permission::KeysRead,
        Permission::KeysWrite,
        Permission::AuditRead,
        Permission::UsageRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Inference => "inference",
            Permission::TenantsRead => "tenants.read",
            Permission::TenantsWrite => "tenants.write",
            Permission::PlansRead => "plans.read",
            Permission::PlansWrite => "plans.write",
            Permission::TeamsRead => "teams.read",
            Permission::TeamsWrite => "teams.write",
            Permission::UsersRead => "users.read",
            Permission::UsersWrite => "users.write",
            Permission::KeysRead => "keys.read",
            Permission::KeysWrite => "keys.write",
            Permission::AuditRead => "audit.read",
            Permission::UsageRead => "usage.read",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

use Permission as P;
use Role::{Admin as A, Billing as B, Developer as D, Viewer as V};

/// Who may do what. Permissions no role holds (tenants.write, plans.write)
/// belong to the bootstrap token alone.
const GRANTS: &[(Permission, &[Role])] = &[
    (P::Inference, &[A, D]),
    (P::TenantsRead, &[A, D, V, B]),
    (P::TenantsWrite, &[]),
    (P::PlansRead, &[A, V, B]),
    (P::PlansWrite, &[]),
    (P::TeamsRead, &[A, D, V, B]),
    (P::TeamsWrite, &[A]),
    (P::UsersRead, &[A, V]),
    (P::UsersWrite, &[A]),
    (P::KeysRead, &[A, V]),
    (P::KeysWrite, &[A]),
    (P::AuditRead, &[A]),
    (P::UsageRead, &[A, V, B]),
];

/// The union of what `roles` grant, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Permissions(u32);

impl Permissions {
    pub fn of(roles: &[Role]) -> Permissions {
        let mut bits = 0;
        for (perm, holders) in GRANTS {
            if holders.iter().any(|r| roles.contains(r)) {
                bits |= perm.bit();
            }
        }
        Permissions(bits)
    }

    pub fn allows(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        Permission::ALL.into_iter().filter(|p| self.allows(*p)).map(Permission::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_permission_has_one_row() {
        for p in Permission::ALL {
            assert_eq!(GRANTS.iter().filter(|(q, _)| *q == p).count(), 1, "{p:?}");
        }
    }

    #[test]
    fn roles_grant_what_the_table_says() {
        let admin = Permissions::of(&[Role::Admin]);
        assert!(admin.allows(P::KeysWrite) && admin.allows(P::Inference) && !admin.allows(P::TenantsWrite));
        let viewer = Permissions::of(&[Role::Viewer]);
        assert!(viewer.allows(P::KeysRead) && !viewer.allows(P::KeysWrite) && !viewer.allows(P::Inference));
        let both = Permissions::of(&[Role::Viewer, Role::Developer]);
        assert!(both.allows(P::Inference) && both.allows(P::KeysRead));
        assert_eq!(Permissions::of(&[]), Permissions::default());
    }

    /// docs/admin-api.md has the same table; a change to one without the
    /// other fails here.
    #[test]
    fn the_docs_table_matches() {
        let doc = include_str!("../../../../docs/admin-api.md");
        for p in Permission::ALL {
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{}`", p.as_str())))
                .unwrap_or_else(|| String::new().leak());
            assert!(!row.is_empty(), "docs/admin-api.md has no row for {}", p.as_str());
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            // | name | admin | developer | viewer | billing | bootstrap |
            for (i, role) in Role::ALL.into_iter().enumerate() {
                let ticked = cells[2 + i] == "✓";
                assert_eq!(ticked, Permissions::of(&[role]).allows(p), "{} for {}", p.as_str(), role.as_str());
            }
        }
    }
}

//! `switchyard audit list` → `GET /api/v1/audit`, newest first.

use super::client::Call;
use super::duration::parse_instant;
use super::table::{col, reference, time, Column};
use super::{Cursor, Plan, Planned, View};
use clap::Subcommand;
use http::Method;

static COLUMNS: [Column; 6] = [
    time("AT", "at"),
    col("ACTION", "action"),
    reference("ACTOR", "actor"),
    reference("TARGET", "target"),
    col("TENANT", "tenant_id"),
    col("ID", "id"),
];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List audit entries, newest first.
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// The acting key's id.
        #[arg(long)]
        actor: Option<String>,
        /// E.g. `key.revoke`, `tenant.create`, `auth.denied`, `access.denied`, `request.refused`.
        #[arg(long)]
        action: Option<String>,
        /// E.g. `key`, `tenant`, `team`, `user`, `plan`.
        #[arg(long)]
        target_kind: Option<String>,
        #[arg(long)]
        target_id: Option<String>,
        /// Entries at or after: unix ms, or a duration ago (90s, 10m, 1h, 2d).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Entries before: unix ms, or a duration ago.
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Entries per page (1–500; the gateway's default is 50).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Start before this id (a previous page's `next_before`).
        #[arg(long, value_name = "ID", conflicts_with = "all")]
        before: Option<String>,
        /// Follow `next_before` through every page.
        #[arg(long)]
        all: bool,
    },
}

impl Planned for Command {
    fn plan(self, now_ms: u64) -> Result<Plan, String> {
        let Command::List { tenant, actor, action, target_kind, target_id, since, until, limit, before, all } = self;
        let instant = |flag: &str, v: Option<String>| {
            v.map(|t| parse_instant(&t, now_ms).map_err(|e| format!("--{flag}: {e}"))).transpose()
        };
        let mut call = Call::new(Method::GET, "/api/v1/audit".into());
        call.param("tenant_id", tenant);
        call.param("actor_id", actor);
        call.param("action", action);
        call.param("target_kind", target_kind);
        call.param("target_id", target_id);
        call.param("since", instant("since", since)?);
        call.param("until", instant("until", until)?);
        call.param("limit", limit);
        call.param("before", before);
        Ok(Plan { call, view: View::List { columns: &COLUMNS, cursor: Cursor::Before, all } })
    }
}

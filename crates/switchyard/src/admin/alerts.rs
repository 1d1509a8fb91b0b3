//! `switchyard alerts list` → `GET /api/v1/alerts`, newest first.

use super::client::Call;
use super::duration::parse_instant;
use super::table::{col, time, Column};
use super::{Cursor, Plan, Planned, View};
use clap::Subcommand;
use http::Method;

static COLUMNS: [Column; 9] = [
    time("FIRED", "fired_at"),
    col("SCOPE", "scope"),
    col("PERIOD", "window"),
    col("THRESHOLD", "threshold"),
    col("SPENT", "spent"),
    col("LIMIT", "limit"),
    col("UNIT", "unit"),
    col("STATUS", "status"),
    col("ID", "id"),
];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List budget threshold alerts, newest first.
    List {
        #[arg(long)]
        tenant: Option<String>,
        /// The budget's owner: `key:ID`, `team:ID` or `tenant:ID`.
        #[arg(long)]
        scope: Option<String>,
        /// pending, delivered, failed or recorded (no webhook configured).
        #[arg(long)]
        status: Option<String>,
        /// Fired at or after: unix ms, or a duration ago (90s, 10m, 1h, 2d).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Fired before: unix ms, or a duration ago.
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Alerts per page (1–500; the gateway's default is 50).
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
        let Command::List { tenant, scope, status, since, until, limit, before, all } = self;
        let instant = |flag: &str, v: Option<String>| {
            v.map(|t| parse_instant(&t, now_ms).map_err(|e| format!("--{flag}: {e}"))).transpose()
        };
        let mut call = Call::new(Method::GET, "/api/v1/alerts".into());
        call.param("tenant_id", tenant);
        call.param("scope", scope);
        call.param("status", status);
        call.param("since", instant("since", since)?);
        call.param("until", instant("until", until)?);
        call.param("limit", limit);
        call.param("before", before);
        Ok(Plan { call, view: View::List { columns: &COLUMNS, cursor: Cursor::Before, all } })
    }
}

//! `switchyard tenants …` → `/api/v1/tenants`.

use super::body::{parse_metadata, Body, LimitArgs, PageArgs};
use super::table::{col, Column};
use super::{create, delete, get, list, update, Plan, Planned};
use clap::{Args, Subcommand};
use serde_json::Value;

const KIND: &str = "tenants";
const STATUSES: [&str; 3] = ["trial", "active", "suspended"];

pub(super) static COLUMNS: [Column; 6] = [
    col("ID", "id"),
    col("NAME", "name"),
    col("STATUS", "status"),
    col("PLAN", "plan_id"),
    col("RPM", "limits.rpm"),
    col("TPM", "limits.tpm"),
];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List tenants.
    List {
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// Only tenants on this plan (an id).
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one tenant.
    Get { id: String },
    /// Create a tenant.
    Create {
        #[arg(long)]
        name: String,
        /// A chosen id (`[a-z0-9-]{1,64}`); default: one made by the gateway.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        fields: Fields,
    },
    /// Change a tenant: only the fields given.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: Fields,
        /// Take the tenant off its plan.
        #[arg(long, conflicts_with = "plan")]
        clear_plan: bool,
        /// Allow every route the plan allows again.
        #[arg(long, conflicts_with = "routes")]
        clear_routes: bool,
    },
    /// Delete a tenant (refused while it has teams, users or keys).
    Delete { id: String },
}

/// The fields create and update share.
#[derive(Args, Debug)]
pub struct Fields {
    /// The plan's id.
    #[arg(long)]
    plan: Option<String>,
    #[arg(long, value_parser = STATUSES)]
    status: Option<String>,
    /// When a `trial` tenant stops working (unix ms).
    #[arg(long, value_name = "UNIX_MS")]
    trial_ends_at: Option<u64>,
    #[command(flatten)]
    limits: LimitArgs,
    /// A route the tenant may use (repeat the flag); narrows the plan's.
    #[arg(long = "route", value_name = "ROUTE")]
    routes: Vec<String>,
    /// A JSON object.
    #[arg(long, value_parser = parse_metadata)]
    metadata: Option<Value>,
}

impl Fields {
    fn fill(self, b: &mut Body, clear_plan: bool, clear_routes: bool) {
        b.clearable("plan_id", self.plan, clear_plan);
        b.opt("status", self.status);
        b.opt("trial_ends_at", self.trial_ends_at);
        b.limits(&self.limits);
        b.list("allowed_routes", &self.routes, clear_routes);
        b.opt("metadata", self.metadata);
    }
}

impl Planned for Command {
    fn plan(self, _now_ms: u64) -> Result<Plan, String> {
        Ok(match self {
            Command::List { status, plan, name, page } => {
                list(KIND, &COLUMNS, &page, vec![("name", name), ("status", status), ("plan_id", plan)])
            }
            Command::Get { id } => get(KIND, &id),
            Command::Create { name, id, fields } => {
                let mut b = Body::default();
                b.opt("id", id);
                b.set("name", name);
                fields.fill(&mut b, false, false);
                create(KIND, b.create())
            }
            Command::Update { id, name, fields, clear_plan, clear_routes } => {
                let mut b = Body::default();
                b.opt("name", name);
                fields.fill(&mut b, clear_plan, clear_routes);
                update(KIND, &id, b.update()?)
            }
            Command::Delete { id } => delete(KIND, "tenant", &id),
        })
    }
}

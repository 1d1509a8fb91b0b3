//! `switchyard plans …` → `/api/v1/plans`.

use super::body::{parse_metadata, Body, KeyLimitArgs, LimitArgs, PageArgs};
use super::table::{col, Column};
use super::{create, delete, get, list, update, Plan, Planned};
use clap::{Args, Subcommand};
use serde_json::Value;

const KIND: &str = "plans";

static COLUMNS: [Column; 7] = [
    col("ID", "id"),
    col("NAME", "name"),
    col("RPM", "limits.rpm"),
    col("TPM", "limits.tpm"),
    col("CONCURRENT", "limits.max_concurrent"),
    col("KEY_RPM", "key_limits.rpm"),
    col("ROUTES", "allowed_routes"),
];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List plans.
    List {
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one plan.
    Get { id: String },
    /// Create a plan.
    Create {
        #[arg(long)]
        name: String,
        /// A chosen id (`[a-z0-9-]{1,64}`); default: one made by the gateway.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        fields: Fields,
    },
    /// Change a plan: only the fields given.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: Fields,
        /// Allow every route again.
        #[arg(long, conflicts_with = "routes")]
        clear_routes: bool,
    },
    /// Delete a plan (refused while a tenant is on it).
    Delete { id: String },
}

/// The fields create and update share.
#[derive(Args, Debug)]
pub struct Fields {
    /// Per tenant on the plan.
    #[command(flatten)]
    limits: LimitArgs,
    /// Per key of those tenants.
    #[command(flatten)]
    key_limits: KeyLimitArgs,
    /// A route the plan's tenants may use (repeat the flag); default: all.
    #[arg(long = "route", value_name = "ROUTE")]
    routes: Vec<String>,
    /// A JSON object.
    #[arg(long, value_parser = parse_metadata)]
    metadata: Option<Value>,
}

impl Fields {
    fn fill(self, b: &mut Body, clear_routes: bool) {
        b.limits(&self.limits);
        b.key_limits(&self.key_limits);
        b.list("allowed_routes", &self.routes, clear_routes);
        b.opt("metadata", self.metadata);
    }
}

impl Planned for Command {
    fn plan(self, _now_ms: u64) -> Result<Plan, String> {
        Ok(match self {
            Command::List { name, page } => list(KIND, &COLUMNS, &page, vec![("name", name)]),
            Command::Get { id } => get(KIND, &id),
            Command::Create { name, id, fields } => {
                let mut b = Body::default();
                b.opt("id", id);
                b.set("name", name);
                fields.fill(&mut b, false);
                create(KIND, b.create())
            }
            Command::Update { id, name, fields, clear_routes } => {
                let mut b = Body::default();
                b.opt("name", name);
                fields.fill(&mut b, clear_routes);
                update(KIND, &id, b.update()?)
            }
            Command::Delete { id } => delete(KIND, "plan", &id),
        })
    }
}

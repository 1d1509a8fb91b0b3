//! `switchyard teams …` → `/api/v1/teams`.

use super::body::{parse_metadata, Body, LimitArgs, PageArgs};
use super::table::{col, Column};
use super::{create, delete, get, list, update, Plan, Planned};
use clap::{Args, Subcommand};
use serde_json::Value;

const KIND: &str = "teams";

static COLUMNS: [Column; 6] = [
    col("ID", "id"),
    col("TENANT", "tenant_id"),
    col("NAME", "name"),
    col("RPM", "limits.rpm"),
    col("TPM", "limits.tpm"),
    col("ROUTES", "allowed_routes"),
];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List teams.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one team.
    Get { id: String },
    /// Create a team.
    Create {
        /// The tenant's id; default: a tenant admin's own tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Change a team: only the fields given.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: Fields,
        /// Allow every route the tenant allows again.
        #[arg(long, conflicts_with = "routes")]
        clear_routes: bool,
    },
    /// Delete a team (refused while it has users or keys).
    Delete { id: String },
}

/// The fields create and update share.
#[derive(Args, Debug)]
pub struct Fields {
    #[command(flatten)]
    limits: LimitArgs,
    /// A route the team may use (repeat the flag); narrows the tenant's.
    #[arg(long = "route", value_name = "ROUTE")]
    routes: Vec<String>,
    /// A JSON object.
    #[arg(long, value_parser = parse_metadata)]
    metadata: Option<Value>,
}

impl Fields {
    fn fill(self, b: &mut Body, clear_routes: bool) {
        b.limits(&self.limits);
        b.list("allowed_routes", &self.routes, clear_routes);
        b.opt("metadata", self.metadata);
    }
}

impl Planned for Command {
    fn plan(self, _now_ms: u64) -> Result<Plan, String> {
        Ok(match self {
            Command::List { tenant, name, page } => {
                list(KIND, &COLUMNS, &page, vec![("tenant_id", tenant), ("name", name)])
            }
            Command::Get { id } => get(KIND, &id),
            Command::Create { tenant, name, fields } => {
                let mut b = Body::default();
                b.opt("tenant_id", tenant);
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
            Command::Delete { id } => delete(KIND, "team", &id),
        })
    }
}

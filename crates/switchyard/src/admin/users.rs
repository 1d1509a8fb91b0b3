//! `switchyard users …` → `/api/v1/users`.

use super::body::{parse_metadata, Body, PageArgs};
use super::table::{col, time, Column};
use super::{create, delete, get, list, update, Plan, Planned};
use clap::Subcommand;
use serde_json::Value;

const KIND: &str = "users";

static COLUMNS: [Column; 6] = [
    col("ID", "id"),
    col("TENANT", "tenant_id"),
    col("TEAM", "team_id"),
    col("NAME", "name"),
    col("EMAIL", "email"),
    time("CREATED", "created_at"),
];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List users.
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one user.
    Get { id: String },
    /// Create a user.
    Create {
        /// The tenant's id; default: a tenant admin's own tenant.
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        name: String,
        /// A team of the same tenant.
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// A JSON object.
        #[arg(long, value_parser = parse_metadata)]
        metadata: Option<Value>,
    },
    /// Change a user: only the fields given.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// Take the user out of its team.
        #[arg(long, conflicts_with = "team")]
        clear_team: bool,
        #[arg(long)]
        email: Option<String>,
        /// Remove the user's e-mail address.
        #[arg(long, conflicts_with = "email")]
        clear_email: bool,
        /// A JSON object.
        #[arg(long, value_parser = parse_metadata)]
        metadata: Option<Value>,
    },
    /// Delete a user (refused while it has keys).
    Delete { id: String },
}

impl Planned for Command {
    fn plan(self, _now_ms: u64) -> Result<Plan, String> {
        Ok(match self {
            Command::List { tenant, team, email, page } => {
                list(KIND, &COLUMNS, &page, vec![("tenant_id", tenant), ("team_id", team), ("email", email)])
            }
            Command::Get { id } => get(KIND, &id),
            Command::Create { tenant, name, team, email, metadata } => {
                let mut b = Body::default();
                b.opt("tenant_id", tenant);
                b.set("name", name);
                b.opt("team_id", team);
                b.opt("email", email);
                b.opt("metadata", metadata);
                create(KIND, b.create())
            }
            Command::Update { id, name, team, clear_team, email, clear_email, metadata } => {
                let mut b = Body::default();
                b.opt("name", name);
                b.clearable("team_id", team, clear_team);
                b.clearable("email", email, clear_email);
                b.opt("metadata", metadata);
                update(KIND, &id, b.update()?)
            }
            Command::Delete { id } => delete(KIND, "user", &id),
        })
    }
}

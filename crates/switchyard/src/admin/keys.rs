//! `switchyard keys …` → `/api/v1/keys` and its actions.

use super::body::{parse_metadata, Body, LimitArgs, PageArgs};
use super::client::{object_path, Call};
use super::duration::{expires_in, parse_duration};
use super::table::{col, time, Column};
use super::{create, delete, get, list, update, Plan, Planned, View};
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{json, Value};

const KIND: &str = "keys";
const ROLES: [&str; 4] = ["admin", "developer", "viewer", "billing"];
const STATUSES: [&str; 3] = ["active", "disabled", "revoked"];

static COLUMNS: [Column; 9] = [
    col("ID", "id"),
    col("NAME", "name"),
    col("PREFIX", "prefix"),
    col("TENANT", "tenant_id"),
    col("TEAM", "team_id"),
    col("USER", "user_id"),
    col("ROLES", "roles"),
    col("STATUS", "status"),
    time("EXPIRES", "expires_at"),
];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List keys (secrets are never shown again; `prefix` is their first 10 characters).
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// Keys that have this role.
        #[arg(long, value_parser = ROLES)]
        role: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one key.
    Get { id: String },
    /// Create a key and print its secret alone on stdout (shown only once).
    Create {
        /// A name to recognise the key by (unique within the tenant).
        #[arg(long)]
        name: String,
        /// The tenant's id; default: the caller's (`default` for the bootstrap token).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        user: Option<String>,
        /// A role (repeat the flag); default: developer.
        #[arg(long = "role", value_name = "ROLE", value_parser = ROLES)]
        roles: Vec<String>,
        #[command(flatten)]
        fields: Fields,
    },
    /// Change a key: only the fields given.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        team: Option<String>,
        /// Take the key out of its team.
        #[arg(long, conflicts_with = "team")]
        clear_team: bool,
        #[arg(long)]
        user: Option<String>,
        /// Take the key away from its user.
        #[arg(long, conflicts_with = "user")]
        clear_user: bool,
        /// The key's roles (repeat the flag); replaces them all.
        #[arg(long = "role", value_name = "ROLE", value_parser = ROLES)]
        roles: Vec<String>,
        #[command(flatten)]
        fields: Fields,
        /// Allow every route the tenant and team allow again.
        #[arg(long, conflicts_with = "routes")]
        clear_routes: bool,
        /// Make the key never expire.
        #[arg(long, conflicts_with_all = ["expires_in", "expires_at"])]
        clear_expires: bool,
    },
    /// Refuse the key from now on (reversible with `enable`).
    Disable { id: String },
    /// Let a disabled key work again (a revoked one cannot).
    Enable { id: String },
    /// Refuse the key from now on, for good.
    Revoke { id: String },
    /// Make a new key with the same settings and print its secret; the old one expires after the overlap.
    Rotate {
        id: String,
        /// How long the old key keeps working: seconds, or 90s, 10m, 1h, 2d (the gateway's default: 1h).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        overlap: Option<u64>,
    },
    /// Delete a key; it is refused from now on.
    Delete { id: String },
}

/// The fields create and update share.
#[derive(Args, Debug)]
pub struct Fields {
    /// A route the key may use (repeat the flag); narrows the tenant's and team's.
    #[arg(long = "route", value_name = "ROUTE")]
    routes: Vec<String>,
    /// Expire this long from now: seconds, or 90s, 10m, 1h, 30d.
    #[arg(long, value_name = "DURATION", conflicts_with = "expires_at")]
    expires_in: Option<String>,
    /// Expire at this instant (unix ms).
    #[arg(long, value_name = "UNIX_MS")]
    expires_at: Option<u64>,
    #[command(flatten)]
    limits: LimitArgs,
    /// A JSON object.
    #[arg(long, value_parser = parse_metadata)]
    metadata: Option<Value>,
}

impl Fields {
    fn fill(self, b: &mut Body, clear_routes: bool, clear_expires: bool, now_ms: u64) -> Result<(), String> {
        b.list("allowed_routes", &self.routes, clear_routes);
        let expires_at = match self.expires_in {
            Some(d) => Some(expires_in(&d, now_ms)?),
            None => self.expires_at,
        };
        b.clearable("expires_at", expires_at, clear_expires);
        b.limits(&self.limits);
        b.opt("metadata", self.metadata);
        Ok(())
    }
}

/// `POST /api/v1/keys/{id}/{action}`, answered with the key as it now is.
fn action(id: &str, action: &str, body: Value) -> Call {
    let mut call = Call::new(Method::POST, format!("{}/{action}", object_path(KIND, id)));
    call.body = Some(body);
    call
}

impl Planned for Command {
    fn plan(self, now_ms: u64) -> Result<Plan, String> {
        Ok(match self {
            Command::List { tenant, team, user, status, role, name, page } => list(
                KIND,
                &COLUMNS,
                &page,
                vec![
                    ("tenant_id", tenant),
                    ("team_id", team),
                    ("user_id", user),
                    ("status", status),
                    ("role", role),
                    ("name", name),
                ],
            ),
            Command::Get { id } => get(KIND, &id),
            Command::Create { name, tenant, team, user, roles, fields } => {
                let mut b = Body::default();
                b.set("name", name);
                b.opt("tenant_id", tenant);
                b.opt("team_id", team);
                b.opt("user_id", user);
                b.list("roles", &roles, false);
                fields.fill(&mut b, false, false, now_ms)?;
                let mut plan = create(KIND, b.create());
                plan.view = View::Secret { note: "created".to_string() };
                plan
            }
            Command::Update {
                id,
                name,
                team,
                clear_team,
                user,
                clear_user,
                roles,
                fields,
                clear_routes,
                clear_expires,
            } => {
                let mut b = Body::default();
                b.opt("name", name);
                b.clearable("team_id", team, clear_team);
                b.clearable("user_id", user, clear_user);
                b.list("roles", &roles, false);
                fields.fill(&mut b, clear_routes, clear_expires, now_ms)?;
                update(KIND, &id, b.update()?)
            }
            Command::Disable { id } => Plan { call: action(&id, "disable", json!({})), view: View::Object },
            Command::Enable { id } => Plan { call: action(&id, "enable", json!({})), view: View::Object },
            Command::Revoke { id } => Plan { call: action(&id, "revoke", json!({})), view: View::Object },
            Command::Rotate { id, overlap } => {
                let mut body = Body::default();
                body.opt("overlap_seconds", overlap);
                let lasting = match overlap {
                    Some(s) => format!("{s} s"),
                    None => "the default overlap".to_string(),
                };
                let note = format!("created to replace {id}, which keeps working for {lasting}");
                Plan { call: action(&id, "rotate", body.create()), view: View::Secret { note } }
            }
            Command::Delete { id } => delete(KIND, "key", &id),
        })
    }
}

//! `switchyard tenants|plans|teams|users|keys|audit|alerts|analytics|whoami`: the admin
//! API (docs/admin-api.md) from the command line.
//!
//! Each command is first turned into a [`Plan`] — the request and how to
//! show its answer — without I/O, so the request building is tested on its
//! own; [`run`] then sends it and prints.
//!
//! | file | holds |
//! | --- | --- |
//! | `tenants.rs`, `plans.rs`, `teams.rs`, `users.rs`, `keys.rs`, `audit.rs`, `alerts.rs` | each kind's subcommands, request building and table columns |
//! | `analytics.rs` | `analytics cost`: the query and the report's rendering |
//! | `body.rs` | create/update bodies and the flags kinds share |
//! | `duration.rs` | `--overlap 10m`, `--expires-in 30d`, `--since 1h` |
//! | `client.rs` | the HTTP client, percent-encoding, the error line |
//! | `table.rs` | plain-text tables |

mod alerts;
mod analytics;
mod audit;
mod body;
mod client;
mod duration;
mod keys;
mod plans;
mod table;
mod teams;
mod tenants;
mod users;

use clap::{Args, Subcommand, ValueEnum};
use client::{object_path, Call, Client};
use http::Method;
use serde_json::{json, Value};
use table::Column;

/// Where the gateway is and who is calling; accepted after any admin
/// subcommand.
#[derive(Args, Clone, Debug)]
pub struct Connection {
    /// Gateway base URL.
    #[arg(
        long,
        global = true,
        help_heading = "Connection",
        env = "SWITCHYARD_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// The bootstrap token (`admin.bootstrap_token`) or an API key with the admin role.
    #[arg(
        long,
        alias = "admin-token",
        global = true,
        help_heading = "Connection",
        env = "SWITCHYARD_ADMIN_TOKEN",
        hide_env_values = true,
        default_value = "dev-admin-token"
    )]
    pub token: String,
    /// `table` for people, `json` for scripts (the API's answer, pretty-printed).
    #[arg(long, short, global = true, help_heading = "Connection", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// The admin commands, flattened into the binary's top-level commands.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Manage tenants (changes need the bootstrap token).
    Tenants(Resource<tenants::Command>),
    /// Manage plans: default limits and routes for tenants and their keys.
    Plans(Resource<plans::Command>),
    /// Manage teams within a tenant.
    Teams(Resource<teams::Command>),
    /// Manage users within a tenant.
    Users(Resource<users::Command>),
    /// Manage API keys: create, disable, enable, revoke, rotate.
    Keys(Resource<keys::Command>),
    /// Read the audit log of admin changes and security decisions.
    Audit(Resource<audit::Command>),
    /// Read budget threshold alerts and their delivery status.
    Alerts(Resource<alerts::Command>),
    /// Spend analytics: cost, tokens, requests and errors by model, key, team, tag, date….
    Analytics(Resource<analytics::Command>),
    /// Show who the token is: the bootstrap token, or a key with its tenant and permissions.
    Whoami(Connection),
}

#[derive(Args, Debug)]
pub struct Resource<C: Subcommand> {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: C,
}

/// A request and how to show its answer.
#[derive(Debug, PartialEq)]
pub struct Plan {
    pub call: Call,
    pub view: View,
}

#[derive(Debug, PartialEq)]
pub enum View {
    /// One object, field by field.
    Object,
    /// A list object; `all` follows the cursor through every page.
    List { columns: &'static [Column], cursor: Cursor, all: bool },
    /// A new key: the secret alone on stdout, a note on stderr.
    Secret { note: String },
    /// A delete, whose answer may be empty.
    Deleted { what: String },
    /// An analytics report (`analytics::render`).
    Report,
}

/// How a kind pages: forward by id (`after`/`next_after`), or the audit
/// log backwards (`before`/`next_before`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cursor {
    After,
    Before,
}

impl Cursor {
    fn param(self) -> &'static str {
        match self {
            Cursor::After => "after",
            Cursor::Before => "before",
        }
    }

    fn next_field(self) -> &'static str {
        match self {
            Cursor::After => "next_after",
            Cursor::Before => "next_before",
        }
    }
}

/// A kind's subcommands, turned into a request.
trait Planned {
    fn plan(self, now_ms: u64) -> Result<Plan, String>;
}

impl AdminCommand {
    fn plan(self, now_ms: u64) -> Result<(Connection, Plan), String> {
        fn with<C: Subcommand + Planned>(r: Resource<C>, now_ms: u64) -> Result<(Connection, Plan), String> {
            Ok((r.connection, r.command.plan(now_ms)?))
        }
        match self {
            AdminCommand::Tenants(r) => with(r, now_ms),
            AdminCommand::Plans(r) => with(r, now_ms),
            AdminCommand::Teams(r) => with(r, now_ms),
            AdminCommand::Users(r) => with(r, now_ms),
            AdminCommand::Keys(r) => with(r, now_ms),
            AdminCommand::Audit(r) => with(r, now_ms),
            AdminCommand::Alerts(r) => with(r, now_ms),
            AdminCommand::Analytics(r) => with(r, now_ms),
            AdminCommand::Whoami(c) => {
                Ok((c, Plan { call: Call::new(Method::GET, "/api/v1/whoami".into()), view: View::Object }))
            }
        }
    }
}

// The requests every kind makes the same way.

fn list(
    kind: &str,
    columns: &'static [Column],
    page: &body::PageArgs,
    filters: Vec<(&'static str, Option<String>)>,
) -> Plan {
    let mut call = Call::new(Method::GET, format!("/api/v1/{kind}"));
    for (name, value) in filters {
        call.param(name, value);
    }
    call.param("limit", page.limit);
    call.param("after", page.after.as_deref());
    Plan { call, view: View::List { columns, cursor: Cursor::After, all: page.all } }
}

fn get(kind: &str, id: &str) -> Plan {
    Plan { call: Call::new(Method::GET, object_path(kind, id)), view: View::Object }
}

fn create(kind: &str, body: Value) -> Plan {
    let mut call = Call::new(Method::POST, format!("/api/v1/{kind}"));
    call.body = Some(body);
    Plan { call, view: View::Object }
}

fn update(kind: &str, id: &str, body: Value) -> Plan {
    let mut call = Call::new(Method::PATCH, object_path(kind, id));
    call.body = Some(body);
    Plan { call, view: View::Object }
}

fn delete(kind: &str, singular: &str, id: &str) -> Plan {
    Plan {
        call: Call::new(Method::DELETE, object_path(kind, id)),
        view: View::Deleted { what: format!("{singular} {id}") },
    }
}

pub async fn run(command: AdminCommand) -> Result<(), String> {
    let (connection, plan) = command.plan(now_ms())?;
    let client = Client::new(&connection.url, &connection.token)?;
    let answer = client.send(&plan.call).await?;
    let json = connection.output == Output::Json;
    match plan.view {
        View::List { columns, cursor, all } => {
            let first = answer.ok_or("the gateway answered a list with an empty body")?;
            let list = if all { all_pages(&client, plan.call, cursor, first).await? } else { first };
            if json {
                print_json(&list);
            } else {
                let rows = list.get("data").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                print!("{}", table::render_list(columns, rows));
                if let (Some(true), Some(next)) = (
                    list.get("has_more").and_then(Value::as_bool),
                    list.get(cursor.next_field()).and_then(Value::as_str),
                ) {
                    eprintln!("(more: --{} {next} for the next page, or --all)", cursor.param());
                }
            }
        }
        View::Object => {
            let object = answer.ok_or("the gateway answered with an empty body")?;
            if json {
                print_json(&object);
            } else {
                print!("{}", table::render_object(&object));
            }
        }
        View::Secret { note } => {
            let object = answer.ok_or("the gateway answered with an empty body")?;
            if json {
                print_json(&object);
            } else {
                let secret = object.get("key").and_then(Value::as_str).ok_or("the gateway's answer has no `key`")?;
                // Alone on stdout, so `KEY=$(switchyard keys create …)` works.
                println!("{secret}");
                let id = object.get("id").and_then(Value::as_str).unwrap_or("?");
                eprintln!("key {id} {note} (the secret above is shown only once)");
            }
        }
        View::Report => {
            let report = answer.ok_or("the gateway answered with an empty body")?;
            if json {
                print_json(&report);
            } else {
                print!("{}", analytics::render(&report));
            }
        }
        View::Deleted { what } => {
            if !json {
                println!("deleted {what}");
            } else if let Some(v) = answer {
                print_json(&v);
            }
        }
    }
    Ok(())
}

/// Every page of a list as one list object.
async fn all_pages(client: &Client, mut call: Call, cursor: Cursor, first: Value) -> Result<Value, String> {
    let mut data: Vec<Value> = Vec::new();
    let mut page = first;
    let mut previous: Option<String> = None;
    loop {
        if let Some(Value::Array(items)) = page.get_mut("data") {
            data.append(items);
        }
        let more = page.get("has_more").and_then(Value::as_bool) == Some(true);
        let Some(next) = page.get(cursor.next_field()).and_then(Value::as_str).filter(|_| more) else { break };
        if previous.as_deref() == Some(next) {
            return Err(format!("the gateway answered the same `{}` twice ({next})", cursor.next_field()));
        }
        previous = Some(next.to_string());
        call.set_param(cursor.param(), next.to_string());
        page = client.send(&call).await?.ok_or("the gateway answered a list with an empty body")?;
    }
    let mut list = json!({"object": "list", "data": data, "has_more": false});
    list[cursor.next_field()] = Value::Null;
    Ok(list)
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

fn now_ms() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;

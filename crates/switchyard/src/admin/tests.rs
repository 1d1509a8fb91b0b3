//! Request building from real command lines: method, path, query and body.

#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use clap::Parser;
use serde_json::json;

const NOW: u64 = 1_764_900_000_000;

/// The binary's shape: the admin commands flattened into the top level.
#[derive(Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand, Debug)]
enum Top {
    #[command(flatten)]
    Admin(AdminCommand),
}

fn parse(args: &str) -> Result<AdminCommand, clap::Error> {
    let argv = std::iter::once("switchyard").chain(args.split_whitespace());
    Cli::try_parse_from(argv).map(|c| match c.command {
        Top::Admin(a) => a,
    })
}

fn plan(args: &str) -> (Connection, Plan) {
    parse(args).unwrap_or_else(|e| panic!("{args}: {e}")).plan(NOW).unwrap()
}

fn call(args: &str) -> Call {
    plan(args).1.call
}

/// Method, path and query, as sent.
fn line(c: &Call) -> String {
    format!("{} {}", c.method, c.target())
}

#[test]
fn tenant_create_sends_only_the_flags_given() {
    let c = call("tenants create --name Acme --id acme --plan professional --rpm 600 --route chat --route embed");
    assert_eq!(line(&c), "POST /api/v1/tenants");
    assert_eq!(
        c.body,
        Some(json!({"id": "acme", "name": "Acme", "plan_id": "professional", "limits": {"rpm": 600},
                    "allowed_routes": ["chat", "embed"]}))
    );
    assert_eq!(call("tenants create --name A").body, Some(json!({"name": "A"})));
}

#[test]
fn tenant_update_clears_with_null_and_refuses_an_empty_change() {
    let c = call("tenants update acme --clear-plan --clear-routes --tpm none --status suspended");
    assert_eq!(line(&c), "PATCH /api/v1/tenants/acme");
    assert_eq!(
        c.body,
        Some(json!({"plan_id": null, "allowed_routes": null, "limits": {"tpm": null}, "status": "suspended"}))
    );
    assert_eq!(call("tenants update acme --max-concurrent 3").body, Some(json!({"limits": {"max_concurrent": 3}})));
    let err = parse("tenants update acme").unwrap().plan(NOW).unwrap_err();
    assert!(err.starts_with("nothing to change"), "{err}");
    assert!(parse("tenants update acme --plan p --clear-plan").is_err());
    assert!(parse("tenants update acme --route r --clear-routes").is_err());
    assert!(parse("tenants create --name a --status bogus").is_err());
    assert!(parse("tenants create --name a --rpm lots").is_err());
    assert!(parse("tenants create --name a --metadata [1]").is_err());
}

#[test]
fn lists_send_filters_and_paging_percent_encoded() {
    let (_, p) = plan("tenants list --status active --plan basic --name A&B --limit 10");
    assert_eq!(line(&p.call), "GET /api/v1/tenants?name=A%26B&status=active&plan_id=basic&limit=10");
    assert_eq!(p.view, View::List { columns: &tenants::COLUMNS, cursor: Cursor::After, all: false });
    assert_eq!(line(&call("tenants list")), "GET /api/v1/tenants");
    assert_eq!(
        line(&call("users list --tenant acme --email a+b@x.io")),
        "GET /api/v1/users?tenant_id=acme&email=a%2Bb%40x.io"
    );
    assert_eq!(line(&call("teams list --after team_1")), "GET /api/v1/teams?after=team_1");
    assert!(parse("teams list --after team_1 --all").is_err());
    let (_, p) = plan("keys list --tenant acme --role admin --status revoked --all");
    assert_eq!(line(&p.call), "GET /api/v1/keys?tenant_id=acme&status=revoked&role=admin");
    assert!(matches!(p.view, View::List { all: true, cursor: Cursor::After, .. }));
    assert!(parse("keys list --role root").is_err());
}

#[test]
fn gets_and_deletes_address_one_object() {
    assert_eq!(line(&call("plans get basic")), "GET /api/v1/plans/basic");
    assert_eq!(line(&call("users get usr_1")), "GET /api/v1/users/usr_1");
    let (_, p) = plan("teams delete team/1");
    assert_eq!(line(&p.call), "DELETE /api/v1/teams/team%2F1");
    assert_eq!(p.view, View::Deleted { what: "team team/1".into() });
    assert_eq!(p.call.body, None);
}

#[test]
fn plans_send_tenant_and_key_limits() {
    let c = call("plans create --name Gold --id gold --rpm 100 --key-rpm 10 --key-max-concurrent none");
    assert_eq!(
        c.body,
        Some(json!({"id": "gold", "name": "Gold", "limits": {"rpm": 100},
                    "key_limits": {"rpm": 10, "max_concurrent": null}}))
    );
    assert_eq!(call("plans update gold --clear-routes").body, Some(json!({"allowed_routes": null})));
}

#[test]
fn teams_and_users_name_their_tenant() {
    let c = call("teams create --tenant acme --name ml --route chat");
    assert_eq!(line(&c), "POST /api/v1/teams");
    assert_eq!(c.body, Some(json!({"tenant_id": "acme", "name": "ml", "allowed_routes": ["chat"]})));
    let c = call("users create --tenant acme --name bob --team team_1 --email bob@acme.io");
    assert_eq!(c.body, Some(json!({"tenant_id": "acme", "name": "bob", "team_id": "team_1", "email": "bob@acme.io"})));
    let c = call("users update usr_1 --clear-team --email new@acme.io");
    assert_eq!(line(&c), "PATCH /api/v1/users/usr_1");
    assert_eq!(c.body, Some(json!({"team_id": null, "email": "new@acme.io"})));
}

#[test]
fn key_create_prints_the_secret_and_computes_expiry() {
    let (_, p) =
        plan("keys create --name ci --tenant acme --role admin --role viewer --route chat --expires-in 30d --rpm 5");
    assert_eq!(line(&p.call), "POST /api/v1/keys");
    assert_eq!(
        p.call.body,
        Some(json!({"name": "ci", "tenant_id": "acme", "roles": ["admin", "viewer"], "allowed_routes": ["chat"],
                    "expires_at": NOW + 30 * 86_400_000, "limits": {"rpm": 5}}))
    );
    assert_eq!(p.view, View::Secret { note: "created".into() });
    assert_eq!(call("keys create --name x").body, Some(json!({"name": "x"})));
    assert_eq!(call("keys create --name x --expires-at 5").body, Some(json!({"name": "x", "expires_at": 5})));
    assert!(parse("keys create --name x --expires-at 5 --expires-in 1h").is_err());
    assert!(parse("keys create --name x --expires-in 0").unwrap().plan(NOW).is_err());
}

#[test]
fn key_update_replaces_roles_and_clears_expiry() {
    let c = call("keys update key_1 --role developer --clear-expires --clear-user");
    assert_eq!(line(&c), "PATCH /api/v1/keys/key_1");
    assert_eq!(c.body, Some(json!({"roles": ["developer"], "expires_at": null, "user_id": null})));
    assert!(parse("keys update key_1 --clear-expires --expires-in 1h").is_err());
}

#[test]
fn key_actions_post_to_the_key() {
    for action in ["disable", "enable", "revoke"] {
        let (_, p) = plan(&format!("keys {action} key_1"));
        assert_eq!(line(&p.call), format!("POST /api/v1/keys/key_1/{action}"));
        assert_eq!(p.call.body, Some(json!({})));
        assert_eq!(p.view, View::Object);
    }
    let (_, p) = plan("keys rotate key_1 --overlap 10m");
    assert_eq!(line(&p.call), "POST /api/v1/keys/key_1/rotate");
    assert_eq!(p.call.body, Some(json!({"overlap_seconds": 600})));
    assert!(matches!(p.view, View::Secret { ref note } if note.contains("key_1") && note.contains("600 s")));
    assert_eq!(call("keys rotate key_1").body, Some(json!({})));
    assert_eq!(call("keys rotate key_1 --overlap 90").body, Some(json!({"overlap_seconds": 90})));
    assert!(parse("keys rotate key_1 --overlap soon").is_err());
    assert_eq!(line(&call("keys delete key_1")), "DELETE /api/v1/keys/key_1");
}

#[test]
fn audit_pages_backwards_and_takes_relative_times() {
    let (_, p) = plan(
        "audit list --tenant acme --action key.revoke --target-kind key --since 1h --until 1764900000000 --limit 5",
    );
    assert_eq!(
        line(&p.call),
        format!(
            "GET /api/v1/audit?tenant_id=acme&action=key.revoke&target_kind=key&since={}&until=1764900000000&limit=5",
            NOW - 3_600_000
        )
    );
    assert!(matches!(p.view, View::List { cursor: Cursor::Before, all: false, .. }));
    assert_eq!(line(&call("audit list --before aud_9 --actor key_1")), "GET /api/v1/audit?actor_id=key_1&before=aud_9");
    let err = parse("audit list --since later").unwrap().plan(NOW).unwrap_err();
    assert!(err.starts_with("--since: "), "{err}");
}

#[test]
fn alerts_page_backwards_with_filters() {
    let (_, p) = plan("alerts list --tenant acme --scope key:key_1 --status failed --since 1h --limit 5");
    assert_eq!(
        line(&p.call),
        format!("GET /api/v1/alerts?tenant_id=acme&scope=key%3Akey_1&status=failed&since={}&limit=5", NOW - 3_600_000)
    );
    assert!(matches!(p.view, View::List { cursor: Cursor::Before, all: false, .. }));
    assert_eq!(line(&call("alerts list --before alr_9")), "GET /api/v1/alerts?before=alr_9");
    assert!(parse("alerts list --until soon").unwrap().plan(NOW).is_err());
}

#[test]
fn connection_flags_go_anywhere_and_admin_token_still_works() {
    let (c, p) = plan("whoami --url http://gw:1 --token t1 --output json");
    assert_eq!((c.url.as_str(), c.token.as_str(), c.output), ("http://gw:1", "t1", Output::Json));
    assert_eq!(line(&p.call), "GET /api/v1/whoami");
    let (c, _) = plan("keys create --name x --url http://gw:2 --admin-token old");
    assert_eq!((c.url.as_str(), c.token.as_str(), c.output), ("http://gw:2", "old", Output::Table));
    let (c, _) = plan("tenants -o json --token t2 list");
    assert_eq!((c.token.as_str(), c.output), ("t2", Output::Json));
    assert!(parse("tenants list --output yaml").is_err());
}

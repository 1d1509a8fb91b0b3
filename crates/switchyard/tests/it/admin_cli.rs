//! The admin CLI (`tenants`, `keys`, `audit`, `whoami`, docs/admin-api.md)
//! as the real binary against a real gateway.

use super::{bin, chat_body, start};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;
use switchyard_testkit::{eventually, Harness, ADMIN_TOKEN};

/// `switchyard ARGS` with the gateway and token in the environment, as a
/// script would set them.
fn run(h: &Harness, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("SWITCHYARD_URL", &h.url)
        .env("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap()
}

/// Stdout of a command that must succeed.
fn ok(h: &Harness, args: &[&str]) -> String {
    let out = run(h, args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The JSON a command prints with `--output json`.
fn json(h: &Harness, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--output", "json"]);
    serde_json::from_str(&ok(h, &args)).unwrap()
}

/// Stderr of a command that must fail with exit status 1.
fn fails(h: &Harness, args: &[&str]) -> String {
    let out = run(h, args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "{args:?} printed {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

async fn chat_status(h: &Harness, secret: &str) -> u16 {
    h.post("/v1/chat/completions", secret).json(&chat_body("chat")).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn tenant_key_revoke_and_audit_through_the_cli() {
    let h = start();
    let out = ok(&h, &["tenants", "create", "--id", "acme", "--name", "Acme", "--plan", "professional"]);
    assert!(out.lines().any(|l| l.starts_with("id ") && l.ends_with(" acme")), "{out}");
    let tenant = json(&h, &["tenants", "get", "acme"]);
    assert_eq!((tenant["id"].as_str(), tenant["plan_id"].as_str()), (Some("acme"), Some("professional")));
    let table = ok(&h, &["tenants", "list", "--name", "Acme"]);
    let mut lines = table.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["ID", "NAME", "STATUS", "PLAN", "RPM", "TPM"]
    );
    assert!(lines.next().unwrap().starts_with("acme  "), "{table}");

    // The secret alone on stdout, the note on stderr.
    let out = run(&h, &["keys", "create", "--tenant", "acme", "--name", "ci", "--route", "chat"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim_end().to_string();
    assert!(secret.starts_with("sk-sy-") && !secret.contains(char::is_whitespace), "{secret:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown only once"));
    assert_eq!(chat_status(&h, &secret).await, 200);

    let list = json(&h, &["keys", "list", "--tenant", "acme"]);
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["prefix"].as_str(), Some(&secret[..10]));
    assert!(data[0].get("key").is_none(), "a list never shows the secret");
    let id = data[0]["id"].as_str().unwrap().to_string();

    let table = ok(&h, &["keys", "list", "--tenant", "acme"]);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 2, "{table}");
    let header: Vec<&str> = rows[0].split_whitespace().collect();
    assert_eq!(header, ["ID", "NAME", "PREFIX", "TENANT", "TEAM", "USER", "ROLES", "STATUS", "EXPIRES"]);
    let row: Vec<&str> = rows[1].split_whitespace().collect();
    assert_eq!(row, [id.as_str(), "ci", &secret[..10], "acme", "-", "-", "developer", "active", "-"]);
    // Aligned: each header starts where its column's cells start.
    assert_eq!(rows[0].find("PREFIX"), rows[1].find(&secret[..10]));

    let out = ok(&h, &["keys", "revoke", &id]);
    assert!(out.lines().any(|l| l.starts_with("status ") && l.ends_with(" revoked")), "{out}");
    let refused = eventually(Duration::from_secs(5), || async {
        let s = chat_status(&h, &secret).await;
        (s == 401).then_some(s)
    })
    .await;
    assert_eq!(refused, Some(401), "a revoked key is refused");

    let audit = json(&h, &["audit", "list", "--tenant", "acme", "--action", "key.revoke"]);
    let entries = audit["data"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["action"] == "key.revoke" && e["target"]["id"] == id.as_str()), "{audit}");
    let table = ok(&h, &["audit", "list", "--target-kind", "key", "--target-id", &id]);
    assert!(table.lines().any(|l| l.contains("key.revoke") && l.contains(&format!("key:{id}"))), "{table}");
}

#[tokio::test]
async fn keys_list_pages_and_all_follows_them() {
    let h = start();
    ok(&h, &["tenants", "create", "--id", "paged", "--name", "Paged"]);
    for name in ["k1", "k2", "k3"] {
        ok(&h, &["keys", "create", "--tenant", "paged", "--name", name]);
    }
    let out = run(&h, &["keys", "list", "--tenant", "paged", "--limit", "1"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "a header and one row");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--after "), "the next page is named");

    let all = json(&h, &["keys", "list", "--tenant", "paged", "--limit", "1", "--all"]);
    let names: Vec<&str> = all["data"].as_array().unwrap().iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(names, ["k1", "k2", "k3"], "ordered by id, which is by creation");
    assert_eq!(all["has_more"], false);
}

#[tokio::test]
async fn key_rotate_prints_a_new_secret() {
    let h = start();
    let old = ok(&h, &["keys", "create", "--name", "rot", "--route", "chat"]).trim_end().to_string();
    let id = json(&h, &["keys", "list", "--name", "rot"])["data"][0]["id"].as_str().unwrap().to_string();
    let out = run(&h, &["keys", "rotate", &id, "--overlap", "0s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = String::from_utf8(out.stdout).unwrap().trim_end().to_string();
    assert!(new.starts_with("sk-sy-") && new != old, "{new:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&id));
    let works = eventually(Duration::from_secs(5), || async { (chat_status(&h, &new).await == 200).then_some(()) });
    assert!(works.await.is_some(), "the new secret works");
    let refused = eventually(Duration::from_secs(5), || async { (chat_status(&h, &old).await == 401).then_some(()) });
    assert!(refused.await.is_some(), "the old one expires after a zero overlap");
}

#[tokio::test]
async fn errors_are_one_line_with_status_and_param() {
    let h = start();
    let err = fails(&h, &["tenants", "create", "--name", "no!good"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("switchyard: POST /api/v1/tenants: 400 "), "{err}");
    assert!(err.contains("(param: name)"), "{err}");

    let err = fails(&h, &["keys", "get", "key_nope"]);
    assert!(err.contains("GET /api/v1/keys/key_nope: 404"), "{err}");

    let err = fails(&h, &["whoami", "--token", "wrong"]);
    assert!(err.contains(": 401"), "{err}");

    let err = fails(&h, &["tenants", "update", "default"]);
    assert!(err.contains("nothing to change"), "{err}");
}

#[tokio::test]
async fn whoami_names_the_caller() {
    let h = start();
    assert_eq!(json(&h, &["whoami"])["kind"], "bootstrap");
    let secret = ok(&h, &["keys", "create", "--name", "me", "--role", "viewer"]).trim_end().to_string();
    let me = json(&h, &["whoami", "--token", &secret]);
    assert_eq!(me["kind"], "key");
    assert_eq!(me["tenant_id"], "default");
    assert_eq!(me["roles"], serde_json::json!(["viewer"]));
    // A viewer may read keys but not write them.
    ok(&h, &["keys", "list", "--token", &secret]);
    let err = fails(&h, &["keys", "create", "--name", "nope", "--token", &secret]);
    assert!(err.contains(": 403"), "{err}");
}

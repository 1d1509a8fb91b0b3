//! The admin API's contract (docs/admin-api.md) against the real binary:
//! who may do what (the role table), tenant isolation, bad input on every
//! endpoint, a key's life, the audit log and the gateway's own rate limits.
//!
//! Table-driven checks collect every mismatch and fail once with all of
//! them, so one run shows the whole picture.

use super::{bin, chat_body, start};
use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use switchyard_core::keys::hash_secret;
use switchyard_testkit::{base_config, eventually, Harness, ADMIN_TOKEN};

/// The bootstrap token (the platform admin).
const BOOT: &str = ADMIN_TOKEN;

/// docs/admin-api.md, "Roles", as written there: each permission and the
/// roles that hold it. The bootstrap token holds every one but `inference`
/// (it is not a key).
const ROLE_TABLE: &[(&str, &[&str])] = &[
    ("inference", &["admin", "developer"]),
    ("tenants.read", &["admin", "developer", "viewer", "billing"]),
    ("tenants.write", &[]),
    ("plans.read", &["admin", "viewer", "billing"]),
    ("plans.write", &[]),
    ("teams.read", &["admin", "developer", "viewer", "billing"]),
    ("teams.write", &["admin"]),
    ("users.read", &["admin", "viewer"]),
    ("users.write", &["admin"]),
    ("keys.read", &["admin", "viewer"]),
    ("keys.write", &["admin"]),
    ("audit.read", &["admin"]),
    ("usage.read", &["admin", "viewer", "billing"]),
];

const ROLES: [&str; 4] = ["admin", "developer", "viewer", "billing"];

fn role_has(role: &str, permission: &str) -> bool {
    let row = ROLE_TABLE.iter().find(|(p, _)| *p == permission);
    row.unwrap_or_else(|| panic!("no permission {permission} in the table")).1.contains(&role)
}

/// An admin call as the bootstrap token that must succeed; its answer.
async fn ok(h: &Harness, method: &str, path: &str, body: Value) -> Value {
    let (status, v) = h.admin(method, path, BOOT, body).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {v}");
    v
}

/// Creates an object of `kind` (`"teams"`, …) as the bootstrap token.
async fn create(h: &Harness, kind: &str, body: Value) -> Value {
    let (status, v) = h.admin("POST", &format!("/api/v1/{kind}"), BOOT, body.clone()).await;
    assert_eq!(status, 201, "create {kind} {body}: {v}");
    v
}

/// Creates a key; answers `(id, secret)`.
async fn key(h: &Harness, body: Value) -> (String, String) {
    let v = create(h, "keys", body).await;
    (v["id"].as_str().unwrap().to_string(), v["key"].as_str().unwrap().to_string())
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}")).to_string()
}

/// Every object of `kind` (every audit entry for `audit`) `token` may see.
async fn list(h: &Harness, kind: &str, token: &str) -> Vec<Value> {
    let (status, v) = h.admin("GET", &format!("/api/v1/{kind}?limit=500"), token, Value::Null).await;
    assert_eq!(status, 200, "list {kind}: {v}");
    v["data"].as_array().unwrap().clone()
}

/// A chat call on `route`: status, headers and body.
async fn chat_on(h: &Harness, key: &str, route: &str, body: Option<Value>) -> (u16, HeaderMap, Value) {
    let body = body.unwrap_or_else(|| chat_body(route));
    let mut req = h.http.post(format!("{}/v1/chat/completions", h.url)).json(&body);
    if !key.is_empty() {
        req = req.bearer_auth(key);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

async fn chat(h: &Harness, key: &str) -> (u16, Value) {
    let (status, _, body) = chat_on(h, key, "chat", None).await;
    (status, body)
}

/// Waits for a chat call to answer `want`: a change reaches the request
/// path within `admin.refresh_interval` (250 ms by default); allow 2 s.
/// Answers the last status and body.
async fn chat_becomes(h: &Harness, key: &str, want: u16) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = chat(h, key).await;
        if got.0 == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Fails with every collected mismatch, one per line.
fn assert_none(failures: &[String]) {
    assert!(failures.is_empty(), "{} mismatch(es):\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------- roles

/// One admin endpoint as a caller would hit it.
struct Call {
    what: String,
    method: &'static str,
    path: String,
    body: Value,
    /// The permission it needs (`None`: any valid credential).
    needs: Option<&'static str>,
    /// What it answers when allowed.
    ok: u16,
}

/// The objects one caller's calls act on (each caller has its own, so an
/// allowed delete does not take another caller's target away).
struct Targets {
    plan: String,
    tenant_read: String,
    tenant_write: String,
    team: String,
    user: String,
    key: String,
}

fn calls(caller: &str, t: &Targets) -> Vec<Call> {
    let c = |what: &str, method, path: String, body: Value, needs, ok| Call {
        what: what.to_string(),
        method,
        path,
        body,
        needs,
        ok,
    };
    let meta = json!({"metadata": {"by": caller}});
    let mut out = vec![
        c("whoami", "GET", "/api/v1/whoami".into(), Value::Null, None, 200),
        c("plans list", "GET", "/api/v1/plans".into(), Value::Null, Some("plans.read"), 200),
        c("plans get", "GET", format!("/api/v1/plans/{}", t.plan), Value::Null, Some("plans.read"), 200),
        c(
            "plans create",
            "POST",
            "/api/v1/plans".into(),
            json!({"name": format!("plan {caller}")}),
            Some("plans.write"),
            201,
        ),
        c("plans update", "PATCH", format!("/api/v1/plans/{}", t.plan), meta.clone(), Some("plans.write"), 200),
        c("plans delete", "DELETE", format!("/api/v1/plans/{}", t.plan), Value::Null, Some("plans.write"), 204),
        c("tenants list", "GET", "/api/v1/tenants".into(), Value::Null, Some("tenants.read"), 200),
        c("tenants get", "GET", format!("/api/v1/tenants/{}", t.tenant_read), Value::Null, Some("tenants.read"), 200),
        c(
            "tenants create",
            "POST",
            "/api/v1/tenants".into(),
            json!({"id": format!("new-{caller}"), "name": format!("tenant {caller}")}),
            Some("tenants.write"),
            201,
        ),
        c(
            "tenants update",
            "PATCH",
            format!("/api/v1/tenants/{}", t.tenant_write),
            meta.clone(),
            Some("tenants.write"),
            200,
        ),
        c(
            "tenants delete",
            "DELETE",
            format!("/api/v1/tenants/{}", t.tenant_write),
            Value::Null,
            Some("tenants.write"),
            204,
        ),
    ];
    for (kind, target) in [("teams", &t.team), ("users", &t.user), ("keys", &t.key)] {
        let (read, write) = match kind {
            "teams" => ("teams.read", "teams.write"),
            "users" => ("users.read", "users.write"),
            _ => ("keys.read", "keys.write"),
        };
        let body = json!({"tenant_id": "acme", "name": format!("new {kind} {caller}")});
        let path = format!("/api/v1/{kind}/{target}");
        out.push(c(&format!("{kind} list"), "GET", format!("/api/v1/{kind}"), Value::Null, Some(read), 200));
        out.push(c(&format!("{kind} get"), "GET", path.clone(), Value::Null, Some(read), 200));
        out.push(c(&format!("{kind} create"), "POST", format!("/api/v1/{kind}"), body, Some(write), 201));
        out.push(c(&format!("{kind} update"), "PATCH", path.clone(), meta.clone(), Some(write), 200));
        if kind == "keys" {
            for (verb, body, status) in [
                ("disable", Value::Null, 200),
                ("enable", Value::Null, 200),
                ("rotate", json!({"overlap_seconds": 60}), 201),
                ("revoke", Value::Null, 200),
            ] {
                out.push(c(&format!("keys {verb}"), "POST", format!("{path}/{verb}"), body, Some(write), status));
            }
        }
        out.push(c(&format!("{kind} delete"), "DELETE", path, Value::Null, Some(write), 204));
    }
    out.push(c("audit list", "GET", "/api/v1/audit".into(), Value::Null, Some("audit.read"), 200));
    out
}

/// The status docs/admin-api.md promises `caller` for `call`.
fn expected(caller: &str, call: &Call) -> u16 {
    match (caller, call.needs) {
        ("invalid" | "missing", _) => 401,
        ("bootstrap", _) | (_, None) => call.ok,
        (role, Some(p)) if role_has(role, p) => call.ok,
        _ => 403,
    }
}

#[tokio::test]
async fn every_role_on_every_endpoint_gets_what_the_role_table_says() {
    let h = start();
    create(&h, "tenants", json!({"id": "acme", "name": "Acme"})).await;
    create(&h, "plans", json!({"id": "spare-plan", "name": "spare plan"})).await;
    create(&h, "tenants", json!({"id": "spare", "name": "spare"})).await;

    let mut tokens = Vec::new();
    for role in ROLES {
        let (key_id, secret) =
            key(&h, json!({"tenant_id": "acme", "name": format!("as {role}"), "roles": [role]})).await;
        tokens.push((role, secret, Some(key_id)));
    }
    tokens.push(("bootstrap", BOOT.to_string(), None));
    tokens.push(("invalid", "sk-sy-this-is-not-a-key-0000000000".to_string(), None));
    tokens.push(("missing", String::new(), None));

    let mut failures = Vec::new();
    // What the audit log must hold afterwards: an `access.denied` per 403
    // (by key) and an `auth.denied` per 401 of an unknown credential.
    let mut forbidden = std::collections::HashMap::<String, usize>::new();
    let mut unauthenticated = 0;
    for (caller, token, key_id) in &tokens {
        let team = id(&create(&h, "teams", json!({"tenant_id": "acme", "name": format!("team {caller}")})).await);
        let user = id(&create(&h, "users", json!({"tenant_id": "acme", "name": format!("user {caller}")})).await);
        let (key_target, _) = key(&h, json!({"tenant_id": "acme", "name": format!("target {caller}")})).await;
        let platform = *caller == "bootstrap";
        let targets = Targets {
            plan: if platform { "spare-plan" } else { "basic" }.into(),
            tenant_read: "acme".into(),
            tenant_write: if platform { "spare" } else { "acme" }.into(),
            team,
            user,
            key: key_target,
        };
        for call in calls(caller, &targets) {
            let want = expected(caller, &call);
            let (status, body) = h.admin(call.method, &call.path, token, call.body.clone()).await;
            match (status, key_id) {
                (403, Some(k)) => *forbidden.entry(k.clone()).or_default() += 1,
                (401, _) => unauthenticated += 1,
                _ => {}
            }
            if status != want {
                failures.push(format!(
                    "{caller}: {} ({} {}): want {want}, got {status} {body}",
                    call.what, call.method, call.path
                ));
            } else if status == 403 && body["error"]["type"] != "permission_error" {
                failures.push(format!("{caller}: {}: 403 without type permission_error: {body}", call.what));
            } else if status == 401 && !body["error"]["message"].is_string() {
                failures.push(format!("{caller}: {}: 401 without an error body: {body}", call.what));
            }
            if call.what == "whoami" && status == 200 {
                let want = match key_id {
                    None => json!({"kind": "bootstrap"}),
                    Some(k) => {
                        let perms: Vec<&str> =
                            ROLE_TABLE.iter().filter(|(p, _)| role_has(caller, p)).map(|(p, _)| *p).collect();
                        json!({"kind": "key", "key_id": k, "tenant_id": "acme", "roles": [caller], "permissions": perms})
                    }
                };
                if body != want {
                    failures.push(format!("{caller}: whoami: want {want}, got {body}"));
                }
            }
        }
        // `/v1` needs `inference`: a key's role decides; the bootstrap
        // token is not a key.
        let want = match *caller {
            "admin" | "developer" => 200,
            "viewer" | "billing" => 403,
            _ => 401,
        };
        let (status, body) = chat(&h, token).await;
        match (status, key_id) {
            (403, Some(k)) => *forbidden.entry(k.clone()).or_default() += 1,
            (401, _) => unauthenticated += 1,
            _ => {}
        }
        if status != want {
            failures.push(format!("{caller}: POST /v1/chat/completions: want {want}, got {status} {body}"));
        } else if status == 403 && body["error"]["type"] != "permission_error" {
            failures.push(format!("{caller}: chat: 403 without type permission_error: {body}"));
        }
    }

    // `x-api-key` is as good as `Authorization: Bearer`.
    let (_, admin, _) = &tokens[0];
    let r = h.http.get(format!("{}/api/v1/whoami", h.url)).header("x-api-key", admin).send().await.unwrap();
    if r.status() != 200 {
        failures.push(format!("whoami with x-api-key: want 200, got {}", r.status()));
    }

    // Every refusal is audited (through a batched writer: wait for it).
    let mut want: Vec<(String, usize)> =
        forbidden.iter().map(|(k, n)| (format!("action=access.denied&actor_id={k}"), *n)).collect();
    want.push(("action=auth.denied".into(), unauthenticated));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut got = Vec::new();
        for (query, _) in &want {
            let (_, v) = h.admin("GET", &format!("/api/v1/audit?{query}&limit=500"), BOOT, Value::Null).await;
            got.push(v["data"].as_array().map_or(0, Vec::len));
        }
        let settled = want.iter().zip(&got).all(|((_, n), g)| n == g);
        if settled || Instant::now() > deadline {
            for ((query, n), g) in want.iter().zip(&got).filter(|((_, n), g)| n != *g) {
                failures.push(format!("audit {query}: want {n} entries (one per refusal), got {g}"));
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_none(&failures);
}

// ------------------------------------------------------------ isolation

/// One tenant's objects.
struct Tenant {
    admin: String,
    admin_id: String,
    team: String,
    user: String,
    key: String,
    key_secret: String,
}

async fn tenant(h: &Harness, t: &str) -> Tenant {
    create(h, "tenants", json!({"id": t, "name": t})).await;
    let (admin_id, admin) = key(h, json!({"tenant_id": t, "name": "admin", "roles": ["admin"]})).await;
    // The same names in both tenants: names are unique within a tenant.
    let team = id(&create(h, "teams", json!({"tenant_id": t, "name": "team"})).await);
    let user = id(&create(h, "users", json!({"tenant_id": t, "name": "user", "team_id": team})).await);
    let (key, key_secret) = key(h, json!({"tenant_id": t, "name": "key", "team_id": team, "user_id": user})).await;
    Tenant { admin, admin_id, team, user, key, key_secret }
}

#[tokio::test]
async fn a_tenant_admin_sees_and_touches_only_its_own_tenant() {
    let h = start();
    let acme = tenant(&h, "acme").await;
    let globex = tenant(&h, "globex").await;
    let (globex_viewer_id, globex_viewer) =
        key(&h, json!({"tenant_id": "globex", "name": "viewer", "roles": ["viewer"]})).await;
    let a = acme.admin.as_str();

    for kind in ["teams", "users", "keys"] {
        let seen = list(&h, kind, a).await;
        assert!(seen.iter().all(|o| o["tenant_id"] == "acme"), "{kind}: {seen:?}");
        let ids: Vec<String> = seen.iter().map(id).collect();
        let own = match kind {
            "teams" => &acme.team,
            "users" => &acme.user,
            _ => &acme.key,
        };
        assert!(ids.contains(own), "{kind} lacks acme's own {own}: {ids:?}");
    }
    let tenants: Vec<String> = list(&h, "tenants", a).await.iter().map(id).collect();
    assert_eq!(tenants, ["acme"]);
    assert_eq!(h.admin("GET", "/api/v1/tenants/globex", a, Value::Null).await.0, 404);

    // Another tenant's objects do not exist for acme's admin, whatever it tries.
    let objects = [("teams", &globex.team), ("users", &globex.user), ("keys", &globex.key)];
    let mut before = Vec::new();
    for (kind, oid) in objects {
        before.push(ok(&h, "GET", &format!("/api/v1/{kind}/{oid}"), Value::Null).await);
    }
    let mut failures = Vec::new();
    for (kind, oid) in objects {
        let path = format!("/api/v1/{kind}/{oid}");
        let mut tries = vec![
            ("GET", path.clone(), Value::Null),
            ("PATCH", path.clone(), json!({"name": "stolen"})),
            ("DELETE", path.clone(), Value::Null),
        ];
        if kind == "keys" {
            for verb in ["disable", "enable", "revoke"] {
                tries.push(("POST", format!("{path}/{verb}"), Value::Null));
            }
            tries.push(("POST", format!("{path}/rotate"), json!({"overlap_seconds": 0})));
        }
        for (method, path, body) in tries {
            let (status, v) = h.admin(method, &path, a, body).await;
            if status != 404 {
                failures.push(format!("acme admin {method} {path}: want 404, got {status} {v}"));
            }
        }
    }
    for ((kind, oid), was) in objects.iter().zip(&before) {
        let now = ok(&h, "GET", &format!("/api/v1/{kind}/{oid}"), Value::Null).await;
        if &now != was {
            failures.push(format!("globex {kind} {oid} changed: {was} -> {now}"));
        }
    }
    assert_none(&failures);
    assert_eq!(chat(&h, &globex.key_secret).await.0, 200, "globex's key still works");

    // Creating in another tenant, or pointing at another tenant's objects.
    let all_before = (list(&h, "teams", BOOT).await, list(&h, "users", BOOT).await, list(&h, "keys", BOOT).await);
    let seq_before = h.directory_seq().await;
    let refused = [
        ("teams", json!({"tenant_id": "globex", "name": "intruder"}), "tenant_id"),
        ("users", json!({"tenant_id": "globex", "name": "intruder"}), "tenant_id"),
        ("keys", json!({"tenant_id": "globex", "name": "intruder"}), "tenant_id"),
        ("keys", json!({"name": "intruder", "team_id": globex.team}), "team_id"),
        ("keys", json!({"name": "intruder", "user_id": globex.user}), "user_id"),
        ("users", json!({"name": "intruder", "team_id": globex.team}), "team_id"),
    ];
    for (kind, body, param) in refused {
        let (status, v) = h.admin("POST", &format!("/api/v1/{kind}"), a, body.clone()).await;
        if (status, v["error"]["param"].as_str()) != (400, Some(param)) {
            failures.push(format!("acme admin POST {kind} {body}: want 400 param {param}, got {status} {v}"));
        }
    }
    let (status, v) = h.admin("PATCH", &format!("/api/v1/keys/{}", acme.key), a, json!({"team_id": globex.team})).await;
    if (status, v["error"]["param"].as_str()) != (400, Some("team_id")) {
        failures.push(format!("acme admin PATCH its key into globex's team: want 400 param team_id, got {status} {v}"));
    }
    for kind in ["teams", "users", "keys"] {
        let (status, v) = h.admin("GET", &format!("/api/v1/{kind}?tenant_id=globex"), a, Value::Null).await;
        if (status, &v["data"]) != (200, &json!([])) {
            failures.push(format!("acme admin GET {kind}?tenant_id=globex: want 200 and no data, got {status} {v}"));
        }
    }
    let all_after = (list(&h, "teams", BOOT).await, list(&h, "users", BOOT).await, list(&h, "keys", BOOT).await);
    if all_after != all_before || h.directory_seq().await != seq_before {
        failures.push("a refused create or patch changed the directory".into());
    }
    assert_none(&failures);

    // Audit: only acme's entries, even when asked for globex's.
    let (status, v) = h.admin("GET", "/api/v1/audit?tenant_id=globex", a, Value::Null).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"], json!([]), "acme's admin reads no globex entry");

    // A chat call by globex's key (allowed) and one refused (a viewer):
    // globex's audit has the refusal, acme's has nothing of globex.
    assert_eq!(chat(&h, &globex.key_secret).await.0, 200);
    assert_eq!(chat(&h, &globex_viewer).await.0, 403);
    let path = format!("/api/v1/audit?action=access.denied&actor_id={globex_viewer_id}");
    let seen = eventually(Duration::from_secs(5), || async {
        let v = ok(&h, "GET", &path, Value::Null).await;
        v["data"].as_array().filter(|d| !d.is_empty()).cloned()
    })
    .await;
    let seen = seen.expect("globex viewer's refusal is audited");
    assert_eq!(seen[0]["tenant_id"], "globex");
    let acme_audit = list(&h, "audit", a).await;
    assert!(!acme_audit.is_empty(), "acme's admin sees acme's entries");
    for e in &acme_audit {
        assert_eq!(e["tenant_id"], "acme", "{e}");
        assert_ne!(e["actor"]["tenant_id"], "globex", "{e}");
    }
    let path = format!("/api/v1/audit?actor_id={globex_viewer_id}");
    assert_eq!(h.admin("GET", &path, a, Value::Null).await.1["data"], json!([]));

    // docs: `access.denied` records "another tenant's object" too.
    let path = format!("/api/v1/audit?action=access.denied&actor_id={}", acme.admin_id);
    let denied = eventually(Duration::from_secs(3), || async {
        ok(&h, "GET", &path, Value::Null).await["data"].as_array().filter(|d| !d.is_empty()).cloned()
    })
    .await;
    assert!(denied.is_some(), "acme admin's tries on globex's objects are audited as access.denied");
}

// ------------------------------------------------------------ bad input

/// One refused request: its status, and for a 400 the field it must name
/// (`None`: the body as a whole is wrong, there is no field to name).
struct Bad {
    method: &'static str,
    path: String,
    body: Option<String>,
    status: u16,
    param: Option<&'static str>,
}

fn bad(method: &'static str, path: &str, body: Value, param: &'static str) -> Bad {
    Bad { method, path: path.to_string(), body: Some(body.to_string()), status: 400, param: Some(param) }
}

fn bad_raw(method: &'static str, path: &str, body: Option<&str>, param: Option<&'static str>) -> Bad {
    Bad { method, path: path.to_string(), body: body.map(str::to_string), status: 400, param }
}

/// A change that conflicts with what uses the object, or with its state.
fn conflict(method: &'static str, path: &str) -> Bad {
    Bad { method, path: path.to_string(), body: None, status: 409, param: None }
}

/// Everything the admin API can show, and the store's change sequence.
async fn everything(h: &Harness) -> Value {
    let mut all = Map::new();
    for kind in ["plans", "tenants", "teams", "users", "keys", "audit"] {
        all.insert(kind.into(), Value::Array(list(h, kind, BOOT).await));
    }
    all.insert("seq".into(), h.directory_seq().await.into());
    Value::Object(all)
}

/// Merges `extra` into the JSON object `base`.
fn with(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// The fixtures' ids: the team (holding the user), another team, the
/// user (holding the key), the key, a revoked key.
fn bad_cases(team: &str, other_team: &str, user: &str, key: &str, revoked: &str) -> Vec<Bad> {
    let long = "x".repeat(101);
    let big = 1_000_000_000_001u64;
    let meta33: Map<String, Value> = (0..33).map(|i| (format!("k{i}"), json!(i))).collect();
    let meta_big = json!({"k": "v".repeat(4100)});
    let routes257 = vec!["chat"; 257];
    let mut out = Vec::new();

    // Each kind's create: a valid body plus one wrong thing.
    let creates = [
        ("plans", json!({"name": "p"})),
        ("tenants", json!({"name": "t"})),
        ("teams", json!({"tenant_id": "acme", "name": "t"})),
        ("users", json!({"tenant_id": "acme", "name": "u"})),
        ("keys", json!({"tenant_id": "acme", "name": "k"})),
    ];
    for (kind, valid) in &creates {
        let path = format!("/api/v1/{kind}");
        let b = |extra: Value, param| bad("POST", &path, with(valid, extra), param);
        out.extend([
            b(json!({"name": 5}), "name"),
            b(json!({"name": ""}), "name"),
            b(json!({"name": "semi;colon"}), "name"),
            b(json!({"name": long}), "name"),
            b(json!({"colour": "red"}), "colour"),
            b(json!({"created_at": 5}), "created_at"),
            b(json!({"metadata": meta33}), "metadata"),
            b(json!({"metadata": meta_big}), "metadata"),
            b(json!({"metadata": []}), "metadata"),
        ]);
        if *kind != "users" {
            out.extend([
                b(json!({"limits": {"rpm": "ten"}}), "limits.rpm"),
                b(json!({"limits": {"rpm": -1}}), "limits.rpm"),
                b(json!({"limits": {"rpm": 1.5}}), "limits.rpm"),
                b(json!({"limits": {"rpm": 1, "rpx": 1}}), "limits.rpx"),
                b(json!({"limits": {"tpm": big}}), "limits.tpm"),
                b(json!({"limits": {"max_concurrent": big}}), "limits.max_concurrent"),
                b(json!({"allowed_routes": routes257}), "allowed_routes"),
                b(json!({"allowed_routes": ["chat", "nope"]}), "allowed_routes[1]"),
                b(json!({"allowed_routes": "chat"}), "allowed_routes"),
            ]);
        }
        out.extend([
            bad_raw("POST", &path, Some(r#"{"name": "#), None),
            bad_raw("POST", &path, Some("[1, 2]"), None),
            bad_raw("POST", &path, Some("\"text\""), None),
            bad_raw("POST", &path, None, None),
        ]);
    }
    let p = "/api/v1/plans";
    out.extend([
        bad("POST", p, json!({"name": "fixture"}), "name"),
        bad("POST", p, json!({"id": "basic", "name": "p"}), "id"),
        bad("POST", p, json!({"id": "Bad!", "name": "p"}), "id"),
        bad("POST", p, json!({"name": "p", "key_limits": {"rpm": big}}), "key_limits.rpm"),
        bad("POST", p, json!({"name": "p", "key_limits": {"burst": 1}}), "key_limits.burst"),
    ]);
    let p = "/api/v1/tenants";
    out.extend([
        bad("POST", p, json!({"id": "acme", "name": "Acme 2"}), "id"),
        bad("POST", p, json!({"name": "Acme"}), "name"),
        bad("POST", p, json!({"name": "t", "status": "gone"}), "status"),
        bad("POST", p, json!({"name": "t", "plan_id": "nope"}), "plan_id"),
        bad("POST", p, json!({"name": "t", "plan_id": 5}), "plan_id"),
        bad("POST", p, json!({"name": "t", "status": "trial", "trial_ends_at": "soon"}), "trial_ends_at"),
    ]);
    let p = "/api/v1/teams";
    out.extend([
        bad("POST", p, json!({"tenant_id": "acme", "name": "fixture team"}), "name"),
        bad("POST", p, json!({"tenant_id": "nope", "name": "t"}), "tenant_id"),
        bad("POST", p, json!({"tenant_id": 5, "name": "t"}), "tenant_id"),
    ]);
    let p = "/api/v1/users";
    let email255 = format!("{}@acme.test", "u".repeat(245));
    out.extend([
        bad("POST", p, json!({"tenant_id": "acme", "name": "u", "team_id": "team_nope"}), "team_id"),
        bad("POST", p, json!({"tenant_id": "acme", "name": "u", "email": "no-at"}), "email"),
        bad("POST", p, json!({"tenant_id": "acme", "name": "u", "email": email255}), "email"),
        bad("POST", p, json!({"tenant_id": "acme", "name": "u", "email": "fx@acme.test"}), "email"),
        bad("POST", p, json!({"tenant_id": "nope", "name": "u"}), "tenant_id"),
    ]);
    let p = "/api/v1/keys";
    let k = |extra: Value, param| bad("POST", p, with(&json!({"tenant_id": "acme", "name": "k"}), extra), param);
    out.extend([
        k(json!({"roles": ["wizard"]}), "roles[0]"),
        k(json!({"roles": ["admin", "wizard"]}), "roles[1]"),
        k(json!({"roles": "admin"}), "roles"),
        k(json!({"team_id": "team_nope"}), "team_id"),
        k(json!({"user_id": "usr_nope"}), "user_id"),
        k(json!({"user_id": user, "team_id": other_team}), "team_id"),
        k(json!({"tenant_id": "nope"}), "tenant_id"),
        k(json!({"name": "fixture key"}), "name"),
        k(json!({"expires_at": "tomorrow"}), "expires_at"),
        k(json!({"status": "active"}), "status"),
        k(json!({"key": "sk-sy-mine"}), "key"),
        k(json!({"prefix": "sk-sy-mine"}), "prefix"),
    ]);

    // Each kind's PATCH.
    let plan = "/api/v1/plans/fixture-plan";
    out.extend([
        bad("PATCH", plan, json!({"name": 5}), "name"),
        bad("PATCH", plan, json!({"name": null}), "name"),
        bad("PATCH", plan, json!({"name": "basic"}), "name"),
        bad("PATCH", plan, json!({"limits": {"rpm": "ten"}}), "limits.rpm"),
        bad("PATCH", plan, json!({"limits": {"rpx": 1}}), "limits.rpx"),
        bad("PATCH", plan, json!({"key_limits": {"rpm": big}}), "key_limits.rpm"),
        bad("PATCH", plan, json!({"allowed_routes": ["nope"]}), "allowed_routes[0]"),
        bad("PATCH", plan, json!({"id": "other"}), "id"),
        bad("PATCH", plan, json!({"colour": 1}), "colour"),
    ]);
    let tenant = "/api/v1/tenants/acme";
    out.extend([
        bad("PATCH", tenant, json!({"plan_id": "nope"}), "plan_id"),
        bad("PATCH", tenant, json!({"status": "gone"}), "status"),
        bad("PATCH", tenant, json!({"limits": {"rpm": "ten"}}), "limits.rpm"),
        bad("PATCH", tenant, json!({"limits": {"max_concurrent": big}}), "limits.max_concurrent"),
        bad("PATCH", tenant, json!({"id": "acme2"}), "id"),
        bad("PATCH", tenant, json!({"name": "default"}), "name"),
        bad("PATCH", tenant, json!({"metadata": meta_big}), "metadata"),
        bad("PATCH", tenant, json!({"allowed_routes": routes257}), "allowed_routes"),
    ]);
    let team = format!("/api/v1/teams/{team}");
    // The fixture team holds 20 metadata entries: 20 more make 40 > 32.
    let meta20: Map<String, Value> = (100..120).map(|i| (format!("k{i}"), json!(i))).collect();
    out.extend([
        bad("PATCH", &team, json!({"name": long}), "name"),
        bad("PATCH", &team, json!({"name": "other team"}), "name"),
        bad("PATCH", &team, json!({"limits": {"tpm": true}}), "limits.tpm"),
        bad("PATCH", &team, json!({"limits": {"rpx": 1}}), "limits.rpx"),
        bad("PATCH", &team, json!({"limits": {"rpm": big}}), "limits.rpm"),
        bad("PATCH", &team, json!({"tenant_id": "default"}), "tenant_id"),
        bad("PATCH", &team, json!({"allowed_routes": ["nope"]}), "allowed_routes[0]"),
        bad("PATCH", &team, json!({"metadata": meta20}), "metadata"),
    ]);
    let user = format!("/api/v1/users/{user}");
    out.extend([
        bad("PATCH", &user, json!({"team_id": "team_nope"}), "team_id"),
        bad("PATCH", &user, json!({"email": "other@acme.test"}), "email"),
        bad("PATCH", &user, json!({"email": 5}), "email"),
        bad("PATCH", &user, json!({"tenant_id": "default"}), "tenant_id"),
        bad("PATCH", &user, json!({"name": null}), "name"),
        bad("PATCH", &user, json!({"metadata": meta33}), "metadata"),
    ]);
    let key_path = format!("/api/v1/keys/{key}");
    out.extend([
        bad("PATCH", &key_path, json!({"roles": ["wizard"]}), "roles[0]"),
        bad("PATCH", &key_path, json!({"name": "other key"}), "name"),
        bad("PATCH", &key_path, json!({"limits": {"tpm": big}}), "limits.tpm"),
        bad("PATCH", &key_path, json!({"limits": {"rpx": 1}}), "limits.rpx"),
        bad("PATCH", &key_path, json!({"allowed_routes": ["chat", "nope"]}), "allowed_routes[1]"),
        bad("PATCH", &key_path, json!({"status": "active"}), "status"),
        bad("PATCH", &key_path, json!({"tenant_id": "default"}), "tenant_id"),
        bad("PATCH", &key_path, json!({"user_id": "usr_nope"}), "user_id"),
        bad("PATCH", &key_path, json!({"metadata": meta_big}), "metadata"),
    ]);
    for path in [plan.to_string(), tenant.to_string(), team.clone(), user.clone(), key_path.clone()] {
        out.extend([
            bad_raw("PATCH", &path, Some(r#"{"name": "#), None),
            bad_raw("PATCH", &path, Some("[1, 2]"), None),
        ]);
    }

    // Rotation's one setting.
    let rotate = format!("{key_path}/rotate");
    out.extend([
        bad("POST", &rotate, json!({"overlap_seconds": 2_592_001}), "overlap_seconds"),
        bad("POST", &rotate, json!({"overlap_seconds": -1}), "overlap_seconds"),
        bad("POST", &rotate, json!({"overlap_seconds": "1h"}), "overlap_seconds"),
        bad("POST", &rotate, json!({"overlap_seconds": 1, "colour": 1}), "colour"),
        bad_raw("POST", &rotate, Some("{"), None),
        bad_raw("POST", &rotate, Some("[]"), None),
    ]);

    // In use, or revoked (docs: 409).
    out.extend([
        conflict("DELETE", "/api/v1/plans/fixture-plan"),
        conflict("DELETE", "/api/v1/tenants/acme"),
        conflict("DELETE", &team),
        conflict("DELETE", &user),
        conflict("POST", &format!("/api/v1/keys/{revoked}/enable")),
    ]);

    // Lists: unknown parameters and bad pages.
    for kind in ["plans", "tenants", "teams", "users", "keys", "audit"] {
        let get = |q: &str, param| bad_raw("GET", &format!("/api/v1/{kind}?{q}"), None, Some(param));
        out.extend([
            get("colour=red", "colour"),
            get("limit=0", "limit"),
            get("limit=501", "limit"),
            get("limit=ten", "limit"),
        ]);
    }
    out.extend([
        bad_raw("GET", "/api/v1/plans?tenant_id=acme", None, Some("tenant_id")),
        bad_raw("GET", "/api/v1/tenants?team_id=x", None, Some("team_id")),
        bad_raw("GET", "/api/v1/audit?after=aud_x", None, Some("after")),
        bad_raw("GET", "/api/v1/audit?since=yesterday", None, Some("since")),
        bad_raw("GET", "/api/v1/keys?before=key_x", None, Some("before")),
    ]);
    out
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_conflicts_a_409_and_neither_changes_anything() {
    let h = start();
    create(&h, "plans", json!({"id": "fixture-plan", "name": "fixture"})).await;
    create(&h, "tenants", json!({"id": "acme", "name": "Acme", "plan_id": "fixture-plan"})).await;
    let meta20: Map<String, Value> = (0..20).map(|i| (format!("k{i}"), json!(i))).collect();
    let team = id(&create(&h, "teams", json!({"tenant_id": "acme", "name": "fixture team", "metadata": meta20})).await);
    let other_team = id(&create(&h, "teams", json!({"tenant_id": "acme", "name": "other team"})).await);
    let user = json!({"tenant_id": "acme", "name": "fixture user", "email": "fx@acme.test", "team_id": team});
    let user = id(&create(&h, "users", user).await);
    create(&h, "users", json!({"tenant_id": "acme", "name": "other user", "email": "other@acme.test"})).await;
    let (key_id, _) = key(&h, json!({"tenant_id": "acme", "name": "fixture key", "user_id": user})).await;
    key(&h, json!({"tenant_id": "acme", "name": "other key"})).await;
    let (revoked, _) = key(&h, json!({"tenant_id": "acme", "name": "revoked key"})).await;
    ok(&h, "POST", &format!("/api/v1/keys/{revoked}/revoke"), Value::Null).await;

    let mut state = everything(&h).await;
    let mut failures = Vec::new();
    for case in bad_cases(&team, &other_team, &user, &key_id, &revoked) {
        let (status, v) = h.admin_raw(case.method, &case.path, BOOT, case.body.as_deref()).await;
        let what = format!("{} {} {}", case.method, case.path, case.body.as_deref().unwrap_or("(no body)"));
        let what: String = what.chars().take(200).collect();
        let e = &v["error"];
        if status != case.status {
            failures.push(format!("{what}: want {}, got {status} {v}", case.status));
        } else if e["type"] != "invalid_request_error" || e["message"].as_str().is_none_or(|m| m.is_empty()) {
            failures.push(format!("{what}: not an invalid_request_error with a message: {v}"));
        } else if let Some(param) = case.param {
            if e["param"] != param {
                failures.push(format!("{what}: want param {param:?}, got {}", e["param"]));
            }
        }
        let now = everything(&h).await;
        if now != state {
            failures.push(format!("{what}: changed the directory or the audit log"));
            state = now;
        }
    }
    assert_none(&failures);
}

// ------------------------------------------------------------ lifecycle

#[tokio::test]
async fn a_key_lives_from_creation_to_deletion_and_follows_its_tenant() {
    let h = start();
    create(&h, "tenants", json!({"id": "acme", "name": "Acme"})).await;
    let settings = json!({"tenant_id": "acme", "name": "ci", "roles": ["developer", "viewer"],
        "allowed_routes": ["chat"], "limits": {"rpm": 1000}, "metadata": {"ci": true}});
    let created = create(&h, "keys", settings).await;
    let secret = created["key"].as_str().unwrap().to_string();
    let key_id = id(&created);
    assert!(secret.starts_with("sk-sy-"), "{created}");
    assert_eq!(created["prefix"].as_str(), Some(&secret[..10]));
    assert!(created.get("hash").is_none(), "{created}");

    let got = ok(&h, "GET", &format!("/api/v1/keys/{key_id}"), Value::Null).await;
    let listed = list(&h, "keys", BOOT).await;
    let listed = listed.iter().find(|k| k["id"] == key_id.as_str()).unwrap();
    for shown in [&got, listed] {
        assert_eq!(shown["prefix"].as_str(), Some(&secret[..10]));
        assert!(shown.get("key").is_none() && shown.get("hash").is_none(), "shown once only: {shown}");
        assert!(!shown.to_string().contains(&secret[10..]), "{shown}");
    }
    assert_eq!(chat(&h, &secret).await.0, 200);

    let path = format!("/api/v1/keys/{key_id}");
    let v = ok(&h, "POST", &format!("{path}/disable"), Value::Null).await;
    assert_eq!(v["status"], "disabled");
    let (status, body) = chat_becomes(&h, &secret, 401).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("disabled"), "{body}");
    let v = ok(&h, "POST", &format!("{path}/enable"), Value::Null).await;
    assert_eq!(v["status"], "active");
    assert_eq!(chat_becomes(&h, &secret, 200).await.0, 200);

    // Rotation: both secrets work during the overlap, then only the new one.
    let (status, rotated) = h.admin("POST", &format!("{path}/rotate"), BOOT, json!({"overlap_seconds": 2})).await;
    let rotated_at = Instant::now();
    assert_eq!(status, 201, "{rotated}");
    let new_secret = rotated["key"].as_str().unwrap().to_string();
    let new_id = id(&rotated);
    assert!(new_secret.starts_with("sk-sy-") && new_secret != secret);
    assert_ne!(new_id, key_id);
    assert!(rotated["name"].as_str().unwrap().starts_with("ci rotated-"), "{rotated}");
    let old = ok(&h, "GET", &path, Value::Null).await;
    assert_eq!(old["replaced_by"].as_str(), Some(new_id.as_str()), "{old}");
    for field in ["tenant_id", "team_id", "user_id", "roles", "allowed_routes", "limits", "metadata"] {
        assert_eq!(rotated[field], created[field], "the new key has the old one's {field}");
    }
    assert_eq!(chat_becomes(&h, &new_secret, 200).await.0, 200);
    assert_eq!(chat(&h, &secret).await.0, 200, "the old secret works during the overlap");
    tokio::time::sleep_until((rotated_at + Duration::from_millis(2500)).into()).await;
    let (status, body) = chat(&h, &secret).await;
    assert_eq!(status, 401, "the old secret expired with the overlap: {body}");
    assert_eq!(chat(&h, &new_secret).await.0, 200);

    let new_path = format!("/api/v1/keys/{new_id}");
    let v = ok(&h, "POST", &format!("{new_path}/revoke"), Value::Null).await;
    assert_eq!(v["status"], "revoked");
    let (status, body) = chat_becomes(&h, &new_secret, 401).await;
    assert_eq!(status, 401, "{body}");
    let (status, v) = h.admin("POST", &format!("{new_path}/enable"), BOOT, Value::Null).await;
    assert_eq!(status, 409, "a revoked key stays revoked: {v}");
    let (status, v) = h.admin("DELETE", &new_path, BOOT, Value::Null).await;
    assert_eq!((status, v), (204, Value::Null));
    assert_eq!(h.admin("GET", &new_path, BOOT, Value::Null).await.0, 404);
    assert_eq!(chat(&h, &new_secret).await.0, 401);
    // A route the key may not use (it is told the route does not exist).
    let (narrow_id, narrow) = key(&h, json!({"tenant_id": "acme", "name": "narrow", "allowed_routes": ["chat"]})).await;
    assert_eq!(chat_on(&h, &narrow, "failover", None).await.0, 404);

    // A suspended tenant's keys are refused, on /v1 and on the admin API.
    let (live_id, live) = key(&h, json!({"tenant_id": "acme", "name": "live"})).await;
    let (admin_id, acme_admin) = key(&h, json!({"tenant_id": "acme", "name": "boss", "roles": ["admin"]})).await;
    assert_eq!(chat(&h, &live).await.0, 200);
    ok(&h, "PATCH", "/api/v1/tenants/acme", json!({"status": "suspended"})).await;
    assert_eq!(chat_becomes(&h, &live, 401).await.0, 401);
    assert_eq!(h.admin("GET", "/api/v1/whoami", &acme_admin, Value::Null).await.0, 401);
    ok(&h, "PATCH", "/api/v1/tenants/acme", json!({"status": "active"})).await;
    assert_eq!(chat_becomes(&h, &live, 200).await.0, 200);
    assert_eq!(h.admin("GET", "/api/v1/whoami", &acme_admin, Value::Null).await.0, 200);
    ok(&h, "POST", &format!("/api/v1/keys/{admin_id}/disable"), Value::Null).await;
    assert_eq!(h.admin("GET", "/api/v1/keys", &acme_admin, Value::Null).await.0, 401, "a disabled admin key");

    // A trial past its end is refused like a suspension.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let trial = json!({"id": "trialco", "name": "Trial Co", "status": "trial", "trial_ends_at": now_ms - 60_000});
    create(&h, "tenants", trial).await;
    let (trial_id, trial_key) = key(&h, json!({"tenant_id": "trialco", "name": "t"})).await;
    assert_eq!(chat(&h, &trial_key).await.0, 401);
    ok(&h, "PATCH", "/api/v1/tenants/trialco", json!({"trial_ends_at": now_ms + 3_600_000})).await;
    assert_eq!(chat_becomes(&h, &trial_key, 200).await.0, 200);

    // Each refusal of a valid key by policy is audited as `request.refused`
    // (disabled, expired, revoked, route not allowed, suspended, trial over).
    let want = [
        (key_id.as_str(), 2, "disabled, then expired"),
        (new_id.as_str(), 1, "revoked"),
        (narrow_id.as_str(), 1, "route not allowed"),
        (live_id.as_str(), 1, "suspended tenant"),
        (admin_id.as_str(), 1, "disabled admin key on the admin API"),
        (trial_id.as_str(), 1, "trial over"),
    ];
    let refused = eventually(Duration::from_secs(5), || async {
        let all = list(&h, "audit", BOOT).await;
        let of = |k: &str| all.iter().filter(|e| e["action"] == "request.refused" && e["actor"]["id"] == k).count();
        want.iter().all(|(k, n, _)| of(k) >= *n).then_some(())
    });
    if refused.await.is_none() {
        let all = list(&h, "audit", BOOT).await;
        let seen: Vec<String> = all
            .iter()
            .filter(|e| e["action"] == "request.refused")
            .map(|e| format!("{} ({})", e["actor"]["id"], e["reason"]))
            .collect();
        panic!("want request.refused for {want:?}; got {seen:?}");
    }
}

// ---------------------------------------------------------------- audit

#[tokio::test]
async fn changes_and_refusals_are_audited_without_secrets_and_survive_a_restart() {
    let mut h = start();
    create(&h, "plans", json!({"id": "gold", "name": "gold"})).await;
    create(&h, "tenants", json!({"id": "acme", "name": "Acme", "plan_id": "gold"})).await;
    create(&h, "plans", json!({"id": "spare-plan", "name": "spare"})).await;
    create(&h, "tenants", json!({"id": "spare", "name": "spare"})).await;
    let (admin_id, admin) = key(&h, json!({"tenant_id": "acme", "name": "boss", "roles": ["admin"]})).await;
    let (viewer_id, viewer) = key(&h, json!({"tenant_id": "acme", "name": "eyes", "roles": ["viewer"]})).await;

    // The platform admin changes plans and tenants; acme's admin the rest.
    ok(&h, "PATCH", "/api/v1/plans/gold", json!({"limits": {"rpm": 100}})).await;
    ok(&h, "PATCH", "/api/v1/tenants/acme", json!({"metadata": {"tier": "a"}})).await;
    ok(&h, "DELETE", "/api/v1/plans/spare-plan", Value::Null).await;
    ok(&h, "DELETE", "/api/v1/tenants/spare", Value::Null).await;
    let as_admin = |method: &'static str, path: String, body: Value| {
        let (h, admin) = (&h, admin.clone());
        async move {
            let (status, v) = h.admin(method, &path, &admin, body).await;
            assert!((200..300).contains(&status), "{method} {path}: {status} {v}");
            v
        }
    };
    let r = h
        .http
        .post(format!("{}/api/v1/teams", h.url))
        .bearer_auth(&admin)
        .header("x-request-id", "audit-req-1")
        .json(&json!({"name": "core"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let team = id(&r.json::<Value>().await.unwrap());
    let user = id(&as_admin("POST", "/api/v1/users".into(), json!({"name": "ann", "team_id": team})).await);
    let created =
        as_admin("POST", "/api/v1/keys".into(), json!({"name": "ci", "team_id": team, "user_id": user})).await;
    let (key_id, secret) = (id(&created), created["key"].as_str().unwrap().to_string());
    as_admin("PATCH", format!("/api/v1/teams/{team}"), json!({"limits": {"rpm": 50}})).await;
    as_admin("PATCH", format!("/api/v1/users/{user}"), json!({"email": "ann@acme.test"})).await;
    as_admin("PATCH", format!("/api/v1/keys/{key_id}"), json!({"metadata": {"ci": true}})).await;
    for verb in ["disable", "enable"] {
        as_admin("POST", format!("/api/v1/keys/{key_id}/{verb}"), Value::Null).await;
    }
    let rotated = as_admin("POST", format!("/api/v1/keys/{key_id}/rotate"), json!({"overlap_seconds": 0})).await;
    let (new_id, new_secret) = (id(&rotated), rotated["key"].as_str().unwrap().to_string());
    as_admin("POST", format!("/api/v1/keys/{new_id}/revoke"), Value::Null).await;
    for path in [format!("/api/v1/keys/{new_id}"), format!("/api/v1/keys/{key_id}")] {
        as_admin("DELETE", path, Value::Null).await;
    }
    as_admin("DELETE", format!("/api/v1/users/{user}"), Value::Null).await;
    as_admin("DELETE", format!("/api/v1/teams/{team}"), Value::Null).await;

    // Refusals: a bad key on /v1, a viewer writing.
    assert_eq!(chat(&h, "sk-sy-no-such-key-0000000000000000").await.0, 401);
    let (status, _) = h.admin("POST", "/api/v1/keys", &viewer, json!({"name": "nope"})).await;
    assert_eq!(status, 403);
    let audit = eventually(Duration::from_secs(5), || async {
        let all = list(&h, "audit", BOOT).await;
        let has = |action: &str| all.iter().any(|e| e["action"] == action);
        (has("auth.denied") && has("access.denied")).then_some(all)
    })
    .await
    .expect("auth.denied and access.denied are recorded");

    let boot = json!({"kind": "bootstrap"});
    let acme_admin = json!({"kind": "key", "id": admin_id, "tenant_id": "acme"});
    // (action, target kind, target id, actor, has before, has after)
    let expect = [
        ("plan.update", "plan", "gold".to_string(), &boot, true, true),
        ("plan.delete", "plan", "spare-plan".into(), &boot, true, false),
        ("tenant.update", "tenant", "acme".into(), &boot, true, true),
        ("tenant.delete", "tenant", "spare".into(), &boot, true, false),
        ("plan.create", "plan", "gold".into(), &boot, false, true),
        ("tenant.create", "tenant", "acme".into(), &boot, false, true),
        ("key.create", "key", admin_id.clone(), &boot, false, true),
        ("team.create", "team", team.clone(), &acme_admin, false, true),
        ("user.create", "user", user.clone(), &acme_admin, false, true),
        ("key.create", "key", key_id.clone(), &acme_admin, false, true),
        ("team.update", "team", team.clone(), &acme_admin, true, true),
        ("user.update", "user", user.clone(), &acme_admin, true, true),
        ("key.update", "key", key_id.clone(), &acme_admin, true, true),
        ("key.disable", "key", key_id.clone(), &acme_admin, true, true),
        ("key.enable", "key", key_id.clone(), &acme_admin, true, true),
        ("key.rotate", "key", key_id.clone(), &acme_admin, true, true),
        ("key.revoke", "key", new_id.clone(), &acme_admin, true, true),
        ("key.delete", "key", new_id.clone(), &acme_admin, true, false),
        ("key.delete", "key", key_id.clone(), &acme_admin, true, false),
        ("user.delete", "user", user.clone(), &acme_admin, true, false),
        ("team.delete", "team", team.clone(), &acme_admin, true, false),
    ];
    let mut failures = Vec::new();
    for (action, kind, target, actor, before, after) in &expect {
        let found = audit.iter().find(|e| e["action"] == *action && e["target"]["id"] == target.as_str());
        let Some(e) = found else {
            failures.push(format!("no {action} of {kind} {target}"));
            continue;
        };
        let actor_seen =
            json!({"kind": e["actor"]["kind"], "id": e["actor"]["id"], "tenant_id": e["actor"]["tenant_id"]});
        let actor_want = with(&json!({"kind": null, "id": null, "tenant_id": null}), (*actor).clone());
        if e["target"]["kind"] != *kind || actor_seen != actor_want {
            failures.push(format!("{action} {target}: want target kind {kind}, actor {actor_want}; got {e}"));
        }
        if e["before"].is_object() != *before || e["after"].is_object() != *after {
            failures.push(format!("{action} {target}: want before {before} / after {after}; got {e}"));
        }
        if e["ip"] != "127.0.0.1" {
            failures.push(format!("{action} {target}: want ip 127.0.0.1, got {}", e["ip"]));
        }
        if *kind != "plan" && e["tenant_id"] != "acme" && *target != "spare" {
            failures.push(format!("{action} {target}: want tenant_id acme, got {}", e["tenant_id"]));
        }
    }
    let disable = audit.iter().find(|e| e["action"] == "key.disable").unwrap();
    assert_eq!((&disable["before"]["status"], &disable["after"]["status"]), (&json!("active"), &json!("disabled")));
    let update = audit.iter().find(|e| e["action"] == "team.update").unwrap();
    assert_eq!((&update["before"]["limits"]["rpm"], &update["after"]["limits"]["rpm"]), (&Value::Null, &json!(50)));
    let team_create = audit.iter().find(|e| e["action"] == "team.create").unwrap();
    assert_eq!(team_create["request_id"], "audit-req-1");

    let denied = audit.iter().find(|e| e["action"] == "auth.denied").unwrap();
    assert_eq!(denied["ip"], "127.0.0.1", "{denied}");
    assert_eq!(denied["actor"]["kind"], "anonymous", "{denied}");
    let refused = audit.iter().find(|e| e["action"] == "access.denied").unwrap();
    assert_eq!((&refused["actor"]["id"], &refused["tenant_id"]), (&json!(viewer_id), &json!("acme")), "{refused}");

    let text = Value::Array(audit.clone()).to_string();
    for s in [BOOT, admin.as_str(), viewer.as_str(), secret.as_str(), new_secret.as_str()] {
        if text.contains(s) {
            failures.push(format!("the audit log holds the secret {}…", &s[..8.min(s.len())]));
        }
        if text.contains(&hash_secret(s)) {
            failures.push(format!("the audit log holds the hash of {}…", &s[..8.min(s.len())]));
        }
    }
    if text.contains("\"hash\"") {
        failures.push("the audit log holds a `hash` field".into());
    }
    assert_none(&failures);

    // The log survives a restart, entry for entry.
    h.restart(bin());
    let after = list(&h, "audit", BOOT).await;
    for e in &audit {
        assert!(after.contains(e), "lost across the restart: {e}");
    }
}

// ---------------------------------------------------------- rate limits

/// Asserts OpenAI's 429: the envelope, the code, and `retry-after` (whole
/// seconds, at least 1) when `retry` is expected.
fn assert_429(status: u16, headers: &HeaderMap, body: &Value, code: &str, retry: bool) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let after = header(headers, "retry-after");
    if retry {
        let secs: u64 =
            after.as_deref().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("retry-after {after:?}"));
        assert!(secs >= 1, "retry-after {secs}");
    } else {
        assert!(after.is_none(), "no retry-after when waiting cannot help: {after:?}");
    }
}

#[tokio::test]
async fn key_team_and_plan_limits_refuse_like_openai() {
    let h = start();
    let (_, three) = key(&h, json!({"name": "three", "limits": {"rpm": 3}})).await;
    for remaining in ["2", "1", "0"] {
        let (status, headers, body) = chat_on(&h, &three, "chat", None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header(&headers, "x-ratelimit-limit-requests").as_deref(), Some("3"));
        assert_eq!(header(&headers, "x-ratelimit-remaining-requests").as_deref(), Some(remaining));
    }
    let (status, headers, body) = chat_on(&h, &three, "chat", None).await;
    assert_429(status, &headers, &body, "rate_limit_exceeded", true);
    assert_eq!(h.sim_requests().await.len(), 3, "the refused call never reached the upstream");

    // A team's limit spans its keys.
    let team = id(&create(&h, "teams", json!({"name": "pair", "limits": {"rpm": 2}})).await);
    let (_, k1) = key(&h, json!({"name": "k1", "team_id": team})).await;
    let (_, k2) = key(&h, json!({"name": "k2", "team_id": team})).await;
    assert_eq!(chat(&h, &k1).await.0, 200);
    assert_eq!(chat(&h, &k2).await.0, 200);
    for k in [&k1, &k2] {
        let (status, headers, body) = chat_on(&h, k, "chat", None).await;
        assert_429(status, &headers, &body, "rate_limit_exceeded", true);
    }

    // A plan's tenant limit spans the tenant's keys.
    create(&h, "plans", json!({"id": "tiny", "name": "tiny", "limits": {"rpm": 2}})).await;
    create(&h, "tenants", json!({"id": "small", "name": "Small", "plan_id": "tiny"})).await;
    let (_, k3) = key(&h, json!({"tenant_id": "small", "name": "k3"})).await;
    let (_, k4) = key(&h, json!({"tenant_id": "small", "name": "k4"})).await;
    assert_eq!(chat(&h, &k3).await.0, 200);
    assert_eq!(chat(&h, &k4).await.0, 200);
    for k in [&k3, &k4] {
        let (status, headers, body) = chat_on(&h, k, "chat", None).await;
        assert_429(status, &headers, &body, "rate_limit_exceeded", true);
    }

    // `0` refuses everything at its level.
    let (_, zero) = key(&h, json!({"name": "zero", "limits": {"rpm": 0}})).await;
    let (status, _, body) = chat_on(&h, &zero, "chat", None).await;
    assert_eq!((status, &body["error"]["type"]), (429, &json!("rate_limit_error")), "{body}");
}

#[tokio::test]
async fn concurrency_token_and_route_limits() {
    let config = base_config(
        "",
        "  - { name: chat-slow, provider: sim, model: model-slow }",
        "  - { name: slow, targets: [chat-slow] }\n  - { name: limited, targets: [chat-a], limits: { rpm: 2 } }",
    );
    let config = config.replace(
        "  default: { answer_tokens: 8 }",
        "  default: { answer_tokens: 8 }\n  models: { model-slow: { latency_ms: 1000, answer_tokens: 8 } }",
    );
    assert!(config.contains("model-slow: { latency_ms"), "the slow model is configured");
    let h = Harness::start(bin(), &config);

    // One slot: a second call while the first is in flight is refused.
    let (_, single) = key(&h, json!({"name": "single", "limits": {"max_concurrent": 1}})).await;
    let first = {
        let (http, url, single) = (h.http.clone(), h.url.clone(), single.clone());
        tokio::spawn(async move {
            let r = http.post(format!("{url}/v1/chat/completions")).bearer_auth(single).json(&chat_body("slow"));
            r.send().await.unwrap().status().as_u16()
        })
    };
    assert!(h.wait_sim_outcome("in_progress", Duration::from_secs(5)).await.is_some(), "the first call is upstream");
    let (status, headers, body) = chat_on(&h, &single, "slow", None).await;
    assert_429(status, &headers, &body, "rate_limit_exceeded", true);
    assert_eq!(first.await.unwrap(), 200);
    let freed = eventually(Duration::from_secs(3), || async {
        (chat_on(&h, &single, "chat", None).await.0 == 200).then_some(())
    });
    assert!(freed.await.is_some(), "the slot is free once the first call ended");

    // A request larger than the tpm limit can never pass: no retry-after.
    let (_, tokens) = key(&h, json!({"name": "tokens", "limits": {"tpm": 1000}})).await;
    let mut huge = chat_body("chat");
    huge["max_tokens"] = json!(100_000);
    let (status, headers, body) = chat_on(&h, &tokens, "chat", Some(huge)).await;
    assert_429(status, &headers, &body, "request_too_large", false);
    let mut small = chat_body("chat");
    small["max_tokens"] = json!(10);
    assert_eq!(chat_on(&h, &tokens, "chat", Some(small)).await.0, 200, "a small request fits");

    // A route's limit counts per tenant: each tenant gets its own 2.
    for t in ["acme", "globex"] {
        create(&h, "tenants", json!({"id": t, "name": t})).await;
        let (_, k) = key(&h, json!({"tenant_id": t, "name": "router"})).await;
        for n in 1..=2 {
            let (status, headers, body) = chat_on(&h, &k, "limited", None).await;
            assert_eq!(status, 200, "{t} call {n}: {body}");
            assert_eq!(header(&headers, "x-ratelimit-limit-requests").as_deref(), Some("2"));
        }
        let (status, headers, body) = chat_on(&h, &k, "limited", None).await;
        assert_429(status, &headers, &body, "rate_limit_exceeded", true);
        assert_eq!(chat_on(&h, &k, "chat", None).await.0, 200, "{t}: other routes are not limited");
    }
}

//! Spend analytics (`GET /api/v1/analytics/cost`, docs/analytics.md) on
//! the real binary: figures equal to sums over the stored records, roles,
//! tenant isolation, CSV, bad input, and the CLI.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use switchyard_core::analytics::calendar::{day_label, day_of, day_start};
use switchyard_core::analytics::rollup::HOUR_MS;
use switchyard_core::budget::{Offset, Zone};
use switchyard_core::ids::time_ordered_floor;
use switchyard_core::store::Store;
use switchyard_core::usage::UsageRecord;
use switchyard_testkit::{base_config, Harness, ADMIN_TOKEN};

fn config() -> String {
    base_config(
        "",
        r#"  - { name: priced, provider: sim, model: model-p, price: { input_per_mtok: 3, output_per_mtok: 15 } }"#,
        r#"  - { name: priced, targets: [priced] }"#,
    )
}

/// The keys of the test: tenant, role.
const KEYS: [(&str, &str); 6] = [
    ("acme", "admin"),
    ("acme", "billing"),
    ("acme", "viewer"),
    ("acme", "developer"),
    ("globex", "admin"),
    ("globex", "developer"),
];

struct World {
    h: Harness,
    /// (tenant, role) → secret.
    secrets: BTreeMap<(&'static str, &'static str), String>,
    /// (tenant, role) → key id.
    ids: BTreeMap<(&'static str, &'static str), String>,
}

async fn world() -> World {
    let h = Harness::start(super::bin(), &config());
    for t in ["acme", "globex"] {
        let (status, body) = h.admin("POST", "/api/v1/tenants", ADMIN_TOKEN, json!({"id": t, "name": t})).await;
        assert_eq!(status, 201, "{body}");
    }
    let mut secrets = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for (tenant, role) in KEYS {
        let body = json!({"name": format!("{tenant}-{role}"), "tenant_id": tenant, "roles": [role]});
        let (status, key) = h.admin("POST", "/api/v1/keys", ADMIN_TOKEN, body).await;
        assert_eq!(status, 201, "{key}");
        secrets.insert((tenant, role), key["key"].as_str().unwrap().to_string());
        ids.insert((tenant, role), key["id"].as_str().unwrap().to_string());
    }
    World { h, secrets, ids }
}

/// Real traffic through the gateway: acme's developer (tagged) and
/// globex's; answers how many requests were made.
async fn traffic(w: &World) -> usize {
    let mut n = 0;
    for (tenant, count, tags) in [("acme", 5, Some("env=prod")), ("globex", 3, None)] {
        for _ in 0..count {
            let mut req =
                w.h.post("/v1/chat/completions", &w.secrets[&(tenant, "developer")])
                    .json(&json!({"model": "priced", "messages": [{"role": "user", "content": "hello there"}]}));
            if let Some(t) = tags {
                req = req.header("x-switchyard-tags", t);
            }
            assert_eq!(req.send().await.unwrap().status(), 200);
            n += 1;
        }
    }
    n
}

/// Earlier usage written straight into the database (as a long-running
/// gateway would have): acme's route `chat` on a dear and a cheap
/// deployment, 2 to 9 days ago, some around a local midnight of +05:30.
async fn history(w: &World, now: i64) -> usize {
    let url = format!("sqlite://{}/sy.db", w.h.dir.path().display());
    let store = switchyard_store::SqliteStore::open(&url).await.unwrap();
    let key = &w.ids[&("acme", "developer")];
    let mut batch = Vec::new();
    let utc = Zone::default();
    let first = day_start(day_of(now, &utc) - 9, &utc);
    for i in 0..200i64 {
        let at = first + i * (7 * 24 * HOUR_MS / 200) + 17;
        let big = i % 2 == 0;
        let r = UsageRecord {
            id: format!("{}{:020x}.1", time_ordered_floor("use", at), i),
            request_id: format!("hist{i}"),
            created_at: at,
            key_id: Some(key.clone()),
            tenant_id: Some("acme".into()),
            operation: "chat".into(),
            route: Some("chat".into()),
            deployment: Some(if big { "big" } else { "small" }.into()),
            model: Some(if big { "model-big" } else { "model-small" }.into()),
            status: if i % 25 == 0 { 502 } else { 200 },
            input_tokens: Some(100 + i as u64),
            output_tokens: Some(50),
            attempt: 1,
            attempts: 1,
            cost_nanos: Some(if big { 90_000 } else { 9_000 }),
            latency_ms: 120.0,
            tags: Some(r#"{"env":"batch"}"#.into()),
            ..UsageRecord::default()
        };
        batch.push(r);
    }
    store.write_usage(&batch).await.unwrap();
    store.write_usage(&batch[..50]).await.unwrap(); // replayed: counted once
    batch.len()
}

async fn get(h: &Harness, token: &str, query: &str) -> (u16, Value) {
    h.admin("GET", &format!("/api/v1/analytics/cost?{query}"), token, Value::Null).await
}

/// (requests, errors, cost_nanos, total_tokens) of `records` passing `keep`.
fn sums(records: &[UsageRecord], keep: impl Fn(&UsageRecord) -> bool) -> (i64, i64, i64, i64) {
    let mut s = (0, 0, 0, 0);
    for r in records.iter().filter(|r| keep(r)) {
        if r.is_final {
            s.0 += 1;
            s.1 += i64::from(r.status >= 400 || r.error_kind.is_some());
        }
        s.2 += r.cost_nanos.unwrap_or(0);
        s.3 += (r.input_tokens.unwrap_or(0) + r.output_tokens.unwrap_or(0)) as i64;
    }
    s
}

fn figures(v: &Value) -> (i64, i64, i64, i64) {
    let n = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}"));
    (n("requests"), n("errors"), n("cost_nanos"), n("total_tokens"))
}

#[tokio::test]
async fn figures_equal_the_stored_records_and_each_role_sees_what_it_may() {
    let w = world().await;
    let now = switchyard_core::now_unix_ms();
    let made = traffic(&w).await + history(&w, now).await;
    let records = w.h.wait_usage(made).await;
    assert_eq!(records.len(), made);
    let today = day_of(now, &Zone::default());
    let range = format!("start_date={}&end_date={}", day_label(today - 20), day_label(today));

    // The platform admin: every tenant, grouped by tenant.
    let (status, all) = get(&w.h, ADMIN_TOKEN, &format!("{range}&group_by=tenant")).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(figures(&all["totals"]), sums(&records, |_| true));
    for row in all["rows"].as_array().unwrap() {
        let t = row["tenant_id"].as_str().map(str::to_string);
        assert_eq!(figures(row), sums(&records, |r| r.tenant_id == t), "{row}");
    }
    assert_eq!(all["rows"].as_array().unwrap().len(), 2);
    assert!(all["top_spenders"]["tenants"].as_array().is_some_and(|t| t.len() == 2), "{all}");
    let acme_cost = sums(&records, |r| r.tenant_id.as_deref() == Some("acme")).2;
    assert!(acme_cost > 0);

    // acme's admin, billing and viewer see acme only; its developer may not.
    let acme = |r: &UsageRecord| r.tenant_id.as_deref() == Some("acme");
    for role in ["admin", "billing", "viewer"] {
        let (status, mine) = get(&w.h, &w.secrets[&("acme", role)], &format!("{range}&group_by=key")).await;
        assert_eq!(status, 200, "{role}: {mine}");
        assert_eq!(mine["tenant_id"], "acme");
        assert_eq!(figures(&mine["totals"]), sums(&records, acme), "{role}");
        let keys: Vec<&str> = mine["rows"].as_array().unwrap().iter().map(|r| r["key_id"].as_str().unwrap()).collect();
        assert_eq!(keys, [w.ids[&("acme", "developer")].as_str()], "{role}");
        assert!(mine["top_spenders"].get("tenants").is_none());
        assert_eq!(mine["top_spenders"]["keys"][0]["name"], "acme-developer", "names from the directory");
    }
    let (status, denied) = get(&w.h, &w.secrets[&("acme", "developer")], &range).await;
    assert_eq!((status, denied["error"]["type"].as_str()), (403, Some("permission_error")), "{denied}");
    let (status, _) = get(&w.h, "", &range).await;
    assert_eq!(status, 401);

    // Another tenant's figures: nothing, as if it had none.
    let (status, other) = get(&w.h, &w.secrets[&("acme", "admin")], &format!("{range}&tenant_id=globex")).await;
    assert_eq!(status, 200);
    assert_eq!((figures(&other["totals"]), other["rows"].as_array().unwrap().len()), ((0, 0, 0, 0), 0));
    let (_, globex) = get(&w.h, &w.secrets[&("globex", "admin")], &range).await;
    assert_eq!(figures(&globex["totals"]), sums(&records, |r| r.tenant_id.as_deref() == Some("globex")));

    // Tags: the real requests' and the history's.
    let (_, tags) = get(&w.h, ADMIN_TOKEN, &format!("{range}&group_by=tag&tenant_id=acme")).await;
    let value = |v: &str| tags["rows"].as_array().unwrap().iter().find(|r| r["tag_value"] == v).cloned().unwrap();
    let tagged = |v: &'static str| move |r: &UsageRecord| r.tags.as_deref().is_some_and(|t| t.contains(v));
    assert_eq!(figures(&value("prod")), sums(&records, tagged("\"prod\"")));
    assert_eq!(figures(&value("batch")), sums(&records, tagged("\"batch\"")));

    // Days at +05:30: every record once, each on its local day.
    // (Through tomorrow: today's traffic may already be tomorrow there.)
    let wide = format!("start_date={}&end_date={}", day_label(today - 20), day_label(today + 1));
    let (_, days) = get(&w.h, ADMIN_TOKEN, &format!("{wide}&granularity=day&time_zone=%2B05:30")).await;
    assert_eq!(days["time_zone"], "+05:30");
    let ist = Zone::Fixed(Offset(330));
    let mut by_day: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    for r in &records {
        let s = sums(std::slice::from_ref(r), |_| true);
        let e = by_day.entry(day_label(day_of(r.created_at, &ist))).or_default();
        *e = (e.0 + s.0, e.1 + s.1, e.2 + s.2, e.3 + s.3);
    }
    let got: BTreeMap<String, (i64, i64, i64, i64)> = days["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["date"].as_str().unwrap().to_string(), figures(r)))
        .collect();
    assert_eq!(got, by_day);

    // The history's dear deployment has a cheaper one on the same route.
    let (_, acme_view) = get(&w.h, &w.secrets[&("acme", "billing")], &range).await;
    let s = &acme_view["suggestions"][0];
    assert_eq!((s["deployment"].as_str(), s["alternative"].as_str()), (Some("big"), Some("small")), "{acme_view}");

    // CSV: the same rows.
    let r =
        w.h.http
            .get(format!("{}/api/v1/analytics/cost?{range}&group_by=tenant&format=csv", w.h.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("tenant_id,requests,errors,error_rate,"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    let cost_at = lines[0].split(',').position(|c| c == "cost_nanos").unwrap();
    let csv_total: i64 = lines[1..].iter().map(|l| l.split(',').nth(cost_at).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(csv_total, sums(&records, |_| true).2);

    // The CLI shows the same.
    let out = Command::new(super::bin())
        .args(["analytics", "cost", "--group-by", "tenant", "--start", &day_label(today - 20)])
        .env("SWITCHYARD_URL", &w.h.url)
        .env("SWITCHYARD_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.lines().nth(2).is_some_and(|l| l.starts_with("TENANT")), "{text}");
    assert!(text.contains("suggestion: On route 'chat', 'big'"), "{text}");
}

#[tokio::test]
async fn bad_queries_are_refused_naming_the_parameter() {
    let h = Harness::start(super::bin(), &config());
    let cases = [
        ("colour=red", "colour"),
        ("group_by=planet", "group_by"),
        ("group_by=tag,model", "group_by"),
        ("start_date=2026-02-30", "start_date"),
        ("start_date=2026-01-10&end_date=2026-01-01", "end_date"),
        ("granularity=hour&start_date=2026-01-01&end_date=2026-03-01", "start_date"),
        ("granularity=fortnight", "granularity"),
        ("limit=0", "limit"),
        ("format=xml", "format"),
        ("time_zone=Mars/Olympus_Mons", "time_zone"),
        ("limit=5&limit=6", "limit"),
    ];
    for (query, param) in cases {
        let (status, body) = get(&h, ADMIN_TOKEN, query).await;
        assert_eq!((status, body["error"]["param"].as_str()), (400, Some(param)), "{query}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    // IANA zones: days follow daylight saving.
    let (status, paris) =
        get(&h, ADMIN_TOKEN, "start_date=2026-10-25&end_date=2026-10-25&time_zone=Europe/Paris").await;
    assert_eq!(status, 200, "{paris}");
    assert_eq!(
        (paris["start"].as_str(), paris["end"].as_str()),
        (Some("2026-10-25T00:00:00+02:00"), Some("2026-10-26T00:00:00+01:00"))
    );
    assert_eq!(paris["trend"]["previous_start"], "2026-10-24T00:00:00+02:00", "the day before, not 25 hours before");
    // An empty store answers zeros, not an error.
    let (status, empty) = get(&h, ADMIN_TOKEN, "group_by=model,date").await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!((empty["totals"]["requests"].as_i64(), empty["totals"]["cost_usd"].as_str()), (Some(0), Some("0")));
    assert_eq!(empty["rows"], json!([]));
}

//! Two gateway processes sharing PostgreSQL and Redis, as replicas behind a
//! load balancer would: a key revoked through one is refused by the other
//! within a second, and one rate limit and one budget hold across both.
//!
//! Needs `SWITCHYARD_TEST_POSTGRES_URL` and `SWITCHYARD_TEST_REDIS_URL`
//! (`tests/services.sh` starts both and exports them). Without them the tests
//! are skipped with a note — except under CI, where they fail.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchyard_testkit::{Harness, ADMIN_TOKEN};

/// A service URL from the environment; `None` (skip) outside CI.
fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").is_ok_and(|c| !c.is_empty()) => {
            panic!("{var} is not set: CI must run the replica tests (tests/services.sh)")
        }
        _ => {
            eprintln!("skipped: {var} is not set (source tests/services.sh to run it)");
            None
        }
    }
}

/// A fresh database on the test server, dropped with the guard.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    fn create(admin_url: &str) -> Database {
        let name = format!("sy_replicas_{:016x}", fastrand::u64(..));
        psql(admin_url, &format!("CREATE DATABASE {name}"));
        let base = admin_url.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin_url);
        Database { admin_url: admin_url.to_string(), url: format!("{base}/{name}"), name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([&self.admin_url, "-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

fn psql(url: &str, sql: &str) {
    let out =
        std::process::Command::new("psql").args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]).output().unwrap();
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The config of one replica: shared store and Redis, a slow model for
/// holding requests in flight.
fn config(db: &str, redis: Option<&str>, prefix: &str) -> String {
    let redis = redis.map(|r| format!("redis: {{ url: \"{r}\", key_prefix: \"{prefix}\" }}")).unwrap_or_default();
    format!(
        r#"
server: {{ listen: "127.0.0.1:0", shutdown_grace: 5s }}
storage: {{ url: "{db}" }}
admin: {{ bootstrap_token: "{ADMIN_TOKEN}", refresh_interval: 250ms }}
{redis}
usage: {{ flush_interval: 20ms }}
reload: {{ watch: false }}
timeouts: {{ first_token: 10s, idle: 10s, total: 20s }}
simulator:
  listen: "127.0.0.1:0"
  default: {{ answer_tokens: 8 }}
  models:
    slow-model: {{ latency_ms: 1500, ttft_ms: 1500, answer_tokens: 8 }}
providers:
  - {{ name: sim, kind: openai_compatible, base_url: "sim://" }}
deployments:
  - {{ name: fast, provider: sim, model: model-a }}
  - {{ name: slow, provider: sim, model: slow-model }}
routes:
  - {{ name: chat, targets: [fast] }}
  - {{ name: slow, targets: [slow] }}
"#
    )
}

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

async fn admin(h: &Harness, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r =
        h.http.request(method, format!("{}{path}", h.url)).bearer_auth(ADMIN_TOKEN).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn chat(h: &Harness, key: &str, route: &str, max_tokens: u64) -> u16 {
    let body = json!({"model": route, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]});
    h.post("/v1/chat/completions", key).json(&body).send().await.unwrap().status().as_u16()
}

/// Starts two replicas on one database (and Redis, when given).
fn pair(db: &Database, redis: Option<&str>) -> (Harness, Harness) {
    let prefix = format!("sy-test-{:08x}", fastrand::u32(..));
    let a = Harness::start(&bin(), &config(&db.url, redis, &prefix));
    let b = Harness::start(&bin(), &config(&db.url, redis, &prefix));
    (a, b)
}

/// How long until `b` refuses a key revoked through `a`.
async fn revocation_delay(a: &Harness, b: &Harness) -> Duration {
    let (status, created) = admin(a, reqwest::Method::POST, "/api/v1/keys", json!({"name": "rev"})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    // B learns of the new key too (the same mechanism, the other way round).
    let start = Instant::now();
    while chat(b, &key, "chat", 16).await != 200 {
        assert!(start.elapsed() < Duration::from_secs(2), "replica B never accepted the new key");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, _) = admin(a, reqwest::Method::POST, &format!("/api/v1/keys/{id}/revoke"), json!({})).await;
    assert_eq!(status, 200);
    let revoked = Instant::now();
    loop {
        match chat(b, &key, "chat", 16).await {
            401 => return revoked.elapsed(),
            200 => {}
            other => panic!("unexpected status {other}"),
        }
        assert!(revoked.elapsed() < Duration::from_secs(3), "replica B still accepts the revoked key");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second() {
    let (Some(pg), Some(redis)) = (service("SWITCHYARD_TEST_POSTGRES_URL"), service("SWITCHYARD_TEST_REDIS_URL"))
    else {
        return;
    };
    let db = Database::create(&pg);
    let (a, b) = pair(&db, Some(&redis));
    let with_redis = revocation_delay(&a, &b).await;
    eprintln!("revocation seen by the other replica after {with_redis:?} (PostgreSQL + Redis)");
    assert!(with_redis < Duration::from_secs(1), "{with_redis:?}");
    drop((a, b));

    // Without Redis, polling alone keeps the promise.
    let db = Database::create(&pg);
    let (a, b) = pair(&db, None);
    let polling = revocation_delay(&a, &b).await;
    eprintln!("revocation seen by the other replica after {polling:?} (PostgreSQL, polling only)");
    assert!(polling < Duration::from_secs(1), "{polling:?}");
}

/// Fires `n` requests at once, alternating replicas; answers how many got
/// 200 and how many 429.
async fn burst(a: &Harness, b: &Harness, key: &str, route: &str, max_tokens: u64, n: usize) -> (usize, usize) {
    let calls = (0..n).map(|i| {
        let h = if i % 2 == 0 { a } else { b };
        chat(h, key, route, max_tokens)
    });
    let statuses = futures_util::future::join_all(calls).await;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, n, "only 200 and 429 expected: {statuses:?}");
    (ok, limited)
}

#[tokio::test]
async fn one_rate_limit_holds_across_two_replicas() {
    let (Some(pg), Some(redis)) = (service("SWITCHYARD_TEST_POSTGRES_URL"), service("SWITCHYARD_TEST_REDIS_URL"))
    else {
        return;
    };
    let db = Database::create(&pg);
    let (a, b) = pair(&db, Some(&redis));

    // Requests per minute: 60, refilled at one per second; the burst lasts
    // well under a second, so at most one or two refills join the 60.
    let (status, created) =
        admin(&a, reqwest::Method::POST, "/api/v1/keys", json!({"name": "rpm", "limits": {"rpm": 60}})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    wait_known(&b, &key).await;
    let started = Instant::now();
    let (ok, limited) = burst(&a, &b, &key, "chat", 16, 200).await;
    let took = started.elapsed();
    eprintln!("rpm 60 across two replicas: {ok} admitted, {limited} refused, in {took:?}");
    let refills = took.as_secs_f64().ceil() as usize;
    assert!(ok >= 57 && ok <= 60 + refills.max(3), "admitted {ok} (limit 60, within 5%)");

    // Tokens per minute: 3,000, each request reserving its estimate (bytes / 4
    // + max_tokens = ~150). The slow model holds every admitted request in
    // flight until the burst is over, so no early refund lets more in.
    let (status, created) =
        admin(&a, reqwest::Method::POST, "/api/v1/keys", json!({"name": "tpm", "limits": {"tpm": 3000}})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    wait_known(&b, &key).await;
    let body = json!({"model": "slow", "max_tokens": 128, "messages": [{"role": "user", "content": "hi"}]});
    let estimate = (serde_json::to_vec(&body).unwrap().len() / 4) as u64 + 128;
    let started = Instant::now();
    let (ok, limited) = burst(&a, &b, &key, "slow", 128, 60).await;
    let admitted_tokens = ok as u64 * estimate;
    eprintln!(
        "tpm 3000 across two replicas: {ok} admitted ({admitted_tokens} tokens reserved at {estimate} each), {limited} refused, in {:?}",
        started.elapsed()
    );
    assert!(admitted_tokens <= 3000 && admitted_tokens + estimate > 3000 * 95 / 100, "{admitted_tokens} of 3000");
}

/// A key's budget holds across two replicas: both reserve in Redis, so
/// together they admit what one would. The slow model keeps every admitted
/// request in flight until the burst is over (reservations, not commits,
/// are what is shared at that moment).
#[tokio::test]
async fn one_budget_holds_across_two_replicas() {
    let (Some(pg), Some(redis)) = (service("SWITCHYARD_TEST_POSTGRES_URL"), service("SWITCHYARD_TEST_REDIS_URL"))
    else {
        return;
    };
    let db = Database::create(&pg);
    let (a, b) = pair(&db, Some(&redis));
    let budget = json!({"name": "budget", "budgets": [{"period": "day", "max_tokens": 1000}]});
    let (status, created) = admin(&a, reqwest::Method::POST, "/api/v1/keys", budget).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    wait_known(&b, &key).await;
    let body = json!({"model": "slow", "max_tokens": 128, "messages": [{"role": "user", "content": "hi"}]});
    let estimate = (serde_json::to_vec(&body).unwrap().len() / 4) as u64 + 128;
    let (ok, refused) = burst(&a, &b, &key, "slow", 128, 30).await;
    eprintln!("a 1,000-token budget across two replicas: {ok} admitted at {estimate} tokens each, {refused} refused");
    assert_eq!(ok as u64, 1000 / estimate, "exactly what fits, not twice that");
    // What they spent, from the stored records: within the budget.
    let sum = "SELECT COUNT(*) || ' ' || COALESCE(SUM(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)), 0) \
               FROM usage_records WHERE status = 200";
    let start = Instant::now();
    let (count, spent) = loop {
        let out = std::process::Command::new("psql").args([&db.url, "-t", "-A", "-c", sum]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let (count, spent) = text.split_once(' ').unwrap_or(("0", "0"));
        let (count, spent): (usize, u64) = (count.parse().unwrap_or(0), spent.parse().unwrap_or(0));
        if count >= ok || start.elapsed() > Duration::from_secs(10) {
            break (count, spent);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(count, ok, "every admitted request recorded");
    assert!(spent <= 1000, "spent {spent} of 1,000 tokens");
}

/// Waits until replica `b` accepts `key` (created through the other one).
async fn wait_known(b: &Harness, key: &str) {
    let start = Instant::now();
    loop {
        let r = b.http.get(format!("{}/v1/models", b.url)).bearer_auth(key).send().await.unwrap();
        if r.status() == 200 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(2), "replica B never accepted the new key");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The deployment `h` sends the route to.
async fn served_by(h: &Harness, key: &str, route: &str) -> String {
    let body = json!({"model": route, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    let r = h.post("/v1/chat/completions", key).json(&body).send().await.unwrap();
    r.headers().get("x-switchyard-route").and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

#[tokio::test]
async fn a_config_change_through_one_replica_runs_on_the_other_and_a_scheduled_step_is_taken_once() {
    let Some(pg) = service("SWITCHYARD_TEST_POSTGRES_URL") else { return };
    let db = Database::create(&pg);
    let (a, b) = pair(&db, None);
    let (_, created) = admin(&a, reqwest::Method::POST, "/api/v1/keys", json!({"name": "k"})).await;
    let key = created["key"].as_str().unwrap().to_string();
    wait_known(&b, &key).await;
    assert_eq!(served_by(&b, &key, "chat").await, "fast");
    // Through A: chat's canary at 0%, then 100% a second later — both
    // replicas run the schedule; one of them takes the step.
    let body = json!({"route": "chat", "targets": ["slow"], "steps": [0, 100], "every": "1s"});
    let (status, made) = admin(&a, reqwest::Method::POST, "/api/v1/rollouts", body).await;
    assert_eq!(status, 201, "{made}");
    let start = Instant::now();
    while served_by(&b, &key, "chat").await != "slow" {
        assert!(start.elapsed() < Duration::from_secs(5), "replica B never ran the step");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, versions) = admin(&b, reqwest::Method::GET, "/api/v1/config/versions", Value::Null).await;
    let sources: Vec<&str> = versions["data"].as_array().unwrap().iter().filter_map(|v| v["source"].as_str()).collect();
    assert_eq!(sources, ["rollout", "rollout", "file"], "one version per step: {versions}");
    assert_eq!(served_by(&a, &key, "chat").await, "slow");
}

#[tokio::test]
async fn with_redis_a_config_change_reaches_the_other_replica_at_once_not_at_its_next_poll() {
    let (Some(pg), Some(redis)) = (service("SWITCHYARD_TEST_POSTGRES_URL"), service("SWITCHYARD_TEST_REDIS_URL"))
    else {
        return;
    };
    let db = Database::create(&pg);
    // Polls every 30 s: only the announcement can be this quick.
    let prefix = format!("sy-test-{:08x}", fastrand::u32(..));
    let slow = |c: String| c.replace("refresh_interval: 250ms", "refresh_interval: 30s");
    let a = Harness::start(&bin(), &slow(config(&db.url, Some(&redis), &prefix)));
    let b = Harness::start(&bin(), &slow(config(&db.url, Some(&redis), &prefix)));
    tokio::time::sleep(Duration::from_millis(300)).await; // B subscribed
    let (_, created) = admin(&a, reqwest::Method::POST, "/api/v1/keys", json!({"name": "k"})).await;
    let key = created["key"].as_str().unwrap().to_string();
    wait_known(&b, &key).await;
    assert_eq!(served_by(&b, &key, "chat").await, "fast");
    let body = json!({"route": "chat", "targets": ["slow"], "percent": 100});
    let (status, made) = admin(&a, reqwest::Method::POST, "/api/v1/rollouts", body).await;
    assert_eq!(status, 201, "{made}");
    let start = Instant::now();
    let (_, list) = loop {
        let listed = admin(&b, reqwest::Method::GET, "/api/v1/rollouts", Value::Null).await;
        if listed.1["data"].as_array().is_some_and(|d| !d.is_empty()) {
            break listed;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "replica B waited for its poll");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("config change seen by the other replica after {:?}", start.elapsed());
    assert_eq!(list["data"][0]["targets"], json!(["slow"]));
}

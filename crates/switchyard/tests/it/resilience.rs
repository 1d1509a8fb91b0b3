//! Game-day scenarios against the embedded simulator: what clients see and
//! what the gateway recorded when a provider fails, rate-limits, stalls or
//! disappears (docs/resilience.md). Each scenario is bounded in time.

use crate::{bin, chat_body, stream_body};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchyard_testkit::{base_config, eventually, Harness, ADMIN_TOKEN};

/// The test config with a quick breaker (3 failures, open 1 s, closed by
/// one good probe) and short deadlines.
fn start_with(resilience: &str, timeouts: &str) -> Harness {
    let config = base_config("", "", "").replace("timeouts: { first_token: 2s, idle: 2s, total: 5s }", timeouts)
        + &format!("resilience:\n{resilience}\n");
    Harness::start(bin(), &config)
}

fn quick_breaker() -> Harness {
    start_with(
        "  breaker: { consecutive_failures: 3, open_for: 1s, close_after: 1 }",
        "timeouts: { first_token: 2s, idle: 2s, total: 5s }",
    )
}

/// Status, the deployment that answered, and the attempts.
async fn ask(h: &Harness, key: &str, body: &Value) -> (u16, String, String) {
    let r = h.post("/v1/chat/completions", key).json(body).send().await.unwrap();
    let header = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (route, attempts) = (header("x-switchyard-route"), header("x-switchyard-attempts"));
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    if body["stream"] == true && status == 200 {
        assert!(text.ends_with("data: [DONE]\n\n"), "a whole stream: {text}");
    }
    (status, route, attempts)
}

async fn sim_count(h: &Harness, model: &str) -> usize {
    h.sim_requests().await.iter().filter(|r| r["model"] == model).count()
}

async fn deployment(h: &Harness, name: &str) -> Value {
    let (status, list) = h.admin("GET", "/api/v1/deployments", ADMIN_TOKEN, Value::Null).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().iter().find(|d| d["deployment"] == name).cloned().unwrap()
}

#[tokio::test]
async fn primary_down_fails_over_opens_the_breaker_and_returns_after_recovery() {
    let h = quick_breaker();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"error_rate": 1.0, "error_status": 503})).await;
    // Every request succeeds through the fallback, streams included.
    for i in 0..10 {
        let body = if i % 2 == 0 { chat_body("failover") } else { stream_body("failover", None) };
        let (status, route, _) = ask(&h, &key, &body).await;
        assert_eq!((status, route.as_str()), (200, "chat-b"), "request {i}");
    }
    // The breaker opened after 3 failures: the primary saw only those.
    assert_eq!(sim_count(&h, "model-a").await, 3);
    let a = deployment(&h, "chat-a").await;
    assert_eq!((a["breaker"]["state"].as_str(), a["available"].as_bool()), (Some("open"), Some(false)), "{a}");
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"switchyard_breaker_transitions_total{deployment="chat-a",to="open"} 1"#), "{metrics}");
    assert!(metrics.contains(r#"switchyard_failovers_total{deployment="chat-a"} 3"#), "{metrics}");

    // It recovers: within the open time plus a probe, traffic is back.
    h.set_knobs("model-a", json!({"error_rate": 0.0})).await;
    let recovered = Instant::now();
    let back = eventually(Duration::from_secs(4), || async {
        (ask(&h, &key, &chat_body("failover")).await.1 == "chat-a").then_some(recovered.elapsed())
    });
    let took = back.await.expect("traffic never returned to the primary");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(deployment(&h, "chat-a").await["breaker"]["state"], "closed");
    // The failed attempts are recorded as such, each with its deployment.
    let records = h.usage_records().await;
    let failed = records.iter().filter(|r| !r.is_final && r.deployment.as_deref() == Some("chat-a")).count();
    assert_eq!(failed, 3);
}

#[tokio::test]
async fn a_429_storm_with_retry_after_cools_the_provider_down() {
    let h = quick_breaker();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"rate_limit_rate": 1.0, "retry_after_s": 2})).await;
    let started = Instant::now();
    for _ in 0..8 {
        let (status, route, _) = ask(&h, &key, &chat_body("failover")).await;
        assert_eq!((status, route.as_str()), (200, "chat-b"));
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(sim_count(&h, "model-a").await, 1, "left alone for its retry-after");
    let a = deployment(&h, "chat-a").await;
    assert!(a["cooling_ms"].as_u64().is_some_and(|ms| ms <= 2000), "{a}");
    assert_eq!(a["breaker"]["state"], "closed", "a 429 is not a failure");
    // Alone on its route, the client gets the 429 and when to come back.
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("chat")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // After the retry-after it is tried again.
    h.set_knobs("model-a", json!({"rate_limit_rate": 0.0})).await;
    let again = eventually(Duration::from_secs(4), || async {
        (ask(&h, &key, &chat_body("failover")).await.1 == "chat-a").then_some(())
    });
    assert!(again.await.is_some());
}

#[tokio::test]
async fn every_provider_down_is_a_quick_503_without_a_retry_storm() {
    let h = quick_breaker();
    let key = h.key().await;
    for m in ["model-a", "model-b"] {
        h.set_knobs(m, json!({"error_rate": 1.0, "error_status": 500})).await;
    }
    // The first request tries both, three rounds: then both breakers are open.
    let (status, _, attempts) = ask(&h, &key, &chat_body("failover")).await;
    assert_eq!((status, attempts.as_str()), (502, "6"));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let r = h.post("/v1/chat/completions", &key).json(&chat_body("failover")).send().await.unwrap();
        slowest = slowest.max(started.elapsed());
        assert_eq!(r.status(), 503);
        assert!(r.headers().contains_key("retry-after"));
        let e: Value = r.json().await.unwrap();
        assert!(e["error"]["message"].as_str().unwrap().contains("breaker open"), "{e}");
    }
    assert!(slowest < Duration::from_millis(200), "{slowest:?}");
    assert_eq!(h.sim_requests().await.len(), 6, "upstream calls are bounded");
}

#[tokio::test]
async fn a_slow_first_token_or_a_silent_upstream_is_cut_by_its_own_deadline() {
    let h = start_with("  retries: { max: 0 }", "timeouts: { first_token: 400ms, idle: 2s, total: 20s }");
    let key = h.key().await;
    // A stream whose first token would take 20 s: the fallback answers.
    h.set_knobs("model-a", json!({"ttft_ms": 20000})).await;
    let started = Instant::now();
    let (status, route, _) = ask(&h, &key, &stream_body("failover", None)).await;
    assert_eq!((status, route.as_str()), (200, "chat-b"));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // A server that accepts the connection and never sends headers.
    h.set_knobs("model-a", json!({"hang": true})).await;
    let started = Instant::now();
    let (status, route, _) = ask(&h, &key, &chat_body("failover")).await;
    assert_eq!((status, route.as_str()), (200, "chat-b"));
    assert!(started.elapsed() < Duration::from_secs(2), "first_token, not total: {:?}", started.elapsed());
}

#[tokio::test]
async fn the_client_sets_the_deadline_within_policy() {
    let h = start_with("  deadline: { max: 2s }", "timeouts: { first_token: 10s, idle: 10s, total: 20s }");
    let key = h.key().await;
    h.set_knobs("model-a", json!({"latency_ms": 5000})).await;
    let started = Instant::now();
    let r = h.post("/v1/chat/completions", &key).header("x-switchyard-timeout", "0.5").json(&chat_body("chat")).send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), 504);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].as_str().unwrap().contains("the request's deadline"), "{e}");
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    // Capped by policy: asking for an hour gets 2 s.
    let started = Instant::now();
    let r = h.post("/v1/chat/completions", &key).header("x-switchyard-timeout", "1h").json(&chat_body("chat")).send();
    assert_eq!(r.await.unwrap().status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
    let r = h.post("/v1/chat/completions", &key).header("x-switchyard-timeout", "soon").json(&chat_body("chat")).send();
    let r = r.await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["param"], "x-switchyard-timeout");
}

//! Every failure gets OpenAI's error shape and the right status, and is
//! recorded; upstream failures before the first byte fall through to the
//! next deployment.

use super::{bin, chat_body, start, stream_body};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchyard_testkit::{base_config, Harness};

/// Asserts the OpenAI error envelope and returns the `error` object.
async fn error_of(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status, "status");
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    let e = v["error"].clone();
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
    e
}

#[tokio::test]
async fn client_errors() {
    let h = start();
    let key = h.key().await;
    let url = format!("{}/v1/chat/completions", h.url);

    let r = h.http.post(&url).json(&chat_body("chat")).send().await.unwrap();
    let e = error_of(r, 401).await;
    assert_eq!(e["code"], "invalid_api_key");
    let r = h.http.post(&url).bearer_auth("sk-sy-not-a-real-key-at-all").json(&chat_body("chat")).send().await.unwrap();
    let e = error_of(r, 401).await;
    assert!(!e["message"].as_str().unwrap().contains("not-a-real-key-at-all"), "secrets are redacted");

    let r = h.post("/v1/chat/completions", &key).body("{\"model\": \"chat\", ").send().await.unwrap();
    error_of(r, 400).await;
    let r = h.post("/v1/chat/completions", &key).json(&json!({"model": "chat"})).send().await.unwrap();
    let e = error_of(r, 400).await;
    assert_eq!(e["param"], "messages");
    assert_eq!(e["code"], "missing_required_parameter");
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("no-such-model")).send().await.unwrap();
    let e = error_of(r, 404).await;
    assert_eq!(e["code"], "model_not_found");
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("embed")).send().await.unwrap();
    error_of(r, 400).await;
    let r = h.post("/v1/nope", &key).send().await.unwrap();
    error_of(r, 404).await;

    // Nothing of that reached the upstream, and every request was recorded.
    assert!(h.sim_requests().await.is_empty());
    let records = h.wait_usage(6).await;
    let mut statuses: Vec<u16> = records.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [400, 400, 400, 401, 401, 404], "the unknown path is not an API request");
    assert!(records.iter().all(|r| r.error_kind.is_some()));
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let config = base_config("", "", "").replace("heartbeat: 15s,", "heartbeat: 15s, max_body_bytes: 2048,");
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    let big = json!({"model": "chat", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let r = h.post("/v1/chat/completions", &key).json(&big).send().await.unwrap();
    let e = error_of(r, 413).await;
    assert_eq!(e["code"], "request_too_large");
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("chat")).send().await.unwrap();
    assert_eq!(r.status(), 200, "small bodies still pass");
    let records = h.wait_usage(2).await;
    let refused = records.iter().find(|r| r.status == 413).expect("the refused request is recorded");
    assert_eq!(refused.error_kind.as_deref(), Some("payload_too_large"));
    assert!(refused.key_id.is_some(), "attributed to its key");
    assert!(h.sim_requests().await.len() == 1, "only the small one went upstream");
}

#[tokio::test]
async fn upstream_5xx_falls_through_to_the_next_deployment() {
    let h = start();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"fail_next": 1, "error_status": 500})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("failover")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-route"], "chat-b");
    assert_eq!(r.headers()["x-switchyard-attempts"], "2");
    let seen = h.sim_requests().await;
    let models: Vec<&str> = seen.iter().map(|s| s["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["model-a", "model-b"]);
    // Each attempt has its record, keyed by request and attempt number: the
    // failed one is not final and cost nothing; the answer is attempt 2.
    let records = h.wait_usage(2).await;
    let (failed, answered) = (&records[0], &records[1]);
    assert_eq!(failed.id.rsplit_once('.').map(|(id, _)| id), answered.id.rsplit_once('.').map(|(id, _)| id));
    assert!(failed.id.ends_with(".1") && answered.id.ends_with(".2"), "{} {}", failed.id, answered.id);
    assert_eq!((failed.attempt, failed.is_final, failed.status), (1, false, 500));
    assert_eq!(failed.deployment.as_deref(), Some("chat-a"));
    assert_eq!(failed.model.as_deref(), Some("model-a"));
    assert_eq!(failed.error_kind.as_deref(), Some("server_error"));
    assert_eq!(failed.cost_nanos.unwrap_or(0), 0);
    assert!(failed.input_tokens.is_none());
    assert_eq!((answered.attempt, answered.attempts, answered.is_final, answered.status), (2, 2, true, 200));
    assert_eq!(answered.model.as_deref(), Some("model-b"));
    assert!(answered.input_tokens.is_some());

    // Streams fall through too, before their first byte.
    h.set_knobs("model-a", json!({"fail_next": 1, "error_status": 503})).await;
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("failover", None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-route"], "chat-b");
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));

    // Both failing once: after a backoff the first is tried again.
    h.set_knobs("model-a", json!({"fail_next": 1})).await;
    h.set_knobs("model-b", json!({"fail_next": 1})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("failover")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        (r.headers()["x-switchyard-attempts"].to_str().unwrap(), r.headers()["x-switchyard-route"].to_str().unwrap()),
        ("3", "chat-a")
    );

    // Both failing every time: 502 in OpenAI's shape after three rounds,
    // every attempt recorded.
    h.set_knobs("model-a", json!({"fail_next": 3})).await;
    h.set_knobs("model-b", json!({"fail_next": 3})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("failover")).send().await.unwrap();
    assert_eq!(r.headers()["x-switchyard-attempts"], "6");
    error_of(r, 502).await;
    // 2 + 2 + 3 + 6 records: one per attempt.
    let records = h.wait_usage(13).await;
    let last = records.iter().find(|r| r.status == 502 && r.is_final).expect("failed request recorded");
    assert_eq!(last.attempts, 6);
    assert_eq!(last.error_kind.as_deref(), Some("upstream_failed"));
}

#[tokio::test]
async fn upstream_4xx_is_returned_not_retried() {
    let h = start();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"fail_next": 1, "error_status": 422})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("failover")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(h.sim_requests().await.len(), 1, "not retried on the next deployment");
}

#[tokio::test]
async fn upstream_429_passes_retry_after() {
    let h = start();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"rate_limit_next": 1, "retry_after_s": 7})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("chat")).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "7");
    error_of(r, 429).await;
}

#[tokio::test]
async fn connect_errors_fall_through() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = base_config(
        &format!("  - {{ name: dead, kind: openai_compatible, base_url: \"http://127.0.0.1:{port}/v1\" }}"),
        "  - { name: dead-chat, provider: dead, model: m }",
        "  - { name: dead-first, targets: [dead-chat, chat-a] }\n  - { name: dead-only, targets: [dead-chat] }",
    );
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("dead-first")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-route"], "chat-a");
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("dead-only")).send().await.unwrap();
    let e = error_of(r, 503).await;
    assert_eq!(e["code"], "upstream_unavailable");
}

#[tokio::test]
async fn upstream_hang_times_out_in_openai_shape() {
    let config = base_config("", "", "").replace(
        "timeouts: { first_token: 2s, idle: 2s, total: 5s }",
        "timeouts: { first_token: 300ms, idle: 300ms, total: 600ms }",
    );
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    h.set_knobs("model-a", json!({"hang": true})).await;
    let started = Instant::now();
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("chat")).send().await.unwrap();
    let e = error_of(r, 504).await;
    assert_eq!(e["type"], "timeout_error");
    assert!(started.elapsed() < Duration::from_secs(3));
    let body = stream_body("chat", None);
    let started = Instant::now();
    let r = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap();
    error_of(r, 504).await;
    assert!(started.elapsed() < Duration::from_millis(2000), "first_token deadline, not total");
}

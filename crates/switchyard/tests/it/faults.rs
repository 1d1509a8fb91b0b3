//! Fault injection (`/api/v1/faults`) end to end: refused until
//! `faults.enabled`, the platform admin's only, and each kind seen by real
//! requests — fall-through on an injected 503, a delay, a hang cut by the
//! gateway's own deadline, a stream cut short — until the rule is removed.

use super::{bin, chat_body, stream_body};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use switchyard_testkit::{base_config, eventually, Harness, ADMIN_TOKEN};

fn enabled_config() -> String {
    base_config("", "", "") + "faults: { enabled: true }\n"
}

/// Status, the deployment that answered, and the body's text.
async fn chat(h: &Harness, key: &str, body: Value) -> (u16, String, String) {
    let r = h.post("/v1/chat/completions", key).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let route = r.headers().get("x-switchyard-route").map_or("", |v| v.to_str().unwrap()).to_string();
    (status, route, r.text().await.unwrap())
}

async fn add(h: &Harness, rule: Value) -> String {
    let (status, v) = h.admin("POST", "/api/v1/faults", ADMIN_TOKEN, rule).await;
    assert_eq!(status, 201, "{v}");
    assert!(v["id"].as_str().unwrap().starts_with("flt_"), "{v}");
    v["id"].as_str().unwrap().to_string()
}

async fn remove(h: &Harness, id: &str) {
    let (status, v) = h.admin("DELETE", &format!("/api/v1/faults/{id}"), ADMIN_TOKEN, Value::Null).await;
    assert_eq!(status, 200, "{v}");
}

fn injected(metrics: &str, deployment: &str, kind: &str) -> u64 {
    let series = format!("switchyard_faults_injected_total{{deployment=\"{deployment}\",kind=\"{kind}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(series.as_str())).map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn faults_are_refused_until_enabled_and_an_error_rule_fails_over_until_removed() {
    let h = Harness::start(bin(), &base_config("", "", ""));
    let key = h.key().await;
    let rule = json!({"deployment": "chat-a", "kind": "error", "status": 503, "duration": "5m", "reason": "game day"});

    let (status, v) = h.admin("POST", "/api/v1/faults", ADMIN_TOKEN, rule.clone()).await;
    assert_eq!(status, 403, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("faults.enabled"), "{v}");

    // Enabled by the config (the file is watched).
    h.write_config(&enabled_config());
    let listed = eventually(Duration::from_secs(10), || async {
        let (status, v) = h.admin("GET", "/api/v1/faults", ADMIN_TOKEN, Value::Null).await;
        (status == 200).then_some(v)
    })
    .await
    .expect("faults.enabled reloaded");
    assert_eq!(listed["data"], json!([]));

    // The platform admin's only; bad rules name their field.
    let (status, _) = h.admin("GET", "/api/v1/faults", &key, Value::Null).await;
    assert_eq!(status, 403);
    let (status, _) = h.admin("POST", "/api/v1/faults", &key, rule.clone()).await;
    assert_eq!(status, 403);
    for (bad, param) in [
        (json!({"deployment": "nope", "kind": "hang", "duration": "5m"}), "deployment"),
        (json!({"deployment": "chat-a", "kind": "hang", "duration": "5m", "share": 2}), "share"),
        (json!({"deployment": "chat-a", "kind": "flood", "duration": "5m"}), "kind"),
        (json!({"deployment": "chat-a", "kind": "hang"}), "duration"),
        (json!({"deployment": "chat-a", "kind": "error", "status": 302, "duration": "5m"}), "status"),
    ] {
        let (status, v) = h.admin("POST", "/api/v1/faults", ADMIN_TOKEN, bad.clone()).await;
        assert_eq!((status, v["error"]["param"].as_str()), (400, Some(param)), "{bad}: {v}");
    }

    let id = add(&h, rule).await;
    let (status, v) = h.admin("GET", "/api/v1/faults", ADMIN_TOKEN, Value::Null).await;
    assert_eq!(status, 200);
    let listed = v["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{v}");
    assert_eq!(
        (&listed[0]["id"], &listed[0]["kind"], &listed[0]["status"], &listed[0]["share"]),
        (&json!(id), &json!("error"), &json!(503), &json!(1.0))
    );

    // chat-a "answers" 503: the failover route falls through to chat-b,
    // the single-deployment route fails.
    let (status, route, body) = chat(&h, &key, chat_body("failover")).await;
    assert_eq!((status, route.as_str()), (200, "chat-b"), "{body}");
    let (status, _, body) = chat(&h, &key, chat_body("chat")).await;
    assert!((500..600).contains(&status), "{status} {body}");
    assert!(body.contains(&id), "the error names the rule: {body}");
    assert!(h.sim_requests().await.iter().all(|r| r["body"]["model"] != "model-a"), "chat-a was never called");
    assert!(injected(&h.metrics().await, "chat-a", "error") >= 2);

    remove(&h, &id).await;
    let (status, route, body) = chat(&h, &key, chat_body("chat")).await;
    assert_eq!((status, route.as_str()), (200, "chat-a"), "{body}");
    let (status, v) = h.admin("DELETE", &format!("/api/v1/faults/{id}"), ADMIN_TOKEN, Value::Null).await;
    assert_eq!(status, 404, "{v}");
    let (_, v) = h.admin("GET", "/api/v1/faults", ADMIN_TOKEN, Value::Null).await;
    assert_eq!(v["data"], json!([]));

    // Both changes audited (through the batched writer: wait for them).
    for action in ["fault.add", "fault.remove"] {
        let entry = eventually(Duration::from_secs(5), || async {
            let (_, v) = h.admin("GET", &format!("/api/v1/audit?action={action}"), ADMIN_TOKEN, Value::Null).await;
            v["data"].as_array().and_then(|d| d.first().cloned())
        })
        .await
        .unwrap_or_else(|| panic!("no {action} audit entry"));
        assert_eq!(entry["target"], json!({"kind": "fault", "id": id}), "{entry}");
        assert!(entry["reason"].as_str().unwrap().contains("error 503 on chat-a"), "{entry}");
    }
}

#[tokio::test]
async fn latency_hang_and_cut_rules_show_in_requests() {
    let h = Harness::start(bin(), &enabled_config());
    let key = h.key().await;

    let id = add(&h, json!({"deployment": "chat-a", "kind": "latency", "ms": 300, "duration": "1m"})).await;
    let start = Instant::now();
    let (status, route, body) = chat(&h, &key, chat_body("chat")).await;
    assert_eq!((status, route.as_str()), (200, "chat-a"), "{body}");
    assert!(start.elapsed() >= Duration::from_millis(300), "{:?}", start.elapsed());
    remove(&h, &id).await;

    // A hang is cut by the gateway's own first_token deadline (2s in the
    // test config), then the failover route moves on.
    let id = add(&h, json!({"deployment": "chat-a", "kind": "hang", "duration": "1m"})).await;
    let start = Instant::now();
    let (status, route, body) = chat(&h, &key, chat_body("failover")).await;
    assert_eq!((status, route.as_str()), (200, "chat-b"), "{body}");
    assert!(start.elapsed() >= Duration::from_secs(2), "{:?}", start.elapsed());
    remove(&h, &id).await;

    // A stream cut after two raw chunks does not end as a complete stream:
    // the gateway reports the early end in-band (it had already answered
    // 200) and sends no `[DONE]`. A whole answer is untouched by `cut`.
    // Chunks are network reads: the simulator paces its tokens, as real
    // models do, or the whole stream may arrive as one chunk.
    h.set_knobs("model-a", json!({"answer_tokens": 8, "tokens_per_sec": 100.0})).await;
    let id = add(&h, json!({"deployment": "chat-a", "kind": "cut", "after_chunks": 2, "duration": "1m"})).await;
    let (status, _, text) = chat(&h, &key, stream_body("chat", None)).await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains("data: [DONE]"), "{text}");
    assert!(text.contains("\"error\""), "an in-band error event: {text}");
    let (status, _, body) = chat(&h, &key, chat_body("chat")).await;
    assert_eq!(status, 200, "{body}");
    remove(&h, &id).await;

    // Health probes of chat-a during the hang may count too.
    let metrics = h.metrics().await;
    assert_eq!(injected(&metrics, "chat-a", "latency"), 1);
    assert!(injected(&metrics, "chat-a", "hang") >= 1);
    assert_eq!(injected(&metrics, "chat-a", "cut"), 1);
}

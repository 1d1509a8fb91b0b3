//! The router end to end: each strategy on simulated deployments with
//! knobs (prices, latencies, loads), fallbacks, capability and context
//! checks, the classification matrix (P0/P1/P2 × L0/L1/L2, asserted on
//! what the simulator received), masking, tenant regions, and the dry run.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use switchyard_testkit::{Harness, ADMIN_TOKEN};

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

/// Three providers on the embedded simulator, one per tier; the sim's
/// model name tells which deployment a request reached.
fn config(routes: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:0" }}
storage: {{ url: "sqlite://{{dir}}/sy.db" }}
admin: {{ bootstrap_token: "{ADMIN_TOKEN}" }}
usage: {{ flush_interval: 20ms }}
reload: {{ watch: false }}
timeouts: {{ first_token: 3s, idle: 3s, total: 5s }}
simulator:
  listen: "127.0.0.1:0"
  default: {{ answer_tokens: 4 }}
providers:
  - {{ name: device, kind: openai_compatible, base_url: "sim://", tier: L0, region: eu }}
  - {{ name: onprem, kind: openai_compatible, base_url: "sim://", tier: L1, region: eu }}
  - {{ name: cloud, kind: openai_compatible, base_url: "sim://", tier: L2, region: us }}
deployments:
  - {{ name: l0, provider: device, model: m-l0 }}
  - {{ name: l1, provider: onprem, model: m-l1 }}
  - {{ name: l2, provider: cloud, model: m-l2, capabilities: [chat] }}
  - {{ name: cheap, provider: cloud, model: m-cheap, price: {{ input_per_mtok: 0.1, output_per_mtok: 0.2 }}, quality: 0.3, weight: 1 }}
  - {{ name: dear, provider: cloud, model: m-dear, price: {{ input_per_mtok: 5, output_per_mtok: 15 }}, quality: 0.9, weight: 3 }}
  - {{ name: fast, provider: cloud, model: m-fast }}
  - {{ name: slow, provider: cloud, model: m-slow }}
  - {{ name: small, provider: cloud, model: m-small, context_window: 100 }}
  - {{ name: tools, provider: cloud, model: m-tools, capabilities: [chat, tools, vision, json] }}
  - {{ name: broken, provider: cloud, model: m-broken }}
routes:
  - {{ name: tiers, targets: [l2, l1, l0] }}
  - {{ name: cloud-only, targets: [l2] }}
{routes}
"#
    )
}

async fn chat_with(
    h: &Harness,
    key: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (u16, HashMap<String, String>, Value) {
    let mut req = h.post("/v1/chat/completions", key).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn ask(route: &str, text: &str) -> Value {
    json!({"model": route, "messages": [{"role": "user", "content": text}]})
}

/// The deployment that answered.
async fn routed(h: &Harness, key: &str, route: &str) -> String {
    let (status, headers, body) = chat_with(h, key, ask(route, "hello"), &[]).await;
    assert_eq!(status, 200, "{body}");
    headers["x-switchyard-route"].clone()
}

fn models_seen(requests: &[Value]) -> Vec<String> {
    requests.iter().map(|r| r["model"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test]
async fn strategies_rank_by_cost_quality_weight_and_score() {
    let routes = r#"
  - { name: by-cost, strategy: cost, targets: [dear, cheap] }
  - { name: by-quality, strategy: quality, targets: [cheap, dear] }
  - { name: by-weight, strategy: weighted, targets: [cheap, dear] }
  - { name: score-capability, strategy: score, score_weights: { security: 0, capability: 1, latency: 0, cost: 0 }, targets: [cheap, dear] }
  - { name: score-cost, strategy: score, score_weights: { security: 0, capability: 0, latency: 0, cost: 1 }, targets: [dear, cheap] }
"#;
    let h = Harness::start(&bin(), &config(routes));
    let key = h.key().await;
    assert_eq!(routed(&h, &key, "by-cost").await, "cheap");
    assert_eq!(routed(&h, &key, "by-quality").await, "dear");
    assert_eq!(routed(&h, &key, "score-capability").await, "dear");
    assert_eq!(routed(&h, &key, "score-cost").await, "cheap");
    // Smooth weighted round robin, 1:3: every window of 4 picks holds one
    // `cheap` and three `dear`, interleaved.
    let mut picks = Vec::new();
    for _ in 0..40 {
        picks.push(routed(&h, &key, "by-weight").await);
    }
    for window in picks.chunks(4) {
        assert_eq!(window.iter().filter(|p| *p == "cheap").count(), 1, "{picks:?}");
    }
    assert_eq!(&picks[..4], ["dear", "cheap", "dear", "dear"], "{picks:?}");
    let metrics = h.metrics().await;
    assert!(
        metrics.contains(r#"switchyard_route_decisions_total{route="by-weight",strategy="weighted",classification="P2",outcome="routed"} 40"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn latency_prefers_the_faster_deployment_once_both_are_measured() {
    let routes = "  - { name: by-latency, strategy: latency, targets: [slow, fast] }\n";
    let h = Harness::start(&bin(), &config(routes));
    h.set_knobs("m-slow", json!({"latency_ms": 120, "answer_tokens": 4})).await;
    h.set_knobs("m-fast", json!({"latency_ms": 5, "answer_tokens": 4})).await;
    let key = h.key().await;
    // Both untried: configured order; then the untried one; then the faster.
    assert_eq!(routed(&h, &key, "by-latency").await, "slow");
    assert_eq!(routed(&h, &key, "by-latency").await, "fast");
    for _ in 0..10 {
        assert_eq!(routed(&h, &key, "by-latency").await, "fast");
    }
    // The dry run shows the live figures it ranked by.
    let plan = dry_run(&h, &key, ask("by-latency", "hi"), &[]).await;
    assert_eq!(plan["plan"], json!(["fast", "slow"]));
    let slow = &plan["candidates"][1]["live"];
    assert_eq!(slow["samples"], 1);
    assert!(slow["latency_ewma_ms"].as_f64().unwrap() > 100.0, "{plan}");
}

#[tokio::test]
async fn least_busy_avoids_the_deployment_with_requests_in_flight() {
    let routes = "  - { name: by-load, strategy: least_busy, targets: [slow, fast] }\n";
    let h = std::sync::Arc::new(Harness::start(&bin(), &config(routes)));
    h.set_knobs("m-slow", json!({"latency_ms": 1500, "answer_tokens": 4})).await;
    let key = h.key().await;
    let (h2, k2) = (h.clone(), key.clone());
    let held = tokio::spawn(async move { routed(&h2, &k2, "by-load").await });
    // Wait until the first request is at the simulator.
    let arrived = switchyard_testkit::eventually(Duration::from_secs(5), || async {
        models_seen(&h.sim_requests().await).contains(&"m-slow".to_string()).then_some(())
    });
    assert!(arrived.await.is_some());
    assert_eq!(routed(&h, &key, "by-load").await, "fast", "slow has one in flight");
    assert_eq!(held.await.unwrap(), "slow");
    // Nothing in flight again: configured order.
    assert_eq!(routed(&h, &key, "by-load").await, "slow");
}

#[tokio::test]
async fn fallbacks_capabilities_and_context_windows() {
    let routes = r#"
  - { name: with-fallback, targets: [broken], fallbacks: [fast] }
  - { name: mixed, targets: [l2, tools] }
  - { name: windows, targets: [small, fast] }
  - { name: small-only, targets: [small] }
"#;
    let h = Harness::start(&bin(), &config(routes));
    h.set_knobs("m-broken", json!({"error_rate": 1.0, "error_status": 500})).await;
    let key = h.key().await;
    let (status, headers, _) = chat_with(&h, &key, ask("with-fallback", "hi"), &[]).await;
    assert_eq!(
        (status, headers["x-switchyard-route"].as_str(), headers["x-switchyard-attempts"].as_str()),
        (200, "fast", "2")
    );

    let mut with_tools = ask("mixed", "weather?");
    with_tools["tools"] =
        json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]);
    let (status, headers, body) = chat_with(&h, &key, with_tools, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-switchyard-route"], "tools");
    assert_eq!(routed(&h, &key, "mixed").await, "l2", "a plain request keeps the configured order");

    // ~200 tokens of prompt: over `small`'s window of 100.
    let long = ask("windows", &"word ".repeat(160));
    let (status, headers, _) = chat_with(&h, &key, long.clone(), &[]).await;
    assert_eq!((status, headers["x-switchyard-route"].as_str()), (200, "fast"));
    let mut only_small = long;
    only_small["model"] = json!("small-only");
    let (status, _, body) = chat_with(&h, &key, only_small, &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("context window 100"), "{body}");
}

#[tokio::test]
async fn classification_matrix_never_sends_p0_to_the_cloud() {
    let h = Harness::start(&bin(), &config(""));
    let key = h.key().await;
    let email = "Write to alice.smith@example.com about it";
    // (header, text) → the deployment that answers `tiers: [l2, l1, l0]`.
    let cases = [
        (Some("P2"), "hello", "l2"),
        (Some("P1"), "hello", "l2"),
        (Some("P0"), "hello", "l1"),
        (None, "hello", "l2"),
        (None, email, "l2"), // detected: P1, masked on L2
        (Some("P0"), email, "l1"),
    ];
    for (header, text, expected) in cases {
        let headers: Vec<(&str, &str)> = header.map(|c| ("x-switchyard-classification", c)).into_iter().collect();
        let (status, got, body) = chat_with(&h, &key, ask("tiers", text), &headers).await;
        assert_eq!(status, 200, "{header:?} {text}: {body}");
        assert_eq!(got["x-switchyard-route"], expected, "{header:?} {text}");
    }
    // What reached the cloud: never the P0 requests, and the e-mail only masked.
    let cloud: Vec<Value> = h.sim_requests().await.into_iter().filter(|r| r["model"] == "m-l2").collect();
    assert_eq!(cloud.len(), 4);
    let bodies: Vec<String> = cloud.iter().map(|r| r["body"].to_string()).collect();
    assert!(bodies.iter().all(|b| !b.contains("alice.smith@example.com")), "{bodies:?}");
    assert!(bodies.iter().any(|b| b.contains("[EMAIL_1]")), "{bodies:?}");

    // Every in-tier deployment down: a P0 request fails (the last upstream
    // error, 502) after its retries; the cloud never sees it.
    h.set_knobs("m-l1", json!({"error_rate": 1.0, "error_status": 503})).await;
    h.set_knobs("m-l0", json!({"error_rate": 1.0, "error_status": 503})).await;
    h.clear_sim_requests().await;
    let (status, headers, body) =
        chat_with(&h, &key, ask("tiers", "hello"), &[("x-switchyard-classification", "P0")]).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(headers["x-switchyard-attempts"], "6", "two deployments, three rounds");
    assert_eq!(models_seen(&h.sim_requests().await), ["m-l1", "m-l0", "m-l1", "m-l0", "m-l1", "m-l0"]);

    // A route with no in-tier deployment: refused by policy, audited.
    let (status, _, body) =
        chat_with(&h, &key, ask("cloud-only", "hello"), &[("x-switchyard-classification", "P0")]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "data_policy");
    assert!(body["error"]["message"].as_str().unwrap().contains("l2 (tier L2: P0 data stays on L0/L1)"), "{body}");
    assert!(!models_seen(&h.sim_requests().await).contains(&"m-l2".to_string()));
    let audited = switchyard_testkit::eventually(Duration::from_secs(5), || async {
        let (_, audit) = h.admin("GET", "/api/v1/audit?action=request.refused", ADMIN_TOKEN, Value::Null).await;
        audit.to_string().contains("P0 data stays on L0/L1").then_some(())
    });
    assert!(audited.await.is_some(), "no audit entry for the refusal");

    // A bad header is the client's error.
    let (status, _, body) =
        chat_with(&h, &key, ask("tiers", "hello"), &[("x-switchyard-classification", "secret")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "x-switchyard-classification");

    // Records say what was decided.
    let records = h.wait_usage(10).await;
    let p0 = records.iter().find(|r| r.route_reason.as_deref().is_some_and(|w| w.contains("P0 (header)")));
    assert!(p0.is_some(), "{records:?}\n{}", h.stderr());
    let detected = records.iter().find(|r| r.route_reason.as_deref().is_some_and(|w| w.contains("P1 (detected)")));
    assert!(detected.is_some_and(|r| r.route_reason.as_deref().unwrap().ends_with("masked on L2")), "{records:?}");
}

#[tokio::test]
async fn key_and_tenant_defaults_and_tenant_regions() {
    let h = Harness::start(&bin(), &config(""));
    let p0_key = h.create_key(json!({"name": "secret-work", "classification": "P0"})).await;
    assert_eq!(routed(&h, &p0_key, "tiers").await, "l1");
    // The header still decides for a request that sends it.
    let (_, headers, _) = chat_with(&h, &p0_key, ask("tiers", "hi"), &[("x-switchyard-classification", "P2")]).await;
    assert_eq!(headers["x-switchyard-route"], "l2");

    let (status, tenant) =
        h.admin("PATCH", "/api/v1/tenants/default", ADMIN_TOKEN, json!({"allowed_regions": ["eu"]})).await;
    assert_eq!(status, 200, "{tenant}");
    let key = h.key().await;
    assert_eq!(routed(&h, &key, "tiers").await, "l1", "l2 is in region us");
    let (status, _, body) = chat_with(&h, &key, ask("cloud-only", "hi"), &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("region us"), "{body}");
    let bad = h.admin("PATCH", "/api/v1/tenants/default", ADMIN_TOKEN, json!({"classification": "P9"})).await;
    assert_eq!(bad.0, 400, "{}", bad.1);
}

async fn dry_run(h: &Harness, key: &str, body: Value, headers: &[(&str, &str)]) -> Value {
    let mut req = h.post("/api/v1/route", key).json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn dry_run_explains_without_calling_anything() {
    let routes = "  - { name: scored, strategy: score, targets: [dear, cheap, l1] }\n";
    let h = Harness::start(&bin(), &config(routes));
    let key = h.key().await;
    let body = ask("scored", "my card is 4111 1111 1111 1111");
    let plan = dry_run(&h, &key, body, &[]).await;
    assert_eq!(plan["classification"], "P1");
    assert_eq!(plan["classified_by"], "detected");
    assert_eq!(plan["eligible"], 3);
    let first = &plan["candidates"][0];
    // l1 takes the data as it is (security 1); the cloud ones only masked.
    assert_eq!(first["deployment"], "l1", "{plan}");
    assert_eq!(first["score"]["security"], 1.0);
    let dear = plan["candidates"].as_array().unwrap().iter().find(|c| c["deployment"] == "dear").unwrap();
    assert_eq!(dear["masked"], true);
    assert_eq!(dear["score"]["security"], 0.5);
    assert!(dear["score"]["cost"].as_f64().unwrap() < 0.1, "{dear}");

    let refused = dry_run(&h, &key, ask("cloud-only", "hi"), &[("x-switchyard-classification", "P0")]).await;
    assert_eq!(refused["eligible"], 0);
    assert_eq!(refused["refusal"]["status"], 403);
    assert_eq!(refused["candidates"][0]["why_not"], "tier L2: P0 data stays on L0/L1");
    assert!(h.sim_requests().await.is_empty(), "the dry run called an upstream");

    let unknown = h.post("/api/v1/route", &key).json(&ask("nope", "hi")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    let anonymous = h.post("/api/v1/route", "sk-wrong").json(&ask("tiers", "hi")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// What a stream's client saw as content, concatenated.
async fn streamed_text(r: reqwest::Response) -> String {
    let text = r.text().await.unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else { continue };
        if let Ok(v) = serde_json::from_str::<Value>(data) {
            if let Some(s) = v.pointer("/choices/0/delta/content").and_then(Value::as_str) {
                out.push_str(s);
            }
        }
    }
    assert!(text.contains("data: [DONE]"), "{text}");
    out
}

#[tokio::test]
async fn masked_requests_reach_the_cloud_masked_and_answers_come_back_whole() {
    let h = Harness::start(&bin(), &config(""));
    // The cloud echoes what it received: the placeholders.
    h.set_knobs("m-l2", json!({"echo": true})).await;
    let key = h.key().await;
    let text = "Call 13812345678 or mail \"bob@example.com\", card 4111 1111 1111 1111";
    let (status, headers, body) = chat_with(&h, &key, ask("cloud-only", text), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-switchyard-route"], "l2");
    assert_eq!(body["choices"][0]["message"]["content"], text, "originals restored");
    let sent = h.sim_requests().await[0]["body"]["messages"][0]["content"].as_str().unwrap().to_string();
    assert_eq!(sent, "Call [PHONE_1] or mail \"[EMAIL_1]\", card [CARD_1]");

    // Streamed: placeholders cut across chunks are restored too.
    let mut streaming = ask("cloud-only", text);
    streaming["stream"] = json!(true);
    let r = h.post("/v1/chat/completions", &key).json(&streaming).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(streamed_text(r).await, text);

    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"switchyard_pii_masked_total{kind="email"} 2"#), "{metrics}");
    let records = h.wait_usage(2).await;
    assert!(records.iter().all(|r| r.classification.as_deref() == Some("P1")), "{records:?}");
}

#[tokio::test]
async fn restore_off_leaves_placeholders_and_detection_outranks_a_p2_header() {
    let config =
        config("").replace("reload: { watch: false }", "reload: { watch: false }\nclassification: { restore: false }");
    let h = Harness::start(&bin(), &config);
    h.set_knobs("m-l2", json!({"echo": true})).await;
    let key = h.key().await;
    let (status, _, body) = chat_with(&h, &key, ask("cloud-only", "mail bob@example.com"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], "mail [EMAIL_1]");
    // Detection raises P2 to P1 whoever said P2, the header included.
    let (_, _, body) =
        chat_with(&h, &key, ask("cloud-only", "mail bob@example.com"), &[("x-switchyard-classification", "P2")]).await;
    assert_eq!(body["choices"][0]["message"]["content"], "mail [EMAIL_1]");
}

#[tokio::test]
async fn a_canary_split_is_sticky_per_user_with_groups_and_scenarios() {
    let routes = r#"
  - name: rollout
    targets: [fast]
    split:
      sticky: user
      arms: [{ name: canary, targets: [slow], percent: 30 }]
      groups: { internal: { arm: canary, subjects: [alice] }, holdout: { arm: stable, subjects: [bob] } }
      scenarios: { new-ui: canary }
"#;
    let h = Harness::start(&bin(), &config(routes));
    let key = h.key().await;
    let mut canary = 0;
    for u in 0..150 {
        let user = format!("user-{u}");
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (status, headers, body) =
                chat_with(&h, &key, ask("rollout", "hi"), &[("x-switchyard-user", &user)]).await;
            assert_eq!(status, 200, "{body}");
            seen.push(headers["x-switchyard-route"].clone());
        }
        assert_eq!(seen[0], seen[1], "{user} switched arms");
        canary += usize::from(seen[0] == "slow");
    }
    // 30% of 150 users: 45, give or take sampling (the ±2% check over
    // 10,000 users is routing::split's unit test).
    assert!((30..=60).contains(&canary), "{canary} of 150 on the canary");
    for _ in 0..3 {
        let (_, headers, _) = chat_with(&h, &key, ask("rollout", "hi"), &[("x-switchyard-user", "alice")]).await;
        assert_eq!(headers["x-switchyard-route"], "slow", "alice is pinned to the canary");
        let (_, headers, _) = chat_with(&h, &key, ask("rollout", "hi"), &[("x-switchyard-user", "bob")]).await;
        assert_eq!(headers["x-switchyard-route"], "fast", "bob is held out");
    }
    let (_, headers, _) =
        chat_with(&h, &key, ask("rollout", "hi"), &[("x-switchyard-user", "bob"), ("x-switchyard-scenario", "new-ui")])
            .await;
    assert_eq!(headers["x-switchyard-route"], "slow", "a scenario outranks a group");

    let plan = dry_run(&h, &key, ask("rollout", "hi"), &[("x-switchyard-user", "alice")]).await;
    assert_eq!(plan["arm"], json!({"name": "canary", "chosen_by": "group", "bucket": null}), "{plan}");
    let metrics = h.metrics().await;
    let arm_count = |arm: &str| {
        let line = format!("switchyard_route_arm_requests_total{{route=\"rollout\",arm=\"{arm}\",status=\"200\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&line)).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0)
    };
    assert_eq!(arm_count("canary") + arm_count("stable"), 307, "{metrics}");
    assert!(
        metrics.contains(r#"switchyard_route_arm_duration_seconds_count{route="rollout",arm="canary"}"#),
        "{metrics}"
    );
    // Every request's record, alice's (the last ones) included.
    let records = h.wait_usage(307).await;
    assert_eq!(records.len(), 307);
    assert!(records.iter().any(|r| r.route_reason.as_deref().is_some_and(|w| w.ends_with("; arm canary (group)"))));
}

#[tokio::test]
async fn task_routes_send_each_request_to_the_route_of_its_task() {
    let routes = r#"
  - { name: coder, targets: [tools] }
  - { name: thinker, targets: [dear] }
  - { name: small, targets: [cheap] }
  - name: auto
    tasks:
      rules:
        - { task: code, when: { code: true } }
        - { task: reasoning, when: { keywords: ["step by step"] } }
      routes: { code: coder, reasoning: thinker, chat: small }
      default: chat
"#;
    let h = Harness::start(&bin(), &config(routes));
    // Allowed `auto` only: the routes its tasks name are its business.
    let key = h.create_key(json!({"name": "auto-only", "allowed_routes": ["auto"]})).await;
    let cases = [
        ("hello", None, "cheap"),
        ("fix it:\n```\nprint(1)\n```", None, "tools"),
        ("Think it through Step By Step", None, "dear"),
        ("hello", Some("reasoning"), "dear"),
        ("hello", Some("no-such-task"), "cheap"),
    ];
    for (text, task, expected) in cases {
        let headers: Vec<(&str, &str)> = task.map(|t| ("x-switchyard-task", t)).into_iter().collect();
        let (status, got, body) = chat_with(&h, &key, ask("auto", text), &headers).await;
        assert_eq!(status, 200, "{text}: {body}");
        assert_eq!(got["x-switchyard-route"], expected, "{text} {task:?}");
    }
    let (status, _, _) = chat_with(&h, &key, ask("small", "hello"), &[]).await;
    assert_eq!(status, 404, "the key may not name the task routes itself");

    let plan = dry_run(&h, &key, ask("auto", "step by step please"), &[]).await;
    assert_eq!(plan["task"], json!({"name": "reasoning", "chosen_by": "rule 2", "via": "auto"}), "{plan}");
    assert_eq!(plan["route"], "thinker");
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"switchyard_route_tasks_total{route="auto",task="reasoning"} 2"#), "{metrics}");
    let records = h.wait_usage(6).await;
    let code = records.iter().find(|r| r.deployment.as_deref() == Some("tools")).unwrap();
    assert_eq!(code.route.as_deref(), Some("coder"));
    assert!(code.route_reason.as_deref().unwrap().starts_with("task code via auto (rule 1); priority;"), "{code:?}");
}

#[tokio::test]
async fn nodes_serve_while_their_heartbeats_arrive() {
    let extra = r#"
  - { name: on-node, targets: [gpu], fallbacks: [fast] }
  - { name: by-load, strategy: least_busy, targets: [gpu, gpu2] }
"#;
    // The alert webhook: silences arrive there as `node.silent` events.
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let got = events.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(event): axum::Json<Value>| async move {
            got.lock().unwrap().push(event);
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(std::future::IntoFuture::into_future(axum::serve(listener, hook)));
    let nodes_and_alerts = format!(
        "reload: {{ watch: false }}\nnodes: {{ token: node-secret, timeout: 1s }}\n\
         alerts: {{ webhooks: [{{ url: \"{hook_url}\" }}], backoff: 10ms }}"
    );
    let config = config(extra)
        .replace("reload: { watch: false }", &nodes_and_alerts)
        .replace(
            "  - { name: broken, provider: cloud, model: m-broken }",
            "  - { name: broken, provider: cloud, model: m-broken }\n  - { name: gpu, provider: onprem, model: m-gpu, node: gpu-01 }\n  - { name: gpu2, provider: onprem, model: m-gpu2, node: gpu-02 }",
        );
    let h = Harness::start(&bin(), &config);
    let key = h.key().await;
    let beat = |body: Value, token: &'static str| {
        let h = &h;
        async move {
            let r = h
                .http
                .post(format!("{}/api/v1/nodes/heartbeat", h.url))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Never seen: out of routing, and the dry run says why.
    assert_eq!(routed(&h, &key, "on-node").await, "fast");
    let plan = dry_run(&h, &key, ask("on-node", "hi"), &[]).await;
    assert_eq!(plan["candidates"][1]["why_not"], "node gpu-01 has sent no heartbeat within nodes.timeout", "{plan}");

    assert_eq!(beat(json!({"node": "gpu-01"}), "wrong").await.0, 401);
    let (status, body) = beat(json!({"node": "gpu 01"}), "node-secret").await;
    assert_eq!((status, body["error"]["param"].as_str()), (400, Some("node")), "{body}");
    let (status, body) =
        beat(json!({"node": "gpu-01", "tier": "L1", "in_flight": 40, "latency_ms": 120.5}), "node-secret").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deployments"], json!(["gpu"]));
    assert_eq!(routed(&h, &key, "on-node").await, "gpu");

    // Node load feeds least_busy: gpu-01 reports 40 in flight.
    assert_eq!(beat(json!({"node": "gpu-02", "in_flight": 0}), "node-secret").await.0, 200);
    assert_eq!(routed(&h, &key, "by-load").await, "gpu2");

    let (status, list) = h.admin("GET", "/api/v1/nodes", ADMIN_TOKEN, Value::Null).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["data"][0]["node"], "gpu-01");
    assert_eq!(list["data"][0]["alive"], true);
    assert_eq!(h.admin("GET", "/api/v1/nodes", &key, Value::Null).await.0, 403);

    // Silent past the timeout: out of routing, counted and audited.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(routed(&h, &key, "on-node").await, "fast");
    let audited = switchyard_testkit::eventually(Duration::from_secs(5), || async {
        let (_, audit) = h.admin("GET", "/api/v1/audit?action=node.silent", ADMIN_TOKEN, Value::Null).await;
        audit.to_string().contains("gpu-01").then_some(())
    });
    assert!(audited.await.is_some(), "no node.silent audit entry");
    let metrics = h.metrics().await;
    assert!(metrics.contains("switchyard_node_silences_total 2"), "{metrics}");
    // …and sent to the alert webhook, one event per node.
    let sent = switchyard_testkit::eventually(Duration::from_secs(5), || async {
        let got = events.lock().unwrap().clone();
        (got.len() >= 2).then_some(got)
    });
    let mut sent = sent.await.expect("no node.silent events at the webhook");
    sent.sort_by_key(|e| e["subject"].to_string());
    let subjects: Vec<&Value> = sent.iter().map(|e| &e["subject"]).collect();
    assert_eq!(subjects, [&json!("node:gpu-01"), &json!("node:gpu-02")], "{sent:?}");
    let gpu1 = &sent[0];
    assert_eq!(gpu1["event"], "node.silent", "{gpu1}");
    assert!(gpu1["alert_id"].as_str().unwrap().starts_with("alr_"), "{gpu1}");
    assert_eq!((&gpu1["details"]["node"], &gpu1["details"]["deployments"]), (&json!("gpu-01"), &json!(["gpu"])));
    assert_eq!(gpu1["details"]["timeout_s"], json!(1.0));
    assert!(gpu1["details"]["silent_for_s"].as_f64().unwrap() > 1.0, "{gpu1}");
    assert!(gpu1["message"].as_str().unwrap().starts_with("Compute node gpu-01 has sent no heartbeat"), "{gpu1}");
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"switchyard_alert_events_total{event="node.silent",result="fired"} 2"#), "{metrics}");
}

#[tokio::test]
async fn config_versions_record_reloads_and_roll_back_for_the_next_request() {
    use switchyard_testkit::base_config;
    let v1 = base_config("", "", "");
    let h = Harness::start(&bin(), &v1);
    let key = h.key().await;
    assert_eq!(routed(&h, &key, "chat").await, "chat-a");
    // Version 2: the file changes (route chat to chat-b), reloaded by polling.
    let v2 = v1.replace("  - { name: chat, targets: [chat-a] }", "  - { name: chat, targets: [chat-b] }");
    assert_ne!(v1, v2);
    h.write_config(&v2);
    let reloaded = switchyard_testkit::eventually(Duration::from_secs(5), || async {
        (routed(&h, &key, "chat").await == "chat-b").then_some(())
    });
    assert!(reloaded.await.is_some(), "{}", h.stderr());
    let listed = switchyard_testkit::eventually(Duration::from_secs(5), || async {
        let (_, list) = h.admin("GET", "/api/v1/config/versions", ADMIN_TOKEN, Value::Null).await;
        (list["data"].as_array().map_or(0, Vec::len) == 2).then_some(list)
    });
    let list = listed.await.expect("two versions");
    assert_eq!(list["data"][0]["version"], 2);
    assert_eq!(list["data"][0]["active"], true);
    assert_eq!(
        (list["data"][0]["lines_added"].as_u64(), list["data"][0]["lines_removed"].as_u64()),
        (Some(1), Some(1))
    );
    let (_, shown) = h.admin("GET", "/api/v1/config/versions/2", ADMIN_TOKEN, Value::Null).await;
    let diff: Vec<&str> =
        shown["diff"].as_array().unwrap().iter().filter_map(Value::as_str).filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(diff, ["-   - { name: chat, targets: [chat-a] }", "+   - { name: chat, targets: [chat-b] }"]);
    assert!(!shown["text"].as_str().unwrap().contains(ADMIN_TOKEN), "a literal secret is redacted");

    // Roll back to version 1: the very next request sees it.
    let (status, body) = h.admin("POST", "/api/v1/config/rollback", ADMIN_TOKEN, json!({"version": 1})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"version": 3, "restored": 1}));
    assert_eq!(routed(&h, &key, "chat").await, "chat-a");
    let (_, v3) = h.admin("GET", "/api/v1/config/versions/3", ADMIN_TOKEN, Value::Null).await;
    let (_, v1_shown) = h.admin("GET", "/api/v1/config/versions/1", ADMIN_TOKEN, Value::Null).await;
    assert_eq!(v3["text"], v1_shown["text"], "exactly the earlier version");
    assert_eq!(v3["source"], "rollback");

    // One route back: chat as it was before the current definition.
    let (status, body) = h.admin("POST", "/api/v1/models/chat/rollback", ADMIN_TOKEN, Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restored_from"], 2);
    assert_eq!(routed(&h, &key, "chat").await, "chat-b");
    assert_eq!(h.admin("POST", "/api/v1/models/nope/rollback", ADMIN_TOKEN, Value::Null).await.0, 404);
    assert_eq!(h.admin("POST", "/api/v1/config/rollback", ADMIN_TOKEN, json!({"version": 99})).await.0, 404);
    assert_eq!(h.admin("POST", "/api/v1/config/rollback", ADMIN_TOKEN, json!({"v": 1})).await.0, 400);
    assert_eq!(h.admin("GET", "/api/v1/config/versions", &key, Value::Null).await.0, 403);
    let audited = switchyard_testkit::eventually(Duration::from_secs(5), || async {
        let (_, audit) = h.admin("GET", "/api/v1/audit?action=config.rollback", ADMIN_TOKEN, Value::Null).await;
        audit.to_string().contains("to version 1").then_some(())
    });
    assert!(audited.await.is_some(), "no config.rollback audit entry");
}

#[tokio::test]
async fn cascades_escalate_whole_answers_and_bill_each_attempt() {
    let routes = r#"
  - { name: cheap-first, strategy: cost, targets: [dear, cheap], cascade: { on: [length, empty], require: "ANSWER" } }
"#;
    let h = Harness::start(&bin(), &config(routes));
    // The cheap model rambles (cut by max_tokens); the dear one echoes.
    h.set_knobs("m-cheap", json!({"answer_tokens": 40})).await;
    h.set_knobs("m-dear", json!({"echo": true})).await;
    let key = h.key().await;
    let mut body = ask("cheap-first", "say ANSWER");
    body["max_tokens"] = json!(10);
    let (status, headers, answer) = chat_with(&h, &key, body.clone(), &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!((headers["x-switchyard-route"].as_str(), headers["x-switchyard-attempts"].as_str()), ("dear", "2"));
    assert_eq!(answer["choices"][0]["message"]["content"], "say ANSWER");
    // Not cut, but missing the required text: escalated by the check.
    h.set_knobs("m-cheap", json!({"answer_tokens": 3})).await;
    let (_, headers, _) = chat_with(&h, &key, body.clone(), &[]).await;
    assert_eq!(headers["x-switchyard-route"], "dear");
    // Streams are not cascaded: the cheap one answers.
    body["stream"] = json!(true);
    let r = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap();
    assert_eq!(r.headers()["x-switchyard-route"], "cheap");
    let _ = r.text().await;

    let metrics = h.metrics().await;
    assert!(
        metrics.contains(r#"switchyard_cascade_escalations_total{route="cheap-first",reason="length"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"switchyard_cascade_escalations_total{route="cheap-first",reason="check"} 1"#),
        "{metrics}"
    );
    let records = h.wait_usage(5).await;
    let escalated: Vec<_> = records.iter().filter(|r| !r.is_final).collect();
    assert_eq!(escalated.len(), 2, "{records:?}");
    assert_eq!(escalated[0].error_kind.as_deref(), Some("escalated_length"));
    assert_eq!(escalated[0].deployment.as_deref(), Some("cheap"));
    assert!(
        escalated.iter().all(|r| r.cost_nanos.unwrap_or(0) > 0 && r.output_tokens.unwrap_or(0) > 0),
        "{escalated:?}"
    );
}

/// The arm a rollout has now (`None`: gone), from `GET /api/v1/rollouts`.
async fn rollout(h: &Harness, arm: &str) -> Option<Value> {
    let (status, list) = h.admin("GET", "/api/v1/rollouts", ADMIN_TOKEN, Value::Null).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().iter().find(|a| a["arm"] == arm).cloned()
}

#[tokio::test]
async fn rollouts_step_on_schedule_roll_back_gradually_trip_on_errors_and_survive_a_restart() {
    use switchyard_testkit::{base_config, eventually};
    let mut h = Harness::start(&bin(), &base_config("", "", ""));
    let key = h.key().await;
    let post = |path: &'static str, body: Value| {
        let h = &h;
        async move { h.admin("POST", path, ADMIN_TOKEN, body).await }
    };
    // Refusals change nothing.
    let bad = [
        (json!({"route": "nope", "targets": ["chat-b"], "percent": 5}), 404),
        (json!({"route": "chat", "targets": ["no-such"], "percent": 5}), 400),
        (json!({"route": "chat", "targets": ["chat-b"]}), 400),
        (json!({"route": "chat", "targets": ["chat-b"], "percent": 5, "colour": 1}), 400),
        (json!({"route": "chat", "targets": ["chat-b"], "percent": 5, "every": "fast"}), 400),
    ];
    for (body, status) in bad {
        let (got, answer) = post("/api/v1/rollouts", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
    }
    assert_eq!(h.admin("POST", "/api/v1/rollouts", &key, json!({})).await.0, 403);
    assert!(rollout(&h, "canary").await.is_none());

    // 0% now, 100% a second later, by the schedule.
    let (status, made) =
        post("/api/v1/rollouts", json!({"route": "chat", "targets": ["chat-b"], "steps": [0, 100], "every": "1s"}))
            .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (made["rollout"]["percent"].as_f64(), made["rollout"]["rollout"]["steps"].clone()),
        (Some(0.0), json!([100.0]))
    );
    assert_eq!(routed(&h, &key, "chat").await, "chat-a");
    assert_eq!(post("/api/v1/rollouts", json!({"route": "chat", "targets": ["chat-b"], "percent": 1})).await.0, 409);
    let stepped = eventually(Duration::from_secs(6), || async {
        (rollout(&h, "canary").await?["percent"].as_f64() == Some(100.0)).then_some(())
    });
    assert!(stepped.await.is_some(), "{}", h.stderr());
    assert_eq!(routed(&h, &key, "chat").await, "chat-b", "the next request sees the step");
    let (_, versions) = h.admin("GET", "/api/v1/config/versions", ADMIN_TOKEN, Value::Null).await;
    let newest = &versions["data"][0];
    assert_eq!((newest["source"].as_str(), newest["actor"].as_str()), (Some("rollout"), Some("system")), "{versions}");

    // Gradual rollback: half of the arm's traffic back now, the rest a second later.
    let (status, back) =
        post("/api/v1/rollouts/chat/canary/rollback", json!({"steps": [50, 100], "every": "1s"})).await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["rollout"]["percent"].as_f64(), Some(50.0));
    let gone = eventually(Duration::from_secs(6), || async { rollout(&h, "canary").await.is_none().then_some(()) });
    assert!(gone.await.is_some());
    assert_eq!(routed(&h, &key, "chat").await, "chat-a");

    // By hand: advance, pause, resume, promote.
    assert_eq!(
        post("/api/v1/rollouts", json!({"route": "chat", "targets": ["chat-b"], "percent": 0, "steps": [10]})).await.0,
        201
    );
    let (_, moved) = post("/api/v1/rollouts/chat/canary/advance", Value::Null).await;
    assert_eq!(moved["rollout"]["percent"].as_f64(), Some(10.0), "{moved}");
    assert_eq!(post("/api/v1/rollouts/chat/canary/advance", Value::Null).await.0, 409, "no step left");
    assert_eq!(post("/api/v1/rollouts/chat/canary/pause", Value::Null).await.0, 200);
    assert_eq!(post("/api/v1/rollouts/chat/canary/pause", Value::Null).await.0, 409);
    assert_eq!(post("/api/v1/rollouts/chat/canary/resume", Value::Null).await.0, 200);
    assert_eq!(post("/api/v1/rollouts/chat/canary/jump", Value::Null).await.0, 404);
    assert_eq!(post("/api/v1/rollouts/chat/other/pause", Value::Null).await.0, 404);
    let (status, promoted) = post("/api/v1/rollouts/chat/canary/promote", Value::Null).await;
    assert_eq!((status, promoted["rollout"].clone()), (200, Value::Null), "{promoted}");
    assert_eq!(routed(&h, &key, "chat").await, "chat-b");

    // A restart with the file unchanged runs the newest version, not the file.
    h.restart(&bin());
    assert_eq!(routed(&h, &key, "chat").await, "chat-b", "{}", h.stderr());

    // The error guard: a canary failing every request is rolled back by itself.
    let body = json!({"route": "chat", "arm": "risky", "targets": ["chat-a"], "percent": 100,
                      "max_error_rate": 0.5, "min_requests": 3, "on_errors": "rollback"});
    assert_eq!(h.admin("POST", "/api/v1/rollouts", ADMIN_TOKEN, body).await.0, 201);
    h.set_knobs("model-a", json!({"error_rate": 1.0, "error_status": 500})).await;
    // Three requests fail: two by their attempts (until chat-a's breaker
    // opens), the third refused with its arm's only deployment down.
    for _ in 0..3 {
        let (status, _, _) = chat_with(&h, &key, ask("chat", "hi"), &[]).await;
        assert!(status >= 500, "{status}");
    }
    let tripped = eventually(Duration::from_secs(5), || async { rollout(&h, "risky").await.is_none().then_some(()) });
    assert!(tripped.await.is_some(), "{}", h.stderr());
    h.set_knobs("model-a", json!({"error_rate": 0.0})).await;
    let audited = eventually(Duration::from_secs(5), || async {
        let (_, audit) = h.admin("GET", "/api/v1/audit?action=config.rollout", ADMIN_TOKEN, Value::Null).await;
        audit.to_string().contains("chat/risky: rolled back: 3 of 3 requests failed").then_some(audit)
    });
    assert!(audited.await.is_some(), "no audit entry for the guard");
}

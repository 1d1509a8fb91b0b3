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

/// One row of the game-day table (`bench/gameday.sh` collects them): when
/// `SWITCHYARD_GAMEDAY_OUT` names a directory, the scenario's figures are
/// written there as one JSON file. Failovers and breaker opens are read
/// from the gateway's metrics.
async fn row(
    h: &Harness,
    scenario: &str,
    requests: usize,
    failures: usize,
    detect: Option<Duration>,
    recover: Option<Duration>,
    note: &str,
) {
    let Ok(dir) = std::env::var("SWITCHYARD_GAMEDAY_OUT") else { return };
    let metrics = h.metrics().await;
    let total = |name: &str, filter: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(filter))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
    let row = json!({
        "scenario": scenario, "requests": requests, "failures": failures,
        "failovers": total("switchyard_failovers_total", ""),
        "breaker_opens": total("switchyard_breaker_transitions_total", "to=\"open\""),
        "detect_ms": ms(detect), "recover_ms": ms(recover), "note": note,
    });
    let file = std::path::Path::new(&dir)
        .join(format!("{}.json", scenario.replace(|c: char| !c.is_ascii_alphanumeric(), "_")));
    std::fs::write(file, row.to_string()).unwrap();
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
    let down = Instant::now();
    let mut detected = None;
    // Every request succeeds through the fallback, streams included.
    for i in 0..10 {
        let body = if i % 2 == 0 { chat_body("failover") } else { stream_body("failover", None) };
        let (status, route, attempts) = ask(&h, &key, &body).await;
        assert_eq!((status, route.as_str()), (200, "chat-b"), "request {i}");
        if attempts == "1" && detected.is_none() {
            detected = Some(down.elapsed());
        }
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
    row(&h, "1 primary down", 10, 0, detected, Some(took), "breaker: 3 failures, open 1 s").await;
}

#[tokio::test]
async fn a_429_storm_with_retry_after_cools_the_provider_down() {
    let h = quick_breaker();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"rate_limit_rate": 1.0, "retry_after_s": 2})).await;
    let started = Instant::now();
    let mut detected = None;
    for _ in 0..8 {
        let (status, route, _) = ask(&h, &key, &chat_body("failover")).await;
        assert_eq!((status, route.as_str()), (200, "chat-b"));
        detected.get_or_insert(started.elapsed());
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
        (ask(&h, &key, &chat_body("failover")).await.1 == "chat-a").then_some(started.elapsed())
    });
    let recovered = again.await;
    assert!(recovered.is_some());
    row(&h, "2 429 storm, retry-after 2 s", 8, 0, detected, recovered, "one request reached the rate-limited provider")
        .await;
}

#[tokio::test]
async fn every_provider_down_is_a_quick_503_without_a_retry_storm() {
    let h = quick_breaker();
    let key = h.key().await;
    for m in ["model-a", "model-b"] {
        h.set_knobs(m, json!({"error_rate": 1.0, "error_status": 500})).await;
    }
    // The first request tries both, three rounds: then both breakers are open.
    let started = Instant::now();
    let (status, _, attempts) = ask(&h, &key, &chat_body("failover")).await;
    let detected = started.elapsed();
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
    let note = format!("6 upstream calls for 21 requests; each 503 in ≤ {} µs", slowest.as_micros());
    row(&h, "6 every provider down", 21, 21, Some(detected), None, &note).await;
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
    row(&h, "4 hang after accepting", 1, 0, Some(started.elapsed()), None, "cut by first_token (400 ms)").await;
    // A latency spike to 30 s: the slowest request is bounded by
    // first_token plus one failover (and the breaker then skips it).
    h.set_knobs("model-a", json!({"hang": false, "latency_ms": 30000})).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let (status, route, _) = ask(&h, &key, &chat_body("failover")).await;
        assert_eq!((status, route.as_str()), (200, "chat-b"));
        slowest = slowest.max(started.elapsed());
    }
    assert!(slowest < Duration::from_millis(1500), "{slowest:?}");
    let note = format!("p100 {} ms (first_token 400 ms + one failover)", slowest.as_millis());
    row(&h, "3 latency spike to 30 s; 8 slow first token", 11, 0, None, None, &note).await;
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

#[tokio::test]
async fn a_failing_model_degrades_to_its_small_sibling_only_where_the_request_fits() {
    let config = base_config(
        "",
        "  - { name: big, provider: sim, model: m-big, degrade_to: [small] }\n  - { name: small, provider: sim, model: m-small, capabilities: [chat] }",
        "  - { name: big, targets: [big] }",
    ) + "resilience: { retries: { max: 0 } }\n";
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    // Healthy: the big model answers, not degraded.
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("big")).send().await.unwrap();
    assert_eq!(r.headers()["x-switchyard-route"], "big");
    assert!(!r.headers().contains_key("x-switchyard-degraded"));
    h.set_knobs("m-big", json!({"error_rate": 1.0, "error_status": 503})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("big")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        (r.headers()["x-switchyard-route"].to_str().unwrap(), r.headers()["x-switchyard-degraded"].to_str().unwrap()),
        ("small", "true")
    );
    // With tools it never degrades to a model without tools.
    h.clear_sim_requests().await;
    let mut with_tools = chat_body("big");
    with_tools["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let r = h.post("/v1/chat/completions", &key).json(&with_tools).send().await.unwrap();
    assert_eq!(r.status(), 502, "big failed; small was never a candidate");
    let seen: Vec<Value> = h.sim_requests().await;
    assert!(seen.iter().all(|r| r["model"] != "m-small"), "{seen:?}");
    let (_, plan) = h.admin("POST", "/api/v1/route", &key, chat_body("big")).await;
    let roles: Vec<&str> = plan["candidates"].as_array().unwrap().iter().filter_map(|c| c["role"].as_str()).collect();
    assert_eq!(roles, ["target", "degraded"], "{plan}");
    assert!(h.metrics().await.contains(r#"switchyard_degradations_total{route="big",deployment="small"} 1"#));
}

#[tokio::test]
async fn overload_is_shed_with_retry_after_while_admitted_requests_keep_their_latency() {
    let config = base_config("", "", "").replace(
        "  - { name: chat, targets: [chat-a] }",
        "  - { name: chat, targets: [chat-a], queue: { priority: 100, max_concurrency: 4, max_queue: 4, timeout: 400ms } }",
    );
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    h.set_knobs("model-a", json!({"latency_ms": 200})).await;
    let sends = (0..40).map(|_| {
        let req = h.post("/v1/chat/completions", &key).json(&chat_body("chat"));
        async move {
            let started = Instant::now();
            let r = req.send().await.unwrap();
            let retry_after = r.headers().contains_key("retry-after");
            (r.status().as_u16(), retry_after, started.elapsed())
        }
    });
    let results = futures_util::future::join_all(sends).await;
    let ok: Vec<Duration> = results.iter().filter(|r| r.0 == 200).map(|r| r.2).collect();
    let shed: Vec<&(u16, bool, Duration)> = results.iter().filter(|r| r.0 == 503).collect();
    assert_eq!(ok.len() + shed.len(), 40, "{results:?}");
    assert!((8..=12).contains(&ok.len()), "4 served and 4 queued (and a few more as slots free): {results:?}");
    assert!(shed.iter().all(|r| r.1), "every shed request says when to come back");
    // Admitted requests wait at most one turn; shed ones are told at once.
    assert!(ok.iter().all(|d| *d < Duration::from_millis(1500)), "{ok:?}");
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"switchyard_requests_shed_total{reason="queue_full"}"#), "{metrics}");
    // At most 4 reached the upstream at once, so none waited there.
    assert!(h.sim_requests().await.len() == ok.len());
    let slowest = ok.iter().max().copied().unwrap_or_default();
    let note =
        format!("{} admitted (slowest {} ms), {} shed with retry-after", ok.len(), slowest.as_millis(), shed.len());
    row(&h, "7 overload", 40, shed.len(), None, None, &note).await;
}

#[tokio::test]
async fn a_deployment_at_its_max_concurrency_is_passed_over() {
    let config = base_config("", "", "").replace(
        "  - { name: chat-a, provider: sim, model: model-a }",
        "  - { name: chat-a, provider: sim, model: model-a, max_concurrency: 2 }",
    );
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    h.set_knobs("model-a", json!({"latency_ms": 400})).await;
    let sends = (0..6).map(|_| {
        let req = h.post("/v1/chat/completions", &key).json(&chat_body("failover"));
        async move {
            let r = req.send().await.unwrap();
            r.headers()["x-switchyard-route"].to_str().unwrap().to_string()
        }
    });
    let routes = futures_util::future::join_all(sends).await;
    assert_eq!(routes.iter().filter(|r| *r == "chat-a").count(), 2, "{routes:?}");
    assert_eq!(routes.iter().filter(|r| *r == "chat-b").count(), 4, "{routes:?}");
}

#[tokio::test]
async fn a_stream_whose_upstream_streams_fail_gets_the_buffered_answer_as_a_stream() {
    let config = base_config("", "", "") + "faults: { enabled: true }\n";
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    // Streams end before their first event; whole answers work.
    h.set_knobs("model-a", json!({"answer_tokens": 5})).await;
    let rule = json!({"deployment": "chat-a", "kind": "cut", "after_chunks": 0, "duration": "1m"});
    assert_eq!(h.admin("POST", "/api/v1/faults", ADMIN_TOKEN, rule).await.0, 201);
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("chat", None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-attempts"], "2");
    let text = r.text().await.unwrap();
    assert!(text.starts_with("data: "), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert!(text.contains("\"delta\""), "{text}");
    assert!(!text.contains("\"usage\""), "usage was not asked for: {text}");
    let seen = h.sim_requests().await;
    let streams: Vec<bool> = seen.iter().map(|r| r["body"]["stream"] == true).collect();
    assert_eq!(streams, [true, false], "{seen:?}");
    // An Anthropic client gets Anthropic events, ending with message_stop.
    let body =
        json!({"model": "chat", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let r = h.post("/v1/messages", &key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("event: message_start") && text.trim_end().ends_with("{\"type\":\"message_stop\"}"),
        "{text}"
    );
    // Recorded with the answer's real usage.
    let records = h.wait_usage(4).await;
    let last = records.iter().rfind(|r| r.is_final).unwrap();
    assert_eq!((last.status, last.output_tokens), (200, Some(5)));
    assert!(h.metrics().await.contains(r#"switchyard_buffered_streams_total{deployment="chat-a"} 2"#));
}

/// The text of an OpenAI stream's content deltas, and whether it ended
/// with `[DONE]` / carried an error event.
fn stream_text(sse: &str) -> (String, bool, bool) {
    let mut text = String::new();
    let mut error = false;
    for line in sse.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            error |= v.get("error").is_some();
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                text.push_str(t);
            }
        }
    }
    (text, sse.ends_with("data: [DONE]\n\n"), error)
}

#[tokio::test]
async fn a_stream_cut_or_stalled_mid_answer_is_continued_on_the_fallback_when_the_route_allows() {
    let config =
        base_config("", "", "  - { name: rescued, targets: [chat-a], fallbacks: [chat-b], stream_rescue: true }")
            .replace(
                "timeouts: { first_token: 2s, idle: 2s, total: 5s }",
                "timeouts: { first_token: 2s, idle: 400ms, total: 8s }",
            );
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    h.set_knobs("model-a", json!({"answer_tokens": 8, "cut_after_tokens": 3})).await;
    h.set_knobs("model-b", json!({"answer_tokens": 4})).await;

    // Rescue off (route failover): an in-band error, no [DONE]; the record
    // says the stream failed and what it produced.
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("failover", None)).send().await.unwrap();
    let (text, done, error) = stream_text(&r.text().await.unwrap());
    assert!(!text.is_empty() && !done && error, "{text}");
    let cut = h.wait_usage(1).await;
    assert_eq!(cut[0].error_kind.as_deref(), Some("upstream_failed"), "{cut:?}");
    assert!(cut[0].output_tokens.is_some_and(|n| n > 0), "{cut:?}");

    // Rescue on: one whole answer — chat-a's first words, then chat-b's.
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("rescued", Some(true))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let sse = r.text().await.unwrap();
    let (text, done, error) = stream_text(&sse);
    assert!(done && !error, "{sse}");
    assert!(sse.contains("\"finish_reason\":\"stop\""), "{sse}");
    // chat-a's first 3 words, then chat-b's 4 (the simulator does not
    // really continue: a model would pick up mid-sentence).
    assert_eq!(text, "lorem ipsum dolor".to_string() + "lorem ipsum dolor sit", "{sse}");
    // The fallback was asked to continue the delivered text.
    let seen = h.sim_requests().await;
    let last = seen.last().unwrap();
    assert_eq!(last["model"], "model-b");
    let messages = last["body"]["messages"].as_array().unwrap();
    assert_eq!(messages[messages.len() - 2]["role"], "assistant");
    assert_eq!(messages[messages.len() - 2]["content"].as_str().unwrap().split_whitespace().count(), 3);
    // Records: the cut attempt billed for what it produced (counted: the
    // stream was cut before its usage), the continuation final.
    let records = eventually(Duration::from_secs(5), || async {
        let r = h.usage_records().await;
        r.iter().any(|x| x.error_kind.as_deref() == Some("cut_rescued")).then_some(r)
    });
    let records = records.await.expect("the cut attempt is recorded");
    let cut = records.iter().find(|x| x.error_kind.as_deref() == Some("cut_rescued")).unwrap();
    assert_eq!((cut.deployment.as_deref(), cut.is_final), (Some("chat-a"), false));
    assert!(cut.output_tokens.is_some_and(|n| n > 0), "{cut:?}");
    let last = records.iter().rfind(|x| x.is_final && x.route.as_deref() == Some("rescued")).unwrap();
    assert_eq!((last.deployment.as_deref(), last.status, last.attempts), (Some("chat-b"), 200, 2));

    // A stall (silent past idle) is continued too, for an Anthropic client.
    h.set_knobs("model-a", json!({"answer_tokens": 8, "tokens_per_sec": 1.5})).await;
    let body =
        json!({"model": "rescued", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let started = Instant::now();
    let r = h.post("/v1/messages", &key).json(&body).send().await.unwrap();
    let sse = r.text().await.unwrap();
    assert!(sse.trim_end().ends_with("{\"type\":\"message_stop\"}"), "{sse}");
    assert!(!sse.contains("event: error"), "{sse}");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"switchyard_stream_rescues_total{deployment="chat-a",result="ok"} 2"#), "{metrics}");
    let note = "rescue on: 2 of 2 whole; rescue off: 1 in-band error, no [DONE]";
    row(&h, "5 mid-stream cut and stall", 3, 1, None, None, note).await;
}

#[tokio::test]
async fn a_slow_first_attempt_is_hedged_and_the_first_answer_wins() {
    let config = base_config(
        "",
        "",
        "  - { name: hedged, targets: [chat-a, chat-b], hedge: { delay: 150ms } }\n  - { name: patient, targets: [chat-a, chat-b], hedge: { delay: 2s } }",
    );
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    h.set_knobs("model-a", json!({"latency_ms": 2000})).await;
    let started = Instant::now();
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("hedged")).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(r.status(), 200);
    assert_eq!(
        (r.headers()["x-switchyard-route"].to_str().unwrap(), r.headers()["x-switchyard-attempts"].to_str().unwrap()),
        ("chat-b", "2")
    );
    assert!(took >= Duration::from_millis(150) && took < Duration::from_millis(1500), "{took:?}");
    // The cancelled attempt is recorded and billed for its prompt.
    let records = eventually(Duration::from_secs(5), || async {
        let r = h.usage_records().await;
        (r.len() >= 2).then_some(r)
    });
    let records = records.await.unwrap();
    let cancelled = records.iter().find(|r| r.error_kind.as_deref() == Some("hedge_cancelled")).expect("{records:?}");
    assert_eq!((cancelled.deployment.as_deref(), cancelled.is_final), (Some("chat-a"), false));
    assert!(cancelled.input_tokens.is_some_and(|n| n > 0));
    let last = records.iter().find(|r| r.is_final).unwrap();
    assert_eq!((last.deployment.as_deref(), last.attempts), (Some("chat-b"), 2));
    // A fast first attempt is not hedged.
    h.set_knobs("model-a", json!({"latency_ms": 0})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("hedged")).send().await.unwrap();
    assert_eq!(
        (r.headers()["x-switchyard-route"].to_str().unwrap(), r.headers()["x-switchyard-attempts"].to_str().unwrap()),
        ("chat-a", "1")
    );
    // Until a hedge is sent, the request is in flight at its first
    // deployment only (the second's slots are taken when it is sent).
    h.set_knobs("model-a", json!({"latency_ms": 800})).await;
    let slow = h.post("/v1/chat/completions", &key).json(&chat_body("patient")).send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a, b) = (deployment(&h, "chat-a").await, deployment(&h, "chat-b").await);
    assert_eq!((a["in_flight"].as_u64(), b["in_flight"].as_u64()), (Some(1), Some(0)));
    let r = slow.await.unwrap().unwrap();
    assert_eq!(r.headers()["x-switchyard-attempts"], "1");
    let metrics = h.metrics().await;
    assert!(metrics.contains(r#"switchyard_hedges_total{route="hedged",result="won"} 1"#), "{metrics}");
    assert!(!metrics.contains(r#"result="lost""#), "{metrics}");
}

#[tokio::test]
async fn a_deployment_that_asked_to_wait_is_retried_once_its_retry_after_passed() {
    // Backoffs of 0.5–1 s then 1–2 s: round 1 comes before chat-a's
    // retry-after (1 s) is up, round 2 after it.
    let h = start_with(
        "  retries: { max: 2, backoff: 1s, max_backoff: 2s }",
        "timeouts: { first_token: 2s, idle: 2s, total: 5s }",
    );
    let key = h.key().await;
    // chat-a: 429, come back in 1 s; chat-b: fails at once, twice.
    h.set_knobs("model-a", json!({"rate_limit_next": 1, "retry_after_s": 1})).await;
    h.set_knobs("model-b", json!({"fail_next": 2, "error_status": 503})).await;
    let started = Instant::now();
    let (status, route, attempts) = ask(&h, &key, &chat_body("failover")).await;
    // chat-a is kept for the round where it is due (not dropped from the
    // round where it was not), and answers.
    assert_eq!((status, route.as_str()), (200, "chat-a"), "attempts {attempts}");
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    let models: Vec<String> =
        h.sim_requests().await.iter().map(|r| r["model"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(models.first().map(String::as_str), Some("model-a"));
    assert_eq!(models.last().map(String::as_str), Some("model-a"), "{models:?}");
}

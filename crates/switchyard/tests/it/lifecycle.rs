//! Process life: hot reload (good and bad files), SIGTERM draining with
//! nothing lost, health and readiness.

use super::{bin, chat_body, start};
use serde_json::{json, Value};
use std::time::Duration;
use switchyard_testkit::{base_config, eventually, Harness};

#[tokio::test]
async fn bad_reload_keeps_serving_and_good_reload_applies() {
    let h = start();
    let key = h.key().await;
    let models = |h: &Harness, key: String| {
        let req = h.http.get(format!("{}/v1/models", h.url)).bearer_auth(key);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["data"].as_array().unwrap().len() }
    };
    assert_eq!(models(&h, key.clone()).await, 3);

    h.write_config("providers: [ { name: x, kind: nope } ]\nroutes: 5\n");
    let rejected = eventually(Duration::from_secs(5), || async {
        h.metrics().await.contains("switchyard_config_reloads_total{result=\"error\"} 1").then_some(())
    })
    .await;
    assert!(rejected.is_some(), "bad reload not reported:\n{}", h.stderr());
    assert!(h.stderr().contains("config reload rejected"));
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("chat")).send().await.unwrap();
    assert_eq!(r.status(), 200, "still serving the old config");

    h.write_config(&base_config("", "", "  - { name: added, targets: [chat-b] }"));
    let applied = eventually(Duration::from_secs(5), || {
        let f = models(&h, key.clone());
        async move { (f.await == 4).then_some(()) }
    })
    .await;
    assert!(applied.is_some(), "good reload not applied:\n{}", h.stderr());
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("added")).send().await.unwrap();
    assert_eq!(r.headers()["x-switchyard-route"], "chat-b");

    // SIGHUP reloads too (same file: counted as ok).
    h.signal("HUP");
    let hup = eventually(Duration::from_secs(5), || async {
        h.metrics().await.contains("switchyard_config_reloads_total{result=\"ok\"} 2").then_some(())
    })
    .await;
    assert!(hup.is_some(), "{}", h.metrics().await);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_loses_no_record() {
    let mut h = start();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"latency_ms": 700})).await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let req =
            h.post("/v1/chat/completions", &key).header("x-request-id", format!("drain-{i}")).json(&chat_body("chat"));
        tasks.push(tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) }));
    }
    // All 50 are in flight once the simulator has seen them.
    let seen =
        eventually(Duration::from_secs(5), || async { (h.sim_requests().await.len() == 50).then_some(()) }).await;
    assert!(seen.is_some());
    h.signal("TERM");
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200, "in-flight requests finish");
    }
    let status = h.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit 0, got {status:?}:\n{}", h.stderr());
    let records = h.usage_records().await;
    let drained = records.iter().filter(|r| r.request_id.starts_with("drain-") && r.status == 200).count();
    assert_eq!(drained, 50, "every in-flight request has its record");
}

#[tokio::test]
async fn health_ready_and_admin_auth() {
    let h = start();
    let ok = h.http.get(format!("{}/health", h.url)).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let ready: Value = h.http.get(format!("{}/ready", h.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let r = h.post("/api/v1/keys", "wrong").json(&json!({"name": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = h.post("/api/v1/keys", switchyard_testkit::ADMIN_TOKEN).json(&json!({"name": ""})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = h
        .post("/api/v1/keys", switchyard_testkit::ADMIN_TOKEN)
        .json(&json!({"name": "x", "allowed_routes": ["nope"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let listed: Value = h
        .http
        .get(format!("{}/api/v1/keys", h.url))
        .bearer_auth(switchyard_testkit::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = listed.to_string();
    assert!(!text.contains("hash"), "no hashes in listings: {text}");
}

#[tokio::test]
async fn keys_and_records_survive_a_restart() {
    let mut h = start();
    let key = h.key().await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("chat")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    h.restart(bin());
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("chat")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the key was loaded from the store into memory");
    assert_eq!(h.wait_usage(2).await.len(), 2);
}

/// The gateway and its simulator listen with a deep accept queue (4096,
/// or the kernel's cap if lower), not the default 128 that a burst of new
/// connections overflowed. Read from the kernel with `ss`.
#[tokio::test]
async fn listeners_have_a_deep_accept_queue() {
    let h = start();
    let cap: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
    for url in [Some(&h.url), h.sim_url.as_ref()].into_iter().flatten() {
        let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
        let out = std::process::Command::new("ss")
            .args(["-ltnH", &format!("sport = :{port}")])
            .output()
            .unwrap_or_else(|e| panic!("this test reads the backlog with `ss` (Debian package iproute2): {e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        // State Recv-Q Send-Q Local Peer: for a listener, Send-Q is the backlog.
        let backlog: u32 = text.split_whitespace().nth(2).unwrap_or_else(|| panic!("ss: {text:?}")).parse().unwrap();
        assert_eq!(backlog, 4096.min(cap), "{url}: {text}");
    }
}

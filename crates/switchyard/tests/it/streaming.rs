//! Streams: pass-through, usage capture and stripping, heartbeats, cut
//! streams, and client disconnects cancelling the upstream.

use super::{bin, chat_body, start, stream_body};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use switchyard_testkit::{base_config, Harness};

/// The `data:` payloads of an SSE body.
fn data_lines(text: &str) -> Vec<String> {
    text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).map(str::to_string).collect()
}

#[tokio::test]
async fn usage_chunk_is_kept_or_stripped_as_the_client_asked() {
    let h = start();
    let key = h.key().await;

    let r = h.post("/v1/chat/completions", &key).json(&stream_body("chat", Some(true))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let data = data_lines(&text);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let usage_chunk: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 8);

    let r = h.post("/v1/chat/completions", &key).json(&stream_body("chat", None)).send().await.unwrap();
    let text = r.text().await.unwrap();
    let chunks: Vec<Value> =
        data_lines(&text).iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    assert!(chunks.iter().all(|c| c["usage"].is_null()), "usage the client did not ask for is stripped:\n{text}");
    let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(!content.is_empty());

    // Upstream was asked for usage both times; the records have it.
    let seen = h.sim_requests().await;
    assert!(seen.iter().all(|s| s["body"]["stream_options"]["include_usage"] == true));
    let records = h.wait_usage(2).await;
    for r in &records {
        assert!(r.stream);
        assert_eq!(r.output_tokens, Some(8));
        assert_eq!(r.usage_source, switchyard_types::UsageSource::Reported);
        assert!(r.ttft_ms.is_some());
    }
}

#[tokio::test]
async fn stream_without_upstream_usage_is_estimated() {
    let h = start();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"usage": false, "answer_tokens": 8})).await;
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("chat", None)).send().await.unwrap();
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    let records = h.wait_usage(1).await;
    assert_eq!(records[0].usage_source, switchyard_types::UsageSource::Estimated);
    assert!(records[0].output_tokens.unwrap() >= 8);
}

#[tokio::test]
async fn a_cut_stream_ends_with_an_error_event_not_a_clean_end() {
    let h = start();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"cut_after_tokens": 3, "answer_tokens": 8})).await;
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("chat", None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let data = data_lines(&text);
    assert_ne!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "server_error", "{text}");
    let records = h.wait_usage(1).await;
    assert_eq!(records[0].error_kind.as_deref(), Some("upstream_failed"));
}

#[tokio::test]
async fn heartbeats_keep_a_slow_stream_alive() {
    let config = base_config("", "", "").replace("heartbeat: 15s", "heartbeat: 100ms");
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    h.set_knobs("model-a", json!({"ttft_ms": 450, "answer_tokens": 2})).await;
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("chat", None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with(": keep-alive\n\n"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_within_a_second() {
    let h = start();
    let key = h.key().await;
    // Slow enough that the stream is still going when we hang up.
    h.set_knobs("model-a", json!({"tokens_per_sec": 5, "answer_tokens": 100})).await;
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("chat", None)).send().await.unwrap();
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    drop(body);
    let cancelled = h.wait_sim_outcome("cancelled", Duration::from_secs(1)).await;
    assert!(cancelled.is_some(), "the simulator saw no cancellation: {:?}", h.sim_requests().await);
    let records = h.wait_usage(1).await;
    assert_eq!(records[0].status, 499);
    assert_eq!(records[0].error_kind.as_deref(), Some("client_disconnected"));
    assert!(records[0].output_tokens.is_some(), "usage seen so far is kept");

    // Non-stream too: the handler is dropped, the upstream call with it.
    h.clear_sim_requests().await;
    h.set_knobs("model-a", json!({"latency_ms": 5000})).await;
    let http = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    let r = http.post(format!("{}/v1/chat/completions", h.url)).bearer_auth(&key).json(&chat_body("chat")).send().await;
    assert!(r.is_err(), "client timed out");
    let cancelled = h.wait_sim_outcome("cancelled", Duration::from_secs(1)).await;
    assert!(cancelled.is_some(), "{:?}", h.sim_requests().await);
    let records = h.wait_usage(2).await;
    assert!(records.iter().filter(|r| r.status == 499).count() == 2, "{records:?}");
}

#[tokio::test]
async fn a_silent_upstream_hits_the_idle_deadline_after_commit() {
    let config = base_config("", "", "").replace(
        "timeouts: { first_token: 2s, idle: 2s, total: 5s }",
        "timeouts: { first_token: 2s, idle: 300ms, total: 5s }",
    );
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    // One token a second: the first arrives, then silence past `idle`.
    h.set_knobs("model-a", json!({"tokens_per_sec": 1, "answer_tokens": 5})).await;
    let started = std::time::Instant::now();
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("chat", None)).send().await.unwrap();
    assert_eq!(r.status(), 200, "committed: the first event arrived in time");
    let text = r.text().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "ended by the idle deadline, not the answer");
    let last: Value = serde_json::from_str(data_lines(&text).last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "timeout_error", "{text}");
    let records = h.wait_usage(1).await;
    assert_eq!(records[0].error_kind.as_deref(), Some("upstream_timeout"));
    // The upstream call was dropped with the stream.
    let cancelled = h.wait_sim_outcome("cancelled", Duration::from_secs(1)).await;
    assert!(cancelled.is_some());
}

/// `http2: true`: streams share one h2c connection to the upstream, and
/// more than 1,024 clients hanging up (each a reset upstream) does not make
/// the h2 library close that connection under the streams still running.
#[tokio::test]
async fn h2c_upstream_outlives_many_cancelled_streams() {
    let config = base_config(
        r#"  - { name: sim-h2, kind: openai_compatible, base_url: "sim://", http2: true }"#,
        "  - { name: chat-h2, provider: sim-h2, model: model-h2 }\n  - { name: fast-h2, provider: sim-h2, model: fast-h2 }",
        "  - { name: h2, targets: [chat-h2] }\n  - { name: h2-fast, targets: [fast-h2] }",
    );
    let h = Harness::start(bin(), &config);
    let key = h.key().await;
    h.set_knobs("model-h2", json!({"tokens_per_sec": 20, "answer_tokens": 400})).await;
    // Hung up on while their tokens are still in flight: data arrives for
    // streams already reset, which the h2 crate answers with resets of its own.
    h.set_knobs("fast-h2", json!({"tokens_per_sec": 0, "answer_tokens": 5000})).await;
    let r = h.post("/v1/chat/completions", &key).json(&stream_body("h2", None)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut long = r.bytes_stream();
    assert!(long.next().await.unwrap().unwrap().starts_with(b"data: "));

    for _ in 0..11 {
        let batch = (0..100).map(|_| async {
            let r = h.post("/v1/chat/completions", &key).json(&stream_body("h2-fast", None)).send().await.unwrap();
            let mut body = r.bytes_stream();
            let first = body.next().await.unwrap().unwrap();
            assert!(first.starts_with(b"data: "), "{}", String::from_utf8_lossy(&first));
        });
        futures_util::future::join_all(batch).await;
    }
    // The long stream is still flowing on the same connection.
    let mut more = Vec::new();
    while more.len() < 3 {
        let chunk = long.next().await.unwrap().unwrap();
        assert!(!chunk.windows(8).any(|w| w == b"\"error\":"), "{}", String::from_utf8_lossy(&chunk));
        more.push(chunk);
    }
    assert!(!h.stderr().contains("ENHANCE_YOUR_CALM") && !h.stderr().contains("reached limit"), "{}", h.stderr());
}

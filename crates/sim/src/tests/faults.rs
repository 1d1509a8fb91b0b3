//! Injected errors, rate limits and hangs.

use serde_json::json;
use tokio::io::AsyncReadExt;

use super::{chat_body, fixture_json, shape, start, start_with};
use crate::{Knobs, Outcome, SimConfig};

#[tokio::test]
async fn fail_next_fails_then_recovers() {
    let h = start(SimConfig {
        models: [("flaky".to_owned(), Knobs { fail_next: 2, error_status: 503, ..Knobs::default() })].into(),
        ..SimConfig::default()
    })
    .await;
    // Another model is unaffected.
    assert_eq!(h.post_json("/v1/chat/completions", &chat_body("other")).await.0, 200);
    for _ in 0..2 {
        let (status, err) = h.post_json("/v1/chat/completions", &chat_body("flaky")).await;
        assert_eq!(status, 503);
        assert_eq!(shape(&err), shape(&fixture_json("errors/503_overloaded.json")));
        assert_eq!(err["error"]["type"], "server_error");
    }
    assert_eq!(h.sim.knobs().models["flaky"].fail_next, 0);
    assert_eq!(h.post_json("/v1/chat/completions", &chat_body("flaky")).await.0, 200);
    let outcomes: Vec<_> = h.sim.requests().iter().map(|r| (r.outcome, r.status)).collect();
    assert_eq!(
        outcomes,
        [(Outcome::Completed, 200), (Outcome::Failed, 503), (Outcome::Failed, 503), (Outcome::Completed, 200)]
    );

    // The default 500 carries the server_error body; streams fail before any byte.
    h.sim.set_knobs(Some("flaky"), Knobs { fail_next: 1, ..Knobs::default() });
    let mut body = chat_body("flaky");
    body["stream"] = json!(true);
    let (status, err) = h.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 500);
    assert_eq!(shape(&err), shape(&fixture_json("errors/500_server_error.json")));
    h.shutdown().await;
}

#[tokio::test]
async fn rate_limit_next_answers_429_with_retry_after() {
    let h = start_with(Knobs { rate_limit_next: 1, retry_after_s: 3, ..Knobs::default() }).await;
    let resp = h.post("/v1/chat/completions", &chat_body("m")).await;
    assert_eq!(resp.status(), 429);
    let headers = resp.headers().clone();
    assert_eq!(headers["retry-after"], "3");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert_eq!(headers["x-ratelimit-reset-requests"], "3s");
    assert!(headers.contains_key("x-ratelimit-limit-requests"));
    let err: serde_json::Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(shape(&err), shape(&fixture_json("errors/429_rate_limit_requests.json")));
    assert_eq!(err["error"]["code"], "rate_limit_exceeded");
    assert_eq!(h.post_json("/v1/chat/completions", &chat_body("m")).await.0, 200);
    let r = h.wait_for(|r| r.status == 429).await;
    assert_eq!(r.outcome, Outcome::Failed);
    h.shutdown().await;
}

#[tokio::test]
async fn rates_of_one_always_fire() {
    let h = start_with(Knobs { error_rate: 1.0, error_status: 502, ..Knobs::default() }).await;
    for _ in 0..3 {
        assert_eq!(h.post_json("/v1/chat/completions", &chat_body("m")).await.0, 502);
    }
    h.sim.set_knobs(None, Knobs { rate_limit_rate: 1.0, ..Knobs::default() });
    let resp = h.post("/v1/embeddings", &json!({"model": "e", "input": "x"})).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    h.shutdown().await;
}

#[tokio::test]
async fn hang_is_recorded_cancelled_when_the_client_leaves() {
    let h = start_with(Knobs { hang: true, ..Knobs::default() }).await;
    for stream in [false, true] {
        h.sim.clear_requests();
        let mut body = chat_body("stuck");
        body["stream"] = json!(stream);
        let tcp = h.raw_post("/v1/chat/completions", &body).await;
        let r = h.wait_for(|r| r.model.as_deref() == Some("stuck")).await;
        assert_eq!(r.outcome, Outcome::InProgress);
        assert_eq!(r.status, 0);
        drop(tcp);
        let r = h.wait_for(|r| r.outcome == Outcome::Cancelled).await;
        assert_eq!(r.stream, stream);
        assert_eq!(r.status, 0, "no status was ever sent");
        assert!(r.ended_ms.is_some());
    }
    h.shutdown().await;
}

#[tokio::test]
async fn shutdown_releases_hung_requests() {
    let h = start_with(Knobs { hang: true, ..Knobs::default() }).await;
    let mut tcp = h.raw_post("/v1/chat/completions", &chat_body("stuck")).await;
    h.wait_for(|r| r.outcome == Outcome::InProgress).await;
    let sim = h.sim.clone();
    h.shutdown().await;
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let r = &sim.requests()[0];
    assert_eq!((r.outcome, r.status), (Outcome::Failed, 503));
}

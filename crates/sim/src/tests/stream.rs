//! Streamed chat completions: framing, shapes, pacing, cuts and disconnects.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

use super::{
    chat_body, fixture, fixture_json, read_until_end, shape, shape_without, sse_chunks, sse_events, start_with, Harness,
};
use crate::{Format, Knobs, Outcome};

/// The event `error_after_tokens` ends an OpenAI (and Azure) stream with.
pub(super) const ERROR_EVENT: &str = "data: {\"error\":{\"message\":\"The server had an error while processing your \
                                      request. Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";

fn stream_body(model: &str, include_usage: Option<bool>) -> Value {
    let mut b = chat_body(model);
    b["stream"] = json!(true);
    if let Some(u) = include_usage {
        b["stream_options"] = json!({"include_usage": u});
    }
    b
}

async fn stream_text(h: &Harness, body: &Value) -> String {
    let resp = h.post("/v1/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap()
}

fn fixture_chunks(name: &str) -> Vec<Value> {
    sse_chunks(&fixture(name))
}

pub(super) fn content_of(chunks: &[Value], index: u64) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"].as_array()?.first().cloned())
        .filter(|c| c["index"] == index)
        .filter_map(|c| c["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn text_stream_without_usage_matches_the_fixture() {
    let h = start_with(Knobs { answer_tokens: 4, ..Knobs::default() }).await;
    let body = stream_text(&h, &stream_body("gpt-4o", None)).await;
    let chunks = sse_chunks(&body);
    let fx = fixture_chunks("chat_stream_text.sse");
    // role chunk, 4 words, finish chunk; the fixture predates `service_tier`.
    assert_eq!(chunks.len(), 6);
    let ours = |i: usize| shape_without(&chunks[i], &["service_tier"]);
    assert_eq!(ours(0), shape_without(&fx[0], &[]));
    assert_eq!(ours(1), shape_without(&fx[1], &[]));
    assert_eq!(ours(5), shape_without(&fx[fx.len() - 1], &[]));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": "", "refusal": null}));
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"][0]["delta"], json!({}));
    // The words concatenate to the non-stream content.
    let (_, whole) = h.post_json("/v1/chat/completions", &chat_body("gpt-4o")).await;
    assert_eq!(content_of(&chunks, 0), whole["choices"][0]["message"]["content"].as_str().unwrap());
    let r = h.wait_for(|r| r.stream && r.outcome == Outcome::Completed).await;
    assert_eq!(r.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn include_usage_adds_usage_null_and_a_final_usage_chunk() {
    let h = start_with(Knobs { answer_tokens: 3, ..Knobs::default() }).await;
    let chunks = sse_chunks(&stream_text(&h, &stream_body("m", Some(true))).await);
    let fx = fixture_chunks("chat_stream_text_include_usage.sse");
    assert_eq!(chunks.len(), 6);
    let fx_shape = |i: usize| shape_without(&fx[i], &["obfuscation"]);
    assert_eq!(shape_without(&chunks[0], &[]), fx_shape(0));
    assert_eq!(shape_without(&chunks[1], &[]), fx_shape(1));
    assert_eq!(shape_without(&chunks[4], &[]), fx_shape(fx.len() - 2));
    assert_eq!(shape_without(&chunks[5], &[]), fx_shape(fx.len() - 1));
    assert!(chunks[..5].iter().all(|c| c["usage"] == Value::Null && c.get("usage").is_some()));
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["completion_tokens"], 3);
    assert_eq!(chunks[5]["usage"]["total_tokens"], 7);

    let off = sse_chunks(&stream_text(&h, &stream_body("m", Some(false))).await);
    assert_eq!(off.len(), 5);
    assert!(off.iter().all(|c| c.get("usage").is_none()));
    h.shutdown().await;
}

#[tokio::test]
async fn usage_knob_off_drops_the_usage_chunk() {
    let h = start_with(Knobs { usage: false, answer_tokens: 2, ..Knobs::default() }).await;
    let chunks = sse_chunks(&stream_text(&h, &stream_body("m", Some(true))).await);
    assert_eq!(chunks.len(), 4);
    assert!(chunks.iter().all(|c| c.get("usage").is_none() && !c["choices"].as_array().unwrap().is_empty()));
    h.shutdown().await;
}

#[tokio::test]
async fn n_choices_stream_interleaved() {
    let h = start_with(Knobs { answer_tokens: 3, ..Knobs::default() }).await;
    let mut body = stream_body("m", Some(true));
    body["n"] = json!(2);
    let chunks = sse_chunks(&stream_text(&h, &body).await);
    // 2 role + 2×3 words + 2 finish + usage.
    assert_eq!(chunks.len(), 11);
    assert_eq!(content_of(&chunks, 0).split(' ').count(), 3);
    assert_ne!(content_of(&chunks, 0), content_of(&chunks, 1));
    assert_eq!(chunks[10]["usage"]["completion_tokens"], 6);
    h.shutdown().await;
}

#[tokio::test]
async fn tool_call_stream_matches_the_fixture() {
    let h = start_with(Knobs::default()).await;
    let mut body = stream_body("m", None);
    body["tools"] = fixture_json("chat_request_full.json")["tools"].clone();
    let chunks = sse_chunks(&stream_text(&h, &body).await);
    let fx = fixture_chunks("chat_stream_tool_call_single.sse");
    let ours = |i: usize| shape_without(&chunks[i], &["service_tier"]);
    assert_eq!(ours(0), shape_without(&fx[0], &[]));
    assert_eq!(ours(1), shape_without(&fx[1], &[]));
    let last = chunks.len() - 1;
    assert_eq!(ours(last), shape_without(&fx[fx.len() - 2], &[]));
    assert_eq!(chunks[last]["choices"][0]["finish_reason"], "tool_calls");
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert!(first["id"].as_str().unwrap().starts_with("call_sim"));
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["function"]["arguments"], "");
    let args: String = chunks[1..last]
        .iter()
        .map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str().unwrap())
        .collect();
    assert!(last > 2, "arguments come in several pieces");
    let args: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(args, json!({"city": "sample", "units": "c"}));
    h.shutdown().await;
}

#[tokio::test]
async fn cut_after_tokens_ends_without_done_and_records_cut() {
    let h = start_with(Knobs { cut_after_tokens: Some(3), ..Knobs::default() }).await;
    let mut resp = h.post("/v1/chat/completions", &stream_body("m", Some(true))).await;
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    let err = loop {
        match resp.chunk().await {
            Ok(Some(b)) => got.extend_from_slice(&b),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    assert!(err.is_some(), "the body must end in an error, not a clean end");
    let text = String::from_utf8(got).unwrap();
    let events = sse_events(&text);
    assert!(!events.iter().any(|e| e == "[DONE]"));
    let chunks: Vec<Value> = events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks.len(), 4, "role chunk + 3 words: {text}");
    assert!(chunks.iter().all(|c| c["choices"][0]["finish_reason"] == Value::Null));
    let r = h.wait_for(|r| r.outcome == Outcome::Cut).await;
    assert_eq!(r.status, 200);
    assert!(r.ended_ms.is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn ttft_and_pacing_delay_the_stream() {
    let h = start_with(Knobs { ttft_ms: 150, tokens_per_sec: 50.0, answer_tokens: 6, ..Knobs::default() }).await;
    let sent = Instant::now();
    let mut resp = h.post("/v1/chat/completions", &stream_body("m", None)).await;
    // Headers come before the first chunk; timers never fire early, so only
    // lower bounds are asserted.
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(sent.elapsed() >= Duration::from_millis(150));
    assert!(String::from_utf8_lossy(&first).contains("\"role\":\"assistant\""));
    let mut rest = first.to_vec();
    while let Some(b) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&b);
    }
    // Words 2..6 come 20 ms apart.
    assert!(sent.elapsed() >= Duration::from_millis(150 + 5 * 20));
    assert_eq!(sse_chunks(&String::from_utf8(rest).unwrap()).len(), 8);
    h.shutdown().await;
}

#[tokio::test]
async fn client_leaving_mid_stream_is_recorded_cancelled() {
    let h = start_with(Knobs { tokens_per_sec: 2.0, answer_tokens: 100, ..Knobs::default() }).await;
    let mut tcp = h.raw_post("/v1/chat/completions", &stream_body("slow", None)).await;
    // Read until the first chunk arrived: the stream is under way.
    let mut buf = vec![0u8; 4096];
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("data: ") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed early");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    drop(tcp);
    let r = h.wait_for(|r| r.outcome == Outcome::Cancelled).await;
    assert_eq!(r.model.as_deref(), Some("slow"));
    assert_eq!(r.status, 200);
    assert!(r.ended_ms.is_some());
    h.shutdown().await;
}

#[tokio::test]
async fn error_after_tokens_ends_with_an_error_event_and_no_done() {
    let h = start_with(Knobs { error_after_tokens: Some(3), ..Knobs::default() }).await;
    let resp = h.post("/v1/chat/completions", &stream_body("m", Some(true))).await;
    assert_eq!(resp.status(), 200);
    let (text, failed) = read_until_end(resp).await;
    assert!(!failed, "the body must end cleanly, not in an error");
    assert!(text.ends_with(ERROR_EVENT), "{text}");
    let events = sse_events(&text);
    assert!(!events.iter().any(|e| e == "[DONE]"));
    let chunks: Vec<Value> = events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks.len(), 5, "role chunk + 3 words + the error: {text}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    for c in &chunks[1..4] {
        assert!(c["choices"][0]["delta"]["content"].is_string());
        assert_eq!(c["choices"][0]["finish_reason"], Value::Null);
    }
    // No finish chunk, no usage chunk: the error is the last event.
    assert_eq!(shape(&chunks[4]), shape(&fixture_json("errors/500_server_error.json")));
    assert_eq!(chunks[4]["error"]["type"], "server_error");
    let r = h.wait_for(|r| r.outcome == Outcome::Errored).await;
    assert_eq!((r.format, r.status), (Format::OpenAi, 200));
    assert!(r.stream && r.ended_ms.is_some());

    // Steps count per choice; one error ends every choice.
    h.sim.set_knobs(None, Knobs { error_after_tokens: Some(1), ..Knobs::default() });
    let mut body = stream_body("m", None);
    body["n"] = json!(2);
    let (text, failed) = read_until_end(h.post("/v1/chat/completions", &body).await).await;
    assert!(!failed);
    let events = sse_events(&text);
    assert_eq!(events.len(), 5, "2 role chunks, 2 words, the error: {text}");
    assert_eq!(format!("data: {}\n\n", events[4]), ERROR_EVENT);
    h.shutdown().await;
}

#[tokio::test]
async fn error_after_tokens_spares_shorter_answers_and_non_stream_requests() {
    let h = start_with(Knobs { error_after_tokens: Some(3), answer_tokens: 2, ..Knobs::default() }).await;
    let chunks = sse_chunks(&stream_text(&h, &stream_body("m", None)).await);
    assert_eq!(chunks.len(), 4, "role chunk, 2 words, finish chunk");
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    let r = h.wait_for(|r| r.stream && r.outcome != Outcome::InProgress).await;
    assert_eq!(r.outcome, Outcome::Completed);

    // An answer of exactly that many words errs instead of finishing.
    h.sim.set_knobs(None, Knobs { error_after_tokens: Some(3), answer_tokens: 3, ..Knobs::default() });
    let text = stream_text(&h, &stream_body("m", None)).await;
    assert!(text.ends_with(ERROR_EVENT), "{text}");
    assert_eq!(sse_events(&text).len(), 5, "role chunk, 3 words, the error");
    h.wait_for(|r| r.outcome == Outcome::Errored).await;

    // Non-stream answers ignore the knob.
    let (status, v) = h.post_json("/v1/chat/completions", &chat_body("m")).await;
    assert_eq!(status, 200);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    let r = h.wait_for(|r| !r.stream && r.outcome != Outcome::InProgress).await;
    assert_eq!((r.outcome, r.status), (Outcome::Completed, 200));
    h.shutdown().await;
}

#[tokio::test]
async fn the_earlier_of_cut_and_error_applies_and_the_cut_wins_a_tie() {
    let h = start_with(Knobs { cut_after_tokens: Some(5), error_after_tokens: Some(2), ..Knobs::default() }).await;
    let (text, failed) = read_until_end(h.post("/v1/chat/completions", &stream_body("m", None)).await).await;
    assert!(!failed);
    assert!(text.ends_with(ERROR_EVENT));
    assert_eq!(sse_events(&text).len(), 4, "role chunk, 2 words, the error");
    h.wait_for(|r| r.outcome == Outcome::Errored).await;

    for (cut, error) in [(2, 5), (3, 3)] {
        h.sim.set_knobs(
            None,
            Knobs { cut_after_tokens: Some(cut), error_after_tokens: Some(error), ..Knobs::default() },
        );
        h.sim.clear_requests();
        let (text, failed) = read_until_end(h.post("/v1/chat/completions", &stream_body("m", None)).await).await;
        assert!(failed, "cut {cut}, error {error}: the connection is dropped");
        assert!(!text.contains("{\"error\""));
        assert_eq!(sse_events(&text).len(), 1 + cut as usize);
        h.wait_for(|r| r.outcome == Outcome::Cut).await;
    }
    h.shutdown().await;
}

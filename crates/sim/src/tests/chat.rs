//! Non-stream chat completions.

use serde_json::{json, Value};

use super::{chat_body, fixture_json, shape, start, start_with};
use crate::{Knobs, Outcome, SimConfig, ToolCalls};

fn weather_tools() -> Value {
    fixture_json("chat_request_full.json")["tools"].clone()
}

fn content(resp: &Value, choice: usize) -> &str {
    resp["choices"][choice]["message"]["content"].as_str().unwrap()
}

#[tokio::test]
async fn text_answer_has_the_fixture_shape() {
    let h = start_with(Knobs::default()).await;
    let (status, resp) = h.post_json("/v1/chat/completions", &chat_body("gpt-4o-mini")).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&resp), shape(&fixture_json("chat_response_text.json")));
    assert_eq!(resp["object"], "chat.completion");
    assert_eq!(resp["model"], "gpt-4o-mini");
    assert!(resp["id"].as_str().unwrap().starts_with("chatcmpl-sim"));
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    assert_eq!(content(&resp, 0).split(' ').count(), 16);
    let usage = &resp["usage"];
    // "Hello there, sim!" is 17 characters: 4 tokens.
    assert_eq!(usage["prompt_tokens"], 4);
    assert_eq!(usage["completion_tokens"], 16);
    assert_eq!(usage["total_tokens"], 20);
    h.shutdown().await;
}

#[tokio::test]
async fn answers_are_deterministic_and_n_gives_distinct_choices() {
    let h = start_with(Knobs { answer_tokens: 5, ..Knobs::default() }).await;
    let (_, one) = h.post_json("/v1/chat/completions", &chat_body("m")).await;
    let mut body = chat_body("m");
    body["n"] = json!(3);
    let (status, three) = h.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    let choices = three["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_eq!(c["message"]["content"].as_str().unwrap().split(' ').count(), 5);
    }
    assert_eq!(content(&one, 0), content(&three, 0));
    assert_ne!(content(&three, 0), content(&three, 1));
    assert_eq!(three["usage"]["completion_tokens"], 15);
    assert_ne!(one["id"], three["id"]);
    body["n"] = json!(0);
    assert_eq!(h.post_json("/v1/chat/completions", &body).await.0, 400);
    h.shutdown().await;
}

#[tokio::test]
async fn max_tokens_truncates_with_length() {
    let h = start_with(Knobs::default()).await;
    for key in ["max_tokens", "max_completion_tokens"] {
        let mut body = chat_body("m");
        body[key] = json!(3);
        let (_, resp) = h.post_json("/v1/chat/completions", &body).await;
        assert_eq!(resp["choices"][0]["finish_reason"], "length");
        assert_eq!(content(&resp, 0).split(' ').count(), 3);
        assert_eq!(resp["usage"]["completion_tokens"], 3);
    }
    let mut body = chat_body("m");
    body["max_tokens"] = json!(16);
    let (_, resp) = h.post_json("/v1/chat/completions", &body).await;
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    h.shutdown().await;
}

#[tokio::test]
async fn tool_call_answer_has_the_fixture_shape() {
    let h = start_with(Knobs::default()).await;
    let mut body = chat_body("m");
    body["tools"] = weather_tools();
    let (status, resp) = h.post_json("/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&resp), shape(&fixture_json("chat_response_tool_calls.json")));
    let choice = &resp["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_sim"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "sample", "units": "c"}));
    h.shutdown().await;
}

#[tokio::test]
async fn tool_results_none_choice_and_never_knob_answer_in_text() {
    let h = start(SimConfig {
        models: [("no-tools".to_owned(), Knobs { tool_calls: ToolCalls::Never, ..Knobs::default() })].into(),
        ..SimConfig::default()
    })
    .await;
    let results = fixture_json("chat_request_tool_results.json");
    let (_, resp) = h.post_json("/v1/chat/completions", &results).await;
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");
    assert!(resp["choices"][0]["message"].get("tool_calls").is_none());

    let mut body = chat_body("m");
    body["tools"] = weather_tools();
    body["tool_choice"] = json!("none");
    let (_, resp) = h.post_json("/v1/chat/completions", &body).await;
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");

    body["tool_choice"] = json!("auto");
    body["model"] = json!("no-tools");
    let (_, resp) = h.post_json("/v1/chat/completions", &body).await;
    assert_eq!(resp["choices"][0]["finish_reason"], "stop");

    // A named choice picks that tool even when it is not the first.
    let mut body = results.clone();
    body["messages"] = json!([{"role": "user", "content": "AAPL?"}]);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_stock_price"}});
    let (_, resp) = h.post_json("/v1/chat/completions", &body).await;
    let call = &resp["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_stock_price");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"ticker": "sample", "exchange": "sample"}));
    h.shutdown().await;
}

#[tokio::test]
async fn usage_knob_off_omits_usage() {
    let h = start_with(Knobs { usage: false, ..Knobs::default() }).await;
    let (status, resp) = h.post_json("/v1/chat/completions", &chat_body("m")).await;
    assert_eq!(status, 200);
    assert!(resp.get("usage").is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_openai_400s_and_are_recorded_failed() {
    let h = start_with(Knobs::default()).await;
    let resp = h.client.post(format!("{}/v1/chat/completions", h.base)).body("{not json").send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(shape(&err), shape(&fixture_json("errors/401_missing_api_key.json")));
    assert_eq!(err["error"]["type"], "invalid_request_error");

    let (status, err) = h.post_json("/v1/chat/completions", &json!({"model": "m"})).await;
    assert_eq!(status, 400);
    assert_eq!(err, fixture_json("errors/400_invalid_request_missing_param.json"));
    let (status, err) =
        h.post_json("/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "x"}]})).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "model");
    let mut body = chat_body("m");
    body["stream"] = json!("yes");
    assert_eq!(h.post_json("/v1/chat/completions", &body).await.0, 400);

    let log = h.sim.requests();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|r| r.outcome == Outcome::Failed && r.status == 400));
    assert_eq!(log[0].body, Value::String("{not json".into()));
    assert_eq!(log[1].model.as_deref(), Some("m"));
    h.shutdown().await;
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let h = start_with(Knobs::default()).await;
    let body = chat_body("gpt-4o-mini");
    let resp = h
        .client
        .post(format!("{}/v1/chat/completions", h.base))
        .header("authorization", "Bearer sk-test")
        .header("x-request-id", "req-123")
        .header("x-other", "dropped")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let sim_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(resp.status(), 200);
    let r = h.wait_for(|r| r.outcome == Outcome::Completed).await;
    assert_eq!(sim_id, format!("req_sim{}", r.seq));
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.model.as_deref(), Some("gpt-4o-mini"));
    assert!(!r.stream);
    assert_eq!(r.authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(r.request_id.as_deref(), Some("req-123"));
    assert_eq!(r.body, body);
    assert_eq!(r.status, 200);
    assert!(r.ended_ms.unwrap() >= r.started_ms);
    h.shutdown().await;
}

//! The happy paths: chat (with every field passing through), tools,
//! embeddings, models, usage records and metrics.

use super::{chat_body, start};
use serde_json::{json, Value};

#[tokio::test]
async fn chat_non_stream_passes_fields_through_and_records_usage() {
    let h = start();
    let key = h.key().await;
    let body = json!({
        "model": "chat",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
            ]}
        ],
        "temperature": 0.2, "seed": 7, "stop": ["\n\n"], "user": "u-1", "n": 2,
        "response_format": {"type": "json_object"}, "logprobs": true, "top_logprobs": 2,
        "vendor_extension": {"top_k": 5}
    });
    let r = h.post("/v1/chat/completions", &key).header("x-request-id", "trace-123").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "trace-123");
    assert_eq!(r.headers()["x-switchyard-route"], "chat-a");
    assert_eq!(r.headers()["x-switchyard-attempts"], "1");
    let overhead: f64 = r.headers()["x-switchyard-overhead-ms"].to_str().unwrap().parse().unwrap();
    assert!(overhead >= 0.0);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["choices"].as_array().unwrap().len(), 2);
    assert!(answer["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let seen = h.sim_requests().await;
    assert_eq!(seen.len(), 1);
    let upstream = &seen[0]["body"];
    let mut expected = body.clone();
    expected["model"] = json!("model-a");
    assert_eq!(upstream, &expected, "every field but model passes through unchanged");
    assert_eq!(seen[0]["request_id"], "trace-123", "request id propagated upstream");

    let records = h.wait_usage(1).await;
    assert_eq!(records.len(), 1);
    let rec = &records[0];
    assert_eq!(rec.request_id, "trace-123");
    assert_eq!(rec.route.as_deref(), Some("chat"));
    assert_eq!(rec.deployment.as_deref(), Some("chat-a"));
    assert_eq!(rec.status, 200);
    assert_eq!(rec.usage_source, switchyard_types::UsageSource::Reported);
    assert_eq!(rec.output_tokens, answer["usage"]["completion_tokens"].as_u64());
    assert!(rec.key_id.is_some());

    let metrics = h.metrics().await;
    for name in [
        "switchyard_requests_total{operation=\"chat\",route=\"chat\",deployment=\"chat-a\",status=\"200\"} 1",
        "gen_ai_client_operation_duration_seconds_count",
        "gen_ai_client_token_usage_bucket",
        "switchyard_gateway_overhead_seconds_count{operation=\"chat\"} 1",
        "switchyard_requests_in_flight{operation=\"chat\"} 0",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
}

#[tokio::test]
async fn tool_calls_round_trip() {
    let h = start();
    let key = h.key().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "parallel_tool_calls": false});
    let r = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let upstream = &h.sim_requests().await[0]["body"];
    assert_eq!(upstream["tools"], tools);
    assert_eq!(upstream["tool_choice"], body["tool_choice"]);
    assert_eq!(upstream["parallel_tool_calls"], false);

    // Second turn with the tool result: a text answer.
    let turn2 = json!({"model": "chat", "tools": tools, "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "{\"temp\": 21}"}
    ]});
    let v: Value = h.post("/v1/chat/completions", &key).json(&turn2).send().await.unwrap().json().await.unwrap();
    assert!(v["choices"][0]["message"]["content"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn embeddings_and_models() {
    let h = start();
    let key = h.key().await;
    let r = h
        .post("/v1/embeddings", &key)
        .json(&json!({"model": "embed", "input": ["a", "b"], "dimensions": 16, "encoding_format": "float"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-route"], "embed");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 16);
    assert_eq!(h.sim_requests().await[0]["body"]["model"], "embed-model");

    let models: Value =
        h.http.get(format!("{}/v1/models", h.url)).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["chat", "failover", "embed"]);
    let one = h.http.get(format!("{}/v1/models/chat", h.url)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(one.status(), 200);

    // A key limited to one route sees and may use only that one.
    let limited = h.create_key(json!({"name": "limited", "allowed_routes": ["chat"]})).await;
    let models: Value =
        h.http.get(format!("{}/v1/models", h.url)).bearer_auth(&limited).send().await.unwrap().json().await.unwrap();
    assert_eq!(models["data"].as_array().unwrap().len(), 1);
    let r = h.post("/v1/chat/completions", &limited).json(&chat_body("failover")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // x-api-key works as well as Authorization.
    let r = h
        .http
        .post(format!("{}/v1/chat/completions", h.url))
        .header("x-api-key", &limited)
        .json(&chat_body("chat"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn missing_usage_is_estimated_with_the_tokenizer() {
    let h = start();
    let key = h.key().await;
    h.set_knobs("model-a", json!({"usage": false, "answer_tokens": 8})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat_body("chat")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let records = h.wait_usage(1).await;
    assert_eq!(records[0].usage_source, switchyard_types::UsageSource::Estimated);
    assert!(records[0].input_tokens.unwrap() > 0);
    assert!(records[0].output_tokens.unwrap() >= 8, "{:?}", records[0]);
}

#[tokio::test]
async fn a_reused_request_id_still_gets_its_own_record() {
    let h = start();
    let key = h.key().await;
    for _ in 0..2 {
        let r = h
            .post("/v1/chat/completions", &key)
            .header("x-request-id", "same")
            .json(&chat_body("chat"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let records = h.wait_usage(2).await;
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.request_id == "same"));
    assert_ne!(records[0].id, records[1].id);
}

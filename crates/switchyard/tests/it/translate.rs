//! Translation end to end: OpenAI clients on Anthropic, Gemini and Azure
//! deployments; Anthropic clients (`/v1/messages`) on OpenAI and Anthropic
//! deployments. The simulator speaks each wire format, and records what it
//! received, so both sides of every translation are checked.

use super::bin;
use futures_util::StreamExt;
use serde_json::{json, Value};
use switchyard_testkit::{base_config, Harness};

const PROVIDERS: &str = r#"
  - { name: sim-anthropic, kind: anthropic, base_url: "sim://", api_key: "sk-ant-sim" }
  - { name: sim-gemini, kind: gemini, base_url: "sim://", api_key: "AIza-sim" }
  - { name: sim-azure, kind: azure_openai, base_url: "sim://", api_key: "azure-sim" }"#;
const DEPLOYMENTS: &str = r#"
  - { name: claude, provider: sim-anthropic, model: claude-sim, capabilities: [chat, tools, vision, json] }
  - { name: gemini, provider: sim-gemini, model: gemini-sim, capabilities: [chat, tools, vision, json] }
  - { name: azure, provider: sim-azure, model: azure-dep, capabilities: [chat, tools, vision, json] }
  - { name: gemini-embed, provider: sim-gemini, model: gemini-embed, capabilities: [embeddings] }"#;
const ROUTES: &str = r#"
  - { name: on-claude, targets: [claude] }
  - { name: on-gemini, targets: [gemini] }
  - { name: on-azure, targets: [azure] }
  - { name: embed-gemini, targets: [gemini-embed] }
  - { name: claude-then-openai, targets: [claude, chat-a] }"#;

fn start() -> Harness {
    Harness::start(bin(), &base_config(PROVIDERS, DEPLOYMENTS, ROUTES))
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"}
    ]})
}

fn tools_body(model: &str) -> Value {
    json!({"model": model,
        "messages": [{"role": "user", "content": "Weather in Paris and Rome?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]})
}

/// `POST /v1/messages` as the Anthropic SDK sends it.
async fn messages(h: &Harness, key: &str, body: &Value) -> reqwest::Response {
    let request = h.http.post(format!("{}/v1/messages", h.url)).header("x-api-key", key);
    request.header("anthropic-version", "2023-06-01").json(body).send().await.unwrap()
}

/// `(event name, data)` of every SSE event in a body.
fn events(text: &str) -> Vec<(Option<String>, String)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|e| {
            let mut name = None;
            let mut data = None;
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(d.to_string());
                }
            }
            Some((name, data?))
        })
        .collect()
}

/// The OpenAI chunks of a stream (without `[DONE]`), and whether it ended with `[DONE]`.
fn openai_chunks(text: &str) -> (Vec<Value>, bool) {
    let all = events(text);
    let done = all.last().is_some_and(|(_, d)| d == "[DONE]");
    let chunks = all.iter().filter(|(_, d)| d != "[DONE]").map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    (chunks, done)
}

#[tokio::test]
async fn openai_client_on_anthropic_gemini_and_azure() {
    let h = start();
    let key = h.key().await;
    for (route, format, deployment) in
        [("on-claude", "anthropic", "claude"), ("on-gemini", "gemini", "gemini"), ("on-azure", "azure", "azure")]
    {
        h.clear_sim_requests().await;
        let r = h.post("/v1/chat/completions", &key).json(&chat(route)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{route}");
        assert_eq!(r.headers()["x-switchyard-route"], deployment);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion", "{route}: {v}");
        if format != "azure" {
            assert_eq!(v["model"], route, "translated answers name the route");
        }
        assert_eq!(v["choices"][0]["message"]["role"], "assistant");
        assert!(!v["choices"][0]["message"]["content"].as_str().unwrap().is_empty(), "{route}: {v}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert!(v["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{route}: {v}");

        let seen = h.sim_requests().await;
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0]["format"], format, "{route}: {}", seen[0]);
        let body = &seen[0]["body"];
        match format {
            "anthropic" => {
                assert_eq!(body["model"], "claude-sim");
                assert_eq!(body["system"], "Be brief.");
                assert_eq!(body["max_tokens"], switchyard_translate::anthropic::DEFAULT_MAX_TOKENS);
                assert_eq!(body["messages"][0]["role"], "user");
            }
            "gemini" => {
                assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be brief.");
                assert_eq!(body["contents"][0]["parts"][0]["text"], "Say hello");
            }
            _ => assert_eq!(body["messages"][1]["content"], "Say hello"),
        }
    }
    let records = h.wait_usage(3).await;
    assert!(records.iter().all(|r| r.status == 200 && r.usage_source == switchyard_types::UsageSource::Reported));
}

#[tokio::test]
async fn openai_streams_through_anthropic_and_gemini() {
    let h = start();
    let key = h.key().await;
    for route in ["on-claude", "on-gemini"] {
        let mut body = chat(route);
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let r = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let text = r.text().await.unwrap();
        let (chunks, done) = openai_chunks(&text);
        assert!(done, "{route}: a clean end is [DONE]:\n{text}");
        assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
        let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(content.split_whitespace().count(), 8, "{route}: {content:?}");
        let finish: Vec<&Value> =
            chunks.iter().map(|c| &c["choices"][0]["finish_reason"]).filter(|f| !f.is_null()).collect();
        assert_eq!(finish, [&json!("stop")], "{route}");
        let usage = &chunks.last().unwrap()["usage"];
        assert_eq!(usage["completion_tokens"], 8, "{route}: {text}");
    }
}

#[tokio::test]
async fn tool_calls_translate_both_ways() {
    let h = start();
    let key = h.key().await;
    for route in ["on-claude", "on-gemini"] {
        let r = h.post("/v1/chat/completions", &key).json(&tools_body(route)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{route}: {v}");
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], "get_weather");
        let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(args["city"].is_string(), "{route}: {args}");
        let id = call["id"].as_str().unwrap().to_string();
        assert!(!id.is_empty());

        // Stream: the arguments, split across chunks, join into the same JSON.
        let mut body = tools_body(route);
        body["stream"] = json!(true);
        let text = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap().text().await.unwrap();
        let (chunks, done) = openai_chunks(&text);
        assert!(done);
        let args: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
            .collect();
        let parsed: Value = serde_json::from_str(&args).unwrap_or_else(|e| panic!("{route}: {args:?}: {e}\n{text}"));
        assert!(parsed["city"].is_string());

        // The result goes back by id; Gemini needs the name, recovered from the call.
        h.clear_sim_requests().await;
        let mut follow = tools_body(route);
        follow["messages"] = json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": id, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "18C and sunny"}
        ]);
        let r = h.post("/v1/chat/completions", &key).json(&follow).send().await.unwrap();
        assert_eq!(r.status(), 200, "{route}: {}", r.text().await.unwrap());
        let seen = h.sim_requests().await;
        let sent = &seen[0]["body"];
        if route == "on-gemini" {
            let response = &sent["contents"][2]["parts"][0]["functionResponse"];
            assert_eq!(response["name"], "get_weather", "{sent}");
        } else {
            let block = &sent["messages"][2]["content"][0];
            assert_eq!(block["type"], "tool_result", "{sent}");
            assert_eq!(block["tool_use_id"], id.as_str());
        }
    }
}

#[tokio::test]
async fn anthropic_clients_reach_any_deployment() {
    let h = start();
    let key = h.key().await;
    for (route, upstream_format) in [("chat", "openai"), ("on-claude", "anthropic"), ("on-gemini", "gemini")] {
        h.clear_sim_requests().await;
        let body = json!({"model": route, "max_tokens": 64, "system": "Be brief.",
            "messages": [{"role": "user", "content": "Say hello"}]});
        let r = messages(&h, &key, &body).await;
        assert_eq!(r.status(), 200, "{route}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "message", "{route}: {v}");
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["content"][0]["type"], "text");
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(v["usage"]["output_tokens"].as_u64().unwrap() > 0);
        let seen = h.sim_requests().await;
        assert_eq!(seen[0]["format"], upstream_format, "{route}");

        // Streamed, the event sequence is Anthropic's.
        let mut body = body.clone();
        body["stream"] = json!(true);
        let r = messages(&h, &key, &body).await;
        let text = r.text().await.unwrap();
        let evs = events(&text);
        let names: Vec<&str> = evs.iter().filter_map(|(n, _)| n.as_deref()).collect();
        assert_eq!(names.first(), Some(&"message_start"), "{route}: {text}");
        assert_eq!(names.last(), Some(&"message_stop"), "{route}: {text}");
        assert!(names.contains(&"content_block_start") && names.contains(&"message_delta"));
        let text_out: String = evs
            .iter()
            .filter(|(n, _)| n.as_deref() == Some("content_block_delta"))
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["delta"]["text"].as_str().map(str::to_string))
            .collect();
        assert_eq!(text_out.split_whitespace().count(), 8, "{route}: {text}");
    }
}

#[tokio::test]
async fn untranslatable_fields_are_refused_by_name() {
    let h = start();
    let key = h.key().await;
    let mut body = chat("on-claude");
    body["seed"] = json!(7);
    let r = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "seed", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");

    let mut body = chat("on-gemini");
    body["logit_bias"] = json!({"50256": -100});
    let v: Value = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["error"]["param"], "logit_bias", "{v}");
    assert!(h.sim_requests().await.is_empty(), "nothing reached an upstream");
    let metrics = h.metrics().await;
    assert!(
        metrics.contains(
            r#"switchyard_translations_total{client_format="openai",provider_format="anthropic",outcome="refused"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn messages_errors_are_anthropic_shaped() {
    let h = start();
    let key = h.key().await;
    let post = |key: Option<&str>, body: Value| {
        let mut r = h.http.post(format!("{}/v1/messages", h.url)).header("anthropic-version", "2023-06-01");
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        r.json(&body).send()
    };
    let ok = json!({"model": "chat", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    let r = post(None, ok.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "authentication_error");

    let mut unknown = ok.clone();
    unknown["model"] = json!("nope");
    let r = post(Some(&key), unknown).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["type"], "not_found_error");

    let r = post(Some(&key), json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})).await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("max_tokens"), "{v}");

    // A 529 from Anthropic falls through to the next deployment.
    h.set_knobs("claude-sim", json!({"fail_next": 1, "error_status": 529, "answer_tokens": 8})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat("claude-then-openai")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-route"], "chat-a");
    assert_eq!(r.headers()["x-switchyard-attempts"], "2");

    // An upstream 429 from Anthropic reaches an OpenAI client as OpenAI's 429.
    h.set_knobs("claude-sim", json!({"rate_limit_next": 1, "retry_after_s": 9, "answer_tokens": 8})).await;
    let r = h.post("/v1/chat/completions", &key).json(&chat("on-claude")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "9");
    assert!(r.headers().contains_key("x-ratelimit-limit-requests"), "Anthropic's limits in OpenAI's names");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");

    // It cools down for its retry-after: the next requests go elsewhere
    // at once, or get a 429 without reaching it.
    let r = h.post("/v1/chat/completions", &key).json(&chat("claude-then-openai")).send().await.unwrap();
    assert_eq!(
        (r.headers()["x-switchyard-route"].to_str().unwrap(), r.headers()["x-switchyard-attempts"].to_str().unwrap()),
        ("chat-a", "1")
    );
    let r = h.post("/v1/chat/completions", &key).json(&chat("on-claude")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=9).contains(&wait), "{wait}");
}

#[tokio::test]
async fn a_cut_translated_stream_ends_with_an_error_event() {
    let h = start();
    let key = h.key().await;
    h.set_knobs("claude-sim", json!({"cut_after_tokens": 3, "answer_tokens": 8})).await;
    let mut body = chat("on-claude");
    body["stream"] = json!(true);
    let r = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap();
    let mut stream = r.bytes_stream();
    let mut text = String::new();
    while let Some(Ok(chunk)) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let (chunks, done) = openai_chunks(&text);
    assert!(!done, "a cut stream never ends with [DONE]:\n{text}");
    assert!(chunks.last().unwrap()["error"]["message"].is_string(), "{text}");
    let records = h.wait_usage(1).await;
    assert_eq!(records[0].error_kind.as_deref(), Some("upstream_failed"));
}

#[tokio::test]
async fn embeddings_through_gemini_and_count_tokens() {
    let h = start();
    let key = h.key().await;
    let r = h
        .post("/v1/embeddings", &key)
        .json(&json!({"model": "embed-gemini", "input": ["one", "two"], "encoding_format": "float"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let dims = v["data"][0]["embedding"].as_array().unwrap().len();
    assert!(dims > 0);
    let seen = h.sim_requests().await;
    assert_eq!(seen[0]["format"], "gemini");

    let r = h
        .post("/v1/embeddings", &key)
        .json(&json!({"model": "embed-gemini", "input": "one", "encoding_format": "base64"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    use base64::Engine;
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap().len(), dims * 4);

    let r = h
        .http
        .post(format!("{}/v1/messages/count_tokens", h.url))
        .header("x-api-key", &key)
        .json(&json!({"model": "on-claude", "messages": [{"role": "user", "content": "Hello, world"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() >= 3, "{v}");
}

#[tokio::test]
async fn anthropic_to_anthropic_passes_through() {
    let h = start();
    let key = h.key().await;
    // `service_tier` and `cache_control` on a tool would be refused or
    // dropped by translation; on a same-format route they pass untouched.
    let body = json!({"model": "on-claude", "max_tokens": 32, "service_tier": "auto",
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "noop", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "tool_choice": {"type": "none"},
        "messages": [{"role": "user", "content": "Say hello"}]});
    let r = messages(&h, &key, &body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "claude-sim", "the provider's answer, unchanged");
    let seen = h.sim_requests().await;
    let mut expected = body.clone();
    expected["model"] = json!("claude-sim");
    assert_eq!(seen[0]["body"], expected, "only model changes");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text = messages(&h, &key, &streamed).await.text().await.unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: ping"), "events are forwarded as they came, pings included");
    let records = h.wait_usage(2).await;
    for r in &records {
        assert_eq!(r.status, 200);
        assert_eq!(r.usage_source, switchyard_types::UsageSource::Reported, "{r:?}");
        assert_eq!(r.output_tokens, Some(8));
    }
}

#[tokio::test]
async fn a_provider_error_mid_stream_reaches_the_client_in_its_format() {
    let h = start();
    let key = h.key().await;
    for model in ["claude-sim", "gemini-sim", "model-a"] {
        h.set_knobs(model, json!({"error_after_tokens": 3, "answer_tokens": 8})).await;
    }
    // OpenAI client; Anthropic and Gemini upstreams fail after 3 tokens.
    for route in ["on-claude", "on-gemini"] {
        let mut body = chat(route);
        body["stream"] = json!(true);
        let text = h.post("/v1/chat/completions", &key).json(&body).send().await.unwrap().text().await.unwrap();
        let (chunks, done) = openai_chunks(&text);
        assert!(!done, "{route}: no [DONE] after an error:\n{text}");
        let content: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(content.split_whitespace().count(), 3, "{route}: the text before the error arrives:\n{text}");
        assert!(chunks.last().unwrap()["error"]["message"].is_string(), "{route}:\n{text}");
    }
    // Anthropic client; OpenAI, Gemini and (passed through) Anthropic
    // upstreams fail after 3 tokens.
    for route in ["chat", "on-gemini", "on-claude"] {
        let body = json!({"model": route, "max_tokens": 64, "stream": true,
            "messages": [{"role": "user", "content": "Say hello"}]});
        let r = messages(&h, &key, &body).await;
        let text = r.text().await.unwrap();
        let evs = events(&text);
        let (name, data) = evs.last().unwrap();
        assert_eq!(name.as_deref(), Some("error"), "{route}:\n{text}");
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"], "error");
        assert!(!text.contains("message_stop"), "{route}: never a clean end:\n{text}");
    }
    let records = h.wait_usage(5).await;
    assert!(records.iter().all(|r| r.error_kind.as_deref() == Some("upstream_failed")), "{records:?}");
}

/// `/v1/models` carries every field of OpenAI's and of Anthropic's model
/// lists (the samples in `openai/models_list.json` and
/// `anthropic/models_list.json`), so both SDKs read it.
#[tokio::test]
async fn models_answer_in_both_sdks_shapes() {
    let h = start();
    let key = h.key().await;
    let ours: Value =
        h.http.get(format!("{}/v1/models", h.url)).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/wire/");
    for sample in ["openai/models_list.json", "anthropic/models_list.json"] {
        let theirs: Value = serde_json::from_slice(&std::fs::read(format!("{root}{sample}")).unwrap()).unwrap();
        for k in keys(&theirs) {
            assert!(ours.get(&k).is_some(), "{sample}: list field {k} missing in {ours}");
        }
        for k in keys(&theirs["data"][0]) {
            assert!(ours["data"][0].get(&k).is_some(), "{sample}: model field {k} missing in {}", ours["data"][0]);
        }
    }
    assert_eq!(ours["first_id"], ours["data"][0]["id"]);
    assert_eq!(ours["has_more"], false);
}

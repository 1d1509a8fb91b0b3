//! Gemini's API, compared with `fixtures/wire/gemini/`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{
    json_of, keys, read_until_end, shape, shape_without, start_with, text_of, wire_fixture, wire_fixture_json,
};
use crate::{Format, Knobs, Outcome, ToolCalls};

const KEY: [(&str, &str); 1] = [("x-goog-api-key", "AIza-test")];

fn fx(name: &str) -> Value {
    wire_fixture_json(&format!("gemini/{name}"))
}

fn url(model: &str, method: &str) -> String {
    format!("/v1beta/models/{model}:{method}")
}

fn generate(model: &str) -> String {
    url(model, "generateContent")
}

fn stream(model: &str) -> String {
    url(model, "streamGenerateContent?alt=sse")
}

fn body() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "Hello there, sim!"}]}]})
}

/// The chunks of a Gemini SSE body: each `data: {…}\r\n\r\n`, no `[DONE]`.
pub(super) fn chunks(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\r\n\r\n"), "framing: {body:?}");
    body[..body.len() - 4]
        .split("\r\n\r\n")
        .map(|e| {
            let data = e.strip_prefix("data: ").unwrap_or_else(|| panic!("bad event {e:?}"));
            assert!(!data.contains('\n') && !data.contains('\r'), "multi-line event {e:?}");
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

fn fixture_chunks(name: &str) -> Vec<Value> {
    chunks(&wire_fixture(&format!("gemini/{name}")))
}

pub(super) fn text(resp: &Value) -> String {
    resp["candidates"][0]["content"]["parts"].as_array().unwrap().iter().filter_map(|p| p["text"].as_str()).collect()
}

#[tokio::test]
async fn text_answer_has_the_fixture_shape() {
    let h = start_with(Knobs::default()).await;
    let resp = h.post_with(&generate("gemini-sim"), &KEY, &body()).await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let (_, v) = json_of(resp).await;
    // Exactly the keys of the non-thinking fixture; the text fixture adds `thoughtsTokenCount`.
    assert_eq!(shape(&v), shape(&fx("generate_content_response_max_tokens.json")));
    let thinking = fx("generate_content_response_text.json");
    assert_eq!(shape_without(&v, &["usageMetadata"]), shape_without(&thinking, &["usageMetadata"]));
    let mut usage_keys = keys(&thinking["usageMetadata"]);
    usage_keys.remove("thoughtsTokenCount");
    assert_eq!(keys(&v["usageMetadata"]), usage_keys);
    let candidate = &v["candidates"][0];
    assert_eq!((&candidate["finishReason"], &candidate["index"]), (&json!("STOP"), &json!(0)));
    assert_eq!(candidate["content"]["role"], "model");
    assert_eq!(text(&v).split(' ').count(), 16);
    let usage = &v["usageMetadata"];
    assert_eq!((&usage["promptTokenCount"], &usage["candidatesTokenCount"]), (&json!(4), &json!(16)));
    assert_eq!(usage["totalTokenCount"], 20);
    assert_eq!(v["modelVersion"], "gemini-sim");
    assert!(v["responseId"].as_str().unwrap().starts_with("sim"));
    let r = h.wait_for(|r| r.outcome == Outcome::Completed).await;
    assert_eq!(request_id, format!("req_sim{}", r.seq));
    assert_eq!(r.format, Format::Gemini);
    assert_eq!(r.path, "/v1beta/models/{model}:generateContent");
    assert_eq!(r.model.as_deref(), Some("gemini-sim"));
    assert!(!r.stream);
    assert_eq!(r.body, body());
    h.shutdown().await;
}

#[tokio::test]
async fn max_output_tokens_finishes_with_max_tokens() {
    let h = start_with(Knobs::default()).await;
    let mut b = body();
    b["generationConfig"] = json!({"maxOutputTokens": 3});
    b["systemInstruction"] = json!({"parts": [{"text": "abcdefgh"}]});
    let (status, v) = h.post_json_with(&generate("m"), &KEY, &b).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&v), shape(&fx("generate_content_response_max_tokens.json")));
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(text(&v), "lorem ipsum dolor");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 3);
    // The system instruction counts: 8 + 17 characters.
    assert_eq!(v["usageMetadata"]["promptTokenCount"], 6);
    b["generationConfig"] = json!({"maxOutputTokens": "many"});
    assert_eq!(h.post_json_with(&generate("m"), &KEY, &b).await.0, 400);
    h.shutdown().await;
}

#[tokio::test]
async fn function_call_has_the_fixture_shape() {
    let h = start_with(Knobs::default()).await;
    // Tools, toolConfig AUTO, an inline image; the key in the query this time.
    let req = fx("generate_content_request.json");
    let (status, v) = h.post_json(&format!("{}?key=AIza-test", generate("m")), &req).await;
    assert_eq!(status, 200);
    let fixture = fx("generate_content_response_function_call.json");
    assert_eq!(keys(&v), keys(&fixture));
    assert_eq!(keys(&v["candidates"][0]), keys(&fixture["candidates"][0]));
    assert_eq!(keys(&v["candidates"][0]["content"]), keys(&fixture["candidates"][0]["content"]));
    // Like the fixture's second part (the first also carries a thoughtSignature).
    let parts = v["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(shape(&parts[0]), shape(&fixture["candidates"][0]["content"]["parts"][1]));
    assert_eq!(parts[0]["functionCall"], json!({"name": "get_weather", "args": {"location": "sample"}}));
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    h.shutdown().await;
}

#[tokio::test]
async fn mode_none_function_responses_allowed_names_and_the_knob() {
    let h = start_with(Knobs::default()).await;
    let mut req = fx("generate_content_request.json");
    req["toolConfig"] = fx("tool_config_variants.json")["none"].clone();
    let (_, v) = h.post_json_with(&generate("m"), &KEY, &req).await;
    assert!(v["candidates"][0]["content"]["parts"][0]["text"].is_string());

    let (status, v) =
        h.post_json_with(&generate("m"), &KEY, &fx("generate_content_request_function_response.json")).await;
    assert_eq!(status, 200);
    assert!(v["candidates"][0]["content"]["parts"][0]["text"].is_string());

    // parametersJsonSchema, upper-case OpenAPI types, and a forced function.
    let mut req = body();
    req["tools"] = json!([{"functionDeclarations": [
        {"name": "get_weather", "parameters": {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}, "required": ["n"]}},
        {"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}
    ]}]);
    let (_, v) = h.post_json_with(&generate("m"), &KEY, &req).await;
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["functionCall"]["args"], json!({"n": 1}));
    req["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}});
    let (_, v) = h.post_json_with(&generate("m"), &KEY, &req).await;
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["functionCall"],
        json!({"name": "get_time", "args": {"tz": "sample"}})
    );

    h.sim.set_knobs(None, Knobs { tool_calls: ToolCalls::Never, ..Knobs::default() });
    let (_, v) = h.post_json_with(&generate("m"), &KEY, &req).await;
    assert!(v["candidates"][0]["content"]["parts"][0]["text"].is_string());
    h.shutdown().await;
}

#[tokio::test]
async fn text_stream_matches_the_fixture_chunks() {
    let h = start_with(Knobs { answer_tokens: 10, ..Knobs::default() }).await;
    let resp = h.post_with(&stream("gemini-sim"), &KEY, &body()).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let (_, sse) = text_of(resp).await;
    assert!(!sse.contains("[DONE]"));
    let ours = chunks(&sse);
    let fixture = fixture_chunks("stream_generate_content_text.sse");
    assert_eq!(ours.len(), 3, "4 + 4 + 2 words");
    for c in &ours[..2] {
        assert_eq!(shape(c), shape(&fixture[0]));
        assert!(c["candidates"][0].get("finishReason").is_none());
    }
    assert_eq!(shape(&ours[2]), shape(&fixture[fixture.len() - 1]));
    assert_eq!(ours[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(ours[2]["usageMetadata"]["candidatesTokenCount"], 10);
    assert_eq!(ours[2]["usageMetadata"]["totalTokenCount"], 14);
    let streamed: String = ours.iter().map(text).collect();
    let (_, whole) = h.post_json_with(&generate("gemini-sim"), &KEY, &body()).await;
    assert_eq!(streamed, text(&whole));
    let r = h.wait_for(|r| r.stream && r.outcome == Outcome::Completed).await;
    assert_eq!(r.path, "/v1beta/models/{model}:streamGenerateContent");
    assert_eq!((r.format, r.status), (Format::Gemini, 200));
    h.shutdown().await;
}

#[tokio::test]
async fn function_call_stream_is_one_chunk_like_the_fixture() {
    let h = start_with(Knobs::default()).await;
    let (status, sse) = text_of(h.post_with(&stream("m"), &KEY, &fx("generate_content_request.json")).await).await;
    assert_eq!(status, 200);
    let ours = chunks(&sse);
    let fixture = fixture_chunks("stream_generate_content_function_call.sse");
    assert_eq!(ours.len(), 1);
    assert_eq!(shape(&ours[0]), shape(&fixture[0]));
    assert_eq!(ours[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_weather");
    h.shutdown().await;
}

#[tokio::test]
async fn ttft_and_pacing_delay_the_chunks() {
    let h = start_with(Knobs { ttft_ms: 100, tokens_per_sec: 50.0, answer_tokens: 8, ..Knobs::default() }).await;
    let sent = Instant::now();
    let mut resp = h.post_with(&stream("m"), &KEY, &body()).await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(sent.elapsed() >= Duration::from_millis(100));
    assert!(first.starts_with(b"data: {\"candidates\""));
    let (rest, failed) = read_until_end(resp).await;
    assert!(!failed);
    // The second chunk starts with word 5, due 4 × 20 ms after the first.
    assert!(sent.elapsed() >= Duration::from_millis(100 + 4 * 20));
    assert_eq!(chunks(&format!("{}{rest}", String::from_utf8_lossy(&first))).len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn cut_after_tokens_drops_the_connection_mid_answer() {
    let h = start_with(Knobs { cut_after_tokens: Some(6), answer_tokens: 10, ..Knobs::default() }).await;
    let resp = h.post_with(&stream("m"), &KEY, &body()).await;
    assert_eq!(resp.status(), 200);
    let (sse, failed) = read_until_end(resp).await;
    assert!(failed, "the body must end in an error, not a clean end");
    let ours = chunks(&sse);
    let words: Vec<usize> = ours.iter().map(|c| text(c).split_whitespace().count()).collect();
    assert_eq!(words, [4, 2]);
    assert!(ours.iter().all(|c| c["candidates"][0].get("finishReason").is_none()));
    let r = h.wait_for(|r| r.outcome == Outcome::Cut).await;
    assert_eq!((r.format, r.status), (Format::Gemini, 200));
    h.shutdown().await;
}

/// The chunk `error_after_tokens` ends a Gemini stream with.
const ERROR_CHUNK: &str = "data: {\"error\":{\"code\":500,\"message\":\"An internal error has occurred. Please retry \
                           or try using a different model.\",\"status\":\"INTERNAL\"}}\r\n\r\n";

#[tokio::test]
async fn error_after_tokens_ends_with_an_error_chunk() {
    let h = start_with(Knobs { error_after_tokens: Some(6), answer_tokens: 10, ..Knobs::default() }).await;
    let resp = h.post_with(&stream("m"), &KEY, &body()).await;
    assert_eq!(resp.status(), 200);
    let (sse, failed) = read_until_end(resp).await;
    assert!(!failed, "the body must end cleanly, not in an error");
    assert!(sse.ends_with(ERROR_CHUNK), "{sse}");
    let mut ours = chunks(&sse);
    let error = ours.pop().unwrap();
    let words: Vec<usize> = ours.iter().map(|c| text(c).split_whitespace().count()).collect();
    assert_eq!(words, [4, 2]);
    assert!(ours.iter().all(|c| c["candidates"][0].get("finishReason").is_none()));
    // The envelope of a 500, as a non-stream answer and the JSON-array stream carry it.
    let internal = fx("errors/500_internal.json");
    assert_eq!(shape(&error), shape(&internal));
    assert_eq!(error["error"]["code"], internal["error"]["code"]);
    assert_eq!(error["error"]["status"], internal["error"]["status"]);
    assert_eq!(shape(&error), shape(&fx("errors/streaming_error_without_alt_sse.json")[0]));
    let r = h.wait_for(|r| r.outcome == Outcome::Errored).await;
    assert_eq!((r.format, r.status), (Format::Gemini, 200));
    assert!(r.stream);

    // A function call counts as one word; the error replaces the finish.
    h.sim.set_knobs(None, Knobs { error_after_tokens: Some(1), ..Knobs::default() });
    let request = fx("generate_content_request.json");
    let (sse, failed) = read_until_end(h.post_with(&stream("m"), &KEY, &request).await).await;
    assert!(!failed);
    assert!(sse.ends_with(ERROR_CHUNK), "{sse}");
    let ours = chunks(&sse);
    assert_eq!(ours.len(), 2);
    assert_eq!(ours[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_weather");
    assert!(ours[0]["candidates"][0].get("finishReason").is_none());
    // After no word at all, the error is all there is.
    h.sim.set_knobs(None, Knobs { error_after_tokens: Some(0), ..Knobs::default() });
    let (sse, failed) = read_until_end(h.post_with(&stream("m"), &KEY, &body()).await).await;
    assert!(!failed);
    assert_eq!(sse, ERROR_CHUNK);
    h.shutdown().await;
}

#[tokio::test]
async fn error_after_tokens_spares_shorter_answers_and_non_stream_requests() {
    let h = start_with(Knobs { error_after_tokens: Some(4), answer_tokens: 3, ..Knobs::default() }).await;
    let (status, sse) = text_of(h.post_with(&stream("m"), &KEY, &body()).await).await;
    assert_eq!(status, 200);
    let ours = chunks(&sse);
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["candidates"][0]["finishReason"], "STOP");
    let r = h.wait_for(|r| r.stream && r.outcome != Outcome::InProgress).await;
    assert_eq!(r.outcome, Outcome::Completed);

    // Non-stream answers ignore the knob.
    h.sim.set_knobs(None, Knobs { error_after_tokens: Some(1), ..Knobs::default() });
    let (status, v) = h.post_json_with(&generate("m"), &KEY, &body()).await;
    assert_eq!(status, 200);
    assert_eq!(v["candidates"][0]["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 16);
    let r = h.wait_for(|r| !r.stream && r.outcome != Outcome::InProgress).await;
    assert_eq!((r.outcome, r.status), (Outcome::Completed, 200));
    h.shutdown().await;
}

#[tokio::test]
async fn key_method_and_body_errors_use_googles_envelope() {
    let h = start_with(Knobs::default()).await;
    let (status, err) = h.post_json(&generate("m"), &body()).await;
    assert_eq!(status, 400);
    assert_eq!(err, fx("errors/400_api_key_invalid.json"));
    let (status, _) = h.post_json(&format!("{}?key=", generate("m")), &body()).await;
    assert_eq!(status, 400);

    let (status, err) = h.post_json_with(&generate("m"), &KEY, &json!({"contents": []})).await;
    assert_eq!(status, 400);
    assert_eq!(shape(&err), shape(&fx("errors/400_invalid_argument_unknown_field.json")));
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");

    let resp = h.client.post(format!("{}{}", h.base, generate("m"))).header(KEY[0].0, KEY[0].1).body("{nope");
    let (status, err) = json_of(resp.send().await.unwrap()).await;
    assert_eq!((status, err["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));

    let (status, err) = h.post_json_with(&url("m", "predict"), &KEY, &body()).await;
    assert_eq!(status, 404);
    assert_eq!(shape(&err), shape(&fx("errors/404_not_found.json")));
    let (status, err) = h.post_json_with(&url("m", "streamGenerateContent"), &KEY, &body()).await;
    assert_eq!((status, err["error"]["code"].as_u64()), (400, Some(400)));

    let log = h.sim.requests();
    assert_eq!(log.len(), 6);
    assert!(log.iter().all(|r| r.outcome == Outcome::Failed && r.format == Format::Gemini));
    assert_eq!(log[3].body, Value::String("{nope".into()));
    assert_eq!(log[4].path, "/v1beta/models/{model}:{method}");
    h.shutdown().await;
}

#[tokio::test]
async fn injected_errors_match_the_fixtures() {
    let h = start_with(Knobs::default()).await;
    for (status, fixture) in [(500, "500_internal.json"), (503, "503_unavailable.json")] {
        h.sim.set_knobs(Some("m"), Knobs { fail_next: 1, error_status: status, ..Knobs::default() });
        let (got, err) = h.post_json_with(&stream("m"), &KEY, &body()).await;
        assert_eq!(got, status);
        assert_eq!(err, fx(&format!("errors/{fixture}")));
    }
    h.sim.set_knobs(Some("m"), Knobs { fail_next: 1, error_status: 404, ..Knobs::default() });
    let (got, err) = h.post_json_with(&generate("m"), &KEY, &body()).await;
    assert_eq!((got, err["error"]["status"].as_str()), (404, Some("NOT_FOUND")));

    h.sim.set_knobs(Some("m"), Knobs { rate_limit_next: 1, retry_after_s: 3, ..Knobs::default() });
    let (got, err) = h.post_json_with(&generate("m"), &KEY, &body()).await;
    assert_eq!(got, 429);
    let fixture = fx("errors/429_resource_exhausted.json");
    assert_eq!(shape(&err), shape(&fixture));
    assert_eq!(err["error"]["status"], "RESOURCE_EXHAUSTED");
    let details = err["error"]["details"].as_array().unwrap();
    let types: Vec<&Value> = details.iter().map(|d| &d["@type"]).collect();
    let fixture_types: Vec<&Value> =
        fixture["error"]["details"].as_array().unwrap().iter().map(|d| &d["@type"]).collect();
    assert_eq!(types, fixture_types);
    for (ours, theirs) in details.iter().zip(fixture["error"]["details"].as_array().unwrap()) {
        assert_eq!(shape(ours), shape(theirs));
    }
    assert_eq!(details[2]["retryDelay"], "3s");
    assert_eq!(details[0]["violations"][0]["quotaDimensions"]["model"], "m");
    h.shutdown().await;
}

#[tokio::test]
async fn hang_is_recorded_cancelled_when_the_client_leaves() {
    let h = start_with(Knobs { hang: true, ..Knobs::default() }).await;
    let tcp = h.raw_post_with(&stream("stuck"), &KEY, &body()).await;
    let r = h.wait_for(|r| r.model.as_deref() == Some("stuck")).await;
    assert_eq!((r.outcome, r.format), (Outcome::InProgress, Format::Gemini));
    drop(tcp);
    let r = h.wait_for(|r| r.outcome == Outcome::Cancelled).await;
    assert!(r.stream);
    assert_eq!(r.status, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn embeddings_share_openais_vectors() {
    let h = start_with(Knobs::default()).await;
    let model = "gemini-embedding-001";
    let (status, one) = h.post_json_with(&url(model, "embedContent"), &KEY, &fx("embed_content_request.json")).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&one), shape(&fx("embed_content_response.json")));
    let values = &one["embedding"]["values"];
    assert_eq!(values.as_array().unwrap().len(), 8);
    // The same text through OpenAI's route gives the same floats.
    let openai = json!({"model": "e", "input": "What is the meaning of life?", "dimensions": 8});
    let (_, o) = h.post_json("/v1/embeddings", &openai).await;
    assert_eq!(values, &o["data"][0]["embedding"]);

    let batch = fx("batch_embed_contents_request.json");
    let (status, many) = h.post_json_with(&url(model, "batchEmbedContents"), &KEY, &batch).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&many), shape(&fx("batch_embed_contents_response.json")));
    assert_eq!(many["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(&many["embeddings"][0]["values"], values);
    assert_ne!(many["embeddings"][1]["values"], *values);

    let plain = json!({"content": {"parts": [{"text": "x"}]}});
    let (_, v) = h.post_json_with(&url(model, "embedContent"), &KEY, &plain).await;
    assert_eq!(v["embedding"]["values"].as_array().unwrap().len(), 768);
    for (method, bad) in [
        ("batchEmbedContents", json!({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]})),
        ("batchEmbedContents", json!({"requests": []})),
        ("embedContent", json!({"model": "models/gemini-embedding-001"})),
        ("embedContent", json!({"content": {"parts": [{"text": "x"}]}, "outputDimensionality": 0})),
    ] {
        let (status, err) = h.post_json_with(&url(model, method), &KEY, &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
    }
    let r = &h.sim.requests()[0];
    assert_eq!((r.path.as_str(), r.model.as_deref()), ("/v1beta/models/{model}:embedContent", Some(model)));
    h.shutdown().await;
}

#[tokio::test]
async fn count_tokens_matches_the_prompt_token_count() {
    let h = start_with(Knobs::default()).await;
    let req = fx("count_tokens_request.json");
    let (status, count) = h.post_json_with(&url("m", "countTokens"), &KEY, &req).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&count), shape(&fx("count_tokens_response.json")));
    let (_, answer) = h.post_json_with(&generate("m"), &KEY, &req).await;
    assert_eq!(count["totalTokens"], answer["usageMetadata"]["promptTokenCount"]);
    // "The quick brown fox jumps over the lazy dog." is 44 characters.
    assert_eq!(count["totalTokens"], 11);
    let wrapped = json!({"generateContentRequest": {"model": "models/m", "contents": req["contents"]}});
    let (_, again) = h.post_json_with(&url("m", "countTokens"), &KEY, &wrapped).await;
    assert_eq!(again["totalTokens"], 11);
    assert_eq!(h.post_json_with(&url("m", "countTokens"), &KEY, &json!({})).await.0, 400);
    h.shutdown().await;
}

//! Azure OpenAI's URLs over the OpenAI handlers.

use serde_json::{json, Value};

use super::stream::ERROR_EVENT;
use super::{
    chat_body, fixture_json, json_of, read_until_end, shape, sse_chunks, sse_events, start_with, text_of,
    wire_fixture_json,
};
use crate::{Format, Knobs, Outcome};

const KEY: [(&str, &str); 1] = [("api-key", "0123456789abcdef")];
const CHAT: &str = "/openai/deployments/my-gpt4o-deployment/chat/completions?api-version=2024-10-21";
const EMBEDDINGS: &str = "/openai/deployments/my-embed/embeddings?api-version=2024-10-21";

/// The body of `azure_chat_request_deployments.http` (no `model`), as a non-stream request.
fn deployment_body() -> Value {
    json!({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello!"}],
           "max_tokens": 256})
}

#[tokio::test]
async fn deployment_chat_is_openai_chat_with_the_deployment_as_model() {
    let h = start_with(Knobs::default()).await;
    h.sim.set_knobs(Some("my-gpt4o-deployment"), Knobs { answer_tokens: 3, ..Knobs::default() });
    let resp = h.post_with(CHAT, &KEY, &deployment_body()).await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let (_, v) = json_of(resp).await;
    assert_eq!(shape(&v), shape(&fixture_json("chat_response_text.json")));
    assert_eq!(v["model"], "my-gpt4o-deployment");
    assert_eq!(v["usage"]["completion_tokens"], 3, "the deployment's knobs apply");
    // A `model` in the body is ignored.
    let mut with_model = deployment_body();
    with_model["model"] = json!("gpt-4o");
    let (_, v) = h.post_json_with(CHAT, &KEY, &with_model).await;
    assert_eq!(v["model"], "my-gpt4o-deployment");
    let r = &h.sim.requests()[0];
    assert_eq!(request_id, format!("req_sim{}", r.seq));
    assert_eq!(r.format, Format::Azure);
    assert_eq!(r.path, "/openai/deployments/{deployment}/chat/completions");
    assert_eq!(r.model.as_deref(), Some("my-gpt4o-deployment"));
    assert_eq!(r.body, deployment_body());
    assert_eq!((r.outcome, r.status), (Outcome::Completed, 200));
    h.shutdown().await;
}

#[tokio::test]
async fn deployment_stream_with_usage() {
    let h = start_with(Knobs { answer_tokens: 2, ..Knobs::default() }).await;
    let mut body = deployment_body();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (status, sse) = text_of(h.post_with(CHAT, &KEY, &body).await).await;
    assert_eq!(status, 200);
    let chunks = sse_chunks(&sse);
    assert_eq!(chunks.len(), 5, "role, 2 words, finish, usage");
    assert!(chunks.iter().all(|c| c["model"] == "my-gpt4o-deployment"));
    assert_eq!(chunks[4]["usage"]["completion_tokens"], 2);
    let r = h.wait_for(|r| r.outcome == Outcome::Completed).await;
    assert!(r.stream);
    assert_eq!(r.format, Format::Azure);
    h.shutdown().await;
}

#[tokio::test]
async fn deployment_stream_error_after_tokens_is_openais_error_event() {
    let h = start_with(Knobs { error_after_tokens: Some(2), ..Knobs::default() }).await;
    let mut body = deployment_body();
    body["stream"] = json!(true);
    let resp = h.post_with(CHAT, &KEY, &body).await;
    assert_eq!(resp.status(), 200);
    let (sse, failed) = read_until_end(resp).await;
    assert!(!failed, "the body must end cleanly");
    assert!(sse.ends_with(ERROR_EVENT), "{sse}");
    let events = sse_events(&sse);
    assert_eq!(events.len(), 4, "role, 2 words, the error");
    assert!(!events.iter().any(|e| e == "[DONE]"));
    let r = h.wait_for(|r| r.outcome == Outcome::Errored).await;
    assert_eq!((r.format, r.status), (Format::Azure, 200));
    h.shutdown().await;
}

#[tokio::test]
async fn missing_key_and_api_version_are_refused_and_recorded() {
    let h = start_with(Knobs::default()).await;
    let (status, err) = h.post_json(CHAT, &deployment_body()).await;
    assert_eq!(status, 401);
    assert_eq!(err, wire_fixture_json("openai_compatible/azure_error_401.json"));
    let no_version = "/openai/deployments/my-gpt4o-deployment/chat/completions";
    let (status, err) = h.post_json_with(no_version, &KEY, &deployment_body()).await;
    assert_eq!(status, 400);
    assert_eq!(shape(&err), shape(&fixture_json("errors/400_invalid_request_missing_param.json")));
    assert_eq!(err["error"]["param"], "api-version");
    let (status, _) = h.post_json(EMBEDDINGS, &json!({"input": "x"})).await;
    assert_eq!(status, 401);
    let log = h.sim.requests();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|r| r.outcome == Outcome::Failed && r.format == Format::Azure));
    assert_eq!(log.iter().map(|r| r.status).collect::<Vec<_>>(), [401, 400, 401]);
    assert_eq!(log[0].model.as_deref(), Some("my-gpt4o-deployment"));
    assert_eq!(log[2].path, "/openai/deployments/{deployment}/embeddings");
    h.shutdown().await;
}

#[tokio::test]
async fn v1_routes_take_bearer_or_api_key_and_the_body_model() {
    let h = start_with(Knobs::default()).await;
    let bearer = [("authorization", "Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.REDACTED")];
    let (status, v) = h.post_json_with("/openai/v1/chat/completions", &bearer, &chat_body("my-gpt4o-deployment")).await;
    assert_eq!(status, 200);
    assert_eq!(v["model"], "my-gpt4o-deployment");
    let (status, _) = h.post_json_with("/openai/v1/chat/completions", &KEY, &chat_body("d")).await;
    assert_eq!(status, 200);
    let (status, err) = h.post_json("/openai/v1/chat/completions", &chat_body("d")).await;
    assert_eq!(status, 401);
    assert_eq!(err["error"]["code"], "401");
    // v1 needs `model` like OpenAI.
    let (status, err) = h.post_json_with("/openai/v1/chat/completions", &KEY, &deployment_body()).await;
    assert_eq!((status, err["error"]["param"].as_str()), (400, Some("model")));
    let (status, v) =
        h.post_json_with("/openai/v1/embeddings", &KEY, &json!({"model": "e", "input": "x", "dimensions": 4})).await;
    assert_eq!(status, 200);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 4);
    let r = &h.sim.requests()[0];
    assert_eq!((r.path.as_str(), r.format), ("/openai/v1/chat/completions", Format::Azure));
    assert!(r.authorization.as_deref().unwrap().starts_with("Bearer "));
    h.shutdown().await;
}

#[tokio::test]
async fn deployment_embeddings_match_openais_and_faults_apply() {
    let h = start_with(Knobs::default()).await;
    let (status, v) = h.post_json_with(EMBEDDINGS, &KEY, &json!({"input": ["a", "b"], "dimensions": 8})).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&v), shape(&fixture_json("embeddings_response_float.json")));
    assert_eq!(v["model"], "my-embed");
    let (_, o) = h.post_json("/v1/embeddings", &json!({"model": "e", "input": ["a", "b"], "dimensions": 8})).await;
    assert_eq!(v["data"], o["data"]);

    h.sim.set_knobs(Some("my-gpt4o-deployment"), Knobs { fail_next: 1, ..Knobs::default() });
    let (status, err) = h.post_json_with(CHAT, &KEY, &deployment_body()).await;
    assert_eq!(status, 500);
    assert_eq!(shape(&err), shape(&fixture_json("errors/500_server_error.json")));
    h.sim.set_knobs(Some("my-gpt4o-deployment"), Knobs { rate_limit_next: 1, retry_after_s: 6, ..Knobs::default() });
    let resp = h.post_with(CHAT, &KEY, &deployment_body()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "6");
    assert_eq!(h.post_json_with(CHAT, &KEY, &deployment_body()).await.0, 200);
    h.shutdown().await;
}

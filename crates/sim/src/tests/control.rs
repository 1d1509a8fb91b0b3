//! The control API and `/v1/models`.

use serde_json::{json, Value};

use super::{chat_body, fixture_json, shape, start};
use crate::{Knobs, SimConfig};

fn config() -> SimConfig {
    SimConfig {
        default: Knobs::default(),
        models: [("gpt-4o-mini".to_owned(), Knobs::default()), ("text-embedding-3-small".to_owned(), Knobs::default())]
            .into(),
    }
}

#[tokio::test]
async fn models_list_the_configured_names() {
    let h = start(config()).await;
    let (status, list) = h.get_json("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(shape(&list), shape(&fixture_json("models_list.json")));
    let ids: Vec<&str> = list["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gpt-4o-mini", "text-embedding-3-small"]);
    let (status, one) = h.get_json("/v1/models/gpt-4o-mini").await;
    assert_eq!(status, 200);
    assert_eq!(shape(&one), shape(&fixture_json("model_retrieve.json")));
    let (status, err) = h.get_json("/v1/models/nope").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "model_not_found");
    h.shutdown().await;
}

#[tokio::test]
async fn knobs_and_requests_round_trip() {
    let h = start(config()).await;
    let (status, knobs) = h.get_json("/_sim/knobs").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_value::<SimConfig>(knobs).unwrap(), config());

    let put = |path: &str, body: Value| h.client.put(format!("{}{path}", h.base)).body(body.to_string()).send();
    let resp = put("/_sim/knobs/org/model-x", json!({"answer_tokens": 3, "fail_next": 1})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = put("/_sim/knobs", json!({"answer_tokens": 2})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let (_, knobs) = h.get_json("/_sim/knobs").await;
    assert_eq!(knobs["default"]["answer_tokens"], 2);
    assert_eq!(knobs["default"]["error_status"], 500);
    assert_eq!(knobs["models"]["org/model-x"]["answer_tokens"], 3);
    assert_eq!(knobs["models"]["org/model-x"]["fail_next"], 1);
    assert_eq!(h.sim.knobs().default.answer_tokens, 2);

    assert_eq!(h.post_json("/v1/chat/completions", &chat_body("org/model-x")).await.0, 500);
    let (_, resp) = h.post_json("/v1/chat/completions", &chat_body("org/model-x")).await;
    assert_eq!(resp["usage"]["completion_tokens"], 3);
    let (_, resp) = h.post_json("/v1/chat/completions", &chat_body("unknown")).await;
    assert_eq!(resp["usage"]["completion_tokens"], 2);
    let (_, list) = h.get_json("/v1/models").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);

    for bad in [json!({"answer_tokns": 1}), json!({"error_rate": 1.5}), json!([1])] {
        let resp = put("/_sim/knobs", bad).await.unwrap();
        assert_eq!(resp.status(), 400);
        let err: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert!(err["error"]["message"].as_str().unwrap().starts_with("invalid knobs"));
    }
    assert_eq!(h.sim.knobs().default.answer_tokens, 2, "bad input changes nothing");

    let (status, log) = h.get_json("/_sim/requests").await;
    assert_eq!(status, 200);
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0]["outcome"], "failed");
    assert_eq!(log[0]["status"], 500);
    assert_eq!(log[1]["outcome"], "completed");
    assert_eq!(log[1]["path"], "/v1/chat/completions");
    assert_eq!(log[3]["path"], "/v1/models");
    let keys: Vec<&String> = log[1].as_object().unwrap().keys().collect();
    for k in [
        "seq",
        "path",
        "model",
        "stream",
        "authorization",
        "request_id",
        "body",
        "outcome",
        "status",
        "started_ms",
        "ended_ms",
    ] {
        assert!(keys.iter().any(|x| *x == k), "missing {k}");
    }

    let resp = h.client.delete(format!("{}/_sim/requests", h.base)).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(h.sim.requests().is_empty());
    let resp = h.client.delete(format!("{}/_sim/knobs/org/model-x", h.base)).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert!(!h.sim.knobs().models.contains_key("org/model-x"));

    assert_eq!(h.get_json("/_sim/health").await.0, 200);
    let (status, err) = h.get_json("/v2/nothing").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["type"], "invalid_request_error");
    h.shutdown().await;
}

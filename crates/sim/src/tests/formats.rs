//! What the wire formats share: the knobs (keyed by model name, with one
//! countdown), the fault order and the request log.

use serde_json::json;

use super::{chat_body, start};
use crate::{Knobs, SimConfig};

const ANTHROPIC: [(&str, &str); 2] = [("x-api-key", "k"), ("anthropic-version", "2023-06-01")];

#[tokio::test]
async fn one_model_one_set_of_knobs_across_formats() {
    let h = start(SimConfig {
        models: [(
            "shared".to_owned(),
            Knobs { fail_next: 4, error_status: 503, answer_tokens: 2, ..Knobs::default() },
        )]
        .into(),
        ..SimConfig::default()
    })
    .await;
    let anthropic = json!({"model": "shared", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let gemini = json!({"contents": [{"parts": [{"text": "hi"}]}]});
    let gemini_url = "/v1beta/models/shared:generateContent";
    let azure_url = "/openai/deployments/shared/chat/completions?api-version=2024-10-21";
    let azure = [("api-key", "k")];
    // The countdown is shared: one failure each, in arrival order.
    assert_eq!(h.post_json("/v1/chat/completions", &chat_body("shared")).await.0, 503);
    let (status, err) = h.post_json_with("/v1/messages", &ANTHROPIC, &anthropic).await;
    assert_eq!((status, err["error"]["type"].as_str()), (503, Some("overloaded_error")));
    let (status, err) = h.post_json_with(gemini_url, &[("x-goog-api-key", "k")], &gemini).await;
    assert_eq!((status, err["error"]["status"].as_str()), (503, Some("UNAVAILABLE")));
    assert_eq!(h.post_json_with(azure_url, &azure, &chat_body("ignored")).await.0, 503);
    // Then every format answers with the model's `answer_tokens`.
    let (_, v) = h.post_json("/v1/chat/completions", &chat_body("shared")).await;
    assert_eq!(v["usage"]["completion_tokens"], 2);
    let (_, v) = h.post_json_with("/v1/messages", &ANTHROPIC, &anthropic).await;
    assert_eq!(v["usage"]["output_tokens"], 2);
    let (_, v) = h.post_json_with(gemini_url, &[("x-goog-api-key", "k")], &gemini).await;
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 2);
    let (_, v) = h.post_json_with(azure_url, &azure, &chat_body("ignored")).await;
    assert_eq!(v["usage"]["completion_tokens"], 2);

    let (status, log) = h.get_json("/_sim/requests").await;
    assert_eq!(status, 200);
    let rows: Vec<(&str, &str, &str, u64)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["format"].as_str().unwrap(),
                r["model"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("openai", "shared", "failed", 503),
            ("anthropic", "shared", "failed", 503),
            ("gemini", "shared", "failed", 503),
            ("azure", "shared", "failed", 503),
            ("openai", "shared", "completed", 200),
            ("anthropic", "shared", "completed", 200),
            ("gemini", "shared", "completed", 200),
            ("azure", "shared", "completed", 200),
        ]
    );
    h.shutdown().await;
}

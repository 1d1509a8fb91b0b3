//! `/v1/embeddings`.

use base64::Engine as _;
use serde_json::{json, Value};

use super::{fixture_json, shape, start_with};
use crate::Knobs;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|f| f.as_f64().unwrap() as f32).collect()
}

fn decode(v: &Value) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

#[tokio::test]
async fn float_and_base64_carry_the_same_deterministic_unit_vectors() {
    let h = start_with(Knobs::default()).await;
    let float_req = fixture_json("embeddings_request_float.json");
    let (status, float_resp) = h.post_json("/v1/embeddings", &float_req).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&float_resp), shape(&fixture_json("embeddings_response_float.json")));
    assert_eq!(float_resp["data"].as_array().unwrap().len(), 2);
    assert_eq!(float_resp["data"][1]["index"], 1);

    let b64_req = fixture_json("embeddings_request_base64.json");
    let (status, b64_resp) = h.post_json("/v1/embeddings", &b64_req).await;
    assert_eq!(status, 200);
    assert_eq!(shape(&b64_resp), shape(&fixture_json("embeddings_response_base64.json")));

    // Same text (the first input of the float request), same floats, exactly.
    let f = floats(&float_resp["data"][0]["embedding"]);
    let b = decode(&b64_resp["data"][0]["embedding"]);
    assert_eq!(f.len(), 8);
    assert_eq!(f, b);
    let norm: f64 = f.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    assert_ne!(f, floats(&float_resp["data"][1]["embedding"]));

    // Deterministic across requests (and, by construction, processes).
    let (_, again) = h.post_json("/v1/embeddings", &b64_req).await;
    assert_eq!(again["data"], b64_resp["data"]);
    h.shutdown().await;
}

#[tokio::test]
async fn defaults_token_inputs_and_usage() {
    let h = start_with(Knobs::default()).await;
    let (_, resp) = h.post_json("/v1/embeddings", &json!({"model": "e", "input": "abcdefgh"})).await;
    assert_eq!(resp["data"][0]["embedding"].as_array().unwrap().len(), 1536);
    assert_eq!(resp["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    assert_eq!(resp["model"], "e");

    let body = json!({"model": "e", "input": [[1, 2, 3], [4]], "dimensions": 4});
    let (status, resp) = h.post_json("/v1/embeddings", &body).await;
    assert_eq!(status, 200);
    assert_eq!(resp["usage"]["prompt_tokens"], 4);
    let (_, same) = h.post_json("/v1/embeddings", &json!({"model": "e", "input": "1 2 3", "dimensions": 4})).await;
    assert_eq!(resp["data"][0]["embedding"], same["data"][0]["embedding"]);
    let (_, single) = h.post_json("/v1/embeddings", &json!({"model": "e", "input": [1, 2, 3], "dimensions": 4})).await;
    assert_eq!(single["data"].as_array().unwrap().len(), 1);
    assert_eq!(single["data"][0]["embedding"], same["data"][0]["embedding"]);

    for bad in [
        json!({"model": "e"}),
        json!({"input": "x"}),
        json!({"model": "e", "input": []}),
        json!({"model": "e", "input": "x", "dimensions": 0}),
        json!({"model": "e", "input": "x", "encoding_format": "int8"}),
    ] {
        let (status, err) = h.post_json("/v1/embeddings", &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(err["error"]["type"], "invalid_request_error");
    }

    h.sim.set_knobs(None, Knobs { usage: false, ..Knobs::default() });
    let (_, resp) = h.post_json("/v1/embeddings", &json!({"model": "e", "input": "x"})).await;
    assert!(resp.get("usage").is_none());
    h.shutdown().await;
}

//! Embeddings: canonical → `batchEmbedContents`, and its (or a single
//! `embedContent`) response → canonical.

use super::ApiError;
use crate::canonical::*;
use serde::Deserialize;
use serde_json::{json, Value};

/// Canonical → `batchEmbedContents` request body for `model`: one request
/// per input, each naming `models/{model}` (Gemini wants it to match the
/// URL). `dimensions` → `outputDimensionality`. No `taskType` is sent (no
/// canonical equivalent); `user` and `base64` are ignored (the ingress
/// encoder applies `base64`).
pub fn encode_embed_request(req: &EmbedRequest, model: &str) -> Result<Vec<u8>, TranslateError> {
    if req.inputs.is_empty() {
        return Err(TranslateError::new("input", "at least one input is needed"));
    }
    let resource = if model.starts_with("models/") { model.to_string() } else { format!("models/{model}") };
    let requests: Vec<Value> = req
        .inputs
        .iter()
        .map(|text| {
            let mut r = json!({ "model": resource, "content": { "parts": [{ "text": text }] } });
            if let (Some(dims), Value::Object(map)) = (req.dimensions, &mut r) {
                map.insert("outputDimensionality".into(), json!(dims));
            }
            r
        })
        .collect();
    serde_json::to_vec(&json!({ "requests": requests })).map_err(|e| TranslateError::new("", e.to_string()))
}

#[derive(Deserialize)]
struct Embedding {
    #[serde(default)]
    values: Vec<f32>,
}

#[derive(Deserialize)]
struct EmbedBody {
    embeddings: Option<Vec<Embedding>>,
    embedding: Option<Embedding>,
    error: Option<ApiError>,
}

/// `batchEmbedContents` response (`embeddings[].values`), or a single
/// `embedContent` one (`embedding.values`) → canonical. Gemini reports no
/// token counts there, and no model: `model` is left empty.
pub fn decode_embed_response(body: &[u8]) -> Result<EmbedResponse, TranslateError> {
    let parsed: EmbedBody = serde_json::from_slice(body)
        .map_err(|e| TranslateError::new("body", format!("invalid Gemini embeddings JSON: {e}")))?;
    if let Some(err) = parsed.error {
        return Err(err.into_translate_error());
    }
    let vectors = match (parsed.embeddings, parsed.embedding) {
        (Some(list), _) => list.into_iter().map(|e| e.values).collect(),
        (None, Some(one)) => vec![one.values],
        (None, None) => return Err(TranslateError::new("embeddings", "the response has no embeddings")),
    };
    Ok(EmbedResponse { model: String::new(), vectors, input_tokens: None })
}

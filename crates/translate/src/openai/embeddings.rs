//! OpenAI embeddings ⇄ canonical.

use super::wire::{is_null, members, parse};
use crate::canonical::*;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(untagged)]
enum InInput {
    One(String),
    Many(Vec<String>),
}

/// OpenAI embeddings request (client body) → canonical. `input` must be
/// text (a string or an array of strings): token-id arrays cannot be
/// translated. Unknown fields are refused; `null` reads as absent.
pub fn decode_embed_request(body: &[u8]) -> Result<EmbedRequest, TranslateError> {
    let body = std::str::from_utf8(body).map_err(|_| TranslateError::new("", "the body is not UTF-8"))?;
    let mut model = None;
    let mut inputs = None;
    let mut req =
        EmbedRequest { model: String::new(), inputs: Vec::new(), dimensions: None, base64: false, user: None };
    for (key, raw) in members(body, "")? {
        let key = key.as_str();
        let known = matches!(key, "model" | "input" | "dimensions" | "encoding_format" | "user");
        if known && is_null(raw) {
            continue;
        }
        match key {
            "model" => model = Some(parse::<String>(raw, key)?),
            "input" => {
                let input = serde_json::from_str::<InInput>(raw.get()).map_err(|_| {
                    TranslateError::new(
                        key,
                        "`input` must be a string or an array of strings (token ids cannot be translated)",
                    )
                })?;
                inputs = Some(match input {
                    InInput::One(s) => vec![s],
                    InInput::Many(v) => v,
                });
            }
            "dimensions" => req.dimensions = Some(parse(raw, key)?),
            "encoding_format" => {
                req.base64 = match parse::<String>(raw, key)?.as_str() {
                    "float" => false,
                    "base64" => true,
                    other => return Err(TranslateError::new(key, format!("unknown encoding_format `{other}`"))),
                }
            }
            "user" => req.user = Some(parse(raw, key)?),
            k => return Err(TranslateError::new(k, format!("unknown field `{k}`"))),
        }
    }
    req.model = model.ok_or_else(|| TranslateError::new("model", "`model` is required"))?;
    req.inputs = inputs.ok_or_else(|| TranslateError::new("input", "`input` is required"))?;
    if req.inputs.is_empty() {
        return Err(TranslateError::new("input", "`input` must not be empty"));
    }
    Ok(req)
}

#[derive(Serialize)]
struct OutList<'a> {
    object: &'static str,
    data: Vec<OutEmbedding<'a>>,
    model: &'a str,
    usage: OutUsage,
}

#[derive(Serialize)]
struct OutEmbedding<'a> {
    object: &'static str,
    index: usize,
    embedding: OutVector<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutVector<'a> {
    Floats(&'a [f32]),
    Base64(String),
}

#[derive(Serialize)]
struct OutUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// Little-endian f32 bytes, base64 (what the OpenAI SDKs decode).
fn base64_vector(v: &[f32]) -> String {
    let mut bytes = Vec::with_capacity(v.len() * 4);
    for x in v {
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Canonical → OpenAI embeddings response (float arrays, or base64 of
/// little-endian f32 when `base64`). Token counts are 0 when unknown.
pub fn encode_embed_response(resp: &EmbedResponse, model: &str, base64: bool) -> Vec<u8> {
    let data = resp
        .vectors
        .iter()
        .enumerate()
        .map(|(index, v)| OutEmbedding {
            object: "embedding",
            index,
            embedding: if base64 { OutVector::Base64(base64_vector(v)) } else { OutVector::Floats(v) },
        })
        .collect();
    let tokens = resp.input_tokens.unwrap_or(0);
    let out = OutList { object: "list", data, model, usage: OutUsage { prompt_tokens: tokens, total_tokens: tokens } };
    serde_json::to_vec(&out).unwrap_or_default()
}

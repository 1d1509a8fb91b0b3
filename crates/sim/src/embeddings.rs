//! `POST /v1/embeddings` (and Azure's embeddings routes): deterministic unit
//! vectors seeded from the text. The vectors are shared with Gemini's
//! `embedContent`/`batchEmbedContents` ([`seed`], [`push_vector`]).
//!
//! The same text gives the same vector in every run and process (FNV-1a of
//! the UTF-8 bytes seeds an xorshift64* generator); `dimensions` takes the
//! first N values of that sequence and normalises them. `encoding_format:
//! "base64"` (the OpenAI Python SDK's default) sends the little-endian f32
//! bytes, base64-encoded; the floats are the same as in the float form.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::HeaderMap;
use serde_json::Value;

use crate::chat::Route;
use crate::wire::{self, BadRequest};
use crate::{faults, pacing, text, Sim};

const PATH: &str = "/v1/embeddings";
const DEFAULT_DIMENSIONS: usize = 1536;
/// Largest `dimensions` (OpenAI) / `outputDimensionality` (Gemini).
pub(crate) const MAX_DIMENSIONS: u64 = 16_384;

#[derive(Debug)]
struct EmbeddingsRequest {
    model: String,
    /// One seed and token count per input.
    inputs: Vec<(u64, u32)>,
    dimensions: usize,
    base64: bool,
}

pub(crate) async fn create(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(sim, &headers, &body, Route::openai(PATH)).await
}

/// Answers an embeddings request that came in on `route`.
pub(crate) async fn serve(sim: Arc<Sim>, headers: &HeaderMap, body: &[u8], route: Route) -> Response {
    let (parsed, logged) = match wire::logged_body(body) {
        Ok(v) => (parse(&v, route.deployment.as_deref()), v),
        Err(text) => (Err(BadRequest::not_json()), text),
    };
    let model = route.deployment.or_else(|| wire::str_field(&logged, "model"));
    let rec = sim.record(route.path, route.format, headers, model, false, logged);
    let seq = rec.seq();
    let req = match parsed {
        Ok(r) => r,
        Err(bad) => return rec.fail(bad.into_response(seq)),
    };
    let slot = sim.knobs.slot(&req.model);
    if let Some(fault) = faults::inject(&sim, &slot).await {
        return rec.fail(wire::fault_response(fault, seq, &req.model));
    }
    pacing::latency(&slot.knobs).await;
    rec.complete(render(&req, slot.knobs.usage))
}

/// `deployment`: the model from the URL (Azure), which makes `model` optional.
fn parse(v: &Value, deployment: Option<&str>) -> Result<EmbeddingsRequest, BadRequest> {
    let model = match (deployment, v.get("model")) {
        (Some(d), _) => d,
        (None, None | Some(Value::Null)) => return Err(BadRequest::missing("model")),
        (None, Some(m)) => m.as_str().ok_or_else(|| BadRequest::invalid("model", "a string"))?,
    };
    let expected = "a string, an array of strings, or an array of token arrays";
    let inputs = match v.get("input") {
        None | Some(Value::Null) => return Err(BadRequest::missing("input")),
        Some(Value::String(s)) => vec![text_input(s)],
        Some(Value::Array(items)) if items.is_empty() => return Err(BadRequest::invalid("input", expected)),
        // One token array: `[1, 2, 3]`.
        Some(Value::Array(items)) if items.iter().all(Value::is_u64) => vec![tokens_input(items)],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(text_input(s)),
                Value::Array(t) if t.iter().all(Value::is_u64) => Some(tokens_input(t)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| BadRequest::invalid("input", expected))?,
        Some(_) => return Err(BadRequest::invalid("input", expected)),
    };
    let dimensions = match v.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(d) => d
            .as_u64()
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
            .and_then(|d| usize::try_from(d).ok())
            .ok_or_else(|| BadRequest::invalid("dimensions", &format!("an integer from 1 to {MAX_DIMENSIONS}")))?,
    };
    let base64 = match v.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(f) if f == "float" => false,
        Some(f) if f == "base64" => true,
        Some(_) => return Err(BadRequest::invalid("encoding_format", "'float' or 'base64'")),
    };
    Ok(EmbeddingsRequest { model: model.to_owned(), inputs, dimensions, base64 })
}

fn text_input(s: &str) -> (u64, u32) {
    (seed(s), text::tokens_for_chars(s.chars().count()))
}

/// The seed of the vector for `text`.
pub(crate) fn seed(text: &str) -> u64 {
    fnv1a(text.as_bytes())
}

/// A token array is embedded as the text of its numbers joined by spaces.
fn tokens_input(tokens: &[Value]) -> (u64, u32) {
    let joined = tokens.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" ");
    let count = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
    (fnv1a(joined.as_bytes()), count)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Appends the unit vector for `seed` with `dims` components as a JSON array of floats.
pub(crate) fn push_vector(buf: &mut String, seed: u64, dims: usize) {
    // serde_json writes f32 with ryu: the shortest text that parses back to
    // the same f32, several times faster than `Display`. Serialising finite
    // floats cannot fail (non-finite ones become null).
    buf.push_str(&serde_json::to_string(&vector(seed, dims)).unwrap_or_else(|_| "[]".to_owned()));
}

/// The unit vector for `seed` with `dims` components.
fn vector(seed: u64, dims: usize) -> Vec<f32> {
    // xorshift64* must not start at 0.
    let mut x = if seed == 0 { 0x9e37_79b9_7f4a_7c15 } else { seed };
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40; // 24 bits
            (r as f32 / (1u32 << 23) as f32) - 1.0 // in [-1, 1)
        })
        .collect();
    let norm = v.iter().map(|f| f64::from(*f).powi(2)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for f in &mut v {
            *f = (f64::from(*f) / norm) as f32;
        }
    }
    v
}

/// The `list` body, shaped like `embeddings_response_{float,base64}.json`.
fn render(req: &EmbeddingsRequest, usage: bool) -> String {
    let per_item = if req.base64 { 4 * req.dimensions / 3 + 64 } else { 12 * req.dimensions + 64 };
    let mut b = String::with_capacity(128 + req.model.len() + req.inputs.len() * per_item);
    b.push_str("{\"object\":\"list\",\"data\":[");
    let mut bytes = Vec::new();
    for (i, (seed, _)) in req.inputs.iter().enumerate() {
        if i > 0 {
            b.push(',');
        }
        b.push_str("{\"object\":\"embedding\",\"index\":");
        wire::push_num(&mut b, i);
        b.push_str(",\"embedding\":");
        if req.base64 {
            bytes.clear();
            bytes.extend(vector(*seed, req.dimensions).iter().flat_map(|f| f.to_le_bytes()));
            b.push('"');
            base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut b);
            b.push('"');
        } else {
            push_vector(&mut b, *seed, req.dimensions);
        }
        b.push('}');
    }
    b.push_str("],\"model\":");
    wire::push_str_lit(&mut b, &req.model);
    if usage {
        let tokens: u64 = req.inputs.iter().map(|(_, t)| u64::from(*t)).sum();
        b.push_str(",\"usage\":{\"prompt_tokens\":");
        wire::push_num(&mut b, tokens);
        b.push_str(",\"total_tokens\":");
        wire::push_num(&mut b, tokens);
        b.push('}');
    }
    b.push('}');
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_unit_length_deterministic_and_prefix_consistent() {
        let seed = fnv1a(b"hello");
        let a = vector(seed, 1536);
        assert_eq!(a, vector(seed, 1536));
        let norm: f64 = a.iter().map(|f| f64::from(*f).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_ne!(a, vector(fnv1a(b"hellp"), 1536));
        assert_eq!(vector(seed, 8).len(), 8);
        // Stable across builds and platforms: a fixed seed gives fixed output.
        assert_eq!(fnv1a(b"hello"), 0xa430_d846_80aa_bd0b);
    }
}

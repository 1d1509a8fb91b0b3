//! `POST /v1/embeddings`: deterministic unit vectors seeded from the text.
//!
//! The same text gives the same vector in every run and process (FNV-1a of
//! the UTF-8 bytes seeds an xorshift64* generator); `dimensions` takes the
//! first N values of that sequence and normalises them. `encoding_format:
//! "base64"` (the OpenAI Python SDK's default) sends the little-endian f32
//! bytes, base64-encoded; the floats are the same as in the float form.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::chat::wire_text;
use crate::record::Outcome;
use crate::wire::{self, BadRequest};
use crate::{faults, text, Sim};

const PATH: &str = "/v1/embeddings";
const DEFAULT_DIMENSIONS: usize = 1536;
const MAX_DIMENSIONS: u64 = 16_384;

#[derive(Debug)]
struct EmbeddingsRequest {
    model: String,
    /// One seed and token count per input.
    inputs: Vec<(u64, u32)>,
    dimensions: usize,
    base64: bool,
}

pub(crate) async fn create(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return sim.reject(PATH, &headers, wire_text(&body), BadRequest::not_json()),
    };
    let parsed = parse(&value);
    let model = value.get("model").and_then(Value::as_str).map(str::to_owned);
    let rec = sim.record(PATH, &headers, model, false, value);
    let seq = rec.seq();
    let req = match parsed {
        Ok(r) => r,
        Err(bad) => {
            rec.finish(Outcome::Failed, 400);
            return bad.into_response(seq);
        }
    };
    let slot = sim.knobs.slot(&req.model);
    if let Some((resp, status)) = faults::inject(&sim, &slot, seq, &req.model).await {
        rec.finish(Outcome::Failed, status);
        return resp;
    }
    if slot.knobs.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(slot.knobs.latency_ms)).await;
    }
    let body = render(&req, slot.knobs.usage);
    rec.finish(Outcome::Completed, 200);
    wire::json_response(StatusCode::OK, seq, body)
}

fn parse(v: &Value) -> Result<EmbeddingsRequest, BadRequest> {
    let model = match v.get("model") {
        None | Some(Value::Null) => return Err(BadRequest::missing("model")),
        Some(m) => m.as_str().ok_or_else(|| BadRequest::invalid("model", "a string"))?,
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
    (fnv1a(s.as_bytes()), text::tokens_for_chars(s.chars().count()))
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

/// The unit vector for `seed` with `dims` components.
pub(crate) fn vector(seed: u64, dims: usize) -> Vec<f32> {
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
        let v = vector(*seed, req.dimensions);
        if req.base64 {
            bytes.clear();
            bytes.extend(v.iter().flat_map(|f| f.to_le_bytes()));
            b.push('"');
            base64::engine::general_purpose::STANDARD.encode_string(&bytes, &mut b);
            b.push('"');
        } else {
            // serde_json writes f32 with ryu: the shortest text that parses
            // back to the same f32, several times faster than `Display`.
            // Serialising finite floats cannot fail (non-finite ones become null).
            b.push_str(&serde_json::to_string(&v).unwrap_or_else(|_| "[]".to_owned()));
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

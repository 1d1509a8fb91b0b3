//! OpenAI chat completions and embeddings ⇄ canonical. Used as an ingress
//! (OpenAI clients calling non-OpenAI deployments) and as a provider
//! format (Anthropic clients calling OpenAI, Azure or OpenAI-compatible
//! deployments).

use crate::canonical::*;

/// OpenAI chat request (client body) → canonical.
pub fn decode_request(_body: &[u8]) -> Result<ChatRequest, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// Canonical → OpenAI chat request body for `model`. Streams always ask for
/// usage (`stream_options.include_usage`).
pub fn encode_request(_req: &ChatRequest, _model: &str) -> Result<Vec<u8>, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// OpenAI chat completion (provider body) → canonical.
pub fn decode_response(_body: &[u8]) -> Result<ChatResponse, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// Canonical → OpenAI chat completion body, reporting `model`.
pub fn encode_response(_resp: &ChatResponse, _model: &str) -> Vec<u8> {
    Vec::new()
}

/// OpenAI SSE chunks → canonical stream events.
#[derive(Default)]
pub struct Decoder {}

impl StreamDecoder for Decoder {
    fn decode(&mut self, _name: Option<&str>, _data: &[u8], _out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        Ok(())
    }
    fn end(&mut self, _out: &mut Vec<StreamEvent>) {}
}

/// Canonical stream events → OpenAI SSE chunks (`data: …\n\n`, ending
/// with `data: [DONE]`).
pub struct Encoder {}

impl Encoder {
    /// `model` is reported in every chunk; `created` is unix seconds;
    /// `include_usage` adds the final usage-only chunk.
    pub fn new(_model: &str, _created: i64, _include_usage: bool) -> Self {
        Encoder {}
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, _event: &StreamEvent, _out: &mut Vec<u8>) {}
    fn error(&mut self, _kind: &str, _message: &str, _out: &mut Vec<u8>) {}
}

/// OpenAI embeddings request (client body) → canonical.
pub fn decode_embed_request(_body: &[u8]) -> Result<EmbedRequest, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// Canonical → OpenAI embeddings response (float arrays, or base64 of
/// little-endian f32 when `base64`).
pub fn encode_embed_response(_resp: &EmbedResponse, _model: &str, _base64: bool) -> Vec<u8> {
    Vec::new()
}

//! Anthropic messages ⇄ canonical. Used as an ingress (`POST /v1/messages`)
//! and as a provider format.

use crate::canonical::*;

/// `max_tokens` sent to Anthropic when the client gave none (Anthropic
/// requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Anthropic messages request (client body) → canonical.
pub fn decode_request(_body: &[u8]) -> Result<ChatRequest, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// Canonical → Anthropic messages request body for `model`.
pub fn encode_request(_req: &ChatRequest, _model: &str) -> Result<Vec<u8>, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// Anthropic message (provider body) → canonical.
pub fn decode_response(_body: &[u8]) -> Result<ChatResponse, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// Canonical → Anthropic message body, reporting `model`.
pub fn encode_response(_resp: &ChatResponse, _model: &str) -> Vec<u8> {
    Vec::new()
}

/// Anthropic SSE events → canonical stream events.
#[derive(Default)]
pub struct Decoder {}

impl StreamDecoder for Decoder {
    fn decode(&mut self, _name: Option<&str>, _data: &[u8], _out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        Ok(())
    }
    fn end(&mut self, _out: &mut Vec<StreamEvent>) {}
}

/// Canonical stream events → Anthropic SSE events (`event: …\ndata: …\n\n`).
pub struct Encoder {}

impl Encoder {
    pub fn new(_model: &str) -> Self {
        Encoder {}
    }
}

impl StreamEncoder for Encoder {
    fn encode(&mut self, _event: &StreamEvent, _out: &mut Vec<u8>) {}
    fn error(&mut self, _kind: &str, _message: &str, _out: &mut Vec<u8>) {}
}

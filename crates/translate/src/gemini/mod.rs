//! Google Gemini (generateContent, streamGenerateContent with `alt=sse`,
//! batchEmbedContents) ⇄ canonical. Provider side only.
//!
//! The model goes in the URL, not the body (the provider adapter builds it).

use crate::canonical::*;

/// Canonical → `generateContent` request body.
pub fn encode_request(_req: &ChatRequest) -> Result<Vec<u8>, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// `generateContent` response → canonical. Gemini has no tool-call ids:
/// they are synthesised as `call_{id_prefix}_{n}`.
pub fn decode_response(_body: &[u8], _id_prefix: &str) -> Result<ChatResponse, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// `streamGenerateContent?alt=sse` chunks → canonical stream events.
pub struct Decoder {}

impl Decoder {
    pub fn new(_id_prefix: &str) -> Self {
        Decoder {}
    }
}

impl StreamDecoder for Decoder {
    fn decode(&mut self, _name: Option<&str>, _data: &[u8], _out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        Ok(())
    }
    fn end(&mut self, _out: &mut Vec<StreamEvent>) {}
}

/// Canonical → `batchEmbedContents` request body for `model`.
pub fn encode_embed_request(_req: &EmbedRequest, _model: &str) -> Result<Vec<u8>, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

/// `batchEmbedContents` response → canonical.
pub fn decode_embed_response(_body: &[u8]) -> Result<EmbedResponse, TranslateError> {
    Err(TranslateError::new("", "not implemented"))
}

//! OpenAI chat completions and embeddings ⇄ canonical. Used as an ingress
//! (OpenAI clients calling non-OpenAI deployments) and as a provider
//! format (Anthropic clients calling OpenAI, Azure or OpenAI-compatible
//! deployments: vLLM, Ollama, DeepSeek, Gemini's compatible endpoint).
//!
//! Decoders read the vendor variants of the format too: `reasoning_content`
//! (DeepSeek, older vLLM) and `reasoning` (newer vLLM, Ollama) as thinking,
//! Gemini's `extra_content.google.thought_signature` on tool calls, vLLM's
//! `top_k` and `stop_reason`, Azure's filter-only stream chunks.

mod embeddings;
mod request;
mod response;
mod stream;
mod wire;

#[cfg(test)]
mod tests;

pub use embeddings::{decode_embed_request, encode_embed_response};
pub use request::{decode_request, encode_request};
pub use response::{decode_response, encode_response};
pub use stream::{Decoder, Encoder};

//! Translation between wire formats, through one canonical model.
//!
//! Every format the gateway speaks — as an ingress (what clients send) or as
//! a provider (what upstreams expect) — has one module here that converts
//! between its wire bytes and the canonical types in [`canonical`]. A
//! request from an Anthropic client to a Gemini deployment is
//! `anthropic::decode_request → canonical → gemini::encode_request`; there
//! are no format-to-format shortcuts (N + M translators, not N × M).
//!
//! Pure functions and small state machines only: no I/O, no clocks, no
//! randomness except what the caller passes in. That keeps every translator
//! testable from the fixtures and fuzzable.
//!
//! | format | as ingress | as provider |
//! | --- | --- | --- |
//! | [`openai`] (chat completions, embeddings) | yes | yes (also Azure OpenAI) |
//! | [`anthropic`] (messages) | yes | yes |
//! | [`gemini`] (generateContent, embeddings) | no | yes |
//!
//! [`replay`] turns a whole answer into the stream events that would have
//! carried it, for clients that asked for a stream of a buffered answer.

pub mod anthropic;
pub mod canonical;
pub mod gemini;
pub mod openai;
pub mod replay;

#[cfg(test)]
mod properties;

pub use canonical::*;
pub use replay::stream_events;

//! The slices of OpenAI's wire format the gateway itself reads.
//!
//! The gateway never deserialises a whole request or response: bodies pass
//! through as bytes, and these types pick out only what policy needs
//! (`model`, `stream`, `usage`). Unknown fields are ignored on purpose here —
//! they belong to the client and the provider, not to us.

use serde::{Deserialize, Serialize};

/// `usage` as OpenAI-family servers report it. Every field is optional:
/// vLLM orders them differently, DeepSeek adds cache fields, some servers
/// send `null` details.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    #[serde(default)]
    pub total_tokens: Option<u64>,
    /// `cached_tokens`: the part of `prompt_tokens` served from the cache.
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

impl WireUsage {
    /// Prompt tokens read from the cache (0 when not said).
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

/// The error envelope every OpenAI-compatible client understands:
/// `{"error":{"message","type","param","code"}}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

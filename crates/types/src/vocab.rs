//! Enumerations from the vocabulary table in DESIGN.md §3.

use serde::{Deserialize, Serialize};

/// The protocol family a provider speaks. Vendors that speak OpenAI's wire
/// format (vLLM, SGLang, Ollama, DeepSeek, …) are `OpenaiCompatible`: data,
/// not code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    OpenaiCompatible,
    /// Azure OpenAI: OpenAI's wire format behind deployment URLs,
    /// `api-version` and the `api-key` header.
    AzureOpenai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (generateContent).
    Gemini,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai_compatible",
            ProviderKind::AzureOpenai => "azure_openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
        }
    }

    /// Cloud services that cannot answer without a key: a provider of
    /// such a kind with no key is disabled. Local servers usually need none.
    pub fn needs_key(self) -> bool {
        !matches!(self, ProviderKind::OpenaiCompatible)
    }
}

/// Where compute runs: `L0` device, `L1` on-premises, `L2` cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Tier {
    L0,
    L1,
    #[default]
    L2,
}

/// What a deployment can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Chat,
    Tools,
    Vision,
    Json,
    Embeddings,
}

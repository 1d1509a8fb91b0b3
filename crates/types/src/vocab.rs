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
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai_compatible",
        }
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

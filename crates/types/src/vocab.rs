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

/// How sensitive a request's data is (DESIGN.md §3). Ordered from the most
/// sensitive: `P0 < P1 < P2`, so the stricter of two is their `min`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Classification {
    /// Core secrets: on-device and on-premises compute only (`L0`, `L1`).
    P0,
    /// Sensitive: `L0` / `L1`, or the cloud (`L2`) only after masking.
    P1,
    /// Public: any tier.
    P2,
}

/// Whether data of a classification may go to a tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierAccess {
    Allowed,
    /// Only with every detected finding masked.
    Masked,
    Refused,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::P0 => "P0",
            Classification::P1 => "P1",
            Classification::P2 => "P2",
        }
    }

    /// `P0`, `P1`, `P2` (case-insensitive, surrounding blanks ignored).
    pub fn parse(text: &str) -> Option<Classification> {
        match text.trim() {
            t if t.eq_ignore_ascii_case("p0") => Some(Classification::P0),
            t if t.eq_ignore_ascii_case("p1") => Some(Classification::P1),
            t if t.eq_ignore_ascii_case("p2") => Some(Classification::P2),
            _ => None,
        }
    }

    /// The rule of DESIGN.md §3: P0 stays on L0/L1; P1 reaches L2 masked.
    pub fn access(self, tier: Tier) -> TierAccess {
        match (self, tier) {
            (_, Tier::L0 | Tier::L1) | (Classification::P2, Tier::L2) => TierAccess::Allowed,
            (Classification::P1, Tier::L2) => TierAccess::Masked,
            (Classification::P0, Tier::L2) => TierAccess::Refused,
        }
    }
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::L0 => "L0",
            Tier::L1 => "L1",
            Tier::L2 => "L2",
        }
    }
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Chat => "chat",
            Capability::Tools => "tools",
            Capability::Vision => "vision",
            Capability::Json => "json",
            Capability::Embeddings => "embeddings",
        }
    }
}

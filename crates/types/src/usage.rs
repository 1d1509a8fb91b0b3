//! Token usage of one attempt.
//!
//! | field | meaning when absent (`None`) | meaning of `0` |
//! | --- | --- | --- |
//! | `input_tokens` | the provider did not say and we could not count | really zero |
//! | `output_tokens` | same | the model produced nothing |
//!
//! `source` says whether the numbers came from the provider or were counted
//! by the gateway's tokenizer (an estimate).

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// Reported by the provider.
    Reported,
    /// Counted by the gateway because the provider reported nothing.
    Estimated,
    /// No usage: the request failed before any tokens were processed.
    #[default]
    None,
}

impl UsageSource {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageSource::Reported => "reported",
            UsageSource::Estimated => "estimated",
            UsageSource::None => "none",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Usage {
    /// All prompt tokens, cache reads and writes included (OpenAI's meaning).
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Of `input_tokens`, read from the provider's prompt cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Of `input_tokens`, written to the provider's prompt cache (Anthropic).
    #[serde(default)]
    pub cache_write_tokens: u64,
    pub source: UsageSource,
}

impl Usage {
    pub fn reported(input: u64, output: u64) -> Self {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            source: UsageSource::Reported,
            ..Usage::default()
        }
    }

    pub fn estimated(input: u64, output: u64) -> Self {
        Usage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            source: UsageSource::Estimated,
            ..Usage::default()
        }
    }

    /// The same usage, saying how much of the prompt the cache served or took.
    pub fn with_cache(self, read: u64, write: u64) -> Self {
        Usage { cache_read_tokens: read, cache_write_tokens: write, ..self }
    }

    /// The tokens as prices split them (cache reads and writes out of the
    /// plain input).
    pub fn priced_tokens(&self) -> crate::cost::Tokens {
        let input = self.input_tokens.unwrap_or(0);
        crate::cost::Tokens {
            input: input.saturating_sub(self.cache_read_tokens).saturating_sub(self.cache_write_tokens),
            cached_input: self.cache_read_tokens,
            cache_write: self.cache_write_tokens,
            output: self.output_tokens.unwrap_or(0),
        }
    }
}

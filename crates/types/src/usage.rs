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
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub source: UsageSource,
}

impl Usage {
    pub fn reported(input: u64, output: u64) -> Self {
        Usage { input_tokens: Some(input), output_tokens: Some(output), source: UsageSource::Reported }
    }

    pub fn estimated(input: u64, output: u64) -> Self {
        Usage { input_tokens: Some(input), output_tokens: Some(output), source: UsageSource::Estimated }
    }
}

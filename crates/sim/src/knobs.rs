//! Per-model behaviour of the simulated upstream, and the live table of it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// How one model (or the default) behaves. Every field is optional in input;
/// a missing field takes the value of [`Knobs::default`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Knobs {
    /// Non-stream (answers, embeddings, token counts): delay before the response, ms.
    pub latency_ms: u64,
    /// Stream: delay before the first chunk, ms. Headers go out at once.
    pub ttft_ms: u64,
    /// Stream pacing in tokens per second; 0 = as fast as possible.
    pub tokens_per_sec: f64,
    /// Words (≈ tokens) in a text answer, per choice.
    pub answer_tokens: u32,
    /// Answer text with the request's last user text instead of lorem
    /// words: its words split on single spaces are the tokens
    /// (`answer_tokens` is then unused; an empty text is an empty answer).
    pub echo: bool,
    /// Probability (0..=1) that a request fails with `error_status`.
    pub error_rate: f64,
    /// Status of injected errors (`error_rate`, `fail_next`).
    pub error_status: u16,
    /// The next N requests to this model fail with `error_status`.
    pub fail_next: u32,
    /// Probability (0..=1) that a request is answered 429.
    pub rate_limit_rate: f64,
    /// The next N requests to this model are answered 429.
    pub rate_limit_next: u32,
    /// `retry-after` seconds sent with a 429.
    pub retry_after_s: u64,
    /// Accept the request and never answer until the client goes away.
    pub hang: bool,
    /// Stream: send this many content steps (OpenAI chunks per choice,
    /// Anthropic deltas, Gemini words), then drop the connection.
    pub cut_after_tokens: Option<u32>,
    /// Stream: send this many content steps (counted like
    /// `cut_after_tokens`), then the format's in-band error event, and end
    /// the body cleanly. Non-stream answers ignore it.
    pub error_after_tokens: Option<u32>,
    /// false = never report usage (OpenAI non-stream, stream, embeddings;
    /// Anthropic and Gemini always report it).
    pub usage: bool,
    /// Whether a request offering tools is answered with a tool call.
    pub tool_calls: ToolCalls,
}

/// The `tool_calls` knob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCalls {
    /// Call a tool when the request offers tools and the last message is the user's.
    #[default]
    Auto,
    /// Always answer with text.
    Never,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            ttft_ms: 0,
            tokens_per_sec: 0.0,
            answer_tokens: 16,
            echo: false,
            error_rate: 0.0,
            error_status: 500,
            fail_next: 0,
            rate_limit_rate: 0.0,
            rate_limit_next: 0,
            retry_after_s: 1,
            hang: false,
            cut_after_tokens: None,
            error_after_tokens: None,
            usage: true,
            tool_calls: ToolCalls::Auto,
        }
    }
}

impl Knobs {
    /// Checks ranges; the message names the offending field.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name}: expected a number between 0 and 1, got {v}"))
            }
        };
        unit("error_rate", self.error_rate)?;
        unit("rate_limit_rate", self.rate_limit_rate)?;
        if !(self.tokens_per_sec.is_finite() && self.tokens_per_sec >= 0.0) {
            return Err(format!("tokens_per_sec: expected a number >= 0, got {}", self.tokens_per_sec));
        }
        if !(400..=599).contains(&self.error_status) {
            return Err(format!(
                "error_status: expected an HTTP status between 400 and 599, got {}",
                self.error_status
            ));
        }
        Ok(())
    }
}

/// One model's knobs plus the live countdowns of `fail_next` / `rate_limit_next`.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) knobs: Knobs,
    fail_next: AtomicU32,
    rate_limit_next: AtomicU32,
}

impl Slot {
    fn new(knobs: Knobs) -> Arc<Self> {
        Arc::new(Self {
            fail_next: AtomicU32::new(knobs.fail_next),
            rate_limit_next: AtomicU32::new(knobs.rate_limit_next),
            knobs,
        })
    }

    /// Consumes one `fail_next`; true if this request must fail.
    pub(crate) fn take_fail(&self) -> bool {
        take(&self.fail_next)
    }

    /// Consumes one `rate_limit_next`; true if this request must get a 429.
    pub(crate) fn take_rate_limit(&self) -> bool {
        take(&self.rate_limit_next)
    }

    /// The knobs as they stand now (countdowns at their remaining values).
    fn snapshot(&self) -> Knobs {
        Knobs {
            fail_next: self.fail_next.load(Ordering::Relaxed),
            rate_limit_next: self.rate_limit_next.load(Ordering::Relaxed),
            ..self.knobs.clone()
        }
    }
}

fn take(counter: &AtomicU32) -> bool {
    // Fast path: most requests run with the countdown at zero.
    counter.load(Ordering::Relaxed) != 0
        && counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok()
}

/// The live knobs: a default slot and per-model slots. Replacing a model's
/// knobs swaps its slot whole, so a request sees the old knobs or the new.
#[derive(Debug)]
pub(crate) struct KnobTable {
    inner: RwLock<Table>,
}

#[derive(Debug)]
struct Table {
    default: Arc<Slot>,
    models: BTreeMap<String, Arc<Slot>>,
}

impl KnobTable {
    pub(crate) fn new(default: Knobs, models: BTreeMap<String, Knobs>) -> Self {
        let models = models.into_iter().map(|(k, v)| (k, Slot::new(v))).collect();
        Self { inner: RwLock::new(Table { default: Slot::new(default), models }) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot for `model`, or the default slot for unknown models.
    pub(crate) fn slot(&self, model: &str) -> Arc<Slot> {
        let t = self.read();
        t.models.get(model).unwrap_or(&t.default).clone()
    }

    pub(crate) fn set(&self, model: Option<&str>, knobs: Knobs) {
        let slot = Slot::new(knobs);
        let mut t = self.write();
        match model {
            None => t.default = slot,
            Some(m) => {
                t.models.insert(m.to_owned(), slot);
            }
        }
    }

    /// Removes a model's own knobs; true if it had some.
    pub(crate) fn remove(&self, model: &str) -> bool {
        self.write().models.remove(model).is_some()
    }

    pub(crate) fn has_model(&self, model: &str) -> bool {
        self.read().models.contains_key(model)
    }

    pub(crate) fn model_names(&self) -> Vec<String> {
        self.read().models.keys().cloned().collect()
    }

    /// Current default and per-model knobs.
    pub(crate) fn snapshot(&self) -> (Knobs, BTreeMap<String, Knobs>) {
        let t = self.read();
        let models = t.models.iter().map(|(k, v)| (k.clone(), v.snapshot())).collect();
        (t.default.snapshot(), models)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_defaults_and_unknown_fields_fail() {
        let k: Knobs = serde_json::from_str(r#"{"answer_tokens":3}"#).unwrap();
        assert_eq!(k.answer_tokens, 3);
        assert_eq!(k.error_status, 500);
        assert!(k.usage);
        assert!(serde_json::from_str::<Knobs>(r#"{"answer_tokns":3}"#).is_err());
        let k: Knobs = serde_json::from_str(r#"{"tool_calls":"never"}"#).unwrap();
        assert_eq!(k.tool_calls, ToolCalls::Never);
        let k: Knobs = serde_json::from_str(r#"{"error_after_tokens":2}"#).unwrap();
        assert_eq!((k.error_after_tokens, k.cut_after_tokens), (Some(2), None));
        assert_eq!(Knobs::default().error_after_tokens, None);
        assert!(serde_json::from_str::<Knobs>(r#"{"error_after_tokens":-1}"#).is_err());
        assert!(!Knobs::default().echo);
        assert!(serde_json::from_str::<Knobs>(r#"{"echo":true}"#).unwrap().echo);
    }

    #[test]
    fn validate_names_the_field() {
        let k = Knobs { error_rate: 2.0, ..Knobs::default() };
        assert!(k.validate().unwrap_err().starts_with("error_rate"));
        let k = Knobs { error_status: 200, ..Knobs::default() };
        assert!(k.validate().unwrap_err().starts_with("error_status"));
        assert!(Knobs::default().validate().is_ok());
    }

    #[test]
    fn countdowns_reach_zero_and_stay() {
        let table = KnobTable::new(Knobs { fail_next: 2, ..Knobs::default() }, BTreeMap::new());
        let slot = table.slot("anything");
        assert!(slot.take_fail());
        assert_eq!(table.snapshot().0.fail_next, 1);
        assert!(slot.take_fail());
        assert!(!slot.take_fail());
        assert!(!slot.take_rate_limit());
    }
}

//! The two wire formats: which one a URL speaks, the body generated for it,
//! its auth headers and where its usage is reported.

use bytes::Bytes;
use serde::Serialize;

/// The API a target speaks (`--api`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `POST /v1/chat/completions`: `Authorization: Bearer`, `data:` chunks, `data: [DONE]`.
    #[value(name = "openai")]
    OpenAi,
    /// `POST /v1/messages`: `x-api-key`, `anthropic-version`, `event:` + `data:` lines, `message_stop`.
    #[value(name = "anthropic")]
    Anthropic,
}

/// `anthropic-version` sent with every Anthropic request.
pub(crate) const ANTHROPIC_VERSION: &str = "2023-06-01";

impl Api {
    /// Anthropic when the URL path ends in `/v1/messages`, else OpenAI.
    pub(crate) fn infer(path: &str) -> Self {
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        if path.ends_with("/v1/messages") {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// The JSON key holding the answer's output tokens in `usage`.
    pub(crate) fn usage_key(self) -> &'static [u8] {
        match self {
            Self::OpenAi => b"\"completion_tokens\"",
            Self::Anthropic => b"\"output_tokens\"",
        }
    }

    /// The generated request body: one user message.
    pub(crate) fn body(self, model: &str, max_tokens: u32, stream: bool, prompt: &str) -> Bytes {
        let mut body = serde_json::json!({
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
        });
        if stream {
            body["stream"] = serde_json::Value::Bool(true);
        }
        Bytes::from(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inference_from_the_path() {
        assert_eq!(Api::infer("/v1/messages"), Api::Anthropic);
        assert_eq!(Api::infer("/anthropic/v1/messages/?beta=true"), Api::Anthropic);
        assert_eq!(Api::infer("/v1/chat/completions"), Api::OpenAi);
        assert_eq!(Api::infer("/v1/messages/count_tokens"), Api::OpenAi);
        assert_eq!(Api::infer("/"), Api::OpenAi);
    }

    #[test]
    fn body_shape() {
        let plain: serde_json::Value =
            serde_json::from_slice(&Api::OpenAi.body("m", 16, false, "Say hello")).unwrap_or_default();
        assert_eq!(
            plain,
            serde_json::json!({"model":"m","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16})
        );
        let stream: serde_json::Value =
            serde_json::from_slice(&Api::Anthropic.body("m", 8, true, "x")).unwrap_or_default();
        assert_eq!(stream["stream"], true);
        assert_eq!(stream["max_tokens"], 8);
    }
}

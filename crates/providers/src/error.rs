//! Upstream failures, classified once where they enter.
//!
//! | kind | retryable (try the next deployment) | typical cause |
//! | --- | --- | --- |
//! | `Connect` | yes | refused, DNS, TLS, connect timeout |
//! | `Timeout` | yes before the first byte | deadline passed |
//! | `RateLimited` | yes | 429 |
//! | `Server` | yes | 5xx, 408 |
//! | `Rejected` | no: the caller's fault | other 4xx |
//! | `Protocol` | yes before the first byte | unreadable body, broken stream |
//!
//! The upstream's own error body is normalised into OpenAI's shape (see
//! [`normalize_error_body`]) so a client always gets the same envelope,
//! whichever OpenAI-compatible server answered.

use std::fmt;
use std::time::Duration;
use switchyard_types::openai::ErrorDetail;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderErrorKind {
    Connect,
    Timeout,
    RateLimited,
    Server,
    Rejected,
    Protocol,
}

impl ProviderErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderErrorKind::Connect => "connect",
            ProviderErrorKind::Timeout => "timeout",
            ProviderErrorKind::RateLimited => "rate_limited",
            ProviderErrorKind::Server => "server_error",
            ProviderErrorKind::Rejected => "rejected",
            ProviderErrorKind::Protocol => "protocol",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    /// HTTP status from upstream, if one arrived.
    pub status: Option<u16>,
    pub message: String,
    /// The upstream's error, normalised to OpenAI's envelope.
    pub body: Option<ErrorDetail>,
    /// From `retry-after` / `retry-after-ms`.
    pub retry_after: Option<Duration>,
    /// The provider's rate-limit headers in OpenAI's names.
    pub rate_limits: Vec<(&'static str, String)>,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            status: None,
            message: message.into(),
            body: None,
            retry_after: None,
            rate_limits: Vec::new(),
        }
    }

    /// Whether another deployment may be tried instead.
    pub fn retryable(&self) -> bool {
        !matches!(self.kind, ProviderErrorKind::Rejected)
    }

    /// Classifies an error status and its body.
    pub fn from_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let kind = match status {
            429 => ProviderErrorKind::RateLimited,
            408 | 500..=599 => ProviderErrorKind::Server,
            _ => ProviderErrorKind::Rejected,
        };
        let detail = normalize_error_body(status, body);
        ProviderError {
            kind,
            status: Some(status),
            message: format!("upstream answered {status}: {}", detail.message),
            body: Some(detail),
            retry_after,
            rate_limits: Vec::new(),
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.as_str())
    }
}

impl std::error::Error for ProviderError {}

/// Reads an error body from any OpenAI-compatible server into OpenAI's
/// shape. Shapes seen in the wild (fixtures/wire/openai_compatible):
///
/// | server | body |
/// | --- | --- |
/// | OpenAI, Ollama `/v1` | `{"error":{"message","type","param","code":"str"}}` |
/// | vLLM (current) | same, `code` is the integer status |
/// | vLLM (legacy), SGLang | flat `{"object":"error","message","type","param","code":400}` |
/// | Azure | `{"error":{"code":"429","message"}}` (no `type`) |
/// | Ollama native | `{"error":"message"}` |
/// | anything else | not JSON: the text is the message |
pub fn normalize_error_body(status: u16, body: &[u8]) -> ErrorDetail {
    let fallback_type = default_type(status);
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let object = value.as_ref().and_then(|v| match v.get("error") {
        Some(e @ serde_json::Value::Object(_)) => Some(e),
        Some(_) => None,
        None if v.get("message").is_some() => Some(v),
        None => None,
    });
    let text = |v: Option<&serde_json::Value>| -> Option<String> {
        match v? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    if let Some(e) = object {
        let kind =
            text(e.get("type")).filter(|t| t.contains('_') && t.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        return ErrorDetail {
            message: text(e.get("message")).unwrap_or_else(|| format!("upstream error {status}")),
            kind: kind.unwrap_or_else(|| fallback_type.to_string()),
            param: text(e.get("param")),
            code: text(e.get("code")).filter(|c| c.parse::<u16>().is_err()),
        };
    }
    let message = match value.as_ref().and_then(|v| v.get("error")) {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => {
            let raw = String::from_utf8_lossy(body);
            let raw = raw.trim();
            if raw.is_empty() {
                format!("upstream error {status}")
            } else {
                raw.chars().take(500).collect()
            }
        }
    };
    ErrorDetail { message, kind: fallback_type.to_string(), param: None, code: None }
}

/// OpenAI's own choice of `type` per status (it says
/// `invalid_request_error` for 401 and 404 too).
fn default_type(status: u16) -> &'static str {
    match status {
        403 => "permission_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// `retry-after` in seconds (or an HTTP date, ignored) and Azure's
/// `retry-after-ms`.
pub fn parse_retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    if let Some(ms) =
        headers.get("retry-after-ms").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok())
    {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let secs = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::test_fixtures::fixture;

    #[test]
    fn openai_errors_keep_type_and_code() {
        let d = normalize_error_body(404, &fixture("openai/errors/404_model_not_found.json"));
        assert_eq!(d.kind, "invalid_request_error");
        assert_eq!(d.code.as_deref(), Some("model_not_found"));
        assert!(d.message.contains("does not exist"));
    }

    #[test]
    fn vllm_current_and_legacy_shapes() {
        let d = normalize_error_body(404, &fixture("openai_compatible/vllm_error_current.json"));
        assert_eq!(d.kind, "invalid_request_error", "exception-style names become OpenAI types");
        assert_eq!(d.code, None, "integer codes are dropped");
        let d = normalize_error_body(400, &fixture("openai_compatible/vllm_error_legacy.json"));
        assert!(d.message.contains("maximum context length"));
        assert_eq!(d.kind, "invalid_request_error");
        let d = normalize_error_body(400, &fixture("openai_compatible/sglang_error.json"));
        assert!(!d.message.is_empty());
    }

    #[test]
    fn ollama_and_azure_shapes() {
        let d = normalize_error_body(404, &fixture("openai_compatible/ollama_api_error.json"));
        assert_eq!(d.message, "model 'llama9' not found");
        assert_eq!(d.kind, "invalid_request_error");
        let d = normalize_error_body(404, &fixture("openai_compatible/ollama_v1_error_model_not_found.json"));
        assert!(d.message.contains("not found"));
        let d = normalize_error_body(429, &fixture("openai_compatible/azure_error_429.json"));
        assert_eq!(d.kind, "rate_limit_error");
        assert_eq!(d.code, None);
        let d = normalize_error_body(404, &fixture("openai_compatible/azure_error_404_deployment.json"));
        assert_eq!(d.code.as_deref(), Some("DeploymentNotFound"));
        let d = normalize_error_body(401, &fixture("openai_compatible/deepseek_error_401.json"));
        assert!(!d.message.is_empty());
    }

    /// Every OpenAI error sample: the status it came with, and the type /
    /// code a client must still see after normalisation.
    #[test]
    fn every_openai_error_sample_keeps_its_words() {
        let table: &[(&str, u16, &str, Option<&str>, ProviderErrorKind)] = &[
            (
                "400_context_length_exceeded",
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
                ProviderErrorKind::Rejected,
            ),
            (
                "400_invalid_request_missing_param",
                400,
                "invalid_request_error",
                Some("missing_required_parameter"),
                ProviderErrorKind::Rejected,
            ),
            ("401_invalid_api_key", 401, "invalid_request_error", Some("invalid_api_key"), ProviderErrorKind::Rejected),
            ("401_missing_api_key", 401, "invalid_request_error", None, ProviderErrorKind::Rejected),
            ("404_model_not_found", 404, "invalid_request_error", Some("model_not_found"), ProviderErrorKind::Rejected),
            (
                "429_insufficient_quota",
                429,
                "insufficient_quota",
                Some("insufficient_quota"),
                ProviderErrorKind::RateLimited,
            ),
            ("429_rate_limit_requests", 429, "requests", Some("rate_limit_exceeded"), ProviderErrorKind::RateLimited),
            ("429_rate_limit_tokens", 429, "tokens", Some("rate_limit_exceeded"), ProviderErrorKind::RateLimited),
            ("500_server_error", 500, "server_error", None, ProviderErrorKind::Server),
            ("503_overloaded", 503, "server_error", None, ProviderErrorKind::Server),
        ];
        for (name, status, kind, code, class) in table {
            let body = fixture(&format!("openai/errors/{name}.json"));
            let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let e = ProviderError::from_status(*status, &body, None);
            assert_eq!(e.kind, *class, "{name}");
            let d = e.body.unwrap();
            assert_eq!(d.message, raw["error"]["message"].as_str().unwrap(), "{name}");
            // One-word types (`tokens`, `requests`) are not OpenAI error
            // types: the status decides.
            let expected_kind = if kind.contains('_') { *kind } else { "rate_limit_error" };
            assert_eq!(d.kind, expected_kind, "{name}");
            assert_eq!(d.code.as_deref(), *code, "{name}");
        }
    }

    #[test]
    fn azure_content_filter_refusal_keeps_its_code() {
        let e =
            ProviderError::from_status(400, &fixture("openai_compatible/azure_error_content_filter_400.json"), None);
        assert_eq!(e.kind, ProviderErrorKind::Rejected, "a filtered prompt is the caller's: not retried");
        let d = e.body.unwrap();
        assert_eq!(d.code.as_deref(), Some("content_filter"));
        assert_eq!(d.param.as_deref(), Some("prompt"));
        assert_eq!(d.kind, "invalid_request_error", "type null: the status decides");
        assert!(d.message.contains("content management policy"));
    }

    #[test]
    fn non_json_bodies_become_messages() {
        let d = normalize_error_body(502, b"<html>bad gateway</html>");
        assert_eq!(d.kind, "server_error");
        assert_eq!(d.message, "<html>bad gateway</html>");
        let d = normalize_error_body(503, b"");
        assert_eq!(d.message, "upstream error 503");
    }

    #[test]
    fn classification() {
        assert_eq!(ProviderError::from_status(429, b"", None).kind, ProviderErrorKind::RateLimited);
        assert_eq!(ProviderError::from_status(503, b"", None).kind, ProviderErrorKind::Server);
        assert_eq!(ProviderError::from_status(408, b"", None).kind, ProviderErrorKind::Server);
        let e = ProviderError::from_status(400, b"", None);
        assert_eq!(e.kind, ProviderErrorKind::Rejected);
        assert!(!e.retryable());
    }

    #[test]
    fn retry_after_headers() {
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", http::HeaderValue::from_static("6"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(6)));
        h.insert("retry-after-ms", http::HeaderValue::from_static("1500"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(1500)));
        let mut h = http::HeaderMap::new();
        h.insert("retry-after", http::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(parse_retry_after(&h), None);
    }
}

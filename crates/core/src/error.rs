//! What can go wrong, classified once, and the one table that maps each
//! kind to an HTTP status and OpenAI's `type` / `code`.

use std::fmt;
use std::time::Duration;
use switchyard_providers::{ProviderError, ProviderErrorKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or breaks a rule (400).
    InvalidRequest,
    /// No key, or a key we do not know (401).
    Unauthenticated,
    /// A valid key that may not do this (403).
    PermissionDenied,
    /// `model` names no route this key may use (404).
    ModelNotFound,
    /// No such endpoint (404).
    NotFound,
    /// The object is in use or in a state that forbids the change (409).
    Conflict,
    /// Body over `server.max_body_bytes` (413).
    PayloadTooLarge,
    /// The upstream said 429 on the last deployment tried (429).
    RateLimited,
    /// A budget of the caller is spent for its period (429, OpenAI's
    /// `insufficient_quota`).
    QuotaExceeded,
    /// The upstream refused the request as the caller's error (its 4xx).
    UpstreamRejected,
    /// No deployment could be reached, or none is enabled (503).
    UpstreamUnavailable,
    /// The upstream failed (5xx, broken body) (502).
    UpstreamFailed,
    /// A deadline passed (504).
    UpstreamTimeout,
    /// The gateway is shutting down or a queue is full (503).
    Overloaded,
    /// Policy keeps the request from every deployment of its route: its
    /// data classification or the tenant's regions (403).
    PolicyRefused,
    /// A bug (500).
    Internal,
}

/// `(status, type, code)` for every kind: the table.
const TABLE: &[(ErrorKind, u16, &str, Option<&str>)] = &[
    (ErrorKind::InvalidRequest, 400, "invalid_request_error", None),
    (ErrorKind::Unauthenticated, 401, "invalid_request_error", Some("invalid_api_key")),
    (ErrorKind::PermissionDenied, 403, "permission_error", Some("permission_denied")),
    (ErrorKind::ModelNotFound, 404, "invalid_request_error", Some("model_not_found")),
    (ErrorKind::NotFound, 404, "invalid_request_error", Some("not_found")),
    (ErrorKind::Conflict, 409, "invalid_request_error", Some("conflict")),
    (ErrorKind::PayloadTooLarge, 413, "invalid_request_error", Some("request_too_large")),
    (ErrorKind::RateLimited, 429, "rate_limit_error", Some("rate_limit_exceeded")),
    (ErrorKind::QuotaExceeded, 429, "insufficient_quota", Some("insufficient_quota")),
    (ErrorKind::UpstreamRejected, 400, "invalid_request_error", None),
    (ErrorKind::UpstreamUnavailable, 503, "server_error", Some("upstream_unavailable")),
    (ErrorKind::UpstreamFailed, 502, "server_error", Some("upstream_error")),
    (ErrorKind::UpstreamTimeout, 504, "timeout_error", Some("upstream_timeout")),
    (ErrorKind::Overloaded, 503, "server_error", Some("overloaded")),
    (ErrorKind::PolicyRefused, 403, "permission_error", Some("data_policy")),
    (ErrorKind::Internal, 500, "server_error", Some("internal_error")),
];

impl ErrorKind {
    fn row(self) -> (u16, &'static str, Option<&'static str>) {
        TABLE.iter().find(|r| r.0 == self).map(|r| (r.1, r.2, r.3)).unwrap_or((500, "server_error", None))
    }

    /// Stable snake_case name for records, logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::UpstreamRejected => "upstream_rejected",
            ErrorKind::UpstreamUnavailable => "upstream_unavailable",
            ErrorKind::UpstreamFailed => "upstream_failed",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::PolicyRefused => "policy_refused",
            ErrorKind::Internal => "internal",
        }
    }
}

#[derive(Clone, Debug)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub message: String,
    pub param: Option<String>,
    /// Overrides the table's code (e.g. the upstream's own code).
    pub code: Option<String>,
    /// Overrides the table's type (the upstream's own type).
    pub wire_type: Option<String>,
    /// Overrides the table's status (an upstream 4xx passes through).
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
    /// Upstream attempts made before giving up.
    pub attempts: u32,
    /// The last deployment tried.
    pub deployment: Option<String>,
    /// The provider's rate-limit headers (OpenAI's names), relayed.
    pub rate_limits: Vec<(&'static str, String)>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            param: None,
            code: None,
            wire_type: None,
            status: None,
            retry_after: None,
            attempts: 0,
            deployment: None,
            rate_limits: Vec::new(),
        }
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }

    pub fn status(&self) -> u16 {
        self.status.unwrap_or(self.kind.row().0)
    }

    pub fn wire_type(&self) -> &str {
        self.wire_type.as_deref().unwrap_or(self.kind.row().1)
    }

    pub fn code(&self) -> Option<&str> {
        self.code.as_deref().or(self.kind.row().2)
    }

    /// OpenAI's error envelope for this error.
    pub fn openai_body(&self) -> Vec<u8> {
        let body = serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.wire_type(),
                "param": self.param,
                "code": self.code(),
            }
        });
        body.to_string().into_bytes()
    }

    /// The client-facing error for an upstream failure on `deployment`.
    /// Anthropic's error envelope (`/v1/messages`): the type follows the
    /// status, as Anthropic's own table does. Anthropic has no `param`: the
    /// field leads the message instead (`max_tokens: Field required`).
    pub fn anthropic_body(&self) -> Vec<u8> {
        let message = match &self.param {
            Some(p) if !self.message.contains(p.as_str()) => format!("{p}: {}", self.message),
            _ => self.message.clone(),
        };
        let body = serde_json::json!({
            "type": "error",
            "error": {
                "type": switchyard_translate::anthropic::error_type_for_status(self.status()),
                "message": message,
            }
        });
        body.to_string().into_bytes()
    }

    pub fn from_provider(e: &ProviderError, deployment: &str) -> Self {
        let kind = match e.kind {
            ProviderErrorKind::Connect => ErrorKind::UpstreamUnavailable,
            ProviderErrorKind::Timeout => ErrorKind::UpstreamTimeout,
            ProviderErrorKind::RateLimited => ErrorKind::RateLimited,
            ProviderErrorKind::Server | ProviderErrorKind::Protocol => ErrorKind::UpstreamFailed,
            ProviderErrorKind::Rejected => ErrorKind::UpstreamRejected,
        };
        let mut out = GatewayError::new(kind, format!("deployment {deployment}: {}", e.message));
        out.retry_after = e.retry_after;
        out.deployment = Some(deployment.to_string());
        out.rate_limits = e.rate_limits.clone();
        if kind == ErrorKind::UpstreamRejected {
            // The caller's error: show the upstream's own words and status.
            if let Some(d) = &e.body {
                out.message = d.message.clone();
                out.param = d.param.clone();
                out.code = d.code.clone();
                out.wire_type = Some(d.kind.clone());
            }
            out.status = e.status;
        }
        out
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_row() {
        let kinds = [
            ErrorKind::InvalidRequest,
            ErrorKind::Unauthenticated,
            ErrorKind::PermissionDenied,
            ErrorKind::ModelNotFound,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::PayloadTooLarge,
            ErrorKind::RateLimited,
            ErrorKind::QuotaExceeded,
            ErrorKind::UpstreamRejected,
            ErrorKind::UpstreamUnavailable,
            ErrorKind::UpstreamFailed,
            ErrorKind::UpstreamTimeout,
            ErrorKind::Overloaded,
            ErrorKind::PolicyRefused,
            ErrorKind::Internal,
        ];
        assert_eq!(kinds.len(), TABLE.len());
        for k in kinds {
            assert!(TABLE.iter().any(|r| r.0 == k), "{k:?}");
        }
    }

    #[test]
    fn upstream_rejections_keep_status_and_words() {
        let pe = ProviderError::from_status(
            422,
            br#"{"error":{"message":"bad temp","type":"invalid_request_error","param":"temperature","code":null}}"#,
            None,
        );
        let e = GatewayError::from_provider(&pe, "d1");
        assert_eq!(e.status(), 422);
        assert_eq!(e.message, "bad temp");
        assert_eq!(e.param.as_deref(), Some("temperature"));
    }

    #[test]
    fn anthropic_bodies_carry_anthropic_types() {
        let e = GatewayError::new(ErrorKind::Unauthenticated, "no key");
        let v: serde_json::Value = serde_json::from_slice(&e.anthropic_body()).unwrap_or_default();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
        assert_eq!(v["error"]["message"], "no key");
        let e = GatewayError::new(ErrorKind::UpstreamTimeout, "slow");
        let v: serde_json::Value = serde_json::from_slice(&e.anthropic_body()).unwrap_or_default();
        assert_eq!(v["error"]["type"], "timeout_error");
    }

    #[test]
    fn body_is_openai_shaped() {
        let e = GatewayError::new(ErrorKind::ModelNotFound, "no").with_param("model");
        let v: serde_json::Value = serde_json::from_slice(&e.openai_body()).unwrap_or_default();
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(e.status(), 404);
    }
}

//! Anthropic's Messages API: `POST {base}/messages` with `x-api-key` and
//! `anthropic-version`. Bodies are already in Anthropic's format (the core
//! translates); error bodies (`{"type":"error","error":{…}}`) are read by
//! the shared [`normalize_error_body`](crate::error::normalize_error_body),
//! and 529 (overloaded) is a retryable server error like any 5xx.

use crate::error::{ProviderError, ProviderErrorKind};
use crate::http::{base_headers, join_url, post_json, probe, Client};
use crate::{Operation, ProbeFuture, Provider, SendFuture, UpstreamRequest};
use http::{HeaderMap, HeaderValue, Uri};

/// `anthropic-version` when the config names none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

pub struct Anthropic {
    messages_url: Uri,
    models_url: Uri,
    headers: HeaderMap,
    client: Client,
}

impl Anthropic {
    /// `base_url` is the API root including `/v1` (`https://api.anthropic.com/v1`).
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        version: Option<&str>,
        extra_headers: &[(String, String)],
        client: Client,
    ) -> Result<Self, ProviderError> {
        let mut headers = base_headers("x-api-key", "", api_key, extra_headers)?;
        let version = HeaderValue::from_str(version.unwrap_or(DEFAULT_VERSION))
            .map_err(|_| ProviderError::new(ProviderErrorKind::Rejected, "invalid api_version"))?;
        headers.insert("anthropic-version", version);
        Ok(Anthropic {
            messages_url: join_url(base_url, "/messages")?,
            models_url: join_url(base_url, "/models")?,
            headers,
            client,
        })
    }
}

impl Provider for Anthropic {
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_> {
        Box::pin(async move {
            if request.operation == Operation::Embeddings {
                return Err(ProviderError::new(ProviderErrorKind::Rejected, "anthropic has no embeddings API"));
            }
            post_json(&self.client, self.messages_url.clone(), &self.headers, request, ProviderError::from_status).await
        })
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(probe(&self.client, self.models_url.clone(), &self.headers))
    }
}

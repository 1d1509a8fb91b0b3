//! Google's Gemini API: `POST {base}/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse` and `:batchEmbedContents`, with
//! `x-goog-api-key`. The model is in the URL. Gemini's error statuses are
//! remapped where they mislead (an invalid key is a 400 there, a 401 here)
//! and its `RetryInfo.retryDelay` becomes the retry-after.

use crate::error::ProviderError;
use crate::http::{base_headers, join_url, post_json, probe, Client};
use crate::{Operation, ProbeFuture, Provider, SendFuture, UpstreamRequest};
use http::HeaderMap;
use std::time::Duration;
use switchyard_translate::gemini;

pub struct Gemini {
    base_url: String,
    headers: HeaderMap,
    client: Client,
}

impl Gemini {
    /// `base_url` is the API root including the version
    /// (`https://generativelanguage.googleapis.com/v1beta`).
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        extra_headers: &[(String, String)],
        client: Client,
    ) -> Result<Self, ProviderError> {
        let headers = base_headers("x-goog-api-key", "", api_key, extra_headers)?;
        let base_url = base_url.trim_end_matches('/').to_string();
        join_url(&base_url, &gemini::chat_path("m", false))?;
        Ok(Gemini { base_url, headers, client })
    }
}

/// Gemini's error envelope → a classified error with the status a client
/// should see.
fn map_error(status: u16, body: &[u8], retry_after: Option<Duration>) -> ProviderError {
    let (status, _message, delay) = gemini::error_status(body, status);
    let retry_after = retry_after.or_else(|| delay.filter(|d| d.is_finite() && *d >= 0.0).map(Duration::from_secs_f64));
    ProviderError::from_status(status, body, retry_after)
}

impl Provider for Gemini {
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_> {
        Box::pin(async move {
            let path = match request.operation {
                Operation::Chat => gemini::chat_path(&request.model, request.stream),
                Operation::Embeddings => gemini::embed_path(&request.model),
            };
            let uri = join_url(&self.base_url, &path)?;
            post_json(&self.client, uri, &self.headers, request, map_error).await
        })
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(async move { probe(&self.client, join_url(&self.base_url, "/models")?, &self.headers).await })
    }
}

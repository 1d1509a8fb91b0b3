//! The OpenAI protocol family: api.openai.com and every server that speaks
//! its wire format (vLLM, SGLang, Ollama `/v1`, DeepSeek, …). Their
//! differences are data (base URL, key, extra headers) plus tolerant
//! parsing in `wire.rs`; there is no per-vendor code path.

pub mod wire;

use crate::error::ProviderError;
use crate::http::{base_headers, join_url, post_json, probe, Client};
use crate::{Operation, ProbeFuture, Provider, SendFuture, UpstreamRequest};
use http::{HeaderMap, Uri};

pub struct OpenAiCompat {
    urls: Urls,
    /// `{base}/models` (Azure: with its `api-version`), for health probes.
    models: Uri,
    headers: HeaderMap,
    client: Client,
}

/// Where requests go.
enum Urls {
    /// `{base}/chat/completions`, `{base}/embeddings`. Parsed once: URL
    /// parsing per request showed in profiles.
    Fixed { chat: Uri, embeddings: Uri },
    /// Azure OpenAI: `{base}/deployments/{model}/chat/completions?api-version=…`,
    /// the deployment name being the deployment's `model`.
    AzureDeployments { base: String, api_version: String },
}

/// Azure's `api-version` when the config names none (GA, 2024-10-21).
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

impl OpenAiCompat {
    /// `base_url` is the API root including `/v1`. `extra_headers` are sent
    /// on every request (vendor-specific routing headers and the like).
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        extra_headers: &[(String, String)],
        client: Client,
    ) -> Result<Self, ProviderError> {
        let headers = base_headers("authorization", "Bearer ", api_key, extra_headers)?;
        let urls = Urls::Fixed {
            chat: join_url(base_url, "/chat/completions")?,
            embeddings: join_url(base_url, "/embeddings")?,
        };
        Ok(OpenAiCompat { urls, models: join_url(base_url, "/models")?, headers, client })
    }

    /// Azure OpenAI: `base_url` is `https://<resource>.openai.azure.com/openai`;
    /// the key goes in the `api-key` header.
    pub fn azure(
        base_url: &str,
        api_key: Option<&str>,
        api_version: Option<&str>,
        extra_headers: &[(String, String)],
        client: Client,
    ) -> Result<Self, ProviderError> {
        let headers = base_headers("api-key", "", api_key, extra_headers)?;
        let base = base_url.trim_end_matches('/').to_string();
        let api_version = api_version.unwrap_or(AZURE_DEFAULT_API_VERSION).to_string();
        // Checked once here so a bad base URL fails at start, not per request.
        join_url(&base, &format!("/deployments/x/chat/completions?api-version={api_version}"))?;
        let models = join_url(&base, &format!("/models?api-version={api_version}"))?;
        Ok(OpenAiCompat { urls: Urls::AzureDeployments { base, api_version }, models, headers, client })
    }

    fn url(&self, op: Operation, model: &str) -> Result<Uri, ProviderError> {
        match &self.urls {
            Urls::Fixed { chat, embeddings } => Ok(match op {
                Operation::Chat => chat.clone(),
                Operation::Embeddings => embeddings.clone(),
            }),
            Urls::AzureDeployments { base, api_version } => {
                let path = match op {
                    Operation::Chat => "chat/completions",
                    Operation::Embeddings => "embeddings",
                };
                join_url(base, &format!("/deployments/{model}/{path}?api-version={api_version}"))
            }
        }
    }
}

impl Provider for OpenAiCompat {
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_> {
        Box::pin(async move {
            let uri = self.url(request.operation, &request.model)?;
            post_json(&self.client, uri, &self.headers, request, ProviderError::from_status).await
        })
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(probe(&self.client, self.models.clone(), &self.headers))
    }
}

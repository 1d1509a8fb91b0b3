//! The OpenAI protocol family: api.openai.com and every server that speaks
//! its wire format (vLLM, SGLang, Ollama `/v1`, DeepSeek, …). Their
//! differences are data (base URL, key, extra headers) plus tolerant
//! parsing in `wire.rs`; there is no per-vendor code path.

pub mod wire;

use crate::error::{parse_retry_after, ProviderError, ProviderErrorKind};
use crate::http::{classify_send, data_stream, read_limited, Client};
use crate::{Operation, Provider, SendFuture, UpstreamBody, UpstreamRequest, UpstreamResponse};
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use http_body_util::Full;

/// Largest error body read from upstream; the rest is ignored.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest whole (non-stream) answer accepted from upstream: a bound on
/// memory per request, far above any real completion or embeddings batch.
const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

pub struct OpenAiCompat {
    /// Parsed once: URL parsing per request showed in profiles.
    chat_url: Uri,
    embeddings_url: Uri,
    headers: HeaderMap,
    client: Client,
}

impl OpenAiCompat {
    /// `base_url` is the API root including `/v1`. `extra_headers` are sent
    /// on every request (vendor-specific routing headers and the like).
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        extra_headers: &[(String, String)],
        client: Client,
    ) -> Result<Self, ProviderError> {
        let bad = |what: String| ProviderError::new(ProviderErrorKind::Rejected, what);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = api_key {
            let mut v = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| bad("api_key contains characters not allowed in a header".into()))?;
            v.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, v);
        }
        for (name, value) in extra_headers {
            let n =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(format!("invalid header name {name:?}")))?;
            let v = HeaderValue::from_str(value).map_err(|_| bad(format!("invalid value for header {name:?}")))?;
            headers.insert(n, v);
        }
        let base = base_url.trim_end_matches('/');
        let url = |path: &str| {
            format!("{base}{path}").parse::<Uri>().map_err(|e| bad(format!("invalid base_url {base_url:?}: {e}")))
        };
        Ok(OpenAiCompat { chat_url: url("/chat/completions")?, embeddings_url: url("/embeddings")?, headers, client })
    }

    fn url(&self, op: Operation) -> Uri {
        match op {
            Operation::Chat => self.chat_url.clone(),
            Operation::Embeddings => self.embeddings_url.clone(),
        }
    }
}

impl Provider for OpenAiCompat {
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_> {
        Box::pin(async move {
            let mut http_request = http::Request::post(self.url(request.operation))
                .body(Full::new(request.body))
                .map_err(|e| ProviderError::new(ProviderErrorKind::Protocol, e.to_string()))?;
            let headers = http_request.headers_mut();
            headers.clone_from(&self.headers);
            if let Ok(id) = HeaderValue::from_str(&request.request_id) {
                headers.insert("x-request-id", id);
            }
            if request.stream {
                headers.insert(http::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
            }
            let response = self.client.request(http_request).await.map_err(|e| classify_send(&e))?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let retry_after = parse_retry_after(response.headers());
                let (body, _) = read_limited(response.into_body(), MAX_ERROR_BODY).await?;
                return Err(ProviderError::from_status(status, &body, retry_after));
            }
            let body = if request.stream {
                UpstreamBody::Stream(data_stream(response.into_body()))
            } else {
                let (body, complete) = read_limited(response.into_body(), MAX_RESPONSE_BODY).await?;
                if !complete {
                    return Err(ProviderError::new(
                        ProviderErrorKind::Protocol,
                        format!("upstream answer is larger than {MAX_RESPONSE_BODY} bytes"),
                    ));
                }
                UpstreamBody::Full(body)
            };
            Ok(UpstreamResponse { status, body })
        })
    }
}

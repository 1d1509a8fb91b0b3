//! The OpenAI protocol family: api.openai.com and every server that speaks
//! its wire format (vLLM, SGLang, Ollama `/v1`, DeepSeek, …). Their
//! differences are data (base URL, key, extra headers) plus tolerant
//! parsing in `wire.rs`; there is no per-vendor code path.

pub mod wire;

use crate::error::{parse_retry_after, ProviderError, ProviderErrorKind};
use crate::http::classify;
use crate::{Operation, Provider, SendFuture, UpstreamBody, UpstreamRequest, UpstreamResponse};
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Largest error body read from upstream; the rest is ignored.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest whole (non-stream) answer accepted from upstream: a bound on
/// memory per request, far above any real completion or embeddings batch.
const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

pub struct OpenAiCompat {
    /// Parsed once: URL parsing (with IDNA) per request showed in profiles.
    chat_url: reqwest::Url,
    embeddings_url: reqwest::Url,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl OpenAiCompat {
    /// `base_url` is the API root including `/v1`. `extra_headers` are sent
    /// on every request (vendor-specific routing headers and the like).
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        extra_headers: &[(String, String)],
        client: reqwest::Client,
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
            reqwest::Url::parse(&format!("{base}{path}"))
                .map_err(|e| bad(format!("invalid base_url {base_url:?}: {e}")))
        };
        Ok(OpenAiCompat { chat_url: url("/chat/completions")?, embeddings_url: url("/embeddings")?, headers, client })
    }

    fn url(&self, op: Operation) -> reqwest::Url {
        match op {
            Operation::Chat => self.chat_url.clone(),
            Operation::Embeddings => self.embeddings_url.clone(),
        }
    }
}

impl Provider for OpenAiCompat {
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_> {
        Box::pin(async move {
            let mut builder =
                self.client.post(self.url(request.operation)).headers(self.headers.clone()).body(request.body);
            if let Ok(id) = HeaderValue::from_str(&request.request_id) {
                builder = builder.header("x-request-id", id);
            }
            if request.stream {
                builder = builder.header(http::header::ACCEPT, "text/event-stream");
            }
            let response = builder.send().await.map_err(|e| classify(&e))?;
            let status = response.status().as_u16();
            if !(200..300).contains(&status) {
                let retry_after = parse_retry_after(response.headers());
                let (body, _) = read_limited(response, MAX_ERROR_BODY).await?;
                return Err(ProviderError::from_status(status, &body, retry_after));
            }
            let body = if request.stream {
                UpstreamBody::Stream(response.bytes_stream().map(|r| r.map_err(|e| classify(&e))).boxed())
            } else {
                let (body, complete) = read_limited(response, MAX_RESPONSE_BODY).await?;
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

/// Reads at most `limit` bytes of the body; `false` when there was more.
/// A body that arrives in one chunk (the common case) is not copied.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<(bytes::Bytes, bool), ProviderError> {
    let mut first: Option<bytes::Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
        let have = first.as_ref().map_or(0, |f| f.len()) + rest.len();
        if have + chunk.len() > limit {
            return Ok((bytes::Bytes::new(), false));
        }
        match &first {
            None => first = Some(chunk),
            Some(f) => {
                if rest.is_empty() {
                    rest.extend_from_slice(f);
                }
                rest.extend_from_slice(&chunk);
            }
        }
    }
    Ok(match (first, rest.is_empty()) {
        (Some(f), true) => (f, true),
        (_, false) => (bytes::Bytes::from(rest), true),
        (None, true) => (bytes::Bytes::new(), true),
    })
}

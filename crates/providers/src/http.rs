//! The one place an HTTP client is built, and where upstream bodies are
//! read.
//!
//! One pooled client per distinct set of settings: keep-alive connections
//! are reused across requests, HTTP/2 is used where the server offers it
//! through ALPN (TLS), TLS roots are webpki's, and the connect deadline and
//! TCP options are set here. The other deadlines (first token, idle gap,
//! total) are enforced by the core's attempt loop because they span more
//! than one read.
//!
//! Plain-HTTP upstreams over HTTP/1.1 go through [`crate::pool`] (our own
//! connections and wire codec, ADR 0012); TLS upstreams and
//! `http2: true` providers through hyper-util's pooled client. Neither is
//! reqwest: its own layers (URL handling, redirect policy) cost ~15% of the
//! gateway's instructions per request in callgrind (docs/adr/0005).

use crate::error::{ProviderError, ProviderErrorKind};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type Legacy = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

/// A pooled HTTP client; cheap to clone (clones share the pools).
#[derive(Clone)]
pub struct Client {
    /// `http://` over HTTP/1.1; `None` when the provider asks for HTTP/2.
    plain: Option<crate::pool::Http1Pool>,
    /// TLS (HTTP/2 where ALPN picks it), and h2c for `http2: true`.
    legacy: Legacy,
}

/// An answer's body from either transport; errors come classified.
pub enum Body {
    Pooled(crate::pool::Body),
    Legacy(Incoming),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = ProviderError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, ProviderError>>> {
        match self.get_mut() {
            Body::Pooled(b) => std::pin::Pin::new(b).poll_frame(cx),
            Body::Legacy(b) => std::pin::Pin::new(b).poll_frame(cx).map_err(|e| classify_body(&e)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Pooled(b) => b.is_end_stream(),
            Body::Legacy(b) => b.is_end_stream(),
        }
    }
}

impl Client {
    /// Sends `request` (absolute URI) and answers the response head; the
    /// body is read by the caller. Failures are classified here.
    pub async fn request(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, ProviderError> {
        match &self.plain {
            Some(pool) if request.uri().scheme() == Some(&http::uri::Scheme::HTTP) => {
                Ok(pool.send(request).await?.map(Body::Pooled))
            }
            _ => match self.legacy.request(request.map(Full::new)).await {
                Ok(response) => Ok(response.map(Body::Legacy)),
                Err(e) => Err(classify_send(&e)),
            },
        }
    }
}

/// Settings a client is built from; equal settings can share a client
/// across config reloads (the pool survives).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// HTTP/2 without TLS (h2c, prior knowledge); see `providers[].http2`.
    pub http2_only: bool,
}

/// `x-request-id`, as a name built once (a name given as text is validated
/// on every use); the server's edge layer uses it too.
pub const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

const H2C_CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;
const H2C_STREAM_WINDOW: u32 = 256 * 1024;

pub fn build_client(settings: &ClientSettings) -> Result<Client, ProviderError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(30)));
    let plain = (!settings.http2_only).then(|| crate::pool::Http1Pool::new(http.clone()));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let mut builder = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
    builder.pool_idle_timeout(Duration::from_secs(90)).pool_max_idle_per_host(1024);
    // No cap on the streams this client resets. Every stream a client walks
    // away from is reset upstream, and the h2 crate counts those over a
    // connection's life: at 1,024 it closed the connection (GOAWAY
    // ENHANCE_YOUR_CALM), failing every other stream on it. The cap guards a
    // server from abusive peers; our upstreams are the operator's choice.
    builder.http2_max_local_error_reset_streams(None);
    if settings.http2_only {
        // Thousands of streams share a connection, each sending small DATA
        // frames (one per token). The h2 crate refuses a connection once the
        // small frames waiting to be read exceed half its receive window
        // (GOAWAY ENHANCE_YOUR_CALM), so the window is large.
        builder
            .http2_only(true)
            .http2_initial_connection_window_size(H2C_CONNECTION_WINDOW)
            .http2_initial_stream_window_size(H2C_STREAM_WINDOW);
    } else {
        builder.http2_adaptive_window(true);
    }
    Ok(Client { plain, legacy: builder.build(https) })
}

/// Classifies a failure to get a response head.
fn classify_send(e: &hyper_util::client::legacy::Error) -> ProviderError {
    let kind = if e.is_connect() { ProviderErrorKind::Connect } else { ProviderErrorKind::Protocol };
    ProviderError::new(kind, chain(e))
}

/// Classifies a failure while reading a body.
fn classify_body(e: &hyper::Error) -> ProviderError {
    let kind = if e.is_timeout() { ProviderErrorKind::Timeout } else { ProviderErrorKind::Protocol };
    ProviderError::new(kind, chain(e))
}

pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Reads at most `limit` bytes of a body; `false` when there was more (the
/// rest is not read). A body that arrives in one frame (the common case)
/// is not copied.
pub async fn read_limited(mut body: Body, limit: usize) -> Result<(Bytes, bool), ProviderError> {
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else { continue };
        let have = first.as_ref().map_or(0, Bytes::len) + rest.len();
        if have + chunk.len() > limit {
            return Ok((Bytes::new(), false));
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
        (_, false) => (Bytes::from(rest), true),
        (None, true) => (Bytes::new(), true),
    })
}

/// The body's data frames as a stream, for SSE framing.
pub fn data_stream(body: Body) -> BoxStream<'static, Result<Bytes, ProviderError>> {
    futures_util::stream::unfold(body, |mut body| async move {
        loop {
            match body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), body));
                    }
                }
                Err(e) => return Some((Err(e), body)),
            }
        }
    })
    .boxed()
}

/// Largest error body read from upstream; the rest is ignored.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest whole (non-stream) answer accepted from upstream: a bound on
/// memory per request, far above any real completion or embeddings batch.
const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

/// How a protocol family turns an error status and body into a
/// [`ProviderError`] (most use [`ProviderError::from_status`]).
pub type ErrorMapper = fn(u16, &[u8], Option<std::time::Duration>) -> ProviderError;

/// Sends one JSON POST and classifies the answer, the same way for every
/// protocol family: an error status becomes a [`ProviderError`] through
/// `map_error`; a stream is handed back unread; a whole body is read up to
/// a bound.
pub async fn post_json(
    client: &Client,
    uri: http::Uri,
    headers: &http::HeaderMap,
    request: crate::UpstreamRequest,
    map_error: ErrorMapper,
) -> Result<crate::UpstreamResponse, ProviderError> {
    use http::HeaderValue;
    let mut http_request = http::Request::post(uri)
        .body(request.body)
        .map_err(|e| ProviderError::new(ProviderErrorKind::Protocol, e.to_string()))?;
    let host = host_header(http_request.uri());
    let h = http_request.headers_mut();
    h.clone_from(headers);
    if let Some(host) = host {
        h.insert(http::header::HOST, host);
    }
    if let Ok(id) = HeaderValue::from_str(&request.request_id) {
        h.insert(X_REQUEST_ID, id);
    }
    if request.stream {
        h.insert(http::header::ACCEPT, HeaderValue::from_static("text/event-stream"));
    }
    let sent = client.request(http_request);
    let response = match request.head_by {
        Some(by) => tokio::time::timeout_at(by, sent).await.map_err(|_| {
            ProviderError::new(ProviderErrorKind::Timeout, "no response head before the first_token deadline")
        })?,
        None => sent.await,
    }?;
    let status = response.status().as_u16();
    let now = || {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        since.map(|d| d.as_secs() as i64).unwrap_or(0)
    };
    let rate_limits = crate::ratelimit::relay_headers(response.headers(), now);
    if !(200..300).contains(&status) {
        let retry_after = crate::error::parse_retry_after(response.headers());
        let (body, _) = read_limited(response.into_body(), MAX_ERROR_BODY).await?;
        let mut e = map_error(status, &body, retry_after);
        e.rate_limits = rate_limits;
        return Err(e);
    }
    let body = if request.stream {
        crate::UpstreamBody::Stream(data_stream(response.into_body()))
    } else {
        let (body, complete) = read_limited(response.into_body(), MAX_RESPONSE_BODY).await?;
        if !complete {
            return Err(ProviderError::new(
                ProviderErrorKind::Protocol,
                format!("upstream answer is larger than {MAX_RESPONSE_BODY} bytes"),
            ));
        }
        crate::UpstreamBody::Full(body)
    };
    Ok(crate::UpstreamResponse { status, body, rate_limits })
}

/// Sends one POST of `body` with `headers` for a caller that is not a
/// provider (budget alert webhooks): the answer's status and at most
/// `limit` bytes of its body (empty when it was longer). Failing to connect
/// or to read is classified as for an upstream; deadlines are the caller's.
pub async fn post_bytes(
    client: &Client,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<(u16, Bytes), ProviderError> {
    let mut request = http::Request::post(uri)
        .body(body)
        .map_err(|e| ProviderError::new(ProviderErrorKind::Protocol, e.to_string()))?;
    let host = host_header(request.uri());
    *request.headers_mut() = headers;
    if let Some(host) = host {
        request.headers_mut().insert(http::header::HOST, host);
    }
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let (body, _) = read_limited(response.into_body(), limit).await?;
    Ok((status, body))
}

/// A health probe: `GET uri` with the provider's headers. Up when it
/// answers — 2xx, or a status that says the server works but has no such
/// list (404, 405) or is busy (429). Down when it cannot be reached, fails
/// (5xx, 408), or refuses the credentials (401, 403: every request would
/// fail too).
pub async fn probe(client: &Client, uri: http::Uri, headers: &http::HeaderMap) -> Result<(), ProviderError> {
    let mut request = http::Request::get(uri)
        .body(Bytes::new())
        .map_err(|e| ProviderError::new(ProviderErrorKind::Protocol, e.to_string()))?;
    let host = host_header(request.uri());
    request.headers_mut().clone_from(headers);
    request.headers_mut().remove(http::header::CONTENT_TYPE);
    if let Some(host) = host {
        request.headers_mut().insert(http::header::HOST, host);
    }
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let (body, _) = read_limited(response.into_body(), MAX_ERROR_BODY).await?;
    match status {
        200..=299 | 404 | 405 | 429 => Ok(()),
        401 | 403 => Err(ProviderError::from_status(status, &body, None)),
        s if s == 408 || s >= 500 => Err(ProviderError::from_status(status, &body, None)),
        _ => Ok(()),
    }
}

/// Headers for a protocol family: JSON content type, the credential (when
/// there is one) as `auth_header: auth_prefix + key`, marked sensitive, and
/// the provider's configured extra headers.
pub fn base_headers(
    auth_header: &'static str,
    auth_prefix: &str,
    api_key: Option<&str>,
    extra_headers: &[(String, String)],
) -> Result<http::HeaderMap, ProviderError> {
    use http::{HeaderName, HeaderValue};
    let bad = |what: String| ProviderError::new(ProviderErrorKind::Rejected, what);
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(key) = api_key {
        let mut v = HeaderValue::from_str(&format!("{auth_prefix}{key}"))
            .map_err(|_| bad("api_key contains characters not allowed in a header".into()))?;
        v.set_sensitive(true);
        headers.insert(HeaderName::from_static(auth_header), v);
    }
    for (name, value) in extra_headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad(format!("invalid header name {name:?}")))?;
        let v = HeaderValue::from_str(value).map_err(|_| bad(format!("invalid value for header {name:?}")))?;
        headers.insert(n, v);
    }
    Ok(headers)
}

/// `Host` for a plain-HTTP URI on a port of its own, taken from the URI as
/// written. The client would otherwise `format!` "host:port" per request
/// (~2,200 instructions). `None` where it needs no formatting (default
/// ports, TLS) or carries credentials: the client sets `Host` then.
fn host_header(uri: &http::Uri) -> Option<http::HeaderValue> {
    let authority = uri.authority()?;
    let own_port = uri.scheme_str() == Some("http") && authority.port_u16().is_some_and(|p| p != 80);
    if !own_port || authority.as_str().contains('@') {
        return None;
    }
    http::HeaderValue::from_str(authority.as_str()).ok()
}

/// Parses `base` + `path` into a URI, naming the base URL when it is bad.
pub fn join_url(base_url: &str, path: &str) -> Result<http::Uri, ProviderError> {
    let base = base_url.trim_end_matches('/');
    format!("{base}{path}")
        .parse::<http::Uri>()
        .map_err(|e| ProviderError::new(ProviderErrorKind::Rejected, format!("invalid base_url {base_url:?}: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::host_header;

    #[test]
    fn host_is_set_only_where_the_client_would_format_it() {
        let host = |u: &str| host_header(&u.parse().unwrap()).map(|v| v.to_str().unwrap().to_string());
        assert_eq!(host("http://127.0.0.1:8000/v1/chat/completions").as_deref(), Some("127.0.0.1:8000"));
        assert_eq!(host("http://[::1]:9000/v1").as_deref(), Some("[::1]:9000"));
        assert_eq!(host("http://vllm.internal/v1"), None);
        assert_eq!(host("http://vllm.internal:80/v1"), None);
        assert_eq!(host("https://api.openai.com/v1"), None);
        assert_eq!(host("https://gw.example:8443/v1"), None);
        assert_eq!(host("http://user:pw@10.0.0.1:8000/v1"), None);
    }
}

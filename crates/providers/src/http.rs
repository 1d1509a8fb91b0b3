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
//! This is hyper-util's client used directly (not reqwest): reqwest's own
//! layers (URL handling, redirect policy) cost ~15% of the gateway's
//! instructions per request in callgrind (docs/adr/0005).

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

/// A pooled HTTP client; cheap to clone (clones share the pool).
pub type Client = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

/// Settings a client is built from; equal settings can share a client
/// across config reloads (the pool survives).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
}

pub fn build_client(settings: &ClientSettings) -> Result<Client, ProviderError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(30)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .http2_adaptive_window(true)
        .build(https))
}

/// Classifies a failure to get a response head.
pub fn classify_send(e: &hyper_util::client::legacy::Error) -> ProviderError {
    let kind = if e.is_connect() { ProviderErrorKind::Connect } else { ProviderErrorKind::Protocol };
    ProviderError::new(kind, chain(e))
}

/// Classifies a failure while reading a body.
pub fn classify_body(e: &hyper::Error) -> ProviderError {
    let kind = if e.is_timeout() { ProviderErrorKind::Timeout } else { ProviderErrorKind::Protocol };
    ProviderError::new(kind, chain(e))
}

fn chain(e: &dyn std::error::Error) -> String {
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
pub async fn read_limited(mut body: Incoming, limit: usize) -> Result<(Bytes, bool), ProviderError> {
    let mut first: Option<Bytes> = None;
    let mut rest: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(|e| classify_body(&e))?.into_data() else { continue };
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
pub fn data_stream(body: Incoming) -> BoxStream<'static, Result<Bytes, ProviderError>> {
    futures_util::stream::unfold(body, |mut body| async move {
        loop {
            match body.frame().await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), body));
                    }
                }
                Err(e) => return Some((Err(classify_body(&e)), body)),
            }
        }
    })
    .boxed()
}

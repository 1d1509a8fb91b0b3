//! The one place an HTTP client is built.
//!
//! One pooled client per provider: keep-alive connections are reused across
//! requests, HTTP/2 is used where the server offers it through ALPN (TLS),
//! and the connect deadline is set here. The other deadlines (first token,
//! idle gap, total) are enforced by the core's attempt loop because they
//! span more than one read.

use crate::error::{ProviderError, ProviderErrorKind};
use std::time::Duration;

/// A pooled HTTP client; cheap to clone (clones share the pool).
pub type Client = reqwest::Client;

/// Settings a client is built from; equal settings can share a client
/// across config reloads (the pool survives).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
}

#[allow(clippy::disallowed_methods)] // this is the one place
pub fn build_client(settings: &ClientSettings) -> Result<Client, ProviderError> {
    reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(30))
        .http2_adaptive_window(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProviderError::new(ProviderErrorKind::Connect, format!("cannot build HTTP client: {e}")))
}

/// Classifies a transport error from reqwest.
pub fn classify(e: &reqwest::Error) -> ProviderError {
    let kind = if e.is_connect() {
        ProviderErrorKind::Connect
    } else if e.is_timeout() {
        ProviderErrorKind::Timeout
    } else {
        ProviderErrorKind::Protocol
    };
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    ProviderError::new(kind, message)
}

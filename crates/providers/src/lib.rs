//! Talking to upstreams. One [`Provider`] per configured provider account;
//! protocol families live in their own module (`openai_compat/`, which
//! also serves Azure OpenAI, `anthropic`, `gemini`), while the HTTP client ([`http`], with [`pool`] for plain-HTTP upstreams), the
//! SSE framing ([`sse`]) and error classification ([`error`]) exist once.
//!
//! Providers do I/O only. Deadlines, fall-through and accounting belong to
//! the core's attempt loop; what a provider returns is already classified
//! (see [`ProviderError`]) so nobody downstream re-parses a status code.

pub mod anthropic;
pub mod error;
pub mod gemini;
pub mod h1;
pub mod http;
pub mod openai_compat;
pub mod pool;
pub mod ratelimit;
pub mod sse;
#[cfg(test)]
mod test_fixtures;

pub use error::{ProviderError, ProviderErrorKind};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use std::future::Future;
use std::pin::Pin;

/// What the gateway is asking for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Chat,
    Embeddings,
}

impl Operation {
    /// The `gen_ai.operation.name` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}

/// One request to one upstream, body already in the provider's wire format.
pub struct UpstreamRequest {
    pub operation: Operation,
    /// The model sent upstream (Gemini and Azure put it in the URL).
    pub model: std::sync::Arc<str>,
    pub body: Bytes,
    pub stream: bool,
    /// Propagated as `x-request-id` so upstream logs can be joined.
    pub request_id: String,
    /// The response's head must arrive by then (`first_token` for a
    /// non-stream call: a server that accepts the connection and never
    /// answers is cut by it, not by the total deadline).
    pub head_by: Option<tokio::time::Instant>,
}

/// A successful (2xx) answer. Error statuses come back as
/// [`ProviderError`]s, already classified.
pub struct UpstreamResponse {
    pub status: u16,
    pub body: UpstreamBody,
    /// The provider's rate-limit headers in OpenAI's names (see [`ratelimit`]).
    pub rate_limits: Vec<(&'static str, String)>,
}

pub enum UpstreamBody {
    /// The whole body (non-stream requests).
    Full(Bytes),
    /// Raw body chunks as they arrive (stream requests); frame them with
    /// [`sse::SseFramer`].
    Stream(BoxStream<'static, Result<Bytes, ProviderError>>),
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<UpstreamResponse, ProviderError>> + Send + 'a>>;
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ProviderError>> + Send + 'a>>;

/// One upstream account. Object-safe so the runtime can hold
/// `Arc<dyn Provider>` for every kind.
pub trait Provider: Send + Sync {
    /// Sends the request and waits for the response head. For a non-stream
    /// request the body is read too; for a stream it is handed back unread.
    fn send(&self, request: UpstreamRequest) -> SendFuture<'_>;
    /// A cheap question for active health checks: the provider's model
    /// list (see [`http::probe`] for what counts as up). The caller sets
    /// the deadline.
    fn probe(&self) -> ProbeFuture<'_>;
}

//! The edge layer every request passes: request id (propagated when the
//! client sent a sane one, generated otherwise, echoed on the response),
//! and a panic catch so a bug answers 500 instead of dropping the
//! connection.

use crate::respond::error_response;
use axum::response::Response;
use futures_util::future::CatchUnwind;
use futures_util::FutureExt;
use http::{HeaderValue, Request};
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use switchyard_core::{ErrorKind, GatewayError};
use switchyard_providers::http::X_REQUEST_ID;

/// The request id, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The edge around the whole router. A service of its own rather than
/// `axum::middleware::from_fn` on the router: that boxes every request's
/// future once more and runs the route through `Next`, itself boxed
/// (~2,500 instructions per request, docs/adr/0005).
#[derive(Clone)]
pub struct Edge<S> {
    inner: S,
}

impl<S> Edge<S> {
    pub fn new(inner: S) -> Edge<S> {
        Edge { inner }
    }
}

impl<S, B> tower_service::Service<Request<B>> for Edge<S>
where
    S: tower_service::Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = req
            .headers()
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| acceptable(v))
            .map(str::to_string)
            .unwrap_or_else(generate);
        let header = HeaderValue::from_str(&id).ok();
        req.extensions_mut().insert(RequestId(id));
        EdgeFuture { inner: AssertUnwindSafe(self.inner.call(req)).catch_unwind(), header }
    }
}

pin_project_lite::pin_project! {
    /// The route's future; a panic in it answers 500, and the response
    /// carries the request id.
    pub struct EdgeFuture<F> {
        #[pin]
        inner: CatchUnwind<AssertUnwindSafe<F>>,
        header: Option<HeaderValue>,
    }
}

impl<F: Future<Output = Result<Response, Infallible>>> Future for EdgeFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match std::task::ready!(this.inner.poll(cx)) {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(_) => {
                let id = this.header.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::error!(request_id = %id, "handler panicked");
                error_response(&GatewayError::new(ErrorKind::Internal, "internal error"))
            }
        };
        if let Some(v) = this.header.take() {
            response.headers_mut().insert(X_REQUEST_ID, v);
        }
        Poll::Ready(Ok(response))
    }
}

/// Client ids are logged and stored: keep them short and printable.
fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())
}

fn generate() -> String {
    switchyard_core::ids::time_ordered("req")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(acceptable("abc-123"));
        assert!(!acceptable(""));
        assert!(!acceptable("has space"));
        assert!(!acceptable(&"x".repeat(129)));
        assert!(generate().starts_with("req_"));
    }
}

//! The edge layer every request passes: request id (propagated when the
//! client sent a sane one, generated otherwise, echoed on the response),
//! and a panic catch so a bug answers 500 instead of dropping the
//! connection.

use crate::respond::error_response;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use futures_util::FutureExt;
use http::HeaderValue;
use std::panic::AssertUnwindSafe;
use switchyard_core::{ErrorKind, GatewayError};
use switchyard_providers::http::X_REQUEST_ID;

/// The request id, available to handlers as an extension.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub async fn edge(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(generate);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => {
            tracing::error!(request_id = %id, "handler panicked");
            error_response(&GatewayError::new(ErrorKind::Internal, "internal error"))
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, v);
    }
    response
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

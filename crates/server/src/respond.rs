//! The one place replies and errors become HTTP responses.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use switchyard_core::{ErrorKind, GatewayError, Reply, ReplyBody};
use switchyard_translate::Format;

pub fn reply_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let (content_type, body) = match reply.body {
        ReplyBody::Json(b) => ("application/json", Body::from(b)),
        ReplyBody::Stream(s) => ("text/event-stream", Body::from_stream(s)),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    // Room for all at once, the edge's `x-request-id` included: growing
    // the map insert by insert rehashes it (and a stream holds the map).
    h.reserve(reply.headers.len() + 4);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type == "text/event-stream" {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Tell buffering proxies (nginx) to pass events through at once.
        h.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    }
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header_name(name), v);
        }
    }
    response
}

const X_ACCEL_BUFFERING: http::HeaderName = http::HeaderName::from_static("x-accel-buffering");

/// The name as a `HeaderName`, without re-validating the ones replies
/// usually carry (validating a name per insert cost ~300 instructions).
fn header_name(name: &'static str) -> http::HeaderName {
    use http::HeaderName as H;
    match name {
        "x-switchyard-route" => const { H::from_static("x-switchyard-route") },
        "x-switchyard-attempts" => const { H::from_static("x-switchyard-attempts") },
        "x-switchyard-overhead-ms" => const { H::from_static("x-switchyard-overhead-ms") },
        "x-switchyard-cost-usd" => const { H::from_static("x-switchyard-cost-usd") },
        "x-ratelimit-limit-requests" => const { H::from_static("x-ratelimit-limit-requests") },
        "x-ratelimit-remaining-requests" => const { H::from_static("x-ratelimit-remaining-requests") },
        "x-ratelimit-reset-requests" => const { H::from_static("x-ratelimit-reset-requests") },
        "x-ratelimit-limit-tokens" => const { H::from_static("x-ratelimit-limit-tokens") },
        "x-ratelimit-remaining-tokens" => const { H::from_static("x-ratelimit-remaining-tokens") },
        "x-ratelimit-reset-tokens" => const { H::from_static("x-ratelimit-reset-tokens") },
        other => H::from_static(other),
    }
}

/// OpenAI's error envelope with the status from the core's table.
pub fn error_response(e: &GatewayError) -> Response {
    error_response_as(e, Format::OpenAi)
}

/// The error envelope of the client's format (OpenAI's, or Anthropic's on
/// `/v1/messages`) with the status from the core's table.
pub fn error_response_as(e: &GatewayError, dialect: Format) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match dialect {
        Format::Anthropic => e.anthropic_body(),
        _ => e.openai_body(),
    };
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    let h = response.headers_mut();
    if let Some(after) = e.retry_after {
        if let Ok(v) = HeaderValue::from_str(&after.as_secs_f64().ceil().to_string()) {
            h.insert(header::RETRY_AFTER, v);
        }
    }
    for (name, value) in &e.rate_limits {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    if e.attempts > 0 {
        h.insert("x-switchyard-attempts", HeaderValue::from(e.attempts));
    }
    if let Some(d) = e.deployment.as_deref().and_then(|d| HeaderValue::from_str(d).ok()) {
        h.insert("x-switchyard-route", d);
    }
    if e.kind == ErrorKind::Unauthenticated {
        h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

pub async fn not_found(uri: http::Uri) -> Response {
    error_response(&GatewayError::new(ErrorKind::NotFound, format!("Unknown path {}.", uri.path())))
}

pub async fn method_not_allowed() -> Response {
    let mut e = GatewayError::new(ErrorKind::InvalidRequest, "Method not allowed for this path.");
    e.status = Some(405);
    e.code = Some("method_not_allowed".into());
    error_response(&e)
}

//! `/v1/*`: the data plane. OpenAI-compatible (`/v1/chat/completions`,
//! `/v1/embeddings`, `/v1/models`) and Anthropic-compatible
//! (`/v1/messages`, `/v1/messages/count_tokens`); errors come back in the
//! format of the endpoint that was called.

use crate::edge::RequestId;
use crate::respond::{error_response, error_response_as, reply_response};
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap};
use http_body_util::BodyExt;
use std::net::SocketAddr;
use std::time::Instant;
use switchyard_core::access::audit::Origin;
use switchyard_core::pipeline::attribution::{TAGS_HEADER, USER_HEADER};
use switchyard_core::pipeline::Inbound;
use switchyard_core::routing::DryRunHeaders;
use switchyard_core::{ErrorKind, GatewayError};
use switchyard_providers::Operation;
use switchyard_translate::Format;

pub async fn chat_completions(state: State<AppState>, req: Request) -> Response {
    serve(state, req, Operation::Chat, Format::OpenAi).await
}

pub async fn embeddings(state: State<AppState>, req: Request) -> Response {
    serve(state, req, Operation::Embeddings, Format::OpenAi).await
}

pub async fn messages(state: State<AppState>, req: Request) -> Response {
    serve(state, req, Operation::Chat, Format::Anthropic).await
}

/// `POST /v1/messages/count_tokens`: the prompt's tokens, counted by the
/// gateway (an estimate with the o200k tokenizer; no upstream call).
pub async fn count_tokens(State(state): State<AppState>, req: Request) -> Response {
    let credential = credential(req.headers());
    let origin = origin(&req);
    let limit = state.gateway.runtime().config.server.max_body_bytes;
    let result = match read_body(req.into_body(), limit).await {
        // Blocking: the first count may wait for the tokenizer to load.
        Ok(body) => {
            let gateway = state.gateway.clone();
            let counted =
                tokio::task::spawn_blocking(move || gateway.count_tokens(credential.as_deref(), origin, &body));
            counted.await.unwrap_or_else(|e| Err(GatewayError::new(ErrorKind::Internal, e.to_string())))
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => json(body),
        Err(e) => error_response_as(&e, Format::Anthropic),
    }
}

/// `POST /api/v1/route`: the router's plan for this request, and why
/// (no upstream call; `?format=anthropic` reads an Anthropic body).
pub async fn dry_run(State(state): State<AppState>, req: Request) -> Response {
    let credential = credential(req.headers());
    let origin = origin(&req);
    let classification = header_text(req.headers(), switchyard_core::routing::classify::HEADER);
    let scenario = header_text(req.headers(), switchyard_core::routing::split::SCENARIO_HEADER);
    let user = header_text(req.headers(), USER_HEADER);
    let task = header_text(req.headers(), switchyard_core::routing::tasks::HEADER);
    let dialect = match req.uri().query() {
        Some(q) if q.split('&').any(|p| p == "format=anthropic") => Format::Anthropic,
        _ => Format::OpenAi,
    };
    let limit = state.gateway.runtime().config.server.max_body_bytes;
    let result = match read_body(req.into_body(), limit).await {
        Ok(body) => {
            let headers = DryRunHeaders {
                classification: classification.as_deref(),
                scenario: scenario.as_deref(),
                user: user.as_deref(),
                task: task.as_deref(),
            };
            state.gateway.dry_run(credential.as_deref(), origin, headers, dialect, &body)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(body) => json(body),
        Err(e) => error_response(&e),
    }
}

pub async fn models(State(state): State<AppState>, req: Request) -> Response {
    match state.gateway.models(credential(req.headers()).as_deref(), origin(&req), None) {
        Ok(body) => json(body),
        Err(e) => error_response(&e),
    }
}

pub async fn model(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    match state.gateway.models(credential(req.headers()).as_deref(), origin(&req), Some(&id)) {
        Ok(body) => json(body),
        Err(e) => error_response(&e),
    }
}

async fn serve(State(state): State<AppState>, req: Request, op: Operation, dialect: Format) -> Response {
    let received = Instant::now();
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let credential = credential(req.headers());
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let (tags, end_user) = (header_text(req.headers(), TAGS_HEADER), header_text(req.headers(), USER_HEADER));
    let classification = header_text(req.headers(), switchyard_core::routing::classify::HEADER);
    let scenario = header_text(req.headers(), switchyard_core::routing::split::SCENARIO_HEADER);
    let task = header_text(req.headers(), switchyard_core::routing::tasks::HEADER);
    let timeout = header_text(req.headers(), switchyard_core::resilience::deadline::HEADER);
    let limit = state.gateway.runtime().config.server.max_body_bytes;
    let body = match read_body(req.into_body(), limit).await {
        Ok(b) => b,
        Err(e) => {
            let e = state.gateway.refuse(op, &request_id, credential.as_deref(), received, e).await;
            return error_response_as(&e, dialect);
        }
    };
    let inbound = Inbound {
        request_id,
        credential,
        body,
        dialect,
        received,
        peer,
        tags,
        end_user,
        classification,
        scenario,
        task,
        timeout,
    };
    match state.gateway.handle(op, inbound).await {
        Ok(reply) => reply_response(reply),
        Err(e) => error_response_as(&e, dialect),
    }
}

/// A header's value as text (attribution headers: checked by the core).
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The client's address and the request id, for the audit log.
pub fn origin(req: &Request) -> Origin {
    Origin {
        ip: req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
    }
}

/// The key from `Authorization: Bearer …` or `x-api-key`.
pub fn credential(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim().to_string());
        }
    }
    headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_string())
}

/// Reads the whole body, refusing (413) past `limit` bytes without
/// buffering the excess.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, GatewayError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(own_small(collected.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(GatewayError::new(
            ErrorKind::PayloadTooLarge,
            format!("Request body is larger than the limit of {limit} bytes."),
        )),
        Err(e) => Err(GatewayError::new(ErrorKind::InvalidRequest, format!("Could not read the request body: {e}"))),
    }
}

/// A small body as its own allocation. The one hyper hands over is a slice
/// of the connection's 8 KiB read buffer, which a kept body (a stream holds
/// it until the end, for retries and token counts) would pin, making hyper
/// allocate a second buffer for the same connection. Larger bodies arrive in
/// several reads and are already joined into one allocation of their own.
fn own_small(body: Bytes) -> Bytes {
    if body.len() <= 16 * 1024 {
        Bytes::copy_from_slice(&body)
    } else {
        body
    }
}

fn json(body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

//! `/api/v1/*`: the control plane. For now: keys. Authenticated with the
//! bootstrap admin token (roles arrive with the tenants issue).

use crate::respond::error_response;
use crate::v1::{credential, read_body};
use crate::AppState;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use switchyard_core::gateway::NewKey;
use switchyard_core::{ErrorKind, GatewayError};

/// Admin bodies are small.
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// `POST /api/v1/keys` → 201 with the key record and its secret (shown
/// this once).
pub async fn create_key(State(state): State<AppState>, req: Request) -> Response {
    if let Err(e) = state.gateway.check_admin(credential(req.headers()).as_deref()) {
        return error_response(&e);
    }
    let body = match read_body(req.into_body(), MAX_ADMIN_BODY).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let new: NewKey = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return error_response(&GatewayError::new(ErrorKind::InvalidRequest, format!("Invalid key request: {e}")))
        }
    };
    match state.gateway.create_key(new).await {
        Ok((record, secret)) => {
            let mut body = serde_json::to_value(&record).unwrap_or_default();
            body["key"] = serde_json::Value::String(secret);
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err(e) => error_response(&e),
    }
}

/// `GET /api/v1/keys` → every key, without secrets or hashes.
pub async fn list_keys(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = state.gateway.check_admin(credential(&headers).as_deref()) {
        return error_response(&e);
    }
    match state.gateway.store.load_keys().await {
        Ok(keys) => axum::Json(serde_json::json!({"object": "list", "data": keys})).into_response(),
        Err(e) => error_response(&GatewayError::new(ErrorKind::Overloaded, e.to_string())),
    }
}

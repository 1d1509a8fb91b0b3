//! Liveness, readiness and metrics.

use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use std::time::Duration;

pub async fn health() -> Response {
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

/// Ready when a config is loaded (always, once serving) and the store
/// answers within a second.
pub async fn ready(State(state): State<AppState>) -> Response {
    let store = tokio::time::timeout(Duration::from_secs(1), state.gateway.store.ping()).await;
    let rt = state.gateway.runtime();
    let routes = rt.routes.len();
    match store {
        Ok(Ok(())) => axum::Json(serde_json::json!({"status": "ready", "routes": routes})).into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "not_ready", "store": e.to_string()})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "not_ready", "store": "timed out"})),
        )
            .into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.gateway.metrics.render()).into_response()
}

//! Azure OpenAI's URLs over the OpenAI handlers ([`crate::chat`],
//! [`crate::embeddings`]): same bodies, knobs and faults, recorded with
//! format `azure`.
//!
//! | route | model | auth | `api-version` |
//! | --- | --- | --- | --- |
//! | `/openai/deployments/{deployment}/chat/completions`, `…/embeddings` | the deployment (the body's `model` is ignored, may be absent) | `api-key` | required |
//! | `/openai/v1/chat/completions`, `/openai/v1/embeddings` | the body's `model` | `api-key` or `Authorization: Bearer` | not needed |
//!
//! A missing key is 401 with Azure's body (`azure_error_401.json`); a
//! missing `api-version` is 400 with an OpenAI-style `invalid_request_error`
//! (Azure's own answer varies by API version).

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::chat::{self, Route};
use crate::record::Format;
use crate::wire::{self, BadRequest};
use crate::{embeddings, Sim};

const DEPLOYMENT_CHAT: &str = "/openai/deployments/{deployment}/chat/completions";
const DEPLOYMENT_EMBEDDINGS: &str = "/openai/deployments/{deployment}/embeddings";
const V1_CHAT: &str = "/openai/v1/chat/completions";
const V1_EMBEDDINGS: &str = "/openai/v1/embeddings";

const DENIED: &str = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a \
                      valid key for an active subscription and use a correct regional API endpoint for your resource.";

/// Why a request is refused before its body is looked at.
#[derive(Clone, Copy, Debug)]
enum Refusal {
    NoKey,
    NoApiVersion,
}

pub(crate) async fn deployment_chat(
    State(sim): State<Arc<Sim>>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = Route { path: DEPLOYMENT_CHAT, format: Format::Azure, deployment: Some(deployment) };
    match deployment_refusal(&headers, query.as_deref()) {
        Some(refusal) => refuse(&sim, &headers, &body, route, refusal),
        None => chat::serve(sim, &headers, &body, route).await,
    }
}

pub(crate) async fn deployment_embeddings(
    State(sim): State<Arc<Sim>>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let route = Route { path: DEPLOYMENT_EMBEDDINGS, format: Format::Azure, deployment: Some(deployment) };
    match deployment_refusal(&headers, query.as_deref()) {
        Some(refusal) => refuse(&sim, &headers, &body, route, refusal),
        None => embeddings::serve(sim, &headers, &body, route).await,
    }
}

pub(crate) async fn v1_chat(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let route = Route { path: V1_CHAT, format: Format::Azure, deployment: None };
    match v1_refusal(&headers) {
        Some(refusal) => refuse(&sim, &headers, &body, route, refusal),
        None => chat::serve(sim, &headers, &body, route).await,
    }
}

pub(crate) async fn v1_embeddings(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let route = Route { path: V1_EMBEDDINGS, format: Format::Azure, deployment: None };
    match v1_refusal(&headers) {
        Some(refusal) => refuse(&sim, &headers, &body, route, refusal),
        None => embeddings::serve(sim, &headers, &body, route).await,
    }
}

fn deployment_refusal(headers: &HeaderMap, query: Option<&str>) -> Option<Refusal> {
    if wire::header(headers, "api-key").is_none() {
        return Some(Refusal::NoKey);
    }
    if wire::query_param(query, "api-version").is_none_or(str::is_empty) {
        return Some(Refusal::NoApiVersion);
    }
    None
}

fn v1_refusal(headers: &HeaderMap) -> Option<Refusal> {
    let bearer = wire::header(headers, AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "));
    let has_key = wire::header(headers, "api-key").is_some() || bearer.is_some_and(|t| !t.trim().is_empty());
    (!has_key).then_some(Refusal::NoKey)
}

/// Records the refused request (as received) and answers the refusal.
fn refuse(sim: &Arc<Sim>, headers: &HeaderMap, body: &[u8], route: Route, refusal: Refusal) -> Response {
    let logged = wire::logged_body(body).unwrap_or_else(|text| text);
    let model = route.deployment.or_else(|| wire::str_field(&logged, "model"));
    let stream = logged.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let rec = sim.record(route.path, Format::Azure, headers, model, stream, logged);
    let seq = rec.seq();
    let resp = match refusal {
        Refusal::NoKey => {
            let body = serde_json::json!({"error": {"code": "401", "message": DENIED}}).to_string();
            wire::json_response(Format::Azure, StatusCode::UNAUTHORIZED, seq, body)
        }
        Refusal::NoApiVersion => BadRequest::missing("api-version").into_response(seq),
    };
    rec.fail(resp)
}

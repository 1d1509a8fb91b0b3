//! The control API under `/_sim/` and the model list under `/v1/models`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};

use crate::knobs::Knobs;
use crate::record::{Format, Outcome};
use crate::wire;
use crate::Sim;

/// `created` of every listed model: the sim has no real creation dates.
const MODEL_CREATED: u64 = 1_700_000_000;

/// `GET /_sim/knobs` → `{"default": Knobs, "models": {name: Knobs}}`.
pub(crate) async fn get_knobs(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.knobs()).into_response()
}

/// `PUT /_sim/knobs` → replaces the default knobs.
pub(crate) async fn put_default(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    put(&sim, None, &body)
}

/// `PUT /_sim/knobs/{model}` → replaces one model's knobs.
pub(crate) async fn put_model(State(sim): State<Arc<Sim>>, Path(model): Path<String>, body: Bytes) -> Response {
    put(&sim, Some(&model), &body)
}

fn put(sim: &Sim, model: Option<&str>, body: &[u8]) -> Response {
    let knobs = serde_json::from_slice::<Value>(body)
        .map_err(|e| e.to_string())
        .and_then(|v| match v {
            // Structs also deserialize from arrays; knobs are objects only.
            Value::Object(_) => serde_json::from_value::<Knobs>(v).map_err(|e| e.to_string()),
            _ => Err("expected a JSON object".to_owned()),
        })
        .and_then(|k| k.validate().map(|()| k));
    match knobs {
        Ok(k) => {
            sim.set_knobs(model, k);
            Json(sim.knobs()).into_response()
        }
        Err(e) => control_error(StatusCode::BAD_REQUEST, &format!("invalid knobs: {e}")),
    }
}

/// `DELETE /_sim/knobs/{model}` → the model falls back to the default knobs
/// and leaves `/v1/models`.
pub(crate) async fn delete_model(State(sim): State<Arc<Sim>>, Path(model): Path<String>) -> Response {
    if sim.knobs.remove(&model) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        control_error(StatusCode::NOT_FOUND, &format!("no knobs for model `{model}`"))
    }
}

/// `GET /_sim/requests` → the recorded requests, oldest first.
pub(crate) async fn get_requests(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.requests()).into_response()
}

/// `DELETE /_sim/requests` → forgets them.
pub(crate) async fn delete_requests(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.clear_requests();
    StatusCode::NO_CONTENT
}

/// `GET /_sim/health`.
pub(crate) async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /v1/models`: the configured model names, in the `models_list.json` shape.
pub(crate) async fn list_models(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    let rec = sim.record("/v1/models", Format::OpenAi, &headers, None, false, Value::Null);
    let data: Vec<Value> = sim.knobs.model_names().iter().map(|m| model_object(m)).collect();
    let body = json!({"object": "list", "data": data}).to_string();
    let seq = rec.seq();
    rec.finish(Outcome::Completed, 200);
    wire::json_response(Format::OpenAi, StatusCode::OK, seq, body)
}

/// `GET /v1/models/{model}`: one configured model, or 404 `model_not_found`.
pub(crate) async fn get_model(State(sim): State<Arc<Sim>>, Path(model): Path<String>, headers: HeaderMap) -> Response {
    let rec = sim.record("/v1/models/{model}", Format::OpenAi, &headers, Some(model.clone()), false, Value::Null);
    let seq = rec.seq();
    if sim.knobs.has_model(&model) {
        rec.finish(Outcome::Completed, 200);
        wire::json_response(Format::OpenAi, StatusCode::OK, seq, model_object(&model).to_string())
    } else {
        rec.finish(Outcome::Failed, 404);
        wire::injected_error(404, seq, &model)
    }
}

fn model_object(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": MODEL_CREATED, "owned_by": "switchyard-sim"})
}

/// Any other path: 404 in the OpenAI error shape.
pub(crate) async fn not_found(uri: http::Uri) -> Response {
    control_error(StatusCode::NOT_FOUND, &format!("Invalid URL ({}): switchyard-sim has no such route", uri.path()))
}

fn control_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    (status, Json(body)).into_response()
}

//! `/api/v1/*`: the control plane (docs/admin-api.md). Each handler reads
//! who is calling, where from, the path and the body, and hands them to
//! the core's admin operations; answers and errors are JSON in one shape.
//!
//! | path | methods |
//! | --- | --- |
//! | `/api/v1/whoami` | GET |
//! | `/api/v1/{plans,tenants,teams,users,keys}` | GET (list), POST (create) |
//! | `/api/v1/{kind}/{id}` | GET, PATCH, DELETE |
//! | `/api/v1/keys/{id}/{disable,enable,revoke,rotate}` | POST |
//! | `/api/v1/audit` | GET |
//! | `/api/v1/analytics/cost` | GET (JSON, or CSV with `format=csv`) |
//! | `/api/v1/alerts` | GET |
//! | `/api/v1/deployments` | GET |
//! | `/api/v1/rollouts` | GET, POST; `/{route}/{arm}/{advance,pause,resume,rollback,promote}` POST |
//! | `/api/v1/faults` | GET, POST; `/{id}` DELETE |

use crate::edge::RequestId;
use crate::respond::error_response;
use crate::v1::{credential, read_body};
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde_json::Value;
use std::net::SocketAddr;
use switchyard_core::access::audit::Origin;
use switchyard_core::access::{Kind, Principal};
use switchyard_core::analytics;
use switchyard_core::{ErrorKind, GatewayError};

/// Admin bodies are small.
const MAX_ADMIN_BODY: usize = 64 * 1024;

/// What every admin handler starts from.
struct Call {
    who: Principal,
    origin: Origin,
    query: Vec<(String, String)>,
    body: Bytes,
}

/// Reads the caller (401 when not valid), the query and the body.
async fn call(state: &AppState, req: Request) -> Result<Call, Response> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let origin = Origin { ip: peer, request_id };
    let who = state
        .gateway
        .admin_principal(credential(req.headers()).as_deref(), &origin)
        .await
        .map_err(|e| error_response(&e))?;
    let query = match Query::<Vec<(String, String)>>::try_from_uri(req.uri()) {
        Ok(Query(q)) => q,
        Err(e) => {
            return Err(error_response(&GatewayError::new(ErrorKind::InvalidRequest, format!("Bad query string: {e}"))))
        }
    };
    let body = read_body(req.into_body(), MAX_ADMIN_BODY).await.map_err(|e| error_response(&e))?;
    Ok(Call { who, origin, query, body })
}

fn kind_of(collection: &str) -> Result<Kind, Response> {
    let kind = match collection {
        "plans" => Kind::Plan,
        "tenants" => Kind::Tenant,
        "teams" => Kind::Team,
        "users" => Kind::User,
        "keys" => Kind::Key,
        other => {
            return Err(error_response(&GatewayError::new(
                ErrorKind::NotFound,
                format!("Unknown admin collection '{other}': plans, tenants, teams, users, keys, audit, alerts."),
            )))
        }
    };
    Ok(kind)
}

fn answer(status: StatusCode, result: Result<Value, GatewayError>) -> Response {
    match result {
        Ok(v) => (status, axum::Json(v)).into_response(),
        Err(e) => error_response(&e),
    }
}

macro_rules! try_or_respond {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

/// `GET /api/v1/whoami`.
pub async fn whoami(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    let body = match &c.who {
        Principal::Bootstrap => serde_json::json!({"kind": "bootstrap"}),
        Principal::Key(k) => serde_json::json!({
            "kind": "key", "key_id": k.key.id, "tenant_id": k.key.tenant_id,
            "roles": k.key.roles, "permissions": k.permissions.names(),
        }),
    };
    answer(StatusCode::OK, Ok(body))
}

/// `GET /api/v1/config/versions`.
pub async fn config_versions(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.config_versions_list(&c.who).await)
}

/// `GET /api/v1/config/versions/{n}`.
pub async fn config_version(State(state): State<AppState>, Path(n): Path<String>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    let Ok(n) = n.parse::<i64>() else {
        return error_response(&GatewayError::new(ErrorKind::NotFound, format!("No config version {n}.")));
    };
    answer(StatusCode::OK, state.gateway.config_version_show(&c.who, n).await)
}

/// `POST /api/v1/config/rollback`.
pub async fn config_rollback(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.config_rollback(&c.who, &c.body, &c.origin).await)
}

/// `POST /api/v1/models/{route}/rollback`.
pub async fn route_rollback(State(state): State<AppState>, Path(route): Path<String>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.route_rollback(&c.who, &route, &c.origin).await)
}

/// `GET /api/v1/deployments`: health and breaker state (this replica).
pub async fn deployments(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.deployments_health(&c.who))
}

/// `GET /api/v1/rollouts`.
pub async fn rollouts(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.rollouts_list(&c.who))
}

/// `POST /api/v1/rollouts`.
pub async fn rollout_create(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::CREATED, state.gateway.rollout_create(&c.who, &c.body, &c.origin).await)
}

/// `POST /api/v1/rollouts/{route}/{arm}/{action}`: advance, pause, resume,
/// rollback, promote.
pub async fn rollout_action(
    State(state): State<AppState>,
    Path((route, arm, action)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.rollout_action(&c.who, &route, &arm, &action, &c.body, &c.origin).await)
}

/// `GET /api/v1/faults`: this replica's fault injection rules.
pub async fn faults(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.faults_list(&c.who))
}

/// `POST /api/v1/faults`.
pub async fn fault_add(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::CREATED, state.gateway.fault_add(&c.who, &c.body, &c.origin).await)
}

/// `DELETE /api/v1/faults/{id}`.
pub async fn fault_remove(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.fault_remove(&c.who, &id, &c.origin))
}

/// `GET /api/v1/nodes`: compute nodes and their last heartbeats (the
/// platform admin only: nodes are infrastructure, not a tenant's).
pub async fn nodes(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    if !matches!(c.who, Principal::Bootstrap) {
        let e = GatewayError::new(ErrorKind::PermissionDenied, "Compute nodes are visible to the platform admin only.");
        return error_response(&e);
    }
    answer(StatusCode::OK, Ok(state.gateway.nodes_list()))
}

/// `POST /api/v1/nodes/heartbeat`, authenticated by `nodes.token`.
pub async fn node_heartbeat(State(state): State<AppState>, req: Request) -> Response {
    let credential = credential(req.headers());
    let body = try_or_respond!(read_body(req.into_body(), MAX_ADMIN_BODY).await.map_err(|e| error_response(&e)));
    answer(StatusCode::OK, state.gateway.node_heartbeat(credential.as_deref(), &body).await)
}

/// `GET /api/v1/{kind}`.
pub async fn list(State(state): State<AppState>, Path(collection): Path<String>, req: Request) -> Response {
    let kind = try_or_respond!(kind_of(&collection));
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.admin_list(&c.who, kind, &c.query, &c.origin).await)
}

/// `POST /api/v1/{kind}` → 201.
pub async fn create(State(state): State<AppState>, Path(collection): Path<String>, req: Request) -> Response {
    let kind = try_or_respond!(kind_of(&collection));
    let c = try_or_respond!(call(&state, req).await);
    let created = state.gateway.admin_create(&c.who, kind, &c.body, &c.origin).await;
    answer(StatusCode::CREATED, created.map(|c| c.view))
}

/// `GET /api/v1/{kind}/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let kind = try_or_respond!(kind_of(&collection));
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.admin_get(&c.who, kind, &id, &c.origin).await)
}

/// `PATCH /api/v1/{kind}/{id}` (JSON merge patch).
pub async fn update(
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let kind = try_or_respond!(kind_of(&collection));
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.admin_update(&c.who, kind, &id, &c.body, &c.origin).await)
}

/// `DELETE /api/v1/{kind}/{id}` → 204.
pub async fn delete(
    State(state): State<AppState>,
    Path((collection, id)): Path<(String, String)>,
    req: Request,
) -> Response {
    let kind = try_or_respond!(kind_of(&collection));
    let c = try_or_respond!(call(&state, req).await);
    match state.gateway.admin_delete(&c.who, kind, &id, &c.origin).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(&e),
    }
}

/// `POST /api/v1/keys/{id}/{action}`: 200, or 201 with the new secret for
/// `rotate`.
pub async fn key_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    req: Request,
) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    let status = if action == "rotate" { StatusCode::CREATED } else { StatusCode::OK };
    answer(status, state.gateway.key_action(&c.who, &id, &action, &c.body, &c.origin).await.map(|c| c.view))
}

/// `GET /api/v1/audit`.
pub async fn audit(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.audit_list(&c.who, &c.query, &c.origin).await)
}

/// `GET /api/v1/alerts`: budget threshold alerts, newest first.
pub async fn alerts(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    answer(StatusCode::OK, state.gateway.alerts_list(&c.who, &c.query, &c.origin).await)
}

/// `GET /api/v1/analytics/cost` (docs/analytics.md): JSON, or CSV with
/// `format=csv`. At most `ANALYTICS_AT_ONCE` run at a time; others wait.
pub async fn analytics_cost(State(state): State<AppState>, req: Request) -> Response {
    let c = try_or_respond!(call(&state, req).await);
    let Ok(_turn) = state.analytics.acquire().await else {
        return error_response(&GatewayError::new(ErrorKind::Overloaded, "The gateway is shutting down."));
    };
    match state.gateway.analytics_cost(&c.who, &c.query, &c.origin).await {
        Ok(report) if report.query.format == analytics::Format::Csv => {
            let headers = [
                (http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (http::header::CONTENT_DISPOSITION, "attachment; filename=\"switchyard-cost.csv\""),
            ];
            (StatusCode::OK, headers, analytics::render::csv(&report)).into_response()
        }
        Ok(report) => (StatusCode::OK, axum::Json(analytics::render::json(&report))).into_response(),
        Err(e) => error_response(&e),
    }
}

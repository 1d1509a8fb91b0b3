//! The HTTP face of the gateway (axum). Request-agnostic concerns are
//! layers at the edge ([`edge`]: request id, panic catch); the handlers
//! read the body within the size limit, hand it to the core pipeline and
//! turn what comes back — a reply or a typed error — into HTTP in one
//! place ([`respond`]).
//!
//! | path | handler |
//! | --- | --- |
//! | `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models[/{id}]` | [`v1`] |
//! | `POST /v1/messages`, `POST /v1/messages/count_tokens` (Anthropic format) | [`v1`] |
//! | `/api/v1/{plans,tenants,teams,users,keys}[/{id}[/{action}]]`, `/api/v1/audit`, `/api/v1/alerts`, `/api/v1/analytics/cost`, `/api/v1/whoami` | [`admin`] |
//! | `POST /api/v1/route` (routing dry run, as the calling key) | [`v1`] |
//! | `GET /api/v1/nodes`, `POST /api/v1/nodes/heartbeat` (compute nodes) | [`admin`] |
//! | `GET /api/v1/config/versions[/{n}]`, `POST /api/v1/config/rollback`, `POST /api/v1/models/{route}/rollback` | [`admin`] |
//! | `GET`/`POST /api/v1/rollouts`, `POST /api/v1/rollouts/{route}/{arm}/{action}` | [`admin`] |
//! | `GET /api/v1/deployments` (health, breakers) | [`admin`] |
//! | `GET`/`POST /api/v1/faults`, `DELETE /api/v1/faults/{id}` (fault injection) | [`admin`] |
//! | `GET /health`, `GET /ready`, `GET /metrics` | [`ops`] |

pub mod admin;
pub mod edge;
pub mod ops;
pub mod respond;
pub mod v1;

use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use switchyard_core::Gateway;

#[derive(Clone)]
pub struct AppState {
    pub gateway: Arc<Gateway>,
    /// Analytics queries running at once: each holds a store connection
    /// for its reads, and the usage writer must always find one (SQLite's
    /// pool has four).
    pub analytics: Arc<tokio::sync::Semaphore>,
}

/// See [`AppState::analytics`].
const ANALYTICS_AT_ONCE: usize = 2;

/// The whole application: the router inside the edge.
pub fn app(gateway: Arc<Gateway>) -> edge::Edge<Router> {
    let state = AppState { gateway, analytics: Arc::new(tokio::sync::Semaphore::new(ANALYTICS_AT_ONCE)) };
    let router = Router::new()
        .route("/v1/chat/completions", post(v1::chat_completions))
        .route("/v1/embeddings", post(v1::embeddings))
        .route("/v1/messages", post(v1::messages))
        .route("/v1/messages/count_tokens", post(v1::count_tokens))
        .route("/v1/models", get(v1::models))
        .route("/v1/models/{id}", get(v1::model))
        .route("/api/v1/whoami", get(admin::whoami))
        .route("/api/v1/audit", get(admin::audit))
        .route("/api/v1/analytics/cost", get(admin::analytics_cost))
        .route("/api/v1/alerts", get(admin::alerts))
        .route("/api/v1/route", post(v1::dry_run))
        .route("/api/v1/nodes", get(admin::nodes))
        .route("/api/v1/config/versions", get(admin::config_versions))
        .route("/api/v1/config/versions/{n}", get(admin::config_version))
        .route("/api/v1/config/rollback", post(admin::config_rollback))
        .route("/api/v1/models/{route}/rollback", post(admin::route_rollback))
        .route("/api/v1/rollouts", get(admin::rollouts).post(admin::rollout_create))
        .route("/api/v1/deployments", get(admin::deployments))
        .route("/api/v1/rollouts/{route}/{arm}/{action}", post(admin::rollout_action))
        .route("/api/v1/faults", get(admin::faults).post(admin::fault_add))
        .route("/api/v1/faults/{id}", axum::routing::delete(admin::fault_remove))
        .route("/api/v1/nodes/heartbeat", post(admin::node_heartbeat))
        .route("/api/v1/{collection}", get(admin::list).post(admin::create))
        .route("/api/v1/{collection}/{id}", get(admin::get).patch(admin::update).delete(admin::delete))
        .route("/api/v1/keys/{id}/{action}", post(admin::key_action))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .fallback(respond::not_found)
        .method_not_allowed_fallback(respond::method_not_allowed)
        .with_state(state);
    edge::Edge::new(router)
}

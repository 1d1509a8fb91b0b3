//! Resolution: which route the request names, and the plan of attempts.
//!
//! This is the seam the routing engine plugs into: today a plan is the
//! route's enabled deployments in configured order; strategies, tiers and
//! rollouts will reorder and filter here without touching the attempt loop.

use crate::access::Caller;
use crate::error::{ErrorKind, GatewayError};
use crate::runtime::{Deployment, Route, Runtime};
use std::sync::Arc;
use switchyard_providers::Operation;

/// The ordered deployments to try for one request.
pub struct Plan {
    pub route: Arc<Route>,
    pub attempts: Vec<Arc<Deployment>>,
}

pub fn resolve(rt: &Runtime, key: &Caller, model: &str, op: Operation) -> Result<Plan, GatewayError> {
    let route = rt.routes.get(model).filter(|_| key.may_use(model)).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::ModelNotFound,
            format!("The model `{model}` does not exist or you do not have access to it."),
        )
        .with_param("model")
    })?;
    let wants_embeddings = op == Operation::Embeddings;
    if route.embeddings != wants_embeddings {
        let serves = if route.embeddings { "embeddings" } else { "chat completions" };
        return Err(GatewayError::new(
            ErrorKind::InvalidRequest,
            format!("The model `{model}` serves {serves}, not {}.", op.as_str()),
        )
        .with_param("model"));
    }
    if route.targets.is_empty() {
        return Err(GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("The model `{model}` has no enabled deployment: {}.", route.disabled.join(", ")),
        ));
    }
    Ok(Plan { route: route.clone(), attempts: route.targets.clone() })
}

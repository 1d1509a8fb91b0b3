//! Resolution: which route the request names, and whether this key may use
//! it for this operation. Which of the route's deployments are tried, and
//! in what order, is the router's ([`crate::routing`]).

use crate::access::Caller;
use crate::error::{ErrorKind, GatewayError};
use crate::runtime::{Route, Runtime};
use std::sync::Arc;
use switchyard_providers::Operation;

pub fn route(rt: &Runtime, key: &Caller, model: &str, op: Operation) -> Result<Arc<Route>, GatewayError> {
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
    Ok(route.clone())
}

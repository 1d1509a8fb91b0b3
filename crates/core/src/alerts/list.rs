//! `GET /api/v1/alerts`: fired alerts, newest first, paged like the audit
//! log. Needs `usage.read`; a tenant's key sees its tenant's alerts only,
//! the bootstrap token every tenant's.

use super::payload::api_view;
use super::record::{AlertQuery, AlertStatus};
use crate::access::admin::{parse_limit, unknown_param, DEFAULT_PAGE};
use crate::access::audit::Origin;
use crate::access::model::invalid;
use crate::access::{Permission, Principal};
use crate::error::{ErrorKind, GatewayError};
use crate::Gateway;
use serde_json::{json, Value};

const PARAMS: &str = "tenant_id, scope, status, since, until, before, limit";

impl Gateway {
    pub async fn alerts_list(
        &self,
        who: &Principal,
        query: &[(String, String)],
        origin: &Origin,
    ) -> Result<Value, GatewayError> {
        self.require(who, Permission::UsageRead, origin).await?;
        let mut q = AlertQuery { limit: DEFAULT_PAGE, ..AlertQuery::default() };
        for (k, v) in query {
            let int = || v.parse::<i64>().map_err(|_| invalid(k, format!("'{k}' must be an integer (unix ms).")));
            match k.as_str() {
                "tenant_id" => q.tenant_id = Some(v.clone()),
                "scope" => q.scope = Some(v.clone()),
                "status" => {
                    let status = AlertStatus::parse(v).ok_or_else(|| {
                        invalid("status", "'status' must be one of pending, delivered, failed, recorded.")
                    })?;
                    q.status = Some(status);
                }
                "since" => q.since = Some(int()?),
                "until" => q.until = Some(int()?),
                "before" => q.before = Some(v.clone()),
                "limit" => q.limit = parse_limit(v)?,
                other => return Err(unknown_param(other, PARAMS)),
            }
        }
        if let Some(mine) = who.tenant_scope() {
            if q.tenant_id.as_deref().is_some_and(|t| t != mine) {
                return Ok(json!({"object": "list", "data": [], "has_more": false, "next_before": null}));
            }
            q.tenant_id = Some(mine.to_string());
        }
        let limit = q.limit;
        q.limit += 1;
        let mut rows = self.store.alerts_page(&q).await.map_err(|e| {
            GatewayError::new(ErrorKind::Overloaded, format!("The alerts could not be read; try again: {e}"))
        })?;
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next = if has_more { rows.last().map(|r| r.id.clone()) } else { None };
        let zone = self.ledger.zone();
        let data: Vec<Value> = rows.iter().map(|a| api_view(a, zone)).collect();
        Ok(json!({"object": "list", "data": data, "has_more": has_more, "next_before": next}))
    }
}

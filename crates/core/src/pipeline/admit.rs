//! Admission: who is calling, and is the request well-formed? Only the
//! fields policy needs are read; the rest of the body is the client's and
//! the provider's business.

use crate::access::audit::{Actor, AuditRecord, Origin};
use crate::access::{Caller, Permission};
use crate::error::{ErrorKind, GatewayError};
use crate::Gateway;
use std::sync::Arc;
use switchyard_providers::Operation;
use switchyard_translate::Format;
use switchyard_types::RawObject;

impl Gateway {
    /// Who is calling `/v1`: a valid key, of a tenant in good standing,
    /// whose roles allow inference. One hash-map probe on the directory
    /// snapshot; refusals (401 / 403) are counted and audited.
    pub fn authenticate(
        &self,
        credential: Option<&str>,
        origin: impl FnOnce() -> Origin,
    ) -> Result<Arc<Caller>, GatewayError> {
        let Some(secret) = credential.filter(|c| !c.is_empty()) else {
            return Err(self.auth_denied(
                "v1",
                &origin(),
                None,
                "missing credential",
                "You didn't provide an API key. Send it as `Authorization: Bearer <key>` or `x-api-key: <key>`.",
            ));
        };
        let Some(caller) = self.directory.load().caller(secret) else {
            let message = format!("Incorrect API key provided: {}.", redact(secret));
            return Err(self.auth_denied("v1", &origin(), None, "unknown key", &message));
        };
        if let Some(why) = caller.refusal(crate::now_unix_ms()) {
            return Err(self.auth_denied("v1", &origin(), Some(&caller), why, why));
        }
        if !caller.permissions.allows(Permission::Inference) {
            self.metrics.access_denied.inc(&["v1", "forbidden"]);
            let record = AuditRecord::new(Actor::of_key(&caller.key), "access.denied", &origin())
                .tenant(Some(caller.tenant_id()))
                .reason("missing permission inference");
            self.audit.send_or_drop(record);
            return Err(GatewayError::new(
                ErrorKind::PermissionDenied,
                "This API key's roles do not allow model calls (it needs the admin or developer role).",
            ));
        }
        Ok(caller)
    }

    /// Records that a valid key named a route it may not use (it is told
    /// the route does not exist, as OpenAI does).
    pub fn route_refused(&self, caller: &Caller, route: &str, origin: Origin) {
        self.metrics.access_denied.inc(&["v1", "policy"]);
        let record = AuditRecord::new(Actor::of_key(&caller.key), "request.refused", &origin)
            .tenant(Some(caller.tenant_id()))
            .target("key", &caller.key.id)
            .reason(format!("route '{route}' not allowed"));
        self.audit.send_or_drop(record);
    }
}

impl Gateway {
    /// Records that policy kept a request from every deployment of its
    /// route (its data classification, the tenant's regions).
    pub fn policy_refused(&self, caller: &Caller, route: &str, why: &str, origin: Origin) {
        self.metrics.access_denied.inc(&["v1", "data_policy"]);
        let record = AuditRecord::new(Actor::of_key(&caller.key), "request.refused", &origin)
            .tenant(Some(caller.tenant_id()))
            .target("route", route)
            .reason(why.to_string());
        self.audit.send_or_drop(record);
    }
}

/// Shows enough of a presented secret to recognise it, never all of it.
fn redact(secret: &str) -> String {
    let head: String = secret.chars().take(6).collect();
    let tail: String = secret.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    if secret.chars().count() <= 12 {
        "****".into()
    } else {
        format!("{head}****{tail}")
    }
}

/// What the gateway needs from a request body.
pub struct Head<'a> {
    pub object: RawObject<'a>,
    pub model: String,
    pub stream: bool,
    /// The client asked for usage in the stream (`stream_options.include_usage`).
    pub include_usage: bool,
}

/// Reads the head of a body in the client's format (`dialect`): OpenAI's
/// chat completions / embeddings, or Anthropic's messages.
pub fn parse(op: Operation, dialect: Format, body: &[u8]) -> Result<Head<'_>, GatewayError> {
    let invalid = |m: String| GatewayError::new(ErrorKind::InvalidRequest, m);
    let object = RawObject::parse(body).map_err(|e| {
        invalid(format!("We could not parse the JSON body of your request: {e}. The body must be a JSON object."))
    })?;
    let missing = |name: &str| {
        let mut e = invalid(format!("Missing required parameter: '{name}'.")).with_param(name);
        e.code = Some("missing_required_parameter".into());
        e
    };
    let model = match object.get("model") {
        None => return Err(missing("model")),
        Some(raw) => match serde_json::from_str::<String>(raw.get()) {
            Ok(m) if !m.is_empty() => m,
            _ => return Err(invalid("'model' must be a non-empty string.".into()).with_param("model")),
        },
    };
    let (stream, include_usage) = match op {
        Operation::Chat if dialect == Format::Anthropic => {
            non_empty_array(&object, "messages", &invalid, &missing)?;
            match object.get("max_tokens").map(|r| r.get().parse::<u64>()) {
                None => return Err(missing("max_tokens")),
                Some(Ok(n)) if n >= 1 => {}
                Some(_) => {
                    return Err(
                        invalid("'max_tokens' must be an integer of at least 1.".into()).with_param("max_tokens")
                    )
                }
            }
            // Anthropic streams always carry usage.
            (stream_flag(&object, &invalid)?, true)
        }
        Operation::Chat => {
            non_empty_array(&object, "messages", &invalid, &missing)?;
            let stream = stream_flag(&object, &invalid)?;
            let include_usage = object
                .get("stream_options")
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok())
                .and_then(|v| v.get("include_usage").and_then(|b| b.as_bool()))
                .unwrap_or(false);
            (stream, include_usage)
        }
        Operation::Embeddings => {
            match object.get("input").map(|r| r.get()) {
                None | Some("null") => return Err(missing("input")),
                Some(_) => {}
            }
            if object.get("stream").is_some_and(|r| r.get() == "true") {
                return Err(invalid("Embeddings cannot be streamed.".into()).with_param("stream"));
            }
            (false, false)
        }
    };
    Ok(Head { object, model, stream, include_usage })
}

fn non_empty_array(
    object: &RawObject<'_>,
    name: &str,
    invalid: &dyn Fn(String) -> GatewayError,
    missing: &dyn Fn(&str) -> GatewayError,
) -> Result<(), GatewayError> {
    let Some(raw) = object.get(name) else {
        return Err(missing(name));
    };
    let t = raw.get().trim_start();
    if !t.starts_with('[') {
        return Err(invalid(format!("'{name}' must be an array of messages.")).with_param(name));
    }
    if t[1..].trim_start().starts_with(']') {
        return Err(invalid(format!("'{name}' must contain at least one message.")).with_param(name));
    }
    Ok(())
}

fn stream_flag(object: &RawObject<'_>, invalid: &dyn Fn(String) -> GatewayError) -> Result<bool, GatewayError> {
    match object.get("stream").map(|r| r.get()) {
        None | Some("null") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(invalid("'stream' must be a boolean.".into()).with_param("stream")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn err(op: Operation, body: &str) -> GatewayError {
        match parse(op, Format::OpenAi, body.as_bytes()) {
            Err(e) => e,
            Ok(_) => panic!("expected an error for {body}"),
        }
    }

    #[test]
    fn reads_the_head() {
        let h = parse(Operation::Chat, Format::OpenAi, br#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(h.model, "m");
        assert!(h.stream && h.include_usage);
    }

    #[test]
    fn names_the_bad_field() {
        assert_eq!(err(Operation::Chat, "{nope").kind, ErrorKind::InvalidRequest);
        assert_eq!(err(Operation::Chat, "[]").kind, ErrorKind::InvalidRequest);
        let e = err(Operation::Chat, r#"{"model":"m"}"#);
        assert_eq!(e.param.as_deref(), Some("messages"));
        assert_eq!(e.code.as_deref(), Some("missing_required_parameter"));
        assert_eq!(err(Operation::Chat, r#"{"messages":[{}]}"#).param.as_deref(), Some("model"));
        assert_eq!(err(Operation::Chat, r#"{"model":5,"messages":[{}]}"#).param.as_deref(), Some("model"));
        assert_eq!(err(Operation::Chat, r#"{"model":"m","messages":"hi"}"#).param.as_deref(), Some("messages"));
        assert_eq!(err(Operation::Chat, r#"{"model":"m","messages":[ ]}"#).param.as_deref(), Some("messages"));
        assert_eq!(
            err(Operation::Chat, r#"{"model":"m","messages":[{}],"stream":"yes"}"#).param.as_deref(),
            Some("stream")
        );
        assert_eq!(err(Operation::Embeddings, r#"{"model":"m"}"#).param.as_deref(), Some("input"));
    }

    #[test]
    fn anthropic_bodies_need_max_tokens() {
        fn parse_a(b: &str) -> Result<Head<'_>, GatewayError> {
            parse(Operation::Chat, Format::Anthropic, b.as_bytes())
        }
        let h = parse_a(r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"stream":true}"#)
            .unwrap();
        assert!(h.stream && h.include_usage);
        let e = parse_a(r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#).err().unwrap();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = parse_a(r#"{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]}"#).err().unwrap();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e = parse_a(r#"{"model":"m","max_tokens":3,"messages":[]}"#).err().unwrap();
        assert_eq!(e.param.as_deref(), Some("messages"));
    }

    #[test]
    fn redacts_secrets() {
        assert_eq!(redact("sk-sy-abcdefghijklmnop"), "sk-sy-****mnop");
        assert_eq!(redact("short"), "****");
    }
}

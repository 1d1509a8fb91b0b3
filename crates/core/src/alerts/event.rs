//! Operational events (a compute node going silent, …): what happened to
//! the gateway itself, sent to the same webhooks as budget alerts.
//!
//! Unlike a budget alert an event has no row: the audit log records it,
//! and its delivery is best effort with retries — one that a stop or a
//! crash cuts short is not sent again.
//!
//! | `event` | `subject` | `details` |
//! | --- | --- | --- |
//! | `node.silent` | `node:<name>` | `node`, `last_seen_at`, `silent_for_s`, `timeout_s`, `deployments` |

use crate::budget::period::{self, Zone};
use serde_json::{json, Value};

/// One operational event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened, `<thing>.<state>` (`node.silent`); a metric label,
    /// so never built from input.
    pub event: &'static str,
    /// What it happened to, `<kind>:<id>` (`node:gpu-1`).
    pub subject: String,
    /// One human line.
    pub message: String,
    /// The facts, as the event's table (module docs) lists them.
    pub details: Value,
    /// Unix ms.
    pub fired_at: i64,
}

/// The JSON body sent to a `format: json` webhook; `id` is the alert id
/// (the same for every webhook and attempt).
pub fn json_body(e: &Event, id: &str, zone: &Zone) -> Value {
    json!({
        "event": e.event,
        "alert_id": id,
        "subject": e.subject,
        "message": e.message,
        "details": e.details,
        "fired_at": period::rfc3339(e.fired_at, zone),
    })
}

/// The body sent to a `format: slack` webhook: one readable line.
pub fn slack_body(e: &Event) -> Value {
    let message = e.message.replace(['\r', '\n'], " ");
    json!({ "text": format!(":warning: {message} ({})", e.event) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silent() -> Event {
        Event {
            event: "node.silent",
            subject: "node:gpu-1".into(),
            message: "Compute node gpu-1 silent for 61.0 s\n(timeout 60 s)".into(),
            details: json!({"node": "gpu-1", "deployments": ["qwen"]}),
            // 2026-12-01T01:00Z
            fired_at: 1_796_086_800_000,
        }
    }

    #[test]
    fn the_json_body_carries_the_event_and_its_details() {
        assert_eq!(
            json_body(&silent(), "alr_1", &Zone::default()),
            json!({
                "event": "node.silent", "alert_id": "alr_1", "subject": "node:gpu-1",
                "message": "Compute node gpu-1 silent for 61.0 s\n(timeout 60 s)",
                "details": {"node": "gpu-1", "deployments": ["qwen"]},
                "fired_at": "2026-12-01T01:00:00Z",
            })
        );
        let plus8 = json_body(&silent(), "alr_1", &Zone::parse("+08:00").unwrap_or_default());
        assert_eq!(plus8["fired_at"], "2026-12-01T09:00:00+08:00", "in the budgets' zone");
    }

    #[test]
    fn the_slack_body_is_one_line() {
        assert_eq!(
            slack_body(&silent()),
            json!({"text": ":warning: Compute node gpu-1 silent for 61.0 s (timeout 60 s) (node.silent)"})
        );
    }
}

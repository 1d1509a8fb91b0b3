//! What an alert looks like: the webhook bodies (JSON, or Slack's
//! `{"text": …}`) and the admin API's view.
//!
//! | field | webhook (`json`) | API |
//! | --- | --- | --- |
//! | times (`window_start`, `window_end`, `fired_at`) | RFC 3339 in `budgets.time_zone` | unix ms |
//! | `spent`, `limit` | cost: USD as a decimal string (`"0.0016"`, exact); tokens: integers | the same |
//! | delivery (`status`, `attempts`, `last_error`) | — | present |

use super::record::{dimension_str, period_str, AlertRecord};
use crate::budget::period::{self, Zone};
use crate::budget::{Dimension, Period, Window};
use serde_json::{json, Value};
use switchyard_types::cost::usd_text;

/// The `event` of every budget alert.
pub const EVENT: &str = "budget.threshold";

/// `spent`, `limit` and their unit as JSON: exact decimal dollars, or
/// token counts.
fn amounts(a: &AlertRecord) -> (Value, Value, &'static str) {
    match a.dimension {
        Dimension::Cost => (json!(usd_text(a.spent)), json!(usd_text(a.limit)), "usd"),
        Dimension::Tokens => (json!(a.spent), json!(a.limit), "tokens"),
    }
}

fn window(a: &AlertRecord) -> Window {
    Window { period: a.period, start_ms: a.window_start, end_ms: a.window_end }
}

/// The JSON body sent to a `format: json` webhook.
pub fn json_body(a: &AlertRecord, zone: &Zone) -> Value {
    let (kind, id) = a.scope_parts();
    let (spent, limit, unit) = amounts(a);
    json!({
        "event": EVENT,
        "alert_id": a.id,
        "tenant_id": a.tenant_id,
        "scope": a.scope,
        "scope_kind": kind,
        "scope_id": id,
        "period": period_str(a.period),
        "window": period::label(&window(a), zone),
        "window_start": period::rfc3339(a.window_start, zone),
        "window_end": period::rfc3339(a.window_end, zone),
        "dimension": dimension_str(a.dimension),
        "threshold_percent": a.threshold,
        "spent": spent,
        "limit": limit,
        "unit": unit,
        "refused": a.refused,
        "fired_at": period::rfc3339(a.fired_at, zone),
    })
}

/// The body sent to a `format: slack` webhook: one readable line.
pub fn slack_body(a: &AlertRecord, zone: &Zone) -> Value {
    json!({ "text": slack_text(a, zone) })
}

fn slack_text(a: &AlertRecord, zone: &Zone) -> String {
    let (kind, id) = a.scope_parts();
    let tenant = match (&a.tenant_id, kind) {
        (Some(t), k) if k != "tenant" => format!(" (tenant {t})"),
        _ => String::new(),
    };
    let budget = format!(
        "{} {} budget",
        match a.period {
            Period::Day => "daily",
            Period::Month => "monthly",
        },
        dimension_str(a.dimension)
    );
    let of = match a.dimension {
        Dimension::Cost => format!("${} of ${}", usd_text(a.spent), usd_text(a.limit)),
        Dimension::Tokens => format!("{} of {} tokens", a.spent, a.limit),
    };
    let label = period::label(&window(a), zone);
    let resets = period::rfc3339(a.window_end, zone);
    if a.refused {
        format!(
            ":no_entry: Budget exhausted: {kind} {id}{tenant} had a request refused by its {budget} \
             ({of} spent or held in {label}); it resets {resets}."
        )
    } else {
        format!(
            ":warning: Budget alert: {kind} {id}{tenant} reached {}% of its {budget} ({of} spent in {label}); \
             it resets {resets}.",
            a.threshold
        )
    }
}

/// One alert as `GET /api/v1/alerts` lists it.
pub fn api_view(a: &AlertRecord, zone: &Zone) -> Value {
    let (kind, id) = a.scope_parts();
    let (spent, limit, unit) = amounts(a);
    json!({
        "object": "alert",
        "id": a.id,
        "tenant_id": a.tenant_id,
        "scope": a.scope,
        "scope_kind": kind,
        "scope_id": id,
        "period": period_str(a.period),
        "window": period::label(&window(a), zone),
        "window_start": a.window_start,
        "window_end": a.window_end,
        "dimension": dimension_str(a.dimension),
        "threshold": a.threshold,
        "spent": spent,
        "limit": limit,
        "unit": unit,
        "refused": a.refused,
        "fired_at": a.fired_at,
        "status": a.delivery.status.as_str(),
        "attempts": a.delivery.attempts,
        "last_error": a.delivery.last_error,
        "updated_at": a.delivery.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::record::{AlertStatus, Delivery};

    /// 2026-12-01T00:00Z and 2027-01-01T00:00Z.
    const DEC: i64 = 1_796_083_200_000;
    const JAN: i64 = 1_798_761_600_000;

    fn alert(dimension: Dimension, refused: bool) -> AlertRecord {
        AlertRecord {
            id: "alr_1".into(),
            tenant_id: Some("ten_1".into()),
            scope: "key:key_1".into(),
            period: Period::Month,
            window_start: DEC,
            window_end: JAN,
            dimension,
            threshold: 80,
            limit: 2_000_000,
            spent: 1_600_000,
            refused,
            fired_at: DEC + 3_600_000,
            delivery: Delivery { status: AlertStatus::Pending, attempts: 0, last_error: None, updated_at: DEC },
        }
    }

    #[test]
    fn the_json_body_names_everything_a_receiver_needs() {
        let body = json_body(&alert(Dimension::Cost, false), &Zone::default());
        assert_eq!(
            body,
            json!({
                "event": "budget.threshold", "alert_id": "alr_1", "tenant_id": "ten_1",
                "scope": "key:key_1", "scope_kind": "key", "scope_id": "key_1",
                "period": "month", "window": "2026-12",
                "window_start": "2026-12-01T00:00:00Z", "window_end": "2027-01-01T00:00:00Z",
                "dimension": "cost", "threshold_percent": 80, "spent": "0.0016", "limit": "0.002", "unit": "usd",
                "refused": false, "fired_at": "2026-12-01T01:00:00Z",
            })
        );
        let tokens = json_body(&alert(Dimension::Tokens, false), &Zone::default());
        assert_eq!(
            (&tokens["spent"], &tokens["limit"], &tokens["unit"]),
            (&json!(1_600_000), &json!(2_000_000), &json!("tokens"))
        );
        // Times are in the budgets' zone.
        let plus8 = json_body(&alert(Dimension::Cost, false), &Zone::parse("+08:00").unwrap_or_default());
        assert_eq!(plus8["fired_at"], "2026-12-01T09:00:00+08:00");
    }

    #[test]
    fn the_slack_body_is_one_readable_line() {
        let text = slack_body(&alert(Dimension::Cost, false), &Zone::default());
        assert_eq!(
            text["text"],
            ":warning: Budget alert: key key_1 (tenant ten_1) reached 80% of its monthly cost budget \
             ($0.0016 of $0.002 spent in 2026-12); it resets 2027-01-01T00:00:00Z."
        );
        assert_eq!(text.as_object().map(|o| o.len()), Some(1), "only `text`");
        let refused = slack_body(&alert(Dimension::Tokens, true), &Zone::default());
        let refused = refused["text"].as_str().unwrap_or_default();
        assert!(refused.starts_with(":no_entry: Budget exhausted: key key_1"), "{refused}");
        assert!(refused.contains("1600000 of 2000000 tokens"), "{refused}");
        let mut tenant = alert(Dimension::Cost, false);
        tenant.scope = "tenant:ten_1".into();
        let text = slack_body(&tenant, &Zone::default());
        assert!(text["text"].as_str().unwrap_or_default().contains("tenant ten_1 reached"), "{text}");
    }

    #[test]
    fn the_api_view_carries_the_delivery() {
        let mut a = alert(Dimension::Cost, false);
        a.delivery = Delivery { status: AlertStatus::Failed, attempts: 3, last_error: Some("x".into()), updated_at: 9 };
        let v = api_view(&a, &Zone::default());
        assert_eq!((&v["status"], &v["attempts"], &v["last_error"]), (&json!("failed"), &json!(3), &json!("x")));
        assert_eq!(
            (&v["fired_at"], &v["threshold"], &v["spent"]),
            (&json!(DEC + 3_600_000), &json!(80), &json!("0.0016"))
        );
    }
}

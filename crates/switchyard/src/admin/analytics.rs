//! `switchyard analytics cost` → `GET /api/v1/analytics/cost`
//! (docs/analytics.md): rows per group as a table, then the totals, the
//! trend, the top spenders and the suggestions. `--output json` prints the
//! API's answer; for CSV call the API with `format=csv`.

use super::client::Call;
use super::table::{cell, col, render_list, Column, Format};
use super::{Plan, Planned, View};
use clap::Subcommand;
use http::Method;
use serde_json::Value;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Spend, tokens, requests and errors over a date range, grouped.
    Cost {
        /// Only this tenant (the platform admin's choice; a tenant's key sees its own).
        #[arg(long)]
        tenant: Option<String>,
        /// First day (YYYY-MM-DD, or an RFC 3339 instant); default 29 days before the end.
        #[arg(long, value_name = "DATE")]
        start: Option<String>,
        /// Last day, included (YYYY-MM-DD, or an RFC 3339 instant, excluded); default today.
        #[arg(long, value_name = "DATE")]
        end: Option<String>,
        /// model, deployment, route, operation, tenant, team, key, user, tag, date (repeat or comma-separate).
        #[arg(long, value_name = "GROUP", value_delimiter = ',')]
        group_by: Vec<String>,
        /// hour, day or month buckets (groups by date).
        #[arg(long)]
        granularity: Option<String>,
        /// Offset dates are read in (`+05:30`, `UTC`); default the gateway's `budgets.time_zone`.
        #[arg(long, value_name = "OFFSET")]
        time_zone: Option<String>,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        route: Option<String>,
        #[arg(long)]
        deployment: Option<String>,
        #[arg(long)]
        model: Option<String>,
        /// With `--group-by tag`: only this tag key.
        #[arg(long)]
        tag_key: Option<String>,
        /// Rows at most (1–10,000; the gateway's default is 1,000).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Top spenders listed per kind (1–100; default 10).
        #[arg(long, value_name = "N")]
        top: Option<u32>,
    },
}

impl Planned for Command {
    fn plan(self, _now_ms: u64) -> Result<Plan, String> {
        let Command::Cost {
            tenant,
            start,
            end,
            group_by,
            granularity,
            time_zone,
            team,
            key,
            user,
            route,
            deployment,
            model,
            tag_key,
            limit,
            top,
        } = self;
        let mut call = Call::new(Method::GET, "/api/v1/analytics/cost".into());
        call.param("tenant_id", tenant);
        call.param("start_date", start);
        call.param("end_date", end);
        let groups: Vec<String> = group_by.iter().map(|g| g.trim().to_string()).filter(|g| !g.is_empty()).collect();
        call.param("group_by", (!groups.is_empty()).then(|| groups.join(",")));
        call.param("granularity", granularity);
        call.param("time_zone", time_zone);
        call.param("team_id", team);
        call.param("key_id", key);
        call.param("user_id", user);
        call.param("route", route);
        call.param("deployment", deployment);
        call.param("model", model);
        call.param("tag_key", tag_key);
        call.param("limit", limit);
        call.param("top", top);
        Ok(Plan { call, view: View::Report })
    }
}

/// The label columns a row may have, in the answer's field names.
static LABELS: [Column; 11] = [
    col("DATE", "date"),
    col("MODEL", "model"),
    col("DEPLOYMENT", "deployment"),
    col("ROUTE", "route"),
    col("OPERATION", "operation"),
    col("TENANT", "tenant_id"),
    col("TEAM", "team_id"),
    col("KEY", "key_id"),
    col("USER", "user_id"),
    col("TAG", "tag_key"),
    col("VALUE", "tag_value"),
];

static FIGURES: [Column; 6] = [
    col("REQUESTS", "requests"),
    col("ERRORS", "errors"),
    col("ERROR_RATE", "error_rate"),
    col("TOKENS", "total_tokens"),
    col("COST_USD", "cost_usd"),
    col("AVG_MS", "avg_latency_ms"),
];

/// The answer for people.
pub fn render(answer: &Value) -> String {
    let groups: Vec<&str> = answer["group_by"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let wanted = |path: &str| match path {
        "tag_key" | "tag_value" => groups.contains(&"tag"),
        "date" => groups.contains(&"date"),
        field => groups.iter().any(|g| field == *g || field.strip_suffix("_id") == Some(g)),
    };
    let columns: Vec<Column> = LABELS
        .iter()
        .filter(|c| wanted(c.path))
        .chain(FIGURES.iter())
        .map(|c| Column { header: c.header, path: c.path, format: Format::Plain })
        .collect();
    let rows = answer["rows"].as_array().map(Vec::as_slice).unwrap_or_default();
    let text = |v: &Value| cell(Some(v), Format::Plain);
    let mut out = format!(
        "{} to {} ({}){}\n\n",
        text(&answer["start"]),
        text(&answer["end"]),
        answer["tenant_id"].as_str().map_or("all tenants".to_string(), |t| format!("tenant {t}")),
        if answer["truncated"] == Value::Bool(true) { ", rows cut at --limit" } else { "" },
    );
    out.push_str(&render_list(&columns, rows));
    let t = &answer["totals"];
    out.push_str(&format!(
        "\ntotal: ${} over {} requests ({} errors, rate {}), {} tokens\n",
        text(&t["cost_usd"]),
        text(&t["requests"]),
        text(&t["errors"]),
        text(&t["error_rate"]),
        text(&t["total_tokens"]),
    ));
    let trend = &answer["trend"];
    out.push_str(&format!(
        "previous window: ${} ({}% cost, {}% requests)\n",
        text(&trend["previous"]["cost_usd"]),
        text(&trend["cost_change_pct"]),
        text(&trend["requests_change_pct"]),
    ));
    if let Some(top) = answer["top_spenders"].as_object() {
        for (kind, list) in top {
            let names: Vec<String> = list
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let who = s["name"].as_str().or(s["id"].as_str()).unwrap_or("?");
                    format!("{who} ${}", text(&s["cost_usd"]))
                })
                .collect();
            if !names.is_empty() {
                out.push_str(&format!("top {kind}: {}\n", names.join(", ")));
            }
        }
    }
    for s in answer["suggestions"].as_array().into_iter().flatten() {
        out.push_str(&format!("suggestion: {}\n", text(&s["message"])));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn target(args: &str) -> String {
        use clap::Parser;
        let argv = std::iter::once("analytics").chain(args.split_whitespace());
        Cli::try_parse_from(argv).unwrap().command.plan(0).unwrap().call.target()
    }

    #[test]
    fn flags_become_query_parameters() {
        assert_eq!(target("cost"), "/api/v1/analytics/cost");
        assert_eq!(
            target("cost --group-by model,date --group-by key --start 2026-01-01 --granularity month --model m --tenant acme"),
            "/api/v1/analytics/cost?tenant_id=acme&start_date=2026-01-01&group_by=model%2Cdate%2Ckey\
             &granularity=month&model=m"
        );
        assert_eq!(target("cost --time-zone +05:30 --top 3"), "/api/v1/analytics/cost?time_zone=%2B05%3A30&top=3");
    }

    #[test]
    fn the_table_shows_the_grouped_labels_then_the_figures() {
        let answer = json!({
            "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "tenant_id": "acme",
            "group_by": ["model", "key"], "truncated": false,
            "rows": [{"model": "m", "key_id": "key_1", "requests": 2, "errors": 0, "error_rate": 0.0,
                      "total_tokens": 30, "cost_usd": "0.5", "avg_latency_ms": 12.5}],
            "totals": {"cost_usd": "0.5", "requests": 2, "errors": 0, "error_rate": 0.0, "total_tokens": 30},
            "trend": {"previous": {"cost_usd": "0"}, "cost_change_pct": null, "requests_change_pct": null},
            "top_spenders": {"keys": [{"id": "key_1", "name": "ci", "cost_usd": "0.5"}], "users": []},
            "suggestions": [{"message": "use the small one"}],
        });
        let text = render(&answer);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "2026-01-01T00:00:00Z to 2026-01-02T00:00:00Z (tenant acme)");
        assert_eq!(lines[2], "MODEL  KEY    REQUESTS  ERRORS  ERROR_RATE  TOKENS  COST_USD  AVG_MS");
        assert_eq!(lines[3], "m      key_1  2         0       0.0         30      0.5       12.5");
        assert!(text.contains("total: $0.5 over 2 requests"), "{text}");
        assert!(text.contains("top keys: ci $0.5\n") && text.contains("suggestion: use the small one"), "{text}");
    }
}

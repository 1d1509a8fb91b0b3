//! Budgets: a key's, team's or tenant's spend per day or month, reserved
//! before the call at its estimated maximum and committed after it.

use serde_json::{json, Value};
use switchyard_testkit::{base_config, Harness, ADMIN_TOKEN};

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

/// $1 per million input and output tokens, $0.0001 a request: a short chat
/// costs ~$0.0001 and reserves ~$0.0002 (max_tokens 64).
fn config() -> String {
    base_config(
        "",
        r#"  - { name: priced, provider: sim, model: model-p, price: { input_per_mtok: 1, output_per_mtok: 1, per_request: 0.0001 } }
  - { name: cheap, provider: sim, model: model-c, price: { input_per_mtok: 0, output_per_mtok: 0 } }"#,
        r#"  - { name: priced, targets: [priced] }
  - { name: cheap, targets: [cheap] }"#,
    )
}

/// One answer as a client sees it: status, the deployment that answered,
/// the budget action header, the cost header.
struct Seen {
    status: u16,
    route: Option<String>,
    action: Option<String>,
    cost: Option<String>,
    body: Value,
}

async fn chat_seen(h: &Harness, key: &str) -> Seen {
    let r = h
        .post("/v1/chat/completions", key)
        .json(&json!({"model": "priced", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    let (route, action, cost) =
        (header("x-switchyard-route"), header("x-switchyard-budget-action"), header("x-switchyard-cost-usd"));
    let retry_after = header("retry-after");
    let status = r.status().as_u16();
    let mut body = r.json().await.unwrap_or(Value::Null);
    if let Some(v) = retry_after {
        body["retry_after"] = json!(v);
    }
    Seen { status, route, action, cost, body }
}

async fn key_with_budget(h: &Harness, name: &str, budget: Value) -> String {
    let (status, key) =
        admin(h, reqwest::Method::POST, "/api/v1/keys", ADMIN_TOKEN, json!({"name": name, "budgets": [budget]})).await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_string()
}

async fn admin(h: &Harness, method: reqwest::Method, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = h.http.request(method, format!("{}{path}", h.url)).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn chat(h: &Harness, key: &str) -> (u16, Value, Option<String>) {
    let r = h
        .post("/v1/chat/completions", key)
        .json(&json!({"model": "priced", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cost = r.headers().get("x-switchyard-cost-usd").map(|v| v.to_str().unwrap().to_string());
    (status, r.json().await.unwrap_or(Value::Null), cost)
}

fn nanos(usd: &str) -> i64 {
    let (whole, frac) = usd.split_once('.').unwrap_or((usd, ""));
    whole.parse::<i64>().unwrap() * 1_000_000_000 + format!("{frac:0<9}").parse::<i64>().unwrap()
}

#[tokio::test]
async fn a_spent_budget_refuses_with_insufficient_quota_and_survives_a_restart() {
    let mut h = Harness::start(&bin(), &config());
    let (status, key) = admin(
        &h,
        reqwest::Method::POST,
        "/api/v1/keys",
        ADMIN_TOKEN,
        json!({"name": "b", "budgets": [{"period": "day", "max_usd": 0.001}]}),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_string();

    let mut spent = 0i64;
    let mut refused = None;
    for _ in 0..40 {
        let (status, body, cost) = chat(&h, &secret).await;
        match status {
            200 => spent += nanos(&cost.unwrap()),
            429 => {
                refused = Some(body);
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let body = refused.expect("the budget ran out");
    assert_eq!(body["error"]["type"], "insufficient_quota", "{body}");
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert!(body["error"]["message"].as_str().unwrap().contains("key:"), "{body}");
    assert!(spent <= 1_000_000 && spent > 500_000, "spent {spent} n$ of 1,000,000");

    // A restart rebuilds the day's spend from the stored records.
    h.wait_usage(1).await;
    h.restart(&bin());
    assert_eq!(chat(&h, &secret).await.0, 429, "still spent after a restart");

    // An unlimited key is the platform admin's explicit, audited choice.
    let id = key["id"].as_str().unwrap();
    let (status, _) =
        admin(&h, reqwest::Method::PATCH, &format!("/api/v1/keys/{id}"), ADMIN_TOKEN, json!({"unlimited": true})).await;
    assert_eq!(status, 200);
    assert_eq!(chat(&h, &secret).await.0, 200, "unlimited: no budget applies");
    let (_, audit) = admin(
        &h,
        reqwest::Method::GET,
        &format!("/api/v1/audit?target_id={id}&action=key.update"),
        ADMIN_TOKEN,
        Value::Null,
    )
    .await;
    assert_eq!(audit["data"][0]["after"]["unlimited"], true, "{audit}");
}

#[tokio::test]
async fn concurrent_requests_overspend_by_at_most_the_documented_bound() {
    let h = Harness::start(&bin(), &config());
    let (_, team) = admin(
        &h,
        reqwest::Method::POST,
        "/api/v1/teams",
        ADMIN_TOKEN,
        json!({"name": "t", "budgets": [{"period": "month", "max_usd": 0.002}]}),
    )
    .await;
    let mut secrets = Vec::new();
    for i in 0..2 {
        let (status, key) = admin(
            &h,
            reqwest::Method::POST,
            "/api/v1/keys",
            ADMIN_TOKEN,
            json!({"name": format!("k{i}"), "team_id": team["id"]}),
        )
        .await;
        assert_eq!(status, 201, "{key}");
        secrets.push(key["key"].as_str().unwrap().to_string());
    }
    // 50 at once, across the team's two keys.
    let calls = (0..50).map(|i| chat(&h, &secrets[i % 2]));
    let results = futures_util::future::join_all(calls).await;
    let spent: i64 = results.iter().filter(|r| r.0 == 200).map(|r| nanos(r.2.as_deref().unwrap())).sum();
    let refused = results.iter().filter(|r| r.0 == 429).count();
    assert_eq!(results.iter().filter(|r| r.0 == 200).count() + refused, 50);
    // Every request asked for at most 64 output tokens and its prompt is
    // estimated from its bytes (more than its tokens): no request costs
    // more than it reserved, so the bound is zero overspend.
    assert!(spent <= 2_000_000, "spent {spent} n$ of a 2,000,000 n$ budget");
    assert!(refused > 0, "the budget must have run out");
    eprintln!("50 concurrent requests: {} admitted, {refused} refused, {spent} n$ spent of 2,000,000", 50 - refused);
}

#[tokio::test]
async fn a_spent_budget_that_downgrades_serves_50_concurrent_requests_from_the_cheaper_route() {
    let h = Harness::start(&bin(), &config());
    let budget = json!({"period": "day", "max_usd": 0.001, "on_exceed": "downgrade", "downgrade_to": "cheap"});
    let secret = key_with_budget(&h, "down", budget).await;
    let seen = futures_util::future::join_all((0..50).map(|_| chat_seen(&h, &secret))).await;
    assert!(
        seen.iter().all(|s| s.status == 200),
        "every request is served: {:?}",
        seen.iter().map(|s| &s.body).collect::<Vec<_>>()
    );
    let (priced, downgraded): (Vec<&Seen>, Vec<&Seen>) = seen.iter().partition(|s| s.action.is_none());
    assert!(!priced.is_empty() && !downgraded.is_empty(), "{} priced, {} downgraded", priced.len(), downgraded.len());
    for s in &priced {
        assert_eq!(s.route.as_deref(), Some("priced"));
    }
    for s in &downgraded {
        assert_eq!(s.route.as_deref(), Some("cheap"), "the cheaper route answered");
        let action = s.action.as_deref().unwrap();
        assert!(
            action.starts_with("downgrade; scope=key:") && action.ends_with("; period=day; from=priced; to=cheap"),
            "{action}"
        );
        assert_eq!(s.cost.as_deref(), Some("0"));
    }
    // The priced route's spend stayed within the budget (no overrun: every
    // request's estimate is a true maximum).
    let spent: i64 = priced.iter().map(|s| nanos(s.cost.as_deref().unwrap())).sum();
    assert!(spent <= 1_000_000, "spent {spent} n$ of 1,000,000");
    let records = h.wait_usage(50).await;
    assert_eq!(records.iter().filter(|r| r.route.as_deref() == Some("cheap")).count(), downgraded.len());
    let metrics = h.metrics().await;
    let line = format!("switchyard_budget_actions_total{{action=\"downgrade\"}} {}", downgraded.len());
    assert!(metrics.contains(&line), "{line} in metrics");
    eprintln!("downgrade: {} on the priced route ({spent} n$), {} downgraded", priced.len(), downgraded.len());
}

#[tokio::test]
async fn a_spent_budget_that_throttles_lets_its_rate_through_and_refuses_the_rest() {
    let h = Harness::start(&bin(), &config());
    let budget = json!({"period": "month", "max_usd": 0.001, "on_exceed": "throttle", "throttle_rpm": 5});
    let secret = key_with_budget(&h, "slow", budget).await;
    let seen = futures_util::future::join_all((0..50).map(|_| chat_seen(&h, &secret))).await;
    let within: Vec<&Seen> = seen.iter().filter(|s| s.status == 200 && s.action.is_none()).collect();
    let throttled: Vec<&Seen> = seen.iter().filter(|s| s.status == 200 && s.action.is_some()).collect();
    let refused: Vec<&Seen> = seen.iter().filter(|s| s.status == 429).collect();
    assert_eq!(within.len() + throttled.len() + refused.len(), 50);
    assert!(!within.is_empty());
    assert_eq!(throttled.len(), 5, "the throttle's rate gets through");
    for s in &throttled {
        let action = s.action.as_deref().unwrap();
        assert!(action.starts_with("throttle; scope=key:") && action.ends_with("; period=month; rpm=5"), "{action}");
    }
    for s in &refused {
        assert_eq!(s.body["error"]["type"], "rate_limit_error", "{}", s.body);
        assert_eq!(s.body["error"]["code"], "rate_limit_exceeded", "{}", s.body);
        assert!(s.body["error"]["message"].as_str().unwrap().contains("throttled to 5 per minute"), "{}", s.body);
        assert!(s.body["retry_after"].as_str().is_some(), "{}", s.body);
    }
    eprintln!(
        "throttle: {} within the budget, {} throttled through, {} refused",
        within.len(),
        throttled.len(),
        refused.len()
    );
}

#[tokio::test]
async fn a_downgrade_to_a_route_the_key_may_not_use_blocks() {
    let h = Harness::start(&bin(), &config());
    let (status, key) = admin(
        &h,
        reqwest::Method::POST,
        "/api/v1/keys",
        ADMIN_TOKEN,
        json!({"name": "narrow", "allowed_routes": ["priced"],
               "budgets": [{"period": "day", "max_usd": 0.0001, "on_exceed": "downgrade", "downgrade_to": "cheap"}]}),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().unwrap();
    let seen = chat_seen(&h, secret).await;
    assert_eq!(seen.status, 429, "{}", seen.body);
    assert_eq!(seen.body["error"]["code"], "insufficient_quota");
    let message = seen.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot downgrade: its downgrade route `cheap` is not available"), "{message}");
}

#[tokio::test]
async fn budgets_are_checked_like_every_admin_field() {
    let h = Harness::start(&bin(), &config());
    let cases = [
        (json!({"name": "a", "budgets": [{"period": "day"}]}), "budgets[0]"),
        (json!({"name": "a", "budgets": [{"period": "week", "max_usd": 1}]}), "budgets[0].period"),
        (json!({"name": "a", "budgets": [{"period": "day", "max_usd": 0.0000000001}]}), "budgets[0].max_usd"),
        (json!({"name": "a", "budgets": [{"period": "day", "max_usd": -1}]}), "budgets[0].max_usd"),
        (
            json!({"name": "a", "budgets": [{"period": "day", "max_usd": 1}, {"period": "day", "max_tokens": 5}]}),
            "budgets[1].period",
        ),
        (
            json!({"name": "a", "budgets": [{"period": "day", "max_usd": 1, "on_exceed": "downgrade"}]}),
            "budgets[0].downgrade_to",
        ),
        (
            json!({"name": "a", "budgets": [{"period": "day", "max_usd": 1, "on_exceed": "downgrade", "downgrade_to": ""}]}),
            "budgets[0].downgrade_to",
        ),
        (
            json!({"name": "a", "budgets": [{"period": "day", "max_usd": 1, "on_exceed": "throttle"}]}),
            "budgets[0].throttle_rpm",
        ),
        (
            json!({"name": "a", "budgets": [{"period": "day", "max_usd": 1, "on_exceed": "throttle", "throttle_rpm": 0}]}),
            "budgets[0].throttle_rpm",
        ),
        (
            json!({"name": "a", "budgets": [{"period": "day", "max_usd": 1, "throttle_rpm": 5}]}),
            "budgets[0].throttle_rpm",
        ),
        (
            json!({"name": "a", "budgets": [{"period": "day", "max_usd": 1, "downgrade_to": "x"}]}),
            "budgets[0].downgrade_to",
        ),
        (
            json!({"name": "a", "budgets": [{"period": "day", "max_usd": 1, "on_exceed": "pause"}]}),
            "budgets[0].on_exceed",
        ),
    ];
    for (body, param) in cases {
        let (status, answer) = admin(&h, reqwest::Method::POST, "/api/v1/keys", ADMIN_TOKEN, body.clone()).await;
        assert_eq!((status, answer["error"]["param"].as_str()), (400, Some(param)), "{body} → {answer}");
    }
    // A tenant admin may not make a key unlimited.
    let (_, admin_key) =
        admin(&h, reqwest::Method::POST, "/api/v1/keys", ADMIN_TOKEN, json!({"name": "adm", "roles": ["admin"]})).await;
    let tenant_admin = admin_key["key"].as_str().unwrap().to_string();
    let (status, answer) =
        admin(&h, reqwest::Method::POST, "/api/v1/keys", &tenant_admin, json!({"name": "x", "unlimited": true})).await;
    assert_eq!((status, answer["error"]["param"].as_str()), (403, Some("unlimited")), "{answer}");
}

//! What requests cost: `x-switchyard-cost-usd` on answers and `cost_nanos`
//! on usage records, at the deployment's configured prices or the shipped
//! catalog's, computed exactly.

use serde_json::{json, Value};
use std::time::Duration;
use switchyard_testkit::{base_config, Harness};

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

/// Cost in nano-dollars of `usage` at prices given in pico-dollars per
/// token (and per request), computed here independently of the gateway.
fn expected_nanos(usage: &Value, input_p: u128, cached_p: u128, output_p: u128, per_request_p: u128) -> i64 {
    let prompt = usage["prompt_tokens"].as_u64().unwrap() as u128;
    let cached = usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0) as u128;
    let completion = usage["completion_tokens"].as_u64().unwrap() as u128;
    let picos = (prompt - cached) * input_p + cached * cached_p + completion * output_p + per_request_p;
    ((picos + 500) / 1000) as i64
}

async fn record_of(h: &Harness, request_id: &str) -> switchyard_core::usage::UsageRecord {
    for _ in 0..100 {
        if let Some(r) = h.usage_records().await.into_iter().find(|r| r.request_id == request_id) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no usage record for {request_id}");
}

async fn chat(h: &Harness, key: &str, model: &str) -> (String, Value, String) {
    let r = h
        .post("/v1/chat/completions", key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "what does it cost?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cost = r.headers().get("x-switchyard-cost-usd").expect("cost header").to_str().unwrap().to_string();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    (cost, body, id)
}

#[tokio::test]
async fn answers_and_records_carry_the_exact_cost() {
    let config = base_config(
        r#"  - { name: openai-sim, kind: openai, base_url: "sim://", api_key: "sk-test" }"#,
        r#"  - { name: priced, provider: sim, model: model-p, price: { input_per_mtok: 0.15, cached_input_per_mtok: 0.075, output_per_mtok: 0.6, per_request: 0.001 } }
  - { name: catalogued, provider: openai-sim, model: gpt-4o-mini-2024-07-18 }
  - { name: free, provider: sim, model: model-f }"#,
        r#"  - { name: priced, targets: [priced] }
  - { name: catalogued, targets: [catalogued] }
  - { name: free, targets: [free] }"#,
    );
    let h = Harness::start(&bin(), &config);
    let key = h.key().await;

    // Configured prices: $0.15 / $0.075 cached / $0.60 per Mtok and $0.001 a request.
    let (header, body, id) = chat(&h, &key, "priced").await;
    let want = expected_nanos(&body["usage"], 150_000, 75_000, 600_000, 1_000_000_000);
    assert_eq!(header, switchyard_types::cost::usd_text(want), "{body}");
    let record = record_of(&h, &id).await;
    assert_eq!(record.cost_nanos, Some(want));
    assert!(want > 1_000_000, "the request fee alone is 1,000,000 n$");

    // The catalog's prices for the longest matching model name.
    let entry = switchyard_config::prices::Catalog::builtin()
        .find(switchyard_types::ProviderKind::Openai, "gpt-4o-mini-2024-07-18")
        .expect("the catalog prices gpt-4o-mini");
    let sheet = entry.price().sheet().unwrap();
    let (header, body, id) = chat(&h, &key, "catalogued").await;
    let want = expected_nanos(
        &body["usage"],
        sheet.input.into(),
        sheet.cached_input.into(),
        sheet.output.into(),
        sheet.per_request.into(),
    );
    assert_eq!(header, switchyard_types::cost::usd_text(want));
    assert_eq!(record_of(&h, &id).await.cost_nanos, Some(want));

    // An unknown local model is free, and says so.
    let (header, _, id) = chat(&h, &key, "free").await;
    assert_eq!(header, "0");
    assert_eq!(record_of(&h, &id).await.cost_nanos, Some(0));

    // A stream: no header (it leaves before the cost is known), the record has it.
    let r = h
        .post("/v1/chat/completions", &key)
        .json(&json!({"model": "priced", "stream": true, "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "and streamed?"}]}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("x-switchyard-cost-usd").is_none());
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    let usage = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| v.get("usage").filter(|u| !u.is_null()).cloned())
        .expect("a usage chunk");
    let want = expected_nanos(&usage, 150_000, 75_000, 600_000, 1_000_000_000);
    assert_eq!(record_of(&h, &id).await.cost_nanos, Some(want));

    // A request refused before any upstream call has no cost at all.
    let r = h.post("/v1/chat/completions", &key).json(&json!({"model": "priced"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("x-switchyard-cost-usd").is_none());
}

#[tokio::test]
async fn records_name_the_team_user_end_user_and_tags() {
    let h = Harness::start(&bin(), &base_config("", "", ""));
    let admin = |path: &str, body: Value| {
        let (h, path) = (&h, path.to_string());
        async move {
            let r = h
                .http
                .post(format!("{}{path}", h.url))
                .bearer_auth(switchyard_testkit::ADMIN_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()
        }
    };
    let team = admin("/api/v1/teams", json!({"name": "search"})).await;
    let user = admin("/api/v1/users", json!({"name": "ada", "team_id": team["id"]})).await;
    let key = admin("/api/v1/keys", json!({"name": "k", "team_id": team["id"], "user_id": user["id"]})).await;
    let key = key["key"].as_str().unwrap().to_string();

    let r = h
        .post("/v1/chat/completions", &key)
        .header("x-switchyard-tags", "endpoint=summarize, env=prod")
        .header("x-switchyard-user", "customer-42")
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let record = record_of(&h, &id).await;
    assert_eq!(record.team_id.as_ref(), team["id"].as_str().map(String::from).as_ref());
    assert_eq!(record.user_id.as_ref(), user["id"].as_str().map(String::from).as_ref());
    assert_eq!(record.end_user.as_deref(), Some("customer-42"));
    assert_eq!(record.tags.as_deref(), Some(r#"{"endpoint":"summarize","env":"prod"}"#));

    // Bad tags are the caller's error, named, and recorded as such.
    let r = h
        .post("/v1/chat/completions", &key)
        .header("x-switchyard-tags", "Team=search")
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "x-switchyard-tags");
    let record = record_of(&h, &id).await;
    assert_eq!((record.status, record.tags), (400, None));
    assert!(h.sim_requests().await.len() == 1, "the refused request never went upstream");
}

/// A provider's volume discount: the tier reached by its tokens this month
/// *before* a request prices the whole request; a restart rebuilds the
/// month's volume from the stored records.
#[tokio::test]
async fn volume_discounts_apply_once_the_provider_reaches_a_tier() {
    let config = base_config(
        r#"  - { name: bulk, kind: openai_compatible, base_url: "sim://", volume_discounts: [{ from_tokens: 30, percent: 50 }, { from_tokens: 1000000, percent: 90 }] }"#,
        r#"  - { name: bulk, provider: bulk, model: model-v, price: { input_per_mtok: 1, output_per_mtok: 2, per_request: 0.001 } }"#,
        r#"  - { name: bulk, targets: [bulk] }"#,
    );
    let mut h = Harness::start(&bin(), &config);
    let key = h.key().await;
    let full = |usage: &Value| expected_nanos(usage, 1_000_000, 1_000_000, 2_000_000, 1_000_000_000);
    // Half of the exact pico-dollars (rounded half up), then to nanos.
    let half = |usage: &Value| {
        let prompt = usage["prompt_tokens"].as_u64().unwrap() as u128;
        let completion = usage["completion_tokens"].as_u64().unwrap() as u128;
        let picos = prompt * 1_000_000 + completion * 2_000_000 + 1_000_000_000;
        let discounted = (picos * 5_000 + 5_000) / 10_000;
        ((discounted + 500) / 1000) as i64
    };
    let mut volume = 0u64;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let (cost, body, id) = chat(&h, &key, "bulk").await;
        let usage = &body["usage"];
        let expected = if volume >= 30 { half(usage) } else { full(usage) };
        let record = record_of(&h, &id).await;
        assert_eq!(record.cost_nanos, Some(expected), "volume before: {volume}; {usage}");
        assert_eq!(cost, switchyard_types::cost::usd_text(expected), "the header says the same");
        seen.push(volume >= 30);
        volume += usage["total_tokens"].as_u64().unwrap();
    }
    assert_eq!(seen.first(), Some(&false), "the first request pays full price");
    assert_eq!(seen.last(), Some(&true), "later ones reach the 50% tier: {seen:?}");

    // After a restart the month's volume comes back from the records.
    h.restart(&bin());
    let (_, body, id) = chat(&h, &key, "bulk").await;
    assert_eq!(record_of(&h, &id).await.cost_nanos, Some(half(&body["usage"])), "still in the 50% tier");
}

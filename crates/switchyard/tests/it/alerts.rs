//! Budget threshold alerts, received by a webhook receiver on loopback:
//! each threshold once per period (across a restart too), the refusal,
//! retries of a failing receiver, the Slack format, and the list API.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::future::IntoFuture;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchyard_testkit::{base_config, eventually, Harness, ADMIN_TOKEN};

const WITHIN: Duration = Duration::from_secs(15);
const SECRET: &str = "s3cret";

/// One POST the receiver answered.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook receiver: `/flaky` answers 503 to its first `failures`
/// deliveries, every other path 200.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    failures: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(failures: usize) -> (Receiver, String) {
        let r = Receiver { failures: Arc::new(AtomicUsize::new(failures)), ..Receiver::default() };
        let app = axum::Router::new().route("/{path}", axum::routing::post(receive)).with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(axum::serve(listener, app).into_future());
        (r, url)
    }

    /// The bodies delivered (2xx) to `path`.
    fn delivered(&self, path: &str) -> Vec<Received> {
        self.got.lock().unwrap().iter().filter(|r| r.path == path && r.status == 200).cloned().collect()
    }

    fn attempts(&self, path: &str) -> Vec<Received> {
        self.got.lock().unwrap().iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Waits until `path` has received `n` alerts for `scope`.
    async fn wait_for(&self, path: &str, scope: &str, n: usize) -> Vec<Value> {
        let found = eventually(WITHIN, || async {
            let got: Vec<Value> =
                self.delivered(path).iter().map(Received::json).filter(|b| b["scope"] == scope).collect();
            (got.len() >= n).then_some(got)
        })
        .await;
        found.unwrap_or_else(|| panic!("{n} alerts for {scope} on /{path}; got {:?}", self.delivered(path)))
    }
}

async fn receive(State(r): State<Receiver>, Path(path): Path<String>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let fail =
        path == "flaky" && r.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
    let status = if fail { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    r.got.lock().unwrap().push(Received { path, status: status.as_u16(), headers, body });
    status
}

fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_switchyard"))
}

/// $0.0001 a request, whatever its tokens: a budget of $0.002 moves 5% a
/// request, exactly.
fn config(alerts: &str) -> String {
    let mut c = base_config(
        "",
        r#"  - { name: priced, provider: sim, model: model-p, price: { per_request: 0.0001 } }"#,
        r#"  - { name: priced, targets: [priced] }"#,
    );
    c.push_str(alerts);
    c
}

/// A key with a monthly budget, in `tenant` (`None`: the default tenant):
/// its id and secret.
async fn key(h: &Harness, tenant: Option<&str>, max_usd: f64) -> (String, String) {
    let mut body =
        json!({"name": format!("k{}", fastrand::u32(..)), "budgets": [{"period": "month", "max_usd": max_usd}]});
    if let Some(t) = tenant {
        body["tenant_id"] = json!(t);
    }
    let (status, k) = h.admin("POST", "/api/v1/keys", ADMIN_TOKEN, body).await;
    assert_eq!(status, 201, "{k}");
    (k["id"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string())
}

async fn chat(h: &Harness, secret: &str) -> u16 {
    let body = json!({"model": "priced", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    h.post("/v1/chat/completions", secret).json(&body).send().await.unwrap().status().as_u16()
}

async fn spend(h: &Harness, secret: &str, requests: usize) {
    for i in 0..requests {
        assert_eq!(chat(h, secret).await, 200, "request {i}");
    }
}

async fn list(h: &Harness, token: &str, query: &str) -> (u16, Value) {
    h.admin("GET", &format!("/api/v1/alerts{query}"), token, Value::Null).await
}

fn thresholds(alerts: &[Value]) -> Vec<u64> {
    let mut t: Vec<u64> =
        alerts.iter().map(|a| a["threshold_percent"].as_u64().or(a["threshold"].as_u64()).unwrap()).collect();
    t.sort_unstable();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_threshold_fires_once_per_period_even_across_a_restart() {
    let (rx, url) = Receiver::start(0).await;
    let mut h = Harness::start(
        &bin(),
        &config(&format!(
            r#"
alerts:
  backoff: 20ms
  webhooks:
    - {{ url: "{url}/json", secret: "{SECRET}" }}
    - {{ url: "{url}/slack", format: slack }}
"#
        )),
    );
    let (a_id, a) = key(&h, None, 0.002).await;
    let a_scope = format!("key:{a_id}");
    spend(&h, &a, 20).await;
    assert_eq!(chat(&h, &a).await, 429, "the budget is spent");
    let got = rx.wait_for("json", &a_scope, 4).await;
    assert_eq!(thresholds(&got), [50, 80, 95, 100]);
    for (t, spent) in [(50, "0.001"), (80, "0.0016"), (95, "0.0019"), (100, "0.002")] {
        let alert = got.iter().find(|g| g["threshold_percent"] == t).unwrap();
        assert_eq!((&alert["spent"], &alert["limit"], &alert["unit"]), (&json!(spent), &json!("0.002"), &json!("usd")));
        assert_eq!(
            (&alert["event"], &alert["period"], &alert["dimension"]),
            (&json!("budget.threshold"), &json!("month"), &json!("cost"))
        );
        assert_eq!(
            (&alert["scope_kind"], &alert["scope_id"], &alert["refused"]),
            (&json!("key"), &json!(a_id), &json!(false))
        );
        assert_eq!(alert["tenant_id"], "default");
        assert!(alert["window_start"].as_str().unwrap().ends_with("-01T00:00:00Z"), "{alert}");
    }
    // Signed with the webhook's secret, named by the alert's id.
    for r in rx.delivered("json") {
        let signature = r.headers["x-switchyard-signature"].to_str().unwrap();
        assert_eq!(signature, switchyard_core::alerts::signature(SECRET.as_bytes(), &r.body));
        assert_eq!(r.headers["x-switchyard-alert-id"], r.json()["alert_id"].as_str().unwrap());
    }
    // The same alerts in Slack's format: one readable line each.
    let slack = eventually(WITHIN, || async { Some(rx.delivered("slack")).filter(|s| s.len() >= 4) }).await.unwrap();
    for s in &slack {
        let body = s.json();
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        assert!(body["text"].as_str().unwrap().contains(&format!("key {a_id} (tenant default) reached")), "{body}");
        assert!(s.headers.get("x-switchyard-signature").is_none(), "no secret, no signature");
    }
    assert!(slack.iter().any(|s| s.json()["text"]
        .as_str()
        .unwrap()
        .contains("reached 95% of its monthly cost budget ($0.0019 of $0.002")));

    // Key C spends 60%: 50 fires. Key B's one request reaches every
    // threshold; when its alerts are in, everything sent before them has
    // been handled.
    let (c_id, c) = key(&h, None, 0.002).await;
    let c_scope = format!("key:{c_id}");
    spend(&h, &c, 12).await;
    assert_eq!(chat(&h, &a).await, 429);
    let (b_id, b) = key(&h, None, 0.0001).await;
    spend(&h, &b, 1).await;
    rx.wait_for("json", &format!("key:{b_id}"), 4).await;
    rx.wait_for("json", &c_scope, 1).await;
    assert_eq!(rx.wait_for("json", &a_scope, 4).await.len(), 4, "a refusal after 100% fired fires nothing more");

    // Everything delivered, then a restart: spend is rebuilt and nothing
    // fires again, neither refused nor crossed again.
    let all_delivered = eventually(WITHIN, || async {
        let (_, page) = list(&h, ADMIN_TOKEN, "?limit=500").await;
        let data = page["data"].as_array().unwrap().clone();
        data.iter().all(|a| a["status"] == "delivered").then_some(data)
    })
    .await
    .expect("every alert delivered");
    assert_eq!(all_delivered.len(), 9, "{all_delivered:?}");
    h.wait_usage(34).await;
    h.restart(&bin());
    assert_eq!(chat(&h, &a).await, 429, "still spent after the restart");
    spend(&h, &c, 1).await; // 65%: 50 is due again, and already fired
    spend(&h, &c, 3).await; // 80%
    let c_alerts = rx.wait_for("json", &c_scope, 2).await;
    assert_eq!(thresholds(&c_alerts), [50, 80]);
    let (b2_id, b2) = key(&h, None, 0.0001).await;
    spend(&h, &b2, 1).await;
    rx.wait_for("json", &format!("key:{b2_id}"), 4).await;
    assert_eq!(rx.wait_for("json", &a_scope, 4).await.len(), 4, "nothing fired again for A");
    assert_eq!(thresholds(&rx.wait_for("json", &c_scope, 2).await), [50, 80], "nor for C");
    assert_eq!(rx.delivered("json").len(), 4 + 4 + 2 + 4, "sent once each");
    let (_, page) = list(&h, ADMIN_TOKEN, &format!("?scope={c_scope}")).await;
    assert_eq!(thresholds(page["data"].as_array().unwrap()), [50, 80]);

    let metrics = h.metrics().await;
    assert!(metrics.contains("switchyard_budget_alerts_total{result=\"fired\"} 5"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_fires_100_and_a_failing_receiver_gets_it_on_a_retry() {
    let (rx, url) = Receiver::start(2).await;
    let h = Harness::start(
        &bin(),
        &config(&format!("\nalerts:\n  backoff: 20ms\n  retries: 4\n  webhooks:\n    - {{ url: \"{url}/flaky\" }}\n")),
    );
    // Half a request's price: the first request is refused.
    let (id, secret) = key(&h, None, 0.00005).await;
    let scope = format!("key:{id}");
    assert_eq!(chat(&h, &secret).await, 429);
    assert_eq!(chat(&h, &secret).await, 429);
    let got = rx.wait_for("flaky", &scope, 1).await;
    assert_eq!(thresholds(&got), [100], "a refusal crosses 100 only");
    assert_eq!(
        (&got[0]["refused"], &got[0]["spent"], &got[0]["limit"]),
        (&json!(true), &json!("0.00005"), &json!("0.00005"))
    );
    // Two 503s, then delivered: three attempts with one alert id.
    let attempts = rx.attempts("flaky");
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [503, 503, 200]);
    assert!(attempts.iter().all(|a| a.json()["alert_id"] == got[0]["alert_id"]));
    let row = eventually(WITHIN, || async {
        let (_, page) = list(&h, ADMIN_TOKEN, &format!("?scope={scope}")).await;
        page["data"].as_array().and_then(|d| d.first().cloned()).filter(|a| a["status"] == "delivered")
    })
    .await
    .expect("delivered");
    assert_eq!(row["attempts"], 3, "{row}");
    assert!(row["last_error"].as_str().unwrap().contains("status 503"), "{row}");
    assert_eq!((&row["threshold"], &row["refused"]), (&json!(100), &json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_is_role_checked_and_tenant_scoped() {
    // No webhook: alerts are recorded and listed.
    let h = Harness::start(&bin(), &config(""));
    for t in ["acme", "globex"] {
        let (status, body) = h.admin("POST", "/api/v1/tenants", ADMIN_TOKEN, json!({"id": t, "name": t})).await;
        assert_eq!(status, 201, "{body}");
    }
    let (acme_id, acme) = key(&h, Some("acme"), 0.0002).await;
    let (_, globex) = key(&h, Some("globex"), 0.0002).await;
    spend(&h, &acme, 2).await;
    spend(&h, &globex, 1).await;
    let (_, all) = eventually(WITHIN, || async {
        Some(list(&h, ADMIN_TOKEN, "").await).filter(|(_, p)| p["data"].as_array().is_some_and(|d| d.len() == 5))
    })
    .await
    .expect("4 alerts for acme's key, 1 for globex's");
    assert!(all["data"].as_array().unwrap().iter().all(|a| a["status"] == "recorded" && a["attempts"] == 0), "{all}");

    let role = |tenant: &'static str, role: &'static str| {
        let h = &h;
        async move {
            let body = json!({"tenant_id": tenant, "name": format!("{role}-{tenant}"), "roles": [role]});
            let (_, k) = h.admin("POST", "/api/v1/keys", ADMIN_TOKEN, body).await;
            k["key"].as_str().unwrap().to_string()
        }
    };
    let acme_admin = role("acme", "admin").await;
    let (status, page) = list(&h, &acme_admin, "").await;
    assert_eq!(status, 200, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    assert!(data.iter().all(|a| a["tenant_id"] == "acme" && a["scope"] == format!("key:{acme_id}")), "{page}");
    let (_, other) = list(&h, &acme_admin, "?tenant_id=globex").await;
    assert_eq!(other["data"], json!([]), "another tenant's alerts are not there");
    let (status, _) = list(&h, &role("acme", "viewer").await, "").await;
    assert_eq!(status, 200, "usage.read");
    let (status, denied) = list(&h, &role("acme", "developer").await, "").await;
    assert_eq!(status, 403, "{denied}");

    // Pages, newest first, and filters.
    let (_, first) = list(&h, ADMIN_TOKEN, "?tenant_id=acme&limit=3").await;
    assert_eq!((first["data"].as_array().unwrap().len(), &first["has_more"]), (3, &json!(true)));
    let next = first["next_before"].as_str().unwrap();
    let (_, rest) = list(&h, ADMIN_TOKEN, &format!("?tenant_id=acme&before={next}")).await;
    assert_eq!((rest["data"].as_array().unwrap().len(), &rest["has_more"]), (1, &json!(false)));
    let (_, recorded) = list(&h, ADMIN_TOKEN, "?status=recorded&tenant_id=globex").await;
    assert_eq!(thresholds(recorded["data"].as_array().unwrap()), [50]);
    let (_, none) = list(&h, ADMIN_TOKEN, "?since=4102444800000").await;
    assert_eq!(none["data"], json!([]));
    for bad in ["?status=sent", "?since=yesterday", "?colour=red", "?limit=0"] {
        let (status, e) = list(&h, ADMIN_TOKEN, bad).await;
        assert_eq!(status, 400, "{bad}: {e}");
    }

    // New thresholds by reload: they apply to the next movement, and what
    // fired before does not fire again.
    h.write_config(&config("alerts: { thresholds: [50, 60] }\n"));
    eventually(WITHIN, || async {
        h.metrics().await.contains("switchyard_config_reloads_total{result=\"ok\"} 1").then_some(())
    })
    .await
    .expect("reloaded");
    spend(&h, &globex, 1).await;
    let (_, after) = eventually(WITHIN, || async {
        Some(list(&h, ADMIN_TOKEN, "?tenant_id=globex").await)
            .filter(|(_, p)| p["data"].as_array().is_some_and(|d| d.len() > 1))
    })
    .await
    .expect("60 fired");
    assert_eq!(thresholds(after["data"].as_array().unwrap()), [50, 60], "{after}");
}

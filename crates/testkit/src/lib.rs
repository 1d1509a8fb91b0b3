//! Dev-only harness: starts the real `switchyard serve` binary on an
//! ephemeral port with a config written to a temp dir, and talks to it and
//! to its embedded simulator over loopback.
//!
//! Configs are YAML templates where `{dir}` is replaced by the temp dir.
//! Every process started here is stopped (by its PID) when the harness is
//! dropped.

// A dev-only harness: its own plain HTTP client is fine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use switchyard_core::usage::UsageRecord;

pub const ADMIN_TOKEN: &str = "test-admin";

pub struct Harness {
    child: Option<Child>,
    pub url: String,
    pub sim_url: Option<String>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub http: reqwest::Client,
}

/// A config with the embedded simulator and two routes; tests add more.
pub fn base_config(extra_providers: &str, extra_deployments: &str, extra_routes: &str) -> String {
    format!(
        r#"
server: {{ listen: "127.0.0.1:0", heartbeat: 15s, shutdown_grace: 10s }}
storage: {{ url: "sqlite://{{dir}}/sy.db" }}
admin: {{ bootstrap_token: "{ADMIN_TOKEN}" }}
usage: {{ flush_interval: 20ms }}
reload: {{ poll_interval: 100ms }}
timeouts: {{ first_token: 2s, idle: 2s, total: 5s }}
simulator:
  listen: "127.0.0.1:0"
  default: {{ answer_tokens: 8 }}
providers:
  - {{ name: sim, kind: openai_compatible, base_url: "sim://" }}
{extra_providers}
deployments:
  - {{ name: chat-a, provider: sim, model: model-a }}
  - {{ name: chat-b, provider: sim, model: model-b }}
  - {{ name: embed, provider: sim, model: embed-model, capabilities: [embeddings] }}
{extra_deployments}
routes:
  - {{ name: chat, targets: [chat-a] }}
  - {{ name: failover, targets: [chat-a, chat-b] }}
  - {{ name: embed, targets: [embed] }}
{extra_routes}
"#
    )
}

impl Harness {
    /// Starts the binary at `bin` with `config` (a template, see above).
    pub fn start(bin: &Path, config: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, config.replace("{dir}", &dir.path().display().to_string())).unwrap();
        let (child, url, sim_url) = spawn(bin, dir.path(), &config_path);
        Harness {
            child: Some(child),
            url,
            sim_url,
            dir,
            config_path,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap(),
        }
    }

    /// Stops the process (SIGTERM) and starts it again on the same
    /// directory and config: the database survives, ports change.
    pub fn restart(&mut self, bin: &Path) {
        self.signal("TERM");
        let status = self.wait_exit(Duration::from_secs(15));
        assert!(status.success(), "{status:?}");
        let (child, url, sim_url) = spawn(bin, self.dir.path(), &self.config_path);
        self.child = Some(child);
        self.url = url;
        self.sim_url = sim_url;
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Rewrites the config file (same template rules).
    pub fn write_config(&self, config: &str) {
        let tmp = self.dir.path().join("config.yaml.tmp");
        std::fs::write(&tmp, config.replace("{dir}", &self.dir.path().display().to_string())).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    pub async fn create_key(&self, body: Value) -> String {
        let r = self
            .http
            .post(format!("{}/api/v1/keys", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create key");
        let v: Value = r.json().await.unwrap();
        v["key"].as_str().unwrap().to_string()
    }

    pub async fn key(&self) -> String {
        self.create_key(serde_json::json!({"name": "test"})).await
    }

    pub fn post(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.url)).bearer_auth(key)
    }

    pub async fn sim_requests(&self) -> Vec<Value> {
        let sim = self.sim_url.as_ref().expect("simulator");
        self.http.get(format!("{sim}/_sim/requests")).send().await.unwrap().json().await.unwrap()
    }

    /// Waits up to `within` for the simulator to record a request with
    /// this outcome (`cancelled`, `cut`, …) and returns it.
    pub async fn wait_sim_outcome(&self, outcome: &str, within: Duration) -> Option<Value> {
        eventually(within, || async { self.sim_requests().await.into_iter().find(|s| s["outcome"] == outcome) }).await
    }

    pub async fn clear_sim_requests(&self) {
        let sim = self.sim_url.as_ref().expect("simulator");
        self.http.delete(format!("{sim}/_sim/requests")).send().await.unwrap();
    }

    pub async fn set_knobs(&self, model: &str, knobs: Value) {
        let sim = self.sim_url.as_ref().expect("simulator");
        let r = self.http.put(format!("{sim}/_sim/knobs/{model}")).json(&knobs).send().await.unwrap();
        assert!(r.status().is_success(), "set knobs: {}", r.text().await.unwrap_or_default());
    }

    pub async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.url)).send().await.unwrap().text().await.unwrap()
    }

    /// Reads the usage records straight from the database file.
    pub async fn usage_records(&self) -> Vec<UsageRecord> {
        let url = format!("sqlite://{}/sy.db", self.dir.path().display());
        let store = switchyard_store::SqliteStore::open(&url).await.unwrap();
        store.usage_records().await.unwrap()
    }

    /// Waits until at least `n` usage records are stored.
    pub async fn wait_usage(&self, n: usize) -> Vec<UsageRecord> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let records = self.usage_records().await;
            if records.len() >= n || Instant::now() > deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (after a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                panic!("switchyard did not exit in {timeout:?}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Starts `switchyard serve` and waits for its "listening" line.
fn spawn(bin: &Path, dir: &Path, config_path: &Path) -> (Child, String, Option<String>) {
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("stderr.log")).unwrap();
    let mut child = Command::new(bin)
        .arg("serve")
        .arg("--config")
        .arg(config_path)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start switchyard");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut url, mut sim_url) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while url.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(u) = line.strip_prefix("switchyard: listening on ") {
                    url = Some(u.trim().to_string());
                } else if let Some(u) = line.strip_prefix("switchyard: simulator on ") {
                    sim_url = Some(u.trim().to_string());
                }
            }
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                panic!("switchyard did not start:\n{log}");
            }
        }
    }
    (child, url.unwrap(), sim_url)
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Harness {
    /// One `/api/v1` call as `token` (`""`: no credential) with a JSON body
    /// (`Value::Null`: none). Answers the status and the JSON answer
    /// (`Value::Null` when the body is empty or not JSON).
    pub async fn admin(&self, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
        let raw = if body.is_null() { None } else { Some(body.to_string()) };
        self.admin_raw(method, path, token, raw.as_deref()).await
    }

    /// The same with the body as bytes (bad JSON, a non-object, …).
    pub async fn admin_raw(&self, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The store's directory change sequence, read from the database file.
    pub async fn directory_seq(&self) -> i64 {
        use switchyard_core::store::Store;
        let url = format!("sqlite://{}/sy.db", self.dir.path().display());
        let store = switchyard_store::SqliteStore::open(&url).await.unwrap();
        store.directory_seq().await.unwrap()
    }
}

//! In-process tests over loopback: a sim on 127.0.0.1:0, driven with reqwest
//! or raw TCP, asserting on answers and on what the sim recorded.

mod anthropic;
mod azure;
mod chat;
mod control;
mod echo;
mod embeddings;
mod faults;
mod formats;
mod gemini;
mod stream;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::{serve, Knobs, RecordedRequest, Sim, SimConfig};

/// Bound on every wait in these tests; reaching it is a failure, not a sync.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct Harness {
    pub(crate) sim: Arc<Sim>,
    pub(crate) base: String,
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub(crate) async fn start(config: SimConfig) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sim = Sim::new(config);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, sim.clone(), async {
        let _ = stopped.await;
    }));
    Harness {
        sim,
        base: format!("http://{addr}"),
        addr,
        #[allow(clippy::disallowed_methods)] // a test client, not the gateway's
        client: reqwest::Client::builder().build().unwrap(),
        stop: Some(stop),
        server: Some(server),
    }
}

/// A sim whose default knobs are `knobs`.
pub(crate) async fn start_with(knobs: Knobs) -> Harness {
    start(SimConfig { default: knobs, ..SimConfig::default() }).await
}

impl Harness {
    pub(crate) async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// POST with extra headers.
    pub(crate) async fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.unwrap()
    }

    /// POST with extra headers, then the status and the JSON body.
    pub(crate) async fn post_json_with(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        json_of(self.post_with(path, headers, body).await).await
    }

    /// POST, then the status and the JSON body.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let resp = self.post(path, body).await;
        let status = resp.status().as_u16();
        (status, serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap())
    }

    pub(crate) async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap())
    }

    /// Waits (bounded) for a recorded request matching `pred`.
    pub(crate) async fn wait_for(&self, pred: impl FnMut(&RecordedRequest) -> bool) -> RecordedRequest {
        tokio::time::timeout(WAIT, self.sim.wait_for_request(pred)).await.unwrap()
    }

    /// Opens a raw connection and sends `body` to `path` (HTTP/1.1).
    pub(crate) async fn raw_post(&self, path: &str, body: &Value) -> TcpStream {
        self.raw_post_with(path, &[], body).await
    }

    /// Like [`Harness::raw_post`], with extra headers.
    pub(crate) async fn raw_post_with(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> TcpStream {
        let body = body.to_string();
        let mut tcp = TcpStream::connect(self.addr).await.unwrap();
        let extra: String = headers.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: sim\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(body.as_bytes()).await.unwrap();
        tcp
    }

    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(WAIT, server).await.unwrap().unwrap().unwrap();
        }
    }
}

/// A fixture from `shared/fixtures/wire/openai/`.
pub(crate) fn fixture(name: &str) -> String {
    wire_fixture(&format!("openai/{name}"))
}

/// A fixture from `shared/fixtures/wire/`, e.g. `anthropic/messages_response_text.json`.
pub(crate) fn wire_fixture(path: &str) -> String {
    let path = format!("{}/../../../shared/fixtures/wire/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub(crate) fn wire_fixture_json(path: &str) -> Value {
    serde_json::from_str(&wire_fixture(path)).unwrap()
}

/// The status and JSON body of a response.
pub(crate) async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap())
}

/// The status and text body of a response, which must not fail midway.
pub(crate) async fn text_of(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    (status, String::from_utf8(resp.bytes().await.unwrap().to_vec()).unwrap())
}

/// Reads a body until it ends; `true` if it ended in an error (a cut) rather than cleanly.
pub(crate) async fn read_until_end(mut resp: reqwest::Response) -> (String, bool) {
    let mut got = Vec::new();
    let failed = loop {
        match resp.chunk().await {
            Ok(Some(b)) => got.extend_from_slice(&b),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    (String::from_utf8(got).unwrap(), failed)
}

/// The keys of a JSON object.
pub(crate) fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().cloned().collect()
}

pub(crate) fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// The structure of a JSON value: leaves become their type name, arrays the
/// shape of their first element.
pub(crate) fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
    }
}

/// `shape(v)` without top-level `keys`.
pub(crate) fn shape_without(v: &Value, keys: &[&str]) -> Value {
    let mut s = shape(v);
    if let Some(m) = s.as_object_mut() {
        for k in keys {
            m.remove(*k);
        }
    }
    s
}

/// Splits an SSE body into its `data:` payloads, checking the framing: every
/// event is exactly `data: …\n\n`.
pub(crate) fn sse_events(body: &str) -> Vec<String> {
    assert!(body.ends_with("\n\n"), "body must end with a blank line: {body:?}");
    body[..body.len() - 2]
        .split("\n\n")
        .map(|e| {
            let data = e.strip_prefix("data: ").unwrap_or_else(|| panic!("bad event {e:?}"));
            assert!(!data.contains('\n'), "multi-line event {e:?}");
            data.to_owned()
        })
        .collect()
}

/// The JSON chunks of an SSE body that ends with `[DONE]`.
pub(crate) fn sse_chunks(body: &str) -> Vec<Value> {
    let mut events = sse_events(body);
    assert_eq!(events.pop().as_deref(), Some("[DONE]"));
    events.iter().map(|e| serde_json::from_str(e).unwrap()).collect()
}

pub(crate) fn chat_body(model: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Hello there, sim!"}]})
}

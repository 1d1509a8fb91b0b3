//! A small client for the admin API (docs/admin-api.md): JSON in and out,
//! a bearer token, and the error envelope turned into one line.
//!
//! It is the providers' pooled hyper client (`providers/src/http.rs`, the one
//! place clients are built), used here for a handful of requests.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use switchyard_providers::http::{build_client, read_limited, ClientSettings};

/// Largest answer read: a page of 500 keys with 4 KiB of metadata each is
/// about 2 MiB.
const MAX_ANSWER: usize = 16 << 20;

/// No admin request takes long; a stuck gateway must not hang a script.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request, built without I/O so it can be tested.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: Method,
    /// Starts with `/api/v1/`; segments already percent-encoded.
    pub path: String,
    /// Not yet encoded; [`Call::target`] encodes them.
    pub query: Vec<(&'static str, String)>,
    pub body: Option<Value>,
}

impl Call {
    pub fn new(method: Method, path: String) -> Call {
        Call { method, path, query: Vec::new(), body: None }
    }

    /// Adds `name=value` when the value is set.
    pub fn param(&mut self, name: &'static str, value: Option<impl ToString>) {
        if let Some(v) = value {
            self.query.push((name, v.to_string()));
        }
    }

    /// Sets `name`, replacing an earlier value (the paging cursor).
    pub fn set_param(&mut self, name: &'static str, value: String) {
        self.query.retain(|(n, _)| *n != name);
        self.query.push((name, value));
    }

    /// Path and query string, percent-encoded.
    pub fn target(&self) -> String {
        let mut t = self.path.clone();
        for (i, (name, value)) in self.query.iter().enumerate() {
            t.push(if i == 0 { '?' } else { '&' });
            t.push_str(&encode(name));
            t.push('=');
            t.push_str(&encode(value));
        }
        t
    }
}

/// `/api/v1/{kind}/{id}` with the id encoded as one path segment.
pub fn object_path(kind: &str, id: &str) -> String {
    format!("/api/v1/{kind}/{}", encode(id))
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so the
/// result is safe as a path segment or a query name or value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct Client {
    http: switchyard_providers::http::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(url: &str, token: &str) -> Result<Client, String> {
        let settings = ClientSettings { connect_timeout: Duration::from_secs(5), http2_only: false };
        let http = build_client(&settings).map_err(|e| e.message)?;
        Ok(Client { http, base: url.trim_end_matches('/').to_string(), token: token.to_string() })
    }

    /// Sends `call`; the answer's JSON, or `None` for an empty body (204).
    pub async fn send(&self, call: &Call) -> Result<Option<Value>, String> {
        let target = call.target();
        let mut request = http::Request::builder()
            .method(call.method.clone())
            .uri(format!("{}{target}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("accept", "application/json");
        let body = match &call.body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let request = request.body(body).map_err(|e| format!("bad gateway URL {:?}: {e}", self.base))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| format!("cannot reach the gateway at {}: {}", self.base, e.message))?;
            let status = response.status();
            let (bytes, complete) = read_limited(response.into_body(), MAX_ANSWER).await.map_err(|e| e.message)?;
            if !complete {
                return Err(format!("{} {target}: the answer is larger than {} MiB", call.method, MAX_ANSWER >> 20));
            }
            Ok((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{} {target}: no answer within {} s", call.method, REQUEST_TIMEOUT.as_secs()))??;
        if !status.is_success() {
            return Err(error_line(&call.method, &target, status, &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            format!("{} {target}: the gateway answered {status} with a body that is not JSON: {e}", call.method)
        })
    }
}

/// One line for a refused request: the status, the envelope's message and
/// `param`, e.g. `POST /api/v1/tenants: 400 Bad Request: name is required (param: name)`.
/// A body that is not the envelope is shown, shortened, as it came.
pub fn error_line(method: &Method, target: &str, status: StatusCode, body: &[u8]) -> String {
    let envelope: Option<Value> = serde_json::from_slice(body).ok();
    let error = envelope.as_ref().and_then(|v| v.get("error")).filter(|e| e.is_object());
    let mut line = format!("{method} {target}: {status}");
    match error {
        Some(e) => {
            if let Some(m) = e.get("message").and_then(Value::as_str) {
                line.push_str(": ");
                line.push_str(m);
            }
            if let Some(p) = e.get("param").and_then(Value::as_str) {
                line.push_str(&format!(" (param: {p})"));
            }
        }
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if !text.is_empty() {
                line.push_str(": ");
                line.extend(text.chars().take(200));
            }
        }
    }
    // One line whatever the server put in its message.
    line.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode("key_01JD-x.y~z"), "key_01JD-x.y~z");
        assert_eq!(encode("a b&c=d/e?f#g%"), "a%20b%26c%3Dd%2Fe%3Ff%23g%25");
        assert_eq!(encode("bob@acme"), "bob%40acme");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn target_encodes_the_query_in_order() {
        let mut call = Call::new(Method::GET, "/api/v1/users".into());
        call.param("tenant_id", Some("acme"));
        call.param("team_id", None::<String>);
        call.param("email", Some("a+b@x.io"));
        assert_eq!(call.target(), "/api/v1/users?tenant_id=acme&email=a%2Bb%40x.io");
        call.set_param("tenant_id", "other".into());
        assert_eq!(call.target(), "/api/v1/users?email=a%2Bb%40x.io&tenant_id=other");
        assert_eq!(object_path("keys", "a/b"), "/api/v1/keys/a%2Fb");
    }

    #[test]
    fn error_line_names_status_message_and_param() {
        let body = br#"{"error":{"message":"Name is\nrequired","type":"invalid_request_error","param":"limits.rpm","code":null}}"#;
        assert_eq!(
            error_line(&Method::POST, "/api/v1/tenants", StatusCode::BAD_REQUEST, body),
            "POST /api/v1/tenants: 400 Bad Request: Name is required (param: limits.rpm)"
        );
        let body = br#"{"error":{"message":"no such key","type":"not_found_error","param":null,"code":null}}"#;
        assert_eq!(
            error_line(&Method::GET, "/api/v1/keys/k", StatusCode::NOT_FOUND, body),
            "GET /api/v1/keys/k: 404 Not Found: no such key"
        );
        assert_eq!(
            error_line(&Method::GET, "/api/v1/x", StatusCode::BAD_GATEWAY, b"<html>\nbad\n</html>"),
            "GET /api/v1/x: 502 Bad Gateway: <html> bad </html>"
        );
        assert_eq!(
            error_line(&Method::DELETE, "/api/v1/x", StatusCode::CONFLICT, b""),
            "DELETE /api/v1/x: 409 Conflict"
        );
    }
}

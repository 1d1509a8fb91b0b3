//! Writing wire bodies: hand-rolled JSON for the hot path (no intermediate
//! `Value`, keys in the order of the fixtures), the helpers every format
//! shares (JSON responses, request ids, query parameters, timestamps), and
//! OpenAI's error bodies with their statuses/headers.

use std::fmt::Write as _;

use axum::body::Body;
use axum::response::Response;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::faults::Fault;
use crate::record::Format;

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str_lit(buf: &mut String, s: &str) {
    buf.push('"');
    push_escaped(buf, s);
    buf.push('"');
}

/// Appends `s` escaped for the inside of a JSON string literal, byte for
/// byte as `serde_json` escapes it.
pub(crate) fn push_escaped(buf: &mut String, s: &str) {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{8}' => "\\b",
            '\u{c}' => "\\f",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        buf.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(buf, "\\u{:04x}", c as u32);
        } else {
            buf.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    buf.push_str(&s[start..]);
}

/// Appends a number (or anything whose `Display` is valid JSON).
pub(crate) fn push_num(buf: &mut String, n: impl std::fmt::Display) {
    // Writing into a String cannot fail.
    let _ = write!(buf, "{n}");
}

/// Appends the chat `usage` object in the shape of the fixtures.
pub(crate) fn push_chat_usage(buf: &mut String, prompt: u32, completion: u32) {
    buf.push_str("{\"prompt_tokens\":");
    push_num(buf, prompt);
    buf.push_str(",\"completion_tokens\":");
    push_num(buf, completion);
    buf.push_str(",\"total_tokens\":");
    push_num(buf, u64::from(prompt) + u64::from(completion));
    buf.push_str(
        ",\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\
         \"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\
         \"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}",
    );
}

/// Seconds since the Unix epoch, for `created`.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `secs` since the Unix epoch as RFC 3339 UTC, e.g. `2025-08-21T12:45:14Z`.
pub(crate) fn rfc3339(secs: u64) -> String {
    // Civil date from days since 1970-01-01 (H. Hinnant's `civil_from_days`).
    let days = i64::try_from(secs / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = secs % 86_400;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", s / 3_600, s / 60 % 60, s % 60)
}

/// The value of query parameter `name` (not percent-decoded: keys and
/// versions need none), `None` when absent.
pub(crate) fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| match pair.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if pair == name => Some(""),
        _ => None,
    })
}

/// A header's value when present and not blank.
pub(crate) fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.trim().is_empty())
}

/// A received body as the log keeps it: the JSON, or the text when it is not JSON.
pub(crate) fn logged_body(body: &[u8]) -> Result<Value, Value> {
    serde_json::from_slice(body).map_err(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// A string field of a JSON object, owned.
pub(crate) fn str_field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A JSON response carrying `req_sim<seq>` in the format's request-id header.
pub(crate) fn json_response(format: Format, status: StatusCode, seq: u64, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    set_request_id(&mut resp, format, seq);
    resp
}

/// `request-id` for Anthropic (as its API sends), `x-request-id` for the others.
pub(crate) fn set_request_id(resp: &mut Response, format: Format, seq: u64) {
    let name = match format {
        Format::Anthropic => "request-id",
        Format::OpenAi | Format::Azure | Format::Gemini => "x-request-id",
    };
    if let Ok(v) = HeaderValue::from_str(&format!("req_sim{seq}")) {
        resp.headers_mut().insert(name, v);
    }
}

/// An OpenAI error body `{"error":{"message","type","param","code"}}`.
pub(crate) fn error_response(
    status: StatusCode,
    seq: u64,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    json_response(Format::OpenAi, status, seq, body.to_string())
}

/// A 400 `invalid_request_error`.
#[derive(Debug)]
pub(crate) struct BadRequest {
    pub(crate) message: String,
    pub(crate) param: Option<&'static str>,
    pub(crate) code: Option<&'static str>,
}

impl BadRequest {
    pub(crate) fn missing(param: &'static str) -> Self {
        Self {
            message: format!("Missing required parameter: '{param}'."),
            param: Some(param),
            code: Some("missing_required_parameter"),
        }
    }

    pub(crate) fn invalid(param: &'static str, expected: &str) -> Self {
        Self {
            message: format!("Invalid value for '{param}': expected {expected}."),
            param: Some(param),
            code: Some("invalid_value"),
        }
    }

    pub(crate) fn not_json() -> Self {
        Self {
            message: "We could not parse the JSON body of your request. (HINT: This likely \
                      means you aren't using your HTTP library correctly. The OpenAI API \
                      expects a JSON payload, but what was sent was not valid JSON.)"
                .to_owned(),
            param: None,
            code: None,
        }
    }

    pub(crate) fn into_response(self, seq: u64) -> Response {
        error_response(StatusCode::BAD_REQUEST, seq, &self.message, "invalid_request_error", self.param, self.code)
    }
}

/// OpenAI's answer to an injected fault.
pub(crate) fn fault_response(fault: Fault, seq: u64, model: &str) -> Response {
    match fault {
        Fault::Error(status) => injected_error(status, seq, model),
        Fault::RateLimited { retry_after_s } => rate_limited(seq, model, retry_after_s),
    }
}

/// The body an injected error of `status` carries, shaped like OpenAI's.
pub(crate) fn injected_error(status: u16, seq: u64, model: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (message, kind, code_str) = match code.as_u16() {
        401 => ("Incorrect API key provided (simulated).".to_owned(), "invalid_request_error", Some("invalid_api_key")),
        403 => (
            "You are not allowed to access this model (simulated).".to_owned(),
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
        ),
        404 => (
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model_not_found"),
        ),
        429 => return rate_limited(seq, model, 1),
        503 => (
            format!(
                "That model is currently overloaded with other requests. You can retry your \
                 request. (Simulated by switchyard-sim; request ID req_sim{seq}.)"
            ),
            "server_error",
            None,
        ),
        s if s >= 500 => (
            format!(
                "The server had an error processing your request. Sorry about that! You can \
                 retry your request. (Simulated by switchyard-sim; request ID req_sim{seq}.)"
            ),
            "server_error",
            None,
        ),
        _ => ("Simulated client error.".to_owned(), "invalid_request_error", None),
    };
    error_response(code, seq, &message, kind, None, code_str)
}

/// A 429 with `retry-after` and `x-ratelimit-*` headers, like
/// `fixtures/wire/openai/errors/headers_429.http`.
pub(crate) fn rate_limited(seq: u64, model: &str, retry_after_s: u64) -> Response {
    let message = format!(
        "Rate limit reached for {model} in organization org-switchyard-sim on requests per \
         min (RPM): Limit 500, Used 500, Requested 1. Please try again in {retry_after_s}s."
    );
    let mut resp =
        error_response(StatusCode::TOO_MANY_REQUESTS, seq, &message, "requests", None, Some("rate_limit_exceeded"));
    let h = resp.headers_mut();
    h.insert(RETRY_AFTER, HeaderValue::from(retry_after_s));
    let fixed: [(&str, &str); 4] = [
        ("x-ratelimit-limit-requests", "500"),
        ("x-ratelimit-limit-tokens", "30000"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-remaining-tokens", "30000"),
    ];
    for (name, value) in fixed {
        h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{retry_after_s}s")) {
        h.insert(HeaderName::from_static("x-ratelimit-reset-requests"), v);
    }
    h.insert(HeaderName::from_static("x-ratelimit-reset-tokens"), HeaderValue::from_static("0s"));
    resp
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_round_trip_and_match_serde_json() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        for s in ["plain", "q\"uote\\", "nl\n\ttab\r", "\u{1}ctl", "ünï ✓", "\u{7f}/<>", controls.as_str()] {
            let mut buf = String::new();
            push_str_lit(&mut buf, s);
            assert_eq!(buf, serde_json::to_string(s).unwrap());
            let back: String = serde_json::from_str(&buf).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn timestamps_and_query_parameters() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_755_780_314), "2025-08-21T12:45:14Z");
        let q = Some("alt=sse&key=abc&flag");
        assert_eq!(query_param(q, "key"), Some("abc"));
        assert_eq!(query_param(q, "alt"), Some("sse"));
        assert_eq!(query_param(q, "flag"), Some(""));
        assert_eq!(query_param(q, "api-version"), None);
        assert_eq!(query_param(None, "key"), None);
    }

    #[test]
    fn usage_is_valid_json_with_total() {
        let mut buf = String::new();
        push_chat_usage(&mut buf, 3, 4);
        let v: serde_json::Value = serde_json::from_str(&buf).unwrap();
        assert_eq!(v["total_tokens"], 7);
        assert_eq!(v["completion_tokens_details"]["reasoning_tokens"], 0);
    }
}

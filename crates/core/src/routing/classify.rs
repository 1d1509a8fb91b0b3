//! A request's data classification, and masking its body.
//!
//! The class comes from the first of: the `x-switchyard-classification`
//! header, the key's `classification`, the tenant's, `classification.default`.
//! Then, with `classification.detect` on, a `P2` request whose body holds a
//! finding (e-mail address, phone number, ID or card number, API key,
//! password — `switchyard_pii`) is raised to `P1`. Detection never lowers a
//! class. Every string in the body is scanned, as the JSON decodes it (so
//! an escape like `\n` before a number does not hide it).

use crate::access::Caller;
use crate::error::{ErrorKind, GatewayError};
use bytes::Bytes;
use std::borrow::Cow;
use switchyard_config::ClassificationConfig;
use switchyard_pii::{Masker, Restorer};
use switchyard_types::Classification;

pub const HEADER: &str = "x-switchyard-classification";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Header,
    Key,
    Tenant,
    Default,
    /// Raised to P1 by a finding.
    Detected,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Header => "header",
            Source::Key => "key",
            Source::Tenant => "tenant",
            Source::Default => "default",
            Source::Detected => "detected",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified {
    pub class: Classification,
    pub source: Source,
    /// Whether detection found something (only looked for when it could
    /// change the class).
    pub findings: bool,
}

pub fn classify(
    header: Option<&str>,
    caller: &Caller,
    config: &ClassificationConfig,
    body: &[u8],
) -> Result<Classified, GatewayError> {
    let declared = match header {
        Some(text) => match Classification::parse(text) {
            Some(c) => Some((c, Source::Header)),
            None => {
                return Err(GatewayError::new(
                    ErrorKind::InvalidRequest,
                    format!("The {HEADER} header must be P0, P1 or P2; found {text:?}."),
                )
                .with_param(HEADER))
            }
        },
        None => None,
    };
    let (class, source) = declared
        .or_else(|| caller.key.classification.map(|c| (c, Source::Key)))
        .or_else(|| caller.tenant.as_ref().and_then(|t| t.classification).map(|c| (c, Source::Tenant)))
        .unwrap_or((config.default, Source::Default));
    if class == Classification::P2 && config.detect && any_value(body, switchyard_pii::contains_pii) {
        return Ok(Classified { class: Classification::P1, source: Source::Detected, findings: true });
    }
    Ok(Classified { class, source, findings: false })
}

/// The shortest text a finding can be (`a@b.co`; `pwd=x` is 5): shorter
/// strings are not scanned.
const SHORTEST_FINDING: usize = 5;

/// Whether `f` holds for some string value of a JSON document (object
/// keys are structure: not scanned, as they are not masked), decoded.
/// `body` is valid JSON (admission parsed it); on anything else the scan
/// stops early and answers from what it saw.
fn any_value(body: &[u8], mut f: impl FnMut(&str) -> bool) -> bool {
    let mut at = 0;
    while let Some(open) = memchr::memchr(b'"', &body[at..]).map(|i| at + i) {
        let mut escaped = false;
        let mut i = open + 1;
        let close = loop {
            match memchr::memchr2(b'"', b'\\', &body[i.min(body.len())..]).map(|k| i + k) {
                None => return false,
                Some(k) if body[k] == b'\\' => {
                    escaped = true;
                    i = k + 2;
                }
                Some(k) => break k,
            }
        };
        at = close + 1;
        let is_key = body[at..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':');
        if is_key || close - open - 1 < SHORTEST_FINDING {
            continue;
        }
        let text: Option<Cow<'_, str>> = if escaped {
            serde_json::from_slice::<String>(&body[open..=close]).ok().map(Cow::Owned)
        } else {
            std::str::from_utf8(&body[open + 1..close]).ok().map(Cow::Borrowed)
        };
        if text.is_some_and(|t| f(&t)) {
            return true;
        }
    }
    false
}

/// Fields whose string values are structure, not content: never masked.
const STRUCTURAL: &[&str] = &["model", "role", "type", "id", "tool_call_id", "tool_use_id", "media_type"];

/// The body with every finding in its content masked by `masker`, or
/// `None` when there was nothing to mask (the body goes as it is).
pub fn mask_body(body: &[u8], masker: &mut Masker) -> Result<Option<Bytes>, GatewayError> {
    let mut doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::new(ErrorKind::InvalidRequest, format!("The body is not valid JSON: {e}.")))?;
    // Placeholder-shaped text the client already sent keeps its number.
    for_each_content(&mut doc, &mut |s: &mut String| {
        masker.reserve(s);
        false
    });
    let changed = for_each_content(&mut doc, &mut |s: &mut String| match masker.mask(s) {
        Some(masked) => {
            *s = masked;
            true
        }
        None => false,
    });
    if !changed {
        return Ok(None);
    }
    let bytes = serde_json::to_vec(&doc)
        .map_err(|e| GatewayError::new(ErrorKind::Internal, format!("a masked body could not be written: {e}")))?;
    Ok(Some(Bytes::from(bytes)))
}

/// Calls `f` on every string of content (not the structural fields);
/// whether any call answered `true` (changed it).
fn for_each_content(v: &mut serde_json::Value, f: &mut impl FnMut(&mut String) -> bool) -> bool {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |changed, i| for_each_content(i, f) | changed),
        serde_json::Value::Object(fields) => fields.iter_mut().fold(false, |changed, (k, v)| {
            let structural = STRUCTURAL.contains(&k.as_str()) && v.is_string();
            (!structural && for_each_content(v, f)) | changed
        }),
        _ => false,
    }
}

/// A whole answer with the originals put back where the upstream echoed
/// placeholders (every string of the JSON body). A body that is not JSON
/// is returned as it came.
pub fn restore_body(body: Bytes, restorer: &Restorer) -> Bytes {
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&body) else { return body };
    let changed = for_each_string(&mut doc, &mut |s: &mut String| match restorer.restore(s) {
        Cow::Owned(restored) => {
            *s = restored;
            true
        }
        Cow::Borrowed(_) => false,
    });
    match changed.then(|| serde_json::to_vec(&doc)) {
        Some(Ok(bytes)) => Bytes::from(bytes),
        _ => body,
    }
}

fn for_each_string(v: &mut serde_json::Value, f: &mut impl FnMut(&mut String) -> bool) -> bool {
    match v {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter_mut().fold(false, |changed, i| for_each_string(i, f) | changed),
        serde_json::Value::Object(fields) => {
            fields.values_mut().fold(false, |changed, v| for_each_string(v, f) | changed)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn values(body: &str) -> Vec<String> {
        let mut out = Vec::new();
        any_value(body.as_bytes(), |s| {
            out.push(s.to_string());
            false
        });
        out
    }

    #[test]
    fn scans_every_string_value_decoded() {
        let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"call\n13812345678 \"now\" \\ é"}],"n":1,"stop" : ["a:b", "x"]}"#;
        // Keys, and values shorter than any finding, are skipped.
        assert_eq!(values(body), ["gpt-4o", "call\n13812345678 \"now\" \\ é"]);
        assert_eq!(values(r#"{"a":"1234567890","b":"\\\\\\"}"#), ["1234567890", "\\\\\\"]);
        assert!(values(r#"{"a":"unterminated"#).is_empty());
        assert!(any_value(br#"{"x":"a value"}"#, |s| s == "a value"));
        assert!(!any_value(br#"{"a value": 1}"#, |s| s == "a value"), "a key");
    }

    #[test]
    fn masks_content_keeps_structure_and_restores_answers() {
        let body = br#"{"model":"bob@example.com","messages":[{"role":"user","content":[{"type":"text","text":"mail bob@example.com, not [EMAIL_1]"}]},{"role":"user","content":"again bob@example.com"}]}"#;
        let mut masker = Masker::new();
        let masked = mask_body(body, &mut masker).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&masked).unwrap();
        assert_eq!(v["model"], "bob@example.com", "structural fields are not content");
        // The client's own [EMAIL_1] keeps its number: the address is #2.
        assert_eq!(v["messages"][0]["content"][0]["text"], "mail [EMAIL_2], not [EMAIL_1]");
        assert_eq!(v["messages"][1]["content"], "again [EMAIL_2]");
        assert_eq!(masker.findings(), 2);
        let restorer = masker.into_restorer();
        let answer =
            Bytes::from_static(br#"{"choices":[{"message":{"content":"Sent to [EMAIL_2] \"x\" [EMAIL_1]"}}]}"#);
        let restored: serde_json::Value = serde_json::from_slice(&restore_body(answer, &restorer)).unwrap();
        assert_eq!(restored["choices"][0]["message"]["content"], "Sent to bob@example.com \"x\" [EMAIL_1]");
        // Nothing to mask: the body goes as it is; a non-JSON answer too.
        assert!(mask_body(br#"{"messages":[{"content":"hi"}]}"#, &mut Masker::new()).unwrap().is_none());
        assert_eq!(restore_body(Bytes::from_static(b"not json"), &restorer), Bytes::from_static(b"not json"));
    }
}

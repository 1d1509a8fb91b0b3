//! A JSON object seen from the top only: its fields in order, each value
//! kept as the raw text it arrived as.
//!
//! This is how the gateway edits a request it otherwise passes through:
//! change `model`, add `stream_options`, and write the rest back byte for
//! byte — no deep parse of `messages`, no re-serialisation of what it did
//! not touch.

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

pub struct RawObject<'a> {
    fields: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    /// Parses `body`, which must be one JSON object.
    pub fn parse(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The raw value of `name` (the last one if the key repeats, as JSON
    /// parsers do).
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.fields.iter().rev().find(|(k, _)| k == name).map(|(_, v)| *v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Writes the object back with `overrides` applied: each `(name,
    /// Some(raw_json))` replaces or appends that field, `(name, None)`
    /// removes it. Untouched fields keep their order and exact bytes.
    pub fn write_with(&self, overrides: &[(&str, Option<&str>)]) -> Vec<u8> {
        let size: usize = self.fields.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>()
            + overrides.iter().map(|(k, v)| k.len() + v.map_or(0, str::len) + 4).sum::<usize>();
        let mut out = Vec::with_capacity(size + 2);
        out.push(b'{');
        let mut first = true;
        let mut push = |out: &mut Vec<u8>, key: &str, raw: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_key(out, key);
            out.push(b':');
            out.extend_from_slice(raw.as_bytes());
        };
        for (key, value) in &self.fields {
            match overrides.iter().find(|(name, _)| *name == key.as_ref()) {
                Some(_) => {}
                None => push(&mut out, key, value.get()),
            }
        }
        for (key, value) in overrides {
            if let Some(raw) = value {
                push(&mut out, key, raw);
            }
        }
        out.push(b'}');
        out
    }
}

fn write_key(out: &mut Vec<u8>, key: &str) {
    // serde_json escapes exactly as JSON needs; keys are short.
    match serde_json::to_string(key) {
        Ok(s) => out.extend_from_slice(s.as_bytes()),
        Err(_) => out.extend_from_slice(b"\"\""),
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'de>, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    fields.push((k, v));
                }
                Ok(RawObject { fields })
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn untouched_fields_keep_their_bytes() {
        let body = br#"{"model":"a","messages":[{"role":"user","content":"hi \u00e9"}],"n":2}"#;
        let o = RawObject::parse(body).unwrap();
        assert_eq!(o.len(), 3);
        let out = o.write_with(&[("model", Some("\"b\""))]);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"messages":[{"role":"user","content":"hi \u00e9"}],"n":2,"model":"b"}"#
        );
    }

    #[test]
    fn adds_and_removes_fields() {
        let o = RawObject::parse(br#"{"a":1,"b":2}"#).unwrap();
        let out = o.write_with(&[("b", None), ("c", Some("true"))]);
        assert_eq!(out, br#"{"a":1,"c":true}"#);
    }

    #[test]
    fn escaped_keys_round_trip() {
        let o = RawObject::parse(br#"{"a\"b":1}"#).unwrap();
        assert_eq!(o.get("a\"b").unwrap().get(), "1");
        assert_eq!(o.write_with(&[]), br#"{"a\"b":1}"#);
    }

    #[test]
    fn rejects_non_objects_and_garbage() {
        assert!(RawObject::parse(b"[1]").is_err());
        assert!(RawObject::parse(b"{\"a\":}").is_err());
        assert!(RawObject::parse(b"").is_err());
        assert!(RawObject::parse(b"{\"a\":1} x").is_err());
    }

    #[test]
    fn last_duplicate_wins() {
        let o = RawObject::parse(br#"{"m":1,"m":2}"#).unwrap();
        assert_eq!(o.get("m").unwrap().get(), "2");
    }
}

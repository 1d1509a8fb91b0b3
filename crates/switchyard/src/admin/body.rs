//! The JSON bodies of creates and updates, and the flags several kinds
//! share (limits, paging, metadata).
//!
//! An unset flag is absent from the body, so an update changes only what
//! was given; `--clear-…` and `--rpm none` send an explicit `null`.

use clap::Args;
use serde_json::{Map, Value};
use std::str::FromStr;

/// A limit on the command line: a count, or `none` for no limit (`null`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Count(u64),
    Unlimited,
}

impl FromStr for Limit {
    type Err = String;
    fn from_str(s: &str) -> Result<Limit, String> {
        if s == "none" {
            return Ok(Limit::Unlimited);
        }
        s.parse().map(Limit::Count).map_err(|_| format!("{s:?} is neither a whole number nor `none`"))
    }
}

impl Limit {
    fn json(self) -> Value {
        match self {
            Limit::Count(n) => Value::from(n),
            Limit::Unlimited => Value::Null,
        }
    }
}

/// `limits`: requests and tokens per minute, concurrent requests.
#[derive(Args, Clone, Debug, Default)]
pub struct LimitArgs {
    /// Requests per minute (`none`: no limit at this level).
    #[arg(long, value_name = "N")]
    pub rpm: Option<Limit>,
    /// Tokens per minute (`none`: no limit at this level).
    #[arg(long, value_name = "N")]
    pub tpm: Option<Limit>,
    /// Requests in flight at once (`none`: no limit at this level).
    #[arg(long, value_name = "N")]
    pub max_concurrent: Option<Limit>,
}

/// A plan's `key_limits`: the default for each key of its tenants.
#[derive(Args, Clone, Debug, Default)]
pub struct KeyLimitArgs {
    /// Each key's requests per minute (`none`: no limit).
    #[arg(long, value_name = "N")]
    pub key_rpm: Option<Limit>,
    /// Each key's tokens per minute (`none`: no limit).
    #[arg(long, value_name = "N")]
    pub key_tpm: Option<Limit>,
    /// Each key's requests in flight at once (`none`: no limit).
    #[arg(long, value_name = "N")]
    pub key_max_concurrent: Option<Limit>,
}

/// `limit` and `after` of a list, and `--all` to follow every page.
#[derive(Args, Clone, Debug, Default)]
pub struct PageArgs {
    /// Objects per page (1–500; the gateway's default is 50).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Start after this id (a previous page's `next_after`).
    #[arg(long, value_name = "ID", conflicts_with = "all")]
    pub after: Option<String>,
    /// Follow `next_after` through every page.
    #[arg(long)]
    pub all: bool,
}

/// `--metadata '{"k":"v"}'`: a JSON object.
pub fn parse_metadata(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("must be a JSON object, e.g. '{\"team\":\"ml\"}'".to_string()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// A create or update body under construction.
#[derive(Debug, Default)]
pub struct Body(Map<String, Value>);

impl Body {
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        self.0.insert(name.to_string(), value.into());
    }

    /// `name` when given; absent otherwise.
    pub fn opt(&mut self, name: &str, value: Option<impl Into<Value>>) {
        if let Some(v) = value {
            self.set(name, v);
        }
    }

    /// `name` when given, `null` when `clear`, absent otherwise (clap keeps
    /// the two flags apart).
    pub fn clearable(&mut self, name: &str, value: Option<impl Into<Value>>, clear: bool) {
        if clear {
            self.set(name, Value::Null);
        } else {
            self.opt(name, value);
        }
    }

    /// A list flag given zero or more times: absent when never given.
    pub fn list(&mut self, name: &str, items: &[String], clear: bool) {
        if clear {
            self.set(name, Value::Null);
        } else if !items.is_empty() {
            self.set(name, items.to_vec());
        }
    }

    pub fn limits(&mut self, l: &LimitArgs) {
        self.limit_object("limits", [("rpm", l.rpm), ("tpm", l.tpm), ("max_concurrent", l.max_concurrent)]);
    }

    pub fn key_limits(&mut self, l: &KeyLimitArgs) {
        self.limit_object(
            "key_limits",
            [("rpm", l.key_rpm), ("tpm", l.key_tpm), ("max_concurrent", l.key_max_concurrent)],
        );
    }

    /// Only the limits given, so an update leaves the others as they are.
    fn limit_object(&mut self, name: &str, fields: [(&str, Option<Limit>); 3]) {
        let map: Map<String, Value> =
            fields.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_string(), v.json()))).collect();
        if !map.is_empty() {
            self.set(name, Value::Object(map));
        }
    }

    pub fn create(self) -> Value {
        Value::Object(self.0)
    }

    /// The `PATCH` body; an update that changes nothing is a mistake.
    pub fn update(self) -> Result<Value, String> {
        if self.0.is_empty() {
            return Err("nothing to change: give at least one field to update (see --help)".to_string());
        }
        Ok(Value::Object(self.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_take_numbers_or_none() {
        assert_eq!("600".parse(), Ok(Limit::Count(600)));
        assert_eq!("none".parse(), Ok(Limit::Unlimited));
        assert!("-1".parse::<Limit>().is_err());
        assert!("lots".parse::<Limit>().unwrap_err().contains("`none`"));
    }

    #[test]
    fn bodies_hold_only_what_was_given() {
        let mut b = Body::default();
        b.opt("name", None::<String>);
        b.limits(&LimitArgs { rpm: Some(Limit::Count(5)), tpm: Some(Limit::Unlimited), max_concurrent: None });
        b.key_limits(&KeyLimitArgs::default());
        b.list("allowed_routes", &[], false);
        b.clearable("plan_id", None::<String>, true);
        assert_eq!(b.create(), json!({"limits": {"rpm": 5, "tpm": null}, "plan_id": null}));
        assert!(Body::default().update().unwrap_err().starts_with("nothing to change"));
    }

    #[test]
    fn metadata_must_be_an_object() {
        assert_eq!(parse_metadata(r#"{"a":1}"#), Ok(json!({"a": 1})));
        assert!(parse_metadata("[1]").unwrap_err().contains("JSON object"));
        assert!(parse_metadata("{").unwrap_err().starts_with("not JSON"));
    }
}

//! Who a request is charged to, beyond its key: the key's team and user
//! (from the directory), the application's end user (`x-switchyard-user`)
//! and free-form tags (`x-switchyard-tags: team=search,endpoint=summarize`)
//! for cost attribution. Tags are client input: they are checked here,
//! stored on the usage record, and never used as metric labels.

use crate::error::{ErrorKind, GatewayError};
use std::collections::BTreeMap;

pub const TAGS_HEADER: &str = "x-switchyard-tags";
pub const USER_HEADER: &str = "x-switchyard-user";

const MAX_TAGS: usize = 16;
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 128;
const MAX_USER: usize = 256;

fn bad(header: &str, message: String) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, message).with_param(header)
}

/// The tags of `x-switchyard-tags` as a JSON object text (keys sorted), or
/// a 400 naming the header: at most 16 `key=value` pairs separated by
/// commas; keys of `a-z 0-9 _ . -` up to 64 characters, each once; values
/// of printable characters other than `,` and `=`, up to 128.
pub fn parse_tags(raw: &str) -> Result<Option<String>, GatewayError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let mut tags = BTreeMap::new();
    for pair in raw.split(',') {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(bad(TAGS_HEADER, format!("Tag '{}' is not key=value.", pair.trim())));
        };
        let (key, value) = (key.trim(), value.trim());
        let key_ok = !key.is_empty()
            && key.len() <= MAX_KEY
            && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b));
        if !key_ok {
            return Err(bad(
                TAGS_HEADER,
                format!("Tag key '{key}' must be 1 to {MAX_KEY} characters of a-z, 0-9, _ . -"),
            ));
        }
        let value_ok = !value.is_empty()
            && value.chars().count() <= MAX_VALUE
            && value.chars().all(|c| !c.is_control() && c != '=' && c != ',');
        if !value_ok {
            return Err(bad(
                TAGS_HEADER,
                format!("Tag '{key}' needs a value of 1 to {MAX_VALUE} printable characters."),
            ));
        }
        if tags.insert(key, value).is_some() {
            return Err(bad(TAGS_HEADER, format!("Tag '{key}' is given twice.")));
        }
        if tags.len() > MAX_TAGS {
            return Err(bad(TAGS_HEADER, format!("At most {MAX_TAGS} tags.")));
        }
    }
    Ok(Some(serde_json::to_string(&tags).unwrap_or_default()))
}

/// The end user of `x-switchyard-user`: printable, at most 256 characters.
pub fn parse_user(raw: &str) -> Result<Option<String>, GatewayError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.chars().count() > MAX_USER || raw.chars().any(char::is_control) {
        return Err(bad(USER_HEADER, format!("'{USER_HEADER}' must be at most {MAX_USER} printable characters.")));
    }
    Ok(Some(raw.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tags_become_a_sorted_object() {
        assert_eq!(
            parse_tags(" team=search, endpoint=summarize ").unwrap().as_deref(),
            Some(r#"{"endpoint":"summarize","team":"search"}"#)
        );
        assert_eq!(parse_tags("").unwrap(), None);
        assert_eq!(parse_tags("env=prod eu").unwrap().as_deref(), Some(r#"{"env":"prod eu"}"#));
    }

    #[test]
    fn bad_tags_name_the_header() {
        for bad in ["team", "=x", "Team=x", "a=", "a=1,a=2", "a=b=c", &format!("{}=1", "k".repeat(65))] {
            let e = parse_tags(bad).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(TAGS_HEADER), "{bad}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("k{i}=v")).collect();
        assert!(parse_tags(&many.join(",")).is_err());
        assert!(parse_tags(&format!("a={}", "v".repeat(129))).is_err());
    }

    #[test]
    fn users_are_printable_and_bounded() {
        assert_eq!(parse_user(" alice@example.com ").unwrap().as_deref(), Some("alice@example.com"));
        assert_eq!(parse_user("").unwrap(), None);
        assert!(parse_user("a\u{7}b").is_err());
        assert!(parse_user(&"u".repeat(257)).is_err());
    }
}

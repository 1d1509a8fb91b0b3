//! Human durations in config: `250ms`, `5s`, `1.5s`, `2m`, `1h`, or a bare
//! number of seconds (`30`, `0.5`).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
    pub fn get(self) -> std::time::Duration {
        self.0
    }
    /// The config's duration syntax, for values that come from elsewhere
    /// (a header): see [`parse`].
    pub fn parse(text: &str) -> Result<std::time::Duration, String> {
        parse(text)
    }
}

const EXPECTED: &str = "a duration like \"250ms\", \"5s\", \"2m\" or \"1h\" (a bare number means seconds)";

/// Parses `"250ms"`, `"5s"`, `"1.5s"`, `"2m"`, `"1h"`, `"3"` (seconds).
pub fn parse(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("expected {EXPECTED}, found {text:?}"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown duration unit {other:?} in {text:?}: expected ms, s, m or h")),
    };
    seconds(secs, text)
}

/// A number of seconds, checked: negative, NaN or absurdly large values are
/// errors, never a panic.
fn seconds(secs: f64, shown: &str) -> Result<std::time::Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("expected a non-negative duration, found {shown:?}"));
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| format!("duration {shown:?} is too large"))
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration(std::time::Duration::from_secs(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(|v| Duration(std::time::Duration::from_secs(v)))
                    .map_err(|_| E::custom(format!("expected a non-negative duration, found {v}")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                seconds(v, &v.to_string()).map(Duration).map_err(E::custom)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse(v).map(Duration).map_err(E::custom)
            }
        }

        d.deserialize_any(DurationVisitor)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Prints the form `parse` reads back: whole seconds as `5s`, whole
/// milliseconds as `250ms`, anything finer as fractional seconds.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_nanos() == d.subsec_millis() * 1_000_000 {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}s", d.as_secs_f64())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn from_yaml(text: &str) -> Result<Duration, String> {
        serde_yaml::from_str::<Duration>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse("250ms"), Ok(std::time::Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(std::time::Duration::from_secs(5)));
        assert_eq!(parse("1.5s"), Ok(std::time::Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(std::time::Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(std::time::Duration::from_secs(3600)));
        assert_eq!(parse("3"), Ok(std::time::Duration::from_secs(3)));
        assert_eq!(parse(" 5 s "), Ok(std::time::Duration::from_secs(5)));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("fast").is_err());
        assert!(parse("5 parsecs").unwrap_err().contains("expected ms, s, m or h"));
        assert!(parse("").is_err());
        assert!(parse("-5s").is_err());
        assert!(parse("1.2.3s").is_err());
    }

    #[test]
    fn huge_values_are_errors_not_panics() {
        assert!(parse("99999999999999999999999999h").unwrap_err().contains("too large"));
        assert!(from_yaml("1e300").unwrap_err().contains("too large"));
    }

    #[test]
    fn reads_numbers_and_strings_from_yaml() {
        assert_eq!(from_yaml("30"), Ok(Duration::from_secs(30)));
        assert_eq!(from_yaml("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(from_yaml("\"2m\""), Ok(Duration::from_secs(120)));
        assert_eq!(from_yaml("750ms"), Ok(Duration::from_millis(750)));
        assert!(from_yaml("-3").unwrap_err().contains("non-negative"));
    }

    #[test]
    fn wrong_type_says_what_was_expected() {
        let err = from_yaml("true").unwrap_err();
        assert!(err.contains("expected a duration like \"250ms\""), "{err}");
        let err = from_yaml("[1, 2]").unwrap_err();
        assert!(err.contains("expected a duration like"), "{err}");
    }

    #[test]
    fn display_round_trips() {
        for d in [
            Duration::from_secs(5),
            Duration::from_millis(250),
            Duration::from_millis(1500),
            Duration(std::time::Duration::from_micros(1500)),
            Duration::from_secs(0),
        ] {
            assert_eq!(parse(&d.to_string()), Ok(d.get()), "{d}");
        }
        assert_eq!(Duration::from_secs(5).to_string(), "5s");
        assert_eq!(Duration::from_millis(250).to_string(), "250ms");
    }
}

//! When the sim answers with a tool call, which tool, and with what
//! arguments; shared by every wire format. Each format reads its own request
//! shape (which functions are offered, whether a call is allowed, which one
//! is forced) and hands the functions to [`call`].

use serde_json::{Map, Value};

use crate::text;

/// Bytes of tool-call arguments per streamed piece.
const ARG_PIECE: usize = 8;

/// The tool call the sim makes: the function's name and its JSON arguments.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) name: String,
    /// A JSON object, compact.
    pub(crate) arguments: String,
}

/// A function a request offers: its name and its JSON Schema parameters
/// (OpenAI `parameters`, Anthropic `input_schema`, Gemini `parameters` or
/// `parametersJsonSchema`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Function<'a> {
    pub(crate) name: &'a str,
    pub(crate) schema: Option<&'a Value>,
}

/// The call the sim makes among `functions`: the one named `forced` when it
/// is offered, else the first; `None` when nothing is offered. Arguments =
/// every `required` property with a sample of its type.
pub(crate) fn call(functions: &[Function<'_>], forced: Option<&str>) -> Option<ToolCall> {
    let function = forced.and_then(|n| functions.iter().find(|f| f.name == n)).or_else(|| functions.first())?;
    Some(ToolCall { name: function.name.to_owned(), arguments: sample_arguments(function.schema).to_string() })
}

impl ToolCall {
    /// Output tokens the call stands for.
    pub(crate) fn tokens(&self) -> u32 {
        text::tokens_for_chars(self.name.len() + self.arguments.len())
    }

    /// The arguments split at char boundaries into streamed pieces of at
    /// most `ARG_PIECE` bytes; at least two pieces when there are two chars.
    pub(crate) fn pieces(&self) -> Vec<(usize, usize)> {
        split(&self.arguments)
    }
}

fn split(s: &str) -> Vec<(usize, usize)> {
    let size = ARG_PIECE.min(s.len() / 2).max(1);
    let mut out = Vec::with_capacity(s.len() / size + 1);
    let mut from = 0;
    while from < s.len() {
        let mut to = (from + size).min(s.len());
        while !s.is_char_boundary(to) {
            to += 1;
        }
        out.push((from, to));
        from = to;
    }
    out
}

/// An object with every `required` property set to a sample of its type.
fn sample_arguments(schema: Option<&Value>) -> Value {
    let mut args = Map::new();
    let Some(schema) = schema else {
        return Value::Object(args);
    };
    let props = schema.get("properties");
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        let prop = props.and_then(|p| p.get(name));
        args.insert(name.to_owned(), sample(prop));
    }
    Value::Object(args)
}

fn sample(prop: Option<&Value>) -> Value {
    let Some(prop) = prop else {
        return Value::from("sample");
    };
    if let Some(v) = prop.get("const") {
        return v.clone();
    }
    if let Some(first) = prop.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
        return first.clone();
    }
    // `type` may be a list such as ["string", "null"]: take the first non-null.
    // Gemini's OpenAPI subset spells types in upper case ("STRING").
    let ty = match prop.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| !t.eq_ignore_ascii_case("null")),
        _ => None,
    };
    match ty.map(str::to_ascii_lowercase).as_deref() {
        Some("number" | "integer") => Value::from(1),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => Value::Object(Map::new()),
        Some("null") => Value::Null,
        _ => Value::from("sample"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn weather_schema() -> Value {
        json!({
            "type":"object",
            "properties":{"city":{"type":"string"},"units":{"type":"string","enum":["c","f"]},
                "days":{"type":"integer"},"ratio":{"type":"number"},"hourly":{"type":"boolean"},
                "tags":{"type":"array"},"extra":{"type":"object"},"opt":{"type":"string"}},
            "required":["city","units","days","ratio","hourly","tags","extra"]
        })
    }

    #[test]
    fn required_properties_get_samples_by_type() {
        let schema = weather_schema();
        let call = call(&[Function { name: "get_weather", schema: Some(&schema) }], None).unwrap();
        assert_eq!(call.name, "get_weather");
        let args: Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(args, json!({"city":"sample","units":"c","days":1,"ratio":1,"hourly":true,"tags":[],"extra":{}}));
    }

    #[test]
    fn forced_names_nullable_and_upper_case_types() {
        let weather = weather_schema();
        let stock = json!({"type":"OBJECT","properties":{"ticker":{"type":["string","null"]},"n":{"type":"INTEGER"}},
            "required":["ticker","n"]});
        let functions = [
            Function { name: "get_weather", schema: Some(&weather) },
            Function { name: "get_stock", schema: Some(&stock) },
        ];
        let c = call(&functions, Some("get_stock")).unwrap();
        assert_eq!(c.name, "get_stock");
        assert_eq!(serde_json::from_str::<Value>(&c.arguments).unwrap(), json!({"ticker":"sample","n":1}));
        assert_eq!(call(&functions, Some("unknown")).unwrap().name, "get_weather");
        let bare = call(&[Function { name: "now", schema: None }], None).unwrap();
        assert_eq!(bare.arguments, "{}");
        assert!(call(&[], None).is_none());
    }

    #[test]
    fn pieces_keep_char_boundaries_and_are_at_least_two() {
        let call = ToolCall { name: "f".into(), arguments: r#"{"city":"Zürich ✓✓✓"}"#.into() };
        let pieces = call.pieces();
        let joined: String = pieces.iter().map(|&(a, b)| &call.arguments[a..b]).collect();
        assert_eq!(joined, call.arguments);
        assert!(pieces.iter().all(|&(a, b)| b > a && b - a <= ARG_PIECE + 3));
        let empty = ToolCall { name: "f".into(), arguments: "{}".into() };
        assert_eq!(empty.pieces(), [(0, 1), (1, 2)]);
    }
}

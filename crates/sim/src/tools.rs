//! When the sim answers with a tool call, which tool, and with what arguments.

use serde_json::{Map, Value};

/// The tool call the sim makes: the function's name and its JSON arguments.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ToolCall {
    pub(crate) name: String,
    pub(crate) arguments: String,
}

/// Picks a tool call for a chat request body, or `None` for a text answer.
///
/// A call is made when `tools` holds a function tool, `tool_choice` is not
/// `"none"` and the last message is the user's (after a `tool` result the
/// model answers in text). A named `tool_choice` selects that tool; anything
/// else selects the first function tool.
pub(crate) fn pick(body: &Value) -> Option<ToolCall> {
    let tools = body.get("tools")?.as_array()?;
    let choice = body.get("tool_choice");
    if choice.and_then(Value::as_str) == Some("none") {
        return None;
    }
    let last_role = body.get("messages")?.as_array()?.last()?.get("role")?.as_str()?;
    if last_role != "user" {
        return None;
    }
    let functions = || tools.iter().filter_map(|t| t.get("function"));
    let named = choice.and_then(|c| c.pointer("/function/name")).and_then(Value::as_str);
    let function = named
        .and_then(|n| functions().find(|f| f.get("name").and_then(Value::as_str) == Some(n)))
        .or_else(|| functions().next())?;
    let name = function.get("name")?.as_str()?.to_owned();
    let arguments = sample_arguments(function.get("parameters")).to_string();
    Some(ToolCall { name, arguments })
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
    let ty = match prop.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    };
    match ty {
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

    fn body(tool_choice: Value, last_role: &str) -> Value {
        json!({
            "model": "m",
            "messages": [{"role": last_role, "content": "hi"}],
            "tools": [
                {"type":"function","function":{"name":"get_weather","parameters":{
                    "type":"object",
                    "properties":{"city":{"type":"string"},"units":{"type":"string","enum":["c","f"]},
                        "days":{"type":"integer"},"ratio":{"type":"number"},"hourly":{"type":"boolean"},
                        "tags":{"type":"array"},"extra":{"type":"object"},"opt":{"type":"string"}},
                    "required":["city","units","days","ratio","hourly","tags","extra"]}}},
                {"type":"function","function":{"name":"get_stock_price","parameters":{
                    "type":"object","properties":{"ticker":{"type":["string","null"]}},"required":["ticker"]}}}
            ],
            "tool_choice": tool_choice
        })
    }

    #[test]
    fn required_properties_get_samples_by_type() {
        let call = pick(&body(json!("auto"), "user")).unwrap();
        assert_eq!(call.name, "get_weather");
        let args: Value = serde_json::from_str(&call.arguments).unwrap();
        assert_eq!(args, json!({"city":"sample","units":"c","days":1,"ratio":1,"hourly":true,"tags":[],"extra":{}}));
    }

    #[test]
    fn named_choice_none_and_tool_results() {
        let named = json!({"type":"function","function":{"name":"get_stock_price"}});
        let call = pick(&body(named, "user")).unwrap();
        assert_eq!(call.name, "get_stock_price");
        assert_eq!(call.arguments, r#"{"ticker":"sample"}"#);
        assert!(pick(&body(json!("none"), "user")).is_none());
        assert!(pick(&body(json!("required"), "tool")).is_none());
        assert!(pick(&json!({"messages":[{"role":"user"}],"tools":[]})).is_none());
    }
}

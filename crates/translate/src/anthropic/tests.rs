#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------
// Fixture helpers

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/wire/anthropic");

/// Every fixture file, relative to `FIXTURES`, with the tests that use it.
/// `every_fixture_is_exercised` fails when a file is added without a test.
const COVERED: &[&str] = &[
    "count_tokens_request.http",                         // http_request_heads_and_bodies
    "count_tokens_request.json",                         // decode_count_tokens_request, request_round_trips
    "count_tokens_response.json",                        // count_tokens_response_shape
    "messages_request.http",                             // http_request_heads_and_bodies
    "messages_request_full.json", // decode_full_request, request_round_trips, encode_reproduces_fixtures
    "messages_request_system_blocks_and_url_image.json", // decode_system_blocks_and_url_image, …
    "messages_request_tool_result_error.json", // decode_tool_result_error, request_round_trips
    "messages_response_stop_sequence.json", // decode_response_fixtures, response_round_trips
    "messages_response_text.json", // decode_response_fixtures, response_round_trips
    "messages_response_tool_use.json", // decode_response_fixtures, response_round_trips
    "messages_stream_error_overloaded.sse", // stream_overloaded_yields_error, encoder_round_trips_fixtures
    "messages_stream_text.sse",   // stream_text_fixture, encoder_round_trips_fixtures
    "messages_stream_tool_use.sse", // stream_tool_use_fixture, encoder_round_trips_fixtures
    "models_list.json",           // models_list_shape
    "response_headers_200.http",  // response_headers_200
    "tool_choice_variants.json",  // tool_choice_variants
    "errors/400_invalid_request_error.json", // error_fixtures_match_status_table
    "errors/400_invalid_request_error_examples.json", // error_fixtures_match_status_table
    "errors/401_authentication_error.json",
    "errors/403_permission_error.json",
    "errors/404_not_found_error.json",
    "errors/413_request_too_large.json",
    "errors/429_rate_limit_error.json",
    "errors/500_api_error.json",
    "errors/529_overloaded_error.json",
    "errors/headers_429.http", // error_headers_429
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

fn body_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// `event:` name and `data:` payload of every SSE event in `bytes`.
fn sse_events(bytes: &[u8]) -> Vec<(Option<String>, String)> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|chunk| !chunk.trim().is_empty())
        .map(|chunk| {
            let mut name = None;
            let mut data = String::new();
            for line in chunk.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            (name, data)
        })
        .collect()
}

fn decode_sse(bytes: &[u8]) -> Vec<StreamEvent> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for (name, data) in sse_events(bytes) {
        decoder.decode(name.as_deref(), data.as_bytes(), &mut out).unwrap();
    }
    decoder.end(&mut out);
    out
}

fn encode_events(model: &str, events: &[StreamEvent]) -> Vec<u8> {
    let mut encoder = Encoder::new(model);
    let mut out = Vec::new();
    for e in events {
        encoder.encode(e, &mut out);
    }
    out
}

/// What a stream says, index by index.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    text: BTreeMap<u32, String>,
    thinking: BTreeMap<u32, String>,
    tools: BTreeMap<u32, (String, String, String)>,
    finish: Option<(FinishReason, Option<String>)>,
    usage: Option<TokenUsage>,
    errors: Vec<StreamError>,
    done: bool,
}

fn summarize(events: &[StreamEvent]) -> Summary {
    let mut s = Summary::default();
    for e in events {
        match e {
            StreamEvent::TextDelta { index, text } => s.text.entry(*index).or_default().push_str(text),
            StreamEvent::ThinkingDelta { index, text } => s.thinking.entry(*index).or_default().push_str(text),
            StreamEvent::ToolCallStart { index, id, name, .. } => {
                s.tools.insert(*index, (id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallDelta { index, arguments } => s.tools.get_mut(index).unwrap().2.push_str(arguments),
            StreamEvent::Finish { reason, stop_sequence } => s.finish = Some((*reason, stop_sequence.clone())),
            StreamEvent::Usage(u) => s.usage = Some(*u),
            StreamEvent::Error(e) => s.errors.push(e.clone()),
            StreamEvent::Done => s.done = true,
            _ => {}
        }
    }
    s
}

/// Status line and lower-cased header map of an `.http` head, and the body.
fn http_message(bytes: &[u8]) -> (String, BTreeMap<String, String>, String) {
    let text = std::str::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap().to_string();
    let headers = lines
        .map(|line| {
            let (k, v) = line.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    (first, headers, body.trim().to_string())
}

fn weather_tool() -> Value {
    json!({
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
    })
}

fn user(text: &str) -> Message {
    Message { role: Role::User, parts: vec![Part::text(text)] }
}

fn base_request() -> ChatRequest {
    ChatRequest { model: "m".into(), messages: vec![user("hi")], ..ChatRequest::default() }
}

fn encode(req: &ChatRequest) -> Value {
    body_json(&encode_request(req, "claude-x").unwrap())
}

fn encode_err(req: &ChatRequest) -> String {
    encode_request(req, "claude-x").unwrap_err().field
}

fn decode_err(body: Value) -> String {
    decode_request(body.to_string().as_bytes()).unwrap_err().field
}

// ---------------------------------------------------------------------------
// Coverage of the fixture directory

#[test]
fn every_fixture_is_exercised() {
    fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }
    let mut files = Vec::new();
    walk(std::path::Path::new(FIXTURES), "", &mut files);
    for f in &files {
        assert!(COVERED.contains(&f.as_str()), "fixture {f} is not exercised by a test");
    }
    for c in COVERED {
        assert!(files.iter().any(|f| f == c), "listed fixture {c} does not exist");
    }
}

// ---------------------------------------------------------------------------
// Requests: decoding

#[test]
fn decode_full_request() {
    let req = decode_request(&fixture("messages_request_full.json")).unwrap();
    assert_eq!(req.model, "claude-sonnet-4-20250514");
    assert_eq!(req.max_tokens, Some(1024));
    assert_eq!(
        req.system,
        vec![SystemBlock { text: "You are a helpful weather assistant. Be concise.".into(), cache_control: None }]
    );
    assert_eq!(req.stop, vec!["END_OF_ANSWER".to_string()]);
    assert_eq!(req.temperature, Some(0.2));
    assert_eq!(req.user.as_deref(), Some("user-1234"));
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(req.parallel_tool_calls, None);
    assert!(!req.stream);
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "get_weather");
    assert_eq!(req.tools[0].description.as_deref(), Some("Get the current weather for a city."));
    assert_eq!(req.tools[0].parameters["required"], json!(["location"]));

    assert_eq!(req.messages.len(), 3);
    let m0 = &req.messages[0];
    assert_eq!(m0.role, Role::User);
    match &m0.parts[0] {
        Part::Image(Image::Base64 { media_type, data, detail }) => {
            assert_eq!(media_type, "image/png");
            assert!(data.starts_with("iVBORw0KGgo"));
            assert_eq!(detail, &None);
        }
        other => panic!("expected an image, got {other:?}"),
    }
    assert_eq!(m0.parts[1], Part::text("Which city is in this photo, and what is the weather there?"));

    let m1 = &req.messages[1];
    assert_eq!(m1.role, Role::Assistant);
    assert_eq!(m1.parts[0], Part::text("That looks like Paris. Let me check the weather."));
    assert_eq!(
        m1.parts[1],
        Part::ToolCall(ToolCall {
            id: "toolu_01NRLabsLyVHZPKxbKvkfSMn".into(),
            name: "get_weather".into(),
            arguments: r#"{"location":"Paris","unit":"celsius"}"#.into(),
            signature: None,
        })
    );

    let m2 = &req.messages[2];
    assert_eq!(
        m2.parts,
        vec![
            Part::ToolResult(ToolResult {
                call_id: "toolu_01NRLabsLyVHZPKxbKvkfSMn".into(),
                content: vec![Part::text("15 degrees, light rain")],
                is_error: false,
            }),
            Part::text("Should I bring an umbrella?"),
        ]
    );
}

#[test]
fn decode_system_blocks_and_url_image() {
    let req = decode_request(&fixture("messages_request_system_blocks_and_url_image.json")).unwrap();
    assert_eq!(
        req.system,
        vec![SystemBlock {
            text: "You are a helpful assistant.".into(),
            cache_control: Some(json!({"type": "ephemeral"}))
        }]
    );
    assert_eq!(req.max_tokens, Some(512));
    assert_eq!(
        req.messages[0].parts[0],
        Part::Image(Image::Url {
            url: "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg".into(),
            detail: None
        })
    );
    assert_eq!(req.messages[0].parts[1], Part::text("Describe this image."));
}

#[test]
fn decode_tool_result_error() {
    let req = decode_request(&fixture("messages_request_tool_result_error.json")).unwrap();
    assert_eq!(req.messages[0].parts, vec![Part::text("Weather in Atlantis?")]);
    assert_eq!(
        req.messages[2].parts,
        vec![Part::ToolResult(ToolResult {
            call_id: "toolu_01A09q90qw90lq917835lq9".into(),
            content: vec![Part::text("ERROR: unknown location 'Atlantis'")],
            is_error: true,
        })]
    );
}

#[test]
fn decode_count_tokens_request() {
    let req = decode_request(&fixture("count_tokens_request.json")).unwrap();
    assert_eq!(req.max_tokens, None);
    assert_eq!(req.model, "claude-sonnet-4-20250514");
    assert_eq!(req.system.len(), 1);
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.messages, vec![user("What's the weather in Paris?")]);
}

#[test]
fn count_tokens_response_shape() {
    let body = fixture_json("count_tokens_response.json");
    let obj = body.as_object().unwrap();
    assert_eq!(obj.len(), 1);
    assert!(obj["input_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn http_request_heads_and_bodies() {
    for (name, path, has_max_tokens) in [
        ("messages_request.http", "/v1/messages", true),
        ("count_tokens_request.http", "/v1/messages/count_tokens", false),
    ] {
        let (line, headers, body) = http_message(&fixture(name));
        assert_eq!(line, format!("POST {path} HTTP/1.1"), "{name}");
        assert_eq!(headers["host"], "api.anthropic.com");
        assert!(headers["x-api-key"].starts_with("sk-ant-"));
        assert_eq!(headers["anthropic-version"], "2023-06-01");
        assert_eq!(headers["content-type"], "application/json");
        let req = decode_request(body.as_bytes()).unwrap();
        assert_eq!(req.messages, vec![user("Hello, Claude")]);
        assert_eq!(req.max_tokens.is_some(), has_max_tokens, "{name}");
    }
}

#[test]
fn tool_choice_variants() {
    let variants = fixture_json("tool_choice_variants.json");
    let expected = [
        ("auto", ToolChoice::Auto, None),
        ("any", ToolChoice::Required, None),
        ("tool", ToolChoice::Named("get_weather".into()), None),
        ("none", ToolChoice::None, None),
        ("auto_no_parallel", ToolChoice::Auto, Some(false)),
    ];
    let names: Vec<&String> = variants.as_object().unwrap().keys().filter(|k| *k != "_note").collect();
    assert_eq!(names.len(), expected.len());
    for (name, choice, parallel) in expected {
        let wire = variants[name].clone();
        let body = json!({
            "model": "m", "max_tokens": 10, "tools": [weather_tool()], "tool_choice": wire,
            "messages": [{"role": "user", "content": "hi"}]
        });
        let req = decode_request(body.to_string().as_bytes()).unwrap();
        assert_eq!(req.tool_choice, Some(choice), "{name}");
        assert_eq!(req.parallel_tool_calls, parallel, "{name}");
        let encoded = encode(&req);
        assert_eq!(encoded["tool_choice"], wire, "{name}");
    }
}

#[test]
fn decode_thinking_blocks_and_budget() {
    let body = json!({
        "model": "m", "max_tokens": 8000, "thinking": {"type": "enabled", "budget_tokens": 2048},
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig1"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}
            ]}
        ]
    });
    let req = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(req.reasoning, Some(Reasoning { effort: None, budget_tokens: Some(2048) }));
    assert_eq!(
        req.messages[1].parts,
        vec![
            Part::Thinking { text: "hmm".into(), signature: Some("sig1".into()) },
            Part::Thinking { text: String::new(), signature: Some("opaque".into()) },
            Part::Text { text: "a".into(), cache_control: Some(json!({"type": "ephemeral"})) },
        ]
    );
    // Sent back unchanged.
    let out = encode(&req);
    assert_eq!(out["messages"][1]["content"], body["messages"][1]["content"]);
    assert_eq!(out["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));

    let disabled = json!({"model": "m", "thinking": {"type": "disabled"}, "messages": []});
    assert_eq!(decode_request(disabled.to_string().as_bytes()).unwrap().reasoning, None);
}

#[test]
fn decode_sampling_stream_and_custom_tools() {
    let body = json!({
        "model": "m", "max_tokens": 5, "top_p": 0.9, "top_k": 40, "stream": true, "temperature": 1,
        "tools": [{"type": "custom", "name": "t", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": null},
        "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]
    });
    let req = decode_request(body.to_string().as_bytes()).unwrap();
    assert_eq!((req.top_p, req.top_k, req.stream, req.temperature), (Some(0.9), Some(40), true, Some(1.0)));
    assert_eq!(req.user, None);
    assert_eq!(req.tools[0].name, "t");
    assert_eq!(
        req.messages[0].parts,
        vec![Part::ToolResult(ToolResult { call_id: "x".into(), content: vec![], is_error: false })]
    );
}

#[test]
fn decode_errors_name_the_field() {
    let msg = |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    let cases: Vec<(Value, &str)> = vec![
        (json!({"model": "m", "messages": [{"role": "system", "content": "x"}]}), "messages[0].role"),
        (json!({"model": "m", "messages": [{"content": "x"}]}), "messages[0].role"),
        (msg(json!(5)), "messages[0].content"),
        (
            msg(json!([{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}])),
            "messages[0].content[0].type",
        ),
        (
            msg(json!([{"type": "search_result", "source": "s", "title": "t", "content": []}])),
            "messages[0].content[0].type",
        ),
        (
            msg(
                json!([{"type": "text", "text": "a"}, {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]),
            ),
            "messages[0].content[1].type",
        ),
        (
            msg(json!([{"type": "web_search_tool_result", "tool_use_id": "s", "content": []}])),
            "messages[0].content[0].type",
        ),
        (msg(json!([{"text": "no type"}])), "messages[0].content[0].type"),
        (msg(json!([{"type": "text"}])), "messages[0].content[0]"),
        (
            msg(json!([{"type": "image", "source": {"type": "file", "file_id": "f"}}])),
            "messages[0].content[0].source.type",
        ),
        (
            msg(json!([{"type": "tool_result", "tool_use_id": "x", "content": [{"type": "document"}]}])),
            "messages[0].content[0].content[0].type",
        ),
        (msg(json!([{"type": "tool_result", "tool_use_id": "x", "content": 3}])), "messages[0].content[0].content"),
        (json!({"messages": []}), "model"),
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": {}}), "messages"),
        (json!({"model": "m", "messages": [], "temperature": "hot"}), "temperature"),
        (json!({"model": "m", "messages": [], "max_tokens": -1}), "max_tokens"),
        (json!({"model": "m", "messages": [], "stop_sequences": "END"}), "stop_sequences"),
        (json!({"model": "m", "messages": [], "container": "c"}), "container"),
        (json!({"model": "m", "messages": [], "mcp_servers": []}), "mcp_servers"),
        (json!({"model": "m", "messages": [], "service_tier": "auto"}), "service_tier"),
        (json!({"model": "m", "messages": [], "context_management": {}}), "context_management"),
        (json!({"model": "m", "messages": [], "system": [{"type": "image"}]}), "system[0].type"),
        (json!({"model": "m", "messages": [], "system": 1}), "system"),
        (
            json!({"model": "m", "messages": [], "tools": [weather_tool(), {"type": "web_search_20250305", "name": "web_search"}]}),
            "tools[1].type",
        ),
        (json!({"model": "m", "messages": [], "tools": [{"name": "t"}]}), "tools[0]"),
        (json!({"model": "m", "messages": [], "tool_choice": {"type": "bogus"}}), "tool_choice.type"),
        (json!({"model": "m", "messages": [], "tool_choice": {"type": "tool"}}), "tool_choice.name"),
        (json!({"model": "m", "messages": [], "thinking": {"type": "enabled"}}), "thinking.budget_tokens"),
        (json!({"model": "m", "messages": [], "thinking": {"type": "adaptive"}}), "thinking.type"),
        (json!({"model": "m", "messages": [], "metadata": {"user_id": "u", "tier": 1}}), "metadata.tier"),
        (json!([1, 2]), ""),
    ];
    for (body, field) in cases {
        assert_eq!(decode_err(body.clone()), field, "{body}");
    }
    assert_eq!(decode_request(b"not json").unwrap_err().field, "");
}

// ---------------------------------------------------------------------------
// Requests: encoding

#[test]
fn encode_reproduces_fixtures() {
    // Decoding then encoding gives the client's body back.
    for name in ["messages_request_full.json", "messages_request_system_blocks_and_url_image.json"] {
        let original = fixture_json(name);
        let req = decode_request(&fixture(name)).unwrap();
        let encoded = body_json(&encode_request(&req, "claude-sonnet-4-20250514").unwrap());
        assert_eq!(encoded, original, "{name}");
    }
    // A tool result holding one plain text block is sent as a string.
    let req = decode_request(&fixture("messages_request_tool_result_error.json")).unwrap();
    let encoded = encode(&req);
    assert_eq!(
        encoded["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "is_error": true,
               "content": "ERROR: unknown location 'Atlantis'"})
    );
    assert_eq!(encoded["model"], "claude-x");
}

#[test]
fn request_round_trips() {
    for name in [
        "messages_request_full.json",
        "messages_request_system_blocks_and_url_image.json",
        "messages_request_tool_result_error.json",
        "count_tokens_request.json",
    ] {
        let first = decode_request(&fixture(name)).unwrap();
        let again = decode_request(&encode_request(&first, &first.model).unwrap()).unwrap();
        // Documented change: a missing max_tokens becomes the default.
        let expected = ChatRequest { max_tokens: Some(first.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)), ..first };
        assert_eq!(again, expected, "{name}");
    }
}

#[test]
fn encode_defaults_and_clamps() {
    let mut req = base_request();
    req.temperature = Some(1.7);
    req.stream = true;
    req.user = Some("u-1".into());
    req.stop = vec!["X".into()];
    req.include_usage = true;
    req.n = Some(1);
    let out = encode(&req);
    assert_eq!(out["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    assert_eq!(out["temperature"], json!(1.0));
    assert_eq!(out["stream"], json!(true));
    assert_eq!(out["metadata"], json!({"user_id": "u-1"}));
    assert_eq!(out["stop_sequences"], json!(["X"]));
    assert_eq!(out["messages"], json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}]));
    assert!(out.get("system").is_none() && out.get("tools").is_none() && out.get("thinking").is_none());

    req.temperature = Some(0.5);
    req.max_tokens = Some(77);
    req.stream = false;
    let out = encode(&req);
    assert_eq!(out["temperature"], json!(0.5));
    assert_eq!(out["max_tokens"], json!(77));
    assert!(out.get("stream").is_none());
}

#[test]
fn encode_refuses_fields_anthropic_lacks() {
    let cases: Vec<(ChatRequest, &str)> = vec![
        (ChatRequest { seed: Some(1), ..base_request() }, "seed"),
        (ChatRequest { presence_penalty: Some(0.1), ..base_request() }, "presence_penalty"),
        (ChatRequest { frequency_penalty: Some(0.1), ..base_request() }, "frequency_penalty"),
        (ChatRequest { n: Some(2), ..base_request() }, "n"),
    ];
    for (req, field) in cases {
        let err = encode_request(&req, "c").unwrap_err();
        assert_eq!(err, TranslateError::unsupported(field, Format::Anthropic));
    }
}

#[test]
fn encode_system_forms() {
    let mut req = base_request();
    req.system = vec![SystemBlock { text: "a".into(), cache_control: None }];
    assert_eq!(encode(&req)["system"], json!("a"));
    req.system.push(SystemBlock { text: "b".into(), cache_control: None });
    assert_eq!(encode(&req)["system"], json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]));
    req.system = vec![SystemBlock { text: "c".into(), cache_control: Some(json!({"type": "ephemeral"})) }];
    assert_eq!(encode(&req)["system"], json!([{"type": "text", "text": "c", "cache_control": {"type": "ephemeral"}}]));
}

#[test]
fn encode_merges_roles_and_puts_tool_results_first() {
    let call = |id: &str| {
        Part::ToolCall(ToolCall { id: id.into(), name: "f".into(), arguments: r#"{"a":1}"#.into(), signature: None })
    };
    let result = |id: &str, text: &str| {
        Part::ToolResult(ToolResult { call_id: id.into(), content: vec![Part::text(text)], is_error: false })
    };
    let mut req = base_request();
    req.messages = vec![
        user("q"),
        Message { role: Role::Assistant, parts: vec![Part::text("let me see"), call("c1")] },
        Message { role: Role::Assistant, parts: vec![call("c2")] },
        Message { role: Role::User, parts: vec![Part::text("extra"), result("c1", "r1")] },
        Message { role: Role::User, parts: vec![result("c2", "r2")] },
        Message { role: Role::User, parts: vec![Part::text("")] },
    ];
    let out = encode(&req);
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "q"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "let me see"},
                {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
                {"type": "tool_use", "id": "c2", "name": "f", "input": {"a": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "r1"},
                {"type": "tool_result", "tool_use_id": "c2", "content": "r2"},
                {"type": "text", "text": "extra"}
            ]}
        ])
    );
}

#[test]
fn encode_tool_calls_need_object_arguments() {
    let mut req = base_request();
    let call = |arguments: &str| {
        Part::ToolCall(ToolCall { id: "c".into(), name: "f".into(), arguments: arguments.into(), signature: None })
    };
    req.messages = vec![user("q"), Message { role: Role::Assistant, parts: vec![call(""), call("{not json")] }];
    assert_eq!(encode_err(&req), "messages[1].tool_calls[1].function.arguments");
    req.messages[1].parts = vec![call("[1]")];
    assert_eq!(encode_err(&req), "messages[1].tool_calls[0].function.arguments");
    req.messages[1].parts = vec![call("")];
    assert_eq!(encode(&req)["messages"][1]["content"][0]["input"], json!({}));
}

#[test]
fn encode_images() {
    let mut req = base_request();
    let image = |media_type: &str| {
        Part::Image(Image::Base64 { media_type: media_type.into(), data: "AAAA".into(), detail: Some("high".into()) })
    };
    req.messages = vec![Message {
        role: Role::User,
        parts: vec![
            image("image/webp"),
            Part::Image(Image::Url { url: "https://x/y.png".into(), detail: Some("low".into()) }),
        ],
    }];
    assert_eq!(
        encode(&req)["messages"][0]["content"],
        json!([
            {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "AAAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
        ])
    );
    req.messages[0].parts.push(image("image/bmp"));
    assert_eq!(encode_err(&req), "messages[0].content[2]");

    // Inside a tool result.
    req.messages[0].parts = vec![Part::ToolResult(ToolResult {
        call_id: "c".into(),
        content: vec![Part::text("see"), image("image/tiff")],
        is_error: false,
    })];
    assert_eq!(encode_err(&req), "messages[0].content[0].content[1]");
    req.messages[0].parts = vec![Part::ToolResult(ToolResult {
        call_id: "c".into(),
        content: vec![Part::text("see"), image("image/png")],
        is_error: false,
    })];
    assert_eq!(
        encode(&req)["messages"][0]["content"][0]["content"],
        json!([{"type": "text", "text": "see"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}])
    );
}

#[test]
fn encode_tools_and_tool_choice() {
    let mut req = base_request();
    req.tools = vec![
        Tool {
            name: "a".into(),
            description: Some("d".into()),
            parameters: json!({"type": "object"}),
            strict: Some(true),
        },
        Tool { name: "b".into(), description: None, parameters: Value::Null, strict: None },
    ];
    let out = encode(&req);
    assert_eq!(
        out["tools"],
        json!([
            {"name": "a", "description": "d", "input_schema": {"type": "object"}},
            {"name": "b", "input_schema": {"type": "object", "properties": {}}}
        ])
    );
    assert!(out.get("tool_choice").is_none());

    let cases = [
        (None, Some(false), json!({"type": "auto", "disable_parallel_tool_use": true})),
        (Some(ToolChoice::Auto), None, json!({"type": "auto"})),
        (Some(ToolChoice::Required), Some(false), json!({"type": "any", "disable_parallel_tool_use": true})),
        (Some(ToolChoice::Named("a".into())), Some(true), json!({"type": "tool", "name": "a"})),
        (Some(ToolChoice::None), Some(false), json!({"type": "none"})),
    ];
    for (choice, parallel, expected) in cases {
        req.tool_choice = choice;
        req.parallel_tool_calls = parallel;
        assert_eq!(encode(&req)["tool_choice"], expected);
    }

    // No tools: no tool_choice.
    req.tools.clear();
    assert!(encode(&req).get("tool_choice").is_none());
}

#[test]
fn encode_json_output_emulation() {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let mut req = base_request();
    req.response_format =
        Some(ResponseFormat::JsonSchema { name: "answer".into(), schema: schema.clone(), strict: Some(true) });
    let out = encode(&req);
    assert_eq!(out["tools"].as_array().unwrap().len(), 1);
    assert_eq!(out["tools"][0]["name"], JSON_TOOL);
    assert_eq!(out["tools"][0]["input_schema"], schema);
    assert_eq!(out["tool_choice"], json!({"type": "tool", "name": JSON_TOOL}));

    req.response_format = Some(ResponseFormat::JsonObject);
    let out = encode(&req);
    assert_eq!(out["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(out["tool_choice"], json!({"type": "tool", "name": JSON_TOOL}));

    req.response_format = Some(ResponseFormat::Text);
    let out = encode(&req);
    assert!(out.get("tools").is_none() && out.get("tool_choice").is_none());

    req.response_format = Some(ResponseFormat::JsonObject);
    req.tools = vec![Tool { name: "a".into(), description: None, parameters: json!({"type": "object"}), strict: None }];
    assert_eq!(encode_err(&req), "response_format");
    req.tools.clear();
    req.reasoning = Some(Reasoning { effort: None, budget_tokens: Some(2000) });
    assert_eq!(encode_err(&req), "response_format");
}

#[test]
fn encode_reasoning() {
    let mut req = base_request();
    let with = |effort: Option<&str>, budget: Option<u32>| {
        Some(Reasoning { effort: effort.map(String::from), budget_tokens: budget })
    };

    req.reasoning = with(None, Some(3000));
    req.max_tokens = Some(8000);
    assert_eq!(encode(&req)["thinking"], json!({"type": "enabled", "budget_tokens": 3000}));

    req.max_tokens = None;
    for (effort, budget, max_tokens) in [
        ("low", 1024, DEFAULT_MAX_TOKENS),
        ("medium", 4096, 4096 + DEFAULT_MAX_TOKENS),
        ("high", 16384, 16384 + DEFAULT_MAX_TOKENS),
    ] {
        req.reasoning = with(Some(effort), None);
        let out = encode(&req);
        assert_eq!(out["thinking"], json!({"type": "enabled", "budget_tokens": budget}), "{effort}");
        assert_eq!(out["max_tokens"], json!(max_tokens), "{effort}");
    }
    // Capped below the client's max_tokens.
    req.max_tokens = Some(5000);
    req.reasoning = with(Some("high"), None);
    assert_eq!(encode(&req)["thinking"]["budget_tokens"], json!(4999));
    req.max_tokens = Some(500);
    assert_eq!(encode_err(&req), "reasoning_effort");
    req.max_tokens = None;
    req.reasoning = with(Some("none"), None);
    assert!(encode(&req).get("thinking").is_none());
    req.reasoning = with(Some("extreme"), None);
    assert_eq!(encode_err(&req), "reasoning_effort");
}

#[test]
fn encode_thinking_parts() {
    let mut req = base_request();
    req.messages.push(Message {
        role: Role::Assistant,
        parts: vec![
            Part::Thinking { text: "unsigned".into(), signature: None },
            Part::Thinking { text: "signed".into(), signature: Some("s".into()) },
            Part::Thinking { text: String::new(), signature: Some("r".into()) },
            Part::text("answer"),
        ],
    });
    assert_eq!(
        encode(&req)["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "signed", "signature": "s"},
            {"type": "redacted_thinking", "data": "r"},
            {"type": "text", "text": "answer"}
        ])
    );
}

// ---------------------------------------------------------------------------
// Responses

#[test]
fn decode_response_fixtures() {
    let text = decode_response(&fixture("messages_response_text.json")).unwrap();
    assert_eq!(text.id, "msg_01XFDUDYJgAACzvnptvVoYEL");
    assert_eq!(text.model, "claude-sonnet-4-20250514");
    assert_eq!(text.text(), "Hello! How can I help you today?");
    assert_eq!(text.finish, Some(FinishReason::Stop));
    assert_eq!(text.stop_sequence, None);
    assert_eq!(
        text.usage,
        Some(TokenUsage {
            input_tokens: 10,
            output_tokens: 12,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 0
        })
    );

    let tool = decode_response(&fixture("messages_response_tool_use.json")).unwrap();
    assert_eq!(tool.finish, Some(FinishReason::ToolCalls));
    assert_eq!(tool.parts[0], Part::text("I'll check the current weather in Paris for you."));
    assert_eq!(
        tool.parts[1],
        Part::ToolCall(ToolCall {
            id: "toolu_01NRLabsLyVHZPKxbKvkfSMn".into(),
            name: "get_weather".into(),
            arguments: r#"{"location":"Paris"}"#.into(),
            signature: None
        })
    );
    assert_eq!(tool.usage.unwrap().input_tokens, 377);
    assert_eq!(tool.usage.unwrap().output_tokens, 65);

    let stop = decode_response(&fixture("messages_response_stop_sequence.json")).unwrap();
    assert_eq!(stop.finish, Some(FinishReason::Stop));
    assert_eq!(stop.stop_sequence.as_deref(), Some("END_OF_ANSWER"));
    assert_eq!(stop.usage.unwrap().input_tokens, 412);
}

#[test]
fn response_round_trips() {
    for name in
        ["messages_response_text.json", "messages_response_tool_use.json", "messages_response_stop_sequence.json"]
    {
        let first = decode_response(&fixture(name)).unwrap();
        let body = encode_response(&first, &first.model);
        let again = decode_response(&body).unwrap();
        assert_eq!(again, first, "{name}");

        // The encoded body has the fixture's envelope.
        let original = fixture_json(name);
        let encoded = body_json(&body);
        for key in ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence"] {
            assert_eq!(encoded[key], original[key], "{name}: {key}");
        }
        for key in ["input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"] {
            assert_eq!(encoded["usage"][key], original["usage"][key], "{name}: usage.{key}");
        }
    }
}

#[test]
fn decode_response_cache_usage_thinking_and_stop_reasons() {
    let body = |stop_reason: &str| {
        json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "c",
            "content": [
                {"type": "thinking", "thinking": "t", "signature": "s"},
                {"type": "redacted_thinking", "data": "d"},
                {"type": "text", "text": "x", "citations": null}
            ],
            "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {"input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 1000, "output_tokens": 7}
        })
    };
    let resp = decode_response(body("end_turn").to_string().as_bytes()).unwrap();
    assert_eq!(
        resp.parts,
        vec![
            Part::Thinking { text: "t".into(), signature: Some("s".into()) },
            Part::Thinking { text: String::new(), signature: Some("d".into()) },
            Part::text("x"),
        ]
    );
    assert_eq!(
        resp.usage,
        Some(TokenUsage {
            input_tokens: 1105,
            output_tokens: 7,
            cache_read_tokens: 1000,
            cache_write_tokens: 100,
            reasoning_tokens: 0
        })
    );
    // Encoding gives the uncached part back.
    let encoded = body_json(&encode_response(&resp, "c"));
    assert_eq!(encoded["usage"], body("end_turn")["usage"]);
    assert_eq!(
        encoded["content"],
        json!([
            {"type": "thinking", "thinking": "t", "signature": "s"},
            {"type": "redacted_thinking", "data": "d"},
            {"type": "text", "text": "x"}
        ])
    );

    for (reason, finish) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("pause_turn", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("model_context_window_exceeded", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
        ("some_future_reason", FinishReason::Stop),
    ] {
        assert_eq!(decode_response(body(reason).to_string().as_bytes()).unwrap().finish, Some(finish), "{reason}");
    }
}

#[test]
fn decode_response_json_tool_becomes_text() {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "c",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": JSON_TOOL, "input": {"city": "Paris", "n": [1, 2]}}],
        "stop_reason": "tool_use", "stop_sequence": null, "usage": {"input_tokens": 1, "output_tokens": 2}
    });
    let resp = decode_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(resp.parts, vec![Part::text(r#"{"city":"Paris","n":[1,2]}"#)]);
    assert_eq!(resp.finish, Some(FinishReason::Stop));
}

#[test]
fn decode_response_errors() {
    let err = decode_response(&fixture("errors/529_overloaded_error.json")).unwrap_err();
    assert_eq!(err.field, "type");
    assert_eq!(decode_response(b"{").unwrap_err().field, "");
    assert!(decode_response(br#"{"type":"message","content":[{"type":"tool_use"}]}"#).is_err());
}

#[test]
fn decode_response_skips_server_tool_blocks() {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "c",
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "q"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "text", "text": "found"}
        ],
        "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 4}
    });
    let resp = decode_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(resp.parts, vec![Part::text("found")]);
    assert_eq!(resp.usage.unwrap().output_tokens, 4);
}

#[test]
fn encode_response_ids_arguments_and_finish() {
    let call = |arguments: &str| {
        Part::ToolCall(ToolCall { id: "call_1".into(), name: "f".into(), arguments: arguments.into(), signature: None })
    };
    let resp = ChatResponse {
        id: "chatcmpl-123".into(),
        model: "gpt".into(),
        parts: vec![
            Part::Thinking { text: "hm".into(), signature: None },
            Part::text("a"),
            call(""),
            call("{bad"),
            call(r#"{"x":1}"#),
        ],
        finish: Some(FinishReason::ToolCalls),
        usage: Some(TokenUsage { input_tokens: 50, output_tokens: 9, cache_read_tokens: 20, ..TokenUsage::default() }),
        ..ChatResponse::default()
    };
    let out = body_json(&encode_response(&resp, "claude-x"));
    assert_eq!(out["id"], "msg_chatcmpl-123");
    assert_eq!(out["model"], "claude-x");
    assert_eq!(out["type"], "message");
    assert_eq!(out["role"], "assistant");
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(out["stop_sequence"], Value::Null);
    assert_eq!(
        out["content"],
        json!([
            {"type": "thinking", "thinking": "hm", "signature": ""},
            {"type": "text", "text": "a"},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"_raw": "{bad"}},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}}
        ])
    );
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 30, "output_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20})
    );

    for (finish, seq, reason) in [
        (Some(FinishReason::Stop), None, json!("end_turn")),
        (Some(FinishReason::Stop), Some("END"), json!("stop_sequence")),
        (Some(FinishReason::Length), None, json!("max_tokens")),
        (Some(FinishReason::ContentFilter), None, json!("refusal")),
        (None, None, Value::Null),
    ] {
        let resp = ChatResponse {
            id: "msg_x".into(),
            finish,
            stop_sequence: seq.map(String::from),
            ..ChatResponse::default()
        };
        let out = body_json(&encode_response(&resp, "c"));
        assert_eq!(out["stop_reason"], reason);
        assert_eq!(out["id"], "msg_x");
        assert_eq!(out["usage"]["output_tokens"], 0);
    }
}

// ---------------------------------------------------------------------------
// Streams: decoding

#[test]
fn stream_text_fixture() {
    let events = decode_sse(&fixture("messages_stream_text.sse"));
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK".into(),
                model: "claude-3-opus-latest".into(),
                input_tokens: Some(11)
            },
            StreamEvent::TextDelta { index: 0, text: "Hello".into() },
            StreamEvent::TextDelta { index: 0, text: " there".into() },
            StreamEvent::TextDelta { index: 0, text: "!".into() },
            StreamEvent::PartEnd { index: 0 },
            StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None },
            StreamEvent::Usage(TokenUsage { input_tokens: 11, output_tokens: 6, ..TokenUsage::default() }),
            StreamEvent::Done,
        ]
    );
}

#[test]
fn stream_tool_use_fixture() {
    let events = decode_sse(&fixture("messages_stream_tool_use.sse"));
    let s = summarize(&events);
    assert_eq!(s.text[&0], "I'll check the current weather in Paris for you.");
    assert_eq!(
        s.tools[&1],
        (
            "toolu_01NRLabsLyVHZPKxbKvkfSMn".to_string(),
            "get_weather".to_string(),
            r#"{"location": "Paris"}"#.to_string()
        )
    );
    assert_eq!(s.finish, Some((FinishReason::ToolCalls, None)));
    assert_eq!(s.usage, Some(TokenUsage { input_tokens: 377, output_tokens: 65, ..TokenUsage::default() }));
    assert!(s.done);
    // The empty first argument piece is skipped; parts end in order.
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::ToolCallDelta { arguments, .. } if arguments.is_empty())));
    let ends: Vec<u32> = events
        .iter()
        .filter_map(|e| if let StreamEvent::PartEnd { index } = e { Some(*index) } else { None })
        .collect();
    assert_eq!(ends, vec![0, 1]);
    assert!(matches!(events[0], StreamEvent::Start { input_tokens: Some(377), .. }));
}

#[test]
fn stream_overloaded_yields_error() {
    let events = decode_sse(&fixture("messages_stream_error_overloaded.sse"));
    let s = summarize(&events);
    assert_eq!(s.text[&0], "Sure, here is");
    assert_eq!(s.errors, vec![StreamError { kind: "overloaded_error".into(), message: "Overloaded".into() }]);
    assert!(!s.done);
    assert!(matches!(events.last(), Some(StreamEvent::Error(_))));
    assert!(matches!(events[0], StreamEvent::Start { input_tokens: Some(25), .. }));
}

fn feed(events: &[(&str, Value)]) -> Vec<StreamEvent> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for (name, data) in events {
        decoder.decode(Some(name), data.to_string().as_bytes(), &mut out).unwrap();
    }
    out
}

#[test]
fn stream_cache_usage_thinking_and_json_tool() {
    let events = feed(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "c", "usage":
                {"input_tokens": 3, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 100, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "opaque"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 2})),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    assert_eq!(events[0], StreamEvent::Start { id: "msg_1".into(), model: "c".into(), input_tokens: Some(113) });
    assert_eq!(events[1], StreamEvent::ThinkingDelta { index: 0, text: "hmm".into() });
    assert_eq!(events[2], StreamEvent::ThinkingSignature { index: 0, signature: "sig".into() });
    assert_eq!(events[4], StreamEvent::ThinkingSignature { index: 1, signature: "opaque".into() });
    let s = summarize(&events);
    assert_eq!(s.text[&2], r#"{"a":1}"#);
    assert!(s.tools.is_empty());
    assert_eq!(s.finish, Some((FinishReason::Stop, None)));
    assert_eq!(
        s.usage,
        Some(TokenUsage {
            input_tokens: 113,
            output_tokens: 30,
            cache_read_tokens: 100,
            cache_write_tokens: 10,
            reasoning_tokens: 0
        })
    );
}

#[test]
fn stream_message_delta_usage_overrides_start() {
    let events = feed(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 3, "output_tokens": 1}}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
                   "usage": {"input_tokens": 4, "cache_read_input_tokens": 6, "output_tokens": 9}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": null}, "usage": {"output_tokens": 12}}),
        ),
    ]);
    assert_eq!(
        events[1..],
        [
            StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: Some("END".into()) },
            StreamEvent::Usage(TokenUsage {
                input_tokens: 10,
                output_tokens: 9,
                cache_read_tokens: 6,
                ..TokenUsage::default()
            }),
            StreamEvent::Usage(TokenUsage {
                input_tokens: 10,
                output_tokens: 12,
                cache_read_tokens: 6,
                ..TokenUsage::default()
            }),
        ]
    );
}

#[test]
fn stream_ignores_ping_unknown_events_and_blocks() {
    let events = feed(&[
        ("ping", json!({"type": "ping"})),
        ("some_new_event", json!({"type": "some_new_event", "x": 1})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"q\":1}"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "Hi"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": ""}}),
        ),
    ]);
    assert_eq!(events, vec![StreamEvent::TextDelta { index: 1, text: "Hi".into() }]);
}

#[test]
fn stream_event_type_from_data_without_name() {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    decoder.decode(None, br#"{"type":"message_stop"}"#, &mut out).unwrap();
    decoder.decode(Some("message"), br#"{"type": "ping"}"#, &mut out).unwrap();
    decoder.decode(Some(""), br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#, &mut out).unwrap();
    assert_eq!(
        out,
        vec![StreamEvent::Done, StreamEvent::Error(StreamError { kind: "api_error".into(), message: "boom".into() })]
    );
}

#[test]
fn stream_invalid_json_is_an_error() {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    let err = decoder.decode(Some("content_block_delta"), b"{\"type\":\"content_block_delta\",", &mut out).unwrap_err();
    assert_eq!(err.field, "content_block_delta");
    assert!(decoder.decode(None, b"nope", &mut out).is_err());
    assert!(decoder
        .decode(Some("content_block_delta"), br#"{"index":-1,"delta":{"type":"text_delta","text":"x"}}"#, &mut out)
        .is_err());
    assert!(out.is_empty());
}

#[test]
fn stream_decoder_survives_truncated_fixtures() {
    for name in ["messages_stream_text.sse", "messages_stream_tool_use.sse", "messages_stream_error_overloaded.sse"] {
        for (event, data) in sse_events(&fixture(name)) {
            for cut in 0..data.len() {
                let mut decoder = Decoder::default();
                let mut out = Vec::new();
                let _ = decoder.decode(event.as_deref(), &data.as_bytes()[..cut], &mut out);
                let _ = decoder.decode(None, &data.as_bytes()[..cut], &mut out);
            }
        }
    }
    // Request and response decoders too.
    for name in ["messages_request_full.json", "messages_response_tool_use.json"] {
        let body = fixture(name);
        for cut in 0..body.len() {
            let _ = decode_request(&body[..cut]);
            let _ = decode_response(&body[..cut]);
        }
    }
}

proptest! {
    #[test]
    fn decoders_never_panic_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..256), pick in 0usize..9) {
        let names = [None, Some("message_start"), Some("content_block_start"), Some("content_block_delta"),
            Some("content_block_stop"), Some("message_delta"), Some("message_stop"), Some("error"), Some("ping")];
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let _ = decoder.decode(names[pick], &data, &mut out);
        decoder.end(&mut out);
        let _ = decode_request(&data);
        let _ = decode_response(&data);
    }

    #[test]
    fn decoders_never_panic_on_json_shaped_garbage(
        kind in prop_oneof![Just("message_start"), Just("content_block_start"), Just("content_block_delta"),
            Just("content_block_stop"), Just("message_delta"), Just("error"), Just("text"), Just("tool_use")],
        index in prop_oneof![Just(json!(0)), Just(json!(u64::MAX)), Just(json!(-1)), Just(json!("0")), Just(Value::Null)],
        text in ".{0,8}",
    ) {
        let data = json!({"type": kind, "index": index, "message": {"id": text, "usage": {"input_tokens": index}},
            "content_block": {"type": kind, "text": text, "id": text, "name": text, "input": index},
            "delta": {"type": kind, "text": text, "partial_json": text, "stop_reason": text},
            "usage": {"output_tokens": index}, "error": {"type": text}});
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        let _ = decoder.decode(Some(kind), data.to_string().as_bytes(), &mut out);
        let _ = decoder.decode(None, data.to_string().as_bytes(), &mut out);
        let _ = decode_response(data.to_string().as_bytes());
    }
}

// ---------------------------------------------------------------------------
// Streams: encoding

#[test]
fn encoder_round_trips_fixtures() {
    for (name, model) in [
        ("messages_stream_text.sse", "claude-3-opus-latest"),
        ("messages_stream_tool_use.sse", "claude-sonnet-4-20250514"),
        ("messages_stream_error_overloaded.sse", "claude-sonnet-4-20250514"),
    ] {
        let events = decode_sse(&fixture(name));
        let bytes = encode_events(model, &events);
        let again = decode_sse(&bytes);
        assert_eq!(again, events, "{name}");
    }
}

#[test]
fn encoder_writes_anthropic_events() {
    let events = [
        StreamEvent::Start { id: "msg_abc".into(), model: "upstream".into(), input_tokens: Some(11) },
        StreamEvent::TextDelta { index: 0, text: "Hi".into() },
        StreamEvent::PartEnd { index: 0 },
        StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None },
        StreamEvent::Usage(TokenUsage { input_tokens: 11, output_tokens: 6, ..TokenUsage::default() }),
        StreamEvent::Done,
    ];
    let bytes = encode_events("claude-x", &events);
    let parsed = sse_events(&bytes);
    let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let data: Vec<Value> = parsed.iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    for ((name, _), d) in parsed.iter().zip(&data) {
        assert_eq!(d["type"], json!(name), "payload type matches the event name");
    }
    assert_eq!(
        data[0],
        json!({"type": "message_start", "message": {"id": "msg_abc", "type": "message", "role": "assistant",
            "model": "claude-x", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 11, "output_tokens": 1}}})
    );
    assert_eq!(
        data[1],
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        data[2],
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}})
    );
    assert_eq!(data[3], json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(
        data[4],
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"input_tokens": 11, "output_tokens": 6, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}})
    );
    assert_eq!(data[5], json!({"type": "message_stop"}));
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("event: message_start\ndata: {"));
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[test]
fn encoder_remaps_indices_and_closes_blocks_itself() {
    // OpenAI-like input: no PartEnd, sparse indices, thinking, two tool calls.
    let events = [
        StreamEvent::Start { id: "chatcmpl-1".into(), model: "gpt".into(), input_tokens: None },
        StreamEvent::ThinkingDelta { index: 3, text: "let me".into() },
        StreamEvent::ThinkingSignature { index: 3, signature: "sig".into() },
        StreamEvent::TextDelta { index: 5, text: "".into() },
        StreamEvent::TextDelta { index: 5, text: "Sure".into() },
        StreamEvent::ToolCallStart { index: 9, id: "call_a".into(), name: "f".into(), signature: None },
        StreamEvent::ToolCallDelta { index: 9, arguments: "".into() },
        StreamEvent::ToolCallDelta { index: 9, arguments: "{\"a\":".into() },
        StreamEvent::ToolCallStart { index: 10, id: "call_b".into(), name: "g".into(), signature: None },
        StreamEvent::ToolCallDelta { index: 10, arguments: "{}".into() },
        StreamEvent::ToolCallDelta { index: 9, arguments: "1}".into() },
        StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None },
        StreamEvent::Usage(TokenUsage {
            input_tokens: 120,
            output_tokens: 7,
            cache_read_tokens: 100,
            ..TokenUsage::default()
        }),
        StreamEvent::Done,
    ];
    let bytes = encode_events("claude-x", &events);
    let parsed: Vec<(String, Value)> =
        sse_events(&bytes).into_iter().map(|(n, d)| (n.unwrap(), serde_json::from_str(&d).unwrap())).collect();

    let starts: Vec<u64> =
        parsed.iter().filter(|(n, _)| n == "content_block_start").map(|(_, d)| d["index"].as_u64().unwrap()).collect();
    assert_eq!(starts, [0, 1, 2, 3]);
    let stops: Vec<u64> =
        parsed.iter().filter(|(n, _)| n == "content_block_stop").map(|(_, d)| d["index"].as_u64().unwrap()).collect();
    assert_eq!(stops, [0, 1, 2, 3]);
    assert_eq!(parsed[0].1["message"]["id"], "msg_chatcmpl-1");
    assert_eq!(parsed[0].1["message"]["usage"]["input_tokens"], 0);
    let message_delta = &parsed.iter().find(|(n, _)| n == "message_delta").unwrap().1;
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(message_delta["usage"]["input_tokens"], 20);
    assert_eq!(message_delta["usage"]["cache_read_input_tokens"], 100);

    let s = summarize(&decode_sse(&bytes));
    assert_eq!(s.thinking[&0], "let me");
    assert_eq!(s.text[&1], "Sure");
    assert_eq!(s.tools[&2], ("call_a".to_string(), "f".to_string(), "{\"a\":1}".to_string()));
    assert_eq!(s.tools[&3], ("call_b".to_string(), "g".to_string(), "{}".to_string()));
    assert_eq!(s.finish, Some((FinishReason::ToolCalls, None)));
    assert_eq!(
        s.usage,
        Some(TokenUsage { input_tokens: 120, output_tokens: 7, cache_read_tokens: 100, ..TokenUsage::default() })
    );
    assert!(s.done);
}

#[test]
fn encoder_does_not_buffer_content() {
    let mut encoder = Encoder::new("m");
    let mut out = Vec::new();
    encoder.encode(&StreamEvent::Start { id: "msg_1".into(), model: "m".into(), input_tokens: Some(1) }, &mut out);
    assert!(!out.is_empty());
    for event in [
        StreamEvent::TextDelta { index: 0, text: "a".into() },
        StreamEvent::TextDelta { index: 0, text: "b".into() },
        StreamEvent::ToolCallStart { index: 1, id: "t".into(), name: "f".into(), signature: None },
        StreamEvent::ToolCallDelta { index: 1, arguments: "{".into() },
        StreamEvent::PartEnd { index: 1 },
    ] {
        out.clear();
        encoder.encode(&event, &mut out);
        assert!(!out.is_empty(), "{event:?} wrote nothing");
    }
    for event in [
        StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None },
        StreamEvent::Usage(TokenUsage::default()),
    ] {
        out.clear();
        encoder.encode(&event, &mut out);
        assert!(out.is_empty(), "{event:?} is held for message_delta");
    }
    out.clear();
    encoder.encode(&StreamEvent::Done, &mut out);
    let names: Vec<String> = sse_events(&out).into_iter().map(|(n, _)| n.unwrap()).collect();
    assert_eq!(names, ["message_delta", "message_stop"]);
    // Nothing after the end.
    out.clear();
    encoder.encode(&StreamEvent::TextDelta { index: 0, text: "late".into() }, &mut out);
    encoder.encode(&StreamEvent::Done, &mut out);
    assert!(out.is_empty());
}

#[test]
fn encoder_synthesizes_start_and_tool_blocks() {
    let events = [
        StreamEvent::ToolCallDelta { index: 2, arguments: "{}".into() },
        StreamEvent::TextDelta { index: 3, text: "x".into() },
        StreamEvent::Done,
    ];
    let bytes = encode_events("claude-x", &events);
    let parsed: Vec<(String, Value)> =
        sse_events(&bytes).into_iter().map(|(n, d)| (n.unwrap(), serde_json::from_str(&d).unwrap())).collect();
    assert_eq!(parsed[0].0, "message_start");
    assert_eq!(parsed[0].1["message"]["id"], "msg_switchyard");
    assert_eq!(parsed[0].1["message"]["model"], "claude-x");
    assert_eq!(parsed[1].1["content_block"]["type"], "tool_use");
    let s = summarize(&decode_sse(&bytes));
    assert_eq!(s.tools[&0].2, "{}");
    assert_eq!(s.text[&1], "x");
    assert_eq!(s.finish, Some((FinishReason::Stop, None)));
    assert_eq!(s.usage.unwrap().output_tokens, 0);

    // Done alone still makes a well-formed stream.
    let names: Vec<String> =
        sse_events(&encode_events("m", &[StreamEvent::Done])).into_iter().map(|(n, _)| n.unwrap()).collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
}

#[test]
fn encoder_writes_a_signature_without_thinking_as_redacted_thinking() {
    // The decoder's reading of a `redacted_thinking` block (a signature and
    // no text) goes back out as one, whole, as `encode_response` writes it;
    // a signature after thinking text stays a `signature_delta`.
    let events = [
        StreamEvent::Start { id: "msg_1".into(), model: "c".into(), input_tokens: None },
        StreamEvent::ThinkingDelta { index: 0, text: "hmm".into() },
        StreamEvent::ThinkingSignature { index: 0, signature: "sig".into() },
        StreamEvent::PartEnd { index: 0 },
        StreamEvent::ThinkingDelta { index: 1, text: "".into() },
        StreamEvent::ThinkingSignature { index: 1, signature: "opaque".into() },
        StreamEvent::PartEnd { index: 1 },
        StreamEvent::TextDelta { index: 2, text: "ok".into() },
        StreamEvent::Done,
    ];
    let bytes = encode_events("claude-x", &events);
    let parsed: Vec<(String, Value)> =
        sse_events(&bytes).into_iter().map(|(n, d)| (n.unwrap(), serde_json::from_str(&d).unwrap())).collect();
    let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(parsed[3].1["delta"], json!({"type": "signature_delta", "signature": "sig"}));
    assert_eq!(
        parsed[5].1,
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "redacted_thinking", "data": "opaque"}})
    );
    let decoded = decode_sse(&bytes);
    assert!(decoded.contains(&StreamEvent::ThinkingSignature { index: 1, signature: "opaque".into() }));
    assert_eq!(summarize(&decoded).text[&2], "ok");
}

#[test]
fn encoder_error_types() {
    let cases = [
        ("overloaded_error", "overloaded_error"),
        ("rate_limit_error", "rate_limit_error"),
        ("invalid_request_error", "invalid_request_error"),
        ("authentication_error", "authentication_error"),
        ("permission_error", "permission_error"),
        ("not_found_error", "not_found_error"),
        ("request_too_large", "request_too_large"),
        ("api_error", "api_error"),
        ("timeout_error", "timeout_error"),
        ("UNAVAILABLE", "overloaded_error"),
        ("server_overloaded", "overloaded_error"),
        ("upstream_timeout", "timeout_error"),
        ("DEADLINE_EXCEEDED", "timeout_error"),
        ("529", "overloaded_error"),
        ("429", "rate_limit_error"),
        ("server_error", "api_error"),
        ("", "api_error"),
    ];
    for (kind, expected) in cases {
        let mut encoder = Encoder::new("m");
        let mut out = Vec::new();
        encoder.error(kind, "went wrong", &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("event: error\ndata: ") && text.ends_with("\n\n"));
        let (name, data) = sse_events(&out).pop().unwrap();
        assert_eq!(name.as_deref(), Some("error"));
        let data: Value = serde_json::from_str(&data).unwrap();
        assert_eq!(data, json!({"type": "error", "error": {"type": expected, "message": "went wrong"}}), "{kind}");
        // The stream ends after an error.
        out.clear();
        encoder.encode(&StreamEvent::Done, &mut out);
        assert!(out.is_empty());
    }
    // An in-band error event goes the same way.
    let bytes = encode_events(
        "m",
        &[StreamEvent::Error(StreamError { kind: "UNAVAILABLE".into(), message: "The model is overloaded".into() })],
    );
    let events = decode_sse(&bytes);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Error(StreamError {
            kind: "overloaded_error".into(),
            message: "The model is overloaded".into()
        }))
    );
}

fn event_strategy() -> impl Strategy<Value = StreamEvent> {
    let index = 0u32..4;
    prop_oneof![
        (".{0,4}", proptest::option::of(0u64..1000)).prop_map(|(id, input_tokens)| StreamEvent::Start {
            id,
            model: "m".into(),
            input_tokens
        }),
        (index.clone(), ".{0,4}").prop_map(|(index, text)| StreamEvent::TextDelta { index, text }),
        (index.clone(), ".{0,4}").prop_map(|(index, text)| StreamEvent::ThinkingDelta { index, text }),
        (index.clone(), ".{0,4}").prop_map(|(index, signature)| StreamEvent::ThinkingSignature { index, signature }),
        (index.clone(), ".{0,4}").prop_map(|(index, name)| StreamEvent::ToolCallStart {
            index,
            id: "t".into(),
            name,
            signature: None
        }),
        (index.clone(), ".{0,4}").prop_map(|(index, arguments)| StreamEvent::ToolCallDelta { index, arguments }),
        index.prop_map(|index| StreamEvent::PartEnd { index }),
        Just(StreamEvent::Finish { reason: FinishReason::Length, stop_sequence: None }),
        (0u64..100, 0u64..100).prop_map(|(i, o)| StreamEvent::Usage(TokenUsage {
            input_tokens: i,
            output_tokens: o,
            ..TokenUsage::default()
        })),
        Just(StreamEvent::Done),
    ]
}

proptest! {
    #[test]
    fn encoder_output_is_a_well_formed_stream(events in proptest::collection::vec(event_strategy(), 0..24)) {
        let bytes = encode_events("m", &events);
        let parsed: Vec<(String, Value)> = sse_events(&bytes)
            .into_iter()
            .map(|(n, d)| (n.unwrap(), serde_json::from_str(&d).unwrap()))
            .collect();
        if let Some((first, _)) = parsed.first() {
            prop_assert_eq!(first.as_str(), "message_start");
        }
        let mut next = 0u64;
        let mut open: Option<u64> = None;
        for (name, data) in &parsed {
            prop_assert_eq!(&data["type"], &json!(name));
            match name.as_str() {
                "content_block_start" => {
                    prop_assert!(open.is_none());
                    prop_assert_eq!(data["index"].as_u64(), Some(next));
                    open = Some(next);
                    next += 1;
                }
                "content_block_stop" => {
                    prop_assert_eq!(data["index"].as_u64(), open);
                    open = None;
                }
                "content_block_delta" => prop_assert!(data["index"].as_u64().unwrap() < next),
                "message_delta" | "message_stop" => prop_assert!(open.is_none()),
                _ => {}
            }
        }
        // The decoder accepts everything the encoder writes.
        let mut decoder = Decoder::default();
        let mut out = Vec::new();
        for (name, data) in &parsed {
            decoder.decode(Some(name), data.to_string().as_bytes(), &mut out).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------
// Errors, headers, models

#[test]
fn error_status_table() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "invalid_request_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "invalid_request_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (200, "api_error"),
    ] {
        assert_eq!(error_type_for_status(status), kind, "{status}");
    }
    for (kind, status) in [
        ("invalid_request_error", 400),
        ("authentication_error", 401),
        ("permission_error", 403),
        ("not_found_error", 404),
        ("request_too_large", 413),
        ("rate_limit_error", 429),
        ("api_error", 500),
        ("timeout_error", 504),
        ("overloaded_error", 529),
    ] {
        assert_eq!(status_for_error_type(kind), Some(status));
        assert_eq!(error_type_for_status(status), kind);
    }
    assert_eq!(status_for_error_type("server_error"), None);
}

fn assert_error_envelope(body: &Value, status: u16, what: &str) {
    assert_eq!(body["type"], "error", "{what}");
    let error = body["error"].as_object().unwrap();
    assert_eq!(error["type"], error_type_for_status(status), "{what}");
    assert_eq!(status_for_error_type(error["type"].as_str().unwrap()), Some(status), "{what}");
    assert!(!error["message"].as_str().unwrap().is_empty(), "{what}");
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"), "{what}");
}

#[test]
fn error_fixtures_match_status_table() {
    let mut seen = 0;
    for entry in std::fs::read_dir(format!("{FIXTURES}/errors")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".json") else { continue };
        let status: u16 = stem.split('_').next().unwrap().parse().unwrap();
        let body = fixture_json(&format!("errors/{name}"));
        match body.get("examples") {
            Some(examples) => {
                for (i, example) in examples.as_array().unwrap().iter().enumerate() {
                    assert_error_envelope(example, status, &format!("{name}[{i}]"));
                }
            }
            None => {
                assert_error_envelope(&body, status, &name);
                // The type is also in the file name.
                assert!(stem.ends_with(body["error"]["type"].as_str().unwrap()), "{name}");
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 9);
}

#[test]
fn error_headers_429() {
    let (status, headers, body) = http_message(&fixture("errors/headers_429.http"));
    assert_eq!(status, "HTTP/2 429");
    assert_eq!(error_type_for_status(429), "rate_limit_error");
    assert_eq!(headers["retry-after"].parse::<u64>().unwrap(), 23);
    assert!(headers["request-id"].starts_with("req_"));
    assert_eq!(headers["anthropic-ratelimit-input-tokens-remaining"], "0");
    for kind in ["requests", "tokens", "input-tokens", "output-tokens"] {
        for field in ["limit", "remaining", "reset"] {
            assert!(headers.contains_key(&format!("anthropic-ratelimit-{kind}-{field}")), "{kind}-{field}");
        }
    }
    assert!(body.is_empty());
}

#[test]
fn response_headers_200() {
    let (status, headers, _) = http_message(&fixture("response_headers_200.http"));
    assert_eq!(status, "HTTP/2 200");
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers["request-id"].starts_with("req_"));
    assert!(headers.contains_key("anthropic-organization-id"));
    for kind in ["requests", "tokens", "input-tokens", "output-tokens"] {
        assert!(headers[&format!("anthropic-ratelimit-{kind}-limit")].parse::<u64>().is_ok(), "{kind}");
        assert!(headers[&format!("anthropic-ratelimit-{kind}-remaining")].parse::<u64>().is_ok(), "{kind}");
        // RFC 3339 reset times.
        let reset = &headers[&format!("anthropic-ratelimit-{kind}-reset")];
        assert!(reset.len() == 20 && reset.ends_with('Z') && reset.as_bytes()[10] == b'T', "{kind}: {reset}");
    }
}

#[test]
fn models_list_shape() {
    let list = fixture_json("models_list.json");
    let data = list["data"].as_array().unwrap();
    assert!(!data.is_empty());
    for model in data {
        assert_eq!(model["type"], "model");
        assert!(model["id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(model["display_name"].as_str().is_some());
        assert!(model["created_at"].as_str().is_some_and(|s| s.ends_with('Z')));
    }
    assert_eq!(list["has_more"], json!(false));
    assert_eq!(list["first_id"], data[0]["id"]);
    assert_eq!(list["last_id"], data[data.len() - 1]["id"]);
}

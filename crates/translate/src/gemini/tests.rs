#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/wire/gemini/");

/// Every file under `fixtures/wire/gemini/`; each is read by a test below.
const COVERED: &[&str] = &[
    "NOTES.md",
    "batch_embed_contents_request.json",
    "batch_embed_contents_response.json",
    "count_tokens_request.json",
    "count_tokens_response.json",
    "embed_content_request.json",
    "embed_content_response.json",
    "errors/400_api_key_invalid.json",
    "errors/400_invalid_argument_unknown_field.json",
    "errors/403_permission_denied.json",
    "errors/404_not_found.json",
    "errors/429_resource_exhausted.json",
    "errors/500_internal.json",
    "errors/503_unavailable.json",
    "errors/streaming_error_without_alt_sse.json",
    "generate_content.http",
    "generate_content_request.json",
    "generate_content_request_function_response.json",
    "generate_content_request_json_schema.json",
    "generate_content_response_blocked_prompt.json",
    "generate_content_response_function_call.json",
    "generate_content_response_max_tokens.json",
    "generate_content_response_text.json",
    "models_list.json",
    "openai_compat_assistant_tool_call_with_signature.json",
    "openai_compat_chat_request.http",
    "openai_compat_chat_request.json",
    "stream_generate_content.http",
    "stream_generate_content_function_call.sse",
    "stream_generate_content_text.sse",
    "tool_config_variants.json",
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn encode(req: &ChatRequest) -> Value {
    serde_json::from_slice(&encode_request(req).unwrap()).unwrap()
}

fn encode_err(req: &ChatRequest) -> TranslateError {
    encode_request(req).unwrap_err()
}

fn user(parts: Vec<Part>) -> Message {
    Message { role: Role::User, parts }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message { role: Role::Assistant, parts }
}

fn call(id: &str, name: &str, arguments: &str, signature: Option<&str>) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
        signature: signature.map(str::to_string),
    })
}

fn result(call_id: &str, text: &str, is_error: bool) -> Part {
    Part::ToolResult(ToolResult { call_id: call_id.into(), content: vec![Part::text(text)], is_error })
}

fn weather_tool(parameters: Value) -> Tool {
    Tool {
        name: "get_weather".into(),
        description: Some("Get the current weather for a city.".into()),
        parameters,
        strict: Some(true),
    }
}

/// The weather schema as a JSON-Schema client would send it: extra
/// keywords Gemini's `parameters` subset rejects, which the encoder strips.
fn weather_schema_from_client() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}
        },
        "required": ["location"],
        "additionalProperties": false
    })
}

/// `data:` payloads of an SSE body whose events end with `\r\n\r\n`.
fn sse_payloads(body: &[u8]) -> Vec<Vec<u8>> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.contains("\r\n\r\n"), "Gemini SSE fixtures use CRLF separators");
    text.split("\r\n\r\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let data: Vec<&str> = event
                .split("\r\n")
                .filter_map(|line| line.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            data.join("\n").into_bytes()
        })
        .collect()
}

fn run_stream(prefix: &str, payloads: &[Vec<u8>]) -> Vec<StreamEvent> {
    let mut decoder = Decoder::new(prefix);
    let mut out = Vec::new();
    for p in payloads {
        decoder.decode(None, p, &mut out).unwrap();
    }
    decoder.end(&mut out);
    out
}

fn stream_text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn stream_call_ids(events: &[StreamEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallStart { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

fn response_call_ids(resp: &ChatResponse) -> Vec<String> {
    resp.parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(c.id.clone()),
            _ => None,
        })
        .collect()
}

/// An `.http` fixture: request line, headers (lower-case names), body.
fn parse_http(name: &str) -> (String, String, Vec<(String, String)>, Value) {
    let text = String::from_utf8(fixture(name)).unwrap();
    let (head, body) = text.split_once("\n\n").unwrap();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_string();
    let target = request_line.next().unwrap().to_string();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    (method, target, headers, serde_json::from_str(body.trim()).unwrap())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

// ---------------------------------------------------------------------------
// Coverage

fn list_files(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().unwrap().is_dir() {
            list_files(&entry.path(), &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}

#[test]
fn every_fixture_file_is_exercised() {
    let mut files = Vec::new();
    list_files(std::path::Path::new(DIR), "", &mut files);
    for f in &files {
        assert!(COVERED.contains(&f.as_str()), "fixture {f} is not exercised by a gemini test");
    }
    for f in COVERED {
        assert!(files.iter().any(|x| x == f), "{f} listed but missing");
    }
}

#[test]
fn notes_describe_the_paths_and_framing_used() {
    let notes = String::from_utf8(fixture("NOTES.md")).unwrap();
    assert!(notes.contains(&chat_path("{model}", false)));
    assert!(notes.contains(&chat_path("{model}", true)));
    assert!(notes.contains(&embed_path("{model}")));
    assert!(notes.contains("x-goog-api-key"));
    assert!(notes.contains("\\r\\n\\r\\n"));
}

// ---------------------------------------------------------------------------
// URLs

#[test]
fn http_fixtures_match_paths_header_and_body() {
    for (name, stream) in [("generate_content.http", false), ("stream_generate_content.http", true)] {
        let (method, target, headers, body) = parse_http(name);
        assert_eq!(method, "POST");
        let path = target.strip_prefix("/v1beta").unwrap();
        let model = path.strip_prefix("/models/").unwrap().split(':').next().unwrap();
        assert_eq!(path, chat_path(model, stream), "{name}");
        assert!(header(&headers, "x-goog-api-key").is_some(), "{name}");
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        // The body never names the model; it is the canonical request encoded.
        let text = body["contents"][0]["parts"][0]["text"].as_str().unwrap();
        let req = ChatRequest { stream, messages: vec![user(vec![Part::text(text)])], ..Default::default() };
        assert_eq!(encode(&req), body, "{name}");
    }
    assert_eq!(chat_path("gemini-2.5-flash", false), "/models/gemini-2.5-flash:generateContent");
    assert_eq!(chat_path("gemini-2.0-flash", true), "/models/gemini-2.0-flash:streamGenerateContent?alt=sse");
    assert_eq!(embed_path("gemini-embedding-001"), "/models/gemini-embedding-001:batchEmbedContents");
}

#[test]
fn openai_compat_fixtures_use_another_path_and_bearer_auth() {
    // The OpenAI-compatible endpoint is served by the OpenAI format; this
    // module's paths are the native ones.
    let (_, target, headers, body) = parse_http("openai_compat_chat_request.http");
    assert_eq!(target, "/v1beta/openai/chat/completions");
    assert!(header(&headers, "authorization").unwrap().starts_with("Bearer "));
    assert!(header(&headers, "x-goog-api-key").is_none());
    assert_eq!(body["model"], "gemini-2.5-flash");
    assert!(!chat_path("gemini-2.5-flash", false).contains("openai"));
}

// ---------------------------------------------------------------------------
// Requests

#[test]
fn generate_content_request_fixture() {
    let req = ChatRequest {
        model: "ignored".into(),
        system: vec![SystemBlock {
            text: "You are a helpful weather assistant. Be concise.".into(),
            cache_control: None,
        }],
        messages: vec![
            user(vec![
                Part::text("Which city is in this photo, and what is the weather there?"),
                Part::Image(Image::Base64 {
                    media_type: "image/png".into(),
                    data:
                        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
                            .into(),
                    detail: Some("high".into()),
                }),
            ]),
            assistant(vec![Part::text("That looks like Paris.")]),
            user(vec![Part::text("Great. What's the weather there now?")]),
        ],
        tools: vec![weather_tool(weather_schema_from_client())],
        tool_choice: Some(ToolChoice::Auto),
        max_tokens: Some(1024),
        temperature: Some(0.2),
        top_p: Some(0.95),
        top_k: Some(40),
        n: Some(1),
        stop: vec!["END_OF_ANSWER".into()],
        reasoning: Some(Reasoning { effort: None, budget_tokens: Some(1024) }),
        user: Some("end-user-1".into()),
        ..Default::default()
    };
    let mut expected = fixture_json("generate_content_request.json");
    // No canonical field for safety settings or a text/plain MIME type, and
    // a thinking budget always asks for the thoughts.
    let root = expected.as_object_mut().unwrap();
    root.remove("safetySettings");
    let gc = root["generationConfig"].as_object_mut().unwrap();
    gc.remove("responseMimeType");
    gc["thinkingConfig"]["includeThoughts"] = json!(true);
    assert_eq!(encode(&req), expected);
}

#[test]
fn function_response_fixture_with_results_in_call_order() {
    let sig = fixture_json("generate_content_request_function_response.json")["contents"][1]["parts"][0]
        ["thoughtSignature"]
        .as_str()
        .unwrap()
        .to_string();
    let req = ChatRequest {
        messages: vec![
            user(vec![Part::text("What's the weather in Paris and in London?")]),
            assistant(vec![
                Part::Thinking { text: "Two cities: call twice.".into(), signature: Some("thinking-sig".into()) },
                Part::text(""),
                call("call_p", "get_weather", r#"{"location":"Paris"}"#, Some(&sig)),
                call("call_l", "get_weather", r#"{"location": "London"}"#, None),
            ]),
            // Results arrive out of order: Gemini links them by order.
            user(vec![
                result("call_l", r#"{"result":{"temperature":12,"unit":"celsius","conditions":"overcast"}}"#, false),
                result("call_p", r#"{"result":{"temperature":15,"unit":"celsius","conditions":"light rain"}}"#, false),
            ]),
        ],
        tools: vec![weather_tool(weather_schema_from_client())],
        ..Default::default()
    };
    assert_eq!(encode(&req), fixture_json("generate_content_request_function_response.json"));
}

#[test]
fn json_schema_fixture() {
    let expected = fixture_json("generate_content_request_json_schema.json");
    let schema = expected["generationConfig"]["responseSchema"].clone();
    let req = ChatRequest {
        messages: vec![user(vec![Part::text("List two cookie recipes.")])],
        response_format: Some(ResponseFormat::JsonSchema { name: "recipes".into(), schema, strict: Some(true) }),
        ..Default::default()
    };
    assert_eq!(encode(&req), expected);

    let req = ChatRequest { response_format: Some(ResponseFormat::JsonObject), ..req };
    let body = encode(&req);
    assert_eq!(body["generationConfig"], json!({"responseMimeType": "application/json"}));
}

#[test]
fn tool_config_variants_fixture() {
    let variants = fixture_json("tool_config_variants.json");
    let cases = [
        ("auto", ToolChoice::Auto),
        ("none", ToolChoice::None),
        ("any", ToolChoice::Required),
        ("forced_one_function", ToolChoice::Named("get_weather".into())),
    ];
    for (key, choice) in cases {
        let req = ChatRequest {
            messages: vec![user(vec![Part::text("hi")])],
            tools: vec![weather_tool(weather_schema_from_client())],
            tool_choice: Some(choice),
            ..Default::default()
        };
        assert_eq!(encode(&req)["toolConfig"], variants[key], "{key}");
    }
    // VALIDATED has no canonical equivalent and is never produced.
    assert_eq!(variants["validated"]["functionCallingConfig"]["mode"], "VALIDATED");
}

#[test]
fn count_tokens_fixtures_share_the_contents_shape() {
    let expected = fixture_json("count_tokens_request.json");
    let req = ChatRequest {
        messages: vec![user(vec![Part::text("The quick brown fox jumps over the lazy dog.")])],
        ..Default::default()
    };
    assert_eq!(encode(&req), expected);
    let counted = fixture_json("count_tokens_response.json");
    assert_eq!(counted["totalTokens"].as_u64(), Some(10));
}

#[test]
fn openai_compat_reasoning_maps_to_thinking_config() {
    let compat = fixture_json("openai_compat_chat_request.json");
    let base = ChatRequest {
        system: vec![SystemBlock {
            text: compat["messages"][0]["content"].as_str().unwrap().into(),
            cache_control: None,
        }],
        messages: vec![user(vec![Part::text(compat["messages"][1]["content"].as_str().unwrap())])],
        ..Default::default()
    };
    // `reasoning_effort: low` is a 1024-token budget on Gemini's own endpoint.
    let effort = compat["reasoning_effort"].as_str().unwrap().to_string();
    let req = ChatRequest { reasoning: Some(Reasoning { effort: Some(effort), budget_tokens: None }), ..base.clone() };
    let body = encode(&req);
    assert_eq!(body["generationConfig"]["thinkingConfig"], json!({"thinkingBudget": 1024, "includeThoughts": true}));
    assert_eq!(body["systemInstruction"], json!({"parts": [{"text": "You are a helpful assistant."}]}));

    // An explicit budget is the `thinking_config` of `extra_body.google`.
    let tc = &compat["extra_body"]["google"]["thinking_config"];
    let budget = tc["thinking_budget"].as_u64().unwrap() as u32;
    let req =
        ChatRequest { reasoning: Some(Reasoning { effort: Some("high".into()), budget_tokens: Some(budget) }), ..base };
    let body = encode(&req);
    assert_eq!(
        body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": tc["thinking_budget"], "includeThoughts": tc["include_thoughts"]})
    );

    for (effort, budget) in [("medium", 8192), ("high", 24576)] {
        let req = ChatRequest {
            reasoning: Some(Reasoning { effort: Some(effort.into()), budget_tokens: None }),
            ..req.clone()
        };
        assert_eq!(encode(&req)["generationConfig"]["thinkingConfig"]["thinkingBudget"], budget);
    }
    let req = ChatRequest { reasoning: Some(Reasoning { effort: Some("extreme".into()), budget_tokens: None }), ..req };
    assert_eq!(encode_err(&req).field, "reasoning_effort");
}

#[test]
fn openai_compat_signature_travels_as_thought_signature() {
    let fx = fixture_json("openai_compat_assistant_tool_call_with_signature.json");
    let tc = &fx["tool_calls"][0];
    let sig = tc["extra_content"]["google"]["thought_signature"].as_str().unwrap();
    let req = ChatRequest {
        messages: vec![
            user(vec![Part::text("Weather in Paris?")]),
            assistant(vec![call(
                tc["id"].as_str().unwrap(),
                tc["function"]["name"].as_str().unwrap(),
                tc["function"]["arguments"].as_str().unwrap(),
                Some(sig),
            )]),
            user(vec![result(tc["id"].as_str().unwrap(), "15C, light rain", false)]),
        ],
        ..Default::default()
    };
    let body = encode(&req);
    assert_eq!(
        body["contents"][1],
        json!({"role": "model", "parts": [{
            "functionCall": {"name": "get_weather", "args": {"location": "Paris"}},
            "thoughtSignature": sig
        }]})
    );
    assert_eq!(
        body["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "get_weather", "response": {"result": "15C, light rain"}}})
    );
    // Gemini has no ids: none is sent.
    assert!(!body.to_string().contains("function-call-9871304519123523463"));
}

#[test]
fn tool_results_text_error_and_object() {
    let req = ChatRequest {
        messages: vec![
            assistant(vec![call("a", "f", "", None), call("b", "g", "{}", None), call("c", "h", " ", None)]),
            user(vec![
                result("a", "plain text", false),
                result("b", "boom", true),
                result("c", r#"{"ok": true}"#, false),
                Part::text("and now?"),
            ]),
        ],
        ..Default::default()
    };
    let body = encode(&req);
    assert_eq!(body["contents"][0]["parts"][0]["functionCall"]["args"], json!({}));
    assert_eq!(
        body["contents"][1]["parts"],
        json!([
            {"functionResponse": {"name": "f", "response": {"result": "plain text"}}},
            {"functionResponse": {"name": "g", "response": {"error": "boom"}}},
            {"functionResponse": {"name": "h", "response": {"ok": true}}},
            {"text": "and now?"}
        ])
    );
}

#[test]
fn results_split_over_user_messages_join_one_turn() {
    let req = ChatRequest {
        messages: vec![
            assistant(vec![call("a", "f", "{}", None), call("b", "g", "{}", None)]),
            user(vec![result("b", "second", false)]),
            user(vec![result("a", "first", false), Part::text("thanks")]),
            user(vec![Part::text("one more")]),
        ],
        ..Default::default()
    };
    assert_eq!(
        encode(&req)["contents"],
        json!([
            {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {}}},
                {"functionCall": {"name": "g", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"result": "first"}}},
                {"functionResponse": {"name": "g", "response": {"result": "second"}}},
                {"text": "thanks"}
            ]},
            {"role": "user", "parts": [{"text": "one more"}]}
        ])
    );
}

#[test]
fn request_errors_name_the_field() {
    let base = ChatRequest { messages: vec![user(vec![Part::text("hi")])], ..Default::default() };

    let req = ChatRequest {
        messages: vec![user(vec![Part::text("hi")]), assistant(vec![call("a", "f", "{nope", None)])],
        ..base.clone()
    };
    assert_eq!(encode_err(&req).field, "messages[1].content[0].arguments");
    let req = ChatRequest { messages: vec![assistant(vec![call("a", "f", "[1]", None)])], ..base.clone() };
    assert_eq!(encode_err(&req).field, "messages[0].content[0].arguments");

    let req = ChatRequest { messages: vec![user(vec![result("missing", "x", false)])], ..base.clone() };
    assert_eq!(encode_err(&req).field, "messages[0].content[0].tool_call_id");
    // The call must come earlier.
    let req = ChatRequest {
        messages: vec![user(vec![result("a", "x", false)]), assistant(vec![call("a", "f", "{}", None)])],
        ..base.clone()
    };
    assert_eq!(encode_err(&req).field, "messages[0].content[0].tool_call_id");

    let image = Part::Image(Image::Url { url: "https://x/y.png".into(), detail: None });
    let req = ChatRequest {
        messages: vec![
            assistant(vec![call("a", "f", "{}", None)]),
            user(vec![Part::ToolResult(ToolResult {
                call_id: "a".into(),
                content: vec![Part::text("t"), image],
                is_error: false,
            })]),
        ],
        ..base.clone()
    };
    assert_eq!(encode_err(&req).field, "messages[1].content[0].content[1]");

    let req = ChatRequest { parallel_tool_calls: Some(false), ..base.clone() };
    assert_eq!(encode_err(&req), TranslateError::unsupported("parallel_tool_calls", Format::Gemini));
    let req = ChatRequest { parallel_tool_calls: Some(true), ..base.clone() };
    assert!(encode_request(&req).is_ok());

    let req = ChatRequest { n: Some(2), ..base.clone() };
    assert_eq!(encode_err(&req).field, "n");
    let req = ChatRequest { seed: Some(i64::MAX), ..base.clone() };
    assert_eq!(encode_err(&req).field, "seed");

    let tool = weather_tool(json!({"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {}}}));
    let req = ChatRequest { tools: vec![weather_tool(json!({})), tool], ..base.clone() };
    assert_eq!(encode_err(&req).field, "tools[1].function.parameters");
    let req = ChatRequest {
        response_format: Some(ResponseFormat::JsonSchema {
            name: "x".into(),
            schema: json!({"$ref": "#/x"}),
            strict: None,
        }),
        ..base.clone()
    };
    assert_eq!(encode_err(&req).field, "response_format.json_schema.schema");

    let req = ChatRequest { tool_choice: Some(ToolChoice::Required), ..base.clone() };
    assert_eq!(encode_err(&req).field, "tool_choice");
    let req = ChatRequest { tool_choice: Some(ToolChoice::None), ..base.clone() };
    assert!(encode(&req).get("toolConfig").is_none());

    let req = ChatRequest { messages: vec![user(vec![call("a", "f", "{}", None)])], ..base.clone() };
    assert_eq!(encode_err(&req).field, "messages[0].content[0]");
    let req = ChatRequest { messages: vec![assistant(vec![result("a", "x", false)])], ..base };
    assert_eq!(encode_err(&req).field, "messages[0].content[0]");
}

#[test]
fn image_urls_become_file_data_with_a_guessed_type() {
    let cases = [
        ("https://x.test/a.png", "image/png"),
        ("https://x.test/a.JPG", "image/jpeg"),
        ("https://x.test/a.jpeg?size=2", "image/jpeg"),
        ("https://x.test/a.gif#frag", "image/gif"),
        ("gs://bucket/a.webp", "image/webp"),
        ("https://x.test/a", "image/jpeg"),
        ("https://x.test/file.bin", "image/jpeg"),
        ("https://generativelanguage.googleapis.com/v1beta/files/abc", "image/jpeg"),
    ];
    for (url, mime) in cases {
        let req = ChatRequest {
            messages: vec![user(vec![Part::Image(Image::Url { url: url.into(), detail: Some("low".into()) })])],
            ..Default::default()
        };
        assert_eq!(encode(&req)["contents"][0]["parts"][0], json!({"fileData": {"mimeType": mime, "fileUri": url}}));
    }
    let req = ChatRequest {
        messages: vec![user(vec![Part::Image(Image::Url { url: "data:image/webp;base64,UklG".into(), detail: None })])],
        ..Default::default()
    };
    assert_eq!(
        encode(&req)["contents"][0]["parts"][0],
        json!({"inlineData": {"mimeType": "image/webp", "data": "UklG"}})
    );
}

#[test]
fn sampling_fields_and_ignored_hints() {
    let req = ChatRequest {
        messages: vec![user(vec![Part::text("hi")])],
        seed: Some(7),
        presence_penalty: Some(0.5),
        frequency_penalty: Some(-0.5),
        response_format: Some(ResponseFormat::Text),
        ..Default::default()
    };
    let body = encode(&req);
    assert_eq!(body["generationConfig"], json!({"seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5}));
    // `user`, `stream`, `include_usage`, `model` and cache hints change nothing.
    let with_hints = ChatRequest {
        model: "m".into(),
        user: Some("u".into()),
        stream: true,
        include_usage: true,
        messages: vec![user(vec![Part::Text { text: "hi".into(), cache_control: Some(json!({"type": "ephemeral"})) }])],
        ..req.clone()
    };
    assert_eq!(encode_request(&with_hints).unwrap(), encode_request(&req).unwrap());
    // Nothing set: only the contents.
    let bare = ChatRequest { messages: vec![user(vec![Part::text("hi")])], ..Default::default() };
    assert_eq!(encode(&bare), json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}));
}

#[test]
fn thinking_only_and_empty_messages_are_skipped() {
    let req = ChatRequest {
        messages: vec![
            user(vec![Part::text("hi")]),
            assistant(vec![Part::Thinking { text: "hmm".into(), signature: Some("s".into()) }]),
            assistant(vec![Part::text("hello")]),
        ],
        ..Default::default()
    };
    assert_eq!(
        encode(&req)["contents"],
        json!([{"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "hello"}]}])
    );
}

#[test]
fn schemas_are_sanitised_where_they_are_schemas() {
    let params = json!({
        "type": "object",
        "strict": true,
        "properties": {
            "additionalProperties": {"type": ["string", "null"], "description": "a property with a keyword's name"},
            "nested": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"x": {"type": "array", "items": {"type": "integer", "additionalProperties": false}}}
            },
            "choice": {"anyOf": [{"type": "string"}, {"type": "null", "$schema": "x"}]},
            "multi": {"type": ["string", "integer"]}
        },
        "definitions": {"unused": {}}
    });
    let req = ChatRequest {
        messages: vec![user(vec![Part::text("hi")])],
        tools: vec![
            weather_tool(params),
            Tool {
                name: "now".into(),
                description: None,
                parameters: json!({"type": "object", "properties": {}}),
                strict: None,
            },
            Tool { name: "ping".into(), description: Some(String::new()), parameters: Value::Null, strict: None },
        ],
        ..Default::default()
    };
    let body = encode(&req);
    let decls = &body["tools"][0]["functionDeclarations"];
    assert_eq!(
        decls[0]["parameters"],
        json!({
            "type": "object",
            "properties": {
                "additionalProperties": {"type": "string", "nullable": true, "description": "a property with a keyword's name"},
                "nested": {"type": "object", "properties": {"x": {"type": "array", "items": {"type": "integer"}}}},
                "choice": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "multi": {"type": ["string", "integer"]}
            }
        })
    );
    // Tools without arguments are declared without a schema.
    assert_eq!(decls[1], json!({"name": "now"}));
    assert_eq!(decls[2], json!({"name": "ping"}));
    assert_eq!(body["tools"].as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------
// Responses

#[test]
fn text_response_fixture() {
    let resp = decode_response(&fixture("generate_content_response_text.json"), "r1").unwrap();
    assert_eq!(resp.id, "W7qsaMLlNPqrvdIP-ZzgwAk");
    assert_eq!(resp.model, "gemini-2.5-flash");
    assert_eq!(resp.text(), "It's about 15°C with light rain in Paris right now, so bring an umbrella.");
    assert_eq!(resp.parts.len(), 1);
    assert_eq!(resp.finish, Some(FinishReason::Stop));
    assert_eq!(resp.stop_sequence, None);
    assert_eq!(
        resp.usage,
        Some(TokenUsage {
            input_tokens: 14,
            output_tokens: 21 + 62,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            reasoning_tokens: 62
        })
    );
}

#[test]
fn function_call_response_fixture() {
    let body = fixture("generate_content_response_function_call.json");
    let wire = fixture_json("generate_content_response_function_call.json");
    let resp = decode_response(&body, "abc").unwrap();
    assert_eq!(resp.id, "mLusaPrdBpG1vdIPrL2h2Qk");
    assert_eq!(resp.finish, Some(FinishReason::ToolCalls));
    let sig = wire["candidates"][0]["content"]["parts"][0]["thoughtSignature"].as_str().unwrap();
    assert_eq!(
        resp.parts,
        vec![
            call("call_abc_0", "get_weather", r#"{"location":"Paris"}"#, Some(sig)),
            call("call_abc_1", "get_weather", r#"{"location":"London"}"#, None),
        ]
    );
    let usage = resp.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens, usage.reasoning_tokens), (71, 115, 85));
}

#[test]
fn max_tokens_response_fixture() {
    let resp = decode_response(&fixture("generate_content_response_max_tokens.json"), "x").unwrap();
    assert_eq!(resp.finish, Some(FinishReason::Length));
    assert_eq!(resp.model, "gemini-2.0-flash");
    assert_eq!(resp.text(), "Paris is currently experiencing light rain with temperatures around");
    assert_eq!(resp.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((14, 10)));
}

#[test]
fn blocked_prompt_response_fixture() {
    let resp = decode_response(&fixture("generate_content_response_blocked_prompt.json"), "x").unwrap();
    assert!(resp.parts.is_empty());
    assert_eq!(resp.finish, Some(FinishReason::ContentFilter));
    assert_eq!(resp.id, "qLysaJvKJ4m1vdIP5Y6XgQk");
    assert_eq!(resp.usage.map(|u| (u.input_tokens, u.output_tokens)), Some((9, 0)));
}

#[test]
fn finish_reasons_map() {
    let cases = [
        ("STOP", FinishReason::Stop),
        ("MAX_TOKENS", FinishReason::Length),
        ("SAFETY", FinishReason::ContentFilter),
        ("RECITATION", FinishReason::ContentFilter),
        ("BLOCKLIST", FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", FinishReason::ContentFilter),
        ("SPII", FinishReason::ContentFilter),
        ("IMAGE_SAFETY", FinishReason::ContentFilter),
        ("LANGUAGE", FinishReason::ContentFilter),
        ("MALFORMED_FUNCTION_CALL", FinishReason::Stop),
        ("UNEXPECTED_TOOL_CALL", FinishReason::Stop),
        ("TOO_MANY_TOOL_CALLS", FinishReason::Stop),
        ("OTHER", FinishReason::Stop),
        ("FINISH_REASON_UNSPECIFIED", FinishReason::Stop),
        ("SOMETHING_NEW", FinishReason::Stop),
    ];
    for (reason, expected) in cases {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]});
        let resp = decode_response(body.to_string().as_bytes(), "p").unwrap();
        assert_eq!(resp.finish, Some(expected), "{reason}");
    }
}

#[test]
fn thoughts_usage_and_ids_in_a_response() {
    let body = json!({
        "candidates": [{
            "content": {"role": "model", "parts": [
                {"text": "Let me ", "thought": true},
                {"text": "think.", "thought": true, "thoughtSignature": "sig-1"},
                {"text": "More thought.", "thought": true},
                {"text": "Answer: "},
                {"text": "42", "thoughtSignature": "ignored"},
                {"text": ""},
                {"functionCall": {"name": "f", "args": {"b": [1, 2], "a": {"c": null}}, "id": "given-id"}},
                {"functionCall": {"name": "g"}},
                {"executableCode": {"language": "PYTHON", "code": "print(1)"}}
            ]},
            "finishReason": "STOP"
        }],
        "usageMetadata": {
            "promptTokenCount": 100, "candidatesTokenCount": 10, "thoughtsTokenCount": 5,
            "cachedContentTokenCount": 40, "toolUsePromptTokenCount": 7, "totalTokenCount": 122
        },
        "responseId": "rid", "modelVersion": "gemini-x"
    });
    let resp = decode_response(body.to_string().as_bytes(), "p").unwrap();
    assert_eq!(
        resp.parts,
        vec![
            Part::Thinking { text: "Let me think.".into(), signature: Some("sig-1".into()) },
            Part::Thinking { text: "More thought.".into(), signature: None },
            Part::text("Answer: 42"),
            call("given-id", "f", r#"{"a":{"c":null},"b":[1,2]}"#, None),
            call("call_p_1", "g", "{}", None),
        ]
    );
    assert_eq!(resp.finish, Some(FinishReason::ToolCalls));
    assert_eq!(
        resp.usage,
        Some(TokenUsage {
            input_tokens: 107,
            output_tokens: 15,
            cache_read_tokens: 40,
            cache_write_tokens: 0,
            reasoning_tokens: 5
        })
    );
}

#[test]
fn error_bodies_are_errors() {
    for name in COVERED.iter().filter(|n| n.starts_with("errors/")) {
        let err = decode_response(&fixture(name), "p").unwrap_err();
        assert_eq!(err.field, "error", "{name}");
        assert!(err.message.contains("Gemini returned an error"), "{name}: {}", err.message);
    }
    assert_eq!(decode_response(b"not json", "p").unwrap_err().field, "body");
    assert!(decode_response(b"[1]", "p").is_err());
    assert!(decode_response(b"null", "p").is_err());
    let empty = decode_response(b"{}", "p").unwrap();
    assert!(empty.parts.is_empty() && empty.finish.is_none() && empty.usage.is_none());
}

// ---------------------------------------------------------------------------
// Streams

#[test]
fn text_stream_fixture() {
    let payloads = sse_payloads(&fixture("stream_generate_content_text.sse"));
    assert_eq!(payloads.len(), 3);
    let events = run_stream("s", &payloads);
    assert_eq!(
        events.first(),
        Some(&StreamEvent::Start {
            id: "W7qsaMLlNPqrvdIP-ZzgwAk".into(),
            model: "gemini-2.0-flash".into(),
            input_tokens: None
        })
    );
    assert_eq!(stream_text(&events), "It's about 15°C with light rain in Paris right now, so bring an umbrella.");
    // One text part at index 0.
    assert!(events.iter().all(|e| !matches!(e, StreamEvent::TextDelta { index, .. } if *index != 0)));
    let final_usage = TokenUsage { input_tokens: 14, output_tokens: 21, ..Default::default() };
    let n = events.len();
    assert_eq!(
        events[n - 4..],
        [
            StreamEvent::PartEnd { index: 0 },
            StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None },
            StreamEvent::Usage(final_usage),
            StreamEvent::Done,
        ]
    );
    // Usage is emitted when it changes: the partial one once, then the final.
    let usages: Vec<_> = events.iter().filter(|e| matches!(e, StreamEvent::Usage(_))).collect();
    assert_eq!(usages.len(), 2);
    assert_eq!(usages[0], &StreamEvent::Usage(TokenUsage { input_tokens: 14, ..Default::default() }));
}

#[test]
fn function_call_stream_fixture() {
    let payloads = sse_payloads(&fixture("stream_generate_content_function_call.sse"));
    let events = run_stream("abc", &payloads);
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: "mLusaPrdBpG1vdIPrL2h2Qk".into(),
                model: "gemini-2.0-flash".into(),
                input_tokens: None
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_abc_0".into(),
                name: "get_weather".into(),
                signature: None
            },
            StreamEvent::ToolCallDelta { index: 0, arguments: r#"{"location":"Paris"}"#.into() },
            StreamEvent::PartEnd { index: 0 },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "call_abc_1".into(),
                name: "get_weather".into(),
                signature: None
            },
            StreamEvent::ToolCallDelta { index: 1, arguments: r#"{"location":"London"}"#.into() },
            StreamEvent::PartEnd { index: 1 },
            StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None },
            StreamEvent::Usage(TokenUsage { input_tokens: 71, output_tokens: 30, ..Default::default() }),
            StreamEvent::Done,
        ]
    );
}

#[test]
fn stream_and_response_give_the_same_ids() {
    let resp = decode_response(&fixture("generate_content_response_function_call.json"), "same").unwrap();
    let events = run_stream("same", &sse_payloads(&fixture("stream_generate_content_function_call.sse")));
    assert_eq!(response_call_ids(&resp), stream_call_ids(&events));
    // The whole response body as one chunk gives the same parts too.
    let events = run_stream("same", &[fixture("generate_content_response_function_call.json")]);
    assert_eq!(response_call_ids(&resp), stream_call_ids(&events));
    let sigs: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallStart { signature, .. } => Some(signature.is_some()),
            _ => None,
        })
        .collect();
    assert_eq!(sigs, vec![true, false]);
}

#[test]
fn stream_thinking_text_and_calls_get_their_own_indexes() {
    let chunks = [
        json!({"candidates": [{"content": {"parts": [{"text": "Hmm ", "thought": true}]}}], "responseId": "r", "modelVersion": "m"}),
        json!({"candidates": [{"content": {"parts": [{"text": "ok.", "thought": true, "thoughtSignature": "sig"}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": "Hello"}, {"text": ""}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": " world"}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "fsig"}]}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": "after"}]}, "finishReason": "MAX_TOKENS"}]}),
    ];
    let payloads: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_string().into_bytes()).collect();
    let events = run_stream("p", &payloads);
    assert_eq!(
        events,
        vec![
            StreamEvent::Start { id: "r".into(), model: "m".into(), input_tokens: None },
            StreamEvent::ThinkingDelta { index: 0, text: "Hmm ".into() },
            StreamEvent::ThinkingDelta { index: 0, text: "ok.".into() },
            StreamEvent::ThinkingSignature { index: 0, signature: "sig".into() },
            StreamEvent::PartEnd { index: 0 },
            StreamEvent::TextDelta { index: 1, text: "Hello".into() },
            StreamEvent::TextDelta { index: 1, text: " world".into() },
            StreamEvent::PartEnd { index: 1 },
            StreamEvent::ToolCallStart {
                index: 2,
                id: "call_p_0".into(),
                name: "f".into(),
                signature: Some("fsig".into())
            },
            StreamEvent::ToolCallDelta { index: 2, arguments: "{}".into() },
            StreamEvent::PartEnd { index: 2 },
            StreamEvent::TextDelta { index: 3, text: "after".into() },
            StreamEvent::PartEnd { index: 3 },
            StreamEvent::Finish { reason: FinishReason::Length, stop_sequence: None },
            StreamEvent::Done,
        ]
    );
}

#[test]
fn stream_without_finish_ends_with_nothing() {
    let payloads = sse_payloads(&fixture("stream_generate_content_text.sse"));
    let mut decoder = Decoder::new("p");
    let mut out = Vec::new();
    for p in &payloads[..2] {
        decoder.decode(None, p, &mut out).unwrap();
    }
    let mut tail = Vec::new();
    decoder.end(&mut tail);
    assert!(tail.is_empty());
    assert!(!out.iter().any(|e| matches!(e, StreamEvent::Finish { .. } | StreamEvent::Done)));
}

#[test]
fn stream_usage_after_finish_and_blocked_prompt() {
    let chunks = [
        json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]}),
        json!({"usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1}}),
    ];
    let payloads: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_string().into_bytes()).collect();
    let events = run_stream("p", &payloads);
    let n = events.len();
    assert_eq!(events[n - 3], StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None });
    assert_eq!(
        events[n - 2],
        StreamEvent::Usage(TokenUsage { input_tokens: 3, output_tokens: 1, ..Default::default() })
    );
    assert_eq!(events[n - 1], StreamEvent::Done);

    let blocked = fixture("generate_content_response_blocked_prompt.json");
    let events = run_stream("p", &[blocked]);
    assert_eq!(
        events[1..],
        [
            StreamEvent::Finish { reason: FinishReason::ContentFilter, stop_sequence: None },
            StreamEvent::Usage(TokenUsage { input_tokens: 9, ..Default::default() }),
            StreamEvent::Done,
        ]
    );
}

#[test]
fn stream_error_chunks_become_error_events() {
    for name in COVERED.iter().filter(|n| n.starts_with("errors/") && !n.contains("without_alt_sse")) {
        let wire = fixture_json(name);
        let mut decoder = Decoder::new("p");
        let mut out = Vec::new();
        decoder.decode(None, &fixture(name), &mut out).unwrap();
        decoder.end(&mut out);
        assert_eq!(
            out,
            vec![StreamEvent::Error(StreamError {
                kind: wire["error"]["status"].as_str().unwrap().into(),
                message: wire["error"]["message"].as_str().unwrap().into(),
            })],
            "{name}"
        );
    }
    // After text has begun: the open part ends first, nothing follows.
    let mut decoder = Decoder::new("p");
    let mut out = Vec::new();
    decoder.decode(None, br#"{"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}"#, &mut out).unwrap();
    decoder.decode(None, br#"{"error":{"code":503,"message":"overloaded"}}"#, &mut out).unwrap();
    decoder.decode(None, br#"{"candidates":[{"finishReason":"STOP"}]}"#, &mut out).unwrap();
    decoder.end(&mut out);
    assert_eq!(
        out[2..],
        [
            StreamEvent::PartEnd { index: 0 },
            StreamEvent::Error(StreamError { kind: "503".into(), message: "overloaded".into() })
        ]
    );
}

#[test]
fn stream_rejects_invalid_json_and_skips_blank_data() {
    let mut decoder = Decoder::new("p");
    let mut out = Vec::new();
    assert!(decoder.decode(None, b"  \r\n", &mut out).is_ok());
    assert!(out.is_empty());
    assert_eq!(decoder.decode(None, b"{\"candidates\":", &mut out).unwrap_err().field, "data");
    assert!(decoder.decode(None, b"[1,2]", &mut out).is_err());
}

// ---------------------------------------------------------------------------
// Embeddings

#[test]
fn batch_embed_request_fixture() {
    let expected = fixture_json("batch_embed_contents_request.json");
    let inputs: Vec<String> = expected["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["content"]["parts"][0]["text"].as_str().unwrap().to_string())
        .collect();
    let req = EmbedRequest { model: "alias".into(), inputs, dimensions: Some(8), base64: true, user: Some("u".into()) };
    let body: Value = serde_json::from_slice(&encode_embed_request(&req, "gemini-embedding-001").unwrap()).unwrap();
    // No `taskType`: there is no canonical equivalent.
    let mut expected = expected;
    for r in expected["requests"].as_array_mut().unwrap() {
        r.as_object_mut().unwrap().remove("taskType");
    }
    assert_eq!(body, expected);
    let again: Value =
        serde_json::from_slice(&encode_embed_request(&req, "models/gemini-embedding-001").unwrap()).unwrap();
    assert_eq!(again, expected);
}

#[test]
fn embed_content_request_fixture_is_one_batch_entry() {
    let mut single = fixture_json("embed_content_request.json");
    single.as_object_mut().unwrap().remove("taskType");
    let req = EmbedRequest {
        model: "m".into(),
        inputs: vec![single["content"]["parts"][0]["text"].as_str().unwrap().into()],
        dimensions: Some(8),
        base64: false,
        user: None,
    };
    let body: Value = serde_json::from_slice(&encode_embed_request(&req, "gemini-embedding-001").unwrap()).unwrap();
    assert_eq!(body["requests"][0], single);

    let req = EmbedRequest { dimensions: None, ..req };
    let body: Value = serde_json::from_slice(&encode_embed_request(&req, "gemini-embedding-001").unwrap()).unwrap();
    assert!(body["requests"][0].get("outputDimensionality").is_none());
    let req = EmbedRequest { inputs: vec![], ..req };
    assert_eq!(encode_embed_request(&req, "x").unwrap_err().field, "input");
}

#[test]
fn embed_response_fixtures() {
    let batch = decode_embed_response(&fixture("batch_embed_contents_response.json")).unwrap();
    assert_eq!(batch.vectors.len(), 2);
    assert!(batch.vectors.iter().all(|v| v.len() == 8));
    assert_eq!(batch.vectors[0][0], -0.022374554);
    assert_eq!(batch.vectors[1][7], -0.0197714);
    assert_eq!(batch.input_tokens, None);

    let single = decode_embed_response(&fixture("embed_content_response.json")).unwrap();
    assert_eq!(single.vectors, vec![batch.vectors[0].clone()]);

    assert_eq!(decode_embed_response(&fixture("errors/429_resource_exhausted.json")).unwrap_err().field, "error");
    assert!(decode_embed_response(b"{}").is_err());
    assert!(decode_embed_response(b"nope").is_err());
}

// ---------------------------------------------------------------------------
// Errors and models

#[test]
fn error_fixtures_map_to_client_statuses() {
    let cases: [(&str, u16, u16, Option<f64>); 8] = [
        ("errors/400_api_key_invalid.json", 400, 401, None),
        ("errors/400_invalid_argument_unknown_field.json", 400, 400, None),
        ("errors/403_permission_denied.json", 403, 403, None),
        ("errors/404_not_found.json", 404, 404, None),
        ("errors/429_resource_exhausted.json", 429, 429, Some(30.0)),
        ("errors/500_internal.json", 500, 500, None),
        ("errors/503_unavailable.json", 503, 503, None),
        // A stream without alt=sse: the error comes inside a 200 body.
        ("errors/streaming_error_without_alt_sse.json", 200, 429, None),
    ];
    for (name, http, status, retry) in cases {
        let body = fixture(name);
        let wire = fixture_json(name);
        let envelope = if wire.is_array() { &wire[0] } else { &wire };
        let (got_status, message, got_retry) = error_status(&body, http);
        assert_eq!(got_status, status, "{name}");
        assert_eq!(message, envelope["error"]["message"].as_str().unwrap(), "{name}");
        assert_eq!(got_retry, retry, "{name}");
    }
    // An error in a 200 stream without a mapped status uses its code.
    assert_eq!(error_status(br#"{"error":{"code":500,"message":"m","status":"INTERNAL"}}"#, 200).0, 500);
    assert_eq!(error_status(br#"{"error":{"message":"m"}}"#, 200).0, 502);
    assert_eq!(
        error_status(br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"m","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#, 429),
        (429, "m".to_string(), Some(1.5))
    );
    // Odd envelopes still give what they can.
    assert_eq!(
        error_status(br#"{"error":{"code":"503","message":{"k":1}}}"#, 200),
        (503, r#"{"k":1}"#.to_string(), None)
    );
    assert_eq!(error_status(b"<html>bad gateway</html>", 502), (502, "<html>bad gateway</html>".to_string(), None));
}

#[test]
fn models_list_fixture() {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Model {
        name: String,
        input_token_limit: u64,
        output_token_limit: u64,
        supported_generation_methods: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct List {
        models: Vec<Model>,
        next_page_token: Option<String>,
    }
    let list: List = serde_json::from_slice(&fixture("models_list.json")).unwrap();
    assert!(list.next_page_token.is_some());
    let chat = &list.models[0];
    let model = chat.name.strip_prefix("models/").unwrap();
    assert_eq!(chat_path(model, false), "/models/gemini-2.5-flash:generateContent");
    assert!(chat.supported_generation_methods.iter().any(|m| m == "generateContent"));
    assert!(chat.input_token_limit > chat.output_token_limit);
    let embed = &list.models[1];
    assert_eq!(
        embed_path(embed.name.strip_prefix("models/").unwrap()),
        "/models/gemini-embedding-001:batchEmbedContents"
    );
    assert!(embed.supported_generation_methods.iter().any(|m| m == "embedContent"));
}

// ---------------------------------------------------------------------------
// Properties

fn arb_args() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        "[a-z]{1,6}",
        prop_oneof![any::<i64>().prop_map(Value::from), "[ -~]{0,8}".prop_map(Value::from)],
        0..4,
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()))
}

proptest! {
    #[test]
    fn ids_are_stable_between_response_and_stream(
        prefix in "[A-Za-z0-9_-]{0,12}",
        calls in prop::collection::vec(("[a-z_]{1,10}", arb_args(), prop::option::of("[a-z]{1,5}")), 1..6),
        split in 0usize..6,
    ) {
        let parts: Vec<Value> = calls
            .iter()
            .map(|(name, args, id)| match id {
                Some(id) => json!({"functionCall": {"name": name, "args": args, "id": id}}),
                None => json!({"functionCall": {"name": name, "args": args}}),
            })
            .collect();
        let whole = json!({"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]});
        let resp = decode_response(whole.to_string().as_bytes(), &prefix).unwrap();
        // The same calls spread over two chunks.
        let cut = split.min(parts.len());
        let first = json!({"candidates": [{"content": {"parts": parts[..cut]}}]});
        let second = json!({"candidates": [{"content": {"parts": parts[cut..]}, "finishReason": "STOP"}]});
        let events = run_stream(&prefix, &[first.to_string().into_bytes(), second.to_string().into_bytes()]);
        prop_assert_eq!(response_call_ids(&resp), stream_call_ids(&events));
        let args: Vec<String> = resp.parts.iter().filter_map(|p| match p { Part::ToolCall(c) => Some(c.arguments.clone()), _ => None }).collect();
        let stream_args: Vec<String> = events.iter().filter_map(|e| match e { StreamEvent::ToolCallDelta { arguments, .. } => Some(arguments.clone()), _ => None }).collect();
        prop_assert_eq!(args, stream_args);
        prop_assert_eq!(resp.finish, Some(FinishReason::ToolCalls));
        let finish = StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None };
        prop_assert!(events.contains(&finish));
    }

    #[test]
    fn decoder_never_panics_on_garbage(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut decoder = Decoder::new("g");
        let mut out = Vec::new();
        for c in &chunks {
            let _ = decoder.decode(None, c, &mut out);
        }
        decoder.end(&mut out);
        let _ = decode_response(&chunks.concat(), "g");
        let _ = decode_embed_response(&chunks.concat());
        let _ = error_status(&chunks.concat(), 500);
    }

    #[test]
    fn decoder_never_panics_on_odd_json(
        texts in prop::collection::vec(prop_oneof![
            Just(r#"{"candidates":[]}"#.to_string()),
            Just(r#"{"candidates":[{"content":null,"finishReason":null}]}"#.to_string()),
            Just(r#"{"candidates":[{"content":{"parts":[{"thought":true}]}}]}"#.to_string()),
            Just(r#"{"candidates":[{"content":{"parts":[{"functionCall":{"args":[1]}}]},"finishReason":"STOP"}]}"#.to_string()),
            Just(r#"{"usageMetadata":{"promptTokenCount":18446744073709551615,"toolUsePromptTokenCount":5}}"#.to_string()),
            Just(r#"{"promptFeedback":{}}"#.to_string()),
            Just(r#"{"error":{}}"#.to_string()),
            "[ -~]{0,40}",
        ], 0..10),
    ) {
        let mut decoder = Decoder::new("g");
        let mut out = Vec::new();
        for t in &texts {
            let _ = decoder.decode(None, t.as_bytes(), &mut out);
            let _ = decode_response(t.as_bytes(), "g");
        }
        decoder.end(&mut out);
        // Indexes only grow and every PartEnd closes something that began.
        let mut last_end: Option<u32> = None;
        for e in &out {
            if let StreamEvent::PartEnd { index } = e {
                prop_assert!(last_end.is_none_or(|l| *index > l));
                last_end = Some(*index);
            }
        }
    }
}

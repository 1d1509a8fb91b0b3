//! Anthropic's Messages API, compared with `fixtures/wire/anthropic/`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{
    json_of, keys, read_until_end, shape, shape_without, start_with, text_of, wire_fixture, wire_fixture_json,
};
use crate::{Format, Knobs, Outcome, ToolCalls};

const AUTH: [(&str, &str); 2] = [("x-api-key", "sk-ant-test"), ("anthropic-version", "2023-06-01")];
const MESSAGES: &str = "/v1/messages";

fn fx(name: &str) -> Value {
    wire_fixture_json(&format!("anthropic/{name}"))
}

fn body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello there, sim!"}]})
}

fn stream_body(model: &str) -> Value {
    let mut b = body(model);
    b["stream"] = json!(true);
    b
}

/// `get_weather(location, unit?)`, `location` required.
fn weather_tools() -> Value {
    fx("count_tokens_request.json")["tools"].clone()
}

/// `(event, data)` pairs of an SSE body; every `data` names its event in `type`.
fn parse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (event, data) = e.split_once('\n').unwrap_or_else(|| panic!("bad event {e:?}"));
            let name = event.strip_prefix("event: ").unwrap_or_else(|| panic!("no event line in {e:?}"));
            let data = data.strip_prefix("data: ").unwrap_or_else(|| panic!("no data line in {e:?}"));
            assert!(!data.contains('\n'), "multi-line data {e:?}");
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["type"], name);
            (name.to_owned(), v)
        })
        .collect()
}

/// Our events: exactly `event: …\ndata: …\n\n` each.
pub(super) fn events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n") && !body.ends_with("\n\n\n"), "framing: {body:?}");
    parse_events(body)
}

fn fixture_events(name: &str) -> Vec<(String, Value)> {
    parse_events(&wire_fixture(&format!("anthropic/{name}")))
}

pub(super) fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(n, _)| n.as_str()).collect()
}

/// The first event of each run of same-named events.
fn runs(events: &[(String, Value)]) -> Vec<&(String, Value)> {
    let mut out: Vec<&(String, Value)> = Vec::new();
    for e in events {
        if out.last().is_none_or(|last| last.0 != e.0) {
            out.push(e);
        }
    }
    out
}

pub(super) fn text_deltas(events: &[(String, Value)]) -> String {
    events.iter().filter_map(|(_, v)| v["delta"]["text"].as_str()).collect()
}

#[tokio::test]
async fn text_message_has_the_fixture_shape_and_request_id() {
    let h = start_with(Knobs::default()).await;
    let resp = h.post_with(MESSAGES, &AUTH, &body("claude-sim")).await;
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_owned();
    assert!(resp.headers().get("x-request-id").is_none());
    let (_, msg) = json_of(resp).await;
    // `usage` as in the tool_use fixture (the text fixture also breaks cache writes down).
    let fixture = fx("messages_response_text.json");
    assert_eq!(shape_without(&msg, &["usage"]), shape_without(&fixture, &["usage"]));
    assert_eq!(shape(&msg["usage"]), shape(&fx("messages_response_tool_use.json")["usage"]));
    assert!(msg["id"].as_str().unwrap().starts_with("msg_sim"));
    assert_eq!(
        (&msg["type"], &msg["role"], &msg["model"]),
        (&json!("message"), &json!("assistant"), &json!("claude-sim"))
    );
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["stop_sequence"], Value::Null);
    assert_eq!(msg["content"].as_array().unwrap().len(), 1);
    assert_eq!(msg["content"][0]["text"].as_str().unwrap().split(' ').count(), 16);
    // "Hello there, sim!" is 17 characters: 4 tokens, as in OpenAI's estimate.
    let usage = &msg["usage"];
    assert_eq!((&usage["input_tokens"], &usage["output_tokens"]), (&json!(4), &json!(16)));
    assert_eq!((&usage["cache_creation_input_tokens"], &usage["cache_read_input_tokens"]), (&json!(0), &json!(0)));
    let r = h.wait_for(|r| r.outcome == Outcome::Completed).await;
    assert_eq!(request_id, format!("req_sim{}", r.seq));
    assert_eq!(r.format, Format::Anthropic);
    assert_eq!(r.path, MESSAGES);
    assert_eq!(r.model.as_deref(), Some("claude-sim"));
    assert!(!r.stream);
    assert_eq!(r.body, body("claude-sim"));
    assert_eq!(r.status, 200);
    h.shutdown().await;
}

#[tokio::test]
async fn max_tokens_below_the_answer_stops_with_max_tokens() {
    let h = start_with(Knobs { answer_tokens: 5, ..Knobs::default() }).await;
    let mut b = body("m");
    b["max_tokens"] = json!(3);
    b["system"] = json!([{"type": "text", "text": "abcdefgh"}]);
    let (status, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
    assert_eq!(status, 200);
    assert_eq!(msg["stop_reason"], "max_tokens");
    assert_eq!(msg["content"][0]["text"], "lorem ipsum dolor");
    assert_eq!(msg["usage"]["output_tokens"], 3);
    // The system prompt counts: 8 + 17 characters.
    assert_eq!(msg["usage"]["input_tokens"], 6);
    b["max_tokens"] = json!(5);
    let (_, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
    assert_eq!(msg["stop_reason"], "end_turn");
    h.shutdown().await;
}

#[tokio::test]
async fn tool_use_message_has_the_fixture_shape() {
    let h = start_with(Knobs::default()).await;
    let mut b = body("m");
    b["tools"] = weather_tools();
    let (status, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
    assert_eq!(status, 200);
    let fixture = fx("messages_response_tool_use.json");
    assert_eq!(shape_without(&msg, &["content"]), shape_without(&fixture, &["content"]));
    assert_eq!(msg["content"].as_array().unwrap().len(), 2);
    assert_eq!(shape(&msg["content"][0]), shape(&fixture["content"][0]));
    assert_eq!(shape(&msg["content"][1]), shape(&fixture["content"][1]));
    assert_eq!(msg["stop_reason"], "tool_use");
    let tool_use = &msg["content"][1];
    assert!(tool_use["id"].as_str().unwrap().starts_with("toolu_sim"));
    assert_eq!(tool_use["name"], "get_weather");
    assert_eq!(tool_use["input"], json!({"location": "sample"}));
    h.shutdown().await;
}

#[tokio::test]
async fn tool_choice_none_tool_results_named_tools_and_the_knob() {
    let h = start_with(Knobs::default()).await;
    let mut b = body("m");
    b["tools"] = weather_tools();
    b["tool_choice"] = json!({"type": "none"});
    let (_, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
    assert_eq!(msg["stop_reason"], "end_turn");

    // After a tool_result the model answers in text.
    let (status, msg) = h.post_json_with(MESSAGES, &AUTH, &fx("messages_request_tool_result_error.json")).await;
    assert_eq!(status, 200);
    assert_eq!(msg["stop_reason"], "end_turn");

    let mut tools = weather_tools();
    tools.as_array_mut().unwrap().push(json!({"name": "get_time", "input_schema": {
        "type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}));
    b["tools"] = tools;
    b["tool_choice"] = json!({"type": "tool", "name": "get_time"});
    let (_, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
    // A forced call has no text block (see forced_tool_choice_answers_only_the_tool_use_block).
    assert_eq!(msg["content"][0]["name"], "get_time");
    assert_eq!(msg["content"][0]["input"], json!({"tz": "sample"}));
    b["tool_choice"] = json!({"type": "any"});
    let (_, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
    assert_eq!(msg["content"][0]["name"], "get_weather");
    b["tool_choice"] = json!({"type": "auto", "disable_parallel_tool_use": true});
    let (_, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
    assert_eq!((&msg["content"][0]["type"], &msg["content"][1]["name"]), (&json!("text"), &json!("get_weather")));

    h.sim.set_knobs(None, Knobs { tool_calls: ToolCalls::Never, ..Knobs::default() });
    let (_, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
    assert_eq!(msg["stop_reason"], "end_turn");
    h.shutdown().await;
}

/// `get_weather` and `get_time(tz)`.
fn weather_and_time_tools() -> Value {
    let mut tools = weather_tools();
    tools.as_array_mut().unwrap().push(json!({"name": "get_time", "input_schema": {
        "type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}));
    tools
}

/// The forced `tool_choice` variants and the tool each one calls.
fn forced_choices() -> [(Value, &'static str, Value); 2] {
    [
        (json!({"type": "any"}), "get_weather", json!({"location": "sample"})),
        (json!({"type": "tool", "name": "get_time"}), "get_time", json!({"tz": "sample"})),
    ]
}

#[tokio::test]
async fn forced_tool_choice_answers_only_the_tool_use_block() {
    let h = start_with(Knobs::default()).await;
    let fixture = fx("messages_response_tool_use.json");
    for (choice, name, input) in forced_choices() {
        let mut b = body("m");
        b["tools"] = weather_and_time_tools();
        b["tool_choice"] = choice.clone();
        let (status, msg) = h.post_json_with(MESSAGES, &AUTH, &b).await;
        assert_eq!(status, 200);
        assert_eq!(shape_without(&msg, &["content"]), shape_without(&fixture, &["content"]));
        let content = msg["content"].as_array().unwrap();
        assert_eq!(content.len(), 1, "{choice}: {msg}");
        assert_eq!(shape_without(&content[0], &["input"]), shape_without(&fixture["content"][1], &["input"]));
        assert!(content[0]["id"].as_str().unwrap().starts_with("toolu_sim"));
        assert_eq!((&content[0]["type"], &content[0]["name"]), (&json!("tool_use"), &json!(name)));
        assert_eq!(content[0]["input"], input);
        assert_eq!(msg["stop_reason"], "tool_use");

        // The same call made by choice: two preamble words more.
        b["tools"] = json!([weather_and_time_tools().as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()]);
        b["tool_choice"] = json!({"type": "auto"});
        let (_, auto) = h.post_json_with(MESSAGES, &AUTH, &b).await;
        assert_eq!(auto["content"][1]["input"], input);
        let forced_tokens = msg["usage"]["output_tokens"].as_u64().unwrap();
        assert_eq!(auto["usage"]["output_tokens"].as_u64().unwrap(), forced_tokens + 2, "{choice}");
    }
    // get_weather + {"location":"sample"}: 32 characters, 8 tokens.
    let mut b = body("m");
    b["tools"] = weather_tools();
    b["tool_choice"] = json!({"type": "any"});
    assert_eq!(h.post_json_with(MESSAGES, &AUTH, &b).await.1["usage"]["output_tokens"], 8);
    h.shutdown().await;
}

#[tokio::test]
async fn forced_tool_choice_streams_the_tool_use_block_at_index_0() {
    let h = start_with(Knobs::default()).await;
    let fixture = fixture_events("messages_stream_tool_use.sse");
    let fixture_tool_start = &fixture
        .iter()
        .find(|(n, v)| n == "content_block_start" && v["content_block"]["type"] == "tool_use")
        .unwrap()
        .1;
    let fixture_json_delta = &fixture.iter().find(|(_, v)| v["delta"]["type"] == "input_json_delta").unwrap().1;
    for (choice, name, input) in forced_choices() {
        let mut b = stream_body("m");
        b["tools"] = weather_and_time_tools();
        b["tool_choice"] = choice.clone();
        let (status, text) = text_of(h.post_with(MESSAGES, &AUTH, &b).await).await;
        assert_eq!(status, 200);
        let ours = events(&text);
        let n = ours.len();
        let mut expected = vec!["message_start", "content_block_start", "ping"];
        expected.extend(std::iter::repeat_n("content_block_delta", n - 6));
        expected.extend(["content_block_stop", "message_delta", "message_stop"]);
        assert_eq!(names(&ours), expected, "{choice}");
        assert_eq!(shape(&ours[0].1), shape(&fixture[0].1));

        let start = &ours[1].1;
        assert_eq!(shape(start), shape(fixture_tool_start));
        assert_eq!(start["index"], 0);
        assert_eq!(
            (&start["content_block"]["type"], &start["content_block"]["name"]),
            (&json!("tool_use"), &json!(name))
        );
        assert!(start["content_block"]["id"].as_str().unwrap().starts_with("toolu_sim"));

        let deltas = &ours[3..n - 3];
        assert!(deltas.len() >= 3, "the empty piece and at least two more: {deltas:?}");
        for (_, d) in deltas {
            assert_eq!(shape(d), shape(fixture_json_delta));
            assert_eq!((&d["index"], &d["delta"]["type"]), (&json!(0), &json!("input_json_delta")));
        }
        let pieces: Vec<&str> = deltas.iter().map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap()).collect();
        assert_eq!(pieces[0], "");
        assert_eq!(serde_json::from_str::<Value>(&pieces.concat()).unwrap(), input);

        assert_eq!(ours[n - 3].1["index"], 0);
        let delta = &ours[n - 2].1;
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
        b["stream"] = json!(false);
        let (_, whole) = h.post_json_with(MESSAGES, &AUTH, &b).await;
        assert_eq!(delta["usage"]["output_tokens"], whole["usage"]["output_tokens"]);
    }
    h.shutdown().await;
}

#[tokio::test]
async fn cut_after_tokens_counts_tool_input_deltas() {
    // Forced: the first delta is the empty input piece at index 0.
    let h = start_with(Knobs { cut_after_tokens: Some(2), ..Knobs::default() }).await;
    let mut b = stream_body("m");
    b["tools"] = weather_tools();
    b["tool_choice"] = json!({"type": "any"});
    let (text, failed) = read_until_end(h.post_with(MESSAGES, &AUTH, &b).await).await;
    assert!(failed);
    let ours = events(&text);
    assert_eq!(
        names(&ours),
        ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta"]
    );
    assert_eq!(ours[1].1["content_block"]["type"], "tool_use");
    assert_eq!(ours[3].1["delta"]["partial_json"], "");
    assert!(ours[3..].iter().all(|(_, v)| v["index"] == 0 && v["delta"]["type"] == "input_json_delta"));

    // Auto: two preamble words, then the block change and the empty piece.
    h.sim.set_knobs(None, Knobs { cut_after_tokens: Some(3), ..Knobs::default() });
    b["tool_choice"] = json!({"type": "auto"});
    let (text, failed) = read_until_end(h.post_with(MESSAGES, &AUTH, &b).await).await;
    assert!(failed);
    let ours = events(&text);
    assert_eq!(
        names(&ours),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta"
        ]
    );
    assert_eq!((&ours[6].1["index"], &ours[7].1["index"]), (&json!(1), &json!(1)));
    assert_eq!(ours[7].1["delta"]["partial_json"], "");
    h.shutdown().await;
}

#[tokio::test]
async fn text_stream_follows_the_fixture_event_by_event() {
    // The fixture has three text deltas.
    let h = start_with(Knobs { answer_tokens: 3, ..Knobs::default() }).await;
    let resp = h.post_with(MESSAGES, &AUTH, &stream_body("claude-sim")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    assert!(resp.headers()["request-id"].to_str().unwrap().starts_with("req_sim"));
    let (_, text) = text_of(resp).await;
    let ours = events(&text);
    let fixture = fixture_events("messages_stream_text.sse");
    assert_eq!(names(&ours), names(&fixture));
    // message_start: the tool fixture's (newer) usage, see text_message_has_the_fixture_shape_and_request_id.
    let newer_start = &fixture_events("messages_stream_tool_use.sse")[0].1;
    assert_eq!(shape(&ours[0].1), shape(newer_start));
    for ((name, o), (_, f)) in ours.iter().zip(&fixture).skip(1) {
        assert_eq!(shape(o), shape(f), "{name}");
    }
    assert!(text.contains("event: ping\ndata: {\"type\": \"ping\"}\n\n"));
    let start = &ours[0].1["message"];
    assert_eq!(start["usage"]["input_tokens"], 4);
    assert!(start["id"].as_str().unwrap().starts_with("msg_sim"));
    let (_, whole) = h.post_json_with(MESSAGES, &AUTH, &body("claude-sim")).await;
    assert_eq!(text_deltas(&ours), whole["content"][0]["text"].as_str().unwrap());
    let delta = &ours[ours.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    let r = h.wait_for(|r| r.stream && r.outcome == Outcome::Completed).await;
    assert_eq!((r.format, r.status), (Format::Anthropic, 200));
    h.shutdown().await;
}

#[tokio::test]
async fn tool_stream_follows_the_fixture_and_its_input_is_valid_json() {
    let h = start_with(Knobs::default()).await;
    let mut b = stream_body("m");
    b["tools"] = weather_tools();
    let (status, text) = text_of(h.post_with(MESSAGES, &AUTH, &b).await).await;
    assert_eq!(status, 200);
    let ours = events(&text);
    let fixture = fixture_events("messages_stream_tool_use.sse");
    // Same sequence up to the number of deltas in a row; same shapes.
    let (our_runs, fixture_runs) = (runs(&ours), runs(&fixture));
    assert_eq!(
        our_runs.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        fixture_runs.iter().map(|e| e.0.as_str()).collect::<Vec<_>>()
    );
    for (o, f) in our_runs.iter().zip(&fixture_runs) {
        assert_eq!(shape(&o.1), shape(&f.1), "{}", o.0);
    }
    let json_deltas: Vec<&str> = ours
        .iter()
        .filter(|(_, v)| v["delta"]["type"] == "input_json_delta")
        .map(|(_, v)| v["delta"]["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(json_deltas[0], "");
    assert!(json_deltas.len() >= 3, "the input comes in at least two pieces: {json_deltas:?}");
    let input: Value = serde_json::from_str(&json_deltas.concat()).unwrap();
    assert_eq!(input, json!({"location": "sample"}));
    let tool_start = ours.iter().find(|(n, v)| n == "content_block_start" && v["index"] == 1).unwrap();
    assert_eq!(tool_start.1["content_block"]["name"], "get_weather");
    assert!(tool_start.1["content_block"]["id"].as_str().unwrap().starts_with("toolu_sim"));
    assert!(ours
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .all(|(_, v)| { (v["index"] == 0) == (v["delta"]["type"] == "text_delta") }));
    assert_eq!(ours[ours.len() - 2].1["delta"]["stop_reason"], "tool_use");
    h.shutdown().await;
}

#[tokio::test]
async fn ttft_and_pacing_delay_the_deltas() {
    let h = start_with(Knobs { ttft_ms: 100, tokens_per_sec: 50.0, answer_tokens: 5, ..Knobs::default() }).await;
    let sent = Instant::now();
    let mut resp = h.post_with(MESSAGES, &AUTH, &stream_body("m")).await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(sent.elapsed() >= Duration::from_millis(100));
    assert!(String::from_utf8_lossy(&first).starts_with("event: message_start\n"));
    let (rest, failed) = read_until_end(resp).await;
    assert!(!failed);
    // Words 2..5 come 20 ms apart.
    assert!(sent.elapsed() >= Duration::from_millis(100 + 4 * 20));
    let all = format!("{}{rest}", String::from_utf8_lossy(&first));
    assert_eq!(events(&all).iter().filter(|(n, _)| n == "content_block_delta").count(), 5);
    h.shutdown().await;
}

#[tokio::test]
async fn cut_after_tokens_drops_the_stream_after_that_many_deltas() {
    let h = start_with(Knobs { cut_after_tokens: Some(2), answer_tokens: 5, ..Knobs::default() }).await;
    let resp = h.post_with(MESSAGES, &AUTH, &stream_body("m")).await;
    assert_eq!(resp.status(), 200);
    let (text, failed) = read_until_end(resp).await;
    assert!(failed, "the body must end in an error, not a clean end");
    let ours = events(&text);
    assert_eq!(
        names(&ours),
        ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta"]
    );
    let r = h.wait_for(|r| r.outcome == Outcome::Cut).await;
    assert_eq!((r.format, r.status), (Format::Anthropic, 200));
    h.shutdown().await;
}

/// The last event of `messages_stream_error_overloaded.sse`, byte for byte.
fn fixture_error_event() -> String {
    let fixture = wire_fixture("anthropic/messages_stream_error_overloaded.sse");
    let last = fixture.trim_end_matches('\n').rsplit("\n\n").next().unwrap();
    format!("{last}\n\n")
}

#[tokio::test]
async fn error_after_tokens_ends_with_the_fixtures_error_event() {
    let h = start_with(Knobs { error_after_tokens: Some(2), answer_tokens: 5, ..Knobs::default() }).await;
    let resp = h.post_with(MESSAGES, &AUTH, &stream_body("m")).await;
    assert_eq!(resp.status(), 200);
    let (text, failed) = read_until_end(resp).await;
    assert!(!failed, "the body must end cleanly, not in an error");
    let error_event = fixture_error_event();
    assert_eq!(
        error_event,
        "event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"
    );
    assert!(text.ends_with(&error_event), "{text}");
    let ours = events(&text);
    assert_eq!(
        names(&ours),
        ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "error"]
    );
    // The fixture's sequence, up to the number of deltas in a row.
    let fixture = fixture_events("messages_stream_error_overloaded.sse");
    assert_eq!(
        runs(&ours).iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        runs(&fixture).iter().map(|e| e.0.as_str()).collect::<Vec<_>>()
    );
    let r = h.wait_for(|r| r.outcome == Outcome::Errored).await;
    assert_eq!((r.format, r.status), (Format::Anthropic, 200));
    assert!(r.stream);

    // Tool input deltas count too; the error comes inside the open block.
    h.sim.set_knobs(None, Knobs { error_after_tokens: Some(2), ..Knobs::default() });
    let mut b = stream_body("m");
    b["tools"] = weather_tools();
    b["tool_choice"] = json!({"type": "any"});
    let (text, failed) = read_until_end(h.post_with(MESSAGES, &AUTH, &b).await).await;
    assert!(!failed);
    assert!(text.ends_with(&error_event), "{text}");
    let ours = events(&text);
    assert_eq!(
        names(&ours),
        ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta", "error"]
    );
    assert_eq!(ours[4].1["delta"]["type"], "input_json_delta");
    h.shutdown().await;
}

#[tokio::test]
async fn error_after_tokens_spares_shorter_answers_and_non_stream_requests() {
    let h = start_with(Knobs { error_after_tokens: Some(3), answer_tokens: 2, ..Knobs::default() }).await;
    let (status, text) = text_of(h.post_with(MESSAGES, &AUTH, &stream_body("m")).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        names(&events(&text)),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let r = h.wait_for(|r| r.stream && r.outcome != Outcome::InProgress).await;
    assert_eq!(r.outcome, Outcome::Completed);

    // Non-stream answers ignore the knob.
    h.sim.set_knobs(None, Knobs { error_after_tokens: Some(1), ..Knobs::default() });
    let (status, msg) = h.post_json_with(MESSAGES, &AUTH, &body("m")).await;
    assert_eq!(status, 200);
    assert_eq!(msg["stop_reason"], "end_turn");
    assert_eq!(msg["usage"]["output_tokens"], 16);
    let r = h.wait_for(|r| !r.stream && r.outcome != Outcome::InProgress).await;
    assert_eq!((r.outcome, r.status), (Outcome::Completed, 200));
    h.shutdown().await;
}

#[tokio::test]
async fn auth_version_and_body_errors_use_anthropics_envelope() {
    let h = start_with(Knobs::default()).await;
    let resp = h.post_with(MESSAGES, &AUTH[1..], &body("m")).await;
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_owned();
    let (status, err) = json_of(resp).await;
    assert_eq!(status, 401);
    assert_eq!(shape(&err), shape(&fx("errors/401_authentication_error.json")));
    assert_eq!(err["error"]["type"], "authentication_error");
    assert_eq!(err["request_id"], request_id.as_str());

    let (status, err) = h.post_json_with(MESSAGES, &AUTH[..1], &body("m")).await;
    assert_eq!(status, 400);
    assert_eq!(shape(&err), shape(&fx("errors/400_invalid_request_error.json")));
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(err["error"]["message"].as_str().unwrap().contains("anthropic-version"));

    let mut req = h.client.post(format!("{}{MESSAGES}", h.base)).body("{not json");
    for (n, v) in AUTH {
        req = req.header(n, v);
    }
    let (status, err) = json_of(req.send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "invalid_request_error");

    let mut no_max = body("m");
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let (status, err) = h.post_json_with(MESSAGES, &AUTH, &no_max).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], fx("errors/400_invalid_request_error.json")["error"]);

    let mut no_model = body("m");
    no_model.as_object_mut().unwrap().remove("model");
    let mut empty = body("m");
    empty["messages"] = json!([]);
    let mut bad_stream = body("m");
    bad_stream["stream"] = json!("yes");
    for bad in [no_model, empty, bad_stream, json!([1])] {
        let (status, err) = h.post_json_with(MESSAGES, &AUTH, &bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(err["type"], "error");
        assert_eq!(err["error"]["type"], "invalid_request_error");
    }

    let log = h.sim.requests();
    assert_eq!(log.len(), 8);
    assert!(log.iter().all(|r| r.outcome == Outcome::Failed && r.format == Format::Anthropic));
    assert_eq!(log[0].status, 401);
    assert_eq!(log[2].body, Value::String("{not json".into()));
    h.shutdown().await;
}

#[tokio::test]
async fn injected_errors_keep_the_status_and_pick_the_type() {
    let h = start_with(Knobs::default()).await;
    let cases = [
        (500, "api_error", Some("500_api_error.json")),
        (529, "overloaded_error", Some("529_overloaded_error.json")),
        (503, "overloaded_error", None),
        (502, "api_error", None),
        (404, "not_found_error", Some("404_not_found_error.json")),
        (403, "permission_error", Some("403_permission_error.json")),
        (413, "request_too_large", Some("413_request_too_large.json")),
    ];
    for (status, kind, fixture) in cases {
        h.sim.set_knobs(Some("m"), Knobs { fail_next: 1, error_status: status, ..Knobs::default() });
        let (got, err) = h.post_json_with(MESSAGES, &AUTH, &stream_body("m")).await;
        assert_eq!((got, err["error"]["type"].as_str()), (status, Some(kind)));
        if let Some(f) = fixture {
            let f = fx(&format!("errors/{f}"));
            assert_eq!(shape(&err), shape(&f));
            if status >= 500 {
                assert_eq!(err["error"]["message"], f["error"]["message"]);
            }
        }
    }

    h.sim.set_knobs(Some("m"), Knobs { rate_limit_next: 1, retry_after_s: 7, ..Knobs::default() });
    let resp = h.post_with(MESSAGES, &AUTH, &body("m")).await;
    assert_eq!(resp.status(), 429);
    let headers = resp.headers().clone();
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(headers["anthropic-ratelimit-requests-limit"], "500");
    assert_eq!(headers["anthropic-ratelimit-requests-remaining"], "0");
    let reset = headers["anthropic-ratelimit-requests-reset"].to_str().unwrap();
    assert!(reset.len() == 20 && reset.as_bytes()[10] == b'T' && reset.ends_with('Z'), "{reset}");
    assert!(headers.contains_key("request-id"));
    let (_, err) = json_of(resp).await;
    assert_eq!(shape(&err), shape(&fx("errors/429_rate_limit_error.json")));
    assert_eq!(err["error"]["type"], "rate_limit_error");
    assert_eq!(h.post_json_with(MESSAGES, &AUTH, &body("m")).await.0, 200);
    let statuses: Vec<u16> = h.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 529, 503, 502, 404, 403, 413, 429, 200]);
    h.shutdown().await;
}

#[tokio::test]
async fn hang_is_recorded_cancelled_when_the_client_leaves() {
    let h = start_with(Knobs { hang: true, ..Knobs::default() }).await;
    let tcp = h.raw_post_with(MESSAGES, &AUTH, &stream_body("stuck")).await;
    let r = h.wait_for(|r| r.model.as_deref() == Some("stuck")).await;
    assert_eq!((r.outcome, r.format), (Outcome::InProgress, Format::Anthropic));
    drop(tcp);
    let r = h.wait_for(|r| r.outcome == Outcome::Cancelled).await;
    assert!(r.stream);
    assert_eq!(r.status, 0);
    h.shutdown().await;
}

#[tokio::test]
async fn count_tokens_matches_the_messages_estimate() {
    let h = start_with(Knobs::default()).await;
    let req = fx("count_tokens_request.json");
    let (status, count) = h.post_json_with("/v1/messages/count_tokens", &AUTH, &req).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&count), keys(&fx("count_tokens_response.json")));
    let mut as_message = req.clone();
    as_message["max_tokens"] = json!(100);
    as_message["tool_choice"] = json!({"type": "none"});
    let (_, msg) = h.post_json_with(MESSAGES, &AUTH, &as_message).await;
    assert_eq!(count["input_tokens"], msg["usage"]["input_tokens"]);
    // System (36 characters) + message (28): 16 tokens.
    assert_eq!(count["input_tokens"], 16);

    assert_eq!(h.post_json_with("/v1/messages/count_tokens", &AUTH[1..], &req).await.0, 401);
    let (status, err) = h.post_json_with("/v1/messages/count_tokens", &AUTH, &json!({"model": "m"})).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["message"], "messages: Field required");
    let r = &h.sim.requests()[0];
    assert_eq!(
        (r.path.as_str(), r.format, r.outcome),
        ("/v1/messages/count_tokens", Format::Anthropic, Outcome::Completed)
    );
    h.shutdown().await;
}

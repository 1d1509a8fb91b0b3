#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::properties::{answer, assemble, config, events_of, response_and_chunking, through, Answer};
use crate::{anthropic, openai};
use proptest::option;
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Helpers

fn fixture(rel: &str) -> Vec<u8> {
    let path = format!("{}/../../../shared/fixtures/wire/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The client formats a replayed answer can be streamed in.
#[derive(Clone, Copy, Debug)]
enum Client {
    OpenAi,
    Anthropic,
}

const CLIENTS: [Client; 2] = [Client::OpenAi, Client::Anthropic];

/// `resp` replayed as a `client` stream: the SSE text the client gets
/// (OpenAI with `include_usage`), and the answer folded back from it by
/// the same format's decoder.
fn replay(client: Client, resp: &ChatResponse) -> (String, ChatResponse) {
    let events = stream_events(resp);
    let (bytes, decoded) = match client {
        Client::OpenAi => {
            let mut encoder = openai::Encoder::new(&resp.model, resp.created, true);
            through(&mut encoder, &mut openai::Decoder::default(), &events)
        }
        Client::Anthropic => {
            through(&mut anthropic::Encoder::new(&resp.model), &mut anthropic::Decoder::default(), &events)
        }
    };
    (String::from_utf8(bytes).unwrap(), assemble(&decoded))
}

/// What a `client` that asked for no stream reads of `resp`.
fn buffered(client: Client, resp: &ChatResponse) -> Answer {
    let decoded = match client {
        Client::OpenAi => openai::decode_response(&openai::encode_response(resp, &resp.model)),
        Client::Anthropic => anthropic::decode_response(&anthropic::encode_response(resp, &resp.model)),
    };
    answer(&decoded.unwrap())
}

/// The answer as a stream carries it: everything but `created`, which the
/// caller hands the encoder.
fn streamable(resp: &ChatResponse) -> ChatResponse {
    ChatResponse { created: 0, ..resp.clone() }
}

/// An Anthropic answer with extended thinking (the fixtures hold none):
/// a signed thinking block, a redacted one, text and a tool call, in the
/// shape of the extended-thinking docs; ids and data invented.
fn anthropic_thinking_answer() -> ChatResponse {
    let body = json!({
        "id": "msg_01ThinkingReplay",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [
            {"type": "thinking", "thinking": "The user wants the weather in Paris.\nI should call get_weather.",
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
                "input": {"location": "Paris", "unit": "celsius"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 50, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 300, "output_tokens": 180},
    });
    anthropic::decode_response(&serde_json::to_vec(&body).unwrap()).unwrap()
}

/// Every whole-answer fixture of both formats, decoded.
fn fixture_answers() -> Vec<(&'static str, ChatResponse)> {
    let mut answers = Vec::new();
    for name in ["openai/chat_response_text.json", "openai/chat_response_tool_calls.json"] {
        answers.push((name, openai::decode_response(&fixture(name)).unwrap()));
    }
    for name in [
        "anthropic/messages_response_text.json",
        "anthropic/messages_response_tool_use.json",
        "anthropic/messages_response_stop_sequence.json",
    ] {
        answers.push((name, anthropic::decode_response(&fixture(name)).unwrap()));
    }
    answers
}

fn call(id: &str, name: &str, arguments: &str, signature: Option<&str>) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
        signature: signature.map(String::from),
    })
}

// ---------------------------------------------------------------------------
// The mapping

#[test]
fn each_part_kind_maps_to_its_events() {
    let usage = TokenUsage { input_tokens: 40, output_tokens: 9, cache_read_tokens: 30, ..TokenUsage::default() };
    let resp = ChatResponse {
        id: "msg_1".into(),
        model: "m".into(),
        created: 17,
        parts: vec![
            Part::Thinking { text: "hmm".into(), signature: Some("sig".into()) },
            Part::Thinking { text: "".into(), signature: Some("redacted".into()) },
            Part::Thinking { text: "unsigned".into(), signature: None },
            // Answers never hold these: no events and no index.
            Part::Image(Image::Url { url: "https://x/y.png".into(), detail: None }),
            Part::ToolResult(ToolResult { call_id: "c".into(), content: vec![], is_error: false }),
            Part::Text { text: "Hi".into(), cache_control: Some(json!({"type": "ephemeral"})) },
            Part::text(""),
            call("call_1", "f", r#"{"a":1}"#, Some("gsig")),
            call("call_2", "g", "", None),
        ],
        finish: Some(FinishReason::ToolCalls),
        stop_sequence: None,
        usage: Some(usage),
    };
    use StreamEvent::*;
    assert_eq!(
        stream_events(&resp),
        [
            Start { id: "msg_1".into(), model: "m".into(), input_tokens: Some(40) },
            ThinkingDelta { index: 0, text: "hmm".into() },
            ThinkingSignature { index: 0, signature: "sig".into() },
            PartEnd { index: 0 },
            ThinkingDelta { index: 1, text: "".into() },
            ThinkingSignature { index: 1, signature: "redacted".into() },
            PartEnd { index: 1 },
            ThinkingDelta { index: 2, text: "unsigned".into() },
            PartEnd { index: 2 },
            TextDelta { index: 3, text: "Hi".into() },
            PartEnd { index: 3 },
            TextDelta { index: 4, text: "".into() },
            PartEnd { index: 4 },
            ToolCallStart { index: 5, id: "call_1".into(), name: "f".into(), signature: Some("gsig".into()) },
            ToolCallDelta { index: 5, arguments: r#"{"a":1}"#.into() },
            PartEnd { index: 5 },
            ToolCallStart { index: 6, id: "call_2".into(), name: "g".into(), signature: None },
            ToolCallDelta { index: 6, arguments: "".into() },
            PartEnd { index: 6 },
            Finish { reason: FinishReason::ToolCalls, stop_sequence: None },
            Usage(usage),
            Done,
        ]
    );
}

#[test]
fn empty_answers_still_start_finish_and_end() {
    use StreamEvent::*;
    let usage = TokenUsage { input_tokens: 7, ..TokenUsage::default() };
    let start = |input_tokens| Start { id: "msg_empty".into(), model: "m".into(), input_tokens };
    let base = ChatResponse { id: "msg_empty".into(), model: "m".into(), ..ChatResponse::default() };
    let cases = [
        (
            ChatResponse { finish: Some(FinishReason::Stop), ..base.clone() },
            vec![start(None), Finish { reason: FinishReason::Stop, stop_sequence: None }, Done],
        ),
        (
            ChatResponse { finish: Some(FinishReason::Length), usage: Some(usage), ..base.clone() },
            vec![start(Some(7)), Finish { reason: FinishReason::Length, stop_sequence: None }, Usage(usage), Done],
        ),
        (
            ChatResponse { finish: Some(FinishReason::ContentFilter), ..base.clone() },
            vec![start(None), Finish { reason: FinishReason::ContentFilter, stop_sequence: None }, Done],
        ),
        // A stop sequence is what ended the answer: its reason is `Stop`.
        (
            ChatResponse { stop_sequence: Some("END".into()), ..base.clone() },
            vec![start(None), Finish { reason: FinishReason::Stop, stop_sequence: Some("END".into()) }, Done],
        ),
        // No reason given: none invented (the encoders choose their default).
        (base.clone(), vec![start(None), Done]),
    ];
    for (resp, want) in cases {
        assert_eq!(stream_events(&resp), want, "{resp:?}");
        // Each client format still gets a well-formed stream that folds back.
        for client in CLIENTS {
            let (text, back) = replay(client, &resp);
            assert!(back.parts.is_empty(), "{client:?}: {text}");
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Any answer without parts: `Start`, then `Finish` exactly when a
    /// reason or stop sequence is known, `Usage` when known, `Done`.
    #[test]
    fn empty_answers_are_start_finish_usage_done(
        finish in option::of(prop_oneof![
            Just(FinishReason::Stop),
            Just(FinishReason::Length),
            Just(FinishReason::ToolCalls),
            Just(FinishReason::ContentFilter),
        ]),
        stop_sequence in option::of("[a-z]{1,6}"),
        usage in option::of((0u64..1000, 0u64..1000).prop_map(|(i, o)| TokenUsage {
            input_tokens: i,
            output_tokens: o,
            ..TokenUsage::default()
        })),
    ) {
        let resp = ChatResponse { id: "x".into(), model: "m".into(), finish, stop_sequence: stop_sequence.clone(), usage, ..ChatResponse::default() };
        let events = stream_events(&resp);
        prop_assert_eq!(
            events.first(),
            Some(&StreamEvent::Start { id: "x".into(), model: "m".into(), input_tokens: usage.map(|u| u.input_tokens) })
        );
        prop_assert_eq!(events.last(), Some(&StreamEvent::Done));
        let mut middle = Vec::new();
        if finish.is_some() || stop_sequence.is_some() {
            let reason = finish.unwrap_or(FinishReason::Stop);
            middle.push(StreamEvent::Finish { reason, stop_sequence });
        }
        middle.extend(usage.map(StreamEvent::Usage));
        prop_assert_eq!(&events[1..events.len() - 1], middle.as_slice());
    }

    /// The replay is the unchunked stream the stream properties use, and it
    /// folds back to the answer exactly.
    #[test]
    fn replay_is_the_unchunked_stream_of_the_answer((resp, _) in response_and_chunking()) {
        let events = stream_events(&resp);
        prop_assert_eq!(&events, &events_of(&resp, &[]));
        prop_assert_eq!(assemble(&events), streamable(&resp));
    }

    /// A client that asked for a stream reads the answer a client that
    /// asked for none would have read, in both client formats.
    #[test]
    fn replayed_answers_read_like_buffered_ones((resp, _) in response_and_chunking()) {
        for client in CLIENTS {
            let (text, back) = replay(client, &resp);
            prop_assert_eq!(answer(&back), buffered(client, &resp), "{:?} stream:\n{}", client, text);
        }
    }
}

// ---------------------------------------------------------------------------
// Fixtures through each format's encoder and decoder

#[test]
fn openai_fixture_answers_survive_an_openai_stream() {
    for name in ["openai/chat_response_text.json", "openai/chat_response_tool_calls.json"] {
        let original = openai::decode_response(&fixture(name)).unwrap();
        let (text, back) = replay(Client::OpenAi, &original);
        // Text, tool calls (id, name, arguments), finish, stop sequence,
        // usage, id and model: all of it.
        assert_eq!(back, streamable(&original), "{name}:\n{text}");
    }
    // The fixtures hold what the comparison is about.
    let tools = openai::decode_response(&fixture("openai/chat_response_tool_calls.json")).unwrap();
    assert_eq!(tools.parts.len(), 2);
    assert_eq!(tools.finish, Some(FinishReason::ToolCalls));
}

#[test]
fn anthropic_fixture_answers_survive_an_anthropic_stream() {
    for name in [
        "anthropic/messages_response_text.json",
        "anthropic/messages_response_tool_use.json",
        "anthropic/messages_response_stop_sequence.json",
    ] {
        let original = anthropic::decode_response(&fixture(name)).unwrap();
        let (text, back) = replay(Client::Anthropic, &original);
        assert_eq!(back, streamable(&original), "{name}:\n{text}");
    }
    let stop = anthropic::decode_response(&fixture("anthropic/messages_response_stop_sequence.json")).unwrap();
    assert_eq!(stop.stop_sequence.as_deref(), Some("END_OF_ANSWER"));
}

/// The `content_block_start` block types of an Anthropic SSE text, and the
/// content block types of an Anthropic body.
fn block_types(sse: &str) -> Vec<String> {
    sse.split("\n\n")
        .filter_map(|event| event.strip_prefix("event: content_block_start\ndata: "))
        .map(|data| serde_json::from_str::<Value>(data).unwrap()["content_block"]["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn anthropic_thinking_answer_survives_an_anthropic_stream() {
    let original = anthropic_thinking_answer();
    let (text, back) = replay(Client::Anthropic, &original);
    // Thinking text and signature, the redacted block's data, text, the
    // tool call, the cache split of the usage: all of it.
    assert_eq!(back, streamable(&original), "{text}");
    assert!(matches!(&back.parts[1], Part::Thinking { text, signature: Some(_) } if text.is_empty()));

    // The stream shows the blocks the buffered body shows: the redacted
    // block as `redacted_thinking`, not as a thinking block with no text.
    let body: Value = serde_json::from_slice(&anthropic::encode_response(&original, &original.model)).unwrap();
    let buffered_types: Vec<String> =
        body["content"].as_array().unwrap().iter().map(|b| b["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(block_types(&text), ["thinking", "redacted_thinking", "text", "tool_use"]);
    assert_eq!(block_types(&text), buffered_types);

    // OpenAI clients get the thinking text (`reasoning_content`) but no
    // signatures, as in a buffered OpenAI answer.
    let (text, back) = replay(Client::OpenAi, &original);
    assert_eq!(answer(&back), buffered(Client::OpenAi, &original), "{text}");
    assert!(matches!(&back.parts[0], Part::Thinking { signature: None, .. }));
}

#[test]
fn fixture_answers_read_like_buffered_ones_in_either_client_format() {
    let mut answers = fixture_answers();
    answers.push(("anthropic thinking", anthropic_thinking_answer()));
    for (name, resp) in &answers {
        for client in CLIENTS {
            let (text, back) = replay(client, resp);
            assert_eq!(answer(&back), buffered(client, resp), "{name} as {client:?}:\n{text}");
        }
    }
}

#[test]
fn replayed_streams_end_with_the_format_terminator() {
    let mut answers = fixture_answers();
    answers.push(("empty", ChatResponse { finish: Some(FinishReason::Stop), ..ChatResponse::default() }));
    for (name, resp) in &answers {
        let (text, _) = replay(Client::OpenAi, resp);
        assert!(text.ends_with("\n\ndata: [DONE]\n\n"), "{name}:\n{text}");
        assert_eq!(text.matches("data: [DONE]").count(), 1, "{name}");
        // The usage chunk (asked for) comes right before `[DONE]`.
        let last_chunk = text.trim_end_matches("data: [DONE]\n\n").rsplit("\n\n").nth(1).unwrap();
        let last_chunk: Value = serde_json::from_str(last_chunk.trim_start_matches("data: ")).unwrap();
        assert_eq!(last_chunk["choices"], json!([]), "{name}");

        let (text, _) = replay(Client::Anthropic, resp);
        assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"), "{name}:\n{text}");
        assert_eq!(text.matches("event: message_stop").count(), 1, "{name}");
        assert!(text.starts_with("event: message_start\n"), "{name}");
    }
}

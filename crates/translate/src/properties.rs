//! Cross-format property tests: round trips through each client format,
//! stream re-assembly against the non-stream path, and "never panics"
//! smoke tests standing in for the fuzz targets in `fuzz/` on every CI run.
//!
//! The generated canonical values stay within what every format can
//! express: non-empty text, base64 png images, tool calls whose arguments
//! are JSON objects written compactly by serde_json, tool results holding
//! text, system blocks without `cache_control`, tools with simple object
//! schemas, temperatures in 0..=1 and no format-specific fields (`top_k`,
//! `seed`, penalties, `n`, reasoning, `response_format`, signatures, image
//! `detail`, tool `strict`). Whatever a format still changes is undone by
//! a `normalise_*` function, each step citing the documented behaviour.
//!
//! The stream helpers (`response_and_chunking`, `events_of`, `through`,
//! `assemble`, `answer`) are shared with the tests of [`crate::replay`].

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::canonical::*;
use crate::{anthropic, gemini, openai};
use base64::Engine as _;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::{json, Value};

/// The model every encoder is asked to write.
const MODEL: &str = "upstream-model";

/// 128 cases per property keeps the suite fast; `PROPTEST_CASES=10000`
/// runs a deeper search locally.
// Test-only knob read like proptest's own (the lint guards production
// config, which must go through interpolation).
#[allow(clippy::disallowed_methods)]
pub(crate) fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    ProptestConfig::with_cases(cases)
}

// ---------------------------------------------------------------------------
// Strategies

/// Non-empty text: mostly readable ASCII with the characters JSON and SSE
/// care about (quotes, backslashes, newlines), sometimes any Unicode.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 .,:;!?'\"\\\\/\n\r\t{}\\[\\]-]{1,24}",
        1 => any::<String>().prop_filter("non-empty", |s| !s.is_empty()),
    ]
}

fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,15}"
}

/// Tool-call ids are never empty (every format sends one).
fn call_id() -> impl Strategy<Value = String> {
    "(call_|toolu_)[a-zA-Z0-9]{1,12}"
}

/// JSON without floats that do not round-trip exactly through text
/// (serde_json parses decimals best-effort unless `float_roundtrip` is on;
/// eighths are exact).
fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-800i32..800).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        text().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(ident(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Tool-call arguments: a JSON object.
fn arguments() -> impl Strategy<Value = Value> {
    btree_map(ident(), json_value(), 0..4).prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn tool_call() -> impl Strategy<Value = ToolCall> {
    (call_id(), ident(), arguments()).prop_map(|(id, name, args)| ToolCall {
        id,
        name,
        arguments: args.to_string(),
        signature: None,
    })
}

fn image() -> impl Strategy<Value = Image> {
    vec(any::<u8>(), 1..48).prop_map(|bytes| Image::Base64 {
        media_type: "image/png".to_string(),
        data: base64::engine::general_purpose::STANDARD.encode(bytes),
        detail: None,
    })
}

fn tool_result() -> impl Strategy<Value = ToolResult> {
    (call_id(), vec(text().prop_map(Part::text), 0..3), any::<bool>())
        .prop_map(|(call_id, content, is_error)| ToolResult { call_id, content, is_error })
}

fn user_part() -> impl Strategy<Value = Part> {
    prop_oneof![
        3 => text().prop_map(Part::text),
        1 => image().prop_map(Part::Image),
        2 => tool_result().prop_map(Part::ToolResult),
    ]
}

fn assistant_part() -> impl Strategy<Value = Part> {
    prop_oneof![text().prop_map(Part::text), tool_call().prop_map(Part::ToolCall)]
}

/// A message with at least one part (empty messages are dropped by
/// Anthropic and Gemini: not expressible everywhere).
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        vec(user_part(), 1..4).prop_map(|parts| Message { role: Role::User, parts }),
        vec(assistant_part(), 1..4).prop_map(|parts| Message { role: Role::Assistant, parts }),
    ]
}

fn tool() -> impl Strategy<Value = Tool> {
    let kinds = prop_oneof![Just("string"), Just("integer"), Just("number"), Just("boolean")];
    (ident(), option::of(text()), btree_map(ident(), kinds, 0..4)).prop_map(|(name, description, props)| {
        let required: Vec<&String> = props.keys().collect();
        let properties: serde_json::Map<String, Value> =
            props.iter().map(|(k, t)| (k.clone(), json!({ "type": t }))).collect();
        Tool {
            name,
            description,
            parameters: json!({"type": "object", "properties": properties, "required": required}),
            strict: None,
        }
    })
}

fn tool_choice() -> impl Strategy<Value = ToolChoice> {
    prop_oneof![
        Just(ToolChoice::Auto),
        Just(ToolChoice::None),
        Just(ToolChoice::Required),
        ident().prop_map(ToolChoice::Named),
    ]
}

/// A number in 0..=1 with two decimals (exact through JSON text).
fn unit() -> impl Strategy<Value = f64> {
    (0u32..=100).prop_map(|k| f64::from(k) / 100.0)
}

fn request() -> impl Strategy<Value = ChatRequest> {
    let conversation = (
        ident(),
        vec(text().prop_map(|text| SystemBlock { text, cache_control: None }), 0..3),
        vec(message(), 1..6),
        vec(tool(), 0..3),
        option::of(tool_choice()),
        option::of(any::<bool>()),
    );
    let sampling = (
        option::weighted(0.9, 1u32..=8192),
        option::of(unit()),
        option::of(unit()),
        vec(text(), 0..3),
        any::<bool>(),
        any::<bool>(),
        option::of(ident()),
    );
    (conversation, sampling).prop_map(
        |(
            (model, system, messages, tools, tool_choice, parallel_tool_calls),
            (max_tokens, temperature, top_p, stop, stream, include_usage, user),
        )| ChatRequest {
            model,
            system,
            messages: link_results(messages),
            tools,
            tool_choice,
            parallel_tool_calls,
            max_tokens,
            temperature,
            top_p,
            stop,
            stream,
            include_usage,
            user,
            ..ChatRequest::default()
        },
    )
}

/// Tool results answer the tool calls of earlier messages when there are
/// any, as in a real conversation (Gemini links results to calls and
/// refuses the others); results before any call keep their own ids.
fn link_results(mut messages: Vec<Message>) -> Vec<Message> {
    let mut calls: Vec<String> = Vec::new();
    let mut answered = 0;
    for m in &mut messages {
        for part in &mut m.parts {
            match part {
                Part::ToolCall(c) => calls.push(c.id.clone()),
                Part::ToolResult(r) if !calls.is_empty() => {
                    r.call_id = calls[answered % calls.len()].clone();
                    answered += 1;
                }
                _ => {}
            }
        }
    }
    messages
}

fn finish() -> impl Strategy<Value = FinishReason> {
    prop_oneof![
        Just(FinishReason::Stop),
        Just(FinishReason::Length),
        Just(FinishReason::ToolCalls),
        Just(FinishReason::ContentFilter),
    ]
}

fn usage() -> impl Strategy<Value = TokenUsage> {
    (0u64..200_000, 0u64..50_000, 0u64..50_000, 0u64..50_000, 0u64..50_000).prop_map(
        |(input, output, read, write, reasoning)| TokenUsage {
            // Canonical input includes the cache reads and writes.
            input_tokens: input + read + write,
            output_tokens: output + reasoning,
            cache_read_tokens: read,
            cache_write_tokens: write,
            reasoning_tokens: reasoning,
        },
    )
}

/// An answer and, for each of its parts, where to cut its text or
/// arguments into stream deltas (positions taken modulo the length).
pub(crate) fn response_and_chunking() -> impl Strategy<Value = (ChatResponse, Vec<Vec<usize>>)> {
    let part = prop_oneof![
        // Text may be empty here: a provider may open and close an empty
        // text part, and encoders must cope.
        prop_oneof![1 => Just(String::new()), 6 => text()].prop_map(Part::text),
        tool_call().prop_map(Part::ToolCall),
    ];
    (
        "[a-zA-Z0-9_-]{0,12}",
        vec((part, vec(any::<usize>(), 0..5)), 0..5),
        finish(),
        option::of(text()),
        option::of(usage()),
        0i64..2_000_000_000,
    )
        .prop_map(|(id, parts, finish, stop_sequence, usage, created)| {
            let (parts, chunking) = parts.into_iter().unzip();
            let resp = ChatResponse {
                id,
                model: "provider-model".to_string(),
                created,
                parts,
                finish: Some(finish),
                stop_sequence,
                usage,
            };
            (resp, chunking)
        })
}

// ---------------------------------------------------------------------------
// 1. Request round trips

/// Moves the tool results of a message before its other parts (stable).
fn results_first(parts: &mut [Part]) {
    parts.sort_by_key(|p| !matches!(p, Part::ToolResult(_)));
}

fn only_results(parts: &[Part]) -> bool {
    !parts.is_empty() && parts.iter().all(|p| matches!(p, Part::ToolResult(_)))
}

/// What `openai::decode_request(openai::encode_request(req, MODEL))` is
/// documented to change:
///
/// - `model` is the one given to the encoder;
/// - streams always ask for usage (`stream_options.include_usage`), and a
///   non-stream request has no `stream_options`: `include_usage == stream`;
/// - `tool_choice` and `parallel_tool_calls` are sent only with tools;
/// - a tool result has no error flag: its text is sent as one string
///   prefixed `Error: ` (texts joined with `\n`); an empty result is sent
///   as `""`, which reads back as one empty text part;
/// - a user message becomes `tool` messages (results first) then a `user`
///   message with the rest; the decoder joins consecutive `tool` messages
///   and a `user` message right after them into one user message. So
///   results come first, and a user message holding only results absorbs
///   the user message after it;
/// - assistant text and tool calls are separate fields: texts come before
///   tool calls.
fn normalise_openai(req: &ChatRequest) -> ChatRequest {
    let mut req = req.clone();
    req.model = MODEL.to_string();
    req.include_usage = req.stream;
    if req.tools.is_empty() {
        req.tool_choice = None;
        req.parallel_tool_calls = None;
    }
    let mut messages: Vec<Message> = Vec::new();
    // The last wire message written was a `tool` message.
    let mut after_tool = false;
    for mut m in std::mem::take(&mut req.messages) {
        match m.role {
            Role::User => {
                for part in &mut m.parts {
                    if let Part::ToolResult(r) = part {
                        let texts: Vec<&str> = r
                            .content
                            .iter()
                            .map(|p| match p {
                                Part::Text { text, .. } => text.as_str(),
                                other => panic!("generated a non-text tool result: {other:?}"),
                            })
                            .collect();
                        if r.is_error {
                            r.content = vec![Part::text(format!("Error: {}", texts.join("\n")))];
                            r.is_error = false;
                        } else if r.content.is_empty() {
                            r.content = vec![Part::text("")];
                        }
                    }
                }
                results_first(&mut m.parts);
                let ends_with_tool = only_results(&m.parts);
                match messages.last_mut() {
                    Some(last) if after_tool => last.parts.append(&mut m.parts),
                    _ => messages.push(m),
                }
                after_tool = ends_with_tool;
            }
            Role::Assistant => {
                m.parts.sort_by_key(|p| matches!(p, Part::ToolCall(_)));
                messages.push(m);
                after_tool = false;
            }
        }
    }
    req.messages = messages;
    req
}

/// What `anthropic::decode_request(anthropic::encode_request(req, MODEL))`
/// is documented to change:
///
/// - `model` is the one given to the encoder;
/// - `include_usage` is dropped (Anthropic always reports usage);
/// - `max_tokens` is required: [`anthropic::DEFAULT_MAX_TOKENS`] when unset;
/// - `tool_choice` is sent only with tools; `parallel_tool_calls: true` is
///   Anthropic's default and not sent; `false` becomes
///   `disable_parallel_tool_use` on the choice (`auto` when there is none)
///   and is not sent with `none` (which takes no such flag);
/// - consecutive messages of one role are merged, and in a user message
///   the tool results come first.
fn normalise_anthropic(req: &ChatRequest) -> ChatRequest {
    let mut req = req.clone();
    req.model = MODEL.to_string();
    req.include_usage = false;
    req.max_tokens = Some(req.max_tokens.unwrap_or(anthropic::DEFAULT_MAX_TOKENS));
    if req.tools.is_empty() {
        req.tool_choice = None;
        req.parallel_tool_calls = None;
    } else {
        if req.parallel_tool_calls == Some(true) || req.tool_choice == Some(ToolChoice::None) {
            req.parallel_tool_calls = None;
        }
        if req.parallel_tool_calls == Some(false) && req.tool_choice.is_none() {
            req.tool_choice = Some(ToolChoice::Auto);
        }
    }
    let mut messages: Vec<Message> = Vec::new();
    for mut m in std::mem::take(&mut req.messages) {
        match messages.last_mut() {
            Some(last) if last.role == m.role => last.parts.append(&mut m.parts),
            _ => messages.push(m),
        }
    }
    for m in &mut messages {
        if m.role == Role::User {
            results_first(&mut m.parts);
        }
    }
    req.messages = messages;
    req
}

/// A conversation item with tool-call arguments as JSON values.
#[derive(Debug, PartialEq)]
enum Item {
    Text(String),
    Image(Image),
    Call { id: String, name: String, arguments: Value },
    Result { call_id: String, texts: Vec<String>, is_error: bool },
}

/// The conversation a request carries: system texts, then each message's
/// role and items.
fn conversation(req: &ChatRequest) -> (Vec<String>, Vec<(Role, Vec<Item>)>) {
    let system = req.system.iter().map(|b| b.text.clone()).collect();
    let messages = req
        .messages
        .iter()
        .map(|m| {
            let items = m
                .parts
                .iter()
                .map(|p| match p {
                    Part::Text { text, .. } => Item::Text(text.clone()),
                    Part::Image(image) => Item::Image(image.clone()),
                    Part::ToolCall(c) => Item::Call {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: serde_json::from_str(&c.arguments)
                            .unwrap_or_else(|_| Value::String(c.arguments.clone())),
                    },
                    Part::ToolResult(r) => Item::Result {
                        call_id: r.call_id.clone(),
                        texts: r.content.iter().map(|p| format!("{p:?}")).collect(),
                        is_error: r.is_error,
                    },
                    Part::Thinking { .. } => panic!("no thinking was generated"),
                })
                .collect();
            (m.role, items)
        })
        .collect();
    (system, messages)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn openai_request_round_trip(req in request()) {
        let body = openai::encode_request(&req, MODEL).unwrap();
        let back = openai::decode_request(&body).unwrap();
        prop_assert_eq!(back, normalise_openai(&req), "body: {}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn anthropic_request_round_trip(req in request()) {
        let body = anthropic::encode_request(&req, MODEL).unwrap();
        let back = anthropic::decode_request(&body).unwrap();
        prop_assert_eq!(back, normalise_anthropic(&req), "body: {}", String::from_utf8_lossy(&body));
    }

    /// canonical → OpenAI → canonical → Anthropic → canonical keeps the
    /// conversation (and, with both normalisations, everything else).
    #[test]
    fn openai_then_anthropic_keeps_the_conversation(req in request()) {
        let via_openai = openai::decode_request(&openai::encode_request(&req, MODEL).unwrap()).unwrap();
        let body = anthropic::encode_request(&via_openai, MODEL).unwrap();
        let back = anthropic::decode_request(&body).unwrap();
        let expected = normalise_anthropic(&normalise_openai(&req));
        prop_assert_eq!(conversation(&back), conversation(&expected), "body: {}", String::from_utf8_lossy(&body));
        prop_assert_eq!(back, expected);
    }

    /// Gemini has no request decoder: encoding what the other formats can
    /// express must succeed (every generated tool result answers a call of
    /// an earlier message, or the encoder refuses it by design).
    #[test]
    fn gemini_encodes_what_the_others_decode(req in request()) {
        let via_openai = openai::decode_request(&openai::encode_request(&req, MODEL).unwrap()).unwrap();
        let via_anthropic = anthropic::decode_request(&anthropic::encode_request(&req, MODEL).unwrap()).unwrap();
        for r in [&req, &via_openai, &via_anthropic] {
            if let Err(e) = gemini::encode_request(r) {
                // The refusals generated requests can meet (see the gemini
                // module docs): results whose call id names no earlier
                // call, `parallel_tool_calls: false`, and a required or
                // named `tool_choice` without tools.
                prop_assert!(
                    e.field.ends_with("tool_call_id") || e.field == "parallel_tool_calls" || e.field == "tool_choice",
                    "unexpected Gemini refusal: {e}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 2. Stream re-assembly

/// `s` cut at `cuts` (each taken modulo `s.len() + 1`, moved down to a
/// char boundary). Empty pieces are kept: encoders must skip them.
fn pieces(s: &str, cuts: &[usize]) -> Vec<String> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|c| {
            let mut i = c % (s.len() + 1);
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            i
        })
        .collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut from = 0;
    for i in at {
        out.push(s[from..i].to_string());
        from = i;
    }
    out.push(s[from..].to_string());
    out
}

/// The canonical stream of `resp`: `Start`, each part as its start and
/// deltas (cut per `chunking`) and `PartEnd`, `Finish`, `Usage`, `Done`.
pub(crate) fn events_of(resp: &ChatResponse, chunking: &[Vec<usize>]) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start {
        id: resp.id.clone(),
        model: resp.model.clone(),
        input_tokens: resp.usage.map(|u| u.input_tokens),
    }];
    for (i, part) in resp.parts.iter().enumerate() {
        let index = i as u32;
        let cuts = chunking.get(i).map(Vec::as_slice).unwrap_or_default();
        match part {
            Part::Text { text, .. } => {
                events.extend(pieces(text, cuts).into_iter().map(|text| StreamEvent::TextDelta { index, text }));
            }
            Part::Thinking { text, signature } => {
                events.extend(pieces(text, cuts).into_iter().map(|text| StreamEvent::ThinkingDelta { index, text }));
                if let Some(signature) = signature {
                    events.push(StreamEvent::ThinkingSignature { index, signature: signature.clone() });
                }
            }
            Part::ToolCall(call) => {
                events.push(StreamEvent::ToolCallStart {
                    index,
                    id: call.id.clone(),
                    name: call.name.clone(),
                    signature: call.signature.clone(),
                });
                events.extend(
                    pieces(&call.arguments, cuts)
                        .into_iter()
                        .map(|arguments| StreamEvent::ToolCallDelta { index, arguments }),
                );
            }
            Part::Image(_) | Part::ToolResult(_) => continue,
        }
        events.push(StreamEvent::PartEnd { index });
    }
    if let Some(reason) = resp.finish {
        events.push(StreamEvent::Finish { reason, stop_sequence: resp.stop_sequence.clone() });
    }
    if let Some(usage) = resp.usage {
        events.push(StreamEvent::Usage(usage));
    }
    events.push(StreamEvent::Done);
    events
}

/// SSE bytes split at blank lines into (`event:` name, `data:` payload).
fn sse_events(bytes: &[u8]) -> Vec<(Option<String>, Vec<u8>)> {
    let text = std::str::from_utf8(bytes).expect("encoders write UTF-8");
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|event| {
            let mut name = None;
            let mut data: Vec<&str> = Vec::new();
            for line in event.split('\n') {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim_start().to_string());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push(d.strip_prefix(' ').unwrap_or(d));
                } else {
                    panic!("unexpected SSE line {line:?} in {event:?}");
                }
            }
            (name, data.join("\n").into_bytes())
        })
        .collect()
}

/// Decoded stream events re-assembled into an answer: text (and thinking)
/// deltas concatenated per index, a tool call's start plus its argument
/// pieces, the finish, the last usage. Parts in index order. Panics on an
/// error event, a delta for a part of another kind, arguments without a
/// start, or a missing `Done`.
pub(crate) fn assemble(events: &[StreamEvent]) -> ChatResponse {
    let mut resp = ChatResponse::default();
    let mut parts: Vec<(u32, Part)> = Vec::new();
    let mut done = false;
    for event in events {
        assert!(!done, "event after Done: {event:?}");
        match event {
            StreamEvent::Start { id, model, .. } => {
                resp.id = id.clone();
                resp.model = model.clone();
            }
            StreamEvent::TextDelta { index, text } => {
                match parts.iter_mut().find(|(i, _)| i == index) {
                    Some((_, Part::Text { text: t, .. })) => t.push_str(text),
                    Some((_, other)) => panic!("text delta for {other:?}"),
                    None => parts.push((*index, Part::text(text.clone()))),
                };
            }
            StreamEvent::ThinkingDelta { index, text } => {
                match parts.iter_mut().find(|(i, _)| i == index) {
                    Some((_, Part::Thinking { text: t, .. })) => t.push_str(text),
                    Some((_, other)) => panic!("thinking delta for {other:?}"),
                    None => parts.push((*index, Part::Thinking { text: text.clone(), signature: None })),
                };
            }
            StreamEvent::ThinkingSignature { index, signature } => {
                match parts.iter_mut().find(|(i, _)| i == index) {
                    Some((_, Part::Thinking { signature: s, .. })) => *s = Some(signature.clone()),
                    Some((_, other)) => panic!("signature for {other:?}"),
                    None => {
                        parts.push((*index, Part::Thinking { text: String::new(), signature: Some(signature.clone()) }))
                    }
                };
            }
            StreamEvent::ToolCallStart { index, id, name, signature } => {
                assert!(parts.iter().all(|(i, _)| i != index), "second start at index {index}");
                parts.push((
                    *index,
                    Part::ToolCall(ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                        signature: signature.clone(),
                    }),
                ));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                match parts.iter_mut().find(|(i, _)| i == index) {
                    Some((_, Part::ToolCall(call))) => call.arguments.push_str(arguments),
                    other => panic!("arguments for {other:?}"),
                };
            }
            StreamEvent::PartEnd { .. } => {}
            StreamEvent::Finish { reason, stop_sequence } => {
                assert!(resp.finish.is_none(), "second finish");
                resp.finish = Some(*reason);
                resp.stop_sequence = stop_sequence.clone();
            }
            StreamEvent::Usage(usage) => resp.usage = Some(*usage),
            StreamEvent::Error(e) => panic!("error event: {e:?}"),
            StreamEvent::Done => done = true,
        }
    }
    assert!(done, "the stream did not end with Done");
    parts.sort_by_key(|(i, _)| *i);
    resp.parts = parts.into_iter().map(|(_, p)| p).collect();
    resp
}

/// What the client sees of an answer: all text joined, the tool calls with
/// arguments as JSON values, the finish, the stop sequence and the usage.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    text: String,
    calls: Vec<(String, String, Value)>,
    finish: Option<FinishReason>,
    stop_sequence: Option<String>,
    usage: Option<TokenUsage>,
}

pub(crate) fn answer(resp: &ChatResponse) -> Answer {
    let calls = resp
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some((
                c.id.clone(),
                c.name.clone(),
                serde_json::from_str(&c.arguments).unwrap_or_else(|_| Value::String(c.arguments.clone())),
            )),
            _ => None,
        })
        .collect();
    Answer {
        text: resp.text(),
        calls,
        finish: resp.finish,
        stop_sequence: resp.stop_sequence.clone(),
        usage: resp.usage,
    }
}

/// Runs `events` through a client encoder, cuts the bytes into SSE events
/// and decodes them back with the same format's decoder.
pub(crate) fn through(
    encoder: &mut dyn StreamEncoder,
    decoder: &mut dyn StreamDecoder,
    events: &[StreamEvent],
) -> (Vec<u8>, Vec<StreamEvent>) {
    let mut bytes = Vec::new();
    for e in events {
        encoder.encode(e, &mut bytes);
    }
    let mut decoded = Vec::new();
    for (name, data) in sse_events(&bytes) {
        if let Err(e) = decoder.decode(name.as_deref(), &data, &mut decoded) {
            panic!("{e} in {:?}\nstream:\n{}", String::from_utf8_lossy(&data), String::from_utf8_lossy(&bytes));
        }
    }
    decoder.end(&mut decoded);
    (bytes, decoded)
}

proptest! {
    #![proptest_config(config())]

    /// OpenAI: the concatenated deltas equal the non-stream answer.
    #[test]
    fn openai_stream_reassembles_to_the_response((resp, chunking) in response_and_chunking()) {
        let events = events_of(&resp, &chunking);
        let mut encoder = openai::Encoder::new(MODEL, resp.created, true);
        let (bytes, decoded) = through(&mut encoder, &mut openai::Decoder::default(), &events);
        let streamed = assemble(&decoded);
        let whole = openai::decode_response(&openai::encode_response(&resp, MODEL)).unwrap();
        prop_assert_eq!(answer(&streamed), answer(&whole), "stream:\n{}", String::from_utf8_lossy(&bytes));
    }

    /// Anthropic: the concatenated deltas equal the non-stream answer.
    #[test]
    fn anthropic_stream_reassembles_to_the_response((resp, chunking) in response_and_chunking()) {
        let events = events_of(&resp, &chunking);
        let mut encoder = anthropic::Encoder::new(MODEL);
        let (bytes, decoded) = through(&mut encoder, &mut anthropic::Decoder::default(), &events);
        let streamed = assemble(&decoded);
        let whole = anthropic::decode_response(&anthropic::encode_response(&resp, MODEL)).unwrap();
        prop_assert_eq!(answer(&streamed), answer(&whole), "stream:\n{}", String::from_utf8_lossy(&bytes));
    }

    /// Re-assembly is exact on the canonical side too: `assemble` inverts
    /// `events_of` (a check on the test's own helpers).
    #[test]
    fn assemble_inverts_events_of((resp, chunking) in response_and_chunking()) {
        let back = assemble(&events_of(&resp, &chunking));
        prop_assert_eq!(answer(&back), answer(&resp));
    }
}

// ---------------------------------------------------------------------------
// 3. Never panic (a cheap stand-in for the fuzz targets on every CI run)

/// Keys and string values the three formats use, so random JSON reaches
/// past the first `match`.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "model", "messages", "role", "content", "type", "text", "image_url", "url", "tool_calls", "tool_call_id",
    "function", "name", "arguments", "tools", "tool_choice", "system", "user", "assistant", "tool", "developer",
    "max_tokens", "stream", "stream_options", "include_usage", "stop", "stop_sequences", "metadata", "thinking",
    "budget_tokens", "enabled", "image", "source", "base64", "media_type", "data", "tool_use", "tool_result",
    "tool_use_id", "input", "id", "index", "delta", "choices", "finish_reason", "usage", "prompt_tokens",
    "completion_tokens", "error", "message", "message_start", "message_delta", "message_stop",
    "content_block_start", "content_block_delta", "content_block_stop", "content_block", "text_delta",
    "input_json_delta", "partial_json", "thinking_delta", "signature_delta", "signature", "redacted_thinking",
    "stop_reason", "input_tokens", "output_tokens", "candidates", "parts", "functionCall", "args",
    "finishReason", "usageMetadata", "promptTokenCount", "candidatesTokenCount", "thought", "thoughtSignature",
    "promptFeedback", "blockReason", "STOP", "MAX_TOKENS", "SAFETY", "reasoning_content", "refusal",
    "object", "auto", "any", "none", "required", "[DONE]", "",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_string)
}

fn fuzz_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..5).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        word().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(Value::Array),
            vec((word(), inner), 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bytes: random, random JSON, or a valid encoding with one byte changed
/// or cut short.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..256),
        fuzz_json().prop_map(|v| v.to_string().into_bytes()),
        (request(), any::<bool>(), any::<prop::sample::Index>(), any::<u8>(), any::<bool>()).prop_map(
            |(req, anthropic, at, byte, cut)| {
                let body = if anthropic {
                    anthropic::encode_request(&req, MODEL)
                } else {
                    openai::encode_request(&req, MODEL)
                };
                mutate(body.unwrap(), at, byte, cut)
            }
        ),
    ]
}

fn mutate(mut bytes: Vec<u8>, at: prop::sample::Index, byte: u8, cut: bool) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    let i = at.index(bytes.len());
    if cut {
        bytes.truncate(i);
    } else {
        bytes[i] = byte;
    }
    bytes
}

/// Decodes `body` as a request of both formats and, when that works,
/// encodes it to every format: errors are fine, panics are not.
fn request_smoke(body: &[u8]) {
    for req in [openai::decode_request(body), anthropic::decode_request(body)].into_iter().flatten() {
        let _ = openai::encode_request(&req, MODEL);
        let _ = anthropic::encode_request(&req, MODEL);
        let _ = gemini::encode_request(&req);
    }
    let _ = openai::decode_response(body);
    let _ = anthropic::decode_response(body);
    let _ = gemini::decode_response(body, "p");
}

/// Feeds (name, data) events to `decoder`, then whatever it produced to
/// both client encoders: errors are fine, panics are not.
fn stream_smoke(mut decoder: Box<dyn StreamDecoder>, events: &[(Option<String>, Vec<u8>)]) {
    let mut out = Vec::new();
    for (name, data) in events {
        let _ = decoder.decode(name.as_deref(), data, &mut out);
    }
    decoder.end(&mut out);
    let mut bytes = Vec::new();
    let mut o = openai::Encoder::new(MODEL, 0, true);
    let mut a = anthropic::Encoder::new(MODEL);
    for e in &out {
        o.encode(e, &mut bytes);
        a.encode(e, &mut bytes);
    }
    o.error("kind", "message", &mut bytes);
    a.error("kind", "message", &mut bytes);
}

fn stream_input() -> impl Strategy<Value = Vec<(Option<String>, Vec<u8>)>> {
    let name = option::of(prop_oneof![word(), any::<String>()]);
    let data = prop_oneof![
        vec(any::<u8>(), 0..64),
        fuzz_json().prop_map(|v| v.to_string().into_bytes()),
        Just(b"[DONE]".to_vec()),
    ];
    prop_oneof![
        3 => vec((name, data), 0..12),
        // A valid stream of one format with one event's data mutated.
        1 => (response_and_chunking(), any::<bool>(), any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>(), any::<bool>())
            .prop_map(|((resp, chunking), anthropic, which, at, byte, cut)| {
                let mut bytes = Vec::new();
                let events = events_of(&resp, &chunking);
                if anthropic {
                    let mut e = anthropic::Encoder::new(MODEL);
                    events.iter().for_each(|ev| e.encode(ev, &mut bytes));
                } else {
                    let mut e = openai::Encoder::new(MODEL, 0, true);
                    events.iter().for_each(|ev| e.encode(ev, &mut bytes));
                }
                let mut sse = sse_events(&bytes);
                let i = which.index(sse.len());
                let (name, data) = std::mem::take(&mut sse[i]);
                sse[i] = (name, mutate(data, at, byte, cut));
                sse
            }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn request_and_response_decoders_never_panic(body in request_bytes()) {
        request_smoke(&body);
    }

    #[test]
    fn stream_decoders_never_panic(events in stream_input()) {
        stream_smoke(Box::new(openai::Decoder::default()), &events);
        stream_smoke(Box::new(anthropic::Decoder::default()), &events);
        stream_smoke(Box::new(gemini::Decoder::new("p")), &events);
    }
}

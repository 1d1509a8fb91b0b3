//! The `echo` knob in every wire format: the answer is the last user text,
//! escaped, its words the tokens, cut by the output limit.

use serde_json::{json, Value};

use super::anthropic::{events, names, text_deltas};
use super::gemini::{chunks, text};
use super::stream::{content_of, ERROR_EVENT};
use super::{read_until_end, sse_chunks, sse_events, start_with, text_of, Harness};
use crate::{Knobs, Outcome};

/// Quotes, a backslash, two spaces in a row (an empty word), multi-byte
/// characters and a placeholder; 8 words.
const TEXT: &str = r#"Say "hi"  to C:\tmp, café ✓ [EMAIL_1]"#;
const WORDS: u64 = 8;
/// The first 3 tokens: `Say`, ` "hi"` and ` ` (the empty word).
const FIRST_3: &str = r#"Say "hi" "#;

const CHAT: &str = "/v1/chat/completions";
const AZURE: &str = "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21";
const AZURE_KEY: [(&str, &str); 1] = [("api-key", "k")];
const MESSAGES: &str = "/v1/messages";
const ANTHROPIC: [(&str, &str); 2] = [("x-api-key", "k"), ("anthropic-version", "2023-06-01")];
const GEMINI_KEY: [(&str, &str); 1] = [("x-goog-api-key", "k")];

fn echo() -> Knobs {
    Knobs { echo: true, ..Knobs::default() }
}

/// `TEXT` as two text parts around a part without text.
fn parts(other: Value) -> Value {
    let (a, b) = TEXT.split_at(TEXT.find("C:").unwrap());
    json!([{"type": "text", "text": a}, other, {"type": "text", "text": b}])
}

/// A chat whose last user message has `content`, after other turns.
fn chat_body(content: Value) -> Value {
    json!({"model": "m", "messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "an older question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": content}]})
}

/// The non-stream answer to `body` and the chunks of its stream (with usage).
async fn chat_both(h: &Harness, path: &str, headers: &[(&str, &str)], body: &Value) -> (Value, Vec<Value>) {
    let (status, whole) = h.post_json_with(path, headers, body).await;
    assert_eq!(status, 200, "{whole}");
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    stream["stream_options"] = json!({"include_usage": true});
    let (status, sse) = text_of(h.post_with(path, headers, &stream).await).await;
    assert_eq!(status, 200, "{sse}");
    (whole, sse_chunks(&sse))
}

/// Both chat answers say `expected` in `tokens` tokens, then `finish`; the
/// stream has one content chunk per token.
fn assert_chat(answers: &(Value, Vec<Value>), expected: &str, tokens: u64, finish: &str) {
    let (whole, chunks) = answers;
    let choice = &whole["choices"][0];
    assert_eq!((&choice["message"]["content"], &choice["finish_reason"]), (&json!(expected), &json!(finish)));
    assert_eq!(whole["usage"]["completion_tokens"], tokens);
    assert_eq!(content_of(chunks, 0), expected);
    let n = usize::try_from(tokens).unwrap();
    assert_eq!(chunks.len(), n + 3, "role, {tokens} tokens, finish, usage: {chunks:?}");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks[1..=n].iter().all(|c| keys_of(&c["choices"][0]["delta"]) == ["content"]));
    assert_eq!(chunks[n + 1]["choices"][0]["finish_reason"], finish);
    assert_eq!(chunks[n + 2]["usage"]["completion_tokens"], tokens);
}

fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn openai_echoes_the_last_user_message_escaped() {
    let h = start_with(echo()).await;
    let image = json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}});
    for content in [json!(TEXT), parts(image)] {
        let answers = chat_both(&h, CHAT, &[], &chat_body(content)).await;
        assert_chat(&answers, TEXT, WORDS, "stop");
    }
    // The tokens, one per chunk, are the words split on single spaces.
    let (_, chunks) = chat_both(&h, CHAT, &[], &chat_body(json!(TEXT))).await;
    let tokens: Vec<&str> =
        chunks[1..=8].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert_eq!(tokens, ["Say", " \"hi\"", " ", " to", " C:\\tmp,", " café", " ✓", " [EMAIL_1]"]);
    // Every choice echoes; usage counts them all.
    let mut body = chat_body(json!(TEXT));
    body["n"] = json!(2);
    let (whole, chunks) = chat_both(&h, CHAT, &[], &body).await;
    assert_eq!(whole["choices"][1]["message"]["content"], TEXT);
    assert_eq!(whole["usage"]["completion_tokens"], 2 * WORDS);
    assert_eq!((content_of(&chunks, 0), content_of(&chunks, 1)), (TEXT.to_owned(), TEXT.to_owned()));
    h.shutdown().await;
}

#[tokio::test]
async fn openai_echo_is_cut_by_the_output_limit_and_may_be_empty() {
    let h = start_with(echo()).await;
    let mut body = chat_body(json!(TEXT));
    body["max_tokens"] = json!(3);
    assert_chat(&chat_both(&h, CHAT, &[], &body).await, FIRST_3, 3, "length");
    body["max_completion_tokens"] = json!(WORDS);
    assert_chat(&chat_both(&h, CHAT, &[], &body).await, TEXT, WORDS, "stop");

    assert_chat(&chat_both(&h, CHAT, &[], &chat_body(json!(""))).await, "", 0, "stop");
    // No text part, no user message: nothing to echo.
    let image = json!([{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]);
    assert_chat(&chat_both(&h, CHAT, &[], &chat_body(image)).await, "", 0, "stop");
    let system_only = json!({"model": "m", "messages": [{"role": "system", "content": "Be terse."}]});
    assert_chat(&chat_both(&h, CHAT, &[], &system_only).await, "", 0, "stop");
    // A lone space is two empty words.
    assert_chat(&chat_both(&h, CHAT, &[], &chat_body(json!(" "))).await, " ", 2, "stop");
    h.shutdown().await;
}

#[tokio::test]
async fn tool_calls_are_unchanged_and_lorem_stays_the_default() {
    let h = start_with(echo()).await;
    let mut body = chat_body(json!(TEXT));
    body["tools"] = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let (_, v) = h.post_json(CHAT, &body).await;
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "get_weather");

    h.sim.set_knobs(None, Knobs { answer_tokens: 3, ..Knobs::default() });
    let (_, v) = h.post_json(CHAT, &chat_body(json!(TEXT))).await;
    assert_eq!(v["choices"][0]["message"]["content"], "lorem ipsum dolor");
    h.shutdown().await;
}

#[tokio::test]
async fn azure_echoes_like_openai() {
    let h = start_with(Knobs::default()).await;
    h.sim.set_knobs(Some("my-deployment"), echo());
    let image = json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}});
    let answers = chat_both(&h, AZURE, &AZURE_KEY, &chat_body(parts(image))).await;
    assert_chat(&answers, TEXT, WORDS, "stop");
    assert!(answers.1.iter().all(|c| c["model"] == "my-deployment"));
    let mut body = chat_body(json!(TEXT));
    body["max_tokens"] = json!(3);
    assert_chat(&chat_both(&h, AZURE, &AZURE_KEY, &body).await, FIRST_3, 3, "length");
    assert_chat(&chat_both(&h, AZURE, &AZURE_KEY, &chat_body(json!(""))).await, "", 0, "stop");
    h.shutdown().await;
}

/// A Messages request whose last user message has `content`.
fn messages_body(content: Value, max_tokens: u64) -> Value {
    json!({"model": "m", "max_tokens": max_tokens, "system": "Be terse.", "messages": [
        {"role": "user", "content": "an older question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": content}]})
}

/// The Message answering `body`, and the events of its stream.
async fn messages_both(h: &Harness, body: &Value) -> (Value, Vec<(String, Value)>) {
    let (status, whole) = h.post_json_with(MESSAGES, &ANTHROPIC, body).await;
    assert_eq!(status, 200, "{whole}");
    let mut stream = body.clone();
    stream["stream"] = json!(true);
    let (status, sse) = text_of(h.post_with(MESSAGES, &ANTHROPIC, &stream).await).await;
    assert_eq!(status, 200, "{sse}");
    (whole, events(&sse))
}

/// Both Anthropic answers say `expected` in `tokens` tokens, then `stop_reason`.
fn assert_message(answers: &(Value, Vec<(String, Value)>), expected: &str, tokens: u64, stop_reason: &str) {
    let (whole, events) = answers;
    assert_eq!(whole["content"], json!([{"type": "text", "text": expected}]));
    assert_eq!((&whole["stop_reason"], &whole["usage"]["output_tokens"]), (&json!(stop_reason), &json!(tokens)));
    assert_eq!(text_deltas(events), expected);
    let mut expected_names = vec!["message_start", "content_block_start", "ping"];
    expected_names.extend(std::iter::repeat_n("content_block_delta", usize::try_from(tokens).unwrap()));
    expected_names.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names(events), expected_names);
    let delta = &events[events.len() - 2].1;
    assert_eq!(
        (&delta["delta"]["stop_reason"], &delta["usage"]["output_tokens"]),
        (&json!(stop_reason), &json!(tokens))
    );
}

#[tokio::test]
async fn anthropic_echoes_the_last_user_message() {
    let h = start_with(echo()).await;
    let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}});
    for content in [json!(TEXT), parts(image)] {
        assert_message(&messages_both(&h, &messages_body(content, 1024)).await, TEXT, WORDS, "end_turn");
    }
    assert_message(&messages_both(&h, &messages_body(json!(TEXT), 3)).await, FIRST_3, 3, "max_tokens");
    assert_message(&messages_both(&h, &messages_body(json!(TEXT), WORDS)).await, TEXT, WORDS, "end_turn");
    assert_message(&messages_both(&h, &messages_body(json!(""), 1024)).await, "", 0, "end_turn");
    // A tool result is not text: nothing to echo.
    let result = json!([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]);
    assert_message(&messages_both(&h, &messages_body(result, 1024)).await, "", 0, "end_turn");
    h.shutdown().await;
}

fn gemini_body(parts: Value) -> Value {
    json!({"systemInstruction": {"parts": [{"text": "Be terse."}]}, "contents": [
        {"role": "user", "parts": [{"text": "an older question"}]},
        {"role": "model", "parts": [{"text": "an answer"}]},
        {"role": "user", "parts": parts}]})
}

/// The `generateContent` answer to `body` and the chunks of its stream.
async fn gemini_both(h: &Harness, body: &Value) -> (Value, Vec<Value>) {
    let (status, whole) = h.post_json_with("/v1beta/models/m:generateContent", &GEMINI_KEY, body).await;
    assert_eq!(status, 200, "{whole}");
    let url = "/v1beta/models/m:streamGenerateContent?alt=sse";
    let (status, sse) = text_of(h.post_with(url, &GEMINI_KEY, body).await).await;
    assert_eq!(status, 200, "{sse}");
    (whole, chunks(&sse))
}

/// Both Gemini answers say `expected` in `tokens` tokens, then `finish`;
/// the stream in `chunk_count` chunks.
fn assert_gemini(answers: &(Value, Vec<Value>), expected: &str, tokens: u64, finish: &str, chunk_count: usize) {
    let (whole, chunks) = answers;
    assert_eq!(text(whole), expected);
    assert_eq!(whole["candidates"][0]["finishReason"], finish);
    assert_eq!(whole["usageMetadata"]["candidatesTokenCount"], tokens);
    assert_eq!(chunks.iter().map(text).collect::<String>(), expected);
    assert_eq!(chunks.len(), chunk_count);
    let last = &chunks[chunk_count - 1];
    assert_eq!(last["candidates"][0]["finishReason"], finish);
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], tokens);
}

#[tokio::test]
async fn gemini_echoes_the_last_user_content() {
    let h = start_with(echo()).await;
    let (a, b) = TEXT.split_at(TEXT.find("C:").unwrap());
    let split = json!([{"text": a}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}, {"text": b}]);
    for parts in [json!([{"text": TEXT}]), split] {
        // 8 words: chunks of 4.
        assert_gemini(&gemini_both(&h, &gemini_body(parts)).await, TEXT, WORDS, "STOP", 2);
    }
    let mut body = gemini_body(json!([{"text": TEXT}]));
    body["generationConfig"] = json!({"maxOutputTokens": 3});
    assert_gemini(&gemini_both(&h, &body).await, FIRST_3, 3, "MAX_TOKENS", 1);
    assert_gemini(&gemini_both(&h, &gemini_body(json!([{"text": ""}]))).await, "", 0, "STOP", 1);
    // A single-turn request may leave out `role`.
    let single = json!({"contents": [{"parts": [{"text": TEXT}]}]});
    assert_gemini(&gemini_both(&h, &single).await, TEXT, WORDS, "STOP", 2);
    h.shutdown().await;
}

#[tokio::test]
async fn cut_and_error_after_tokens_count_echoed_tokens() {
    let h = start_with(Knobs { error_after_tokens: Some(2), ..echo() }).await;
    let mut body = chat_body(json!(TEXT));
    body["stream"] = json!(true);
    let (sse, failed) = read_until_end(h.post(CHAT, &body).await).await;
    assert!(!failed && sse.ends_with(ERROR_EVENT), "{sse}");
    let events = sse_events(&sse);
    let words: Vec<Value> = events[1..3].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(content_of(&words, 0), r#"Say "hi""#);
    h.wait_for(|r| r.outcome == Outcome::Errored).await;

    h.sim.set_knobs(None, Knobs { cut_after_tokens: Some(5), ..echo() });
    let url = "/v1beta/models/m:streamGenerateContent?alt=sse";
    let (sse, failed) =
        read_until_end(h.post_with(url, &GEMINI_KEY, &gemini_body(json!([{"text": TEXT}]))).await).await;
    assert!(failed, "the connection is dropped: {sse}");
    let sent = chunks(&sse);
    assert_eq!(sent.iter().map(text).collect::<String>(), r#"Say "hi"  to C:\tmp,"#);
    assert!(sent.iter().all(|c| c["candidates"][0].get("finishReason").is_none()));
    h.wait_for(|r| r.outcome == Outcome::Cut).await;
    h.shutdown().await;
}

//! OpenAI chat completions (non-streamed) ⇄ canonical.

use super::wire::{
    completion_id, finish_reason, finish_reason_str, parse, shape_error, signature_extra, signature_from_extra,
    stop_sequence, InUsage, OutFunctionCall, OutToolCall, OutUsage,
};
use crate::canonical::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Deserialize)]
struct InResponse<'a> {
    id: Option<String>,
    model: Option<String>,
    created: Option<i64>,
    #[serde(borrow)]
    choices: Option<Vec<&'a RawValue>>,
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InChoice {
    message: InMessage,
    finish_reason: Option<String>,
    /// vLLM: the stop string (or token id) that ended the answer.
    stop_reason: Option<Value>,
}

#[derive(Deserialize)]
struct InMessage {
    content: Option<String>,
    /// DeepSeek, older vLLM.
    reasoning_content: Option<String>,
    /// Newer vLLM, Ollama.
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<InToolCall>>,
}

#[derive(Deserialize)]
struct InToolCall {
    id: Option<String>,
    function: InFunctionCall,
    /// Gemini's OpenAI-compatible endpoint: the thought signature.
    extra_content: Option<Value>,
}

#[derive(Deserialize)]
struct InFunctionCall {
    name: Option<String>,
    arguments: Option<String>,
}

/// OpenAI chat completion (provider body) → canonical. Reads `choices[0]`;
/// vendor extras (Azure filter results, vLLM `stop_reason`, DeepSeek cache
/// counts) are tolerated. A `refusal` becomes text with finish
/// `ContentFilter`.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let resp: InResponse = serde_json::from_slice(body).map_err(|e| shape_error("", e))?;
    let choice = match resp.choices.as_deref() {
        Some([first, ..]) => *first,
        Some([]) => return Err(TranslateError::new("choices", "the response has no choices")),
        None => return Err(TranslateError::new("choices", "`choices` is missing")),
    };
    let choice: InChoice = parse(choice, "choices[0]")?;
    let message = choice.message;
    let mut parts = Vec::new();
    if let Some(text) = message.reasoning_content.or(message.reasoning).filter(|t| !t.is_empty()) {
        parts.push(Part::Thinking { text, signature: None });
    }
    if let Some(text) = message.content.filter(|t| !t.is_empty()) {
        parts.push(Part::text(text));
    }
    let refusal = message.refusal.filter(|t| !t.is_empty());
    let refused = refusal.is_some();
    if let Some(text) = refusal {
        parts.push(Part::text(text));
    }
    for (j, call) in message.tool_calls.unwrap_or_default().into_iter().enumerate() {
        parts.push(Part::ToolCall(ToolCall {
            id: call.id.unwrap_or_else(|| format!("call_{j}")),
            name: call.function.name.unwrap_or_default(),
            arguments: call.function.arguments.unwrap_or_default(),
            signature: signature_from_extra(call.extra_content.as_ref()),
        }));
    }
    let finish = match (refused, choice.finish_reason.as_deref()) {
        (true, _) => Some(FinishReason::ContentFilter),
        (false, reason) => reason.map(finish_reason),
    };
    let usage = match resp.usage {
        Some(raw) => Some(parse::<InUsage>(raw, "usage")?.canonical()),
        None => None,
    };
    Ok(ChatResponse {
        id: resp.id.unwrap_or_default(),
        model: resp.model.unwrap_or_default(),
        created: resp.created.unwrap_or(0),
        parts,
        finish,
        stop_sequence: stop_sequence(choice.stop_reason.as_ref()),
        usage,
    })
}

#[derive(Serialize)]
struct OutResponse<'a> {
    id: String,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: [OutChoice<'a>; 1],
    usage: OutUsage,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    message: OutMessage<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    refusal: (),
}

/// Canonical → OpenAI chat completion body, reporting `model`. Text parts
/// are joined into `content` (null when there is none), thinking into
/// `reasoning_content` (the DeepSeek / vLLM field); thinking signatures
/// have no OpenAI field. Usage is zero when unknown.
pub fn encode_response(resp: &ChatResponse, model: &str) -> Vec<u8> {
    let mut text: Option<String> = None;
    let mut thinking: Option<String> = None;
    let mut tool_calls = Vec::new();
    for part in &resp.parts {
        match part {
            Part::Text { text: t, .. } => text.get_or_insert_with(String::new).push_str(t),
            Part::Thinking { text: t, .. } => thinking.get_or_insert_with(String::new).push_str(t),
            Part::ToolCall(call) => tool_calls.push(OutToolCall {
                id: &call.id,
                kind: "function",
                function: OutFunctionCall { name: &call.name, arguments: &call.arguments },
                extra_content: signature_extra(call.signature.as_deref()),
            }),
            // A response holds no images or tool results.
            Part::Image(_) | Part::ToolResult(_) => {}
        }
    }
    let out = OutResponse {
        id: completion_id(&resp.id, resp.created),
        object: "chat.completion",
        created: resp.created,
        model,
        choices: [OutChoice {
            index: 0,
            message: OutMessage {
                role: "assistant",
                content: text,
                tool_calls,
                reasoning_content: thinking,
                refusal: (),
            },
            logprobs: (),
            finish_reason: resp.finish.map(finish_reason_str),
        }],
        usage: OutUsage::new(&resp.usage.unwrap_or_default()),
    };
    serde_json::to_vec(&out).unwrap_or_default()
}

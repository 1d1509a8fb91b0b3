//! The one place the pipeline picks a translator by format: the client's
//! format (the *dialect*: OpenAI or Anthropic) on one side, the
//! deployment's on the other, the canonical model in between
//! (`switchyard-translate`).
//!
//! Same-format OpenAI requests never come here: they keep the
//! pass-through fast path (`attempt.rs`). Everything else is decoded once
//! per request into canonical form and encoded per deployment tried.

use super::admit::Head;
use crate::error::{ErrorKind, GatewayError};
use crate::tokenize;
use bytes::Bytes;
use switchyard_providers::{Operation, ProviderError, ProviderErrorKind};
use switchyard_translate::{
    anthropic, gemini, openai, ChatRequest, EmbedRequest, Format, Part, StreamDecoder, StreamEncoder, TokenUsage,
    TranslateError,
};
use switchyard_types::Usage;

/// The client's request in canonical form. One per request, on the stack
/// of the attempt loop: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Canonical {
    Chat(ChatRequest),
    Embed(EmbedRequest),
}

/// What a translated attempt needs to turn the answer back.
#[derive(Clone, Copy)]
pub struct Translation {
    /// The deployment's format (what comes back).
    pub from: Format,
    /// The client's format (what goes out).
    pub to: Format,
    /// Embeddings: the client asked for base64.
    pub base64: bool,
}

/// A client body the translator refused: the client's error, naming the
/// field.
fn refused(e: TranslateError) -> GatewayError {
    let mut out = GatewayError::new(ErrorKind::InvalidRequest, e.message);
    if !e.field.is_empty() {
        out.param = Some(e.field);
    }
    out
}

/// Decodes the client's body (in `dialect`) into canonical form.
pub fn decode(op: Operation, dialect: Format, body: &[u8]) -> Result<Canonical, GatewayError> {
    let decoded = match (op, dialect) {
        (Operation::Chat, Format::Anthropic) => anthropic::decode_request(body).map(Canonical::Chat),
        (Operation::Chat, _) => openai::decode_request(body).map(Canonical::Chat),
        (Operation::Embeddings, _) => openai::decode_embed_request(body).map(Canonical::Embed),
    };
    decoded.map_err(refused)
}

/// Encodes the canonical request for a deployment in `format`.
pub fn encode(canonical: &Canonical, format: Format, model: &str) -> Result<Bytes, GatewayError> {
    let encoded = match (canonical, format) {
        (Canonical::Chat(r), Format::OpenAi) => openai::encode_request(r, model),
        (Canonical::Chat(r), Format::Anthropic) => anthropic::encode_request(r, model),
        (Canonical::Chat(r), Format::Gemini) => gemini::encode_request(r),
        (Canonical::Embed(r), Format::Gemini) => gemini::encode_embed_request(r, model),
        (Canonical::Embed(_), other) => Err(TranslateError::new(
            "model",
            format!("embeddings cannot be translated to a {} deployment", other.as_str()),
        )),
    };
    encoded.map(Bytes::from).map_err(refused)
}

/// The request for `deployment`, encoded from the canonical form (the
/// buffered, rescued and continuation attempts, which always go through it).
pub fn upstream_request(
    op: Operation,
    request_id: &str,
    deployment: &crate::runtime::Deployment,
    canonical: &Canonical,
    stream: bool,
) -> Result<switchyard_providers::UpstreamRequest, GatewayError> {
    Ok(switchyard_providers::UpstreamRequest {
        operation: op,
        model: deployment.model.clone(),
        body: encode(canonical, deployment.format, &deployment.model)?,
        stream,
        request_id: request_id.to_string(),
        head_by: None,
    })
}

/// Turns a whole upstream answer into the client's format, with its usage
/// (reported, or counted when the provider gave none).
pub fn response(
    t: Translation,
    op: Operation,
    head: &Head<'_>,
    request_body: &[u8],
    request_id: &str,
    body: &[u8],
) -> Result<(Bytes, Usage), ProviderError> {
    let bad = |e: TranslateError| {
        ProviderError::new(ProviderErrorKind::Protocol, format!("could not read the upstream answer: {e}"))
    };
    if op == Operation::Embeddings {
        let resp = gemini::decode_embed_response(body).map_err(bad)?;
        let input = resp.input_tokens.unwrap_or_else(|| tokenize::count_request(request_body));
        let usage = match resp.input_tokens {
            Some(n) => Usage::reported(n, 0),
            None => Usage::estimated(input, 0),
        };
        let resp = switchyard_translate::EmbedResponse { input_tokens: Some(input), ..resp };
        return Ok((Bytes::from(openai::encode_embed_response(&resp, &head.model, t.base64)), usage));
    }
    let resp = match t.from {
        Format::OpenAi => openai::decode_response(body),
        Format::Anthropic => anthropic::decode_response(body),
        Format::Gemini => gemini::decode_response(body, request_id),
    }
    .map_err(bad)?;
    let mut resp = resp;
    if resp.created == 0 {
        resp.created = crate::now_unix_ms() / 1000; // Gemini says no time
    }
    let usage = match resp.usage {
        Some(u) => reported(&u),
        None => {
            let mut text = String::new();
            collect_text(&resp.parts, &mut text);
            Usage::estimated(tokenize::count_request(request_body), tokenize::count(&text))
        }
    };
    let out = match t.to {
        Format::Anthropic => anthropic::encode_response(&resp, &head.model),
        _ => openai::encode_response(&resp, &head.model),
    };
    Ok((Bytes::from(out), usage))
}

/// Usage of a whole same-format answer other than OpenAI's (which is
/// peeked without a full parse): read through the format's decoder.
pub fn passed_usage(format: Format, head: &Head<'_>, request_body: &[u8], body: &[u8]) -> Usage {
    let decoded = match format {
        Format::Anthropic => anthropic::decode_response(body),
        Format::Gemini => gemini::decode_response(body, ""),
        Format::OpenAi => openai::decode_response(body),
    };
    match decoded {
        Ok(resp) => match resp.usage {
            Some(u) => reported(&u),
            None => {
                let mut text = String::new();
                collect_text(&resp.parts, &mut text);
                Usage::estimated(tokenize::count_request(request_body), tokenize::count(&text))
            }
        },
        Err(_) => {
            let _ = head;
            Usage::estimated(tokenize::count_request(request_body), 0)
        }
    }
}

pub fn reported(u: &TokenUsage) -> Usage {
    Usage::reported(u.input_tokens, u.output_tokens).with_cache(u.cache_read_tokens, u.cache_write_tokens)
}

/// Every piece of text a prompt holds (system, messages, tool results,
/// tool calls and tool schemas), for counting tokens.
pub fn prompt_text(request: &ChatRequest) -> String {
    let mut out = String::new();
    for s in &request.system {
        out.push_str(&s.text);
        out.push('\n');
    }
    for m in &request.messages {
        collect_text(&m.parts, &mut out);
        out.push('\n');
    }
    for t in &request.tools {
        out.push_str(&t.name);
        out.push_str(t.description.as_deref().unwrap_or(""));
        out.push_str(&t.parameters.to_string());
    }
    out
}

fn collect_text(parts: &[Part], out: &mut String) {
    for p in parts {
        match p {
            Part::Text { text, .. } | Part::Thinking { text, .. } => out.push_str(text),
            Part::ToolCall(c) => out.push_str(&c.arguments),
            Part::ToolResult(r) => collect_text(&r.content, out),
            Part::Image(_) => {}
        }
    }
}

/// A whole upstream answer (in `from`) as the SSE bytes of the same answer
/// streamed in the client's format — usage always included, so the relay
/// can account for it (and drop it when the client did not ask) — and its
/// usage. For mode degradation: a buffered answer served as a stream.
pub fn replay(
    from: Format,
    dialect: Format,
    head: &Head<'_>,
    request_id: &str,
    body: &[u8],
) -> Result<Bytes, ProviderError> {
    let mut resp = match from {
        Format::OpenAi => openai::decode_response(body),
        Format::Anthropic => anthropic::decode_response(body),
        Format::Gemini => gemini::decode_response(body, request_id),
    }
    .map_err(|e| ProviderError::new(ProviderErrorKind::Protocol, format!("could not read the upstream answer: {e}")))?;
    if resp.created == 0 {
        resp.created = crate::now_unix_ms() / 1000;
    }
    let mut encoder: Box<dyn StreamEncoder> = match dialect {
        Format::Anthropic => Box::new(anthropic::Encoder::new(&head.model)),
        _ => Box::new(openai::Encoder::new(&head.model, resp.created, true)),
    };
    let mut out = Vec::new();
    for event in switchyard_translate::stream_events(&resp) {
        encoder.encode(&event, &mut out);
    }
    Ok(Bytes::from(out))
}

/// The stream decoder for a deployment's format.
pub fn decoder(format: Format, request_id: &str) -> Box<dyn StreamDecoder> {
    match format {
        Format::OpenAi => Box::<openai::Decoder>::default(),
        Format::Anthropic => Box::<anthropic::Decoder>::default(),
        Format::Gemini => Box::new(gemini::Decoder::new(request_id)),
    }
}

/// The stream encoder for the client's format.
pub fn encoder(dialect: Format, head: &Head<'_>) -> Box<dyn StreamEncoder> {
    match dialect {
        Format::Anthropic => Box::new(anthropic::Encoder::new(&head.model)),
        _ => Box::new(openai::Encoder::new(&head.model, crate::now_unix_ms() / 1000, head.include_usage)),
    }
}

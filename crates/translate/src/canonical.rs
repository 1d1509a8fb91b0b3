//! The canonical model: one request, response and stream-event form that
//! every ingress and every provider translates to and from.
//!
//! Shape: close to Anthropic's content blocks (a message is a role and a
//! list of parts; tool calls and tool results are parts), because that form
//! holds everything the other formats can say without loss:
//!
//! - OpenAI's `role:"tool"` messages become [`Part::ToolResult`]s in a
//!   [`Role::User`] message, one message for consecutive results;
//! - system prompts are lifted out of the message list into
//!   [`ChatRequest::system`], in order;
//! - tool-call arguments stay JSON *text* (OpenAI's form), so arguments that
//!   are not valid JSON are carried as sent and refused only by a format that
//!   needs an object.
//!
//! What a target format cannot express is refused by its encoder with a
//! [`TranslateError`] naming the field; nothing is dropped silently. Fields
//! listed in the docs as hints that change no output (e.g. OpenAI's `user`)
//! are the only exception, and each encoder documents them.

use serde_json::Value;
use std::fmt;

/// The wire formats the gateway translates between.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// OpenAI chat completions / embeddings (also Azure OpenAI, vLLM, …).
    OpenAi,
    /// Anthropic messages.
    Anthropic,
    /// Google Gemini generateContent / embedContent.
    Gemini,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::Anthropic => "anthropic",
            Format::Gemini => "gemini",
        }
    }
}

// ---------------------------------------------------------------------------
// Requests

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// The model (route) name the client asked for. Encoders write the
    /// `model` argument they are given instead.
    pub model: String,
    /// System instructions, in the order they appeared. OpenAI `system` and
    /// `developer` messages and Anthropic/Gemini top-level system prompts.
    pub system: Vec<SystemBlock>,
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)` forbids parallel tool calls.
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat>,
    /// Most output tokens. `None`: the client did not say (Anthropic needs a
    /// value: its encoder applies the documented default).
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u32>,
    pub stop: Vec<String>,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`: the client wants a usage chunk.
    pub include_usage: bool,
    /// An end-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// Extended thinking / reasoning.
    pub reasoning: Option<Reasoning>,
    /// Sampling fields only some formats have. Encoders for formats that
    /// lack one refuse the request naming it.
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    /// Number of choices; only `None` or `Some(1)` is translatable to
    /// formats without it.
    pub n: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SystemBlock {
    pub text: String,
    /// Anthropic `cache_control`, kept so Anthropic → Anthropic keeps it.
    pub cache_control: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text {
        text: String,
        /// Anthropic `cache_control` on the block, kept for Anthropic.
        cache_control: Option<Value>,
    },
    Image(Image),
    /// A tool call made by the assistant.
    ToolCall(ToolCall),
    /// The result of a tool call, sent back by the user side.
    ToolResult(ToolResult),
    /// Reasoning / thinking text the model produced. `signature` is the
    /// provider's opaque token that must be echoed back unchanged.
    Thinking {
        text: String,
        signature: Option<String>,
    },
}

impl Part {
    pub fn text(text: impl Into<String>) -> Part {
        Part::Text { text: text.into(), cache_control: None }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Image {
    /// An `https://` (or other) URL.
    Url { url: String, detail: Option<String> },
    /// Inline data, already split from a `data:` URL.
    Base64 { media_type: String, data: String, detail: Option<String> },
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text (OpenAI's form). May be empty or invalid
    /// when the client sent it so; formats that need an object decide.
    pub arguments: String,
    /// Gemini `thoughtSignature` that travels with a function call.
    pub signature: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    /// Text and image parts.
    pub content: Vec<Part>,
    pub is_error: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments (an object schema).
    pub parameters: Value,
    /// OpenAI `strict`.
    pub strict: Option<bool>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Must call some tool (OpenAI `required`, Anthropic `any`).
    Required,
    /// Must call this tool.
    Named(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ResponseFormat {
    Text,
    /// Any JSON object.
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        strict: Option<bool>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reasoning {
    /// OpenAI `reasoning_effort` (`low` / `medium` / `high` / …).
    pub effort: Option<String>,
    /// Anthropic `thinking.budget_tokens`, Gemini `thinkingBudget`.
    pub budget_tokens: Option<u32>,
}

// ---------------------------------------------------------------------------
// Responses

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    /// Unix seconds.
    pub created: i64,
    /// Text, thinking and tool-call parts, in the order produced.
    pub parts: Vec<Part>,
    pub finish: Option<FinishReason>,
    /// The stop sequence that ended the answer, when the provider says.
    pub stop_sequence: Option<String>,
    pub usage: Option<TokenUsage>,
}

impl ChatResponse {
    /// All text parts joined.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for p in &self.parts {
            if let Part::Text { text, .. } = p {
                out.push_str(text);
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// Hit max_tokens (or the context window).
    Length,
    ToolCalls,
    ContentFilter,
}

/// Token counts in one meaning for every format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// All prompt tokens, *including* cache reads and cache writes (OpenAI's
    /// meaning; Anthropic's `input_tokens` is only the uncached part).
    pub input_tokens: u64,
    /// All output tokens, *including* reasoning (Gemini reports thoughts
    /// separately: its decoder adds them).
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub reasoning_tokens: u64,
}

// ---------------------------------------------------------------------------
// Streams

/// One step of a streamed answer. Decoders turn provider events into these;
/// encoders turn these into client events. Content is indexed by part:
/// `index` counts the parts of the answer in order (text, thinking and tool
/// calls alike), like Anthropic's content-block index.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    /// The answer begins. Input tokens when the provider says them up front.
    Start {
        id: String,
        model: String,
        input_tokens: Option<u64>,
    },
    /// A text part begins at `index` (optional for decoders whose format has
    /// no explicit start; encoders must open the part on its first delta).
    TextDelta {
        index: u32,
        text: String,
    },
    ThinkingDelta {
        index: u32,
        text: String,
    },
    /// The signature that closes a thinking part.
    ThinkingSignature {
        index: u32,
        signature: String,
    },
    /// A tool call begins.
    ToolCallStart {
        index: u32,
        id: String,
        name: String,
        signature: Option<String>,
    },
    /// A piece of a tool call's arguments (JSON text).
    ToolCallDelta {
        index: u32,
        arguments: String,
    },
    /// The part at `index` is complete.
    PartEnd {
        index: u32,
    },
    /// Why the answer ended. Comes once, before the final usage.
    Finish {
        reason: FinishReason,
        stop_sequence: Option<String>,
    },
    /// Usage, cumulative: a later `Usage` replaces an earlier one.
    Usage(TokenUsage),
    /// The provider reported a failure in-band; the stream ends after it.
    Error(StreamError),
    /// The stream ended cleanly (OpenAI `[DONE]`, Anthropic `message_stop`,
    /// end of a Gemini body after a finish reason).
    Done,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StreamError {
    /// The provider's error type / status, e.g. `overloaded_error`.
    pub kind: String,
    pub message: String,
}

/// Turns one provider's stream events into canonical ones. One decoder per
/// stream; it keeps whatever state the format needs (index maps, ids).
pub trait StreamDecoder: Send {
    /// One SSE event: its `event:` name (if any) and its `data:` payload.
    fn decode(&mut self, name: Option<&str>, data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), TranslateError>;
    /// The upstream body ended. Formats without an end sentinel (Gemini)
    /// emit [`StreamEvent::Done`] here when a finish reason was seen.
    fn end(&mut self, out: &mut Vec<StreamEvent>);
}

/// Turns canonical stream events into one client format's SSE bytes.
pub trait StreamEncoder: Send {
    /// Appends the client bytes for `event` to `out` (possibly none: some
    /// events are held until the format can say them, e.g. Anthropic's
    /// `message_delta` carries both the stop reason and the usage).
    fn encode(&mut self, event: &StreamEvent, out: &mut Vec<u8>);
    /// An in-band error event in this format (the stream ends after it).
    fn error(&mut self, kind: &str, message: &str, out: &mut Vec<u8>);
}

// ---------------------------------------------------------------------------
// Embeddings

#[derive(Clone, Debug, PartialEq)]
pub struct EmbedRequest {
    pub model: String,
    pub inputs: Vec<String>,
    pub dimensions: Option<u32>,
    /// OpenAI `encoding_format`: the client wants base64 little-endian f32.
    pub base64: bool,
    pub user: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmbedResponse {
    pub model: String,
    pub vectors: Vec<Vec<f32>>,
    /// Prompt tokens when the provider reports them.
    pub input_tokens: Option<u64>,
}

// ---------------------------------------------------------------------------
// Errors

/// A request or response that cannot be translated. On a request this is
/// the client's error (HTTP 400 naming `field`); on a response it is the
/// provider's (a protocol error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslateError {
    /// The field, in the *source* format's spelling, e.g. `messages[2].content[0].type`.
    pub field: String,
    pub message: String,
}

impl TranslateError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        TranslateError { field: field.into(), message: message.into() }
    }

    /// A field the target format has no way to express.
    pub fn unsupported(field: impl Into<String>, target: Format) -> Self {
        let field = field.into();
        let message = format!("`{field}` cannot be sent to a {} provider, which has no equivalent", target.as_str());
        TranslateError { field, message }
    }
}

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.field)
    }
}

impl std::error::Error for TranslateError {}

// ---------------------------------------------------------------------------
// Helpers every format uses

/// Splits a `data:<media type>;base64,<data>` URL. `None` if it is not one.
pub fn split_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((media_type, data))
}

/// Tool-call arguments as a JSON object, for formats that need one. Empty
/// text is `{}`; anything else must parse to an object.
pub fn arguments_object(arguments: &str, field: &str) -> Result<Value, TranslateError> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(TranslateError::new(field, "tool-call arguments must be a JSON object")),
        Err(e) => Err(TranslateError::new(field, format!("tool-call arguments are not valid JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_split_into_type_and_data() {
        assert_eq!(split_data_url("data:image/png;base64,iVBOR"), Some(("image/png", "iVBOR")));
        assert_eq!(split_data_url("https://x/y.png"), None);
        assert_eq!(split_data_url("data:image/png,raw"), None);
    }

    #[test]
    fn arguments_must_be_an_object() {
        assert_eq!(arguments_object("", "f").ok(), Some(serde_json::json!({})));
        assert_eq!(arguments_object(r#"{"a":1}"#, "f").ok(), Some(serde_json::json!({"a":1})));
        assert_eq!(arguments_object("[1]", "f").err().map(|e| e.field), Some("f".to_string()));
        assert!(arguments_object("{nope", "f").is_err());
    }
}

//! What a request needs from a deployment: capabilities (tools, images,
//! JSON mode) and room in the context window. Read from the client's body
//! in either dialect (OpenAI chat, Anthropic messages) without decoding it:
//! top-level fields from the parsed head, images by a byte search confirmed
//! by a parse of `messages` only when the search hits.

use crate::pipeline::admit::Head;
use crate::runtime::Deployment;
use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_providers::Operation;
use switchyard_types::Capability;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub embeddings: bool,
    pub tools: bool,
    pub vision: bool,
    pub json: bool,
    /// Estimated: the body's bytes / 4 (as limits and budgets estimate).
    pub prompt_tokens: u64,
    /// `max_tokens` / `max_completion_tokens`, or the configured default.
    pub output_tokens: u64,
}

impl Needs {
    pub fn of(op: Operation, head: &Head<'_>, body: &[u8], default_max: u64) -> Needs {
        let (prompt_tokens, output_tokens) = crate::pipeline::limit::estimate(op, head, body.len(), default_max);
        if op == Operation::Embeddings {
            return Needs { embeddings: true, prompt_tokens, ..Needs::default() };
        }
        let non_empty = |field: &str| head.object.get(field).is_some_and(|raw| non_empty_array(raw.get()));
        let json = head.object.get("response_format").is_some_and(|raw| {
            let text = raw.get();
            text.contains("\"json_object\"") || text.contains("\"json_schema\"")
        });
        Needs {
            embeddings: false,
            tools: non_empty("tools") || non_empty("functions"),
            vision: has_images(head),
            json,
            prompt_tokens,
            output_tokens,
        }
    }

    /// The first capability the request needs that `d` lacks.
    pub fn missing(&self, d: &Deployment) -> Option<Capability> {
        let wanted = [
            (self.embeddings, Capability::Embeddings),
            (self.tools, Capability::Tools),
            (self.vision, Capability::Vision),
            (self.json, Capability::Json),
        ];
        wanted.into_iter().find(|(needed, c)| *needed && !d.can(*c)).map(|(_, c)| c)
    }

    /// (needed, window) when prompt + answer allowance exceed `d`'s window.
    pub fn too_long(&self, d: &Deployment) -> Option<(u64, u64)> {
        let needed = self.prompt_tokens.saturating_add(self.output_tokens);
        d.context_window.filter(|w| needed > *w).map(|w| (needed, w))
    }
}

fn non_empty_array(raw: &str) -> bool {
    let t = raw.trim();
    t.starts_with('[') && t[1..].trim_start() != "]"
}

/// Whether a message carries an image part: OpenAI `image_url` /
/// `input_image`, Anthropic `image`. Only bodies that mention "image" in
/// quotes are parsed (their `messages` only, shallowly).
fn has_images(head: &Head<'_>) -> bool {
    let Some(messages) = head.object.get("messages") else { return false };
    let raw = messages.get();
    if !raw.contains("\"image") {
        return false;
    }
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        content: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Part<'a> {
        #[serde(rename = "type")]
        kind: Option<&'a str>,
    }
    let Ok(list) = serde_json::from_str::<Vec<Message<'_>>>(raw) else { return false };
    list.iter().filter_map(|m| m.content).any(|content| {
        serde_json::from_str::<Vec<Part<'_>>>(content.get())
            .is_ok_and(|parts| parts.iter().any(|p| matches!(p.kind, Some("image_url" | "input_image" | "image"))))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipeline::admit::parse;
    use switchyard_translate::Format;

    fn needs(dialect: Format, body: &str) -> Needs {
        let head = parse(Operation::Chat, dialect, body.as_bytes()).unwrap();
        Needs::of(Operation::Chat, &head, body.as_bytes(), 256)
    }

    #[test]
    fn reads_tools_images_json_and_sizes() {
        let plain = r#"{"model":"m","messages":[{"role":"user","content":"an image of \"image\" text"}]}"#;
        let n = needs(Format::OpenAi, plain);
        assert!(!n.tools && !n.vision && !n.json, "{n:?}");
        assert_eq!((n.prompt_tokens, n.output_tokens), ((plain.len() / 4) as u64, 256));

        let rich = r#"{"model":"m","max_tokens":50,"tools":[{"type":"function","function":{"name":"f"}}],
            "response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}},
            "messages":[{"role":"user","content":[{"type":"text","text":"what is this"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        let n = needs(Format::OpenAi, rich);
        assert!(n.tools && n.vision && n.json, "{n:?}");
        assert_eq!(n.output_tokens, 50);

        let empty_tools = r#"{"model":"m","tools":[ ],"response_format":{"type":"text"},"messages":[{"role":"user","content":"hi"}]}"#;
        let n = needs(Format::OpenAi, empty_tools);
        assert!(!n.tools && !n.json, "{n:?}");

        let anthropic = r#"{"model":"m","max_tokens":10,"messages":[{"role":"user","content":[
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}"#;
        assert!(needs(Format::Anthropic, anthropic).vision);
    }
}

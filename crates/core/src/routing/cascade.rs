//! Cascades: on a route with `cascade`, a whole (non-streaming) answer
//! from a step that is not the last is checked, and sent on to the next
//! step when it is cut by the output limit, empty, a refusal, or misses
//! the required pattern. With a cheap-first strategy (`cost`, or
//! `priority` with the cheap deployment first) that is "try cheap, escalate
//! to strong". The escalated attempt is billed (its own usage record, and
//! the request's budget commit); streams are not cascaded (their first
//! bytes are the client's already).

use regex::Regex;
use serde::Deserialize;
use switchyard_config::{CascadeConfig, Escalate};
use switchyard_translate::Format;

pub struct Cascade {
    on: Vec<Escalate>,
    require: Option<Regex>,
}

impl Cascade {
    pub fn build(c: &CascadeConfig) -> Result<Cascade, String> {
        let require = c.require.as_deref().map(Regex::new).transpose().map_err(|e| e.to_string())?;
        Ok(Cascade { on: c.on.clone(), require })
    }

    /// Why this answer (in the client's `dialect`) escalates, if it does:
    /// `length`, `empty`, `refusal` or `check`.
    pub fn verdict(&self, dialect: Format, body: &[u8]) -> Option<&'static str> {
        let a = Answer::read(dialect, body)?;
        if self.on.contains(&Escalate::Length) && a.truncated {
            return Some("length");
        }
        if self.on.contains(&Escalate::Refusal) && a.refused {
            return Some("refusal");
        }
        if self.on.contains(&Escalate::Empty) && a.text.trim().is_empty() && !a.tool_call {
            return Some("empty");
        }
        if self.require.as_ref().is_some_and(|r| !a.tool_call && !r.is_match(&a.text)) {
            return Some("check");
        }
        None
    }
}

/// What a cascade looks at in an answer.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    text: String,
    tool_call: bool,
    truncated: bool,
    refused: bool,
}

impl Answer {
    /// `None` for a body that is not an answer (it is passed on as it is).
    fn read(dialect: Format, body: &[u8]) -> Option<Answer> {
        match dialect {
            Format::Anthropic => {
                #[derive(Deserialize)]
                struct Message {
                    #[serde(default)]
                    content: Vec<Block>,
                    stop_reason: Option<String>,
                }
                #[derive(Deserialize)]
                struct Block {
                    #[serde(rename = "type")]
                    kind: String,
                    #[serde(default)]
                    text: Option<String>,
                }
                let m: Message = serde_json::from_slice(body).ok()?;
                Some(Answer {
                    text: m.content.iter().filter_map(|b| b.text.as_deref()).collect::<Vec<_>>().join(""),
                    tool_call: m.content.iter().any(|b| b.kind == "tool_use"),
                    truncated: m.stop_reason.as_deref() == Some("max_tokens"),
                    refused: m.stop_reason.as_deref() == Some("refusal"),
                })
            }
            _ => {
                #[derive(Deserialize)]
                struct Completion {
                    choices: Vec<Choice>,
                }
                #[derive(Deserialize)]
                struct Choice {
                    finish_reason: Option<String>,
                    message: Option<Message>,
                }
                #[derive(Deserialize)]
                struct Message {
                    content: Option<String>,
                    #[serde(default)]
                    tool_calls: Option<Vec<serde_json::Value>>,
                    #[serde(default)]
                    refusal: Option<String>,
                }
                let c: Completion = serde_json::from_slice(body).ok()?;
                let first = c.choices.into_iter().next()?;
                let m = first.message?;
                Some(Answer {
                    text: m.content.unwrap_or_default(),
                    tool_call: m.tool_calls.is_some_and(|t| !t.is_empty()),
                    truncated: first.finish_reason.as_deref() == Some("length"),
                    refused: m.refusal.is_some_and(|r| !r.is_empty()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cascade(yaml: &str) -> Cascade {
        Cascade::build(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    fn openai(content: Option<&str>, finish: &str, refusal: Option<&str>) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"choices": [{"index": 0, "finish_reason": finish,
            "message": {"role": "assistant", "content": content, "refusal": refusal}}]}))
        .unwrap()
    }

    #[test]
    fn escalates_on_what_it_is_told() {
        let c = cascade("on: [length, empty, refusal]\nrequire: '(?i)answer'");
        let v = |b: Vec<u8>| c.verdict(Format::OpenAi, &b);
        assert_eq!(v(openai(Some("the answer"), "stop", None)), None);
        assert_eq!(v(openai(Some("the ans"), "length", None)), Some("length"));
        assert_eq!(v(openai(Some("  "), "stop", None)), Some("empty"));
        assert_eq!(v(openai(None, "stop", Some("I can't help with that"))), Some("refusal"));
        assert_eq!(v(openai(Some("something else"), "stop", None)), Some("check"));
        let tool = serde_json::to_vec(&serde_json::json!({"choices": [{"finish_reason": "tool_calls",
            "message": {"content": null, "tool_calls": [{"id": "c"}]}}]}))
        .unwrap();
        assert_eq!(v(tool), None, "a tool call is an answer");
        assert_eq!(c.verdict(Format::OpenAi, b"not json"), None);
        let anthropic = |text: &str, stop: &str| {
            serde_json::to_vec(&serde_json::json!({"content": [{"type": "text", "text": text}], "stop_reason": stop}))
                .unwrap()
        };
        assert_eq!(c.verdict(Format::Anthropic, &anthropic("an answer", "end_turn")), None);
        assert_eq!(c.verdict(Format::Anthropic, &anthropic("an ans", "max_tokens")), Some("length"));
        assert_eq!(c.verdict(Format::Anthropic, &anthropic("", "refusal")), Some("refusal"));
        // Only what `on` names.
        let only_length = cascade("on: [length]");
        assert_eq!(only_length.verdict(Format::OpenAi, &openai(Some(""), "stop", None)), None);
    }
}

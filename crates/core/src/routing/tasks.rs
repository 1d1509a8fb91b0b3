//! Task routing: a route with `tasks` sends each request to another route
//! by what the request is — code, reasoning, long context, tool use, …
//!
//! The task is the `x-switchyard-task` header when it names a task the
//! route maps; else the first rule whose conditions all hold; else the
//! route's default. Text conditions (keywords, regex, code) read the last
//! user message; size conditions the prompt estimate; `tools` whether tools
//! are offered. The chosen route is then routed as if the client had named
//! it (its strategy, checks, split and fallbacks), the key having been
//! allowed the route it named.

use super::needs::Needs;
use crate::error::{ErrorKind, GatewayError};
use crate::runtime::{Route, Runtime};
use regex::Regex;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Arc;
use switchyard_config::{TaskWhen, TasksConfig};

pub const HEADER: &str = "x-switchyard-task";

pub struct Tasks {
    rules: Vec<Rule>,
    /// Task → route name.
    routes: HashMap<String, String>,
    default: String,
}

struct Rule {
    task: String,
    /// Lower-cased.
    keywords: Vec<String>,
    regex: Option<Regex>,
    min_prompt_tokens: Option<u64>,
    max_prompt_tokens: Option<u64>,
    tools: Option<bool>,
    code: Option<bool>,
}

/// The task a request was given, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub task: String,
    /// `header`, `rule N` (1-based), or `default`.
    pub by: String,
    /// The route that asked (the one the client named).
    pub via: String,
}

impl Tasks {
    pub fn build(c: &TasksConfig) -> Result<Tasks, String> {
        let rules = c
            .rules
            .iter()
            .map(|r| {
                let w: &TaskWhen = &r.when;
                let regex = w.regex.as_deref().map(Regex::new).transpose().map_err(|e| e.to_string())?;
                Ok(Rule {
                    task: r.task.clone(),
                    keywords: w.keywords.iter().map(|k| k.to_lowercase()).collect(),
                    regex,
                    min_prompt_tokens: w.min_prompt_tokens,
                    max_prompt_tokens: w.max_prompt_tokens,
                    tools: w.tools,
                    code: w.code,
                })
            })
            .collect::<Result<_, String>>()?;
        let routes = c.routes.iter().map(|(t, r)| (t.clone(), r.clone())).collect();
        Ok(Tasks { rules, routes, default: c.default.clone() })
    }

    /// The task for a request: its header, a rule, or the default.
    pub fn choose(&self, header: Option<&str>, needs: &Needs, body: &[u8]) -> (String, String) {
        if let Some(task) = header.map(str::trim).filter(|t| self.routes.contains_key(*t)) {
            return (task.to_string(), "header".into());
        }
        // Read the text once, and only if a rule wants it.
        let wants_text = self.rules.iter().any(|r| !r.keywords.is_empty() || r.regex.is_some() || r.code.is_some());
        let text = if wants_text { last_user_text(body) } else { String::new() };
        let lower = if self.rules.iter().any(|r| !r.keywords.is_empty()) { text.to_lowercase() } else { String::new() };
        let mut code: Option<bool> = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let holds = rule.min_prompt_tokens.is_none_or(|m| needs.prompt_tokens >= m)
                && rule.max_prompt_tokens.is_none_or(|m| needs.prompt_tokens <= m)
                && rule.tools.is_none_or(|t| t == needs.tools)
                && (rule.keywords.is_empty() || rule.keywords.iter().any(|k| lower.contains(k.as_str())))
                && rule.regex.as_ref().is_none_or(|r| r.is_match(&text))
                && rule.code.is_none_or(|c| c == *code.get_or_insert_with(|| looks_like_code(&text)));
            if holds {
                return (rule.task.clone(), format!("rule {}", i + 1));
            }
        }
        (self.default.clone(), "default".into())
    }
}

/// Resolves a task route to the route its task names; other routes are
/// returned as they are.
pub fn resolve(
    rt: &Runtime,
    route: Arc<Route>,
    header: Option<&str>,
    needs: &Needs,
    body: &[u8],
) -> Result<(Arc<Route>, Option<Chosen>), GatewayError> {
    let Some(tasks) = &route.tasks else { return Ok((route, None)) };
    let (task, by) = tasks.choose(header, needs, body);
    let name = tasks.routes.get(&task).map(String::as_str).unwrap_or_default();
    let target = rt.routes.get(name).filter(|r| r.embeddings == route.embeddings).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::UpstreamUnavailable,
            format!("The model `{}` sends task `{task}` to `{name}`, which cannot serve it.", route.name),
        )
    })?;
    Ok((target.clone(), Some(Chosen { task, by, via: route.name.clone() })))
}

/// The text of the last user message: a string content, or its text parts
/// joined by newlines (OpenAI parts and Anthropic blocks alike).
fn last_user_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default)]
        messages: Vec<Message<'a>>,
    }
    #[derive(Deserialize)]
    struct Message<'a> {
        #[serde(default)]
        role: Option<&'a str>,
        #[serde(borrow, default)]
        content: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Part {
        #[serde(default)]
        text: Option<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<Body<'_>>(body) else { return String::new() };
    let Some(content) = parsed.messages.iter().rev().find(|m| m.role == Some("user")).and_then(|m| m.content) else {
        return String::new();
    };
    if let Ok(s) = serde_json::from_str::<String>(content.get()) {
        return s;
    }
    let parts: Vec<Part> = serde_json::from_str(content.get()).unwrap_or_default();
    parts.into_iter().filter_map(|p| p.text).collect::<Vec<_>>().join("\n")
}

/// A fenced block, or at least two lines that read as code: ending in `;`,
/// `{` or `}`, or starting with a keyword of a common language.
fn looks_like_code(text: &str) -> bool {
    if text.contains("```") {
        return true;
    }
    const STARTS: &[&str] = &[
        "def ",
        "class ",
        "import ",
        "from ",
        "fn ",
        "let ",
        "const ",
        "function ",
        "#include",
        "public ",
        "return ",
        "SELECT ",
        "select ",
        "for (",
        "if (",
        "while (",
        "package ",
        "func ",
    ];
    let codeish = text
        .lines()
        .map(str::trim)
        .filter(|l| l.ends_with(';') || l.ends_with('{') || l == &"}" || STARTS.iter().any(|s| l.starts_with(s)))
        .take(2)
        .count();
    codeish >= 2
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tasks(yaml: &str) -> Tasks {
        Tasks::build(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    fn body(text: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"model": "auto", "messages": [
            {"role": "user", "content": "an earlier question about code"},
            {"role": "assistant", "content": "fn main() {}\nlet x = 1;"},
            {"role": "user", "content": [{"type": "text", "text": text}]}]}))
        .unwrap()
    }

    const YAML: &str = r#"
rules:
  - { task: long, when: { min_prompt_tokens: 5000 } }
  - { task: agent, when: { tools: true } }
  - { task: code, when: { code: true } }
  - { task: reasoning, when: { keywords: ["Step by step", "prove"] } }
  - { task: reasoning, when: { regex: "(?i)^why\\b" } }
routes: { long: big, agent: tools, code: coder, reasoning: thinker, chat: small }
default: chat
"#;

    #[test]
    fn header_then_rules_in_order_then_default() {
        let t = tasks(YAML);
        let n = Needs { prompt_tokens: 10, ..Needs::default() };
        let choose = |text: &str, needs: &Needs, header: Option<&str>| t.choose(header, needs, &body(text));
        assert_eq!(choose("hello there", &n, None), ("chat".into(), "default".into()));
        assert_eq!(choose("hello", &n, Some("code")), ("code".into(), "header".into()));
        assert_eq!(choose("hello", &n, Some("unknown")).1, "default", "an unknown task in the header is ignored");
        assert_eq!(choose("Please think STEP BY STEP", &n, None), ("reasoning".into(), "rule 4".into()));
        assert_eq!(choose("Why is the sky blue?", &n, None), ("reasoning".into(), "rule 5".into()));
        assert_eq!(choose("fix this:\n```\nx = 1\n```", &n, None).0, "code");
        assert_eq!(choose("def f(x):\n    return x;\n", &n, None).0, "code");
        let tools = Needs { tools: true, ..n };
        assert_eq!(choose("prove it", &tools, None), ("agent".into(), "rule 2".into()), "earlier rules win");
        let long = Needs { prompt_tokens: 6000, ..n };
        assert_eq!(choose("prove it", &long, None).0, "long");
        // Only the last user message is read (the assistant's code is not).
        assert_eq!(choose("what time is it", &n, None).0, "chat");
    }

    #[test]
    fn code_is_not_seen_in_prose() {
        assert!(!looks_like_code("I went home; then I slept."));
        assert!(!looks_like_code("Let me know what you think"));
        assert!(looks_like_code("int x = 1;\nint y = 2;"));
        assert!(!looks_like_code(""));
        assert_eq!(last_user_text(b"not json"), "");
        assert_eq!(last_user_text(br#"{"messages":[{"role":"user","content":"plain"}]}"#), "plain");
    }
}

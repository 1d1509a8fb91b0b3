//! `${VAR}` and `${VAR:-default}` in the config text.
//!
//! Interpolation happens on the text, before YAML parsing, so a reference
//! can fill any scalar (numbers and booleans too) and errors can name the
//! line. The scanner knows just enough YAML to be safe:
//!
//! | where the reference is            | what happens to the value                          |
//! | --------------------------------- | -------------------------------------------------- |
//! | in a comment (`# …`, or ` # …` after a value) | nothing: comments are never expanded   |
//! | inside `"…"`                      | escaped (`\` `"` and control characters)           |
//! | inside `'…'`                      | `'` doubled; a line break is an error              |
//! | unquoted                          | inserted as is; a value that would change the YAML structure (line break, `: `, ` #`, a leading indicator such as `*` or `&`, a flow character inside `[…]`/`{…}`) is an error asking to quote the reference |
//!
//! `$${` is a literal `${`. `${VAR:-default}` uses the default when `VAR`
//! is unset *or empty*; `${VAR:-}` is how a config says "optional". A
//! variable that is unset and has no default is an error naming the
//! variable and the line — every such reference is reported, and the
//! loader goes on parsing (the reference is replaced by a placeholder) so
//! the other problems in the file are reported in the same run.
//! Defaults cannot contain `}` and references do not nest.

/// Where variable values come from. The process environment in production;
/// a map in tests.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment: the one place config reads it.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        #[allow(clippy::disallowed_methods)] // the one place
        std::env::var(name).ok()
    }
}

impl Env for std::collections::HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// One problem found while interpolating: 1-based line and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    pub line: usize,
    pub message: String,
}

/// Expands every reference in `text`; all problems at once.
pub fn interpolate(text: &str, env: &dyn Env) -> Result<String, Vec<InterpolationError>> {
    let expanded = expand(text, env);
    if expanded.unresolved.is_empty() {
        Ok(expanded.text)
    } else {
        Err(expanded.unresolved.into_iter().map(|u| u.error).collect())
    }
}

/// The text with every reference that could be resolved expanded, and each
/// one that could not replaced by [`Unresolved::placeholder`], a plain
/// token that keeps the YAML parseable.
pub(crate) struct Expanded {
    pub text: String,
    pub unresolved: Vec<Unresolved>,
}

pub(crate) struct Unresolved {
    pub error: InterpolationError,
    pub placeholder: String,
}

/// Every placeholder starts with this; the loader drops follow-on errors
/// about values that contain one (the interpolation error already covers
/// them).
pub(crate) const PLACEHOLDER_PREFIX: &str = "__switchyard_unresolved_";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// What the scanner knows about the place a reference sits in.
#[derive(Clone, Copy)]
struct Context {
    quote: Quote,
    /// Inside `[…]` or `{…}` (flow style), where `,[]{}` are syntax.
    in_flow: bool,
    /// The reference starts a plain scalar, where indicators like `*` or
    /// `&` would be read as syntax.
    at_scalar_start: bool,
}

pub(crate) fn expand(text: &str, env: &dyn Env) -> Expanded {
    let mut scanner =
        Scanner { out: String::with_capacity(text.len()), unresolved: Vec::new(), quote: Quote::None, flow_depth: 0 };
    for (index, line) in text.split_inclusive('\n').enumerate() {
        scanner.line(index + 1, line, env);
    }
    Expanded { text: scanner.out, unresolved: scanner.unresolved }
}

/// Copies the text line by line, expanding references. Quotes and flow
/// brackets can span lines, so their state lives here.
struct Scanner {
    out: String,
    unresolved: Vec<Unresolved>,
    quote: Quote,
    flow_depth: usize,
}

impl Scanner {
    fn line(&mut self, number: usize, line: &str, env: &dyn Env) {
        // The last significant character of the line so far, to tell
        // where a scalar starts. None at the start of the line.
        let mut prev: Option<char> = None;
        let mut i = 0;
        while let Some(c) = line[i..].chars().next() {
            let rest = &line[i..];
            match self.quote {
                Quote::None => {
                    if c == '#' && (i == 0 || line[..i].ends_with([' ', '\t'])) {
                        self.out.push_str(rest);
                        return;
                    }
                    if (c == '"' || c == '\'') && starts_scalar(prev) {
                        self.quote = if c == '"' { Quote::Double } else { Quote::Single };
                    } else if c == '[' || c == '{' {
                        self.flow_depth += 1;
                    } else if c == ']' || c == '}' {
                        self.flow_depth = self.flow_depth.saturating_sub(1);
                    }
                }
                Quote::Double if c == '\\' => {
                    // An escape: copy it and the escaped character as they are.
                    let len = rest.chars().take(2).map(char::len_utf8).sum::<usize>();
                    self.out.push_str(&rest[..len]);
                    i += len;
                    continue;
                }
                Quote::Double if c == '"' => self.quote = Quote::None,
                Quote::Single if rest.starts_with("''") => {
                    self.out.push_str("''");
                    i += 2;
                    continue;
                }
                Quote::Single if c == '\'' => self.quote = Quote::None,
                Quote::Double | Quote::Single => {}
            }
            if rest.starts_with("$${") {
                self.out.push_str("${");
                i += 3;
                prev = Some('$');
            } else if let Some(body) = rest.strip_prefix("${") {
                let context =
                    Context { quote: self.quote, in_flow: self.flow_depth > 0, at_scalar_start: starts_scalar(prev) };
                i += 2 + self.reference(number, body, context, env);
                prev = Some('$');
            } else {
                self.out.push(c);
                if !c.is_whitespace() {
                    prev = Some(c);
                }
                i += c.len_utf8();
            }
        }
    }

    /// Expands the reference whose text after `${` is `body`; returns how
    /// many bytes of `body` it used.
    fn reference(&mut self, line: usize, body: &str, context: Context, env: &dyn Env) -> usize {
        let Some(end) = body.find('}') else {
            self.fail(line, "unterminated \"${\": expected \"}\"".to_string());
            return 0;
        };
        match resolve(&body[..end], env).and_then(|(name, value)| insert(name, &value, context)) {
            Ok(value) => self.out.push_str(&value),
            Err(message) => self.fail(line, message),
        }
        end + 1
    }

    /// Records a problem and writes a placeholder where the value would go.
    fn fail(&mut self, line: usize, message: String) {
        let placeholder = format!("{PLACEHOLDER_PREFIX}{}__", self.unresolved.len());
        self.out.push_str(&placeholder);
        self.unresolved.push(Unresolved { error: InterpolationError { line, message }, placeholder });
    }
}

/// Whether a quote or a reference after `prev` begins a new scalar.
fn starts_scalar(prev: Option<char>) -> bool {
    matches!(prev, None | Some(':' | '-' | '[' | '{' | ',' | '?'))
}

/// The variable's name and value (or default).
fn resolve<'a>(reference: &'a str, env: &dyn Env) -> Result<(&'a str, String), String> {
    let (name, default) = match reference.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (reference, None),
    };
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "\"${{{reference}}}\" is not a valid reference: expected ${{NAME}} or ${{NAME:-default}} with NAME made of letters, digits and _"
        ));
    }
    if default.is_some_and(|d| d.contains("${")) {
        return Err(format!("\"${{{reference}}}\": references do not nest; expected a literal default"));
    }
    match (env.var(name), default) {
        (Some(value), Some(default)) if value.is_empty() => Ok((name, default.to_string())),
        (Some(value), _) => Ok((name, value)),
        (None, Some(default)) => Ok((name, default.to_string())),
        (None, None) => {
            Err(format!("environment variable {name} is not set; write ${{{name}:-default}} to make it optional"))
        }
    }
}

/// The value as it must appear in the text at `context`. Errors never
/// echo the value: it may be a secret.
fn insert(name: &str, value: &str, context: Context) -> Result<String, String> {
    match context.quote {
        Quote::Double => {
            let mut escaped = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '\\' => escaped.push_str("\\\\"),
                    '"' => escaped.push_str("\\\""),
                    '\n' => escaped.push_str("\\n"),
                    '\r' => escaped.push_str("\\r"),
                    '\t' => escaped.push_str("\\t"),
                    c if c.is_control() => escaped.push_str(&format!("\\u{:04X}", u32::from(c))),
                    c => escaped.push(c),
                }
            }
            Ok(escaped)
        }
        Quote::Single => {
            if value.contains(['\n', '\r']) {
                return Err(format!(
                    "the value of {name} contains a line break, which a single-quoted string cannot hold: use double quotes, \"${{{name}}}\""
                ));
            }
            Ok(value.replace('\'', "''"))
        }
        Quote::None => match plain_hazard(value, context) {
            Some(what) => Err(format!(
                "the value of {name} contains {what}, which would change the YAML structure here: put the reference in double quotes, \"${{{name}}}\""
            )),
            None => Ok(value.to_string()),
        },
    }
}

/// Why `value` cannot be pasted unquoted at `context`, if it cannot.
fn plain_hazard(value: &str, context: Context) -> Option<&'static str> {
    if value.contains(['\n', '\r']) {
        return Some("a line break");
    }
    if value.contains(": ") || value.ends_with(':') {
        return Some("\": \"");
    }
    if value.contains(" #") {
        return Some("\" #\"");
    }
    if context.in_flow && value.contains([',', '[', ']', '{', '}']) {
        return Some("a flow character (one of , [ ] { })");
    }
    if context.at_scalar_start {
        let indicator = value
            .starts_with(['&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '#', '[', ']', '{', '}', ','])
            || ["- ", "? ", ": "].iter().any(|p| value.starts_with(p));
        if indicator {
            return Some("a leading YAML indicator");
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn expands_set_variables_and_defaults() {
        let e = env(&[("KEY", "sk-1"), ("EMPTY", "")]);
        assert_eq!(interpolate("a: ${KEY}\n", &e), Ok("a: sk-1\n".into()));
        assert_eq!(interpolate("a: ${NOPE:-x}", &e), Ok("a: x".into()));
        assert_eq!(interpolate("a: ${EMPTY:-x}", &e), Ok("a: x".into()));
        assert_eq!(interpolate("a: ${EMPTY}", &e), Ok("a: ".into()));
        assert_eq!(interpolate("a: ${NOPE:-}", &e), Ok("a: ".into()));
        assert_eq!(interpolate("a: ${KEY}${KEY}", &e), Ok("a: sk-1sk-1".into()));
        assert_eq!(interpolate("a: $${KEY} $5 pa$$word", &e), Ok("a: ${KEY} $5 pa$$word".into()));
        assert_eq!(interpolate("a: \"x-${KEY}\"", &e), Ok("a: \"x-sk-1\"".into()));
    }

    #[test]
    fn default_may_contain_colons() {
        let e = env(&[]);
        assert_eq!(interpolate("u: ${U:-http://x:8000/v1}", &e), Ok("u: http://x:8000/v1".into()));
        assert_eq!(interpolate("u: \"${U:-127.0.0.1:8080}\"", &e), Ok("u: \"127.0.0.1:8080\"".into()));
    }

    #[test]
    fn reports_every_missing_variable_with_its_line() {
        let e = env(&[]);
        let errors = interpolate("a: 1\nb: ${ONE}\n# ${IGNORED}\nc: ${TWO} ${THREE}\n", &e).unwrap_err();
        assert_eq!(errors.len(), 3);
        assert_eq!(errors[0].line, 2);
        assert!(errors[0].message.contains("ONE"));
        assert!(errors[0].message.contains("${ONE:-default}"));
        assert_eq!(errors[2].line, 4);
        assert!(errors[2].message.contains("THREE"));
    }

    #[test]
    fn unresolved_references_leave_parseable_placeholders() {
        let e = env(&[]);
        let out = expand("a: ${ONE}\nb: { c: ${TWO} }\nd: \"${THREE\"\n", &e);
        assert_eq!(out.unresolved.len(), 3);
        let doc: serde_yaml::Value = serde_yaml::from_str(&out.text).unwrap();
        assert_eq!(doc["a"].as_str(), Some(out.unresolved[0].placeholder.as_str()));
        assert_eq!(doc["b"]["c"].as_str(), Some(out.unresolved[1].placeholder.as_str()));
        assert!(doc["d"].as_str().unwrap().starts_with(PLACEHOLDER_PREFIX));
    }

    #[test]
    fn comments_are_never_expanded() {
        let e = env(&[]);
        let text = "# ${A}\n  # ${B}\nkey: 5s   # override with ${C}\nurl: \"a#${D:-x}\" # ${E}\nx: a#${F:-y}\n";
        assert_eq!(
            interpolate(text, &e),
            Ok("# ${A}\n  # ${B}\nkey: 5s   # override with ${C}\nurl: \"a#x\" # ${E}\nx: a#y\n".into())
        );
    }

    #[test]
    fn values_are_escaped_for_quoted_strings() {
        let e = env(&[("V", "a\"b\\c\nd"), ("Q", "it's")]);
        let out = interpolate("x: \"${V}\"\ny: '${Q}'\n", &e).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(doc["x"].as_str(), Some("a\"b\\c\nd"));
        assert_eq!(doc["y"].as_str(), Some("it's"));
        // An apostrophe inside a plain scalar does not open a quote.
        assert_eq!(interpolate("z: don't \"${Q}\"", &e), Ok("z: don't \"${Q}\"".replace("${Q}", "it's")));
    }

    #[test]
    fn values_that_would_change_the_structure_are_errors_without_echoing_them() {
        let e = env(&[("NL", "a\nevil: true"), ("COLON", "a: b"), ("STAR", "*x"), ("COMMA", "a,b"), ("NL2", "x\ny")]);
        for (text, expected) in [
            ("a: ${NL}", "a line break"),
            ("a: ${COLON}", "\": \""),
            ("a: ${STAR}", "leading YAML indicator"),
            ("a: { b: ${COMMA} }", "flow character"),
            ("a: '${NL2}'", "single-quoted"),
        ] {
            let errors = interpolate(text, &e).unwrap_err();
            assert_eq!(errors.len(), 1, "{text}");
            assert!(errors[0].message.contains(expected), "{text}: {}", errors[0].message);
            assert!(!errors[0].message.contains("evil"), "{text}");
        }
        // The same values are fine where YAML cannot misread them.
        assert!(interpolate("a: \"${NL}\"\nb: \"${COLON}\"\nc: x${STAR}\nd: ${COMMA}\n", &e).is_ok());
    }

    #[test]
    fn rejects_malformed_references() {
        let e = env(&[]);
        assert!(interpolate("a: ${}", &e).is_err());
        assert!(interpolate("a: ${1X}", &e).is_err());
        assert!(interpolate("a: ${OPEN", &e).is_err());
        assert!(interpolate("a: ${A-B}", &e).is_err());
        assert!(interpolate("a: ${A:-${B}}", &e).unwrap_err()[0].message.contains("do not nest"));
    }
}

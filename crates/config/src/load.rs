//! Reading a config file: interpolate, parse, deserialise section by
//! section (and list item by item), then validate — all errors at once.
//!
//! A problem in one place never hides a problem in another, and never
//! causes a second, derived error: an item that fails to deserialise is
//! left out but its name is remembered (so a route naming it is not also
//! reported), and a value that holds an unresolved `${VAR}` is reported
//! once, as the missing variable.

use crate::interpolate::{expand, Env, ProcessEnv, PLACEHOLDER_PREFIX};
use crate::suggest::closest;
use crate::validate::{ListOrigin, Origins};
use crate::Config;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// One problem: which file, where in it, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// A path like `routes[1].targets[0]`, or `line 12` for problems found
    /// before the document could be parsed.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.path, self.message)
        }
    }
}

/// Every problem found in one document. Displays as one error per line,
/// `FILE: PATH: MESSAGE`, in document order (what `switchyard config
/// validate` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads, interpolates from the process environment, and validates `path`.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            path: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    load_str(&text, &file, &ProcessEnv)
}

/// Same as [`load_file`] on text already in memory; `file` names it in
/// errors.
pub fn load_str(text: &str, file: &str, env: &dyn Env) -> Result<Config, ConfigErrors> {
    let error = |path: String, message: String| ConfigError { file: file.to_string(), path, message };
    let expanded = expand(text, env);
    let root: serde_yaml::Value = match serde_yaml::from_str(&expanded.text) {
        Ok(root) => root,
        Err(e) => {
            // Without a tree there are no paths: name lines instead.
            let mut errors: Vec<ConfigError> = expanded
                .unresolved
                .into_iter()
                .map(|u| error(format!("line {}", u.error.line), u.error.message))
                .collect();
            let at = e.location().map(|l| format!("line {}", l.line())).unwrap_or_default();
            errors.push(error(at, format!("not valid YAML: {e}")));
            return Err(ConfigErrors(errors));
        }
    };

    // Each unresolved reference is reported at the path of the value that
    // held it (falling back to its line), and anything else said about
    // that value is a consequence, so it is dropped.
    let placeholders: Vec<&str> = expanded.unresolved.iter().map(|u| u.placeholder.as_str()).collect();
    let found = locate(&root, &placeholders);
    let mut errors: Vec<ConfigError> = expanded
        .unresolved
        .iter()
        .map(|u| match found.get(u.placeholder.as_str()) {
            Some(path) => error(path.clone(), format!("{} (line {})", u.error.message, u.error.line)),
            None => error(format!("line {}", u.error.line), u.error.message.clone()),
        })
        .collect();
    let derived = |e: &ConfigError| {
        e.message.contains(PLACEHOLDER_PREFIX)
            || e.path.contains(PLACEHOLDER_PREFIX)
            || found.values().any(|p| *p == e.path)
    };

    let order: Vec<String> = root.as_mapping().map(|m| m.keys().map(scalar_text).collect()).unwrap_or_default();
    let mut sections = Sections { errors: Vec::new(), file, origins: Origins::default() };
    let config = sections.read(root);
    errors.extend(sections.errors.into_iter().filter(|e| !derived(e)));
    if let Some(config) = &config {
        let problems = config.validate_with(&sections.origins);
        errors.extend(problems.into_iter().map(|(path, message)| error(path, message)).filter(|e| !derived(e)));
    }
    // In the order of the document, so the list reads top to bottom.
    errors.sort_by_key(|e| position(&e.path, &order));
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(ConfigErrors(errors)),
    }
}

/// Where `path` falls in the document: its section's rank among the
/// top-level keys as written, then its list index. Paths outside any
/// section (`line 3`, the empty path) come first.
fn position(path: &str, order: &[String]) -> (usize, usize) {
    let end = path.find(['.', '[']).unwrap_or(path.len());
    let rank = order.iter().position(|k| *k == path[..end]).map_or(0, |r| r + 1);
    let index =
        path[end..].strip_prefix('[').and_then(|r| r.split(']').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    (rank, index)
}

const SECTIONS: &[&str] = &[
    "server",
    "storage",
    "admin",
    "rate_limits",
    "budgets",
    "alerts",
    "classification",
    "nodes",
    "redis",
    "usage",
    "reload",
    "timeouts",
    "resilience",
    "faults",
    "simulator",
    "providers",
    "deployments",
    "routes",
];

struct Sections<'a> {
    errors: Vec<ConfigError>,
    file: &'a str,
    origins: Origins,
}

impl Sections<'_> {
    fn read(&mut self, root: serde_yaml::Value) -> Option<Config> {
        let mapping = match root {
            serde_yaml::Value::Mapping(m) => m,
            serde_yaml::Value::Null => serde_yaml::Mapping::new(),
            _ => {
                self.push(
                    String::new(),
                    format!("expected a mapping of sections ({}) at the top level", SECTIONS.join(", ")),
                );
                return None;
            }
        };
        let mut config = Config::default();
        for (key, value) in mapping {
            let Some(name) = key.as_str() else {
                self.push(scalar_text(&key), "expected a section name (a string)".into());
                continue;
            };
            match name {
                "server" => self.one(name, value, &mut config.server),
                "storage" => self.one(name, value, &mut config.storage),
                "admin" => self.one(name, value, &mut config.admin),
                "rate_limits" => self.one(name, value, &mut config.rate_limits),
                "budgets" => self.one(name, value, &mut config.budgets),
                "alerts" => self.one(name, value, &mut config.alerts),
                "classification" => self.one(name, value, &mut config.classification),
                "nodes" => self.one(name, value, &mut config.nodes),
                "redis" => self.one(name, value, &mut config.redis),
                "usage" => self.one(name, value, &mut config.usage),
                "reload" => self.one(name, value, &mut config.reload),
                "timeouts" => self.one(name, value, &mut config.timeouts),
                "resilience" => self.one(name, value, &mut config.resilience),
                "faults" => self.one(name, value, &mut config.faults),
                "simulator" => {
                    // Present even when broken, so `sim://` providers are
                    // not also reported as lacking a simulator.
                    let mut sim = Default::default();
                    self.one(name, value, &mut sim);
                    config.simulator = Some(sim);
                }
                "providers" => (config.providers, self.origins.providers) = self.list(name, value),
                "deployments" => (config.deployments, self.origins.deployments) = self.list(name, value),
                "routes" => (config.routes, self.origins.routes) = self.list(name, value),
                other => {
                    let hint = match closest(other, SECTIONS) {
                        Some(s) => format!("did you mean `{s}`? "),
                        None => String::new(),
                    };
                    self.push(
                        other.to_string(),
                        format!("unknown section: {hint}expected one of {}", SECTIONS.join(", ")),
                    );
                }
            }
        }
        Some(config)
    }

    fn push(&mut self, path: String, message: String) {
        self.errors.push(ConfigError { file: self.file.to_string(), path, message });
    }

    fn one<T: DeserializeOwned>(&mut self, name: &str, value: serde_yaml::Value, slot: &mut T) {
        if value.is_null() {
            return;
        }
        let (value, problems) = deserialize_all(value, name);
        for (path, message) in problems {
            self.push(path, message);
        }
        if let Some(v) = value {
            *slot = v;
        }
    }

    /// The items that deserialised, and where they came from.
    fn list<T: DeserializeOwned>(&mut self, name: &str, value: serde_yaml::Value) -> (Vec<T>, ListOrigin) {
        let mut origin = ListOrigin::default();
        let items = match value {
            serde_yaml::Value::Sequence(items) => items,
            serde_yaml::Value::Null => return (Vec::new(), origin),
            _ => {
                self.push(name.to_string(), "expected a list (`- name: …` items)".into());
                origin.section_broken = true;
                return (Vec::new(), origin);
            }
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let item_name = item.get("name").and_then(|n| n.as_str()).map(str::to_string);
            let (value, problems) = deserialize_all(item, &format!("{name}[{i}]"));
            for (path, message) in problems {
                self.push(path, message);
            }
            match value {
                Some(v) => {
                    out.push(v);
                    origin.index.push(i);
                }
                None => origin.broken_names.extend(item_name),
            }
        }
        (out, origin)
    }
}

/// Deserialises one section or list item, reporting every bad field, not
/// just the first: serde stops at the first error, so the field it names
/// is reported, removed, and the rest tried again (a removed field takes
/// its default, which may be wrong but is never reported: the load fails
/// anyway). Gives up — `None` — when a required field is missing or the
/// error is not a field of a mapping (an element of a list, the item
/// itself); anything after that in the item is not checked in this run.
fn deserialize_all<T: DeserializeOwned>(
    mut value: serde_yaml::Value,
    prefix: &str,
) -> (Option<T>, Vec<(String, String)>) {
    const MOST_FIELDS_REMOVED: usize = 32;
    let mut problems = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..MOST_FIELDS_REMOVED {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => return (Some(v), problems),
            Err(e) => {
                let path = join(prefix, &e.path().to_string());
                let message = plain_words(&e.inner().to_string());
                let missing = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`'));
                if let Some(field) = missing {
                    // Missing because an earlier round removed it: already reported.
                    if !removed.iter().any(|r| r == field) {
                        problems.push((path, message));
                    }
                    return (None, problems);
                }
                problems.push((path, message));
                match remove_field(&mut value, e.path()) {
                    Some(key) => removed.push(key),
                    None => return (None, problems),
                }
            }
        }
    }
    (None, problems)
}

/// serde names Rust types ("expected f64", "expected struct Price"); say
/// what to write instead.
fn plain_words(message: &str) -> String {
    let mut m = message.replace("unit value", "an empty value");
    for (rust, yaml) in [
        ("expected f64", "expected a number"),
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a mapping"),
    ] {
        if let Some(head) = m.strip_suffix(rust) {
            m = format!("{head}{yaml}");
        }
    }
    if let Some(at) = m.find("expected struct ") {
        m.truncate(at);
        m.push_str("expected a mapping");
    }
    m
}

/// Removes the mapping entry `path` ends with; its key, or `None` when the
/// path does not end in a mapping key.
fn remove_field(value: &mut serde_yaml::Value, path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let segments: Vec<&Segment> = path.iter().collect();
    let (Segment::Map { key }, parents) = segments.split_last()? else {
        return None;
    };
    let mut node = value;
    for segment in parents {
        node = match segment {
            Segment::Map { key } => node.get_mut(key.as_str())?,
            Segment::Seq { index } => node.get_mut(*index)?,
            Segment::Enum { .. } | Segment::Unknown => return None,
        };
    }
    node.as_mapping_mut()?.remove(key.as_str())?;
    Some(key.clone())
}

fn join(prefix: &str, inner: &str) -> String {
    if inner.is_empty() || inner == "." {
        prefix.to_string()
    } else if inner.starts_with('[') {
        format!("{prefix}{inner}")
    } else {
        format!("{prefix}.{inner}")
    }
}

/// A YAML key or scalar as text, for paths and messages.
fn scalar_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => "null".into(),
        _ => serde_yaml::to_string(v).map(|s| s.trim().to_string()).unwrap_or_default(),
    }
}

/// The path of the value (or key) holding each placeholder.
fn locate<'p>(root: &serde_yaml::Value, placeholders: &[&'p str]) -> HashMap<&'p str, String> {
    fn walk<'p>(v: &serde_yaml::Value, path: &str, placeholders: &[&'p str], found: &mut HashMap<&'p str, String>) {
        match v {
            serde_yaml::Value::String(s) => {
                for p in placeholders.iter().filter(|p| s.contains(**p)) {
                    found.entry(*p).or_insert_with(|| path.to_string());
                }
            }
            serde_yaml::Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), placeholders, found);
                }
            }
            serde_yaml::Value::Mapping(m) => {
                for (k, item) in m {
                    let mut key = scalar_text(k);
                    if key.contains(PLACEHOLDER_PREFIX) {
                        // A reference in a key: report it at the mapping
                        // (at the top level, by line), and keep
                        // placeholders out of the paths below it.
                        if !path.is_empty() {
                            walk(k, path, placeholders, found);
                        }
                        key = "${…}".into();
                    }
                    let child = if path.is_empty() { key } else { format!("{path}.{key}") };
                    walk(item, &child, placeholders, found);
                }
            }
            serde_yaml::Value::Tagged(t) => walk(&t.value, path, placeholders, found),
            _ => {}
        }
    }
    let mut found = HashMap::new();
    if !placeholders.is_empty() {
        walk(root, "", placeholders, &mut found);
    }
    found
}

#[cfg(test)]
mod tests;

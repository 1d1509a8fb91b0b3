#![allow(clippy::unwrap_used)]
use super::*;
use crate::{Duration, SimulatorConfig, EMBEDDED_SIM_URL};
use std::collections::HashMap;
use switchyard_types::{Capability, ProviderKind, Tier};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn errors(text: &str, vars: &[(&str, &str)]) -> Vec<ConfigError> {
    load_str(text, "test.yaml", &env(vars)).unwrap_err().0
}

/// The one error at `path`; fails listing them all otherwise.
fn at<'a>(errors: &'a [ConfigError], path: &str) -> &'a ConfigError {
    let found: Vec<&ConfigError> = errors.iter().filter(|e| e.path == path).collect();
    assert_eq!(found.len(), 1, "expected one error at {path}, got:\n{}", ConfigErrors(errors.to_vec()));
    found[0]
}

const FULL: &str = r#"
server:
  listen: "0.0.0.0:9090"
  max_body_bytes: 1048576
  shutdown_grace: 10s
storage: { url: "sqlite::memory:" }
admin: { bootstrap_token: "${ADMIN_TOKEN}" }
usage: { batch_size: 100 }
reload: { watch: false }
timeouts:
  connect: 2s
  idle: 1m
simulator:
  listen: "127.0.0.1:0"
  default: { ttft_ms: 30, tokens_per_sec: 200 }
  models:
    flaky: { error_rate: 0.5 }
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: "${OPENAI_API_KEY}"
    region: us
    timeouts: { first_token: 30s }
    headers: { OpenAI-Organization: org-1 }
  - name: sim
    kind: openai_compatible
    base_url: "sim://"
    tier: L1
deployments:
  - name: mini
    provider: openai
    model: gpt-4o-mini
    price: { input_per_mtok: 0.15, output_per_mtok: 0.6 }
    capabilities: [chat, tools, vision, json]
  - name: embed
    provider: openai
    model: text-embedding-3-small
    price: { input_per_mtok: 0.02 }
    capabilities: [embeddings]
  - name: sim-chat
    provider: sim
    model: gpt-4o-mini
routes:
  - name: gpt-4o-mini
    targets: [mini, sim-chat]
  - name: text-embedding-3-small
    targets: [embed]
"#;

#[test]
fn a_full_document_loads_with_its_values_and_defaults() {
    let c = load_str(FULL, "full.yaml", &env(&[("ADMIN_TOKEN", "t0k"), ("OPENAI_API_KEY", "sk-test")])).unwrap();

    assert_eq!(c.server.listen, "0.0.0.0:9090");
    assert_eq!(c.server.max_body_bytes, 1_048_576);
    assert_eq!(c.server.shutdown_grace, Duration::from_secs(10));
    assert_eq!(c.server.heartbeat, Duration::from_secs(15), "default");
    assert_eq!(c.storage.url, "sqlite::memory:");
    assert_eq!(c.admin.bootstrap_token, "t0k");
    assert_eq!(c.usage.batch_size, 100);
    assert_eq!(c.usage.queue_capacity, 10_000, "default");
    assert_eq!(c.usage.flush_interval, Duration::from_millis(100), "default");
    assert!(!c.reload.watch);
    assert_eq!(c.reload.poll_interval, Duration::from_secs(1), "default");
    assert_eq!(c.timeouts.connect, Duration::from_secs(2));
    assert_eq!(c.timeouts.idle, Duration::from_secs(60));
    assert_eq!(c.timeouts.first_token, Duration::from_secs(120), "default");
    assert_eq!(c.timeouts.total, Duration::from_secs(600), "default");

    let sim: &SimulatorConfig = c.simulator.as_ref().unwrap();
    assert_eq!(sim.listen.as_deref(), Some("127.0.0.1:0"));
    assert_eq!(sim.default["ttft_ms"], 30);
    assert_eq!(sim.models["flaky"]["error_rate"], 0.5);

    assert_eq!(c.providers.len(), 2);
    let (openai, local) = (&c.providers[0], &c.providers[1]);
    assert_eq!(openai.kind, ProviderKind::Openai);
    assert_eq!(openai.key(), Some("sk-test"));
    assert!(openai.enabled());
    assert_eq!(openai.tier, Tier::L2, "default");
    assert_eq!(openai.region.as_deref(), Some("us"));
    assert_eq!(openai.headers["OpenAI-Organization"], "org-1");
    let t = openai.timeouts.over(c.timeouts);
    assert_eq!((t.connect, t.first_token), (Duration::from_secs(2), Duration::from_secs(30)));
    assert_eq!(local.base_url, EMBEDDED_SIM_URL);
    assert_eq!(local.tier, Tier::L1);
    assert_eq!(local.key(), None);
    assert!(local.enabled(), "openai_compatible needs no key");

    assert_eq!(c.deployments.len(), 3);
    assert_eq!(c.deployments[0].price.as_ref().map(|p| p.output_per_mtok), Some(0.6));
    assert_eq!(c.deployments[1].price.as_ref().map(|p| p.output_per_mtok), Some(0.0), "default");
    assert_eq!(c.deployments[1].capabilities, vec![Capability::Embeddings]);
    assert_eq!(
        c.deployments[2].capabilities,
        vec![Capability::Chat, Capability::Tools, Capability::Vision, Capability::Json],
        "default"
    );
    assert_eq!(c.routes[0].targets, vec!["mini", "sim-chat"]);
    assert_eq!(c.routes[1].name, "text-embedding-3-small");
}

#[test]
fn an_empty_document_is_the_defaults() {
    assert_eq!(load_str("", "empty.yaml", &env(&[])).unwrap(), Config::default());
    assert_eq!(load_str("# nothing\n", "empty.yaml", &env(&[])).unwrap(), Config::default());
}

const MANY_PROBLEMS: &str = r#"
server:
  listen: "localhost"
policies: { retries: 3 }
timeouts:
  first_token: soon
admin:
  bootstrap_token: "${SWITCHYARD_ADMIN_TOKEN}"
providers:
  - name: openai
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
    api_kye: sk-typo
  - name: other
    kind: opneai
    base_url: https://example.com/v1
deployments:
  - name: mini
    provider: openai
    model: gpt-4o-mini
    price: { input_per_mtok: cheap }
  - name: ghost-model
    provider: ghost
    model: x
routes:
  - name: chat
    targets: [mini]
  - name: chat2
    targets: [nope, mini]
  - name: chat
    targets: [mini]
"#;

#[test]
fn every_problem_is_reported_at_once_with_file_path_and_expectation() {
    let errs = errors(MANY_PROBLEMS, &[]);
    let listing = ConfigErrors(errs.clone()).to_string();
    assert!(errs.iter().all(|e| e.file == "test.yaml"), "{listing}");

    let expect = [
        ("server.listen", "expected a socket address like \"127.0.0.1:8080\""),
        ("policies", "unknown section: expected one of server, storage"),
        ("timeouts.first_token", "expected a duration like \"250ms\""),
        (
            "admin.bootstrap_token",
            "environment variable SWITCHYARD_ADMIN_TOKEN is not set; write ${SWITCHYARD_ADMIN_TOKEN:-default}",
        ),
        ("providers[0].api_key", "environment variable OPENAI_API_KEY is not set"),
        ("providers[0].api_kye", "unknown field `api_kye`, expected one of `name`, `kind`, `base_url`, `api_key`"),
        (
            "providers[1].kind",
            "unknown variant `opneai`, expected one of `openai`, `openai_compatible`, `azure_openai`, `anthropic`, `gemini`",
        ),
        ("deployments[0].price.input_per_mtok", "invalid type: string \"cheap\", expected a number"),
        ("deployments[1].provider", "no provider named \"ghost\""),
        ("routes[1].targets[0]", "no deployment named \"nope\""),
        ("routes[2].name", "\"chat\" is already used by routes[0]"),
    ];
    for (path, message) in expect {
        let e = at(&errs, path);
        assert!(e.message.contains(message), "at {path}: {:?} lacks {message:?}\n{listing}", e.message);
    }
    // Nothing else: no error is a consequence of another one.
    assert_eq!(errs.len(), expect.len(), "{listing}");
    // The env errors name their line too (lines count from 1; the text
    // starts with a newline).
    assert!(at(&errs, "admin.bootstrap_token").message.ends_with("(line 8)"), "{listing}");
    assert!(at(&errs, "providers[0].api_key").message.ends_with("(line 13)"), "{listing}");
    // Listed in document order.
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths.first(), Some(&"server.listen"), "{listing}");
    assert_eq!(paths.last(), Some(&"routes[2].name"), "{listing}");
    // And it prints one per line, file first, nothing else.
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), expect.len(), "{listing}");
    assert!(
        lines.contains(&"test.yaml: routes[1].targets[0]: no deployment named \"nope\" (known: ghost-model, mini)"),
        "{listing}"
    );
}

#[test]
fn several_bad_fields_in_one_item_are_all_reported() {
    let text = "providers:\n  - { name: p, kind: openai, base_url: \"https://x.io/v1\", tier: L9, region: [a], colour: red }\n";
    let errs = errors(text, &[]);
    assert_eq!(at(&errs, "providers[0].tier").message, "unknown variant `L9`, expected one of `L0`, `L1`, `L2`");
    assert_eq!(at(&errs, "providers[0].region").message, "invalid type: sequence, expected a string");
    assert!(at(&errs, "providers[0].colour").message.starts_with("unknown field `colour`"));
    assert_eq!(errs.len(), 3);
}

#[test]
fn an_item_that_cannot_load_does_not_cause_more_errors_and_keeps_its_index() {
    let text = r#"
providers:
  - { name: broken, kind: openai }
  - { name: good, kind: openai_compatible, base_url: "ftp://x" }
deployments:
  - { name: a, provider: broken, model: m, capabilities: [chat, telepathy] }
  - { name: b, provider: good, model: m }
routes:
  - { name: r, targets: [a, b] }
"#;
    let errs = errors(text, &[]);
    assert_eq!(at(&errs, "providers[0]").message, "missing field `base_url`");
    // The second provider is validated under its own index, not as [0].
    assert!(at(&errs, "providers[1].base_url").message.starts_with("expected an http:// or https:// URL"));
    assert!(at(&errs, "deployments[0].capabilities[1]").message.starts_with("unknown variant `telepathy`"));
    assert_eq!(errs.len(), 3, "{}", ConfigErrors(errs.clone()));
}

#[test]
fn a_section_of_the_wrong_shape_says_what_was_expected() {
    let errs = errors("server: 8080\nproviders: { name: x }\nroutes: nope\n", &[]);
    assert_eq!(at(&errs, "server").message, "invalid type: integer `8080`, expected a mapping");
    assert!(at(&errs, "providers").message.starts_with("expected a list"));
    assert!(at(&errs, "routes").message.starts_with("expected a list"));
    assert_eq!(errs.len(), 3);

    let errs = errors("- just\n- a list\n", &[]);
    assert!(errs[0].message.starts_with("expected a mapping of sections"));
}

#[test]
fn unknown_sections_suggest_the_likely_one() {
    let errs = errors("provider: []\n", &[]);
    assert!(at(&errs, "provider").message.starts_with("unknown section: did you mean `providers`?"));
    let errs = errors("deployments:\n  - { name: d, provider: opnai, model: m }\nproviders:\n  - { name: openai, kind: openai, base_url: \"https://api.openai.com/v1\" }\n", &[]);
    assert_eq!(at(&errs, "deployments[0].provider").message, "no provider named \"opnai\" (did you mean \"openai\"?)");
}

#[test]
fn invalid_yaml_names_the_line() {
    let errs = errors("server:\n  listen: [unclosed\nstorage: {}\n", &[]);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].path.starts_with("line "), "{:?}", errs[0]);
    assert!(errs[0].message.starts_with("not valid YAML: "), "{:?}", errs[0]);
}

#[test]
fn missing_variables_are_reported_even_when_the_yaml_is_broken() {
    let errs = errors("a: ${ONE}\nb: [\n", &[]);
    assert_eq!(errs[0].path, "line 1");
    assert!(errs[0].message.contains("ONE"));
    assert!(errs[1].message.starts_with("not valid YAML"));
}

#[test]
fn a_missing_variable_is_reported_once_not_again_as_a_bad_value() {
    let text = "server:\n  listen: ${LISTEN}\n  max_body_bytes: ${MAX_BODY}\ntimeouts: { total: \"${TOTAL}\" }\n";
    let errs = errors(text, &[]);
    assert_eq!(errs.len(), 3, "{}", ConfigErrors(errs.clone()));
    assert!(at(&errs, "server.listen").message.contains("LISTEN is not set"));
    assert!(at(&errs, "server.max_body_bytes").message.contains("MAX_BODY is not set"));
    assert!(at(&errs, "timeouts.total").message.contains("TOTAL is not set"));
}

#[test]
fn a_missing_variable_in_a_key_never_shows_a_placeholder() {
    let errs = errors("${SECTION}: {}\nproviders:\n  - name: p\n    ${FIELD}: x\n", &[]);
    let shown = ConfigErrors(errs.clone()).to_string();
    assert!(!shown.contains(PLACEHOLDER_PREFIX), "{shown}");
    assert_eq!(errs[0].path, "line 1", "{shown}");
    assert_eq!(errs[1].path, "providers[0]", "{shown}");
    assert_eq!(errs.len(), 2, "{shown}");
}

#[test]
fn variables_fill_numbers_and_booleans_too() {
    let text = "server:\n  max_body_bytes: ${MAX_BODY:-1024}\nreload:\n  watch: ${WATCH:-true}\n  poll_interval: ${POLL:-250ms}\n";
    let c = load_str(text, "t.yaml", &env(&[("WATCH", "false")])).unwrap();
    assert_eq!(c.server.max_body_bytes, 1024);
    assert!(!c.reload.watch);
    assert_eq!(c.reload.poll_interval, Duration::from_millis(250));
}

#[test]
fn sim_base_url_needs_a_simulator_section() {
    let text = "providers:\n  - { name: local, kind: openai_compatible, base_url: \"sim://\" }\n";
    let errs = errors(text, &[]);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "providers[0].base_url");
    assert!(errs[0].message.contains("needs a `simulator:` section"), "{}", errs[0].message);

    let with_sim = format!("simulator: {{}}\n{text}");
    assert!(load_str(&with_sim, "t.yaml", &env(&[])).is_ok());
}

#[test]
fn openai_with_an_empty_key_loads_but_is_disabled() {
    let text = "providers:\n  - { name: openai, kind: openai, base_url: \"https://api.openai.com/v1\", api_key: \"${OPENAI_API_KEY:-}\" }\n";
    let c = load_str(text, "t.yaml", &env(&[])).unwrap();
    assert_eq!(c.providers[0].api_key.as_deref(), Some(""));
    assert!(!c.providers[0].enabled());
    let c = load_str(text, "t.yaml", &env(&[("OPENAI_API_KEY", "sk-1")])).unwrap();
    assert!(c.providers[0].enabled());
}

#[test]
fn secrets_are_never_serialised() {
    let c =
        load_str(FULL, "full.yaml", &env(&[("ADMIN_TOKEN", "t0k-secret"), ("OPENAI_API_KEY", "sk-secret")])).unwrap();
    let shown = serde_json::to_string(&c).unwrap();
    assert!(!shown.contains("secret"), "{shown}");
    assert!(!shown.contains("org-1"), "headers may carry credentials: {shown}");
    assert!(shown.contains("\"connect\":\"2s\""), "{shown}");
}

fn examples() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

fn load_example(name: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config").join(name);
    load_str(&std::fs::read_to_string(path).unwrap(), name, &env(vars))
}

/// Variables an example needs, beyond what its `${VAR:-default}`s cover.
fn required_by(example: &str) -> &'static [(&'static str, &'static str)] {
    match example {
        "production.yaml" => &[("OPENAI_API_KEY", "sk-test"), ("SWITCHYARD_ADMIN_TOKEN", "admin-test")],
        _ => &[],
    }
}

#[test]
fn every_example_config_loads() {
    let files = examples();
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    for expected in ["quickstart.yaml", "production.yaml", "local-vllm.yaml"] {
        assert!(names.iter().any(|n| n == expected), "config/{expected} is missing: {names:?}");
    }
    for name in &names {
        let loaded = load_example(name, required_by(name));
        assert!(loaded.is_ok(), "config/{name} does not load:\n{}", loaded.unwrap_err());
    }
}

#[test]
fn examples_without_required_variables_need_no_environment_at_all() {
    for name in ["quickstart.yaml", "local-vllm.yaml"] {
        let loaded = load_example(name, &[]);
        assert!(loaded.is_ok(), "config/{name} should load with an empty environment:\n{}", loaded.unwrap_err());
    }
    // production.yaml insists on its secrets, and says which.
    let errs = load_example("production.yaml", &[]).unwrap_err().0;
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["admin.bootstrap_token", "providers[0].api_key"], "{}", ConfigErrors(errs.clone()));
}

#[test]
fn quickstart_falls_back_to_the_embedded_simulator_without_a_key() {
    let c = load_example("quickstart.yaml", &[]).unwrap();
    assert_eq!(c.server.listen, "127.0.0.1:8080");
    assert_eq!(c.storage.url, "sqlite://data/switchyard.db");
    assert_eq!(c.admin.bootstrap_token, "dev-admin-token");
    let sim = c.simulator.as_ref().unwrap();
    assert_eq!(sim.listen.as_deref(), Some("127.0.0.1:0"));
    assert_eq!(sim.default, serde_json::json!({ "ttft_ms": 30, "tokens_per_sec": 200, "answer_tokens": 24 }));

    let provider = |name: &str| c.providers.iter().find(|p| p.name == name).unwrap();
    assert!(!provider("openai").enabled(), "no key: disabled");
    assert_eq!(provider("openai").base_url, "https://api.openai.com/v1");
    assert_eq!(provider("local").base_url, EMBEDDED_SIM_URL);
    assert_eq!(provider("local").tier, Tier::L1);
    assert!(provider("local").enabled());

    for (route, model) in [("gpt-4o-mini", "gpt-4o-mini"), ("text-embedding-3-small", "text-embedding-3-small")] {
        let r = c.routes.iter().find(|r| r.name == route).unwrap();
        let targets: Vec<_> = r.targets.iter().map(|t| c.deployments.iter().find(|d| &d.name == t).unwrap()).collect();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].provider, "openai", "{route}: OpenAI first");
        assert_eq!(targets[1].provider, "local", "{route}: then the local/simulated one");
        assert!(targets.iter().all(|d| d.model == model), "{route}: the simulator answers to OpenAI's name");
        let embeds = route.contains("embedding");
        assert!(targets.iter().all(|d| d.capabilities.contains(&Capability::Embeddings) == embeds));
    }

    let c = load_example(
        "quickstart.yaml",
        &[
            ("OPENAI_API_KEY", "sk-1"),
            ("ANTHROPIC_API_KEY", "sk-ant-1"),
            ("LOCAL_OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
            ("LOCAL_CHAT_MODEL", "Qwen/Qwen2.5-7B-Instruct"),
            ("SWITCHYARD_LISTEN", "127.0.0.1:0"),
        ],
    )
    .unwrap();
    assert!(c.providers.iter().all(|p| p.enabled()));
    assert!(c.providers.iter().any(|p| p.base_url == "http://127.0.0.1:8000/v1"));
    assert!(c.deployments.iter().any(|d| d.model == "Qwen/Qwen2.5-7B-Instruct"));
    assert_eq!(c.server.listen, "127.0.0.1:0");
}

/// The first fenced block after `<!-- checked by crates/config: {marker} -->`
/// in docs/config.md.
fn doc_block(marker: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let tag = format!("<!-- checked by crates/config: {marker} -->");
    let after = &doc[doc.find(&tag).unwrap() + tag.len()..];
    let body = &after[after.find("```").unwrap()..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn the_reference_page_shows_real_output() {
    let errs = load_str(&doc_block("bad.yaml"), "bad.yaml", &env(&[])).unwrap_err();
    let printed: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    let shown: Vec<String> =
        doc_block("bad.yaml errors").lines().filter(|l| l.starts_with("bad.yaml: ")).map(str::to_string).collect();
    assert_eq!(printed, shown);
    assert_eq!(errs.to_string(), shown.join("\n"), "Display is the same lines");

    let c = load_str(&doc_block("complete example"), "example.yaml", &env(&[("SWITCHYARD_ADMIN_TOKEN", "t")])).unwrap();
    assert_eq!((c.providers.len(), c.deployments.len(), c.routes.len()), (3, 4, 4));

    let c = load_example("quickstart.yaml", &[]).unwrap();
    let ok = format!(
        "ok: config/quickstart.yaml ({} providers, {} deployments, {} routes)",
        c.providers.len(),
        c.deployments.len(),
        c.routes.len()
    );
    let doc =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/config.md")).unwrap();
    assert!(doc.contains(&ok), "docs/config.md should show {ok:?}");
}

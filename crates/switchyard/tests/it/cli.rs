//! The command line beyond `serve`: `config validate` and `keys create`.

use super::{bin, chat_body, start};
use std::process::Command;

#[test]
fn config_validate_accepts_the_examples_and_lists_every_error() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/");
    let out = Command::new(bin())
        .args(["config", "validate", &format!("{root}quickstart.yaml")])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "server: { listen: nowhere }\nroutes:\n  - { name: r, targets: [missing] }\npolicies: {}\n")
        .unwrap();
    let out = Command::new(bin()).args(["config", "validate"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in ["server.listen", "routes[0].targets[0]", "policies"] {
        assert!(err.lines().any(|l| l.contains(&format!("bad.yaml: {path}: "))), "{path} missing in:\n{err}");
    }
}

#[test]
fn config_validate_reads_budget_time_zones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tz.yaml");
    let base = switchyard_testkit::base_config("", "", "");
    for (zone, ok) in [("Europe/Berlin", true), ("-05:30", true), ("UTC", true), ("Mars/Olympus", false)] {
        std::fs::write(&config, format!("{base}\nbudgets: {{ time_zone: \"{zone}\" }}\n")).unwrap();
        let out = Command::new(bin()).args(["config", "validate"]).arg(&config).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), ok, "{zone}: {err}");
        if !ok {
            assert!(err.contains("budgets.time_zone") && err.contains("IANA"), "{err}");
        }
    }
}

#[tokio::test]
async fn keys_create_prints_a_working_secret() {
    let h = start();
    let out = Command::new(bin())
        .args([
            "keys",
            "create",
            "--name",
            "cli",
            "--route",
            "chat",
            "--url",
            &h.url,
            "--admin-token",
            switchyard_testkit::ADMIN_TOKEN,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(secret.starts_with("sk-sy-"), "{secret}");
    let r = h.post("/v1/chat/completions", &secret).json(&chat_body("chat")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = h.post("/v1/chat/completions", &secret).json(&chat_body("failover")).send().await.unwrap();
    assert_eq!(r.status(), 404, "limited to the route it was given");

    let out = Command::new(bin())
        .args(["keys", "create", "--name", "x", "--url", &h.url, "--admin-token", "wrong"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

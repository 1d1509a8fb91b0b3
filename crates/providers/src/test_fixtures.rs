//! The wire samples in `../shared/fixtures/wire/` (beside the checkout, in
//! CI too), read by the tests of every protocol family.

#![allow(clippy::panic)]

pub fn fixture(path: &str) -> Vec<u8> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/wire/");
    std::fs::read(format!("{root}{path}")).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// A fixture stream cut into SSE events.
pub fn fixture_events(path: &str) -> Vec<crate::sse::SseEvent> {
    let mut framer = crate::sse::SseFramer::default();
    let mut events = Vec::new();
    if framer.push(bytes::Bytes::from(fixture(path)), &mut events).is_err() {
        panic!("fixture {path}: oversized event");
    }
    events
}

/// Samples for APIs the gateway does not speak (yet), each with the
/// reason. They are still read below, so a broken file is noticed.
const REFERENCE_ONLY: &[(&str, &str)] = &[
    ("README.md", "provenance of the samples"),
    ("mapping.md", "the field mapping the translators follow"),
    ("gemini/NOTES.md", "notes for people"),
    ("openai_compatible/NOTES.md", "notes for people"),
    ("openai/responses_request_full.json", "OpenAI Responses API: not served yet (DESIGN.md: later)"),
    ("openai/responses_request_minimal.json", "OpenAI Responses API: not served yet"),
    ("openai/responses_response.json", "OpenAI Responses API: not served yet"),
    ("openai/responses_response_function_call.json", "OpenAI Responses API: not served yet"),
    ("openai/responses_stream_text.sse", "OpenAI Responses API: framed by the SSE test below"),
    ("openai/responses_stream_function_call.sse", "OpenAI Responses API: framed by the SSE test below"),
    ("openai/responses_stream_error_event.sse", "OpenAI Responses API: framed by the SSE test below"),
    (
        "openai_compatible/ollama_api_chat_request_image.json",
        "Ollama's native /api/chat: Ollama is reached through /v1",
    ),
    (
        "openai_compatible/ollama_api_chat_request_tools.json",
        "Ollama's native /api/chat: Ollama is reached through /v1",
    ),
    (
        "openai_compatible/ollama_api_chat_response_tool_call.json",
        "Ollama's native /api/chat: Ollama is reached through /v1",
    ),
    ("openai_compatible/ollama_api_chat_stream.ndjson", "Ollama's native /api/chat: Ollama is reached through /v1"),
    ("openai_compatible/vllm_models_list.json", "the gateway lists its routes, not upstream models"),
];

#[cfg(test)]
mod inventory {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::{Path, PathBuf};

    fn files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, out);
            } else {
                out.push(path);
            }
        }
    }

    /// Every sample in `fixtures/wire` is read by some test of this
    /// repository (its file name appears in a test source), or is listed in
    /// [`REFERENCE_ONLY`] with a reason. A new sample without a test fails
    /// here.
    #[test]
    fn every_fixture_is_used_by_a_test() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/wire");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut sources = Vec::new();
        files(&repo.join("crates"), &mut sources);
        files(&repo.join("tests"), &mut sources);
        let sources: Vec<(String, String)> = sources
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "rs" || e == "py"))
            .filter(|p| !p.ends_with("test_fixtures.rs"))
            .map(|p| (p.to_string_lossy().into_owned(), std::fs::read_to_string(p).unwrap_or_default()))
            .collect();
        let mut samples = Vec::new();
        files(&root, &mut samples);
        let mut missing = Vec::new();
        for path in &samples {
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            if REFERENCE_ONLY.iter().any(|(r, _)| *r == rel) {
                continue;
            }
            // Tests name a sample by its file name, with or without the
            // extension. A name found in several folders (`models_list.json`)
            // counts only in a source under a directory named after the
            // sample's folder (`…/gemini/tests.rs` for `gemini/…`), or
            // when its relative path is spelled out.
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let folder = rel.split('/').next().unwrap_or_default().to_string();
            let unique = samples.iter().filter(|p| p.file_stem() == path.file_stem()).count() == 1;
            let used = sources.iter().any(|(file, text)| {
                text.contains(&rel) || (text.contains(&stem) && (unique || file.contains(&format!("/{folder}/"))))
            });
            if !used {
                missing.push(rel);
            }
        }
        assert!(
            missing.is_empty(),
            "samples no test reads (add a test, or a REFERENCE_ONLY entry with a reason): {missing:?}"
        );
        for (rel, _) in REFERENCE_ONLY {
            assert!(samples.iter().any(|p| p.ends_with(rel)), "REFERENCE_ONLY names a missing sample: {rel}");
        }
    }

    /// The reference-only samples are well-formed: JSON parses, NDJSON
    /// parses line by line, SSE frames into events whose `event:` name is
    /// the `type` of their data (the Responses API's convention).
    #[test]
    fn reference_only_samples_are_well_formed() {
        for (rel, _) in REFERENCE_ONLY {
            let body = fixture(rel);
            if rel.ends_with(".json") {
                serde_json::from_slice::<serde_json::Value>(&body).expect(rel);
            } else if rel.ends_with(".ndjson") {
                for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    serde_json::from_slice::<serde_json::Value>(line).expect(rel);
                }
            } else if rel.ends_with(".sse") {
                let events = fixture_events(rel);
                assert!(!events.is_empty(), "{rel}");
                for e in events.iter().filter(|e| e.data().is_some_and(|d| &d[..] != b"[DONE]")) {
                    let data: serde_json::Value = serde_json::from_slice(&e.data().unwrap()).expect(rel);
                    assert_eq!(e.name(), data["type"].as_str(), "{rel}");
                }
            }
        }
    }
}

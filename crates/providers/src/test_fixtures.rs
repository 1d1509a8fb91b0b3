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

//! What the fuzz targets share: cutting an input into body chunks, framing
//! them, and running a stream decoder (then both client encoders) over the
//! events. Every target asserts only that nothing panics, except
//! `sse_framer`, which also checks that framing does not depend on where
//! the body was cut.

use bytes::Bytes;
use switchyard_providers::sse::{SseEvent, SseFramer};
use switchyard_translate::{anthropic, openai, StreamDecoder, StreamEncoder, StreamEvent};

/// `data` cut into chunks, as a body arrives from the network. The cut
/// points come from a hash of the whole input, so no input byte is spent
/// on them (seed corpora are plain SSE bodies) and every mutation also
/// changes the cuts. One input in eight is one chunk.
pub fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut state = data.iter().fold(0xcbf2_9ce4_8422_2325_u64 ^ data.len() as u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    }) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    if next() % 8 == 0 {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = 1 + (next() % 48) as usize;
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

/// The events of `chunks` pushed one by one into a framer, and the bytes
/// left pending at the end (`None` if the framer refused an event as too
/// large, which the default 16 MiB limit never does for fuzz inputs).
pub fn frame(chunks: &[&[u8]]) -> Option<(Vec<SseEvent>, usize)> {
    let mut framer = SseFramer::default();
    let mut events = Vec::new();
    for chunk in chunks {
        framer.push(Bytes::copy_from_slice(chunk), &mut events).ok()?;
    }
    Some((events, framer.pending()))
}

/// Frames `data` in one chunk and in the chunks of [`chunks`]: the events
/// must be the same, and with the pending bytes they must be the input.
pub fn check_framer(data: &[u8]) {
    let (Some((whole, pending)), Some((split, split_pending))) = (frame(&[data]), frame(&chunks(data))) else {
        return;
    };
    assert_eq!(whole, split, "framing depends on the cuts");
    assert_eq!(pending, split_pending, "pending bytes depend on the cuts");
    let framed: usize = whole.iter().map(|e| e.raw.len()).sum();
    assert_eq!(framed + pending, data.len(), "framing lost or invented bytes");
    for e in &whole {
        let _ = e.data();
        let _ = e.name();
    }
}

/// Feeds `data`, as a chunked SSE body, to `decoder` the way the pipeline
/// does (events without `data:` skipped; unlike the pipeline, decoding goes
/// on after an error, to reach more states), ends it, and encodes whatever
/// came out for both client formats. Errors are fine; panics are not.
pub fn run_stream(decoder: &mut dyn StreamDecoder, data: &[u8]) {
    let Some((events, _)) = frame(&chunks(data)) else { return };
    let mut out: Vec<StreamEvent> = Vec::new();
    for event in &events {
        if let Some(payload) = event.data() {
            let _ = decoder.decode(event.name(), &payload, &mut out);
        }
    }
    decoder.end(&mut out);
    encode_all(&out);
}

/// Encodes `events` for OpenAI and Anthropic clients, then an error event.
pub fn encode_all(events: &[StreamEvent]) {
    let mut bytes = Vec::new();
    let mut o = openai::Encoder::new("fuzz-model", 0, true);
    let mut a = anthropic::Encoder::new("fuzz-model");
    for e in events {
        o.encode(e, &mut bytes);
        a.encode(e, &mut bytes);
    }
    o.error("overloaded_error", "fuzz", &mut bytes);
    a.error("overloaded_error", "fuzz", &mut bytes);
}

/// The wire scanners over arbitrary bytes: no panic, and `read_usage`
/// agrees with the derived parse wherever that parse succeeds.
pub fn check_wire_scanners(data: &[u8]) {
    use switchyard_providers::openai_compat::wire;
    let mut text = String::new();
    wire::chunk_text(data, &mut text);
    let _ = wire::carries_usage(data);
    let _ = wire::response_usage(data);
    let scanned = wire::read_usage(data);
    let mut de = serde_json::Deserializer::from_slice(data);
    if let Ok(derived) = serde::Deserialize::deserialize(&mut de) {
        let derived: switchyard_types::openai::WireUsage = derived;
        assert_eq!(scanned, Some(derived), "{}", String::from_utf8_lossy(data));
    }
}

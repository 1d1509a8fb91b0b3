//! Arbitrary bytes as a chunked SSE body (`\r\n\r\n` separators included) →
//! `SseFramer` → `gemini::Decoder` → both client encoders. Errors are fine;
//! panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_translate::gemini;

fuzz_target!(|data: &[u8]| switchyard_fuzz::run_stream(&mut gemini::Decoder::new("fuzz"), data));

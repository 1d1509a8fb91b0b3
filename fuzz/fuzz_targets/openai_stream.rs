//! Arbitrary bytes as a chunked SSE body → `SseFramer` → `openai::Decoder`
//! → both client encoders. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_translate::openai;

fuzz_target!(|data: &[u8]| switchyard_fuzz::run_stream(&mut openai::Decoder::default(), data));

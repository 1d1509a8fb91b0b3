//! Arbitrary bytes as an OpenAI and as an Anthropic request body; whatever
//! decodes is encoded for every provider format. Also the non-stream
//! response decoders of the three formats. Errors are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_translate::{anthropic, gemini, openai};

fuzz_target!(|data: &[u8]| {
    for req in [openai::decode_request(data), anthropic::decode_request(data)].into_iter().flatten() {
        let _ = openai::encode_request(&req, "fuzz-model");
        let _ = anthropic::encode_request(&req, "fuzz-model");
        let _ = gemini::encode_request(&req);
    }
    for resp in [openai::decode_response(data), anthropic::decode_response(data), gemini::decode_response(data, "fuzz")]
        .into_iter()
        .flatten()
    {
        let _ = openai::encode_response(&resp, "fuzz-model");
        let _ = anthropic::encode_response(&resp, "fuzz-model");
    }
});

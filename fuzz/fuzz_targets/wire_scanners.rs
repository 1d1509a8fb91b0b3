//! The OpenAI-wire byte scanners that stand in for a JSON parse on the hot
//! path, over arbitrary bytes: no panic; where the bytes are a JSON object,
//! `read_usage` agrees with the derived parse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::check_wire_scanners(data));

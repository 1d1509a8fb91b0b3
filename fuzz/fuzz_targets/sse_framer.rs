//! `SseFramer` over arbitrary bytes cut into chunks: no panic, and the same
//! events (and pending bytes) whatever the cuts; `data()` / `name()` of
//! every event do not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| switchyard_fuzz::check_framer(data));

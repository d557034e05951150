//! Any split of a byte stream (seeded by its first byte) decodes like the whole stream.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| slotcache_core::fuzzing::resp_chunked(data));

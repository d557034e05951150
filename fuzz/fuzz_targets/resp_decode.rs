//! Decoding arbitrary bytes never panics, never over-consumes, and round-trips what it decodes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| slotcache_core::fuzzing::resp_decode(data));

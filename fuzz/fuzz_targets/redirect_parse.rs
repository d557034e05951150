//! Any error text classifies without a panic; a parsed MOVED/ASK has a slot below 16384 and an
//! endpoint that, written back as `MOVED <slot> <host>:<port>`, parses to the same redirect.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| slotcache_core::fuzzing::redirect_parse(data));

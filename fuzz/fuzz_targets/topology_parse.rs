//! Bytes decoded as RESP2 and RESP3 parse as `CLUSTER SHARDS`/`CLUSTER SLOTS` replies without a
//! panic, and every topology that parses has a consistent slot map and no diff with itself.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| slotcache_core::fuzzing::topology_parse(data));

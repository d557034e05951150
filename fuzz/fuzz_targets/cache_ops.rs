//! The cache operations' step machines (reads, writes with tags, invalidations, compute, loads,
//! iteration, scans, locks, eviction and flush) driven with replies drawn from the input: no
//! panic, every machine done within a bound, and failures where every reply was wrong.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| slotcache_core::fuzzing::cache_ops(data));

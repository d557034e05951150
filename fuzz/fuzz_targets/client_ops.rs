//! A sequence of submits, replies, connection events and time steps against the client state
//! machine: no panic, every request completes exactly once, outputs name only live
//! connections, `Wait` is never in the past, and nothing is outstanding at the end.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| slotcache_core::fuzzing::client_ops(data));

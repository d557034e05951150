//! `client_ops` against a cluster whose topology the input generates and changes: one to five
//! shards with arbitrary slot ranges, replicas, failovers, nodes coming and going, unhealthy
//! nodes, hostnames and empty endpoints, with `MOVED`/`ASK` to any node.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| slotcache_core::fuzzing::client_topology(data));

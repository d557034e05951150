//! `INFO` and `CONFIG GET/SET` of a simulated node.

use bytes::Bytes;
use slotcache_core::{NodeAddr, Value};

use super::cluster::SimCluster;
use super::command_ctx::{err, ok, parse_int};
use super::eviction::EvictionPolicy;
use super::glob;

impl SimCluster {
    /// `INFO [section]`: `server`, `replication` (role, offsets, replicas), `memory`
    /// (`used_memory` = keys and values only, `maxmemory`, policy), `stats` (evicted and expired
    /// keys), `cluster` (`cluster_enabled`), `keyspace`; `all`/`default`/none for every section.
    pub(crate) fn info(&self, at: &NodeAddr, args: &[Bytes], resp3: bool) -> Value {
        let Some(n) = self.nodes.get(at) else { return err("ERR no such node") };
        let want: Vec<String> = args[1..].iter().map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
        let all = want.is_empty() || want.iter().any(|w| w == "all" || w == "default" || w == "everything");
        let show = |s: &str| all || want.iter().any(|w| w == s);
        let mut out = String::new();
        if show("server") {
            out += "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.0.0\r\n";
            out += &format!("tcp_port:{}\r\nuptime_in_seconds:{}\r\n\r\n", at.port(), self.clock.as_secs());
        }
        if show("replication") {
            out += "# Replication\r\n";
            match &n.replica_of {
                None => {
                    let reps = self.replicas_of(at);
                    out += &format!(
                        "role:master\r\nconnected_slaves:{}\r\n",
                        reps.iter().filter(|r| self.nodes[*r].up).count()
                    );
                    // A standalone primary lists its connected replicas only.
                    let reps: Vec<&NodeAddr> =
                        reps.iter().filter(|r| !self.standalone || self.nodes[*r].up).collect();
                    for (i, r) in reps.iter().enumerate() {
                        let rn = &self.nodes[*r];
                        let state = if rn.up { "online" } else { "down" };
                        out += &format!(
                            "slave{i}:ip={},port={},state={state},offset={},lag=0\r\n",
                            r.host(),
                            r.port(),
                            rn.repl.offset
                        );
                    }
                }
                Some(p) => {
                    let link =
                        if self.nodes.get(p).is_some_and(|p| p.up) && !n.repl.frozen { "up" } else { "down" };
                    out += &format!(
                        "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{link}\r\nslave_repl_offset:{}\r\nslave_read_repl_offset:{}\r\n",
                        p.host(),
                        p.port(),
                        n.repl.offset,
                        n.repl.offset
                    );
                }
            }
            out +=
                &format!("master_replid:{:040x}\r\nmaster_repl_offset:{}\r\n\r\n", n.repl.id, n.repl.offset);
        }
        if show("memory") {
            out += &format!(
                "# Memory\r\nused_memory:{}\r\nmaxmemory:{}\r\nmaxmemory_policy:{}\r\n\r\n",
                n.data.used_memory(),
                n.maxmemory,
                n.policy.name()
            );
        }
        if show("stats") {
            out += &format!("# Stats\r\nevicted_keys:{}\r\nexpired_keys:{}\r\n\r\n", n.evicted, n.expired);
        }
        if show("cluster") {
            out += &format!("# Cluster\r\ncluster_enabled:{}\r\n\r\n", u8::from(!self.standalone));
        }
        if show("keyspace") {
            out += "# Keyspace\r\n";
            if !n.data.is_empty() {
                out +=
                    &format!("db0:keys={},expires={},avg_ttl=0\r\n", n.data.len(), n.data.volatile_count());
            }
        }
        if resp3 {
            Value::Verbatim { format: Bytes::from_static(b"txt"), text: Bytes::from(out) }
        } else {
            Value::Bulk(Bytes::from(out))
        }
    }

    /// `CONFIG GET pattern...` (`maxmemory`, `maxmemory-policy`) and `CONFIG SET` of them.
    pub(crate) fn config(&mut self, at: &NodeAddr, args: &[Bytes], resp3: bool) -> Value {
        let Some(n) = self.nodes.get_mut(at) else { return err("ERR no such node") };
        let set = args[1].eq_ignore_ascii_case(b"SET");
        if args.len() < 3 || (set && !args.len().is_multiple_of(2)) {
            let sub = if set { "set" } else { "get" };
            return err(&format!("ERR wrong number of arguments for 'config|{sub}' command"));
        }
        if set {
            for kv in args[2..].chunks(2) {
                let bad = || {
                    err(&format!(
                        "ERR CONFIG SET failed (possibly related to argument '{}') - argument couldn't be parsed into an integer",
                        String::from_utf8_lossy(&kv[0])
                    ))
                };
                match kv[0].to_ascii_lowercase().as_slice() {
                    b"maxmemory" => match parse_memory(&kv[1]) {
                        Some(b) => n.maxmemory = b,
                        None => return bad(),
                    },
                    b"maxmemory-policy" => match EvictionPolicy::parse(&kv[1]) {
                        Some(p) => n.policy = p,
                        None => {
                            return err(&format!(
                                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: {}",
                                EvictionPolicy::ALL.map(EvictionPolicy::name).join(", ")
                            ));
                        }
                    },
                    other => {
                        return err(&format!(
                            "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                            String::from_utf8_lossy(other)
                        ));
                    }
                }
            }
            return ok();
        }
        let params =
            [("maxmemory", n.maxmemory.to_string()), ("maxmemory-policy", n.policy.name().to_owned())];
        let mut pairs = Vec::new();
        for (name, value) in params {
            if args[2..].iter().any(|p| glob::matches(&p.to_ascii_lowercase(), name.as_bytes())) {
                pairs.push((
                    Value::Bulk(Bytes::from_static(name.as_bytes())),
                    Value::Bulk(Bytes::from(value)),
                ));
            }
        }
        if resp3 {
            Value::Map(pairs)
        } else {
            Value::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
        }
    }
}

/// `100`, `10kb`, `5mb`, `1gb` (and `k`/`m`/`g` as powers of 1000), as Valkey reads memory.
fn parse_memory(b: &[u8]) -> Option<usize> {
    let s = String::from_utf8_lossy(b).to_lowercase();
    let units: [(&str, usize); 6] =
        [("kb", 1024), ("mb", 1 << 20), ("gb", 1 << 30), ("k", 1000), ("m", 1_000_000), ("g", 1_000_000_000)];
    for (u, mult) in units {
        if let Some(num) = s.strip_suffix(u) {
            return usize::try_from(parse_int(num.as_bytes())?).ok()?.checked_mul(mult);
        }
    }
    usize::try_from(parse_int(s.as_bytes())?).ok()
}

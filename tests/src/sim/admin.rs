//! `INFO` and `CONFIG GET/SET` of a simulated node.

use bytes::Bytes;
use slotcache_core::{NodeAddr, Value};

use super::cluster::SimCluster;
use super::command_ctx::err;
use super::config;

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
        config::config(args, &mut n.maxmemory, &mut n.policy, resp3)
    }
}

//! A `WAIT` that follows a write (`Cmd::after`) runs on the connection that answered the write,
//! wherever a redirection took it, on a real cluster: during a legacy migration a write to a
//! key already moved is asked to the target, and its `WAIT` runs there (counted in the
//! target's `INFO commandstats`, acknowledged by the target's replica); the source is never
//! asked. Pipelined without `after`, the `WAIT` goes to the source that redirected (bug A2),
//! which the control half shows. The simulation shows the same in `sim_wait_follows_redirect`.

use std::collections::BTreeMap;

use slotcache_rt::{Client, Cmd, Reply, Request, Value};
use slotcache_tests::conformance::{ALL, config, slot_owners};
use slotcache_tests::{Cluster, ClusterBuilder, key_for_slot};

fn waits(c: &Cluster, i: usize) -> u64 {
    let stats: BTreeMap<String, _> = c.commandstats(i).expect("commandstats");
    stats.get("wait").map_or(0, |s| s.calls)
}

#[test]
fn the_wait_follows_an_asked_write_to_the_target() {
    let c =
        ClusterBuilder::new().masters(3).replicas(1).label("conf-wait-redirect").start().expect("cluster");
    let owners = slot_owners(&c, 0).expect("owners");
    for (round, rt) in ALL.into_iter().enumerate() {
        let p = rt.name();
        let (from, to) = (round % 3, (round + 1) % 3);
        let slot =
            (0..16384u16).filter(|&s| owners[usize::from(s)] == Some(from)).nth(100 + round).expect("slot");
        let key = key_for_slot(slot, &format!("wait:{p}"));
        let m = c.begin_legacy_migration(slot, from, to).expect("begin");
        c.cmd(from, ["SET", key.as_str(), "old"]).expect("seed");
        m.move_keys(&c, &[key.as_str()]).expect("MIGRATE");
        for follow in [true, false] {
            let (src_before, dst_before) = (waits(&c, from), waits(&c, to));
            let reply = rt.block_on(async {
                let client = Client::connect(rt.runtime(), config(&c)).await.expect("connect");
                let set = Cmd::new("SET").arg(key.as_str()).arg("new");
                let wait =
                    Cmd::new("WAIT").arg(1).arg(2000).with_slot(slotcache_rt::key_slot(key.as_bytes()));
                let wait = if follow { wait.after(0) } else { wait };
                let r = client.request(Request::pipeline(vec![set, wait])).await;
                client.close().await;
                r.expect("pipeline")
            });
            let Reply::Pipeline(results) = reply else { panic!("{p}: a pipeline reply") };
            let (src, dst) = (waits(&c, from) - src_before, waits(&c, to) - dst_before);
            if follow {
                assert_eq!((src, dst), (0, 1), "{p}: the WAIT ran where the write ran: {results:?}");
                assert_eq!(results[1].as_ref().ok(), Some(&Value::Int(1)), "{p}: the target's replica acked");
            } else {
                assert_eq!((src, dst), (1, 0), "{p}: bug A2, the WAIT went to the source: {results:?}");
            }
        }
        m.move_all(&c).expect("move the rest");
        m.finish(&c).expect("finish");
    }
}

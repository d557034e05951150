//! Conformance (real cluster, every runtime): a pipeline holding multi-key commands whose keys
//! span slots (MSET, MGET, EXISTS, TOUCH, DEL, UNLINK) splits each per slot and merges the
//! parts back into that command's result, in the pipeline's order.

use bytes::Bytes;
use slotcache_rt::{Client, Cmd, Value};
use slotcache_tests::ClusterBuilder;
use slotcache_tests::conformance::{ALL, config};

fn with_keys(name: &str, keys: &[String], values: bool) -> Cmd {
    let mut c = Cmd::new(name);
    for k in keys {
        c.push_arg(k.as_str());
        if values {
            c.push_arg(format!("v-{k}"));
        }
    }
    c
}

#[test]
fn cross_slot_commands_in_a_pipeline_on_every_runtime() {
    let cluster =
        ClusterBuilder::new().masters(3).replicas(0).label("conf-pipe-xslot").start().expect("cluster");
    for rt in ALL {
        let cfg = config(&cluster);
        rt.block_on(async move {
            let client = Client::connect(rt.runtime(), cfg).await.expect("connect");
            let p = rt.name();
            let keys: Vec<String> = (0..50).map(|i| format!("{p}:x:{i}")).collect();
            let mut mget_keys = keys.clone();
            mget_keys.push(format!("{p}:x:absent"));
            let replies = client
                .pipeline(vec![
                    with_keys("MSET", &keys, true),
                    with_keys("MGET", &mget_keys, false),
                    with_keys("EXISTS", &mget_keys, false),
                    with_keys("TOUCH", &keys, false),
                    with_keys("DEL", &keys[..25], false),
                    with_keys("UNLINK", &keys[25..], false),
                    with_keys("EXISTS", &keys, false),
                ])
                .await
                .expect("pipeline");
            assert_eq!(replies.len(), 7, "{p}");
            let r: Vec<Value> = replies.into_iter().map(|r| r.expect("command")).collect();
            assert_eq!(r[0], Value::Simple(Bytes::from_static(b"OK")), "{p}");
            let Value::Array(values) = &r[1] else { panic!("{p}: array") };
            let want: Vec<Value> =
                keys.iter().map(|k| Value::Bulk(Bytes::from(format!("v-{k}")))).chain([Value::Nil]).collect();
            assert_eq!(values, &want, "{p}: MGET in the caller's order");
            assert_eq!(
                r[2..],
                [Value::Int(50), Value::Int(50), Value::Int(25), Value::Int(25), Value::Int(0)],
                "{p}"
            );
            let stats = client.stats().await.expect("stats");
            assert_eq!(stats.moved, 0, "{p}: every part went to its owner: {stats:?}");
            client.close().await;
        });
    }
}

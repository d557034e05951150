//! `slotcache slot KEY... [--seeds ...]`.

use std::process::ExitCode;

use anyhow::Result;
use slotcache_core::{NodeAddr, hash_tag, key_slot};

use crate::seeds::Topology;

pub(crate) fn run(keys: &[String], seeds: &[NodeAddr]) -> Result<ExitCode> {
    let topo = if seeds.is_empty() { None } else { Some(Topology::discover(seeds)?) };
    let width = keys.iter().map(String::len).max().unwrap_or(3).clamp(3, 40);
    match &topo {
        Some(t) => println!("{:width$}  {:>5}  {:20}  OWNER (asked {})", "KEY", "SLOT", "HASHED", t.via),
        None => println!("{:width$}  {:>5}  HASHED", "KEY", "SLOT"),
    }
    for key in keys {
        let slot = key_slot(key.as_bytes()).get();
        let hashed = String::from_utf8_lossy(hash_tag(key.as_bytes())).into_owned();
        match &topo {
            Some(t) => {
                let owner = t.owner(slot).map_or_else(|| "(no node serves it)".to_owned(), |a| a.to_string());
                println!("{key:width$}  {slot:>5}  {hashed:20}  {owner}");
            }
            None => println!("{key:width$}  {slot:>5}  {hashed}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

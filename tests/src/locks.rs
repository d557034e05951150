//! Cross-process claims held with `flock` on files in [`paths::locks_dir`]: ports (so parallel
//! tests, test processes and worktrees never pick the same port) and cluster permits (so no more
//! than a few clusters run at once on this small machine). The kernel drops a claim when its
//! holder exits, even by `SIGKILL`, so there are no stale claims to clean.

use std::fs::{File, OpenOptions, TryLockError};
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;

use crate::{Error, Result, ResultExt, paths, wait};

/// Lowest client port handed out. Bus ports are `port + 10000`, so clients use 10000..20000 and
/// buses 20000..30000: both below Linux's ephemeral range (32768+), so outgoing connections never
/// take them.
pub const PORT_MIN: u16 = 10_000;
/// One past the highest client port handed out.
pub const PORT_MAX: u16 = 20_000;
/// Offset of the cluster bus port.
pub const BUS_OFFSET: u16 = 10_000;

/// A claimed client port (its bus port is claimed with it). Released on drop.
#[derive(Debug)]
pub struct PortClaim {
    port: u16,
    _lock: File,
}

impl PortClaim {
    /// The client port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }
}

fn open_lock(name: &str) -> Result<File> {
    let dir = paths::locks_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))
}

fn try_lock(f: &File) -> Result<bool> {
    match f.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e.into()),
    }
}

fn bindable(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn start_offset() -> u32 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    (std::process::id().wrapping_mul(7919)) ^ nanos
}

/// Claims `n` free client ports (each with its bus port `+10000` free too).
pub fn claim_ports(n: usize) -> Result<Vec<PortClaim>> {
    let span = u32::from(PORT_MAX - PORT_MIN);
    let mut offset = start_offset() % span;
    let mut claims = Vec::with_capacity(n);
    for _ in 0..span {
        if claims.len() == n {
            break;
        }
        let port = PORT_MIN + u16::try_from(offset).unwrap_or(0);
        offset = (offset + 1) % span;
        let lock = open_lock(&format!("port-{port}.lock"))?;
        if !try_lock(&lock)? {
            continue;
        }
        if bindable(port) && bindable(port + BUS_OFFSET) {
            claims.push(PortClaim { port, _lock: lock });
        }
    }
    if claims.len() < n {
        return Err(Error::new(format!(
            "could not find {n} free ports (and bus ports +{BUS_OFFSET}) in {PORT_MIN}..{PORT_MAX}"
        )));
    }
    Ok(claims)
}

/// A permit to run one cluster; released on drop.
#[derive(Debug)]
pub struct ClusterPermit {
    _lock: File,
}

/// How many clusters may run at once on this machine (all processes together):
/// `SLOTCACHE_MAX_CLUSTERS`, default 2.
#[must_use]
pub fn max_clusters() -> usize {
    std::env::var("SLOTCACHE_MAX_CLUSTERS").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(2)
}

/// Waits (at most `timeout`) for one of the [`max_clusters`] machine-wide cluster permits.
pub fn acquire_cluster_permit(timeout: Duration) -> Result<ClusterPermit> {
    let max = max_clusters();
    let mut held = None;
    wait::wait_until(timeout, &format!("one of {max} cluster permits (SLOTCACHE_MAX_CLUSTERS)"), || {
        for i in 0..max {
            let lock = open_lock(&format!("cluster-permit-{i}.lock"))?;
            if try_lock(&lock)? {
                held = Some(lock);
                return Ok(true);
            }
        }
        Ok(false)
    })?;
    Ok(ClusterPermit { _lock: held.ok_or_else(|| Error::new("permit vanished"))? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_ports_are_distinct_and_exclusive() {
        let a = claim_ports(4).unwrap();
        let b = claim_ports(4).unwrap();
        let mut all: Vec<u16> = a.iter().chain(&b).map(PortClaim::port).collect();
        assert!(all.iter().all(|p| (PORT_MIN..PORT_MAX).contains(p)));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 8, "two claims in one process must not share a port");
        // A claimed port's lock file cannot be locked again while the claim lives.
        let again = open_lock(&format!("port-{}.lock", a[0].port())).unwrap();
        assert!(!try_lock(&again).unwrap());
        let port = a[0].port();
        drop(a);
        assert!(try_lock(&open_lock(&format!("port-{port}.lock")).unwrap()).unwrap());
    }
}

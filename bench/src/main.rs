//! `slotcache-bench`: see the library's documentation.

fn main() -> std::process::ExitCode {
    slotcache_bench::main()
}

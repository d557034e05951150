//! The soak's negative control: its clients on the naive tag protocol (a test-only switch)
//! must make the soak report violations and exit non-zero.

mod drill_support;

use std::time::Duration;

use drill_support::run_drill_status;

#[test]
fn soak_of_the_naive_protocol_fails_on_violations() {
    let (_, stdout, stderr, ok) =
        run_drill_status(&["--soak", "20s", "--soak-naive"], "soak-naive-test", Duration::from_secs(120));
    assert!(!ok, "the soak passed the naive protocol:\n{stdout}\n{stderr}");
    assert!(stdout.contains("**FAIL** 0 checker violations"), "{stdout}\n{stderr}");
    assert!(stdout.contains("soak: FAILED"), "{stdout}");
}

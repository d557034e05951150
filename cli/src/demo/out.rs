//! Progress and status output for the demo.

use std::io::IsTerminal;
use std::time::Duration;

fn styled(code: &str, text: &str) -> String {
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

pub(super) fn title(text: &str) {
    println!("{}", styled("1", &format!("== {text} ==")));
}

pub(super) fn step(n: usize, text: &str) {
    println!();
    println!("{}", styled("1;36", &format!("[{n}/{}] {text}", super::STEPS)));
}

pub(super) fn note(text: &str) {
    println!("      {text}");
}

pub(super) fn good(text: &str) {
    println!("      {} {text}", styled("32", "ok"));
}

pub(super) fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

pub(super) fn summary(rows: &[(String, String)], total: Duration) {
    println!();
    println!("{}", styled("1", "== summary =="));
    for (k, v) in rows {
        println!("      {k:<40} {v}");
    }
    println!("      {:<40} {}", "demo wall time", secs(total));
}

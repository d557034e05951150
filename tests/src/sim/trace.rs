//! An opt-in log of what happened in a simulation (commands sent to each node, replies, faults
//! injected, replication applied), for a failing seed to print. Enable it with
//! [`super::Sim::enable_trace`], print [`super::Sim::trace_dump`] in the failure message.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use slotcache_core::Value;

/// What kind of thing a trace line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// A connection opened, refused or closed.
    Conn,
    /// A command a node received.
    Send,
    /// A reply a node sent.
    Reply,
    /// A fault the test injected (kill, pause, failover, lag...).
    Fault,
    /// Replication applied, a `WAIT` released.
    Repl,
    /// A note the test added ([`super::Sim::note`]).
    Note,
}

/// One trace line.
#[derive(Debug, Clone)]
pub struct TraceEntry {
    /// Virtual time since the start.
    pub at: Duration,
    /// Its kind.
    pub kind: TraceKind,
    /// What happened.
    pub text: String,
}

/// The last `limit` trace lines.
#[derive(Debug, Clone)]
pub struct Trace {
    entries: VecDeque<TraceEntry>,
    limit: usize,
    dropped: u64,
}

impl Trace {
    /// A trace keeping the last `limit` lines.
    #[must_use]
    pub fn new(limit: usize) -> Self {
        Self { entries: VecDeque::new(), limit: limit.max(1), dropped: 0 }
    }

    /// Adds a line (the oldest goes when full).
    pub fn push(&mut self, at: Duration, kind: TraceKind, text: String) {
        if self.entries.len() == self.limit {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(TraceEntry { at, kind, text });
    }

    /// The lines kept, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &TraceEntry> {
        self.entries.iter()
    }

    /// All lines as text, one per line: `[   12.345ms] Send  10.0.0.1:7000 <- GET k`.
    #[must_use]
    pub fn render(&self) -> String {
        let mut s = String::new();
        if self.dropped > 0 {
            let _ = writeln!(s, "({} earlier lines dropped)", self.dropped);
        }
        for e in &self.entries {
            let ms = e.at.as_secs_f64() * 1000.0;
            let _ = writeln!(s, "[{ms:>12.3}ms] {:<5} {}", format!("{:?}", e.kind), e.text);
        }
        s
    }
}

/// Bytes as printable text, cut at 60 bytes.
#[must_use]
pub fn show_bytes(b: &[u8]) -> String {
    let mut s: String =
        b.iter().take(60).flat_map(|c| std::ascii::escape_default(*c)).map(char::from).collect();
    if b.len() > 60 {
        let _ = write!(s, "..(+{})", b.len() - 60);
    }
    s
}

/// A command line for the trace.
#[must_use]
pub fn show_args(args: &[Bytes]) -> String {
    let mut s = String::new();
    for (i, a) in args.iter().enumerate().take(12) {
        if i > 0 {
            s.push(' ');
        }
        s += &show_bytes(a);
    }
    if args.len() > 12 {
        let _ = write!(s, " ..(+{} args)", args.len() - 12);
    }
    s
}

/// A reply for the trace (nested values abbreviated).
#[must_use]
pub fn show_value(v: &Value) -> String {
    match v {
        Value::Nil => "(nil)".into(),
        Value::Simple(b) => show_bytes(b),
        Value::Error(b) => format!("(error) {}", show_bytes(b)),
        Value::Int(i) => format!("(integer) {i}"),
        Value::Bulk(b) => format!("\"{}\"", show_bytes(b)),
        Value::Double(d) => format!("(double) {d}"),
        Value::Bool(b) => format!("(bool) {b}"),
        Value::Array(items) | Value::Set(items) | Value::Push(items) => {
            let inner: Vec<String> = items.iter().take(6).map(show_value).collect();
            let more = if items.len() > 6 { format!(", ..(+{})", items.len() - 6) } else { String::new() };
            format!("[{}{more}]", inner.join(", "))
        }
        Value::Map(pairs) => format!("(map of {})", pairs.len()),
        Value::BigNumber(b) => show_bytes(b),
        Value::Verbatim { text, .. } => format!("(verbatim) {}", show_bytes(text)),
        other => format!("{other:?}"),
    }
}

//! Glob escaping for `SCAN ... MATCH` and `KEYS` patterns.
//!
//! The server's glob treats `*`, `?`, `[` (with `]`, `^` and `-` inside brackets) and `\` as
//! special. Escaping each of `* ? [ ] \` with a backslash turns any byte string into a pattern
//! that matches exactly that string; everything else (`^`, `-`, `{`, `}`) is literal outside
//! brackets. The reference did not escape (spec §3.1, §15.10), so a namespace such as `a*b`
//! made `SCAN MATCH a*b:*` sweep up other namespaces.

/// Whether `byte` must be escaped in a glob pattern.
#[must_use]
pub const fn is_glob_special(byte: u8) -> bool {
    matches!(byte, b'*' | b'?' | b'[' | b']' | b'\\')
}

/// Appends `literal` to `out`, escaped so that the glob matches it byte for byte.
pub fn escape_glob_into(literal: &[u8], out: &mut Vec<u8>) {
    out.reserve(literal.len());
    for &b in literal {
        if is_glob_special(b) {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// `literal` escaped for a glob pattern.
#[must_use]
pub fn escape_glob(literal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(literal.len() + 4);
    escape_glob_into(literal, &mut out);
    out
}

/// A pattern matching every key that starts with `prefix`: the escaped prefix and `*`.
#[must_use]
pub fn prefix_pattern(prefix: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + 5);
    escape_glob_into(prefix, &mut out);
    out.push(b'*');
    out
}

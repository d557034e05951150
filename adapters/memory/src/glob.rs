//! Valkey's glob patterns (`SCAN MATCH`, `CONFIG GET`): `*`, `?`, `[abc]`, `[^a-z]`, `\x`.

/// Whether `s` matches `pattern`, as Valkey's `stringmatchlen` decides (case-sensitive).
#[must_use]
pub fn matches(pattern: &[u8], s: &[u8]) -> bool {
    match pattern.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => {
            // Collapse runs of stars, then try every split point.
            let rest = trim_stars(rest);
            if rest.is_empty() {
                return true;
            }
            (0..=s.len()).any(|i| matches(rest, &s[i..]))
        }
        Some((b'?', rest)) => !s.is_empty() && matches(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some((&c, tail)) = s.split_first() else { return false };
            let (hit, after) = class(rest, c);
            hit && matches(after, tail)
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            !s.is_empty() && s[0] == rest[0] && matches(&rest[1..], &s[1..])
        }
        Some((&p, rest)) => !s.is_empty() && s[0] == p && matches(rest, &s[1..]),
    }
}

fn trim_stars(mut p: &[u8]) -> &[u8] {
    while let Some((b'*', rest)) = p.split_first() {
        p = rest;
    }
    p
}

/// Matches `c` against a class whose `[` was consumed; returns the verdict and the pattern
/// after the closing `]` (an unclosed class runs to the end, as in Valkey).
fn class(p: &[u8], c: u8) -> (bool, &[u8]) {
    let (negate, mut p) = match p.split_first() {
        Some((b'^', rest)) => (true, rest),
        _ => (false, p),
    };
    let mut hit = false;
    loop {
        match p {
            [] => break,
            [b']', rest @ ..] => {
                p = rest;
                break;
            }
            [b'\\', x, rest @ ..] => {
                hit |= *x == c;
                p = rest;
            }
            [a, b'-', z, rest @ ..] if *z != b']' => {
                let (lo, hi) = if a <= z { (*a, *z) } else { (*z, *a) };
                hit |= (lo..=hi).contains(&c);
                p = rest;
            }
            [x, rest @ ..] => {
                hit |= *x == c;
                p = rest;
            }
        }
    }
    (hit != negate, p)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs_match_like_valkey() {
        assert!(matches(b"*", b""));
        assert!(matches(b"tag:*", b"tag:{a}"));
        assert!(!matches(b"tag:*", b"data:x"));
        assert!(matches(b"h?llo", b"hello"));
        assert!(matches(b"h[ae]llo", b"hallo"));
        assert!(!matches(b"h[^e]llo", b"hello"));
        assert!(matches(b"h[a-c]llo", b"hbllo"));
        assert!(matches(b"a\\*b", b"a*b"));
        assert!(!matches(b"a\\*b", b"axb"));
        assert!(matches(b"*x*y*", b"..x..y"));
        assert!(matches(b"maxmemory*", b"maxmemory-policy"));
    }
}

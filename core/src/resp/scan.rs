//! The frame walker: one non-recursive pass over a RESP frame that checks its grammar and the
//! [`Limits`], and reports what it finds to a [`Sink`].
//!
//! The same code runs twice per frame. First with [`Skip`], which ignores everything, over the
//! bytes received so far: this tells "incomplete" from "complete, `n` bytes" from "invalid"
//! without allocating, skipping bulk payloads by their declared length. Then, once a frame is
//! complete, with the builder in `decode.rs` over exactly that frame. Sharing the walker means
//! the second pass cannot disagree with the first about what is valid.
//!
//! Nesting is tracked with an explicit stack of remaining entry counts, so `*1\r\n` repeated
//! 100 000 times costs a [`DecodeError::TooDeep`], not a stack overflow. Every decision depends
//! only on bytes already present, so feeding a stream in any chunks gives the same outcome.

use super::Protocol;
use super::error::{DecodeError, Limits, MAX_NUMERIC_LINE, Syntax};

/// A half-open byte range `(start, end)` of the walked buffer.
pub(super) type Span = (usize, usize);

/// A scalar, with its text given as spans of the walked buffer.
pub(super) enum Leaf {
    Nil,
    Simple(Span),
    Error(Span),
    Int(i64),
    Bulk(Span),
    Double(f64),
    Bool(bool),
    BigNumber(Span),
    Verbatim { format: Span, text: Span },
}

/// An aggregate type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Agg {
    Array,
    Set,
    Push,
    Map,
    Attribute,
}

/// What the walker reports, in stream order. `open` is always balanced by `close`.
pub(super) trait Sink {
    /// A scalar.
    fn leaf(&mut self, leaf: Leaf);
    /// The start of an aggregate of `entries` entries (pairs for maps and attributes).
    fn open(&mut self, agg: Agg, entries: usize);
    /// The end of the innermost open aggregate.
    fn close(&mut self);
}

/// The sink of the pre-scan: ignores everything.
pub(super) struct Skip;

impl Sink for Skip {
    #[inline(always)]
    fn leaf(&mut self, _: Leaf) {}
    #[inline(always)]
    fn open(&mut self, _: Agg, _: usize) {}
    #[inline(always)]
    fn close(&mut self) {}
}

/// An open aggregate: how many child frames are still to come.
struct Level {
    remaining: usize,
    attribute: bool,
}

/// One element header (and, for scalars, its payload).
enum Item {
    Leaf(Leaf),
    Open(Agg, usize),
}

/// Walks the first frame of `buf`: `Ok(Some(len))` when it is complete and `len` bytes long,
/// `Ok(None)` when more bytes are needed.
pub(super) fn walk<S: Sink>(
    buf: &[u8],
    protocol: Protocol,
    limits: &Limits,
    sink: &mut S,
) -> Result<Option<usize>, DecodeError> {
    let mut pos = 0;
    let mut stack: Vec<Level> = Vec::new();
    loop {
        // Fast path for the most common element, a bulk string with a plain length header.
        // Same helpers as the general path, so the same outcome on every input.
        if buf.get(pos) == Some(&b'$') {
            if let Some((len, at)) = fast_count(buf, pos + 1) {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                let Some((span, next)) = blob(buf, at, len, limits)? else { return Ok(None) };
                sink.leaf(Leaf::Bulk(span));
                pos = next;
                if finish(&mut stack, sink) {
                    return Ok(Some(pos));
                }
                continue;
            }
        }
        let Some((item, next)) = element(buf, pos, protocol, limits)? else {
            return Ok(None);
        };
        pos = next;
        match item {
            Item::Leaf(leaf) => sink.leaf(leaf),
            Item::Open(agg, entries) => {
                let limit = limits.depth();
                if stack.len() >= limit {
                    return Err(DecodeError::TooDeep { limit });
                }
                let paired = matches!(agg, Agg::Map | Agg::Attribute);
                let children = if paired { entries.saturating_mul(2) } else { entries };
                if children > 0 {
                    sink.open(agg, entries);
                    stack.push(Level { remaining: children, attribute: agg == Agg::Attribute });
                    continue;
                }
                if agg == Agg::Attribute {
                    // An empty attribute annotates the next frame with nothing.
                    continue;
                }
                sink.open(agg, 0);
                sink.close();
            }
        }
        if finish(&mut stack, sink) {
            return Ok(Some(pos));
        }
    }
}

/// Accounts for one finished child frame, closing every aggregate it completes. True when the
/// top-level frame is done.
#[inline]
fn finish<S: Sink>(stack: &mut Vec<Level>, sink: &mut S) -> bool {
    loop {
        let Some(top) = stack.last_mut() else {
            return true;
        };
        top.remaining = top.remaining.saturating_sub(1);
        if top.remaining > 0 {
            return false;
        }
        let attribute = top.attribute;
        stack.pop();
        sink.close();
        if attribute {
            // The frame the attribute annotates is still to come, at the same level.
            return false;
        }
    }
}

/// Parses the element starting at `pos`: its item and where the next element starts.
fn element(
    buf: &[u8],
    pos: usize,
    protocol: Protocol,
    limits: &Limits,
) -> Result<Option<(Item, usize)>, DecodeError> {
    let Some(&byte) = buf.get(pos) else {
        return Ok(None);
    };
    let at = pos + 1;
    let resp3 = protocol == Protocol::Resp3;
    let leaf = |found: Option<(Leaf, usize)>| found.map(|(leaf, next)| (Item::Leaf(leaf), next));
    match byte {
        b'+' => Ok(leaf(text_line(buf, at, limits)?.map(|(s, next)| (Leaf::Simple(s), next)))),
        b'-' => Ok(leaf(text_line(buf, at, limits)?.map(|(s, next)| (Leaf::Error(s), next)))),
        b':' => {
            if let Some((n, next)) = fast_int(buf, at) {
                return Ok(Some((Item::Leaf(Leaf::Int(n)), next)));
            }
            let Some((text, next)) = numeric_line(buf, at)? else { return Ok(None) };
            let n = parse_i64(text).ok_or(Syntax::BadInteger)?;
            Ok(Some((Item::Leaf(Leaf::Int(n)), next)))
        }
        b'$' | b'!' | b'=' => {
            if byte != b'$' && !resp3 {
                return Err(DecodeError::InvalidPrefix { byte });
            }
            let Some((len, next)) = header(buf, at, byte, resp3)? else { return Ok(None) };
            let Some(len) = len else { return Ok(Some((Item::Leaf(Leaf::Nil), next))) };
            let Some((span, next)) = blob(buf, next, len, limits)? else { return Ok(None) };
            let leaf = match byte {
                b'$' => Leaf::Bulk(span),
                b'!' => Leaf::Error(span),
                _ => verbatim(buf, span)?,
            };
            Ok(Some((Item::Leaf(leaf), next)))
        }
        b'*' | b'%' | b'~' | b'>' | b'|' => {
            let agg = match byte {
                b'*' => Agg::Array,
                b'%' => Agg::Map,
                b'~' => Agg::Set,
                b'>' => Agg::Push,
                _ => Agg::Attribute,
            };
            if agg != Agg::Array && !resp3 {
                return Err(DecodeError::InvalidPrefix { byte });
            }
            let Some((len, next)) = header(buf, at, byte, resp3)? else { return Ok(None) };
            let Some(len) = len else { return Ok(Some((Item::Leaf(Leaf::Nil), next))) };
            if len > limits.max_array_len {
                return Err(DecodeError::ArrayTooLong { len, limit: limits.max_array_len });
            }
            Ok(Some((Item::Open(agg, len), next)))
        }
        _ if !resp3 => Err(DecodeError::InvalidPrefix { byte }),
        b'_' | b',' | b'#' => {
            let Some((text, next)) = numeric_line(buf, at)? else { return Ok(None) };
            let leaf = match (byte, text) {
                (b'_', []) => Leaf::Nil,
                (b'_', _) => return Err(Syntax::BadNull.into()),
                (b'#', b"t") => Leaf::Bool(true),
                (b'#', b"f") => Leaf::Bool(false),
                (b'#', _) => return Err(Syntax::BadBoolean.into()),
                _ => Leaf::Double(parse_f64(text).ok_or(Syntax::BadDouble)?),
            };
            Ok(Some((Item::Leaf(leaf), next)))
        }
        b'(' => {
            let Some((span, next)) = text_line(buf, at, limits)? else { return Ok(None) };
            let text = buf.get(span.0..span.1).ok_or(Syntax::Inconsistent)?;
            if !is_big_number(text) {
                return Err(Syntax::BadBigNumber.into());
            }
            Ok(Some((Item::Leaf(Leaf::BigNumber(span)), next)))
        }
        b';' | b'.' => Err(DecodeError::Unsupported { byte }),
        _ => Err(DecodeError::InvalidPrefix { byte }),
    }
}

/// A length header after a type byte: `Some(None)` for the RESP2 null `-1`.
fn header(
    buf: &[u8],
    at: usize,
    byte: u8,
    resp3: bool,
) -> Result<Option<(Option<usize>, usize)>, DecodeError> {
    if let Some((n, next)) = fast_count(buf, at) {
        return Ok(Some((Some(usize::try_from(n).unwrap_or(usize::MAX)), next)));
    }
    let Some((text, next)) = numeric_line(buf, at)? else { return Ok(None) };
    match text {
        b"-1" if matches!(byte, b'$' | b'*') => Ok(Some((None, next))),
        b"?" if resp3 => Err(DecodeError::Unsupported { byte }),
        _ => {
            let n = parse_u64(text).ok_or(Syntax::BadLength)?;
            Ok(Some((Some(usize::try_from(n).unwrap_or(usize::MAX)), next)))
        }
    }
}

/// A payload of `len` bytes at `start` followed by CRLF.
#[inline]
fn blob(buf: &[u8], start: usize, len: usize, limits: &Limits) -> Result<Option<(Span, usize)>, DecodeError> {
    let too_long = DecodeError::BulkTooLong { len, limit: limits.max_bulk_len };
    if len > limits.max_bulk_len {
        return Err(too_long);
    }
    let end = start.checked_add(len).ok_or(too_long)?;
    if buf.get(end).is_some_and(|&b| b != b'\r') {
        return Err(Syntax::MissingCrlf.into());
    }
    match buf.get(end.saturating_add(1)) {
        None => Ok(None),
        Some(b'\n') => Ok(Some(((start, end), end + 2))),
        Some(_) => Err(Syntax::MissingCrlf.into()),
    }
}

/// Splits a verbatim payload `fmt:text`.
fn verbatim(buf: &[u8], (start, end): Span) -> Result<Leaf, DecodeError> {
    let colon = start.saturating_add(3);
    if end.saturating_sub(start) < 4 || buf.get(colon) != Some(&b':') {
        return Err(Syntax::BadVerbatim.into());
    }
    Ok(Leaf::Verbatim { format: (start, colon), text: (colon + 1, end) })
}

/// A line of text (simple string, error, big number) bounded by `max_bulk_len`.
fn text_line(buf: &[u8], at: usize, limits: &Limits) -> Result<Option<(Span, usize)>, DecodeError> {
    Ok(line_end(buf, at, limits.max_bulk_len)?.map(|cr| ((at, cr), cr + 2)))
}

/// A short line (header, integer, double, boolean, null): its bytes and where the next starts.
fn numeric_line(buf: &[u8], at: usize) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let Some(cr) = line_end(buf, at, MAX_NUMERIC_LINE)? else { return Ok(None) };
    let text = buf.get(at..cr).ok_or(Syntax::Inconsistent)?;
    Ok(Some((text, cr + 2)))
}

/// The index of the CR of the first CRLF at or after `start`, if within `max` bytes.
fn line_end(buf: &[u8], start: usize, max: usize) -> Result<Option<usize>, DecodeError> {
    let window_end = start.saturating_add(max).saturating_add(2);
    let window = buf.get(start..window_end.min(buf.len())).unwrap_or_default();
    let mut from = 0;
    while let Some(i) = window.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'\r')) {
        let cr = from + i;
        if window.get(cr + 1) == Some(&b'\n') {
            return Ok(Some(start + cr));
        }
        from = cr + 1;
    }
    if buf.len() >= window_end { Err(DecodeError::LineTooLong { limit: max }) } else { Ok(None) }
}

/// The common case of a count or integer line, in one pass: 1 to 19 digits (which cannot
/// overflow) and CRLF. `None` sends the caller to the general path, which decides everything
/// else, so both paths agree on every input.
#[inline(always)]
fn fast_count(buf: &[u8], at: usize) -> Option<(u64, usize)> {
    let rest = buf.get(at..)?;
    let mut n = 0u64;
    for (i, &b) in rest.iter().enumerate().take(20) {
        match b {
            b'0'..=b'9' if i < 19 => n = n * 10 + u64::from(b - b'0'),
            b'\r' if i > 0 => return (rest.get(i + 1) == Some(&b'\n')).then_some((n, at + i + 2)),
            _ => return None,
        }
    }
    None
}

/// [`fast_count`] with an optional minus sign, for `:` integers.
#[inline]
fn fast_int(buf: &[u8], at: usize) -> Option<(i64, usize)> {
    if buf.get(at) == Some(&b'-') {
        let (n, next) = fast_count(buf, at + 1)?;
        Some((i64::try_from(n).ok()?.checked_neg()?, next))
    } else {
        let (n, next) = fast_count(buf, at)?;
        Some((i64::try_from(n).ok()?, next))
    }
}

/// A non-empty run of ASCII digits.
fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 { None } else { n.checked_mul(10)?.checked_add(u64::from(digit)) }
    })
}

/// An optionally signed decimal `i64`.
pub(super) fn parse_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0i64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        let n = n.checked_mul(10)?;
        if negative { n.checked_sub(i64::from(digit)) } else { n.checked_add(i64::from(digit)) }
    })
}

/// A RESP3 double: decimal, exponent, `inf`, `-inf` or `nan`.
fn parse_f64(text: &[u8]) -> Option<f64> {
    core::str::from_utf8(text).ok()?.parse().ok()
}

/// An optionally signed, non-empty run of decimal digits.
pub(super) fn is_big_number(text: &[u8]) -> bool {
    let digits = match text.split_first() {
        Some((b'-' | b'+', rest)) => rest,
        _ => text,
    };
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

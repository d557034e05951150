//! Value codecs: how a namespace's values become bytes and back.
//!
//! A [`Codec`] runs before the transformers (see [`super::transform`]): its bytes are what the
//! reference stores when no transformer is configured, so the codec alone decides whether Go
//! and Rust services can share a namespace.
//!
//! - [`Json`] writes the bytes the reference's JSON encoder writes (Go `encoding/json` with HTML
//!   escaping off); see its documentation for the exact rules and the few differences left.
//! - [`Binary`] is a compact serde format for Rust-only namespaces: [postcard]. It was chosen
//!   over bincode because postcard's 1.x wire format is specified and frozen, the crate is
//!   actively maintained, and it needs no configuration to be deterministic (varint integers,
//!   no options to get wrong between writer and reader); bincode is unmaintained
//!   (RUSTSEC-2025-0141, which names postcard among the alternatives).
//! - [`Raw`] stores `Vec<u8>`, [`Bytes`] and `String` values as they are.
//!
//! Every codec turns undecodable input into [`CacheError::Codec`] and never panics.
//!
//! [postcard]: https://docs.rs/postcard

use std::io;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::CacheError;

/// Turns values into bytes and back.
pub trait Codec<V>: Send + Sync + 'static {
    /// A short stable name, for error messages and configuration checks.
    fn name(&self) -> &'static str;

    /// Appends the bytes of `value` to `out`.
    ///
    /// # Errors
    /// [`CacheError::Codec`] when the value cannot be encoded; `out` is then left as it was.
    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CacheError>;

    /// Reads a value back from exactly these bytes.
    ///
    /// # Errors
    /// [`CacheError::Codec`] when the bytes are not a value of this type in this codec's format,
    /// trailing bytes included.
    fn decode(&self, bytes: &[u8]) -> Result<V, CacheError>;
}

/// JSON with the reference's exact bytes, for any `V: Serialize + DeserializeOwned`.
///
/// The reference writes JSON with Go's `encoding/json`, HTML escaping off, and no trailing
/// newline: the string `hello` is the 7 bytes `"hello"`. This codec writes the same bytes:
///
/// - no whitespace; struct fields in declaration order (as Go does);
/// - `<`, `>` and `&` are written as they are;
/// - `"` and `\` are escaped as `\"` and `\\`; the controls U+0008, U+0009, U+000A, U+000C and
///   U+000D as `\b`, `\t`, `\n`, `\f`, `\r` (Go 1.22 and later; older Go wrote `\u0008` and
///   `\u000c`) and every other control below U+0020 as `\u00xx` in lower-case hex; DEL and all
///   other characters as UTF-8;
/// - **U+2028 and U+2029 are escaped as `\u2028` and `\u2029`**, as Go does even with HTML
///   escaping off (serde_json alone would write them raw; this codec escapes them);
/// - **floats are formatted as Go formats them** (serde_json alone would differ): the shortest
///   decimal that reads back exactly, with no fraction for whole numbers (`100`, not `100.0`),
///   and exponent form only below 1e-6 or from 1e21 on, with an explicit sign (`1e+21`,
///   `1.5e-7`); on a tie between two shortest candidates the even digit wins, as in Go; `f32`
///   uses the shortest form for 32-bit floats, as Go's `float32` does. Floats read back
///   bit-exactly (serde_json's `float_roundtrip` parser).
///
/// Checked against Go 1.27: the vectors in the tests, plus a one-off comparison of 1.8 million
/// random and edge-case `float64`/`float32` values and 200,000 random strings (controls,
/// separators, astral and unassigned characters), all byte-identical.
///
/// Differences that remain, none of which affects reading what the other side wrote:
///
/// - NaN and infinities: Go refuses to encode them; serde_json writes `null` (which then fails
///   to decode as a float). Do not store non-finite floats with this codec.
/// - Maps: Go sorts keys byte-wise. A `BTreeMap<String, _>` gives Go's order; a `HashMap` gives
///   an arbitrary order; a map with integer keys is sorted numerically (Go sorts `"10"` before
///   `"2"`).
/// - Byte strings: Go writes `[]byte` as a base64 string; serde writes `Vec<u8>` as an array of
///   numbers. Use a base64 serde helper on fields shared with Go `[]byte` fields.
/// - Names: Go uses the exported field name (or its `json` tag); match them with
///   `#[serde(rename = ...)]`. Go's decoder matches field names case-insensitively; serde does
///   not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Json;

impl<V: Serialize + DeserializeOwned> Codec<V> for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CacheError> {
        let start = out.len();
        let result = value.serialize(&mut serde_json::Serializer::with_formatter(&mut *out, GoFormatter));
        result.map_err(|e| {
            out.truncate(start);
            CacheError::Codec(format!("json: cannot encode the value: {e}"))
        })
    }

    fn decode(&self, bytes: &[u8]) -> Result<V, CacheError> {
        serde_json::from_slice(bytes)
            .map_err(|e| CacheError::Codec(format!("json: cannot decode the value: {e}")))
    }
}

/// serde_json's compact formatter, with Go's float format and U+2028/U+2029 escapes.
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        let abs = value.abs();
        let exponent_form = abs != 0.0 && !(1e-6..1e21).contains(&abs);
        write_go_float(writer, zmij::Buffer::new().format_finite(value), exponent_form)
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let abs = value.abs();
        let exponent_form = abs != 0.0 && !(1e-6..1e21).contains(&abs);
        write_go_float(writer, zmij::Buffer::new().format_finite(value), exponent_form)
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Both separators start with 0xE2; most fragments have no such byte.
        if !fragment.as_bytes().contains(&0xe2) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut rest = fragment;
        while let Some((before, sep, after)) = split_at_line_separator(rest) {
            writer.write_all(before.as_bytes())?;
            writer.write_all(if sep == '\u{2028}' { b"\\u2028" } else { b"\\u2029" })?;
            rest = after;
        }
        writer.write_all(rest.as_bytes())
    }
}

/// Splits `s` around its first U+2028 or U+2029.
fn split_at_line_separator(s: &str) -> Option<(&str, char, &str)> {
    let (i, c) = s.char_indices().find(|&(_, c)| c == '\u{2028}' || c == '\u{2029}')?;
    let (before, from) = s.split_at(i);
    Some((before, c, from.get(c.len_utf8()..).unwrap_or_default()))
}

/// Writes a finite float as Go's `encoding/json` does, from `shortest`: the shortest decimal that
/// reads back as the same float, in any notation (`1.5e-7`, `100.0`, `1e21`).
///
/// The digits must be Go's: the shortest, closest to the exact value, and on a tie between two
/// closest the even one (Go's `strconv`, Ryu and zmij agree; Rust's own `{}` rounds ties up, so
/// `2022824.25_f32` would be `2022824.3` where Go writes `2022824.2`). Go then writes them in
/// plain notation (no fraction for whole numbers), or with an exponent that always has a sign
/// and no leading zero (`1e+21`, `1.5e-7`).
fn write_go_float<W: ?Sized + io::Write>(
    writer: &mut W,
    shortest: &str,
    exponent_form: bool,
) -> io::Result<()> {
    let (negative, unsigned) = match shortest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, shortest),
    };
    let (mantissa, exp10) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().unwrap_or(0)),
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The significant digits, and where the decimal point sits relative to the first of them.
    let mut buf = [0u8; 48];
    let mut len = 0;
    for (slot, b) in buf.iter_mut().zip(int.bytes().chain(frac.bytes())) {
        *slot = b;
        len += 1;
    }
    let mut digits = buf.get(..len).unwrap_or_default();
    let mut point = i64::try_from(int.len()).unwrap_or(0) + exp10;
    while let [b'0', rest @ ..] = digits {
        digits = rest;
        point -= 1;
    }
    while let [rest @ .., b'0'] = digits {
        digits = rest;
    }
    if negative {
        writer.write_all(b"-")?;
    }
    let Some((first, rest)) = digits.split_first() else {
        return writer.write_all(b"0");
    };
    if exponent_form {
        writer.write_all(&[*first])?;
        if !rest.is_empty() {
            writer.write_all(b".")?;
            writer.write_all(rest)?;
        }
        let exponent = point - 1;
        let sign = if exponent < 0 { '-' } else { '+' };
        return write!(writer, "e{sign}{}", exponent.unsigned_abs());
    }
    let whole = usize::try_from(point).unwrap_or(0);
    if whole == 0 {
        writer.write_all(b"0.")?;
        write_zeros(writer, point.unsigned_abs())?;
        writer.write_all(digits)
    } else if let Some((int_part, frac_part)) = digits.split_at_checked(whole) {
        writer.write_all(int_part)?;
        if !frac_part.is_empty() {
            writer.write_all(b".")?;
            writer.write_all(frac_part)?;
        }
        Ok(())
    } else {
        writer.write_all(digits)?;
        write_zeros(writer, (whole - digits.len()) as u64)
    }
}

fn write_zeros<W: ?Sized + io::Write>(writer: &mut W, n: u64) -> io::Result<()> {
    for _ in 0..n {
        writer.write_all(b"0")?;
    }
    Ok(())
}

/// A compact binary serde format ([postcard] 1.x), for namespaces only Rust services read.
///
/// Not readable by the Go reference. postcard is not self-describing, so types that need
/// `deserialize_any` (`serde_json::Value`, `#[serde(untagged)]`, `#[serde(flatten)]`) cannot be
/// decoded, and a reader must use the writer's exact type. postcard has no nesting limit: a
/// recursive type (a tree) decoded from hostile bytes could exhaust the stack, so store such
/// types with [`Json`] (limited to 128 levels) where the cluster's contents are not trusted.
///
/// [postcard]: https://docs.rs/postcard
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Binary;

impl<V: Serialize + DeserializeOwned> Codec<V> for Binary {
    fn name(&self) -> &'static str {
        "postcard"
    }

    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CacheError> {
        let start = out.len();
        let result = postcard::to_extend(value, Appender(&mut *out)).map(drop);
        result.map_err(|e| {
            out.truncate(start);
            CacheError::Codec(format!("postcard: cannot encode the value: {e}"))
        })
    }

    fn decode(&self, bytes: &[u8]) -> Result<V, CacheError> {
        let (value, rest) = postcard::take_from_bytes(bytes)
            .map_err(|e| CacheError::Codec(format!("postcard: cannot decode the value: {e}")))?;
        if !rest.is_empty() {
            return Err(CacheError::Codec(format!(
                "postcard: {} trailing bytes after the value",
                rest.len()
            )));
        }
        Ok(value)
    }
}

/// Lets postcard append to a caller's vector.
struct Appender<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Appender<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

/// Stores bytes as they are: `Vec<u8>`, [`Bytes`] and `String` (checked to be UTF-8 when read).
///
/// The reference has no such codec (its JSON encoder stores `[]byte` as a base64 string); use it
/// for Rust-only namespaces, or to share opaque bytes with a service that reads them raw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), CacheError> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, CacheError> {
        Ok(bytes.to_vec())
    }
}

impl Codec<Bytes> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, value: &Bytes, out: &mut Vec<u8>) -> Result<(), CacheError> {
        out.extend_from_slice(value);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Bytes, CacheError> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

impl Codec<String> for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, value: &String, out: &mut Vec<u8>) -> Result<(), CacheError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, CacheError> {
        match core::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(CacheError::Codec(format!(
                "raw: the value is not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ))),
        }
    }
}

#[cfg(test)]
mod tests;

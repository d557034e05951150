//! Human-readable durations: `"250ms"`, `"2s"`, `"1m"`, `"1h30m"`, `"1.5s"`.
//!
//! Units: `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`. A number without a unit is refused (is
//! `250` milliseconds or seconds?), except `0`.

use core::time::Duration;

/// Why a duration could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Nothing to read.
    #[error("empty duration")]
    Empty,
    /// A number without a unit (other than `0`).
    #[error("{0:?} has no unit (use us, ms, s, m, h or d)")]
    NoUnit(String),
    /// An unknown unit.
    #[error("{unit:?} in {text:?} is not a unit (use us, ms, s, m, h or d)")]
    Unit {
        /// The whole text.
        text: String,
        /// The unit found.
        unit: String,
    },
    /// Not a number where one was expected, or too large.
    #[error("{0:?} is not a duration")]
    Number(String),
}

/// Reads a human-readable duration (see the [module docs](self)).
///
/// # Errors
/// [`DurationError`] saying what is wrong.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() {
            return Err(DurationError::Number(text.to_owned()));
        }
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos_per_unit: u128 = match unit.trim() {
            "" => return Err(DurationError::NoUnit(text.to_owned())),
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" | "sec" | "secs" => 1_000_000_000,
            "m" | "min" | "mins" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            other => return Err(DurationError::Unit { text: text.to_owned(), unit: other.to_owned() }),
        };
        total = total
            .checked_add(scaled(num, nanos_per_unit).ok_or_else(|| DurationError::Number(text.to_owned()))?)
            .ok_or_else(|| DurationError::Number(text.to_owned()))?;
        rest = tail;
    }
    Ok(total)
}

/// `num` (digits, at most one `.`) times `nanos_per_unit`, exactly, truncated to whole
/// nanoseconds.
fn scaled(num: &str, nanos_per_unit: u128) -> Option<Duration> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() || frac.contains('.') || frac.len() > 18 {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nanos = int.checked_mul(nanos_per_unit)?;
    if !frac.is_empty() {
        let scale = 10u128.pow(u32::try_from(frac.len()).ok()?);
        nanos = nanos.checked_add(frac.parse::<u128>().ok()?.checked_mul(nanos_per_unit)? / scale)?;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    let sub = u32::try_from(nanos % 1_000_000_000).ok()?;
    Some(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_usual_forms() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
        assert_eq!(parse_duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration(" 10 ms "), Ok(ms(10)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_is_unclear() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(parse_duration("250"), Err(DurationError::NoUnit(_))));
        assert!(
            matches!(parse_duration("2 weeks"), Err(DurationError::Unit { unit, .. }) if unit == "weeks")
        );
        assert!(matches!(parse_duration("ms"), Err(DurationError::Number(_))));
        assert!(matches!(parse_duration("1.2.3s"), Err(DurationError::Number(_))));
        assert!(matches!(parse_duration("99999999999999999999999d"), Err(DurationError::Number(_))));
    }
}

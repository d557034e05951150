//! `serde` support (feature `serde`): the field helpers the configuration types use for
//! durations. Durations are strings read by [`parse_duration`] (`"250ms"`, `"2s"`, `"1m"`).
//! Each type a configuration holds implements `Deserialize` where it is defined (seeds
//! `"host:port"` in `node_addr`, read policies and passwords in `client`, protocols in `resp`,
//! jitter in `retry`, durability in `cache`), so this module depends on none of them.

use core::fmt;
use core::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::duration::parse_duration;

/// Reads a string with `parse`, turning its error into the deserializer's (for the types
/// written as text).
///
/// # Errors
/// The deserializer's error, or `parse`'s as the deserializer's.
pub fn from_str<'de, D, T, E>(d: D, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    E: fmt::Display,
{
    let s = String::deserialize(d)?;
    parse(&s).map_err(de::Error::custom)
}

/// A duration field: `"250ms"`, `"2s"`, `"1m"`.
///
/// # Errors
/// The deserializer's error, saying what is wrong with the text.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_str(d, parse_duration)
}

/// An optional duration field: a duration, or `"off"` / `"none"` for none.
///
/// # Errors
/// The deserializer's error, saying what is wrong with the text.
pub fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    from_str(d, |s| match s.trim() {
        "off" | "none" => Ok(None),
        s => parse_duration(s).map(Some),
    })
}

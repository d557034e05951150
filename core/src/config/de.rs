//! `serde` support (feature `serde`): the field helpers the configuration types use, and
//! `Deserialize` for the small types they hold.
//!
//! Durations are strings read by [`parse_duration`](super::parse_duration) (`"250ms"`,
//! `"2s"`, `"1m"`); seeds are `"host:port"`; read policies are `"primary"`, `"replica"`
//! or `"az:<zone>"`; protocols are `2`, `3`, `"resp2"` or `"resp3"`; modes are `"auto"`,
//! `"cluster"` or `"standalone"`.

use core::fmt;
use core::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::cache::Durability;
use crate::client::{Mode, Password, ReadFrom};
use crate::node_addr::NodeAddr;
use crate::resp::Protocol;
use crate::retry::Jitter;

/// Reads a string with `parse`, turning its error into the deserializer's.
fn from_str<'de, D, T, E>(d: D, parse: impl FnOnce(&str) -> Result<T, E>) -> Result<T, D::Error>
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
    from_str(d, super::parse_duration)
}

/// An optional duration field: a duration, or `"off"` / `"none"` for none.
///
/// # Errors
/// The deserializer's error, saying what is wrong with the text.
pub fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    from_str(d, |s| match s.trim() {
        "off" | "none" => Ok(None),
        s => super::parse_duration(s).map(Some),
    })
}

impl<'de> Deserialize<'de> for NodeAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str(d, |s| {
            Self::parse(s)
                .filter(|a| !a.host().is_empty() && a.port() != 0)
                .ok_or_else(|| format!("{s:?} is not host:port"))
        })
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

impl<'de> Deserialize<'de> for ReadFrom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str(d, str::parse::<Self>)
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str(d, str::parse::<Self>)
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("2, 3, \"resp2\" or \"resp3\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Protocol, E> {
                super::parse_protocol(s).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Protocol, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Protocol, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Jitter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        from_str(d, |s| match s {
            "full" => Ok(Self::Full),
            "equal" => Ok(Self::Equal),
            other => Err(format!("{other:?} is not a jitter: use \"full\" or \"equal\"")),
        })
    }
}

/// `"primary"`, or `{ replicas = 1, timeout = "250ms" }`.
impl<'de> Deserialize<'de> for Durability {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Replicas {
            replicas: u32,
            #[serde(deserialize_with = "duration")]
            timeout: Duration,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Durability;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"primary\" or { replicas = N, timeout = \"250ms\" }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Durability, E> {
                match s {
                    "primary" => Ok(Durability::Primary),
                    other => {
                        Err(E::custom(format!("{other:?} is not a durability: use \"primary\" or a table")))
                    }
                }
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Durability, A::Error> {
                let r = Replicas::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Durability::Replicas { replicas: r.replicas, timeout: r.timeout })
            }
        }
        d.deserialize_any(V)
    }
}

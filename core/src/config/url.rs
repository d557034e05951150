//! Connection URLs: `redis://`, `rediss://`, `valkey://` and `valkeys://`.
//!
//! ```text
//! redis://[user[:password]@]host[:port][,host[:port]...][/0][?name=value&...]
//! ```
//!
//! The `s` schemes require TLS. User and password are percent-decoded (percent-encode `@`,
//! `:`, `/`, `?` and `%` in them). Several seeds are separated by commas, or given again as
//! `seed=host:port` options. The port defaults to 6379; IPv6 hosts are written `[::1]:7000`.
//! A cluster has only database 0, so the path is empty, `/` or `/0`. Option values are
//! percent-decoded too. The options every client configuration understands are read by the
//! client's configuration (`ClientConfig::apply_url_option`), the others by the configuration
//! that knows them.
//! (`mode=standalone` for one node; the default `auto` detects it).
//!
//! No error and no `Debug` output ever shows the password.

use core::fmt;
use core::time::Duration;

use crate::node_addr::NodeAddr;
use crate::password::Password;

use super::duration::parse_duration;

/// The port of a seed given without one.
pub const DEFAULT_PORT: u16 = 6379;

/// A URL that cannot be used, naming the part that is wrong. Never holds the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The scheme is missing or not one of `redis`, `rediss`, `valkey`, `valkeys`.
    #[error("URL scheme {scheme:?} is not supported: use redis://, rediss://, valkey:// or valkeys://")]
    Scheme {
        /// The scheme found (empty when there is none).
        scheme: String,
    },
    /// The user name or password is not valid percent-encoded UTF-8.
    #[error("URL {part} is not valid percent-encoded UTF-8")]
    Encoding {
        /// `"user"` or `"password"` (their text is not repeated here).
        part: &'static str,
    },
    /// A seed without a host, or no seed at all.
    #[error("URL host {host:?}: {reason}")]
    Host {
        /// The seed as written.
        host: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A port that is not a number in 1..=65535.
    #[error("URL port {port:?} of seed {seed:?} is not a port number (1..=65535)")]
    Port {
        /// The seed as written.
        seed: String,
        /// The port as written.
        port: String,
    },
    /// A path other than none, `/` or `/0` (a cluster has only database 0; slotcache uses
    /// database 0 on a standalone node too).
    #[error("URL path {path:?}: a cluster has only database 0")]
    Path {
        /// The path as written.
        path: String,
    },
    /// A query option this configuration does not know.
    #[error("unknown URL option {name:?}")]
    UnknownOption {
        /// The option's name.
        name: String,
    },
    /// A query option with a value that cannot be used.
    #[error("URL option {name}={value:?}: {reason}")]
    OptionValue {
        /// The option's name.
        name: String,
        /// The value as given.
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
}

/// A parsed connection URL: what it says, before it is applied to a configuration.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionUrl {
    /// The scheme requires TLS (`rediss`, `valkeys`).
    pub tls: bool,
    /// The ACL user, if any.
    pub username: Option<String>,
    /// The password, if any (never shown).
    pub password: Option<Password>,
    /// The seeds, in order: the host list, then `seed=` options.
    pub seeds: Vec<NodeAddr>,
    /// The other query options, `(name, value)`, decoded, in order.
    pub options: Vec<(String, String)>,
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionUrl")
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("seeds", &self.seeds)
            .field("options", &self.options)
            .finish()
    }
}

impl ConnectionUrl {
    /// Parses `url` (see the [module docs](self)).
    ///
    /// # Errors
    /// [`UrlError`] naming the scheme, user, password, host, port, path or option that is wrong.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = url.trim().split_once("://").unwrap_or(("", url));
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "redis" | "valkey" => false,
            "rediss" | "valkeys" => true,
            _ => return Err(UrlError::Scheme { scheme: scheme.to_owned() }),
        };
        // The user information ends at the last `@`, so an unencoded `/` or `?` in a password
        // never turns part of it into a host, a path or an option (and into an error message).
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = info.split_once(':').map_or((info, None), |(u, p)| (u, Some(p)));
                let user = decode(user).ok_or(UrlError::Encoding { part: "user" })?;
                let pass =
                    pass.map(|p| decode(p).ok_or(UrlError::Encoding { part: "password" })).transpose()?;
                (Some(user).filter(|u| !u.is_empty()), pass.filter(|p| !p.is_empty()).map(Password::new))
            }
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hosts, path) = rest.split_once('/').map_or((rest, None), |(h, p)| (h, Some(p)));
        if let Some(path) = path.filter(|p| !p.is_empty() && *p != "0") {
            return Err(UrlError::Path { path: format!("/{path}") });
        }
        let mut seeds = Vec::new();
        for host in hosts.split(',') {
            seeds.push(parse_seed(host)?);
        }
        let mut options = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).ok_or_else(|| UrlError::UnknownOption { name: name.to_owned() })?;
            let value = decode(value).ok_or_else(|| UrlError::OptionValue {
                name: name.clone(),
                value: value.to_owned(),
                reason: "not valid percent-encoded UTF-8".into(),
            })?;
            if name == "seed" {
                seeds.push(parse_seed(&value)?);
            } else {
                options.push((name, value));
            }
        }
        Ok(Self { tls, username, password, seeds, options })
    }
}

/// Reads `value` of option `name` with `parse`, naming both on failure.
pub(crate) fn parse_value<T, E: fmt::Display>(
    name: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, UrlError> {
    parse(value).map_err(|e| UrlError::OptionValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

/// A duration option (`250ms`, `2s`).
pub(crate) fn duration(name: &str, value: &str) -> Result<Duration, UrlError> {
    parse_value(name, value, parse_duration)
}

/// A duration option that `off` or `none` turns off.
pub(crate) fn optional_duration(name: &str, value: &str) -> Result<Option<Duration>, UrlError> {
    match value {
        "off" | "none" => Ok(None),
        v => duration(name, v).map(Some),
    }
}

/// A whole-number option.
pub(crate) fn number<T: core::str::FromStr<Err = core::num::ParseIntError>>(
    name: &str,
    value: &str,
) -> Result<T, UrlError> {
    parse_value(name, value, str::parse::<T>)
}

/// One seed: `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_seed(seed: &str) -> Result<NodeAddr, UrlError> {
    let (host, port) = if let Some(v6) = seed.strip_prefix('[') {
        let (host, tail) = v6.split_once(']').ok_or_else(|| UrlError::Host {
            host: seed.to_owned(),
            reason: "an IPv6 address needs its closing ']'",
        })?;
        match tail {
            "" => (host, None),
            t => match t.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(UrlError::Host { host: seed.to_owned(), reason: "text after ']'" }),
            },
        }
    } else {
        match seed.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            Some(_) => {
                return Err(UrlError::Host {
                    host: seed.to_owned(),
                    reason: "write an IPv6 address in brackets: [::1]:6379",
                });
            }
            None => (seed, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::Host { host: seed.to_owned(), reason: "no host name" });
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| UrlError::Port { seed: seed.to_owned(), port: p.to_owned() })?,
    };
    Ok(NodeAddr::new(host, port))
}

/// Percent-decodes `s`; `None` for a bad escape or bytes that are not UTF-8.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;

//! Passwords that never show: below the client (which sends them) and the configuration
//! readers (which find them in URLs and files).

use core::fmt;
use std::sync::Arc;

/// A password that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(Arc<str>);

impl Password {
    /// Wraps a password.
    #[must_use]
    pub fn new(p: impl Into<Arc<str>>) -> Self {
        Self(p.into())
    }

    /// The password itself, for the `AUTH`/`HELLO` command only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A string (feature `serde`).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(d).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn never_shown() {
        let p = Password::new("s3cret");
        assert_eq!((format!("{p:?}"), p.expose()), ("Password(***)".to_string(), "s3cret"));
    }
}

//! The harness's error type: a message with the context gathered on the way up.

use std::fmt;

/// What went wrong in the harness, as a readable message (often with node log tails attached).
#[derive(Debug)]
pub struct Error {
    msg: String,
}

/// `Result` with the harness's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self { msg: msg.into() }
    }

    /// The same error with `what` put in front: `what: original`.
    #[must_use]
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self { msg: format!("{what}: {}", self.msg) }
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.msg
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::new(e.to_string())
    }
}

/// Adds context to any `Result` whose error can be displayed.
pub trait ResultExt<T> {
    /// Turns the error into an [`Error`] with `what` in front.
    fn context(self, what: impl fmt::Display) -> Result<T>;
    /// Like [`ResultExt::context`], with the context computed only on error.
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: fmt::Display> ResultExt<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::new(format!("{what}: {e}")))
    }

    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::new(format!("{}: {e}", what())))
    }
}

/// Returns early with an [`Error`] built by `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::new(format!($($arg)*)))
    };
}

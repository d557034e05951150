//! What a search module's refusal means: the module is missing, the index does not exist, it
//! exists already, or anything else (reported as the server's text).

use crate::cache::error::CacheError;

/// A server's refusal of an `FT.*` command, classified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The command does not exist: the cluster has no search module.
    NoModule,
    /// The index does not exist.
    NoIndex,
    /// The index exists already (an `FT.CREATE` that lost a race).
    Exists,
    /// Anything else, with the server's text.
    Other(String),
}

impl Refusal {
    /// Classifies a server error's text.
    #[must_use]
    pub fn of(msg: &str) -> Self {
        let m = msg.to_ascii_lowercase();
        if is_unknown_command(&m) {
            Self::NoModule
        } else if m.contains("unknown index")
            || m.contains("no such index")
            || (m.contains("index") && m.contains("not found"))
        {
            Self::NoIndex
        } else if m.contains("already exists") {
            Self::Exists
        } else {
            Self::Other(msg.to_owned())
        }
    }
}

/// The error for a cluster without the search module.
#[must_use]
pub fn not_supported() -> CacheError {
    CacheError::SearchNotSupported(
        "the cluster has no search module (FT.*): load RediSearch + RedisJSON or valkey-search + valkey-json"
            .into(),
    )
}

/// Whether a server error says the command does not exist (a module is missing).
#[must_use]
pub fn is_unknown_command(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("unknown command") || m.contains("unknown redis command")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified() {
        assert_eq!(
            Refusal::of("ERR unknown command 'FT.INFO', with args beginning with:"),
            Refusal::NoModule
        );
        assert_eq!(
            Refusal::of("ERR Error running script: Unknown Redis command called from script"),
            Refusal::NoModule
        );
        assert_eq!(Refusal::of("Unknown index name"), Refusal::NoIndex);
        assert_eq!(Refusal::of("idx: no such index"), Refusal::NoIndex);
        assert_eq!(Refusal::of("Index already exists"), Refusal::Exists);
        assert_eq!(Refusal::of("Property not found"), Refusal::Other("Property not found".into()));
    }
}

//! What a compute function decides ([`Compute`]), and the decisions `compute_if_absent` makes
//! around the caller's function ([`IfAbsent`]). The protocol that applies them is the
//! [`ComputeEntry`](super::op::compute::ComputeEntry) machine.

use super::error::CacheError;
use super::ttl::Ttl;

/// What a compute function decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compute<V> {
    /// Store this value (the namespace's TTL).
    Set(V),
    /// Store this value with this TTL.
    SetWithTtl(V, Ttl),
    /// Delete the entry.
    Delete,
    /// Leave the entry as it is.
    Keep,
}

/// `compute_if_absent`: a new value is stored only when the key is absent; the call returns
/// the value now stored and whether it stored it.
#[derive(Clone, Copy, Debug, Default)]
pub struct IfAbsent {
    stored_here: bool,
}

impl IfAbsent {
    /// The decision of an attempt that read `current`: leave a present entry (`None`), store
    /// `make()` in an absent one.
    pub fn decide<V>(&mut self, current: Option<&V>, make: impl FnOnce() -> V) -> Option<Compute<V>> {
        self.stored_here = current.is_none();
        if current.is_some() { None } else { Some(Compute::Set(make())) }
    }

    /// What the call returns, given the value the compute left stored: that value, and whether
    /// this call stored it.
    ///
    /// # Errors
    /// [`CacheError::UnexpectedReply`] when no value is stored (the protocol never leaves none).
    pub fn outcome<V>(self, stored: Option<V>) -> Result<(V, bool), CacheError> {
        let got = "no value".into();
        let value = stored.ok_or(CacheError::UnexpectedReply { command: "compute_if_absent", got })?;
        Ok((value, self.stored_here))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_only_when_absent_and_says_who_stored() {
        let mut absent = IfAbsent::default();
        assert_eq!(absent.decide(None, || 7), Some(Compute::Set(7)));
        assert_eq!(absent.outcome(Some(7)), Ok((7, true)));

        let mut present = IfAbsent::default();
        assert_eq!(present.decide(Some(&3), || panic!("not called when present")), None);
        assert_eq!(present.outcome(Some(3)), Ok((3, false)));
    }

    /// A conflict retries: only the last attempt's reading counts.
    #[test]
    fn the_last_attempt_decides_who_stored() {
        let mut f = IfAbsent::default();
        let _ = f.decide(None, || 1);
        assert_eq!(f.decide(Some(&2), || 1), None);
        assert_eq!(f.outcome(Some(2)), Ok((2, false)));
    }

    #[test]
    fn no_value_left_is_an_error() {
        let r = IfAbsent::default().outcome::<u8>(None);
        assert!(matches!(r, Err(CacheError::UnexpectedReply { command: "compute_if_absent", .. })), "{r:?}");
    }
}

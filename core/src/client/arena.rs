//! A generational arena: stable ids that are never confused with a reused slot.
//!
//! A reply can arrive for a request that already timed out and whose slot was reused; the
//! generation in the id makes such a late reply find nothing instead of the wrong request.

/// An id into an [`Arena`]: an index plus the generation of the slot when it was inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Id {
    index: u32,
    generation: u32,
}

impl Id {
    /// Packs the id into one number (for public newtypes).
    pub(crate) const fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// The slot index (dense, reused after removal).
    pub(crate) const fn index(self) -> usize {
        self.index as usize
    }

    /// Unpacks [`Id::to_u64`].
    pub(crate) const fn from_u64(v: u64) -> Self {
        Self { index: v as u32, generation: (v >> 32) as u32 }
    }
}

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    value: Option<T>,
    /// Emptied by [`Arena::remove_held`] and not reusable until [`Arena::release`].
    held: bool,
}

/// Slots of `T` addressed by generational [`Id`]s.
#[derive(Debug)]
pub(crate) struct Arena<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Self { entries: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Arena<T> {
    /// Stores `value` and returns its id.
    pub(crate) fn insert(&mut self, value: T) -> Id {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let entry = &mut self.entries[index as usize];
            entry.value = Some(value);
            Id { index, generation: entry.generation }
        } else {
            let index = u32::try_from(self.entries.len()).expect("arena holds fewer than 2^32 entries");
            self.entries.push(Entry { generation: 0, value: Some(value), held: false });
            Id { index, generation: 0 }
        }
    }

    /// The value under `id`, if it is still there.
    pub(crate) fn get(&self, id: Id) -> Option<&T> {
        self.entries
            .get(id.index as usize)
            .filter(|e| e.generation == id.generation)
            .and_then(|e| e.value.as_ref())
    }

    /// The value under `id`, mutably, if it is still there.
    pub(crate) fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        self.entries
            .get_mut(id.index as usize)
            .filter(|e| e.generation == id.generation)
            .and_then(|e| e.value.as_mut())
    }

    /// Removes and returns the value under `id`; the slot's generation moves on.
    pub(crate) fn remove(&mut self, id: Id) -> Option<T> {
        let entry = self.entries.get_mut(id.index as usize).filter(|e| e.generation == id.generation)?;
        let value = entry.value.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        Some(value)
    }

    /// Removes and returns the value under `id`, like [`Arena::remove`], but keeps its slot
    /// (and so its index) out of reuse until [`Arena::release`]: an index handed out with the
    /// value stays unique until its holder is done with it.
    pub(crate) fn remove_held(&mut self, id: Id) -> Option<T> {
        let entry = self.entries.get_mut(id.index as usize).filter(|e| e.generation == id.generation)?;
        let value = entry.value.take()?;
        entry.generation = entry.generation.wrapping_add(1);
        entry.held = true;
        self.len -= 1;
        Some(value)
    }

    /// Makes the slot emptied by [`Arena::remove_held`] for `id` reusable (once; a second call,
    /// or a call for any other id, does nothing).
    pub(crate) fn release(&mut self, id: Id) {
        let Some(entry) = self.entries.get_mut(id.index as usize) else { return };
        if entry.held && entry.value.is_none() && entry.generation == id.generation.wrapping_add(1) {
            entry.held = false;
            self.free.push(id.index);
        }
    }

    /// Number of live values.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// Ids of every live value.
    pub(crate) fn ids(&self) -> Vec<Id> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.value.is_some())
            .map(|(i, e)| Id { index: i as u32, generation: e.generation })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_ids_find_nothing() {
        let mut a = Arena::default();
        let x = a.insert(1);
        assert_eq!(a.remove(x), Some(1));
        let y = a.insert(2);
        assert_eq!(a.get(x), None, "a reused slot must not answer to the old id");
        assert_eq!(a.get(y), Some(&2));
        assert_eq!(Id::from_u64(y.to_u64()), y);
        assert_eq!(a.len(), 1);
        assert_eq!(a.ids(), vec![y]);
    }

    #[test]
    fn a_held_slot_is_not_reused_until_released() {
        let mut a = Arena::default();
        let x = a.insert(1);
        assert_eq!(a.remove_held(x), Some(1));
        assert_eq!(a.len(), 0);
        let y = a.insert(2);
        assert_ne!(y.index(), x.index(), "a held index must not be handed out again");
        a.release(x);
        a.release(x); // a second release must not list the slot twice
        let z = a.insert(3);
        assert_eq!(z.index(), x.index(), "released, the slot is reused");
        let w = a.insert(4);
        assert_ne!(w.index(), z.index(), "and only once");
        assert_eq!(a.get(x), None, "the old id still finds nothing");
    }
}

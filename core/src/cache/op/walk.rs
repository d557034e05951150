//! A walk over a namespace as a stream of items (`keys`, `entries`, `values`): where the walk
//! is and the items of its last page. It says what comes next: an item it holds, the
//! [`NextPage`] machine to run for more, or the end. An error of the walk, or of a whole page,
//! is its last item. At most one page is held at a time.

use core::time::Duration;
use std::collections::VecDeque;
use std::sync::Arc;

use crate::cache::error::CacheError;

use super::iterate::{KeyCursor, NextPage, Page, Paged, Variant};
use super::scope::Scope;

/// The items of one page, or the error that fails the whole page.
pub type PageItems<T> = Result<Vec<Result<T, CacheError>>, CacheError>;

/// What comes next in a walk.
#[derive(Debug)]
pub enum Ahead<T> {
    /// The next item.
    Item(Result<T, CacheError>),
    /// Run this machine for the next page and hand its outcome to [`Walk::paged`].
    Fetch(Box<NextPage>),
    /// The walk is over.
    End,
}

/// A walk over a namespace's keys (with their entries, for [`Walk::entries`]), page by page.
#[derive(Debug)]
pub struct Walk<T> {
    scope: Arc<Scope>,
    fetch: bool,
    budget: Duration,
    /// `None` once the walk ended or failed.
    cursor: Option<KeyCursor>,
    items: VecDeque<Result<T, CacheError>>,
    variant: Variant,
}

impl<T> Walk<T> {
    /// A walk over the keys of `scope`'s namespace (values are not fetched); each request
    /// bounded by `budget`.
    #[must_use]
    pub fn keys(scope: Arc<Scope>, budget: Duration) -> Self {
        Self::new(scope, false, budget)
    }

    /// A walk over the keys of `scope`'s namespace with their entries.
    #[must_use]
    pub fn entries(scope: Arc<Scope>, budget: Duration) -> Self {
        Self::new(scope, true, budget)
    }

    fn new(scope: Arc<Scope>, fetch: bool, budget: Duration) -> Self {
        let cursor = Some(KeyCursor::new(scope.ns.scan_pattern()));
        Self { scope, fetch, budget, cursor, items: VecDeque::new(), variant: Variant::Correct }
    }

    /// The same walk, its pages with a test-only bug variant.
    #[doc(hidden)]
    #[must_use]
    pub const fn with_variant(mut self, variant: Variant) -> Self {
        self.variant = variant;
        self
    }

    /// What comes next: an item held, else the next page to fetch, else the end.
    pub fn ahead(&mut self) -> Ahead<T> {
        if let Some(item) = self.items.pop_front() {
            return Ahead::Item(item);
        }
        let Some(cursor) = self.cursor.take() else { return Ahead::End };
        let scope = self.scope.clone();
        Ahead::Fetch(Box::new(
            if self.fetch {
                NextPage::entries(scope, cursor, "scan", self.budget)
            } else {
                NextPage::keys(scope, cursor, "scan", self.budget)
            }
            .with_variant(self.variant),
        ))
    }

    /// Takes the outcome of the machine [`Walk::ahead`] asked for; `items` makes a page's
    /// items (typed keys or entries). No page: the walk is over; an error: it is the last item.
    pub fn paged(&mut self, paged: Result<Paged, CacheError>, items: impl FnOnce(Page) -> PageItems<T>) {
        match paged.and_then(|p| p.page.map(|page| Ok((p.cursor, items(page)?))).transpose()) {
            Ok(Some((cursor, page))) => {
                self.cursor = Some(cursor);
                self.items.extend(page);
            }
            Ok(None) => {}
            Err(e) => self.items.push_back(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::cache::op::fresh::tests::scope;
    use crate::cache::op::machine::{Input, Step};
    use crate::cache::op::scan::tests::{Driver, requests, topology};

    const BUDGET: Duration = Duration::from_secs(1);

    fn page(keys: &[&'static [u8]]) -> Page {
        Page { keys: keys.iter().map(|k| Bytes::from_static(k)).collect(), ..Page::default() }
    }

    fn paged(page: Option<Page>) -> Result<Paged, CacheError> {
        Ok(Paged { cursor: KeyCursor::new(b"ns:*".to_vec()), page })
    }

    fn names(p: Page) -> PageItems<String> {
        Ok(p.keys.iter().map(|k| Ok(String::from_utf8_lossy(k).into_owned())).collect())
    }

    fn item(ahead: Ahead<String>) -> Result<String, CacheError> {
        match ahead {
            Ahead::Item(i) => i,
            other => panic!("expected an item, got {other:?}"),
        }
    }

    fn page_machine(ahead: Ahead<String>) -> NextPage {
        match ahead {
            Ahead::Fetch(m) => *m,
            other => panic!("expected a page to fetch, got {other:?}"),
        }
    }

    /// Items of a page come out in order before the next page is asked for; no page is the end.
    #[test]
    fn pages_then_items_then_the_end() {
        let mut w = Walk::keys(scope(), BUDGET);
        let _ = page_machine(w.ahead());
        w.paged(paged(Some(page(&[b"ns:a", b"ns:b"]))), names);
        assert_eq!(item(w.ahead()), Ok("ns:a".into()));
        assert_eq!(item(w.ahead()), Ok("ns:b".into()));
        let _ = page_machine(w.ahead());
        w.paged(paged(None), names);
        assert!(matches!(w.ahead(), Ahead::End));
        assert!(matches!(w.ahead(), Ahead::End));
    }

    /// The page machine scans the namespace's keys; a walk over entries reads their values.
    #[test]
    fn the_pages_scan_the_namespace_and_entries_read_values() {
        for (mut w, fetch) in [(Walk::keys(scope(), BUDGET), false), (Walk::entries(scope(), BUDGET), true)] {
            let mut m = Driver::new(page_machine(w.ahead()), Some(topology(&[7000])));
            let r = requests(&m.resume(Input::Start));
            assert!(r[0].1.iter().any(|a| a == "ns:*"), "{r:?}");
            let step = m.values(vec![Ok(crate::cache::op::scan::tests::page(b"0", &[b"ns:a"]))]);
            assert_eq!(matches!(step, Step::Send(_)), fetch, "{step:?}");
        }
    }

    /// A failed page, or a page that cannot be typed, is the last item.
    #[test]
    fn an_error_is_the_last_item() {
        let mut w = Walk::entries(scope(), BUDGET);
        let _ = page_machine(w.ahead());
        w.paged(Err(CacheError::Closed), names);
        assert_eq!(item(w.ahead()), Err(CacheError::Closed));
        assert!(matches!(w.ahead(), Ahead::End));

        let mut w = Walk::keys(scope(), BUDGET);
        let _ = page_machine(w.ahead());
        w.paged(paged(Some(page(&[b"ns:a"]))), |_| Err(CacheError::Key("bad".into())));
        assert_eq!(item(w.ahead()), Err(CacheError::Key("bad".into())));
        assert!(matches!(w.ahead(), Ahead::End));
    }

    /// An item that does not type is an item, and the walk goes on.
    #[test]
    fn a_bad_item_does_not_end_the_walk() {
        let mut w = Walk::keys(scope(), BUDGET);
        let _ = page_machine(w.ahead());
        w.paged(paged(Some(page(&[b"ns:a"]))), |_| Ok(vec![Err(CacheError::Key("bad".into()))]));
        assert!(item(w.ahead()).is_err());
        let _ = page_machine(w.ahead());
    }
}

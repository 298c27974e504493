//! P2: pagination helpers for every style the six providers use, each guarded so a listing
//! either returns every item or fails: a repeated cursor or next link, an item id already seen
//! on an earlier page, more pages than the bound, a count that does not add up. Never an
//! endless loop, never a silent truncation.
//!
//! Each helper takes a closure that fetches one page (usually one [`crate::HttpClient`] call)
//! and a closure giving an item's id, and returns all items in order.
//!
//! | style | provider | helper |
//! |---|---|---|
//! | `page` + `page-size`, body `totalCount` | Jamf | [`Pager::numbered_with_total`] |
//! | `offset`/`skip` + `limit`, bare array | Iru devices, JumpCloud | [`Pager::offset`] |
//! | `page` + `per_page`, no total | Fleet | [`Pager::numbered`] |
//! | `starting_after` + `has_more` | SimpleMDM | [`Pager::starting_after`] |
//! | `next` URL | Iru tags (DRF), Graph `@odata.nextLink` | [`Pager::next_link`] |
//! | any opaque cursor | Fleet `after`, others | [`Pager::cursor`] |

use crate::redact::redact_url;
use mdmsync_core::{ErrorKind, MdmError, Provider};
use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use url::Url;

/// One page of a numbered listing that reports the total (Jamf's `totalCount`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotalPage<T> {
    /// The listing's total number of items, as reported on this page.
    pub total: u64,
    /// The page's items.
    pub items: Vec<T>,
}

/// One page of a `starting_after` listing (SimpleMDM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HasMorePage<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The body's `has_more`.
    pub has_more: bool,
}

/// One page of a next-link listing (DRF `next`, Graph `@odata.nextLink`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPage<T> {
    /// The page's items.
    pub items: Vec<T>,
    /// The next page's URL, verbatim; `None` (or empty) on the last page.
    pub next: Option<String>,
}

/// One page of an opaque-cursor listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorPage<T, C> {
    /// The page's items.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` on the last page.
    pub next: Option<C>,
}

/// When a fixed-size listing without a next link (offset/limit, page/per_page) has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageEnd {
    /// A page with fewer items than the page size is the last (Fleet; Iru devices). Wrong for
    /// lists whose pages can be short before the end (JumpCloud, lessons: null associations).
    ShortPage,
    /// Only an empty page ends the listing; short pages continue (JumpCloud without a count;
    /// costs one extra request).
    EmptyPage,
    /// The listing holds this many positions, counted first: pages are fetched until the
    /// offset reaches it, short pages continue, an empty page before it is an error (JumpCloud
    /// "count first, then page").
    Total(u64),
}

/// Pagination helpers for one listing. Get one from [`crate::HttpClient::pager`]; the
/// operation name and provider appear in its errors, which are all `ServerError`.
#[derive(Clone, Debug)]
pub struct Pager {
    provider: Provider,
    op: String,
    max_pages: u32,
}

struct Collector<K> {
    seen: HashSet<K>,
}

impl<K: Eq + Hash + Display> Collector<K> {
    fn new() -> Self {
        Self {
            seen: HashSet::new(),
        }
    }

    fn admit<T>(
        &mut self,
        pager: &Pager,
        page: u32,
        items: Vec<T>,
        id: &mut impl FnMut(&T) -> K,
        out: &mut Vec<T>,
    ) -> Result<(), MdmError> {
        for item in items {
            let key = id(&item);
            if self.seen.contains(&key) {
                return Err(pager.fail(format!(
                    "page {} repeats id {key}, already listed; the listing loops or shifted while paging",
                    page + 1
                )));
            }
            self.seen.insert(key);
            out.push(item);
        }
        Ok(())
    }
}

impl Pager {
    /// Helpers for `op`, allowing at most `max_pages` pages.
    pub fn new(provider: Provider, op: &str, max_pages: u32) -> Self {
        Self {
            provider,
            op: op.to_owned(),
            max_pages: max_pages.max(1),
        }
    }

    /// Changes the page bound for this listing.
    pub fn max_pages(mut self, max_pages: u32) -> Self {
        self.max_pages = max_pages.max(1);
        self
    }

    fn fail(&self, detail: impl Display) -> MdmError {
        MdmError::new(
            ErrorKind::ServerError,
            format!(
                "{}: {} failed: incomplete listing: {detail}; refusing a partial result (P2)",
                self.provider.display_name(),
                self.op
            ),
        )
    }

    fn check_bound(&self, page: u32) -> Result<(), MdmError> {
        if page >= self.max_pages {
            return Err(self.fail(format!(
                "more than {} pages; the listing does not end",
                self.max_pages
            )));
        }
        Ok(())
    }

    fn check_size(&self, page: u32, len: usize, size: u32) -> Result<(), MdmError> {
        if size == 0 {
            return Err(self.fail("page size 0"));
        }
        if len > size as usize {
            return Err(self.fail(format!(
                "page {} holds {len} items for a page size of {size}; the server ignores the page size",
                page + 1
            )));
        }
        Ok(())
    }

    /// Jamf: `page` (0-based) + `page-size`, each body carrying `totalCount`. `fetch(page)`
    /// gets one page. Ends once `totalCount` items arrived. Errors: the total changes between
    /// pages, a page is bigger than `page_size`, a page before the last is short or empty (the
    /// server pages differently, items would be skipped), the items do not add up to the total.
    pub async fn numbered_with_total<T, K, F, Fut, I>(
        &self,
        page_size: u32,
        mut fetch: F,
        mut id: I,
    ) -> Result<Vec<T>, MdmError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<TotalPage<T>, MdmError>>,
        I: FnMut(&T) -> K,
        K: Eq + Hash + Display,
    {
        let mut out = Vec::new();
        let mut seen = Collector::new();
        let mut total = None;
        let mut page = 0u32;
        loop {
            self.check_bound(page)?;
            let p = fetch(page).await?;
            let expected = *total.get_or_insert(p.total);
            if p.total != expected {
                return Err(self.fail(format!(
                    "totalCount changed from {expected} to {} between pages",
                    p.total
                )));
            }
            let len = p.items.len();
            // Repeated ids first: the more telling diagnosis when a page is also too long.
            seen.admit(self, page, p.items, &mut id, &mut out)?;
            self.check_size(page, len, page_size)?;
            if out.len() as u64 >= expected {
                break;
            }
            if len < page_size as usize {
                return Err(self.fail(format!(
                    "page {} holds {len} of {page_size} items but totalCount says {expected} and only {} arrived",
                    page + 1,
                    out.len()
                )));
            }
            page += 1;
        }
        if out.len() as u64 != total.unwrap_or(0) {
            return Err(self.fail(format!(
                "totalCount says {} but the pages held {} items",
                total.unwrap_or(0),
                out.len()
            )));
        }
        Ok(out)
    }

    /// Iru devices, JumpCloud: `offset`/`skip` + `limit` over a bare array. `fetch(offset)`
    /// gets `limit` items from `offset`; offsets advance by `limit` (so a page shortened by the
    /// server, e.g. JumpCloud's null associations, does not shift the next one). `end` says
    /// when the listing is over (see [`PageEnd`]).
    pub async fn offset<T, K, F, Fut, I>(
        &self,
        limit: u32,
        end: PageEnd,
        mut fetch: F,
        id: I,
    ) -> Result<Vec<T>, MdmError>
    where
        F: FnMut(u64) -> Fut,
        Fut: Future<Output = Result<Vec<T>, MdmError>>,
        I: FnMut(&T) -> K,
        K: Eq + Hash + Display,
    {
        self.fixed(
            limit,
            end,
            |page| fetch(u64::from(page) * u64::from(limit)),
            id,
        )
        .await
    }

    /// Fleet: `page` (0-based) + `per_page`, no total. `fetch(page)` gets one page. Usually
    /// `PageEnd::ShortPage`.
    pub async fn numbered<T, K, F, Fut, I>(
        &self,
        per_page: u32,
        end: PageEnd,
        fetch: F,
        id: I,
    ) -> Result<Vec<T>, MdmError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Vec<T>, MdmError>>,
        I: FnMut(&T) -> K,
        K: Eq + Hash + Display,
    {
        self.fixed(per_page, end, fetch, id).await
    }

    async fn fixed<T, K, F, Fut, I>(
        &self,
        size: u32,
        end: PageEnd,
        mut fetch: F,
        mut id: I,
    ) -> Result<Vec<T>, MdmError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Vec<T>, MdmError>>,
        I: FnMut(&T) -> K,
        K: Eq + Hash + Display,
    {
        if size == 0 {
            return Err(self.fail("page size 0"));
        }
        let mut out = Vec::new();
        let mut seen = Collector::new();
        let mut page = 0u32;
        loop {
            if let PageEnd::Total(total) = end {
                if u64::from(page) * u64::from(size) >= total {
                    break;
                }
            }
            self.check_bound(page)?;
            let items = fetch(page).await?;
            let len = items.len();
            seen.admit(self, page, items, &mut id, &mut out)?;
            self.check_size(page, len, size)?;
            match end {
                PageEnd::ShortPage if len < size as usize => break,
                PageEnd::EmptyPage if len == 0 => break,
                PageEnd::Total(total) if len == 0 => {
                    return Err(self.fail(format!(
                        "page {} is empty at offset {} but the count says {total}",
                        page + 1,
                        u64::from(page) * u64::from(size)
                    )));
                }
                _ => {}
            }
            page += 1;
        }
        Ok(out)
    }

    /// SimpleMDM: `starting_after` + `has_more`. `fetch(after)` gets the page after the item
    /// with id `after` (`None` for the first page); the cursor is the last item's id. Errors:
    /// `has_more` on an empty page, a repeated id (which a repeated cursor implies).
    pub async fn starting_after<T, K, F, Fut, I>(
        &self,
        mut fetch: F,
        mut id: I,
    ) -> Result<Vec<T>, MdmError>
    where
        F: FnMut(Option<K>) -> Fut,
        Fut: Future<Output = Result<HasMorePage<T>, MdmError>>,
        I: FnMut(&T) -> K,
        K: Eq + Hash + Display,
    {
        let mut out = Vec::new();
        let mut seen = Collector::new();
        let mut after = None;
        let mut page = 0u32;
        loop {
            self.check_bound(page)?;
            let p = fetch(after.take()).await?;
            let last = p.items.last().map(&mut id);
            seen.admit(self, page, p.items, &mut id, &mut out)?;
            if !p.has_more {
                break;
            }
            match last {
                Some(last) => after = Some(last),
                None => {
                    return Err(self.fail(format!("page {} is empty but says has_more", page + 1)));
                }
            }
            page += 1;
        }
        Ok(out)
    }

    /// DRF `next` (Iru tags) and Graph `@odata.nextLink`: `fetch(url)` gets the page at `url`,
    /// starting with `first`; the next link is followed verbatim (relative links are resolved
    /// against the current page). Errors: a next link seen before, a next link to another
    /// origin (scheme, host or port: the credential would go with it), a repeated id.
    pub async fn next_link<T, K, F, Fut, I>(
        &self,
        first: Url,
        mut fetch: F,
        mut id: I,
    ) -> Result<Vec<T>, MdmError>
    where
        F: FnMut(Url) -> Fut,
        Fut: Future<Output = Result<LinkPage<T>, MdmError>>,
        I: FnMut(&T) -> K,
        K: Eq + Hash + Display,
    {
        let origin = first.origin();
        let mut visited = HashSet::new();
        visited.insert(first.as_str().to_owned());
        let mut out = Vec::new();
        let mut seen = Collector::new();
        let mut url = first;
        let mut page = 0u32;
        loop {
            self.check_bound(page)?;
            let p = fetch(url.clone()).await?;
            seen.admit(self, page, p.items, &mut id, &mut out)?;
            let next = match p.next.as_deref().map(str::trim) {
                None | Some("") => break,
                Some(n) => n,
            };
            let next = url.join(next).map_err(|e| {
                self.fail(format!("page {} has an invalid next link ({e})", page + 1))
            })?;
            if next.origin() != origin {
                return Err(self.fail(format!(
                    "page {} links to another origin ({}); not followed so the credential stays with the API host",
                    page + 1,
                    redact_url(&next)
                )));
            }
            if !visited.insert(next.as_str().to_owned()) {
                return Err(self.fail(format!(
                    "page {} links back to an earlier page ({}); the listing loops",
                    page + 1,
                    redact_url(&next)
                )));
            }
            url = next;
            page += 1;
        }
        Ok(out)
    }

    /// Any opaque cursor (`after`, a token): `fetch(cursor)` gets a page (`None` first) and
    /// returns the next cursor. Errors: a cursor seen before, a repeated id.
    pub async fn cursor<T, C, K, F, Fut, I>(
        &self,
        mut fetch: F,
        mut id: I,
    ) -> Result<Vec<T>, MdmError>
    where
        F: FnMut(Option<C>) -> Fut,
        Fut: Future<Output = Result<CursorPage<T, C>, MdmError>>,
        C: Eq + Hash + Clone,
        I: FnMut(&T) -> K,
        K: Eq + Hash + Display,
    {
        let mut cursors = HashSet::new();
        let mut out = Vec::new();
        let mut seen = Collector::new();
        let mut cursor = None;
        let mut page = 0u32;
        loop {
            self.check_bound(page)?;
            let p = fetch(cursor.take()).await?;
            seen.admit(self, page, p.items, &mut id, &mut out)?;
            match p.next {
                None => break,
                Some(c) => {
                    if !cursors.insert(c.clone()) {
                        return Err(self.fail(format!(
                            "page {} returns a cursor already used; the listing loops",
                            page + 1
                        )));
                    }
                    cursor = Some(c);
                }
            }
            page += 1;
        }
        Ok(out)
    }
}

//! Upstream pages held in memory, parsed, and written to the cache index behind the request.
//!
//! Every request for a proxied name (its page, and each of its files and metadata files) needs
//! the project's upstream page. Reading it from the cache index and parsing its JSON each time
//! cost a catalog query and a parse per request, and storing a newly fetched page on the request
//! path made the pages of a cold install wait for each other on the cache's one writer
//! connection. So pages are held here, parsed, within a memory budget (least recently used
//! first out), and a fetched page is answered at once while [`PageWrites`] stores it: the stored
//! copy is only for the next start and for other replicas, which read it when they do not hold
//! the page themselves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lru::LruCache;
use pyindex_catalog::{StoredPage, UpstreamIndex};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::UpstreamError;
use crate::page::UpstreamPage;

/// How many bytes of pages (as stored JSON, about a third of their parsed size) are held.
const HELD_PAGE_BYTES: usize = 32 << 20;

/// A page as held: parsed, with what a conditional request and the TTL need.
#[derive(Debug, Clone)]
pub(crate) struct HeldPage {
    pub(crate) page: Arc<UpstreamPage>,
    pub(crate) upstream: String,
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
    pub(crate) fetched: OffsetDateTime,
    /// Its stored JSON's length, its share of the budget.
    weight: usize,
}

impl HeldPage {
    /// A stored page, parsed.
    pub(crate) fn parse(stored: &StoredPage) -> Result<HeldPage, UpstreamError> {
        let page: UpstreamPage = serde_json::from_str(&stored.page)
            .map_err(|e| UpstreamError::Cache(format!("stored page unreadable: {e}")))?;
        Ok(HeldPage::fetched(page, stored))
    }

    /// A page just fetched, held as `stored` stores it.
    pub(crate) fn fetched(page: UpstreamPage, stored: &StoredPage) -> HeldPage {
        HeldPage {
            page: Arc::new(page),
            upstream: stored.upstream.clone(),
            etag: stored.etag.clone(),
            last_modified: stored.last_modified.clone(),
            fetched: stored.fetched,
            weight: stored.page.len(),
        }
    }

    /// The same page, revalidated at `at`.
    pub(crate) fn revalidated(&self, at: OffsetDateTime) -> HeldPage {
        HeldPage {
            fetched: at,
            ..self.clone()
        }
    }
}

/// The pages held, by normalized project name.
pub(crate) struct HeldPages {
    inner: Mutex<Held>,
}

struct Held {
    pages: LruCache<String, Arc<HeldPage>>,
    bytes: usize,
}

impl Default for HeldPages {
    fn default() -> HeldPages {
        HeldPages {
            inner: Mutex::new(Held {
                pages: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }
}

impl HeldPages {
    /// The page of `project`, if held.
    pub(crate) fn get(&self, project: &str) -> Option<Arc<HeldPage>> {
        self.inner.lock().ok()?.pages.get(project).cloned()
    }

    /// Holds `page` for `project` (replacing an older one), then lets the least recently used
    /// pages go until the budget is kept. A page larger than the whole budget is not held.
    pub(crate) fn put(&self, project: &str, page: Arc<HeldPage>) {
        let Ok(mut held) = self.inner.lock() else {
            return;
        };
        if let Some(old) = held.pages.pop(project) {
            held.bytes -= old.weight;
        }
        if page.weight > HELD_PAGE_BYTES {
            return;
        }
        held.bytes += page.weight;
        held.pages.put(project.to_owned(), page);
        while held.bytes > HELD_PAGE_BYTES {
            match held.pages.pop_lru() {
                Some((_, old)) => held.bytes -= old.weight,
                None => break,
            }
        }
    }
}

/// A write to the cache index's page table, waiting for the writer.
enum PageWrite {
    /// A fetched page.
    Put(StoredPage),
    /// A page the upstream said is unchanged, revalidated at this time.
    Touch(OffsetDateTime),
}

/// How many distinct pages may wait for the writer; past that, a fetch stores its page itself
/// (so a cache index slower than the upstream slows fetches down rather than grow the queue).
const PENDING_PAGE_WRITES: usize = 1_000;

/// Page writes waiting for the writer task, at most one per project (a newer write replaces an
/// older one of the same project, which it makes useless).
#[derive(Default)]
pub(crate) struct PageWrites {
    pending: Mutex<HashMap<String, PageWrite>>,
    wake: Notify,
    /// Whether a writer task runs ([`PageWrites::run`]); without one, writes are made at once.
    running: std::sync::atomic::AtomicBool,
}

impl PageWrites {
    /// Stores `page` (now, or soon by the writer).
    pub(crate) async fn put(&self, index: &dyn UpstreamIndex, page: StoredPage) {
        if let Some(page) = self.queue(page.project.clone(), PageWrite::Put(page)) {
            write(index, page.0, page.1).await;
        }
    }

    /// Records that the page of `project` was revalidated `at` (now, or soon by the writer).
    pub(crate) async fn touch(&self, index: &dyn UpstreamIndex, project: &str, at: OffsetDateTime) {
        if let Some(page) = self.queue(project.to_owned(), PageWrite::Touch(at)) {
            write(index, page.0, page.1).await;
        }
    }

    /// Queues the write for the writer; gives it back when it must be made by the caller (no
    /// writer, or the queue is full).
    fn queue(&self, project: String, write: PageWrite) -> Option<(String, PageWrite)> {
        if !self.running.load(std::sync::atomic::Ordering::Acquire) {
            return Some((project, write));
        }
        let Ok(mut pending) = self.pending.lock() else {
            return Some((project, write));
        };
        let write = match (pending.remove(&project), write) {
            // A revalidation of a page not stored yet: the page, with the new time.
            (Some(PageWrite::Put(page)), PageWrite::Touch(at)) => PageWrite::Put(StoredPage {
                fetched: at,
                ..page
            }),
            (_, write) => write,
        };
        if pending.len() >= PENDING_PAGE_WRITES {
            return Some((project, write));
        }
        pending.insert(project, write);
        drop(pending);
        self.wake.notify_one();
        None
    }

    /// Makes the writes waiting now.
    pub(crate) async fn flush(&self, index: &dyn UpstreamIndex) {
        let writes: Vec<(String, PageWrite)> = self
            .pending
            .lock()
            .map(|mut pending| pending.drain().collect())
            .unwrap_or_default();
        for (project, page) in writes {
            write(index, project, page).await;
        }
    }

    /// From now on, writes are queued for a writer task, which waits with [`PageWrites::wait`]
    /// and writes with [`PageWrites::flush`] (the last ones at shutdown).
    pub(crate) fn start_writer(&self) {
        self.running
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Waits until a write is queued, or `at_most`.
    pub(crate) async fn wait(&self, at_most: std::time::Duration) {
        let _ = tokio::time::timeout(at_most, self.wake.notified()).await;
    }
}

async fn write(index: &dyn UpstreamIndex, project: String, write: PageWrite) {
    let written = match &write {
        PageWrite::Put(page) => index.put_upstream_page(page).await,
        PageWrite::Touch(at) => index.touch_upstream_page(&project, *at).await,
    };
    if let Err(error) = written {
        // The page is served from memory meanwhile; the next start or replica fetches it again.
        tracing::warn!(%project, %error, "could not store an upstream page in the cache index");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(project: &str, weight: usize) -> Arc<HeldPage> {
        Arc::new(HeldPage {
            page: Arc::new(UpstreamPage::new(project, Vec::new(), Vec::new())),
            upstream: "http://127.0.0.1:1/simple/".into(),
            etag: None,
            last_modified: None,
            fetched: OffsetDateTime::UNIX_EPOCH,
            weight,
        })
    }

    #[test]
    fn the_least_recently_used_pages_go_first_when_over_budget() {
        let held = HeldPages::default();
        let third = HELD_PAGE_BYTES / 3;
        held.put("a", page("a", third));
        held.put("b", page("b", third));
        held.put("c", page("c", third));
        assert!(held.get("a").is_some(), "a is now the most recently used");
        held.put("d", page("d", third));
        assert!(held.get("b").is_none());
        for kept in ["a", "c", "d"] {
            assert!(held.get(kept).is_some(), "{kept}");
        }
        // Replacing a page frees its old share.
        held.put("d", page("d", 1));
        held.put("e", page("e", third));
        assert!(held.get("a").is_some() && held.get("c").is_some());
    }

    #[test]
    fn a_page_larger_than_the_budget_is_not_held() {
        let held = HeldPages::default();
        held.put("small", page("small", 10));
        held.put("huge", page("huge", HELD_PAGE_BYTES + 1));
        assert!(held.get("huge").is_none());
        assert!(held.get("small").is_some());
    }
}

//! Rendered index pages, file lookups and the web UI's project data, kept in memory until what
//! they show changes.
//!
//! Index pages are rendered once per state of their project and served from memory with a
//! precomputed gzip variant and strong ETags, which is what lets them be served faster than static
//! files. The registry tells the cache what each change touched ([`ChangeObserver`]): a publish
//! or yank of project A drops A's pages and download answers (and the root page when A is new),
//! and leaves every other project's alone.
//!
//! A render that started before an invalidation must not put its stale result into the cache
//! afterwards: every insertion names the epoch it started in and is dropped if any invalidation
//! happened since. (That occasionally leaves an unrelated page uncached until its next request;
//! tracking epochs per page would cost more than it saves.)
//!
//! A page is rendered by one request at a time ([`ResponseCache::render_turn`]): when a publish
//! drops a busy project's page, the requests that miss it wait for the first one's render and
//! are answered from the cache, instead of every connection reading the catalog and rendering the
//! same page at once (which made a project's page 10 times slower while it was being published
//! to every 100 ms).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::HeaderValue;
use sha2::{Digest, Sha256};

use pyindex_registry::{Change, ChangeObserver, ProjectView};

use crate::files::Download;
use crate::negotiate::Format;

/// One encoding of a page.
pub struct Encoded {
    /// The bytes sent.
    pub body: Bytes,
    /// Strong ETag of exactly these bytes.
    pub etag: HeaderValue,
}

impl Encoded {
    fn new(body: Vec<u8>) -> Encoded {
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&digest[..16]));
        Encoded {
            body: Bytes::from(body),
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
        }
    }
}

/// A rendered page in both identity and gzip encodings.
pub struct Page {
    /// The page's format.
    pub format: Format,
    /// Uncompressed.
    pub identity: Encoded,
    /// Gzip-compressed.
    pub gzip: Encoded,
    /// For a proxied page: until when it may be served, and whether it is stale.
    pub upstream: Option<Proxied>,
}

/// What a cached proxied page carries besides its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Proxied {
    /// When the page must be asked of the registry (and the upstream) again.
    pub expires: std::time::Instant,
    /// Whether it was served past its TTL because the upstream could not be asked.
    pub stale: bool,
}

impl Page {
    /// The same page, proxied from an upstream: cached only until `expires`.
    pub fn proxied(mut self, upstream: Proxied) -> Page {
        self.upstream = Some(upstream);
        self
    }

    /// Whether it must not be served from the cache any more.
    pub fn expired(&self) -> bool {
        self.upstream
            .is_some_and(|u| u.expires <= std::time::Instant::now())
    }
}

impl Page {
    /// Wraps rendered bytes, computing the gzip variant and both ETags.
    pub fn new(format: Format, body: Vec<u8>) -> Page {
        let mut encoder =
            GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
        let gzip = encoder
            .write_all(&body)
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        Page {
            format,
            identity: Encoded::new(body),
            gzip: Encoded::new(gzip),
            upstream: None,
        }
    }
}

/// What a cached page is. Borrowed, so that a lookup allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKey<'a> {
    /// `/simple/`
    Root(Format),
    /// `/simple/<project>/`, by normalized name.
    Project(&'a str, Format),
}

/// A hash map with foldhash instead of the standard SipHash: several times faster on the short
/// keys looked up for every cached request. Its weaker resistance to chosen collisions does not
/// matter here: only names the catalog holds (published projects and files) and names an
/// upstream knows (at most [`PROXIED_PAGES`] of them) are ever inserted.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One page per format, indexed by [`slot`].
type Formats = [Option<Arc<Page>>; 3];

fn slot(format: Format) -> usize {
    match format {
        Format::Json => 0,
        Format::V1Html => 1,
        Format::TextHtml => 2,
    }
}

/// How many proxied projects' pages are kept. Clients choose which upstream names they ask
/// for, and an upstream may know hundreds of thousands: past this many, expired pages are let go
/// and, if all are fresh, a new name's page is served without being kept.
const PROXIED_PAGES: usize = 10_000;

/// The cached index pages: the root page, each local project's and each proxied project's,
/// keyed by its normalized name (a `String` key is found with a `&str`, with no key to build per
/// request).
#[derive(Default)]
struct Pages {
    root: Formats,
    projects: FastMap<String, Formats>,
    /// Proxied projects' pages, apart: they are bounded by [`PROXIED_PAGES`], local ones by
    /// the catalog.
    proxied: FastMap<String, Formats>,
}

impl Pages {
    fn get(&self, key: PageKey<'_>) -> Option<&Arc<Page>> {
        match key {
            PageKey::Root(format) => self.root[slot(format)].as_ref(),
            PageKey::Project(name, format) => match self.projects.get(name) {
                Some(formats) => formats[slot(format)].as_ref(),
                None => self.proxied.get(name)?[slot(format)].as_ref(),
            },
        }
    }

    fn insert(&mut self, key: PageKey<'_>, page: Arc<Page>) {
        let formats = match key {
            PageKey::Root(_) => &mut self.root,
            PageKey::Project(name, _) => {
                let map = if page.upstream.is_some() {
                    if !self.room_for_proxied(name) {
                        return;
                    }
                    &mut self.proxied
                } else {
                    &mut self.projects
                };
                match map.get_mut(name) {
                    Some(formats) => formats,
                    None => map.entry(name.to_owned()).or_default(),
                }
            }
        };
        let (PageKey::Root(format) | PageKey::Project(_, format)) = key;
        formats[slot(format)] = Some(page);
    }

    /// Whether a proxied page of `name` may be kept: it has a place already, or there is room
    /// once expired pages are let go.
    fn room_for_proxied(&mut self, name: &str) -> bool {
        if self.proxied.contains_key(name) || self.proxied.len() < PROXIED_PAGES {
            return true;
        }
        self.proxied.retain(|_, formats| {
            formats
                .iter()
                .any(|page| page.as_ref().is_some_and(|page| !page.expired()))
        });
        self.proxied.len() < PROXIED_PAGES
    }

    /// Forgets the pages of the project `name`, local or proxied.
    fn remove(&mut self, name: &str) {
        self.projects.remove(name);
        self.proxied.remove(name);
    }
}

/// In-memory cache of rendered index pages, download answers and the set of project names.
#[derive(Default)]
pub struct ResponseCache {
    epoch: AtomicU64,
    pages: RwLock<Pages>,
    files: RwLock<FastMap<String, Arc<Download>>>,
    /// Every project's normalized name, for the redirect of `/<project>/`: one set, not one
    /// entry per name asked for, so that clients asking for random paths cannot grow it.
    project_names: RwLock<Option<Arc<HashSet<String>>>>,
    /// The web UI's data of each project viewed (releases and files, read in one go), by
    /// normalized name: a project page then costs no catalog read of its files. Only projects
    /// that exist are inserted, so the map is bounded by the catalog.
    views: RwLock<FastMap<String, Arc<ProjectView>>>,
    /// The pages being rendered, each with the lock its renderer holds. An entry lives while a
    /// request holds or waits for its lock, so the map is bounded by the requests in flight.
    renders: std::sync::Mutex<FastMap<RenderKey, Arc<tokio::sync::Mutex<()>>>>,
}

/// An owned [`PageKey`], for the pages being rendered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum RenderKey {
    Root(usize),
    Project(String, usize),
}

impl From<PageKey<'_>> for RenderKey {
    fn from(key: PageKey<'_>) -> RenderKey {
        match key {
            PageKey::Root(format) => RenderKey::Root(slot(format)),
            PageKey::Project(name, format) => RenderKey::Project(name.to_owned(), slot(format)),
        }
    }
}

/// The right to render one page: held while rendering it; others wait for it to be dropped.
pub struct RenderTurn<'a> {
    cache: &'a ResponseCache,
    key: RenderKey,
    lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for RenderTurn<'_> {
    fn drop(&mut self) {
        let Ok(mut renders) = self.cache.renders.lock() else {
            return;
        };
        let Some(turn) = self.lock.take() else {
            return;
        };
        let lock = tokio::sync::OwnedMutexGuard::mutex(&turn).clone();
        drop(turn);
        // The map's reference and this one are the only ones left: nobody waits, and nobody can
        // start waiting while the map is locked, so the key can go.
        if Arc::strong_count(&lock) == 2 {
            renders.remove(&self.key);
        }
    }
}

impl ResponseCache {
    /// The current epoch; pass it back to the insert functions after rendering.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A cached page.
    pub fn page(&self, key: PageKey<'_>) -> Option<Arc<Page>> {
        self.pages
            .read()
            .ok()?
            .get(key)
            .filter(|page| !page.expired())
            .cloned()
    }

    /// Waits until no other request renders the page `key`, and returns the right to render it.
    /// Look the page up again afterwards: the request that had the turn has usually cached it.
    pub async fn render_turn(&self, key: PageKey<'_>) -> RenderTurn<'_> {
        let key = RenderKey::from(key);
        let lock = match self.renders.lock() {
            Ok(mut renders) => Some(renders.entry(key.clone()).or_default().clone()),
            // Poisoned only by a panic elsewhere: render without waiting rather than fail.
            Err(_) => None,
        };
        let lock = match lock {
            Some(lock) => Some(lock.lock_owned().await),
            None => None,
        };
        RenderTurn {
            cache: self,
            key,
            lock,
        }
    }

    /// Caches a page rendered during `epoch`.
    pub fn insert_page(&self, key: PageKey<'_>, page: Arc<Page>, epoch: u64) {
        if let Ok(mut pages) = self.pages.write()
            && self.epoch() == epoch
        {
            pages.insert(key, page);
        }
    }

    /// What to send for a file URL's filename.
    pub fn file(&self, filename: &str) -> Option<Arc<Download>> {
        self.files.read().ok()?.get(filename).cloned()
    }

    /// Caches what to send for `filename`, worked out during `epoch`.
    pub fn insert_file(&self, filename: String, download: Arc<Download>, epoch: u64) {
        if let Ok(mut files) = self.files.write()
            && self.epoch() == epoch
        {
            files.insert(filename, download);
        }
    }

    /// The cached set of project names.
    pub fn project_names(&self) -> Option<Arc<HashSet<String>>> {
        self.project_names.read().ok()?.clone()
    }

    /// Caches the set of project names read during `epoch`.
    pub fn insert_project_names(&self, names: Arc<HashSet<String>>, epoch: u64) {
        if let Ok(mut cached) = self.project_names.write()
            && self.epoch() == epoch
        {
            *cached = Some(names);
        }
    }

    /// The cached UI data of a project.
    pub fn view(&self, project: &str) -> Option<Arc<ProjectView>> {
        self.views.read().ok()?.get(project).cloned()
    }

    /// Caches the UI data of `project`, read during `epoch`.
    pub fn insert_view(&self, project: &str, view: Arc<ProjectView>, epoch: u64) {
        if let Ok(mut views) = self.views.write()
            && self.epoch() == epoch
        {
            views.insert(project.to_owned(), view);
        }
    }

    /// Forgets the pages `pages` picks, the downloads for which `file` holds, the UI data of
    /// the projects for which `view` holds, and the project names if `names`.
    fn forget(
        &self,
        pages: impl FnOnce(&mut Pages),
        file: impl Fn(&Download) -> bool,
        view: impl Fn(&str) -> bool,
        names: bool,
    ) {
        // Hold every write lock while bumping the epoch, so that no insert of an older epoch
        // can slip in between the bump and the removal.
        let cached_pages = self.pages.write();
        let files = self.files.write();
        let project_names = self.project_names.write();
        let views = self.views.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut views) = views {
            views.retain(|project, _| !view(project));
        }
        if let Ok(mut cached_pages) = cached_pages {
            pages(&mut cached_pages);
        }
        if let Ok(mut files) = files {
            files.retain(|_, download| !file(download));
        }
        if let Ok(mut project_names) = project_names
            && names
        {
            *project_names = None;
        }
    }
}

impl ChangeObserver for ResponseCache {
    fn changed(&self, change: &Change) {
        match change {
            Change::Project(name) => self.forget(
                |pages| {
                    pages.remove(name);
                },
                |download| download.project() == name,
                |project| project == name,
                false,
            ),
            Change::ProjectList => self.forget(
                |pages| pages.root = Formats::default(),
                |_| false,
                |_| false,
                true,
            ),
            // Pages and downloads do not depend on accounts (access is checked before the cache)
            // nor on which upstream files are cached.
            Change::Account(_) | Change::UpstreamFile(_) => {}
            Change::Everything => {
                self.forget(|pages| *pages = Pages::default(), |_| true, |_| true, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_variant_decodes_and_etags_differ() {
        let page = Page::new(Format::TextHtml, b"hello hello hello".to_vec());
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&page.gzip.body[..]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"hello hello hello");
        assert_ne!(page.identity.etag, page.gzip.etag);
    }

    fn page() -> Arc<Page> {
        Arc::new(Page::new(Format::Json, b"{}".to_vec()))
    }

    fn proxied(expires_in: std::time::Duration) -> Arc<Page> {
        Arc::new(Page::new(Format::Json, b"{}".to_vec()).proxied(Proxied {
            expires: std::time::Instant::now() + expires_in,
            stale: false,
        }))
    }

    #[test]
    fn proxied_pages_are_bounded_and_local_ones_are_not() {
        let cache = ResponseCache::default();
        let names: Vec<String> = (0..=PROXIED_PAGES).map(|i| format!("up-{i}")).collect();
        let hour = std::time::Duration::from_secs(3_600);
        for name in &names[..PROXIED_PAGES] {
            cache.insert_page(
                PageKey::Project(name, Format::Json),
                proxied(hour),
                cache.epoch(),
            );
        }
        let last = PageKey::Project(&names[PROXIED_PAGES], Format::Json);
        cache.insert_page(last, proxied(hour), cache.epoch());
        assert!(
            cache.page(last).is_none(),
            "every kept page is fresh: no room"
        );
        // A page already kept is replaced, a local page is always kept.
        let first = PageKey::Project(&names[0], Format::Json);
        cache.insert_page(first, proxied(std::time::Duration::ZERO), cache.epoch());
        cache.insert_page(
            PageKey::Project("local", Format::Json),
            page(),
            cache.epoch(),
        );
        assert!(
            cache
                .page(PageKey::Project("local", Format::Json))
                .is_some()
        );
        // The expired page is let go to make room for the new name.
        cache.insert_page(last, proxied(hour), cache.epoch());
        assert!(cache.page(last).is_some());
        assert!(cache.page(first).is_none());
        cache.changed(&Change::Project(names[PROXIED_PAGES].clone()));
        assert!(cache.page(last).is_none());
    }

    #[test]
    fn a_change_drops_only_what_it_touches() {
        let cache = ResponseCache::default();
        let keys = [
            PageKey::Root(Format::Json),
            PageKey::Project("a", Format::Json),
            PageKey::Project("a", Format::TextHtml),
            PageKey::Project("b", Format::Json),
        ];
        let fill = |cache: &ResponseCache| {
            for key in &keys {
                cache.insert_page(*key, page(), cache.epoch());
            }
        };
        let cached = |cache: &ResponseCache| {
            keys.iter()
                .map(|key| cache.page(*key).is_some())
                .collect::<Vec<_>>()
        };
        fill(&cache);
        cache.changed(&Change::Project("a".into()));
        assert_eq!(cached(&cache), [true, false, false, true]);
        fill(&cache);
        cache.changed(&Change::ProjectList);
        assert_eq!(cached(&cache), [false, true, true, true]);
        fill(&cache);
        cache.changed(&Change::Account("someone".into()));
        assert_eq!(cached(&cache), [true, true, true, true]);
        cache.changed(&Change::Everything);
        assert_eq!(cached(&cache), [false, false, false, false]);
    }

    #[test]
    fn inserts_from_a_past_epoch_are_dropped() {
        let cache = ResponseCache::default();
        let key = PageKey::Root(Format::Json);
        let epoch = cache.epoch();
        cache.changed(&Change::ProjectList);
        cache.insert_page(key, page(), epoch);
        assert!(cache.page(key).is_none());
        cache.insert_page(key, page(), cache.epoch());
        assert!(cache.page(key).is_some());
        cache.changed(&Change::Everything);
        assert!(cache.page(key).is_none());
    }

    #[test]
    fn project_names_are_dropped_when_the_project_list_changes() {
        let cache = ResponseCache::default();
        let names = Arc::new(HashSet::from(["a".to_owned()]));
        let epoch = cache.epoch();
        cache.changed(&Change::ProjectList);
        cache.insert_project_names(names.clone(), epoch);
        assert!(cache.project_names().is_none(), "stale epoch");
        cache.insert_project_names(names.clone(), cache.epoch());
        cache.changed(&Change::Project("a".into()));
        assert!(cache.project_names().is_some());
        cache.insert_project_names(names.clone(), cache.epoch());
        cache.changed(&Change::ProjectList);
        assert!(cache.project_names().is_none());
        cache.insert_project_names(names, cache.epoch());
        cache.changed(&Change::Everything);
        assert!(cache.project_names().is_none());
    }

    #[tokio::test]
    async fn one_render_per_page_at_a_time_and_no_key_left_behind() {
        let cache = Arc::new(ResponseCache::default());
        let key = PageKey::Project("shared", Format::Json);
        let first = cache.render_turn(key).await;
        let waiter = {
            let cache = cache.clone();
            tokio::spawn(async move {
                let _turn = cache
                    .render_turn(PageKey::Project("shared", Format::Json))
                    .await;
            })
        };
        // Another page is not held up by this one.
        drop(
            cache
                .render_turn(PageKey::Project("other", Format::Json))
                .await,
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "the second render did not wait");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("the waiting render never got its turn")
            .unwrap();
        assert!(cache.renders.lock().unwrap().is_empty());
    }
}

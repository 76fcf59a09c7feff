//! Rendered index pages and file lookups, kept in memory until the catalog changes.
//!
//! Index pages are rendered once per catalog state and served from memory with a precomputed
//! gzip variant and strong ETags, which is what lets them be served faster than static files.
//! Changes made by this process invalidate the cache at once; changes made by another process
//! (a CLI command, another replica) are noticed by the catalog watcher
//! ([`crate::AppState::spawn_catalog_watcher`]), which polls the catalog's generation counter.
//!
//! A render that started before an invalidation must not put its stale result into the cache
//! afterwards: every insertion names the epoch it started in and is dropped if that epoch has
//! passed.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http::HeaderValue;
use sha2::{Digest, Sha256};

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
        }
    }
}

/// What a cached page is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PageKey {
    /// `/simple/`
    Root(Format),
    /// `/simple/<project>/`
    Project(String, Format),
}

/// In-memory cache of rendered index pages and download answers.
#[derive(Default)]
pub struct ResponseCache {
    epoch: AtomicU64,
    pages: RwLock<HashMap<PageKey, Arc<Page>>>,
    files: RwLock<HashMap<String, Arc<Download>>>,
}

impl ResponseCache {
    /// The current epoch; pass it back to the insert functions after rendering.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// A cached page.
    pub fn page(&self, key: &PageKey) -> Option<Arc<Page>> {
        self.pages.read().ok()?.get(key).cloned()
    }

    /// Caches a page rendered during `epoch`.
    pub fn insert_page(&self, key: PageKey, page: Arc<Page>, epoch: u64) {
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

    /// Forgets everything; called after every change to the catalog.
    pub fn invalidate(&self) {
        // Hold both write locks while bumping the epoch, so that no insert of an older epoch
        // can slip in between the bump and the clear.
        let pages = self.pages.write();
        let files = self.files.write();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut pages) = pages {
            pages.clear();
        }
        if let Ok(mut files) = files {
            files.clear();
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

    #[test]
    fn inserts_from_a_past_epoch_are_dropped() {
        let cache = ResponseCache::default();
        let key = PageKey::Root(Format::Json);
        let epoch = cache.epoch();
        cache.invalidate();
        cache.insert_page(
            key.clone(),
            Arc::new(Page::new(Format::Json, b"{}".to_vec())),
            epoch,
        );
        assert!(cache.page(&key).is_none());
        cache.insert_page(
            key.clone(),
            Arc::new(Page::new(Format::Json, b"{}".to_vec())),
            cache.epoch(),
        );
        assert!(cache.page(&key).is_some());
        cache.invalidate();
        assert!(cache.page(&key).is_none());
    }
}

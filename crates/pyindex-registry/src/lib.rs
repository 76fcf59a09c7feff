//! The registry's rules, as plain async functions over a [`Catalog`] and a [`BlobStore`].
//!
//! Both the HTTP layer and the CLI call this crate; neither holds business rules of its own.
//! [`Registry::upload`] validates and publishes a file, [`Registry::yank`] changes a release's
//! yank state, and the read side ([`Registry::catalog`], [`Registry::blobs`]) is exposed for the
//! index pages and downloads.

mod error;
mod upload;
mod yank;

pub use error::{RegistryError, Rejection};
pub use upload::{Published, UploadRequest, UploadedContent};

use std::sync::Arc;

use pyindex_catalog::Catalog;
use pyindex_packaging::archive::ArchiveLimits;
use pyindex_storage::{BlobStore, Spool};

/// The registry: catalog, blob store and the limits uploads must respect.
#[derive(Clone)]
pub struct Registry {
    catalog: Arc<dyn Catalog>,
    blobs: Arc<dyn BlobStore>,
    spool: Spool,
    archive_limits: ArchiveLimits,
}

impl Registry {
    /// A registry over the given parts.
    pub fn new(
        catalog: Arc<dyn Catalog>,
        blobs: Arc<dyn BlobStore>,
        spool: Spool,
        archive_limits: ArchiveLimits,
    ) -> Registry {
        Registry {
            catalog,
            blobs,
            spool,
            archive_limits,
        }
    }

    /// The catalog.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// The blob store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The spool for incoming uploads.
    pub fn spool(&self) -> &Spool {
        &self.spool
    }
}

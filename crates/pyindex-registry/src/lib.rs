//! The registry's rules, as plain async functions over a catalog and a blob store.
//!
//! Both the HTTP layer and the CLI call this crate; neither holds business rules of its own.
//! [`Registry::upload`] validates and publishes a file, [`Registry::yank`] changes a release's
//! yank state, [`Registry::set_project_status`] changes a project's PEP 792 status, [`auth`]
//! decides who may do what, and [`accounts`] manages users, tokens, roles and the audit log.
//! The read side ([`Registry::project_page`], [`Registry::download`], [`Registry::blobs`])
//! gives the index pages and downloads what they may show, the quarantine already applied;
//! [`Registry::index_page`] and [`Registry::upstream_download`] do the same for names served
//! from an upstream, with the operator's blocks ([`Registry::block_upstream`]) and the cooldown
//! applied.
//!
//! The registry also owns cache invalidation: every change it makes, and every change another
//! process makes (seen by [`Registry::spawn_change_watcher`]), is handed to the
//! [`ChangeObserver`]s registered with [`Registry::with_observer`], naming exactly what changed,
//! so that a cache drops only what a change affects.

pub mod accounts;
pub mod auth;
mod blocks;
pub mod browse;
mod changes;
mod error;
mod namespace;
mod proxy;
mod reads;
pub mod sessions;
mod status;
#[cfg(test)]
mod test_support;
mod upload;
mod yank;

pub use accounts::{Actor, CreatedToken, TokenRequest};
pub use auth::{AccessMode, Credentials, Identity};
pub use blocks::{Blocks, ReleaseSpec};
pub use browse::{Overview, ProjectView, ReleaseFiles};
pub use changes::{CHANGE_POLL_INTERVAL, ChangeObserver};
pub use error::{RegistryError, Rejection};
pub use proxy::{Cooldown, IndexPage};
pub use pyindex_catalog::Change;
pub use pyindex_upstream as upstream;
pub use reads::{FileDownload, FilePart, ProjectPage};
pub use sessions::{BrowserSession, NewBrowserSession};
pub use status::{MAX_STATUS_REASON_CHARS, StatusChange};
pub use upload::{ImportRequest, Published, UploadRequest, UploadedContent};

use std::sync::Arc;

use pyindex_catalog::{Accounts, Browse, Catalog, UpstreamIndex};
use pyindex_packaging::archive::ArchiveLimits;
use pyindex_storage::{BlobStore, Spool};

/// The registry: catalog, accounts, blob store, and the settings that govern them.
#[derive(Clone)]
pub struct Registry {
    catalog: Arc<dyn Catalog>,
    accounts: Arc<dyn Accounts>,
    browse: Arc<dyn Browse>,
    blobs: Arc<dyn BlobStore>,
    spool: Spool,
    archive_limits: ArchiveLimits,
    access_mode: AccessMode,
    auth: Arc<auth::AuthState>,
    observers: Vec<Arc<dyn ChangeObserver>>,
    upstream_index: Arc<dyn UpstreamIndex>,
    upstream: Option<Arc<pyindex_upstream::Upstream>>,
    cooldown: Arc<proxy::Cooldown>,
    /// Local names and upstream blocks, kept until a change.
    namespace: Arc<namespace::Namespace>,
}

impl Registry {
    /// A registry over one database (catalog and accounts), a blob store and a spool, in the
    /// `upload` access mode until [`Registry::with_access_mode`] says otherwise.
    pub fn new<D>(
        database: Arc<D>,
        blobs: Arc<dyn BlobStore>,
        spool: Spool,
        archive_limits: ArchiveLimits,
    ) -> Registry
    where
        D: Catalog + Accounts + Browse + UpstreamIndex + 'static,
    {
        Registry {
            catalog: database.clone(),
            accounts: database.clone(),
            upstream_index: database.clone(),
            browse: database,
            blobs,
            spool,
            archive_limits,
            access_mode: AccessMode::Upload,
            auth: Arc::default(),
            observers: Vec::new(),
            upstream: None,
            cooldown: Arc::default(),
            namespace: Arc::default(),
        }
    }

    /// The same registry, also telling `observer` of every change.
    pub fn with_observer(mut self, observer: Arc<dyn ChangeObserver>) -> Registry {
        self.observers.push(observer);
        self
    }

    /// The same registry in another access mode.
    pub fn with_access_mode(mut self, mode: AccessMode) -> Registry {
        self.access_mode = mode;
        self
    }

    /// The access mode.
    pub fn access_mode(&self) -> AccessMode {
        self.access_mode
    }

    /// The catalog, for the operator's commands (integrity checks); the server reads through
    /// the registry's read functions instead.
    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    /// The upstream proxy's cache index, for the operator's commands (repair must keep the
    /// blobs it lists).
    pub fn upstream_index(&self) -> &Arc<dyn UpstreamIndex> {
        &self.upstream_index
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

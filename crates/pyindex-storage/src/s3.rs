//! Blob storage in an S3-compatible bucket (object_store's S3 client).
//!
//! Layout under the configured prefix:
//!
//! ```text
//! sha256/<64 hex>          every blob, by content hash
//! touched/<64 hex>         written when a blob that already existed is stored again (see below)
//! staging/<64 hex>-<rand>  a large file assembled by multipart upload, before its conditional copy
//! uploads/<64 hex>-<rand>  the multipart upload id of the staging object of the same name
//! probe/                   the readiness and conditional-write probes
//! ```
//!
//! Blobs are never overwritten: a small file is one `PUT` with `If-None-Match: *`; a large one is
//! streamed from the spool file in parts to a staging key, then copied to its final key with a
//! conditional multipart copy, so that no file is ever held in memory whole. The store refuses to
//! open on a server that ignores conditional writes. The catalog stays the arbiter of filenames:
//! equal keys mean equal bytes, so losing a race on a key is harmless.
//!
//! A multipart upload's id is recorded under `uploads/` before any part is sent, so that
//! [`BlobStore::remove_leftovers`] can abort uploads a crash left incomplete (and remove staging
//! objects) once they are older than the grace period.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, S3CopyIfNotExists};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

use crate::{
    BlobBody, BlobContent, BlobKey, BlobStore, ByteRange, SpooledFile, StorageError, StoredBlob,
};

/// Size of one multipart part, and the largest file stored with a single `PUT` (read into
/// memory whole). S3 needs parts of at least 5 MiB but the last.
const PART_SIZE: u64 = 8 << 20;
/// Parts in flight at once per upload: memory per upload is about this many parts.
const PARTS_AT_ONCE: usize = 2;
/// `touched/` markers looked up at once while listing.
const LIST_LOOKUPS: usize = 8;

const BLOBS: &str = "sha256";
const TOUCHED: &str = "touched";
const STAGING: &str = "staging";
const UPLOADS: &str = "uploads";
const PROBE: &str = "probe";

/// Where the bucket is and how to reach it. Debug output hides the secret key.
#[derive(Clone, Default)]
pub struct S3Config {
    /// The bucket's name.
    pub bucket: String,
    /// Key prefix inside the bucket (may be empty).
    pub prefix: String,
    /// The server's URL (e.g. `http://127.0.0.1:8333`); none for AWS itself.
    pub endpoint: Option<String>,
    /// The region [default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1].
    pub region: Option<String>,
    /// Path-style (`ENDPOINT/BUCKET/KEY`) rather than virtual-hosted (`BUCKET.ENDPOINT/KEY`)
    /// requests [default: path-style with an endpoint, virtual-hosted without].
    pub path_style: Option<bool>,
    /// Access key id, used when AWS_ACCESS_KEY_ID is not set.
    pub access_key_id: Option<String>,
    /// Secret access key, used when AWS_ACCESS_KEY_ID is not set.
    pub secret_access_key: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

impl S3Config {
    /// The client for this configuration: the usual AWS_* environment variables first, then
    /// these settings (which win, except for credentials, where the environment wins).
    fn client(&self) -> Result<AmazonS3, StorageError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&self.bucket)
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart)
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let env_region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .any(|name| std::env::var_os(name).is_some());
        match &self.region {
            Some(region) => builder = builder.with_region(region),
            None if !env_region => builder = builder.with_region("us-east-1"),
            None => {}
        }
        let path_style = self.path_style.unwrap_or(self.endpoint.is_some());
        builder = builder.with_virtual_hosted_style_request(!path_style);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
            if let Some(id) = &self.access_key_id {
                builder = builder.with_access_key_id(id);
            }
            if let Some(secret) = &self.secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
        }
        builder
            .build()
            .map_err(|e| StorageError::Remote(format!("invalid S3 settings: {e}")))
    }
}

/// Blob storage in an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    prefix: Path,
    /// `s3://bucket/prefix`, for messages.
    location: String,
}

fn remote(what: &str, path: &Path, e: object_store::Error) -> StorageError {
    StorageError::Remote(format!("{what} {path}: {e}"))
}

fn create() -> PutOptions {
    PutOptions::from(PutMode::Create)
}

/// A name no other writer picks: the key and random bits.
fn unique_name(key: &BlobKey) -> Result<String, StorageError> {
    let mut bits = [0u8; 8];
    getrandom::fill(&mut bits).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(format!("{key}-{}", hex::encode(bits)))
}

/// Reads `len` bytes at `offset` of the file at `path` (one part of an upload).
async fn read_part(path: std::path::PathBuf, offset: u64, len: u64) -> std::io::Result<Bytes> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(path)?;
        // `len` is at most PART_SIZE, so it fits in a usize.
        let mut buf = vec![0u8; len as usize];
        file.read_exact_at(&mut buf, offset)?;
        Ok(Bytes::from(buf))
    })
    .await
    .map_err(std::io::Error::other)?
}

impl S3Store {
    /// Connects to the bucket and checks that it answers and refuses to overwrite an existing
    /// object on a conditional write (without that, published files could be replaced).
    pub async fn connect(config: &S3Config) -> Result<S3Store, StorageError> {
        let prefix = Path::parse(&config.prefix).map_err(|e| {
            StorageError::Remote(format!("invalid key prefix '{}': {e}", config.prefix))
        })?;
        let store = S3Store {
            store: Arc::new(config.client()?),
            location: format!("s3://{}/{}", config.bucket, prefix),
            prefix,
        };
        store.require_conditional_put().await?;
        Ok(store)
    }

    /// Where this store keeps its blobs, `s3://bucket/prefix` (no secret).
    pub fn location(&self) -> &str {
        &self.location
    }

    fn path(&self, area: &str, name: &str) -> Path {
        self.prefix.clone().join(area).join(name)
    }

    fn blob_path(&self, key: &BlobKey) -> Path {
        self.path(BLOBS, key.as_str())
    }

    async fn require_conditional_put(&self) -> Result<(), StorageError> {
        let probe = self.path(PROBE, "conditional-put");
        match self.store.put_opts(&probe, "1".into(), create()).await {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(remote("could not write", &probe, e)),
        }
        match self.store.put_opts(&probe, "2".into(), create()).await {
            Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(remote("could not write", &probe, e)),
            Ok(_) => Err(StorageError::Remote(format!(
                "the S3 server behind {} overwrote an existing object despite `If-None-Match: *`: \
                 pyindex needs conditional writes to keep published files immutable; use a server \
                 that honours them (AWS S3, SeaweedFS, MinIO, ...)",
                self.location
            ))),
        }
    }

    /// Stores a small file with one conditional `PUT`. Returns whether this call created it.
    async fn put_small(&self, target: &Path, file: &SpooledFile) -> Result<bool, StorageError> {
        let data = read_part(file.path().to_owned(), 0, file.len()).await?;
        match self.store.put_opts(target, data.into(), create()).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(remote("could not store", target, e)),
        }
    }

    /// Stores a large file: parts to a staging key, then a conditional copy to `target`.
    /// Returns whether this call created it.
    async fn put_large(
        &self,
        key: &BlobKey,
        target: &Path,
        file: &SpooledFile,
    ) -> Result<bool, StorageError> {
        let name = unique_name(key)?;
        let staging = self.path(STAGING, &name);
        let record = self.path(UPLOADS, &name);
        let id = self
            .store
            .create_multipart(&staging)
            .await
            .map_err(|e| remote("could not start uploading", &staging, e))?;
        let assembled = self.assemble(&staging, &record, &id, file).await;
        if let Err(e) = assembled {
            self.abandon(&staging, &record, &id).await;
            return Err(e);
        }
        let created = match self.store.copy_if_not_exists(&staging, target).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(remote("could not store", target, e)),
        };
        // Left over only if this fails; `remove_leftovers` finds both by the record.
        for path in [&staging, &record] {
            if let Err(e) = self.store.delete(path).await {
                tracing::warn!(%path, error = %e, "could not remove a staging object; `pyindex verify --repair` will");
            }
        }
        created
    }

    /// Records the upload, sends every part and completes the staging object.
    async fn assemble(
        &self,
        staging: &Path,
        record: &Path,
        id: &str,
        file: &SpooledFile,
    ) -> Result<(), StorageError> {
        self.store
            .put(record, id.to_owned().into())
            .await
            .map_err(|e| remote("could not record the upload", record, e))?;
        let id = id.to_owned();
        let len = file.len();
        let path = file.path().to_owned();
        let parts: Vec<PartId> = futures::stream::iter(0..len.div_ceil(PART_SIZE))
            .map(|index| {
                let (path, id) = (path.clone(), id.clone());
                async move {
                    let offset = index * PART_SIZE;
                    let data = read_part(path, offset, PART_SIZE.min(len - offset)).await?;
                    // `index` < len / PART_SIZE + 1, far below usize::MAX.
                    self.store
                        .put_part(staging, &id, index as usize, data.into())
                        .await
                        .map_err(|e| remote("could not upload a part of", staging, e))
                }
            })
            .buffered(PARTS_AT_ONCE)
            .try_collect()
            .await?;
        self.store
            .complete_multipart(staging, &id, parts)
            .await
            .map_err(|e| remote("could not complete", staging, e))?;
        Ok(())
    }

    /// Aborts a failed multipart upload and forgets it (best effort: repair retries).
    async fn abandon(&self, staging: &Path, record: &Path, id: &str) {
        let id = id.to_owned();
        if let Err(e) = self.store.abort_multipart(staging, &id).await {
            tracing::warn!(path = %staging, error = %e, "could not abort an upload; `pyindex verify --repair` will");
            return;
        }
        let _ = self.store.delete(staging).await;
        let _ = self.store.delete(record).await;
    }

    /// Marks an existing blob as stored now (see [`StoredBlob::modified`]).
    async fn touch(&self, key: &BlobKey) -> Result<(), StorageError> {
        let marker = self.path(TOUCHED, key.as_str());
        self.store
            .put(&marker, PutPayload::default())
            .await
            .map_err(|e| remote("could not write", &marker, e))?;
        Ok(())
    }

    /// The listed blob with the time it was last stored, or `None` for a stray key.
    async fn stored_blob(&self, meta: ObjectMeta) -> Result<Option<StoredBlob>, StorageError> {
        let Some(key) = meta
            .location
            .filename()
            .and_then(|n| BlobKey::parse(n).ok())
        else {
            return Ok(None);
        };
        if meta.location != self.blob_path(&key) {
            return Ok(None);
        }
        let marker = self.path(TOUCHED, key.as_str());
        let touched = match self.store.head(&marker).await {
            Ok(marker) => Some(SystemTime::from(marker.last_modified)),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(remote("could not read", &marker, e)),
        };
        let modified = SystemTime::from(meta.last_modified);
        Ok(Some(StoredBlob {
            key,
            size: meta.size,
            modified: touched.map_or(modified, |t| t.max(modified)),
        }))
    }

    /// Objects under `area` last written before `cutoff`.
    fn older(
        &self,
        area: &str,
        cutoff: SystemTime,
    ) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        let dir = self.prefix.clone().join(area);
        self.store
            .list(Some(&dir))
            .map_err(move |e| remote("could not list", &dir, e))
            .try_filter(move |meta| {
                futures::future::ready(SystemTime::from(meta.last_modified) < cutoff)
            })
            .boxed()
    }

    /// Aborts the recorded upload `record` and removes its staging object and the record.
    async fn abort_recorded(&self, record: &Path) -> Result<Path, StorageError> {
        let name = record.filename().unwrap_or_default().to_owned();
        let staging = self.path(STAGING, &name);
        let id = self
            .store
            .get(record)
            .await
            .map_err(|e| remote("could not read", record, e))?
            .bytes()
            .await
            .map_err(|e| remote("could not read", record, e))?;
        let id = String::from_utf8_lossy(&id).into_owned();
        match self.store.abort_multipart(&staging, &id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote("could not abort the upload of", &staging, e)),
        }
        self.delete_path(&staging).await?;
        self.delete_path(record).await?;
        Ok(staging)
    }

    async fn delete_path(&self, path: &Path) -> Result<(), StorageError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(remote("could not delete", path, e)),
        }
    }
}

fn body(len: u64, stream: BoxStream<'static, object_store::Result<Bytes>>) -> BlobBody {
    BlobBody {
        len,
        content: BlobContent::Stream(stream.map_err(std::io::Error::other).boxed()),
    }
}

#[async_trait]
impl BlobStore for S3Store {
    async fn put_spooled(&self, key: &BlobKey, file: SpooledFile) -> Result<(), StorageError> {
        let target = self.blob_path(key);
        let created = if file.len() <= PART_SIZE {
            self.put_small(&target, &file).await?
        } else {
            self.put_large(key, &target, &file).await?
        };
        if !created {
            // Same key, same bytes, stored earlier: mark it as stored now, so that repair's
            // grace period protects it until the caller has recorded it.
            self.touch(key).await?;
        }
        Ok(())
    }

    async fn download_url(
        &self,
        key: &BlobKey,
        expires_in: Duration,
    ) -> Result<Option<String>, StorageError> {
        let path = self.blob_path(key);
        let url = self
            .store
            .signed_url(object_store::signer::Method::GET, &path, expires_in)
            .await
            .map_err(|e| remote("presigning", &path, e))?;
        Ok(Some(url.into()))
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        let path = self.blob_path(key);
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote("could not read", &path, e)),
        }
    }

    /// Writes a small probe object (overwriting the previous one).
    async fn check(&self) -> Result<(), StorageError> {
        let probe = self.path(PROBE, "ready");
        self.store
            .put(&probe, "ok".into())
            .await
            .map_err(|e| remote("could not write", &probe, e))?;
        Ok(())
    }

    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, StorageError> {
        let path = self.blob_path(key);
        let options = match range {
            None => GetOptions::default(),
            Some(range) => {
                let Some(size) = self.size(key).await? else {
                    return Ok(None);
                };
                let start = range.start.min(size);
                let end = range.end.min(size).max(start);
                if start == end {
                    return Ok(Some(BlobBody::from_bytes(Bytes::new())));
                }
                GetOptions {
                    range: Some(GetRange::Bounded(start..end)),
                    ..GetOptions::default()
                }
            }
        };
        match self.store.get_opts(&path, options).await {
            Ok(got) => Ok(Some(body(
                got.range.end - got.range.start,
                got.into_stream(),
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(remote("could not read", &path, e)),
        }
    }

    fn list(&self) -> BoxStream<'static, Result<StoredBlob, StorageError>> {
        let dir = self.prefix.clone().join(BLOBS);
        let this = self.clone();
        self.store
            .list(Some(&dir))
            .map(move |listed| {
                let (this, dir) = (this.clone(), dir.clone());
                async move {
                    let meta = listed.map_err(|e| remote("could not list", &dir, e))?;
                    this.stored_blob(meta).await
                }
            })
            .buffered(LIST_LOOKUPS)
            .try_filter_map(futures::future::ok)
            .boxed()
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool, StorageError> {
        let Some(_) = self.size(key).await? else {
            return Ok(false);
        };
        self.delete_path(&self.blob_path(key)).await?;
        self.delete_path(&self.path(TOUCHED, key.as_str())).await?;
        Ok(true)
    }

    async fn remove_leftovers(&self, older_than: Duration) -> Result<Vec<String>, StorageError> {
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut removed = Vec::new();
        let mut records = self.older(UPLOADS, cutoff);
        while let Some(record) = records.try_next().await? {
            let staging = self.abort_recorded(&record.location).await?;
            removed.push(format!("aborted the incomplete upload {staging}"));
        }
        let mut staged = self.older(STAGING, cutoff);
        while let Some(meta) = staged.try_next().await? {
            self.delete_path(&meta.location).await?;
            removed.push(format!(
                "removed the staging object {} ({} bytes)",
                meta.location, meta.size
            ));
        }
        // Markers older than the grace period protect nothing any more.
        let mut markers = self.older(TOUCHED, cutoff);
        while let Some(meta) = markers.try_next().await? {
            self.delete_path(&meta.location).await?;
        }
        Ok(removed)
    }

    async fn leftovers(&self, older_than: Duration) -> Result<Vec<String>, StorageError> {
        let cutoff = SystemTime::now()
            .checked_sub(older_than)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut found = Vec::new();
        let mut records = self.older(UPLOADS, cutoff);
        while let Some(record) = records.try_next().await? {
            let name = record.location.filename().unwrap_or_default().to_owned();
            found.push(format!(
                "an incomplete upload {}",
                self.path(STAGING, &name)
            ));
        }
        let mut staged = self.older(STAGING, cutoff);
        while let Some(meta) = staged.try_next().await? {
            found.push(format!(
                "the staging object {} ({} bytes)",
                meta.location, meta.size
            ));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};

    const ENDPOINT_VARIABLE: &str = "PYINDEX_TEST_S3_ENDPOINT";
    const BUCKET_VARIABLE: &str = "PYINDEX_TEST_S3_BUCKET";

    /// A store under a prefix of its own in the test bucket, or `None` (with a line on stderr
    /// that the test harness does not capture) when `PYINDEX_TEST_S3_ENDPOINT` is not set.
    /// Credentials come from the usual AWS_* variables. What the tests write stays in the
    /// bucket: `scripts/s3 stop` removes the whole server.
    pub(super) async fn open() -> Option<((), S3Store)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let Ok(endpoint) = std::env::var(ENDPOINT_VARIABLE) else {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: S3 blob store test ({ENDPOINT_VARIABLE} is not set; \
                 `eval \"$(scripts/s3 start)\"` starts a server)"
            );
            return None;
        };
        let bucket = std::env::var(BUCKET_VARIABLE)
            .unwrap_or_else(|_| panic!("{BUCKET_VARIABLE} must be set with {ENDPOINT_VARIABLE}"));
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let config = S3Config {
            bucket,
            prefix: format!(
                "test/{}-{nanos}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            endpoint: Some(endpoint),
            ..S3Config::default()
        };
        Some(((), S3Store::connect(&config).await.unwrap()))
    }

    mod suite {
        crate::suite::blob_store_suite!(super::open());
    }

    /// Presigning needs no request to the server, so this runs without one.
    #[tokio::test]
    async fn download_urls_are_presigned_gets_of_the_blob_key() {
        let config = S3Config {
            bucket: "files".into(),
            prefix: "prod".into(),
            endpoint: Some("http://127.0.0.1:9".into()),
            access_key_id: Some("id".into()),
            secret_access_key: Some("secret".into()),
            ..S3Config::default()
        };
        let store = S3Store {
            store: Arc::new(config.client().unwrap()),
            prefix: Path::from("prod"),
            location: String::new(),
        };
        let key = BlobKey::parse(&"ab".repeat(32)).unwrap();
        let url = store
            .download_url(&key, Duration::from_secs(120))
            .await
            .unwrap()
            .unwrap();
        let expected = format!("http://127.0.0.1:9/files/prod/sha256/{key}?");
        assert!(url.starts_with(&expected), "{url}");
        assert!(url.contains("X-Amz-Expires=120"), "{url}");
        assert!(url.contains("X-Amz-Signature="), "{url}");
    }

    async fn names(store: &S3Store, area: &str) -> Vec<String> {
        store
            .store
            .list(Some(&store.prefix.clone().join(area)))
            .map_ok(|meta| meta.location.filename().unwrap().to_owned())
            .try_collect()
            .await
            .unwrap()
    }

    /// What a crash leaves: a multipart upload with a part sent but never completed, and a
    /// completed staging object never copied.
    #[tokio::test]
    async fn repair_aborts_uploads_and_removes_staging_objects_a_crash_left() {
        let Some((_, store)) = open().await else {
            return;
        };
        let key = BlobKey::parse(&"ab".repeat(32)).unwrap();
        let name = unique_name(&key).unwrap();
        let staging = store.path(STAGING, &name);
        let id = store.store.create_multipart(&staging).await.unwrap();
        store
            .store
            .put(&store.path(UPLOADS, &name), id.clone().into())
            .await
            .unwrap();
        store
            .store
            .put_part(&staging, &id, 0, vec![1u8; 1024].into())
            .await
            .unwrap();
        let copied = store.path(STAGING, &unique_name(&key).unwrap());
        store.store.put(&copied, "whole".into()).await.unwrap();

        // Young leftovers are kept: an upload may still be under way.
        let kept = store
            .remove_leftovers(Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(kept.is_empty(), "{kept:?}");
        assert_eq!(names(&store, STAGING).await.len(), 1);
        assert!(
            store
                .leftovers(Duration::from_secs(3600))
                .await
                .unwrap()
                .is_empty()
        );
        // Reported as they are, without removing anything.
        let reported = store.leftovers(Duration::ZERO).await.unwrap();
        assert_eq!(reported.len(), 2, "{reported:?}");
        assert!(
            reported[0].starts_with("an incomplete upload"),
            "{reported:?}"
        );
        assert_eq!(names(&store, UPLOADS).await.len(), 1);
        assert_eq!(names(&store, STAGING).await.len(), 1);

        let removed = store.remove_leftovers(Duration::ZERO).await.unwrap();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(
            removed[0].starts_with("aborted the incomplete upload"),
            "{removed:?}"
        );
        assert!(names(&store, UPLOADS).await.is_empty());
        assert!(names(&store, STAGING).await.is_empty());
        // The upload is gone: completing it now fails.
        assert!(
            store
                .store
                .complete_multipart(&staging, &id, Vec::new())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn a_large_put_leaves_no_staging_behind() {
        let Some((_, store)) = open().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let spool = crate::Spool::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..(PART_SIZE + 1)).map(|i| (i % 253) as u8).collect();
        let file = spool.spool_bytes(&data).await.unwrap();
        let key = BlobKey::parse(&file.digests().sha256).unwrap();
        store.put_spooled(&key, file).await.unwrap();
        assert!(names(&store, STAGING).await.is_empty());
        assert!(names(&store, UPLOADS).await.is_empty());
        assert_eq!(names(&store, BLOBS).await, [key.to_string()]);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let config = S3Config {
            bucket: "b".into(),
            secret_access_key: Some("s3cr3t-value".into()),
            ..S3Config::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("<hidden>"), "{shown}");
    }
}

//! [`UpstreamIndex`] on SQLite.

use async_trait::async_trait;
use sqlx::{Row, SqliteConnection};
use time::OffsetDateTime;

use super::{
    SqliteCatalog, accounts::insert_audit, from_micros, micros, record_changes, upstream_log,
};
use crate::upstream::{
    CachedBlob, FetchedFile, StoredPage, UpstreamBlock, UpstreamFetch, UpstreamIndex,
};
use crate::{AuditEntry, CatalogError, Change};

#[async_trait]
impl UpstreamIndex for SqliteCatalog {
    async fn upstream_page(&self, project: &str) -> Result<Option<StoredPage>, CatalogError> {
        let row = sqlx::query(
            "SELECT project, upstream, page, etag, last_modified, fetched_us \
             FROM upstream_pages WHERE project = $1",
        )
        .bind(project)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StoredPage {
                project: row.try_get("project")?,
                upstream: row.try_get("upstream")?,
                page: row.try_get("page")?,
                etag: row.try_get("etag")?,
                last_modified: row.try_get("last_modified")?,
                fetched: from_micros(row.try_get("fetched_us")?)?,
            })
        })
        .transpose()
    }

    async fn put_upstream_page(&self, page: &StoredPage) -> Result<(), CatalogError> {
        sqlx::query(
            "INSERT INTO upstream_pages (project, upstream, page, etag, last_modified, fetched_us) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project) DO UPDATE SET \
             upstream = excluded.upstream, page = excluded.page, etag = excluded.etag, \
             last_modified = excluded.last_modified, fetched_us = excluded.fetched_us",
        )
        .bind(&page.project)
        .bind(&page.upstream)
        .bind(&page.page)
        .bind(&page.etag)
        .bind(&page.last_modified)
        .bind(micros(page.fetched))
        .execute(&self.cache_pool)
        .await?;
        Ok(())
    }

    async fn touch_upstream_page(
        &self,
        project: &str,
        at: OffsetDateTime,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE upstream_pages SET fetched_us = $1 WHERE project = $2")
            .bind(micros(at))
            .bind(project)
            .execute(&self.cache_pool)
            .await?;
        Ok(())
    }

    async fn use_upstream_blob(
        &self,
        sha256: &str,
        at: OffsetDateTime,
    ) -> Result<bool, CatalogError> {
        let mut tx = self.cache_pool.begin_with("BEGIN IMMEDIATE").await?;
        let used = use_blob(&mut tx, sha256, at).await?;
        tx.commit().await?;
        Ok(used)
    }

    async fn use_upstream_blobs(
        &self,
        uses: &[(String, OffsetDateTime)],
    ) -> Result<(), CatalogError> {
        let mut tx = self.cache_pool.begin_with("BEGIN IMMEDIATE").await?;
        for (sha256, at) in uses {
            use_blob(&mut tx, sha256, *at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn upstream_blob_size(&self, sha256: &str) -> Result<Option<u64>, CatalogError> {
        let size: Option<i64> =
            sqlx::query_scalar("SELECT size FROM upstream_blobs WHERE sha256 = $1")
                .bind(sha256)
                .fetch_optional(&self.pool)
                .await?;
        size.map(|size| {
            u64::try_from(size).map_err(|_| CatalogError::Corrupt(format!("negative size {size}")))
        })
        .transpose()
    }

    async fn record_upstream_fetched(&self, fetched: &[FetchedFile]) -> Result<(), CatalogError> {
        let mut tx = self.cache_pool.begin_with("BEGIN IMMEDIATE").await?;
        for file in fetched {
            add_blob(&mut tx, &file.blob).await?;
            if let Some(fetch) = &file.fetch {
                upstream_log::record_fetch(&mut tx, fetch).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn has_upstream_blob(&self, sha256: &str) -> Result<bool, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM upstream_blobs WHERE sha256 = $1)")
                .bind(sha256)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn add_upstream_blob(&self, blob: &CachedBlob) -> Result<(), CatalogError> {
        add_blob(&mut *self.cache_pool.acquire().await?, blob).await
    }

    async fn upstream_blobs(&self) -> Result<Vec<CachedBlob>, CatalogError> {
        let rows = sqlx::query(
            "SELECT sha256, size, last_used_us FROM upstream_blobs ORDER BY last_used_us, sha256",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let size: i64 = row.try_get("size")?;
                Ok(CachedBlob {
                    sha256: row.try_get("sha256")?,
                    size: u64::try_from(size)
                        .map_err(|_| CatalogError::Corrupt(format!("negative size {size}")))?,
                    last_used: from_micros(row.try_get("last_used_us")?)?,
                })
            })
            .collect()
    }

    async fn remove_upstream_blob(&self, sha256: &str) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let removed = sqlx::query("DELETE FROM upstream_blobs WHERE sha256 = $1")
            .bind(sha256)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed > 0 {
            record_changes(&mut tx, &[Change::UpstreamFile(sha256.to_owned())]).await?;
        }
        let published: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM files WHERE sha256 = $1 OR metadata_sha256 = $1)",
        )
        .bind(sha256)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(!published)
    }

    async fn upstream_cache_bytes(&self) -> Result<u64, CatalogError> {
        let n: i64 =
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM upstream_blobs")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn upstream_page_count(&self) -> Result<u64, CatalogError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM upstream_pages")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn reserve_project(
        &self,
        name: &str,
        display_name: &str,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let created = sqlx::query(
            "INSERT INTO projects (name, display_name, created_us) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(display_name)
        .bind(micros(audit.at))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if created {
            insert_audit(&mut tx, audit).await?;
            record_changes(
                &mut tx,
                &[Change::Project(name.to_owned()), Change::ProjectList],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn add_upstream_block(
        &self,
        block: &UpstreamBlock,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        upstream_log::add_block(&self.pool, block, audit).await
    }

    async fn remove_upstream_block(
        &self,
        project: &str,
        version_key: &str,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        upstream_log::remove_block(&self.pool, project, version_key, audit).await
    }

    async fn upstream_blocks(
        &self,
        project: Option<&str>,
    ) -> Result<Vec<UpstreamBlock>, CatalogError> {
        upstream_log::blocks(&self.pool, project).await
    }

    async fn record_upstream_fetch(&self, fetch: &UpstreamFetch) -> Result<(), CatalogError> {
        upstream_log::record_fetch(&mut *self.cache_pool.acquire().await?, fetch).await
    }

    async fn upstream_fetches(&self, project: &str) -> Result<Vec<UpstreamFetch>, CatalogError> {
        upstream_log::fetches(&self.pool, project).await
    }
}

/// Records the use of a cached blob at `at` (and as the last time the fetch log's files of
/// that content were served); whether it is cached.
async fn use_blob(
    conn: &mut SqliteConnection,
    sha256: &str,
    at: OffsetDateTime,
) -> Result<bool, CatalogError> {
    let updated = sqlx::query("UPDATE upstream_blobs SET last_used_us = $1 WHERE sha256 = $2")
        .bind(micros(at))
        .bind(sha256)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if updated > 0 {
        upstream_log::served(conn, sha256, at).await?;
    }
    Ok(updated > 0)
}

/// Records a newly cached blob (or its new use, if it was cached already). The size is
/// replaced too: the blob was fetched and checked again.
async fn add_blob(conn: &mut SqliteConnection, blob: &CachedBlob) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO upstream_blobs (sha256, size, last_used_us) VALUES ($1, $2, $3) \
         ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, \
         last_used_us = excluded.last_used_us",
    )
    .bind(&blob.sha256)
    .bind(i64::try_from(blob.size).unwrap_or(i64::MAX))
    .bind(micros(blob.last_used))
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Catalog, ProjectStatus};

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    fn blob(sha: char, size: u64, used: i64) -> CachedBlob {
        CachedBlob {
            sha256: sha.to_string().repeat(64),
            size,
            last_used: at(used),
        }
    }

    #[tokio::test]
    async fn pages_are_stored_replaced_and_revalidated() {
        let (_dir, catalog) = crate::sqlite::tests::open().await;
        assert!(catalog.upstream_page("up").await.unwrap().is_none());
        let mut page = StoredPage {
            project: "up".into(),
            upstream: "http://127.0.0.1:1/simple/".into(),
            page: "{}".into(),
            etag: Some("\"e1\"".into()),
            last_modified: None,
            fetched: at(1_000),
        };
        catalog.put_upstream_page(&page).await.unwrap();
        page.etag = Some("\"e2\"".into());
        catalog.put_upstream_page(&page).await.unwrap();
        catalog.touch_upstream_page("up", at(2_000)).await.unwrap();
        let stored = catalog.upstream_page("up").await.unwrap().unwrap();
        assert_eq!(stored.etag.as_deref(), Some("\"e2\""));
        assert_eq!(stored.fetched, at(2_000));
        assert_eq!(catalog.upstream_page_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn blobs_are_listed_least_recently_used_first() {
        let (_dir, catalog) = crate::sqlite::tests::open().await;
        catalog
            .add_upstream_blob(&blob('a', 10, 300))
            .await
            .unwrap();
        catalog
            .add_upstream_blob(&blob('b', 20, 100))
            .await
            .unwrap();
        catalog
            .add_upstream_blob(&blob('c', 30, 200))
            .await
            .unwrap();
        assert!(
            catalog
                .use_upstream_blob(&"b".repeat(64), at(400))
                .await
                .unwrap()
        );
        assert!(
            !catalog
                .use_upstream_blob(&"d".repeat(64), at(400))
                .await
                .unwrap()
        );
        assert!(catalog.has_upstream_blob(&"a".repeat(64)).await.unwrap());
        let order: Vec<u64> = catalog
            .upstream_blobs()
            .await
            .unwrap()
            .iter()
            .map(|b| b.size)
            .collect();
        assert_eq!(order, [30, 10, 20]);
        assert!(catalog.remove_upstream_blob(&"c".repeat(64)).await.unwrap());
        assert!(!catalog.has_upstream_blob(&"c".repeat(64)).await.unwrap());
    }

    #[tokio::test]
    async fn a_reserved_project_exists_without_files_once() {
        let (_dir, catalog) = crate::sqlite::tests::open().await;
        let audit = AuditEntry {
            at: at(5),
            actor: "cli".into(),
            action: "project.reserve".into(),
            subject: "mine".into(),
            address: None,
            detail: None,
        };
        let before = catalog.generation().await.unwrap();
        assert!(
            catalog
                .reserve_project("mine", "mine", &audit)
                .await
                .unwrap()
        );
        assert!(
            !catalog
                .reserve_project("mine", "mine", &audit)
                .await
                .unwrap()
        );
        let found = catalog.project_files("mine").await.unwrap().unwrap();
        assert!(found.files.is_empty());
        assert_eq!(found.project.status, ProjectStatus::Active);
        let changes = catalog.changes_since(before).await.unwrap().changes;
        assert_eq!(
            changes,
            [Change::Project("mine".into()), Change::ProjectList]
        );
    }
}

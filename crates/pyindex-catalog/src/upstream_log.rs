//! The operator's blocks on upstream projects and releases, and the log of upstream files
//! fetched: the SQL behind those [`UpstreamIndex`](crate::UpstreamIndex) methods, written once.
//! The statements are ones both engines understand; [`upstream_log_statements!`] expands them in
//! each engine's module with its pool, row and connection types and its way of starting a
//! write transaction (a macro, as for the transfer's statements: sqlx's generic executor bounds
//! would say the same at three times the length).

/// Expands the functions of this module for one engine: `($pool, $row, $conn, begin...)`, where
/// `begin...` is the pool method call that starts a write transaction. The expanding module
/// provides `accounts::insert_audit`, `from_micros`, `micros` and `record_changes` in `super`.
macro_rules! upstream_log_statements {
    ($pool:ty, $row:ty, $conn:ty, $($begin:tt)+) => {
use sqlx::Row;
use time::OffsetDateTime;

use super::{accounts::insert_audit, from_micros, micros, record_changes};
use crate::upstream::{UpstreamBlock, UpstreamFetch};
use crate::{AuditEntry, CatalogError, Change};

pub(super) async fn add_block(
    pool: &$pool,
    block: &UpstreamBlock,
    audit: &AuditEntry,
) -> Result<bool, CatalogError> {
    let mut tx = pool.$($begin)+.await?;
    let existed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM upstream_blocks WHERE project = $1 AND version_key = $2)",
    )
    .bind(&block.project)
    .bind(&block.version_key)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO upstream_blocks (project, version_key, version, reason, created_us, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (project, version_key) DO UPDATE SET \
         version = excluded.version, reason = excluded.reason, created_us = excluded.created_us, \
         created_by = excluded.created_by",
    )
    .bind(&block.project)
    .bind(&block.version_key)
    .bind(&block.version)
    .bind(&block.reason)
    .bind(micros(block.created))
    .bind(&block.created_by)
    .execute(&mut *tx)
    .await?;
    insert_audit(&mut tx, audit).await?;
    record_changes(&mut tx, &[Change::Project(block.project.clone())]).await?;
    tx.commit().await?;
    Ok(!existed)
}

pub(super) async fn remove_block(
    pool: &$pool,
    project: &str,
    version_key: &str,
    audit: &AuditEntry,
) -> Result<bool, CatalogError> {
    let mut tx = pool.$($begin)+.await?;
    let removed =
        sqlx::query("DELETE FROM upstream_blocks WHERE project = $1 AND version_key = $2")
            .bind(project)
            .bind(version_key)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
    if removed {
        insert_audit(&mut tx, audit).await?;
        record_changes(&mut tx, &[Change::Project(project.to_owned())]).await?;
    }
    tx.commit().await?;
    Ok(removed)
}

fn block_from(row: &$row) -> Result<UpstreamBlock, CatalogError> {
    Ok(UpstreamBlock {
        project: row.try_get("project")?,
        version: row.try_get("version")?,
        version_key: row.try_get("version_key")?,
        reason: row.try_get("reason")?,
        created: from_micros(row.try_get("created_us")?)?,
        created_by: row.try_get("created_by")?,
    })
}

pub(super) async fn blocks(
    pool: &$pool,
    project: Option<&str>,
) -> Result<Vec<UpstreamBlock>, CatalogError> {
    let rows = sqlx::query(
        "SELECT project, version_key, version, reason, created_us, created_by \
         FROM upstream_blocks WHERE $1 IS NULL OR project = $1 ORDER BY project, version_key",
    )
    .bind(project)
    .fetch_all(pool)
    .await?;
    rows.iter().map(block_from).collect()
}

pub(super) async fn record_fetch(
    conn: &mut $conn,
    fetch: &UpstreamFetch,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO upstream_fetches (project, filename, sha256, version, upload_time_us, \
         first_fetched_us, last_fetched_us, fetches, last_served_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, 1, $6) \
         ON CONFLICT (project, filename, sha256) DO UPDATE SET \
         last_fetched_us = excluded.last_fetched_us, fetches = upstream_fetches.fetches + 1, \
         last_served_us = excluded.last_served_us",
    )
    .bind(&fetch.project)
    .bind(&fetch.filename)
    .bind(&fetch.sha256)
    .bind(&fetch.version)
    .bind(fetch.upload_time.map(micros))
    .bind(micros(fetch.last_fetched))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that the fetched files with content `sha256` were served from the cache at `at`.
pub(super) async fn served(
    conn: &mut $conn,
    sha256: &str,
    at: OffsetDateTime,
) -> Result<(), CatalogError> {
    sqlx::query("UPDATE upstream_fetches SET last_served_us = $1 WHERE sha256 = $2")
        .bind(micros(at))
        .bind(sha256)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn fetch_from(row: &$row) -> Result<UpstreamFetch, CatalogError> {
    let fetches: i64 = row.try_get("fetches")?;
    let upload_time: Option<i64> = row.try_get("upload_time_us")?;
    Ok(UpstreamFetch {
        project: row.try_get("project")?,
        version: row.try_get("version")?,
        filename: row.try_get("filename")?,
        sha256: row.try_get("sha256")?,
        upload_time: upload_time.map(from_micros).transpose()?,
        first_fetched: from_micros(row.try_get("first_fetched_us")?)?,
        last_fetched: from_micros(row.try_get("last_fetched_us")?)?,
        fetches: u64::try_from(fetches)
            .map_err(|_| CatalogError::Corrupt(format!("negative fetch count {fetches}")))?,
        last_served: from_micros(row.try_get("last_served_us")?)?,
    })
}

pub(super) async fn fetches(
    pool: &$pool,
    project: &str,
) -> Result<Vec<UpstreamFetch>, CatalogError> {
    let rows = sqlx::query(
        "SELECT project, filename, sha256, version, upload_time_us, first_fetched_us, \
         last_fetched_us, fetches, last_served_us FROM upstream_fetches WHERE project = $1 \
         ORDER BY first_fetched_us, filename",
    )
    .bind(project)
    .fetch_all(pool)
    .await?;
    rows.iter().map(fetch_from).collect()
}
    };
}

pub(crate) use upstream_log_statements;

//! [`Transfer`] on PostgreSQL.

use async_trait::async_trait;

use super::{PgCatalog, record_changes};
use crate::transfer::{Dump, Transfer, export_dump, import_dump, queries};
use crate::{CatalogError, Change};

#[async_trait]
impl Transfer for PgCatalog {
    async fn export(&self) -> Result<Dump, CatalogError> {
        // One snapshot for every query; writers go on.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let dump = export_dump!(&mut *tx);
        tx.commit().await?;
        Ok(dump)
    }

    async fn import(&self, dump: &Dump) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin().await?;
        // Writers of these tables (a server, another import) wait until this one commits, so
        // that the catalog found empty stays empty until the copy is in.
        sqlx::query(
            "LOCK TABLE projects, users, audit_log, upstream_blocks, upstream_fetches \
             IN SHARE ROW EXCLUSIVE MODE",
        )
        .execute(&mut *tx)
        .await?;
        let holds_anything: bool = sqlx::query_scalar(queries::HOLDS_ANYTHING)
            .fetch_one(&mut *tx)
            .await?;
        if holds_anything {
            return Ok(false);
        }
        import_dump!(&mut *tx, dump);
        record_changes(&mut tx, &[Change::Everything]).await?;
        tx.commit().await?;
        Ok(true)
    }
}

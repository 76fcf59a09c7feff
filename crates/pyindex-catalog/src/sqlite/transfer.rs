//! [`Transfer`] on SQLite.

use async_trait::async_trait;

use super::{SqliteCatalog, record_changes};
use crate::transfer::{Dump, Transfer, export_dump, import_dump, queries};
use crate::{CatalogError, Change};

#[async_trait]
impl Transfer for SqliteCatalog {
    async fn export(&self) -> Result<Dump, CatalogError> {
        // A read transaction: every query sees the same snapshot (WAL), writers go on.
        let mut tx = self.pool.begin().await?;
        let dump = export_dump!(&mut *tx);
        tx.commit().await?;
        Ok(dump)
    }

    async fn import(&self, dump: &Dump) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
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

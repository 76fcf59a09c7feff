//! The upstream blocks and fetch log on SQLite (the statements: `crate::upstream_log`).

crate::upstream_log::upstream_log_statements!(
    sqlx::SqlitePool,
    sqlx::sqlite::SqliteRow,
    sqlx::SqliteConnection,
    begin_with("BEGIN IMMEDIATE")
);

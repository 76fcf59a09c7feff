//! The upstream blocks and fetch log on PostgreSQL (the statements: `crate::upstream_log`).

crate::upstream_log::upstream_log_statements!(
    sqlx::PgPool,
    sqlx::postgres::PgRow,
    sqlx::PgConnection,
    begin()
);

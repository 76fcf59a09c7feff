//! [`Accounts`] on PostgreSQL.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;

use super::{PgCatalog, from_micros, micros, record_changes};
use crate::{Accounts, AuditEntry, CatalogError, Change, NewToken, Role, TokenRecord, User};

/// Gives `user_id` the role `role` in `project_id` (inside the caller's transaction).
pub(crate) async fn grant(
    conn: &mut PgConnection,
    project_id: i64,
    user_id: i64,
    role: Role,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO project_roles (project_id, user_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// The role of `user_id` in `project_id`.
pub(crate) async fn role_of(
    conn: &mut PgConnection,
    project_id: i64,
    user_id: i64,
) -> Result<Option<Role>, CatalogError> {
    let role: Option<String> = sqlx::query_scalar(
        "SELECT role FROM project_roles WHERE project_id = $1 AND user_id = $2 FOR SHARE",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    role.map(|r| {
        Role::parse(&r).ok_or_else(|| CatalogError::Corrupt(format!("unknown role '{r}'")))
    })
    .transpose()
}

pub(crate) fn user(row: &PgRow) -> Result<User, CatalogError> {
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        is_admin: row.try_get("is_admin")?,
        created: from_micros(row.try_get("created_us")?)?,
    })
}

fn optional_time(us: Option<i64>) -> Result<Option<OffsetDateTime>, CatalogError> {
    us.map(from_micros).transpose()
}

fn token(row: &PgRow) -> Result<TokenRecord, CatalogError> {
    let projects: Option<String> = row.try_get("projects")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        secret_hash: row.try_get("secret_hash")?,
        user_name: row.try_get("user_name")?,
        projects: projects
            .map(|p| serde_json::from_str(&p).map_err(|e| CatalogError::Corrupt(e.to_string())))
            .transpose()?,
        read_only: row.try_get("read_only")?,
        description: row.try_get("description")?,
        created: from_micros(row.try_get("created_us")?)?,
        expires: optional_time(row.try_get("expires_us")?)?,
        revoked: optional_time(row.try_get("revoked_us")?)?,
    })
}

const TOKEN_COLUMNS: &str = "SELECT t.id, t.public_id, t.secret_hash, u.name AS user_name, t.projects, \
     t.read_only, t.description, t.created_us, t.expires_us, t.revoked_us \
     FROM tokens t JOIN users u ON u.id = t.user_id";

/// Runs one write statement in a transaction that, if it changed a row, also writes
/// its audit record and its entries in the change log (so servers drop what they remembered of
/// the account), returning whether it changed anything.
async fn write<'q>(
    catalog: &PgCatalog,
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    changes: &[Change],
    audit: &AuditEntry,
) -> Result<bool, CatalogError> {
    let mut tx = catalog.pool.begin().await?;
    let changed = query.execute(&mut *tx).await?.rows_affected() > 0;
    if changed {
        record_changes(&mut tx, changes).await?;
        insert_audit(&mut tx, audit).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

#[async_trait]
impl Accounts for PgCatalog {
    async fn user_count(&self) -> Result<i64, CatalogError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        is_admin: bool,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        let query = sqlx::query(
            "INSERT INTO users (name, password_hash, is_admin, created_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(is_admin)
        .bind(micros(OffsetDateTime::now_utc()));
        write(self, query, &[Change::Account(name.to_owned())], audit).await
    }

    async fn user(&self, name: &str) -> Result<Option<User>, CatalogError> {
        sqlx::query("SELECT * FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    async fn users(&self) -> Result<Vec<User>, CatalogError> {
        sqlx::query("SELECT * FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(user)
            .collect()
    }

    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        let query = sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
            .bind(password_hash)
            .bind(name);
        write(self, query, &[Change::Account(name.to_owned())], audit).await
    }

    async fn remove_user(&self, name: &str, audit: &AuditEntry) -> Result<bool, CatalogError> {
        let query = sqlx::query("DELETE FROM users WHERE name = $1").bind(name);
        write(self, query, &[Change::Account(name.to_owned())], audit).await
    }

    async fn add_token(&self, t: &NewToken, audit: &AuditEntry) -> Result<i64, CatalogError> {
        let projects = t
            .projects
            .as_ref()
            .map(|p| serde_json::to_string(p).map_err(|e| CatalogError::Corrupt(e.to_string())))
            .transpose()?;
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tokens (public_id, secret_hash, user_id, projects, read_only, description, \
             created_us, expires_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&t.public_id)
        .bind(&t.secret_hash)
        .bind(t.user_id)
        .bind(projects)
        .bind(t.read_only)
        .bind(&t.description)
        .bind(micros(t.created))
        .bind(t.expires.map(micros))
        .fetch_one(&mut *tx)
        .await?;
        // Tokens are looked up on every request, never remembered: nothing to invalidate.
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn token(&self, public_id: &str) -> Result<Option<TokenRecord>, CatalogError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TOKEN_COLUMNS} WHERE t.public_id = $1"
        )))
        .bind(public_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(token)
        .transpose()
    }

    async fn token_by_id(&self, id: i64) -> Result<Option<TokenRecord>, CatalogError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TOKEN_COLUMNS} WHERE t.id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(token)
        .transpose()
    }

    async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, CatalogError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{TOKEN_COLUMNS} WHERE ($1 IS NULL OR u.name = $1) ORDER BY t.id"
        )))
        .bind(user)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(token)
        .collect()
    }

    async fn revoke_token(
        &self,
        id: i64,
        user: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        let query = sqlx::query(
            "UPDATE tokens SET revoked_us = $1 WHERE id = $2 AND revoked_us IS NULL \
             AND ($3 IS NULL OR user_id = (SELECT id FROM users WHERE name = $3))",
        )
        .bind(micros(OffsetDateTime::now_utc()))
        .bind(id)
        .bind(user);
        write(self, query, &[], audit).await
    }

    async fn role(&self, project: &str, user_id: i64) -> Result<Option<Role>, CatalogError> {
        let mut conn = self.pool.acquire().await?;
        let project_id: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE name = $1")
            .bind(project)
            .fetch_optional(&mut *conn)
            .await?;
        match project_id {
            Some(project_id) => role_of(&mut conn, project_id, user_id).await,
            None => Ok(None),
        }
    }

    async fn roles(&self, project: &str) -> Result<Vec<(String, Role)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT u.name, r.role FROM project_roles r JOIN users u ON u.id = r.user_id \
             JOIN projects p ON p.id = r.project_id WHERE p.name = $1 ORDER BY u.name",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role")?;
                let role = Role::parse(&role)
                    .ok_or_else(|| CatalogError::Corrupt(format!("unknown role '{role}'")))?;
                Ok((row.try_get("name")?, role))
            })
            .collect()
    }

    async fn set_role(
        &self,
        project: &str,
        user: &str,
        role: Option<Role>,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let project_id: Option<i64> = sqlx::query_scalar("SELECT id FROM projects WHERE name = $1")
            .bind(project)
            .fetch_optional(&mut *tx)
            .await?;
        let user_id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
        let (Some(project_id), Some(user_id)) = (project_id, user_id) else {
            return Ok(false);
        };
        match role {
            Some(role) => grant(&mut tx, project_id, user_id, role).await?,
            None => {
                sqlx::query("DELETE FROM project_roles WHERE project_id = $1 AND user_id = $2")
                    .bind(project_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // Roles are read inside each publishing transaction, never remembered.
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn audit(&self, limit: i64) -> Result<Vec<AuditEntry>, CatalogError> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM audit_log ORDER BY id DESC LIMIT $1) AS newest ORDER BY id",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: from_micros(row.try_get("at_us")?)?,
                    actor: row.try_get("actor")?,
                    action: row.try_get("action")?,
                    subject: row.try_get("subject")?,
                    address: row.try_get("address")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}

/// Writes one audit record; called inside the transaction of the change it records, so that the
/// change and its record are committed together or not at all.
pub(crate) async fn insert_audit(
    conn: &mut PgConnection,
    e: &AuditEntry,
) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO audit_log (at_us, actor, action, subject, address, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(micros(e.at))
    .bind(&e.actor)
    .bind(&e.action)
    .bind(&e.subject)
    .bind(&e.address)
    .bind(&e.detail)
    .execute(conn)
    .await?;
    Ok(())
}

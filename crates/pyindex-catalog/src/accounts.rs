//! Accounts, API tokens, project roles and the audit log: the data behind authentication and
//! permissions. The rules that use them live in the registry.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::CatalogError;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: i64,
    /// Its unique name.
    pub name: String,
    /// Password hash: a PHC string (argon2id) or an imported htpasswd hash.
    pub password_hash: String,
    /// Admins may do everything.
    pub is_admin: bool,
    /// When it was created.
    pub created: OffsetDateTime,
}

/// A token about to be stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The non-secret identifier embedded in the token.
    pub public_id: String,
    /// Hex SHA-256 of the whole token.
    pub secret_hash: String,
    /// The owning account.
    pub user_id: i64,
    /// Normalized project names it is limited to; `None` for every project.
    pub projects: Option<Vec<String>>,
    /// Whether it may only read.
    pub read_only: bool,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it stops working; `None` for never.
    pub expires: Option<OffsetDateTime>,
}

/// A stored token (without its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its row id, used to revoke it.
    pub id: i64,
    /// The non-secret identifier embedded in the token.
    pub public_id: String,
    /// Hex SHA-256 of the whole token.
    pub secret_hash: String,
    /// The owning account's name.
    pub user_name: String,
    /// Project limits; `None` for every project.
    pub projects: Option<Vec<String>>,
    /// Whether it may only read.
    pub read_only: bool,
    /// Free text.
    pub description: Option<String>,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When it stops working.
    pub expires: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked: Option<OffsetDateTime>,
}

/// A user's role in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// May publish.
    Maintainer,
    /// May publish, yank and manage roles.
    Owner,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Maintainer => "maintainer",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "owner" => Some(Role::Owner),
            "maintainer" => Some(Role::Maintainer),
            _ => None,
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: OffsetDateTime,
    /// Who: a user name, `cli` or `anonymous`.
    pub actor: String,
    /// What, e.g. `publish`, `yank`, `token.create`.
    pub action: String,
    /// On what.
    pub subject: String,
    /// From which client address, for actions over HTTP.
    pub address: Option<String>,
    /// More detail.
    pub detail: Option<String>,
}

/// Account storage. Every write takes the audit record of the change and writes it in the same
/// transaction, so the log and the data cannot disagree; a write that changes nothing records
/// nothing.
#[async_trait]
pub trait Accounts: Send + Sync {
    /// How many accounts exist.
    async fn user_count(&self) -> Result<i64, CatalogError>;
    /// Creates an account; `false` if the name is taken.
    async fn add_user(
        &self,
        name: &str,
        password_hash: &str,
        is_admin: bool,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;
    /// The account called `name`.
    async fn user(&self, name: &str) -> Result<Option<User>, CatalogError>;
    /// Every account, by name.
    async fn users(&self) -> Result<Vec<User>, CatalogError>;
    /// Replaces a password hash; `false` if there is no such account.
    async fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;
    /// Deletes an account with its tokens and roles; `false` if there is no such account.
    async fn remove_user(&self, name: &str, audit: &AuditEntry) -> Result<bool, CatalogError>;
    /// Stores a token and returns its id.
    async fn add_token(&self, token: &NewToken, audit: &AuditEntry) -> Result<i64, CatalogError>;
    /// The token with this public id.
    async fn token(&self, public_id: &str) -> Result<Option<TokenRecord>, CatalogError>;
    /// The token with this row id.
    async fn token_by_id(&self, id: i64) -> Result<Option<TokenRecord>, CatalogError>;
    /// Tokens, of one account or of all.
    async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, CatalogError>;
    /// Revokes a token (only if it belongs to `user`, when given); `false` if none matched.
    async fn revoke_token(
        &self,
        id: i64,
        user: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;
    /// The role of a user in a project.
    async fn role(&self, project: &str, user_id: i64) -> Result<Option<Role>, CatalogError>;
    /// Every role in a project, by user name.
    async fn roles(&self, project: &str) -> Result<Vec<(String, Role)>, CatalogError>;
    /// Gives a user a role in a project (`None` removes it). `false` if the project or the
    /// user does not exist.
    async fn set_role(
        &self,
        project: &str,
        user: &str,
        role: Option<Role>,
        audit: &AuditEntry,
    ) -> Result<bool, CatalogError>;
    /// The newest `limit` audit entries, oldest first.
    async fn audit(&self, limit: i64) -> Result<Vec<AuditEntry>, CatalogError>;
}

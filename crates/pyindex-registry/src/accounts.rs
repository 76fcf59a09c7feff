//! Account management: users, API tokens, project roles and the audit log.
//!
//! The CLI calls these as the operator (trusted: it runs on the data directory itself); the HTTP
//! admin API calls the token functions for the authenticated caller only.

use pyindex_catalog::{AuditEntry, Change, NewToken, Role, TokenRecord, User};
use pyindex_packaging::ProjectName;
use time::{Duration, OffsetDateTime};

use crate::auth::{Identity, TOKEN_USERNAME, password, token};
use crate::{Registry, RegistryError, Rejection};

/// The longest lifetime a token can be given, in days (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// Who performs an action, for the audit log.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// The operator, through the CLI on the data directory.
    Cli,
    /// An anonymous HTTP client (open mode).
    Anonymous {
        /// Client address.
        address: &'a str,
    },
    /// An authenticated HTTP client.
    User {
        /// The caller.
        identity: &'a Identity,
        /// Client address.
        address: &'a str,
    },
}

impl Actor<'_> {
    /// The name the audit log records.
    pub(crate) fn name(&self) -> String {
        match self {
            Actor::Cli => "cli".to_owned(),
            Actor::Anonymous { .. } => "anonymous".to_owned(),
            Actor::User { identity, .. } => identity.user.name.clone(),
        }
    }

    /// The client address the audit log records.
    pub(crate) fn address(&self) -> Option<String> {
        match self {
            Actor::Cli => None,
            Actor::Anonymous { address } | Actor::User { address, .. } => {
                Some((*address).to_owned())
            }
        }
    }
}

/// What a new token may do.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    /// Limit to these projects (any spelling); empty for every project.
    pub projects: Vec<String>,
    /// Read only.
    pub read_only: bool,
    /// Lifetime in days; `None` for no expiry.
    pub expires_days: Option<u32>,
    /// Free text.
    pub description: Option<String>,
}

/// A new token: its secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    /// The token's id (for `token revoke`).
    pub id: i64,
    /// The secret token.
    pub secret: String,
    /// When it expires.
    pub expires: Option<OffsetDateTime>,
}

fn check_user_name(name: &str) -> Result<(), RegistryError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name != TOKEN_USERNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(RegistryError::bad_request(format!(
            "'{}' is not a valid user name: use 1 to 64 ASCII letters, digits, '.', '_', '-' or '@' (and not '{TOKEN_USERNAME}').",
            name.escape_default()
        )))
    }
}

fn check_password(password: &str) -> Result<(), RegistryError> {
    if password.chars().count() < 8 {
        return Err(RegistryError::bad_request(
            "The password is too short: use at least 8 characters.",
        ));
    }
    Ok(())
}

fn not_found(message: String) -> RegistryError {
    RegistryError::rejected(Rejection::NotFound, message)
}

async fn hash_password(password: &str) -> Result<String, RegistryError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| RegistryError::Internal(e.to_string()))?
        .map_err(RegistryError::Internal)
}

/// One line of an htpasswd file that could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// The result of an htpasswd import.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Accounts created.
    pub added: Vec<String>,
    /// Lines not imported.
    pub skipped: Vec<SkippedLine>,
}

/// A caller authenticated with a token manages tokens only within that token's limits: not at
/// all with a read-only token, and only tokens limited to its own projects with a
/// project-limited one (`target` is the projects of the token created or revoked).
fn check_token_management(
    actor: Actor<'_>,
    target: Option<&Vec<String>>,
) -> Result<(), RegistryError> {
    let Actor::User { identity, .. } = actor else {
        return Ok(());
    };
    let Some(scope) = &identity.token else {
        return Ok(());
    };
    if scope.read_only {
        return Err(crate::auth::forbidden(
            "This token is read-only: it cannot create or revoke tokens.",
        ));
    }
    if let Some(allowed) = &scope.projects
        && !target.is_some_and(|p| p.iter().all(|n| allowed.contains(n)))
    {
        return Err(crate::auth::forbidden(format!(
            "A token limited to {} can only create or revoke tokens limited to those projects.",
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// The expiry of the token the caller authenticated with, if any.
fn caller_token_expiry(actor: Actor<'_>) -> Option<OffsetDateTime> {
    match actor {
        Actor::User { identity, .. } => identity.token.as_ref()?.expires,
        _ => None,
    }
}

impl Registry {
    /// The audit record of an action, to be written in the same transaction as the action.
    pub(crate) fn audit_entry(
        &self,
        actor: Actor<'_>,
        action: &str,
        subject: &str,
        detail: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: actor.name(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            address: actor.address(),
            detail,
        }
    }

    /// Logs an action that was committed with its audit record.
    pub(crate) fn log_audited(entry: &AuditEntry) {
        tracing::info!(
            actor = %entry.actor,
            action = %entry.action,
            subject = %entry.subject,
            address = ?entry.address,
            "audit"
        );
    }

    /// The newest `limit` audit entries, oldest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, RegistryError> {
        Ok(self.accounts.audit(limit).await?)
    }

    /// Whether any account exists.
    pub async fn has_accounts(&self) -> Result<bool, RegistryError> {
        Ok(self.accounts.user_count().await? > 0)
    }

    /// Creates an account.
    pub async fn add_user(
        &self,
        actor: Actor<'_>,
        name: &str,
        password: &str,
        is_admin: bool,
    ) -> Result<(), RegistryError> {
        check_user_name(name)?;
        check_password(password)?;
        let hash = hash_password(password).await?;
        let audit = self.audit_entry(
            actor,
            "user.add",
            name,
            is_admin.then(|| "admin".to_owned()),
        );
        if !self
            .accounts
            .add_user(name, &hash, is_admin, &audit)
            .await?
        {
            return Err(RegistryError::bad_request(format!(
                "The user '{name}' already exists."
            )));
        }
        Self::log_audited(&audit);
        self.apply_change(&Change::Account(name.to_owned()));
        Ok(())
    }

    /// Sets a new password.
    pub async fn set_password(
        &self,
        actor: Actor<'_>,
        name: &str,
        password: &str,
    ) -> Result<(), RegistryError> {
        check_password(password)?;
        let hash = hash_password(password).await?;
        let audit = self.audit_entry(actor, "user.passwd", name, None);
        if !self.accounts.set_password(name, &hash, &audit).await? {
            return Err(not_found(format!("No user named '{name}'.")));
        }
        // A new password signs the account out of every browser.
        self.browse.delete_sessions_of(name).await?;
        Self::log_audited(&audit);
        self.apply_change(&Change::Account(name.to_owned()));
        Ok(())
    }

    /// Deletes an account with its tokens and roles.
    pub async fn remove_user(&self, actor: Actor<'_>, name: &str) -> Result<(), RegistryError> {
        let audit = self.audit_entry(actor, "user.remove", name, None);
        if !self.accounts.remove_user(name, &audit).await? {
            return Err(not_found(format!("No user named '{name}'.")));
        }
        Self::log_audited(&audit);
        self.apply_change(&Change::Account(name.to_owned()));
        Ok(())
    }

    /// Every account.
    pub async fn users(&self) -> Result<Vec<User>, RegistryError> {
        Ok(self.accounts.users().await?)
    }

    /// Imports `name:hash` lines of an htpasswd file (bcrypt, `$apr1$` and `{SHA}` hashes),
    /// keeping the hashes as they are; each is upgraded to argon2id at its first login.
    pub async fn import_htpasswd(
        &self,
        actor: Actor<'_>,
        text: &str,
    ) -> Result<ImportReport, RegistryError> {
        let mut report = ImportReport::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let entry = raw.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let skip = |reason: String| SkippedLine { line, reason };
            let Some((name, hash)) = entry.split_once(':') else {
                report
                    .skipped
                    .push(skip("not a 'name:hash' line".to_owned()));
                continue;
            };
            if let Err(e) = check_user_name(name) {
                report.skipped.push(skip(e.to_string()));
                continue;
            }
            if !password::is_supported(hash) {
                report.skipped.push(skip(format!(
                    "the hash of '{name}' is not bcrypt, $apr1$ or {{SHA}} (crypt(3) and plain-text entries cannot be imported; set a password with 'pyindex user passwd')"
                )));
                continue;
            }
            let audit = self.audit_entry(actor, "user.import", name, None);
            if self.accounts.add_user(name, hash, false, &audit).await? {
                Self::log_audited(&audit);
                report.added.push(name.to_owned());
            } else {
                report
                    .skipped
                    .push(skip(format!("the user '{name}' already exists")));
            }
        }
        Ok(report)
    }

    /// Creates an API token for the account `owner`.
    ///
    /// When the caller authenticated with a token, the new token can be no broader than that
    /// one: limited to the same or fewer projects, and expiring no later.
    pub async fn create_token(
        &self,
        actor: Actor<'_>,
        owner: &str,
        request: &TokenRequest,
    ) -> Result<CreatedToken, RegistryError> {
        let user = self
            .accounts
            .user(owner)
            .await?
            .ok_or_else(|| not_found(format!("No user named '{owner}'.")))?;
        let mut projects = Vec::new();
        for raw in &request.projects {
            let name =
                ProjectName::new(raw).map_err(|e| RegistryError::bad_request(e.to_string()))?;
            projects.push(name.as_str().to_owned());
        }
        projects.sort();
        projects.dedup();
        let projects = (!projects.is_empty()).then_some(projects);
        check_token_management(actor, projects.as_ref())?;
        let created = OffsetDateTime::now_utc();
        let requested = match request.expires_days {
            Some(days) if days > MAX_TOKEN_DAYS => {
                return Err(RegistryError::bad_request(format!(
                    "A token can live at most {MAX_TOKEN_DAYS} days; leave the expiry out for a token that never expires."
                )));
            }
            Some(days) => Some(created + Duration::days(i64::from(days))),
            None => None,
        };
        // A token-authenticated caller cannot outlive its own token through a new one.
        let expires = match (requested, caller_token_expiry(actor)) {
            (Some(r), Some(limit)) => Some(r.min(limit)),
            (None, limit) => limit,
            (r, None) => r,
        };
        let read_only = request.read_only;
        let generated = token::generate();
        let detail = format!(
            "for {owner}; projects: {}; {}",
            projects
                .as_ref()
                .map_or_else(|| "all".to_owned(), |p| p.join(",")),
            if read_only { "read-only" } else { "read-write" }
        );
        let audit = self.audit_entry(actor, "token.create", &generated.public_id, Some(detail));
        let id = self
            .accounts
            .add_token(
                &NewToken {
                    public_id: generated.public_id.clone(),
                    secret_hash: generated.hash,
                    user_id: user.id,
                    projects,
                    read_only,
                    description: request.description.clone(),
                    created,
                    expires,
                },
                &audit,
            )
            .await?;
        Self::log_audited(&audit);
        Ok(CreatedToken {
            id,
            secret: generated.secret,
            expires,
        })
    }

    /// Tokens of one account, or of all.
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<TokenRecord>, RegistryError> {
        Ok(self.accounts.tokens(user).await?)
    }

    /// Revokes a token; limited to `user`'s tokens when given.
    pub async fn revoke_token(
        &self,
        actor: Actor<'_>,
        id: i64,
        user: Option<&str>,
    ) -> Result<(), RegistryError> {
        let missing = || not_found(format!("No active token with id {id}."));
        let target = self.accounts.token_by_id(id).await?.ok_or_else(missing)?;
        if user.is_some_and(|u| u != target.user_name) {
            return Err(missing());
        }
        check_token_management(actor, target.projects.as_ref())?;
        let audit = self.audit_entry(
            actor,
            "token.revoke",
            &target.public_id,
            Some(format!("id {id}")),
        );
        if !self.accounts.revoke_token(id, user, &audit).await? {
            return Err(missing());
        }
        Self::log_audited(&audit);
        Ok(())
    }

    /// Gives `user` a role in `project`, or takes it away (`None`).
    pub async fn set_role(
        &self,
        actor: Actor<'_>,
        project: &str,
        user: &str,
        role: Option<Role>,
    ) -> Result<(), RegistryError> {
        let name =
            ProjectName::new(project).map_err(|e| RegistryError::bad_request(e.to_string()))?;
        if let Actor::User { identity, .. } = actor {
            self.authorize_manage(identity, &name).await?;
        }
        let action = match role {
            Some(Role::Owner) => "role.owner",
            Some(Role::Maintainer) => "role.maintainer",
            None => "role.remove",
        };
        let audit = self.audit_entry(actor, action, &format!("{name} {user}"), None);
        if !self
            .accounts
            .set_role(name.as_str(), user, role, &audit)
            .await?
        {
            return Err(not_found(format!(
                "No project '{name}' or no user '{user}'."
            )));
        }
        Self::log_audited(&audit);
        Ok(())
    }

    /// Every role in a project.
    pub async fn roles(&self, project: &str) -> Result<Vec<(String, Role)>, RegistryError> {
        let name =
            ProjectName::new(project).map_err(|e| RegistryError::bad_request(e.to_string()))?;
        Ok(self.accounts.roles(name.as_str()).await?)
    }
}

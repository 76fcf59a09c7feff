//! Authentication and authorization: who is asking (accounts with passwords, API tokens), and
//! what they may do (access modes, project roles, token scopes).

pub mod password;
mod throttle;
pub mod token;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use pyindex_catalog::{Role, TokenRecord, Uploader, User};
use pyindex_packaging::ProjectName;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Registry, RegistryError, Rejection};
pub use throttle::Throttle;

/// The user name that marks the password as an API token (as on the public index).
pub const TOKEN_USERNAME: &str = "__token__";
/// How long a verified password is remembered, so that clients sending credentials with every
/// request (pip in `all` mode) do not pay for a slow hash each time.
const PASSWORD_CACHE_TTL: Duration = Duration::from_secs(600);

/// Random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing is unrecoverable and must not yield predictable secrets.
    if let Err(e) = getrandom::fill(&mut buf) {
        panic!("the operating system's random number generator failed: {e}");
    }
    buf
}

/// Who needs credentials for what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// Nothing needs credentials (allowed only on loopback).
    Open,
    /// Reading is anonymous; publishing and management need credentials.
    Upload,
    /// Everything needs credentials.
    All,
}

impl FromStr for AccessMode {
    type Err = String;

    fn from_str(s: &str) -> Result<AccessMode, String> {
        match s {
            "open" => Ok(AccessMode::Open),
            "upload" => Ok(AccessMode::Upload),
            "all" => Ok(AccessMode::All),
            other => Err(format!(
                "unknown access mode '{other}': use open, upload or all"
            )),
        }
    }
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessMode::Open => "open",
            AccessMode::Upload => "upload",
            AccessMode::All => "all",
        })
    }
}

/// Credentials presented by a client.
#[derive(Clone)]
pub enum Credentials {
    /// A user name and password.
    Password {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// An API token.
    Token(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
            Credentials::Token(_) => f.write_str("Token(..)"),
        }
    }
}

impl Credentials {
    /// Credentials from a Basic user name and password: the user `__token__` means the
    /// password is a token.
    pub fn basic(user: &str, password: &str) -> Credentials {
        if user == TOKEN_USERNAME {
            Credentials::Token(password.trim().to_owned())
        } else {
            Credentials::Password {
                user: user.to_owned(),
                password: password.to_owned(),
            }
        }
    }
}

/// The limits of the token a request was authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScope {
    /// The token's id.
    pub id: i64,
    /// Projects it is limited to; `None` for all.
    pub projects: Option<Vec<String>>,
    /// Whether it may only read.
    pub read_only: bool,
    /// When it expires.
    pub expires: Option<OffsetDateTime>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The account.
    pub user: User,
    /// The token used, if any (a password login has no limits of its own).
    pub token: Option<TokenScope>,
}

impl Identity {
    /// Refuses if the token used may not write to `project`.
    pub fn check_token_may_write(&self, project: &ProjectName) -> Result<(), RegistryError> {
        let Some(scope) = &self.token else {
            return Ok(());
        };
        if scope.read_only {
            return Err(forbidden(
                "This token is read-only: create a token without --read-only to publish or manage projects.",
            ));
        }
        match &scope.projects {
            Some(projects) if !projects.iter().any(|p| p == project.as_str()) => {
                Err(forbidden(format!(
                    "This token is limited to the project(s) {} and may not act on '{project}'.",
                    projects.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }
}

/// A 403 refusal.
pub(crate) fn forbidden(message: impl Into<String>) -> RegistryError {
    RegistryError::rejected(Rejection::Forbidden, message)
}

fn unauthorized(message: impl Into<String>) -> RegistryError {
    RegistryError::rejected(Rejection::Unauthorized, message)
}

/// Authentication state shared by the clones of a registry.
pub struct AuthState {
    throttle: Throttle,
    /// Password hashes run at most this many at a time: each argon2 check takes ~19 MiB and a
    /// core for ~0.1 s, so an unbounded burst could exhaust the server.
    verifications: tokio::sync::Semaphore,
    /// Remembered password checks, keyed by a keyed hash of user and password.
    passwords: Mutex<HashMap<[u8; 32], (User, Instant)>>,
    /// Random per-process key of that hash, so a memory dump gives no offline guessing oracle.
    password_key: [u8; 32],
    /// Bumped whenever remembered checks are forgotten; a check that started before a bump is
    /// not remembered.
    epoch: AtomicU64,
}

impl Default for AuthState {
    fn default() -> AuthState {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        AuthState {
            throttle: Throttle::default(),
            verifications: tokio::sync::Semaphore::new(cores),
            passwords: Mutex::default(),
            password_key: random_bytes::<32>(),
            epoch: AtomicU64::new(0),
        }
    }
}

impl AuthState {
    fn password_key(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.password_key);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }
}

impl Registry {
    /// Checks credentials. `address` identifies the client for throttling.
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
        address: &str,
    ) -> Result<Identity, RegistryError> {
        self.check_throttle(address)?;
        let result = match credentials {
            Credentials::Token(token) => self.authenticate_token(token).await,
            Credentials::Password { user, password } => {
                self.authenticate_password(user, password, address).await
            }
        };
        if let Err(RegistryError::Rejected {
            rejection: Rejection::Unauthorized,
            ..
        }) = &result
        {
            self.auth.throttle.failed(address);
            tracing::warn!(%address, kind = ?credentials, "failed login");
        }
        result
    }

    async fn authenticate_token(&self, token: &str) -> Result<Identity, RegistryError> {
        let invalid = || {
            unauthorized(
                "Invalid API token: check that it was copied whole and has not been revoked.",
            )
        };
        let Some(public_id) = token::public_id(token) else {
            return Err(invalid());
        };
        let Some(record) = self.accounts.token(public_id).await? else {
            return Err(invalid());
        };
        if !token::matches(token, &record.secret_hash) {
            return Err(invalid());
        }
        if record.revoked.is_some() {
            return Err(unauthorized(
                "This API token has been revoked: create a new one.",
            ));
        }
        if record
            .expires
            .is_some_and(|e| e <= OffsetDateTime::now_utc())
        {
            return Err(unauthorized(
                "This API token has expired: create a new one.",
            ));
        }
        let user = self
            .accounts
            .user(&record.user_name)
            .await?
            .ok_or_else(invalid)?;
        Ok(Identity {
            user,
            token: Some(scope(&record)),
        })
    }

    async fn authenticate_password(
        &self,
        name: &str,
        password: &str,
        address: &str,
    ) -> Result<Identity, RegistryError> {
        let key = self.auth.password_key(name, password);
        if let Ok(cache) = self.auth.passwords.lock()
            && let Some((user, at)) = cache.get(&key)
            && at.elapsed() < PASSWORD_CACHE_TTL
        {
            return Ok(Identity {
                user: user.clone(),
                token: None,
            });
        }
        let epoch = self.auth.epoch.load(Ordering::Acquire);
        let _turn = self
            .auth
            .verifications
            .acquire()
            .await
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        // Failures may have piled up while this check waited for its turn.
        self.check_throttle(address)?;
        let invalid = || unauthorized("Invalid user name or password.");
        let user = self.accounts.user(name).await?;
        // Verify against a dummy hash for unknown users too, so timing does not reveal names.
        let stored = user
            .as_ref()
            .map_or_else(|| DUMMY_HASH.to_owned(), |u| u.password_hash.clone());
        let candidate = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || password::verify(&candidate, &stored))
            .await
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        let Some(user) = user.filter(|_| ok) else {
            return Err(invalid());
        };
        if password::needs_upgrade(&user.password_hash) {
            self.upgrade_password_hash(&user.name, password, address)
                .await;
        }
        if let Ok(mut cache) = self.auth.passwords.lock()
            && self.auth.epoch.load(Ordering::Acquire) == epoch
        {
            cache.retain(|_, (_, at)| at.elapsed() < PASSWORD_CACHE_TTL);
            cache.insert(key, (user.clone(), Instant::now()));
        }
        Ok(Identity { user, token: None })
    }

    /// Re-hashes an imported (htpasswd) password with argon2id after a successful login.
    async fn upgrade_password_hash(&self, name: &str, password: &str, address: &str) {
        let password = password.to_owned();
        let hashed = tokio::task::spawn_blocking(move || password::hash(&password)).await;
        let audit = pyindex_catalog::AuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: name.to_owned(),
            action: "user.rehash".to_owned(),
            subject: name.to_owned(),
            address: Some(address.to_owned()),
            detail: Some("imported password hash upgraded to argon2id".to_owned()),
        };
        if let Ok(Ok(hash)) = hashed
            && let Err(e) = self.accounts.set_password(name, &hash, &audit).await
        {
            tracing::warn!(error = %e, user = name, "could not upgrade an imported password hash");
        }
    }

    /// Forgets remembered password checks of the account `name`, or of every account.
    pub(crate) fn forget_credentials(&self, name: Option<&str>) {
        if let Ok(mut cache) = self.auth.passwords.lock() {
            self.auth.epoch.fetch_add(1, Ordering::AcqRel);
            match name {
                Some(name) => cache.retain(|_, (user, _)| user.name != name),
                None => cache.clear(),
            }
        }
    }

    fn check_throttle(&self, address: &str) -> Result<(), RegistryError> {
        self.auth.throttle.check(address).map_err(|wait| {
            RegistryError::rejected(
                Rejection::TooManyRequests {
                    retry_after_secs: wait.as_secs().max(1),
                },
                "Too many failed logins from this address; try again later.",
            )
        })
    }

    /// Refuses anonymous callers when the access mode requires credentials to read.
    pub fn authorize_read(&self, identity: Option<&Identity>) -> Result<(), RegistryError> {
        match (self.access_mode, identity) {
            (AccessMode::All, None) => {
                Err(unauthorized("This index requires credentials to read."))
            }
            _ => Ok(()),
        }
    }

    /// Refuses, before any work is done, a caller who cannot change anything: an anonymous one
    /// outside the open mode, or one holding a read-only token.
    pub fn authorize_write(&self, identity: Option<&Identity>) -> Result<(), RegistryError> {
        match identity {
            None if self.access_mode != AccessMode::Open => Err(unauthorized(
                "This requires credentials: use an API token (user name __token__) or an account.",
            )),
            Some(Identity {
                token: Some(scope), ..
            }) if scope.read_only => Err(forbidden(
                "This token is read-only: create a token without --read-only to publish or manage projects.",
            )),
            _ => Ok(()),
        }
    }

    /// Checks, before the file is examined, that the caller may publish to `project`. Returns
    /// the uploader to record (none in open mode). The catalog checks the role again inside the
    /// publishing transaction, so a concurrent first upload cannot slip past.
    pub async fn authorize_publish(
        &self,
        identity: Option<&Identity>,
        project: &ProjectName,
    ) -> Result<Option<Uploader>, RegistryError> {
        if self.access_mode == AccessMode::Open {
            return Ok(None);
        }
        let identity = identity.ok_or_else(|| unauthorized("Publishing to this index requires credentials: use an API token (user name __token__) or an account."))?;
        identity.check_token_may_write(project)?;
        let user = &identity.user;
        if !user.is_admin
            && self
                .accounts
                .role(project.as_str(), user.id)
                .await?
                .is_none()
            && self.catalog.project(project.as_str()).await?.is_some()
        {
            return Err(self.refuse_publish(&user.name, project).await);
        }
        Ok(Some(Uploader { user_id: user.id }))
    }

    /// The refusal for a user with no role in an existing project. A project published while
    /// the index needed no credentials has no owner, and the message says how it gets one.
    pub(crate) async fn refuse_publish(&self, user: &str, project: &ProjectName) -> RegistryError {
        match self.accounts.roles(project.as_str()).await {
            Ok(roles) if roles.is_empty() => forbidden(format!(
                "The project '{project}' has no owner yet (it was published while the index \
                 needed no credentials, or imported), so only admins may publish to it. An admin can make \
                 '{user}' its owner with: pyindex project add-owner {project} {user}"
            )),
            _ => forbidden(format!(
                "User '{user}' is not an owner or maintainer of the project '{project}', so may \
                 not publish to it. An owner can add you with: pyindex project add-maintainer \
                 {project} {user}"
            )),
        }
    }

    /// Checks that the caller may manage `project` (yank, roles): an owner or an admin.
    pub async fn authorize_manage(
        &self,
        identity: &Identity,
        project: &ProjectName,
    ) -> Result<(), RegistryError> {
        identity.check_token_may_write(project)?;
        let user = &identity.user;
        if user.is_admin
            || self.accounts.role(project.as_str(), user.id).await? == Some(Role::Owner)
        {
            Ok(())
        } else {
            Err(forbidden(format!(
                "User '{}' is not an owner of the project '{project}', so may not manage it.",
                user.name
            )))
        }
    }
}

fn scope(record: &TokenRecord) -> TokenScope {
    TokenScope {
        id: record.id,
        projects: record.projects.clone(),
        read_only: record.read_only,
        expires: record.expires,
    }
}

/// An argon2id hash of a random string, verified against for unknown users.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$G7YiDSRhY9nNaCjqQNUVmrZKCcrmmWmmgl3g1q4I1bw";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_is_a_real_argon2id_hash() {
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!password::verify("anything", DUMMY_HASH));
    }

    #[test]
    fn basic_credentials_with_token_user_are_tokens() {
        assert!(
            matches!(Credentials::basic("__token__", " pyindex_x \n"), Credentials::Token(t) if t == "pyindex_x")
        );
        assert!(matches!(
            Credentials::basic("alice", "pw"),
            Credentials::Password { .. }
        ));
        assert_eq!(
            format!("{:?}", Credentials::basic("alice", "secret")),
            "Password { user: \"alice\", .. }"
        );
    }

    #[test]
    fn access_modes_parse() {
        assert_eq!("all".parse::<AccessMode>(), Ok(AccessMode::All));
        assert!("everything".parse::<AccessMode>().is_err());
    }
}

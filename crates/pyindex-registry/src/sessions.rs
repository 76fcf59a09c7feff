//! Browser sessions: signing in with a password gives a random session id (kept by the browser
//! in a cookie) and an anti-forgery token for its forms. The catalog stores only a SHA-256 of
//! the id, so a copy of the database signs no one in, and deleting the row (signing out)
//! revokes the session at once.

use pyindex_catalog::NewSession;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::auth::{Identity, TOKEN_USERNAME, random_bytes};
use crate::{Credentials, Registry, RegistryError, Rejection};

/// How long a browser session lasts.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// A new session, to hand to the browser.
#[derive(Debug, Clone)]
pub struct NewBrowserSession {
    /// The secret session id (the cookie's value).
    pub id: String,
    /// When it stops working.
    pub expires: OffsetDateTime,
}

/// A valid session.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// Who it belongs to.
    pub identity: Identity,
    /// The token every form that changes something must carry.
    pub csrf: String,
}

fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Registry {
    /// Checks a user name and password (throttled per `address` like every password check)
    /// and opens a session for the account.
    pub async fn sign_in(
        &self,
        user: &str,
        password: &str,
        address: &str,
    ) -> Result<NewBrowserSession, RegistryError> {
        if user == TOKEN_USERNAME {
            return Err(RegistryError::rejected(
                Rejection::Unauthorized,
                "Sign in with your user name and password; API tokens are for tools.",
            ));
        }
        let identity = self
            .authenticate(&Credentials::basic(user, password), address)
            .await?;
        let id = hex::encode(random_bytes::<32>());
        let created = OffsetDateTime::now_utc();
        let expires = created + SESSION_LIFETIME;
        self.browse
            .create_session(&NewSession {
                id_hash: id_hash(&id),
                user_id: identity.user.id,
                csrf: hex::encode(random_bytes::<32>()),
                created,
                expires,
            })
            .await?;
        Ok(NewBrowserSession { id, expires })
    }

    /// The unexpired session with this id, if any.
    pub async fn browser_session(&self, id: &str) -> Result<Option<BrowserSession>, RegistryError> {
        // Ids are 64 hex digits; anything else is not looked up.
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        Ok(self
            .browse
            .session(&id_hash(id))
            .await?
            .map(|record| BrowserSession {
                identity: Identity {
                    user: record.user,
                    token: None,
                },
                csrf: record.csrf,
            }))
    }

    /// Ends a session (signing out); ending an unknown one is not an error.
    pub async fn sign_out(&self, id: &str) -> Result<(), RegistryError> {
        self.browse.delete_session(&id_hash(id)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::Actor;
    use crate::test_support::Harness;

    #[tokio::test]
    async fn sessions_open_end_and_end_with_a_new_password() {
        let h = Harness::new().await;
        h.registry
            .add_user(Actor::Cli, "alice", "first-Pw-123", false)
            .await
            .unwrap();
        assert!(h.registry.sign_in("alice", "wrong", "a").await.is_err());
        assert!(h.registry.sign_in("__token__", "x", "a").await.is_err());
        let first = h
            .registry
            .sign_in("alice", "first-Pw-123", "a")
            .await
            .unwrap();
        let second = h
            .registry
            .sign_in("alice", "first-Pw-123", "a")
            .await
            .unwrap();
        assert_ne!(first.id, second.id);
        let session = h
            .registry
            .browser_session(&first.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(session.identity.user.name, "alice");
        assert_eq!(session.csrf.len(), 64);
        assert!(
            h.registry
                .browser_session("nonsense")
                .await
                .unwrap()
                .is_none()
        );
        h.registry.sign_out(&first.id).await.unwrap();
        assert!(
            h.registry
                .browser_session(&first.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            h.registry
                .browser_session(&second.id)
                .await
                .unwrap()
                .is_some()
        );
        h.registry
            .set_password(Actor::Cli, "alice", "second-Pw-456")
            .await
            .unwrap();
        assert!(
            h.registry
                .browser_session(&second.id)
                .await
                .unwrap()
                .is_none()
        );
    }
}

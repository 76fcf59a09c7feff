//! Registry errors: a refusal the user can act on, or an internal fault.

/// Why a request was refused. The HTTP layer maps each to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The request is malformed or breaks a rule (400).
    BadRequest,
    /// Credentials are missing or wrong (401).
    Unauthorized,
    /// The caller is known but lacks the right (403).
    Forbidden,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The file name is taken by other content (409).
    Conflict,
    /// The action is no longer supported (410).
    Gone,
    /// The upload exceeds the size limit (413).
    TooLarge,
    /// An upstream index could not be asked and nothing is cached (502).
    BadGateway,
    /// Too many failed logins from this address (429).
    TooManyRequests {
        /// Seconds until the caller may try again.
        retry_after_secs: u64,
    },
}

/// An error from a registry operation.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The request was refused; `message` says why and what to do, in one line.
    #[error("{message}")]
    Rejected {
        /// The kind of refusal.
        rejection: Rejection,
        /// A one-line message for the user.
        message: String,
    },
    /// The server failed; the request may be retried.
    #[error("internal error: {0}")]
    Internal(String),
    /// Something the request needs cannot be reached now (the catalog database): nothing was
    /// changed, and the same request may succeed later. `message` says so, in one line.
    #[error("{message}")]
    Unavailable {
        /// A one-line message for the user.
        message: String,
    },
}

impl RegistryError {
    /// A refusal of the given kind.
    pub fn rejected(rejection: Rejection, message: impl Into<String>) -> RegistryError {
        RegistryError::Rejected {
            rejection,
            message: message.into(),
        }
    }

    /// A 400-style refusal.
    pub fn bad_request(message: impl Into<String>) -> RegistryError {
        RegistryError::rejected(Rejection::BadRequest, message)
    }
}

impl From<pyindex_catalog::CatalogError> for RegistryError {
    fn from(e: pyindex_catalog::CatalogError) -> RegistryError {
        match e {
            pyindex_catalog::CatalogError::Unavailable(cause) => RegistryError::Unavailable {
                message: format!(
                    "The catalog database is unreachable ({cause}); nothing was changed, retry \
                     later."
                ),
            },
            other => RegistryError::Internal(other.to_string()),
        }
    }
}

impl From<pyindex_storage::StorageError> for RegistryError {
    fn from(e: pyindex_storage::StorageError) -> RegistryError {
        match e {
            pyindex_storage::StorageError::TooLarge { limit } => RegistryError::rejected(
                Rejection::TooLarge,
                format!("File too large: the limit of this index is {limit} bytes."),
            ),
            other => RegistryError::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RegistryError;
    use pyindex_catalog::CatalogError;

    #[test]
    fn an_unreachable_database_is_unavailable_with_a_message_to_retry() {
        let e = RegistryError::from(CatalogError::Unavailable(sqlx::Error::PoolTimedOut));
        let RegistryError::Unavailable { message } = &e else {
            panic!("{e:?}");
        };
        assert!(
            message.starts_with("The catalog database is unreachable (")
                && message.ends_with("retry later."),
            "{message}"
        );
        let e = RegistryError::from(CatalogError::Corrupt("x".into()));
        assert!(matches!(e, RegistryError::Internal(_)), "{e:?}");
    }
}

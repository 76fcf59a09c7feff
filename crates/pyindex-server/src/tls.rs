//! TLS for the listener: a certificate chain and key from PEM files, reloaded on SIGHUP.
//!
//! rustls with the aws-lc-rs provider (the provider reqwest and sqlx use too, so the binary has
//! one crypto backend), TLS 1.2 and 1.3, ALPN `http/1.1` (the listener speaks HTTP/1.1 only).
//! A reload that fails (a missing file, a key that does not match) keeps the configuration in
//! force and logs why, so a botched certificate rotation does not take the index down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS configuration in force and the files it comes from.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    acceptor: RwLock<TlsAcceptor>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate chain in `cert` and the private key in `key` (both PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let config = server_config(cert, key)?;
        Ok(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            acceptor: RwLock::new(TlsAcceptor::from(Arc::new(config))),
        })
    }

    /// Reads both files again; on success new connections use them, on failure nothing
    /// changes and the error says why.
    pub fn reload(&self) -> Result<(), String> {
        let config = server_config(&self.cert, &self.key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        match self.acceptor.write() {
            Ok(mut current) => *current = acceptor,
            Err(poisoned) => *poisoned.into_inner() = acceptor,
        }
        Ok(())
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        match self.acceptor.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "could not read the TLS certificate file {}: {e} (it must hold the PEM \
                 certificate chain, server certificate first)",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "the TLS certificate file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert.display()
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "could not read the TLS private key file {}: {e} (it must hold one PEM private \
             key: PKCS#8, PKCS#1 RSA or SEC1 EC)",
            key.display()
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("could not set up TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            format!(
                "the TLS certificate {} and key {} cannot be used together: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Reloads `tls` (when there is one) on every SIGHUP, logging the outcome; without TLS a
/// SIGHUP is logged and ignored instead of ending the process. Runs until the process ends.
pub async fn reload_on_hangup(tls: Option<Arc<Tls>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = match signal(SignalKind::hangup()) {
        Ok(hangups) => hangups,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; TLS files will not be reloaded");
            return;
        }
    };
    while hangups.recv().await.is_some() {
        match &tls {
            None => tracing::info!("SIGHUP received; nothing to reload (TLS is off)"),
            Some(tls) => match tls.reload() {
                Ok(()) => {
                    tracing::info!(cert = %tls.cert.display(), "TLS certificate and key reloaded")
                }
                Err(error) => tracing::error!(
                    %error,
                    "TLS reload failed; still serving the previous certificate"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_empty_files_are_explained() {
        let dir = tempfile_dir();
        let missing = Tls::load(&dir.join("nope.pem"), &dir.join("key.pem")).unwrap_err();
        assert!(missing.contains("TLS certificate file"), "{missing}");
        std::fs::write(dir.join("empty.pem"), "not pem\n").unwrap();
        let empty = Tls::load(&dir.join("empty.pem"), &dir.join("key.pem")).unwrap_err();
        assert!(empty.contains("holds no PEM certificate"), "{empty}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pyindex-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

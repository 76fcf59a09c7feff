//! Settings: flags, then environment variables (both handled by clap), then the TOML file, then
//! defaults. A key in the file that pyindex does not know is an error, not silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use pyindex_registry::AccessMode;

use crate::size::ByteSize;

/// Default listen address: loopback only, the port the hand-made indexes use.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9001";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA: &str = "pyindex-data";
/// Default upload limit.
pub const DEFAULT_MAX_UPLOAD_SIZE: u64 = 1 << 30;
/// Default memory for caching small files.
pub const DEFAULT_FILE_CACHE: u64 = 64 << 20;

/// The TOML configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen = "0.0.0.0:9001"`
    pub listen: Option<SocketAddr>,
    /// `data = "/var/lib/pyindex"`
    pub data: Option<PathBuf>,
    /// `max_upload_size = "2GiB"` or a number of bytes
    pub max_upload_size: Option<ByteSize>,
    /// `file_cache = "64MiB"` (0 turns the cache off)
    pub file_cache: Option<ByteSize>,
    /// `auth = "upload"` (open, upload or all)
    #[serde(default, deserialize_with = "access_mode")]
    pub auth: Option<AccessMode>,
}

fn access_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<AccessMode>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

impl FileConfig {
    /// Reads the file, or returns an empty configuration when no file was given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("invalid configuration file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key() {
        let config: FileConfig = toml::from_str(
            "listen = \"0.0.0.0:8080\"\ndata = \"/srv/pyindex\"\nmax_upload_size = \"2GiB\"\nauth = \"all\"\n",
        )
        .unwrap();
        assert_eq!(config.listen, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(config.data, Some(PathBuf::from("/srv/pyindex")));
        assert_eq!(config.max_upload_size, Some(ByteSize(2 << 30)));
        assert_eq!(config.auth, Some(AccessMode::All));
        assert!(toml::from_str::<FileConfig>("auth = \"none\"").is_err());
        let bytes: FileConfig = toml::from_str("max_upload_size = 1024").unwrap();
        assert_eq!(bytes.max_upload_size, Some(ByteSize(1024)));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<FileConfig>("listn = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}

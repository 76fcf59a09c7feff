//! Settings: flags, then environment variables (both handled by clap), then the TOML file, then
//! defaults. A key in the file that pyindex does not know is an error, not silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use pyindex_registry::AccessMode;
use pyindex_server::MetricsAccess;

use crate::cli::{LogFormat, Switch};
use crate::data_dir::{Database, StorageUrl};

use crate::duration::Timeout;
use crate::size::ByteSize;

/// Default listen address: loopback only, the port the hand-made indexes use.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9001";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA: &str = "pyindex-data";
/// Default upload limit.
pub const DEFAULT_MAX_UPLOAD_SIZE: u64 = 1 << 30;
/// Default memory for caching small files.
pub const DEFAULT_FILE_CACHE: u64 = 64 << 20;

/// Default time an upstream has to answer.
pub const DEFAULT_UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Default time a proxied page is served before it is revalidated.
pub const DEFAULT_UPSTREAM_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// Default disk space for cached upstream files.
pub const DEFAULT_UPSTREAM_CACHE_SIZE: u64 = 10 << 30;

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
    /// `storage_redirect = true` (with `storage = "s3://..."` only)
    pub storage_redirect: Option<bool>,
    /// `storage_redirect_expiry = "5m"`
    pub storage_redirect_expiry: Option<Timeout>,
    /// `auth = "upload"` (open, upload or all)
    #[serde(default, deserialize_with = "access_mode")]
    pub auth: Option<AccessMode>,
    /// `header_timeout = "30s"` (or a number of seconds)
    pub header_timeout: Option<Timeout>,
    /// `keep_alive_timeout = "15s"`
    pub keep_alive_timeout: Option<Timeout>,
    /// `body_timeout = "30s"`
    pub body_timeout: Option<Timeout>,
    /// `shutdown_timeout = "10s"`
    pub shutdown_timeout: Option<Timeout>,
    /// `max_connections = 4096`
    pub max_connections: Option<usize>,
    /// `allowed_host = ["pyindex.internal"]` (or one name as a string)
    #[serde(default, deserialize_with = "one_or_many")]
    pub allowed_host: Vec<String>,
    /// `tls_cert = "/etc/pyindex/cert.pem"`
    pub tls_cert: Option<PathBuf>,
    /// `tls_key = "/etc/pyindex/key.pem"`
    pub tls_key: Option<PathBuf>,
    /// `public_url = "https://pypi.example.internal"`
    pub public_url: Option<String>,
    /// `trusted_proxy = ["10.0.0.0/8"]` (or one as a string)
    #[serde(default, deserialize_with = "one_or_many")]
    pub trusted_proxy: Vec<String>,
    /// `metrics = "private"` (public, private or off)
    #[serde(default, deserialize_with = "metrics_access")]
    pub metrics: Option<MetricsAccess>,
    /// `log_format = "json"` (human or json)
    pub log_format: Option<LogFormat>,
    /// `request_log = "off"` (on or off)
    pub request_log: Option<Switch>,
    /// `upstream = ["http://mirror.internal/simple/"]` (or one as a string), in priority order
    #[serde(default, deserialize_with = "one_or_many")]
    pub upstream: Vec<String>,
    /// `upstream_timeout = "10s"`
    pub upstream_timeout: Option<Timeout>,
    /// `upstream_ttl = "10m"`
    pub upstream_ttl: Option<Timeout>,
    /// `upstream_cache_size = "10GiB"`
    pub upstream_cache_size: Option<ByteSize>,
    /// `upstream_min_age = "7d"`
    pub upstream_min_age: Option<Timeout>,
    /// `upstream_allow_unknown_age = true`
    pub upstream_allow_unknown_age: Option<bool>,
    /// `upstream_min_age_exempt = ["certifi"]` (or one as a string)
    #[serde(default, deserialize_with = "one_or_many")]
    pub upstream_min_age_exempt: Vec<String>,
    /// `database = "postgres://pyindex:secret@db.internal/pyindex"` (or `sqlite://PATH`)
    #[serde(default, deserialize_with = "database")]
    pub database: Option<Database>,
    /// `database_pool_size = 10`
    pub database_pool_size: Option<u32>,
    /// `database_acquire_timeout = "5s"`
    pub database_acquire_timeout: Option<Timeout>,
    /// `storage = "s3://pyindex-files/prod"` (or `file://PATH`)
    #[serde(default, deserialize_with = "storage")]
    pub storage: Option<StorageUrl>,
    /// `s3_endpoint = "http://127.0.0.1:8333"`
    #[serde(default, deserialize_with = "endpoint")]
    pub s3_endpoint: Option<String>,
    /// `s3_region = "eu-west-1"`
    pub s3_region: Option<String>,
    /// `s3_path_style = true`
    pub s3_path_style: Option<bool>,
    /// `s3_access_key_id = "..."` (AWS_ACCESS_KEY_ID wins)
    pub s3_access_key_id: Option<String>,
    /// `s3_secret_access_key = "..."` (AWS_SECRET_ACCESS_KEY wins with AWS_ACCESS_KEY_ID)
    pub s3_secret_access_key: Option<Secret>,
}

/// A secret setting: its debug output hides it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

fn storage<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<StorageUrl>, D::Error> {
    let text = String::deserialize(d)?;
    StorageUrl::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn endpoint<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(d)?;
    crate::cli::parse_endpoint(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn database<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Database>, D::Error> {
    let text = String::deserialize(d)?;
    Database::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn metrics_access<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<MetricsAccess>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(name) => vec![name],
        OneOrMany::Many(names) => names,
    })
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
    fn reads_connection_settings() {
        let config: FileConfig = toml::from_str(
            "header_timeout = \"2s\"\nkeep_alive_timeout = 5\nbody_timeout = \"1m\"\nshutdown_timeout = \"3s\"\n\
             max_connections = 500\nallowed_host = [\"a.internal\", \"b.internal\"]\n",
        )
        .unwrap();
        assert_eq!(
            config.header_timeout,
            Some(Timeout(std::time::Duration::from_secs(2)))
        );
        assert_eq!(
            config.keep_alive_timeout,
            Some(Timeout(std::time::Duration::from_secs(5)))
        );
        assert_eq!(
            config.body_timeout,
            Some(Timeout(std::time::Duration::from_secs(60)))
        );
        assert_eq!(
            config.shutdown_timeout,
            Some(Timeout(std::time::Duration::from_secs(3)))
        );
        assert_eq!(config.max_connections, Some(500));
        assert_eq!(config.allowed_host, ["a.internal", "b.internal"]);
        let one: FileConfig = toml::from_str("allowed_host = \"a.internal\"").unwrap();
        assert_eq!(one.allowed_host, ["a.internal"]);
        assert!(FileConfig::default().allowed_host.is_empty());
        assert!(toml::from_str::<FileConfig>("header_timeout = \"soon\"").is_err());
    }

    #[test]
    fn reads_deploy_settings() {
        let config: FileConfig = toml::from_str(
            "tls_cert = \"/etc/pyindex/cert.pem\"\ntls_key = \"/etc/pyindex/key.pem\"\n\
             public_url = \"https://pypi.internal\"\ntrusted_proxy = \"10.0.0.0/8\"\n",
        )
        .unwrap();
        assert_eq!(
            config.tls_cert,
            Some(PathBuf::from("/etc/pyindex/cert.pem"))
        );
        assert_eq!(config.tls_key, Some(PathBuf::from("/etc/pyindex/key.pem")));
        assert_eq!(config.public_url.as_deref(), Some("https://pypi.internal"));
        assert_eq!(config.trusted_proxy, ["10.0.0.0/8"]);
    }

    #[test]
    fn reads_service_settings() {
        let config: FileConfig =
            toml::from_str("metrics = \"private\"\nlog_format = \"json\"\n").unwrap();
        assert_eq!(config.metrics, Some(MetricsAccess::Private));
        assert_eq!(config.log_format, Some(LogFormat::Json));
        assert!(toml::from_str::<FileConfig>("metrics = \"secret\"").is_err());
        assert!(toml::from_str::<FileConfig>("log_format = \"xml\"").is_err());
        let config: FileConfig = toml::from_str("request_log = \"off\"").unwrap();
        assert_eq!(config.request_log, Some(Switch::Off));
        assert!(toml::from_str::<FileConfig>("request_log = \"maybe\"").is_err());
    }

    #[test]
    fn reads_database_settings() {
        let config: FileConfig = toml::from_str(
            "database = \"postgres://p:s@127.0.0.1:5432/pyindex\"\ndatabase_pool_size = 20\n\
             database_acquire_timeout = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(
            config.database,
            Some(Database::Postgres(
                "postgres://p:s@127.0.0.1:5432/pyindex".into()
            ))
        );
        assert_eq!(config.database_pool_size, Some(20));
        assert_eq!(
            config.database_acquire_timeout,
            Some(Timeout(std::time::Duration::from_secs(2)))
        );
        let err = toml::from_str::<FileConfig>("database = \"mysql://x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sqlite://PATH or postgres://"), "{err}");
    }

    #[test]
    fn reads_storage_settings() {
        let config: FileConfig = toml::from_str(
            "storage = \"s3://pyindex-files/prod/\"\ns3_endpoint = \"http://127.0.0.1:8333/\"\n\
             s3_region = \"eu-west-1\"\ns3_path_style = false\n\
             s3_access_key_id = \"AKID\"\ns3_secret_access_key = \"s3cr3t-value\"\n",
        )
        .unwrap();
        assert_eq!(
            config.storage,
            Some(StorageUrl::S3 {
                bucket: "pyindex-files".into(),
                prefix: "prod".into()
            })
        );
        assert_eq!(config.s3_endpoint.as_deref(), Some("http://127.0.0.1:8333"));
        assert_eq!(config.s3_region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.s3_path_style, Some(false));
        assert_eq!(config.s3_access_key_id.as_deref(), Some("AKID"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        let file: FileConfig = toml::from_str("storage = \"file:///srv/files\"").unwrap();
        assert_eq!(
            file.storage,
            Some(StorageUrl::File(PathBuf::from("/srv/files")))
        );
        for (bad, says) in [
            (
                "storage = \"gs://bucket\"",
                "file://PATH or s3://BUCKET/PREFIX",
            ),
            (
                "storage = \"s3://Bad_Bucket/x\"",
                "is not an S3 bucket name",
            ),
            (
                "storage = \"s3://bucket/a/../b\"",
                "is not a usable key prefix",
            ),
            ("s3_endpoint = \"127.0.0.1:8333\"", "http://HOST:PORT"),
        ] {
            let err = toml::from_str::<FileConfig>(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn reads_upstream_settings() {
        let config: FileConfig = toml::from_str(
            "upstream = [\"http://127.0.0.1:1/simple/\", \"http://127.0.0.1:2/simple/\"]\n\
             upstream_timeout = \"3s\"\nupstream_ttl = \"5m\"\nupstream_cache_size = \"1GiB\"\n",
        )
        .unwrap();
        assert_eq!(config.upstream.len(), 2);
        assert_eq!(
            config.upstream_ttl,
            Some(Timeout(std::time::Duration::from_secs(300)))
        );
        assert_eq!(
            config.upstream_timeout,
            Some(Timeout(std::time::Duration::from_secs(3)))
        );
        assert_eq!(config.upstream_cache_size, Some(ByteSize(1 << 30)));
        let cooldown: FileConfig = toml::from_str(
            "upstream_min_age = \"7d\"\nupstream_allow_unknown_age = true\nupstream_min_age_exempt = \"certifi\"\n",
        )
        .unwrap();
        assert_eq!(
            cooldown.upstream_min_age,
            Some(Timeout(std::time::Duration::from_secs(7 * 86_400)))
        );
        assert_eq!(cooldown.upstream_allow_unknown_age, Some(true));
        assert_eq!(cooldown.upstream_min_age_exempt, ["certifi"]);
        assert!(FileConfig::default().upstream.is_empty());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = toml::from_str::<FileConfig>("listn = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field"), "{err}");
    }
}

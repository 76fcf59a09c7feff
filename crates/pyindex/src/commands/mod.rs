//! The subcommands.

mod accounts;
mod backup;
mod cache;
mod docs;
mod import;
mod migrate;
mod mirror;
mod serve;
mod upstream;
mod verify;
mod yank;

use std::path::{Path, PathBuf};

use crate::cli::{
    CacheCommand, Cli, Command, ProjectCommand, TokenCommand, UpstreamCommand, UserCommand,
};
use crate::config::{DEFAULT_DATA, FileConfig};
use crate::data_dir::{self, Database, Place, Storage, StorageUrl};
use pyindex_storage::S3Config;

/// For a command that works only on an existing index, an example of it (after `pyindex`) for
/// the message that refuses a data directory without a catalog; `None` for the commands that may
/// start a new data directory: `serve`, and `user add` and `user import-htpasswd`, which create
/// the first accounts before the first start.
fn needs_catalog(command: &Command) -> Option<String> {
    Some(match command {
        Command::Serve(_)
        | Command::Restore { .. }
        | Command::Completions { .. }
        | Command::Man { .. }
        | Command::Import { .. }
        | Command::Mirror(_)
        | Command::User(UserCommand::Add { .. } | UserCommand::ImportHtpasswd { .. }) => {
            return None;
        }
        Command::Verify { .. } => "verify".to_owned(),
        Command::Migrate(_) => "migrate --to-database URL --to-storage URL".to_owned(),
        Command::Backup { dest } => format!("backup {}", dest.display()),
        Command::Yank {
            project, version, ..
        } => format!("yank {project} {version}"),
        Command::Unyank { project, version } => format!("unyank {project} {version}"),
        Command::User(UserCommand::Passwd { name, .. }) => format!("user passwd {name}"),
        Command::User(UserCommand::Remove { name }) => format!("user remove {name}"),
        Command::User(UserCommand::List) => "user list".to_owned(),
        Command::Token(TokenCommand::Create { user, .. }) => format!("token create --user {user}"),
        Command::Token(TokenCommand::List { .. }) => "token list".to_owned(),
        Command::Token(TokenCommand::Revoke { id }) => format!("token revoke {id}"),
        Command::Project(ProjectCommand::AddOwner { project, user }) => {
            format!("project add-owner {project} {user}")
        }
        Command::Project(ProjectCommand::AddMaintainer { project, user }) => {
            format!("project add-maintainer {project} {user}")
        }
        Command::Project(ProjectCommand::RemoveRole { project, user }) => {
            format!("project remove-role {project} {user}")
        }
        Command::Project(ProjectCommand::Roles { project }) => format!("project roles {project}"),
        Command::Project(ProjectCommand::Reserve { project }) => {
            format!("project reserve {project}")
        }
        Command::Cache(CacheCommand::Stats { .. }) => "cache stats".to_owned(),
        Command::Cache(CacheCommand::Prune { .. }) => "cache prune".to_owned(),
        Command::Project(ProjectCommand::Status {
            project, status, ..
        }) => format!("project status {project} {status}"),
        Command::Audit { .. } => "audit".to_owned(),
        Command::Upstream(UpstreamCommand::Block { spec, .. }) => {
            format!("upstream block {spec} --reason ...")
        }
        Command::Upstream(UpstreamCommand::Unblock { spec }) => format!("upstream unblock {spec}"),
        Command::Upstream(UpstreamCommand::Blocks { .. }) => "upstream blocks".to_owned(),
        Command::Upstream(UpstreamCommand::Log { spec, .. }) => format!("upstream log {spec}"),
    })
}

/// An error that ends the program with a given exit status (others end it with 1).
#[derive(Debug)]
pub struct Failure {
    /// The exit status.
    pub code: u8,
    /// What went wrong and what to do.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Where files are stored: flags, then environment (both through clap), then the file, then
/// the data directory's files/. S3 settings without S3 storage are refused, so that a server
/// meant to write to a bucket never writes to local disk instead.
fn storage(cli: &Cli, file: &FileConfig, data: &Path) -> anyhow::Result<Storage> {
    let url = cli.storage.clone().or_else(|| file.storage.clone());
    let endpoint = cli.s3_endpoint.clone().or_else(|| file.s3_endpoint.clone());
    let region = cli.s3_region.clone().or_else(|| file.s3_region.clone());
    let path_style = cli.s3_path_style.or(file.s3_path_style);
    match url {
        Some(StorageUrl::S3 { bucket, prefix }) => Ok(Storage::S3(S3Config {
            bucket,
            prefix,
            endpoint,
            region,
            path_style,
            access_key_id: file.s3_access_key_id.clone(),
            secret_access_key: file.s3_secret_access_key.clone().map(|s| s.0),
        })),
        _ if endpoint.is_some() || region.is_some() || path_style.is_some() => anyhow::bail!(
            "S3 settings (--s3-endpoint, --s3-region, --s3-path-style or their PYINDEX_S3_* \
             variables or keys in the configuration file) are set, but the files are not in a \
             bucket: add --storage s3://BUCKET/PREFIX (or PYINDEX_STORAGE), or remove them"
        ),
        Some(StorageUrl::File(dir)) => Ok(Storage::Files(dir)),
        None => Ok(Storage::Files(data_dir::default_files(data))),
    }
}

/// Runs the command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Generated from the command line itself: no configuration or data directory involved.
    match &cli.command {
        Command::Completions { shell } => return docs::completions(*shell),
        Command::Man { dir } => return docs::man(dir.as_deref()),
        _ => {}
    }
    let file = FileConfig::load(cli.config.as_deref())?;
    let data = cli
        .data
        .clone()
        .or_else(|| file.data.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
    let place = Place {
        database: cli
            .database
            .clone()
            .or_else(|| file.database.clone())
            .unwrap_or(Database::Sqlite(None)),
        pool_size: cli
            .database_pool_size
            .or(file.database_pool_size)
            .unwrap_or(data_dir::DEFAULT_POOL_SIZE),
        acquire_timeout: cli
            .database_acquire_timeout
            .or(file.database_acquire_timeout)
            .map_or(pyindex_catalog::DEFAULT_ACQUIRE_TIMEOUT, |t| t.0),
        storage: storage(&cli, &file, &data)?,
        data,
    };
    let data = &place.data;
    match needs_catalog(&cli.command) {
        Some(example) => data_dir::require_catalog(&place, &example)?,
        // Say where a new index starts, so an account made in the wrong directory is noticed.
        None if !matches!(
            cli.command,
            Command::Serve(_) | Command::Restore { .. } | Command::Mirror(_)
        ) && !data_dir::has_catalog(&place) =>
        {
            let shown = data_dir::shown(data);
            eprintln!(
                "Starting a new index in '{0}'; serve it with `pyindex serve --data {0}`.",
                shown.display()
            );
        }
        None => {}
    }
    match cli.command {
        Command::Serve(args) => serve::run(*args, &file, &place).await,
        Command::Yank {
            project,
            version,
            reason,
        } => yank::yank(&place, &project, &version, reason).await,
        Command::Unyank { project, version } => yank::unyank(&place, &project, &version).await,
        Command::User(command) => accounts::user(&place, command).await,
        Command::Token(command) => accounts::token(&place, command).await,
        Command::Project(command) => accounts::project(&place, command).await,
        Command::Audit { limit } => accounts::audit(&place, limit).await,
        Command::Cache(command) => cache::run(&place, &file, command).await,
        Command::Upstream(command) => upstream::run(&place, command).await,
        Command::Verify { repair, grace } => verify::run(&place, repair, grace.0).await,
        Command::Backup { dest } => backup::backup(&place, &dest).await,
        Command::Restore { src } => backup::restore(&src, &place).await,
        Command::Completions { .. } | Command::Man { .. } => Ok(()),
        Command::Import { source, jobs } => import::run(&place, &source, jobs).await,
        Command::Mirror(args) => mirror::run(args, &file).await,
        Command::Migrate(args) => migrate::run(args, &file, &place).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn resolved(args: &[&str], toml: &str) -> anyhow::Result<Storage> {
        let cli = Cli::try_parse_from([&["pyindex"], args, &["verify"]].concat()).unwrap();
        let file: FileConfig = toml::from_str(toml).unwrap();
        storage(&cli, &file, Path::new("/srv/data"))
    }

    #[test]
    fn storage_defaults_to_files_in_the_data_directory_and_flags_win_over_the_file() {
        let Storage::Files(dir) = resolved(&[], "").unwrap() else {
            panic!("files by default");
        };
        assert_eq!(dir, Path::new("/srv/data/files"));
        let toml = "storage = \"s3://from-file/p\"\ns3_endpoint = \"http://127.0.0.1:1\"\n\
                    s3_secret_access_key = \"k\"\n";
        let Storage::S3(config) = resolved(&["--storage", "s3://from-flag/a/b"], toml).unwrap()
        else {
            panic!("a bucket");
        };
        assert_eq!(
            (config.bucket.as_str(), config.prefix.as_str()),
            ("from-flag", "a/b")
        );
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:1"));
        assert_eq!(config.secret_access_key.as_deref(), Some("k"));
        let Storage::S3(config) =
            resolved(&["--s3-path-style=false", "--s3-region", "eu-1"], toml).unwrap()
        else {
            panic!("the file's bucket");
        };
        assert_eq!(config.bucket, "from-file");
        assert_eq!(config.path_style, Some(false));
        assert_eq!(config.region.as_deref(), Some("eu-1"));
    }

    #[test]
    fn s3_settings_without_a_bucket_are_refused() {
        let err = resolved(&["--s3-endpoint", "http://127.0.0.1:1"], "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("add --storage s3://BUCKET/PREFIX"), "{err}");
        let err = resolved(&["--storage", "file:///x", "--s3-path-style"], "")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("are set, but the files are not in a bucket"),
            "{err}"
        );
    }
}

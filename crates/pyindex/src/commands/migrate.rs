//! `pyindex migrate --to-database URL --to-storage URL`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use pyindex_ops::migrate::{self, Report, Side};
use pyindex_storage::{BlobStore, LocalBlobStore, S3Config, S3Store, Spool};

use super::verify::mib;
use crate::cli::MigrateArgs;
use crate::config::FileConfig;
use crate::data_dir::{self, Database, OpenCatalog, Place, Storage, StorageUrl};

/// Copies the index of `place` into the target of `args`.
pub async fn run(args: MigrateArgs, file: &FileConfig, place: &Place) -> anyhow::Result<()> {
    let target_storage = target_storage(&args, file)?;
    // A server holds this lock while it serves the data directory: refuse to copy under it.
    let _idle = data_dir::try_lock_idle(&place.data)?.ok_or_else(|| {
        anyhow::anyhow!(
            "a pyindex server is serving {}: stop it before migrating (a move copies an index at \
             rest), or migrate a copy (`pyindex backup`, then `pyindex restore` it into a new \
             directory and migrate that)",
            data_dir::shown(&place.data).display()
        )
    })?;
    if let Database::Postgres(_) = place.database {
        eprintln!(
            "The source catalog is on PostgreSQL: stop every server using it first. A write \
             during the move is detected and stops it before the catalog is copied."
        );
    }
    let source = OpenCatalog::open(
        &place.database,
        "--database / PYINDEX_DATABASE",
        &place.data,
        place.pool_size,
    )
    .await?;
    let target = OpenCatalog::open(
        &args.to_database,
        "the target, --to-database",
        &place.data,
        place.pool_size,
    )
    .await?;
    let result = copy(place, &source, &target, &target_storage).await;
    source.close().await;
    target.close().await;
    let (report, secs) = result?;
    print_report(place, &args.to_database, &target_storage, &report, secs);
    Ok(())
}

async fn copy(
    place: &Place,
    source: &OpenCatalog,
    target: &OpenCatalog,
    target_storage: &Storage,
) -> anyhow::Result<(Report, f64)> {
    let from = Side {
        catalog: source.transfer(),
        blobs: data_dir::open_storage(&place.storage).await?,
    };
    let to = Side {
        catalog: target.transfer(),
        blobs: open_target_storage(target_storage).await?,
    };
    let spool_dir = data_dir::spool_dir(&place.data);
    let spool = Spool::open_without_cleaning(&spool_dir)
        .with_context(|| format!("could not open the spool {}", spool_dir.display()))?;
    let started = Instant::now();
    let report = migrate::migrate(from, to, spool, Printed).await?;
    Ok((report, started.elapsed().as_secs_f64()))
}

/// Problems on standard output (beside the report), progress on standard error.
struct Printed;

impl migrate::Progress for Printed {
    fn problem(&mut self, problem: &pyindex_ops::verify::Problem) {
        println!("{problem}");
    }

    fn blobs(&mut self, done: usize, total: usize) {
        eprintln!("{done} of {total} files in the target storage...");
    }
}

/// Opens the target storage, with messages naming the target's options (unlike
/// [`data_dir::open_storage`], whose messages name the source's).
async fn open_target_storage(storage: &Storage) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match storage {
        Storage::Files(dir) => Arc::new(LocalBlobStore::open(dir).with_context(|| {
            format!(
                "could not create the target file store {} (--to-storage)",
                dir.display()
            )
        })?),
        Storage::S3(config) => Arc::new(S3Store::connect(config).await.with_context(|| {
            format!(
                "could not open the target storage {} (--to-storage): check that the bucket \
                 exists and that --to-s3-endpoint, --to-s3-region, --to-s3-path-style and the \
                 credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) are right",
                storage.shown()
            )
        })?),
    })
}

/// The target storage, with its own S3 settings (never the source's) and the shared
/// credentials.
fn target_storage(args: &MigrateArgs, file: &FileConfig) -> anyhow::Result<Storage> {
    match &args.to_storage {
        StorageUrl::S3 { bucket, prefix } => Ok(Storage::S3(S3Config {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            endpoint: args.to_s3_endpoint.clone(),
            region: args.to_s3_region.clone(),
            path_style: args.to_s3_path_style,
            access_key_id: file.s3_access_key_id.clone(),
            secret_access_key: file.s3_secret_access_key.clone().map(|s| s.0),
        })),
        StorageUrl::File(_)
            if args.to_s3_endpoint.is_some()
                || args.to_s3_region.is_some()
                || args.to_s3_path_style.is_some() =>
        {
            anyhow::bail!(
                "--to-s3-endpoint, --to-s3-region or --to-s3-path-style are set, but \
                 --to-storage is not a bucket: use --to-storage s3://BUCKET/PREFIX, or remove them"
            )
        }
        StorageUrl::File(dir) => Ok(Storage::Files(dir.clone())),
    }
}

fn print_report(place: &Place, to: &Database, storage: &Storage, report: &Report, secs: f64) {
    let counts: Vec<String> = report
        .counts
        .iter()
        .map(|(what, n)| format!("{n} {what}"))
        .collect();
    println!(
        "Migrated the index from {} + {} to {} + {} in {secs:.1} s.",
        place.database.engine(),
        place.storage.shown(),
        to.engine(),
        storage.shown()
    );
    println!(
        "Catalog: {} ({}).",
        counts.join(", "),
        if report.catalog_copied {
            "copied in one transaction, then read back and compared"
        } else {
            "the target held it already from an earlier run; read back and compared"
        }
    );
    println!(
        "Files: {} blobs copied ({}), {} already in the target ({}); every one hashed in the \
         target and equal to the catalog's SHA-256.",
        report.copied.0,
        mib(report.copied.1),
        report.present.0,
        mib(report.present.1)
    );
    println!(
        "Not copied: the upstream proxy's cache (it fills again on demand) and browser sign-in \
         sessions (users sign in again). Serve the new place with the same --database and \
         --storage (and S3 settings) as given here with --to-."
    );
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn target(args: &[&str], toml: &str) -> anyhow::Result<Storage> {
        let cli = Cli::try_parse_from([&["pyindex", "migrate"], args].concat()).unwrap();
        let Command::Migrate(args) = cli.command else {
            panic!("migrate");
        };
        target_storage(&args, &toml::from_str(toml).unwrap())
    }

    #[test]
    fn a_target_bucket_takes_its_own_settings_and_the_shared_credentials() {
        let db = ["--to-database", "postgres://u:p@127.0.0.1/db"];
        let toml = "s3_endpoint = \"http://127.0.0.1:1\"\ns3_access_key_id = \"AKID\"\n";
        let bucket = [
            &db[..],
            &["--to-storage", "s3://files/prod", "--to-s3-region", "eu-1"],
        ];
        let Storage::S3(config) = target(&bucket.concat(), toml).unwrap() else {
            panic!("a bucket");
        };
        assert_eq!(
            (config.bucket.as_str(), config.prefix.as_str()),
            ("files", "prod")
        );
        assert_eq!(config.region.as_deref(), Some("eu-1"));
        // The source's endpoint is not the target's.
        assert_eq!(config.endpoint, None);
        assert_eq!(config.access_key_id.as_deref(), Some("AKID"));
        let local = [&db[..], &["--to-storage", "file:///srv/new/files"]].concat();
        assert!(matches!(target(&local, "").unwrap(), Storage::Files(_)));
        let mixed = [&local[..], &["--to-s3-endpoint", "http://127.0.0.1:2"]].concat();
        let err = target(&mixed, "").unwrap_err().to_string();
        assert!(err.contains("--to-storage is not a bucket"), "{err}");
    }
}

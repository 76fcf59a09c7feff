//! `pyindex cache stats` and `pyindex cache prune`: the upstream proxy's file cache.

use pyindex_catalog::UpstreamIndex;

use crate::cli::CacheCommand;
use crate::config::{DEFAULT_UPSTREAM_CACHE_SIZE, FileConfig};
use crate::data_dir::{self, Place};
use crate::size::ByteSize;

fn limit(flag: Option<ByteSize>, file: &FileConfig) -> u64 {
    flag.or(file.upstream_cache_size)
        .map_or(DEFAULT_UPSTREAM_CACHE_SIZE, |s| s.0)
}

/// Runs a `cache` subcommand.
pub async fn run(place: &Place, file: &FileConfig, command: CacheCommand) -> anyhow::Result<()> {
    let (catalog, blobs) = data_dir::open_upstream_index(place).await?;
    let index: &dyn UpstreamIndex = catalog.as_ref();
    match command {
        CacheCommand::Stats { max_size } => {
            let stats = pyindex_upstream::stats(index, limit(max_size, file)).await?;
            println!("pages\t{}", stats.pages);
            println!("files\t{}", stats.files);
            println!("bytes\t{}", stats.bytes);
            println!("limit\t{}", stats.limit);
        }
        CacheCommand::Prune { max_size } => {
            let limit = limit(max_size, file);
            let removed = pyindex_upstream::prune(index, blobs.as_ref(), limit).await?;
            let bytes: u64 = removed.iter().map(|b| b.size).sum();
            println!(
                "Evicted {} cached upstream files ({bytes} bytes); the cache now fits {limit} bytes.",
                removed.len()
            );
        }
    }
    Ok(())
}

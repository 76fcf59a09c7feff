//! `pyindex import SOURCE`.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use pyindex_ops::import::{self, Layout, Summary};

use super::Failure;
use crate::data_dir::{self, Opener, Place};

/// Imports `source` into the index in `data`, `jobs` files at a time.
pub async fn run(data: &Place, source: &Path, jobs: usize) -> anyhow::Result<()> {
    // Read the source before opening the data directory: an unusable one changes nothing.
    let (layout, plan) = import::plan(source).map_err(|e| Failure {
        code: 2,
        message: e.to_string(),
    })?;
    let registry = data_dir::open(data, Opener::Command).await?;
    let total = plan.candidates.len();
    let bar = progress_bar(total as u64);
    let started = Instant::now();
    let summary = import::run(&registry, plan, jobs, |_| bar.inc(1)).await;
    bar.finish_and_clear();
    print_summary(
        &summary,
        layout,
        source,
        total,
        started.elapsed().as_secs_f64(),
    );
    match summary.skipped.len() {
        0 => Ok(()),
        n => Err(Failure {
            code: 1,
            message: format!(
                "{n} {} not imported (listed above with the reason); fix them and run the same \
                 command again: what is imported already stays as it is",
                if n == 1 { "file was" } else { "files were" }
            ),
        }
        .into()),
    }
}

/// A progress bar on standard error when it is a terminal; nothing otherwise.
fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} files  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

fn print_summary(summary: &Summary, layout: Layout, source: &Path, total: usize, seconds: f64) {
    let kind = match layout {
        Layout::Tree => "index tree",
        Layout::Flat => "flat directory",
    };
    let rate = if seconds > 0.0 {
        format!(", {:.0} files/min", total as f64 * 60.0 / seconds)
    } else {
        String::new()
    };
    println!(
        "Imported {}, already present {}, skipped {} (from the {kind} {}; {total} files checked in {seconds:.1} s{rate}).",
        summary.imported,
        summary.already_present,
        summary.skipped.len(),
        source.display(),
    );
    for skipped in &summary.skipped {
        println!("skipped {}: {}", skipped.shown, skipped.reason);
    }
}

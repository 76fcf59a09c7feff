//! `pyindex`: a private Python package index in one binary.

mod cli;
mod commands;
mod config;
mod data_dir;
mod duration;
mod log_writer;
mod size;
mod timefmt;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a cached page's request allocates and frees a few dozen
/// small buffers (the request head, headers, futures), and glibc's allocator was about 8% of the
/// server's CPU time per request under load.
///
/// Built without transparent huge pages (the `no_thp` feature): mimalloc asks for them on its
/// memory by default, and each first touch of a new 2 MiB region (a new thread's heap, a burst
/// of allocations) then made the kernel clear a whole huge page. That was 40% of the server's
/// CPU time in an install through a cold upstream cache (about 130 ms more CPU per install).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

/// How long blocking work (file I/O) may run on after a command ends before the process exits.
const RUNTIME_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The command runs as a task on the runtime's worker threads, not on this thread: a server
    // whose accept loop ran here (in `block_on`) had each accepted connection handed across
    // threads, with a wake-up of this thread for every batch of connections the workers' I/O
    // driver saw, about a third more context switches for clients such as uv that open a
    // connection per concurrent request.
    let result = runtime.block_on(async {
        match tokio::spawn(commands::run(cli)).await {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("the command failed unexpectedly: {e}")),
        }
    });
    // Connections past the shutdown timeout were aborted by the server already; other tasks
    // still running are dropped here; blocking work gets a moment, not an unbounded wait.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_TIMEOUT);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<commands::Failure>() {
                Some(failure) => ExitCode::from(failure.code),
                None => ExitCode::FAILURE,
            }
        }
    }
}

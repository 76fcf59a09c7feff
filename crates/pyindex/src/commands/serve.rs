//! `pyindex serve`.

use std::path::Path;

use anyhow::Context;
use pyindex_server::AppState;
use tracing_subscriber::EnvFilter;

use crate::cli::ServeArgs;
use crate::config::{DEFAULT_LISTEN, DEFAULT_MAX_UPLOAD_SIZE, FileConfig};
use crate::data_dir::{self, Opener};

fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Serves the index until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs, file: &FileConfig, data: &Path) -> anyhow::Result<()> {
    init_logging();
    let listen = match args.listen.or(file.listen) {
        Some(addr) => addr,
        None => DEFAULT_LISTEN
            .parse()
            .context("invalid default listen address")?,
    };
    let max_upload_size = args
        .max_upload_size
        .or(file.max_upload_size)
        .map_or(DEFAULT_MAX_UPLOAD_SIZE, |s| s.0);
    let registry = data_dir::open(data, Opener::Server).await?;
    let state = AppState::new(registry, max_upload_size);
    let _watcher = state.spawn_catalog_watcher();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("could not listen on {listen}"))?;
    tracing::info!(
        %listen,
        data = %data.display(),
        max_upload_size,
        "pyindex is serving: index at http://{listen}/simple/, uploads at http://{listen}/legacy/"
    );
    axum::serve(listener, pyindex_server::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("the server failed")?;
    Ok(())
}

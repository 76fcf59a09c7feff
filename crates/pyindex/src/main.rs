//! `pyindex`: a private Python package index in one binary.

mod cli;
mod commands;
mod config;
mod data_dir;
mod duration;
mod size;
mod timefmt;

use std::process::ExitCode;

use clap::Parser;

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
    match runtime.block_on(commands::run(cli)) {
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

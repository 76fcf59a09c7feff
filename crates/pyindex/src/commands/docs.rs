//! `pyindex completions` and `pyindex man`: shell completion scripts and man pages, generated
//! from the command-line definition so they never drift from it.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Writes the completion script for `shell` to standard output.
pub fn completions(shell: Shell) -> anyhow::Result<()> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "pyindex", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("could not write the completion script to standard output")
}

/// Writes the top man page to standard output, or every page (`pyindex.1`,
/// `pyindex-serve.1`, ...) into `dir`.
pub fn man(dir: Option<&Path>) -> anyhow::Result<()> {
    let command = Cli::command();
    let Some(dir) = dir else {
        let mut out = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut out)
            .context("could not render the man page")?;
        return std::io::stdout()
            .write_all(&out)
            .context("could not write the man page to standard output");
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("could not create the directory {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("could not write the man pages into {}", dir.display()))?;
    eprintln!("Wrote the man pages into {}.", dir.display());
    Ok(())
}

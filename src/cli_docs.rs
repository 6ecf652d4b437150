//! What the command line says about itself beyond `--help` and `--version`: shell completions
//! and the man page, generated from the clap definitions in `cli` (never written by hand, so
//! they cannot drift). It may not attach to or read any process; `cli` does not import it.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the completion script for `shell` (bash, zsh, fish, elvish, powershell).
pub fn completions(shell: clap_complete::Shell, out: &mut dyn Write) -> std::io::Result<()> {
    // clap_complete panics on a failed write: generate into memory, write (and fail) here.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "gridlock", &mut script);
    out.write_all(&script)
}

/// Writes the man page gridlock(1) in roff (the tool, its options and its subcommands' list).
pub fn man_page(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Writes gridlock.1 and one gridlock-SUBCOMMAND.1 per subcommand into `dir` (as git does).
pub fn man_pages_to(dir: &std::path::Path) -> std::io::Result<()> {
    clap_mangen::generate_to(Cli::command(), dir)
}

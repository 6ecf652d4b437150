//! What the command line says about itself beyond `--help`: the long `--version` text, shell
//! completions and the man page, all generated from the clap definitions in `cli` (never
//! written by hand, so they cannot drift). It may not attach to or read any process.

use std::io::Write;
use std::sync::LazyLock;

use clap::CommandFactory;

use crate::cli::Cli;

/// `gridlock --version`: the version, then the CPython builds gridlock reads.
pub static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    let versions = crate::cpython::supported_versions();
    format!(
        "{version}\n\
         CPython builds it reads: {list} (default builds, with the GIL), on 64-bit Linux (tested on x86-64);\n\
         \x20 libpython as a shared library (pyenv, python.org, most distributions) or linked into the\n\
         \x20 executable (Debian's static python3.X). Free-threaded builds (3.13t) are not supported.",
        version = env!("CARGO_PKG_VERSION"),
        list = versions.join(", "),
    )
});

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

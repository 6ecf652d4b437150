use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use gridlock::cli::{Cli, Commands, DumpArgs};
use gridlock::model::Command;
use gridlock::report;

const EXIT_OK: u8 = 0;
const EXIT_FAILED_TO_RUN: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_FINDING: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    match cli.command {
        Commands::Dump(args) => match dump(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("gridlock: error: {e:#}");
                ExitCode::from(EXIT_FAILED_TO_RUN)
            }
        },
    }
}

fn dump(args: &DumpArgs) -> anyhow::Result<u8> {
    let command = Command {
        name: "dump".into(),
        args: std::env::args().skip(1).collect(),
    };
    let doc = gridlock::dump(args.pid, args.window, args.locals, command)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if args.json {
        report::json(&doc, &mut out)
    } else {
        let color = match args.color.as_str() {
            "always" => true,
            "never" => false,
            _ => std::io::stdout().is_terminal(),
        };
        report::text::render(&doc, &report::text::Style { color }, &mut out)
    };
    ignore_broken_pipe(written)?;
    if let Some(path) = &args.dot {
        if path.as_os_str() == "-" {
            ignore_broken_pipe(report::dot::render(&doc, &mut out))?;
        } else {
            let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
            report::dot::render(&doc, &mut file)?;
            file.flush()?;
        }
    }
    Ok(if gridlock::fails(&doc, &args.fail_on) {
        EXIT_FINDING
    } else {
        EXIT_OK
    })
}

fn ignore_broken_pipe(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

use gridlock::cli::{Cli, Commands, DumpArgs, RecordArgs, RunArgs, TopArgs};
use gridlock::model::{Command, FindingKind};
use gridlock::report;

const EXIT_OK: u8 = 0;
const EXIT_FAILED_TO_RUN: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// Shares usage errors' code: the report cannot be trusted to be complete.
const EXIT_INCOMPLETE: u8 = 2;
const EXIT_FINDING: u8 = 3;

fn main() -> ExitCode {
    if std::env::var_os(gridlock::guard::GUARD_ENV).is_some() {
        gridlock::guard::guard_main();
    }
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
                // A core that is not one, or binaries that are not the core's: bad input.
                let bad_input = matches!(
                    e.downcast_ref::<gridlock::error::Error>(),
                    Some(gridlock::error::Error::BadCore { .. })
                );
                ExitCode::from(if bad_input {
                    EXIT_USAGE
                } else {
                    EXIT_FAILED_TO_RUN
                })
            }
        },
        Commands::Record(args) => match record(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("gridlock: error: {e:#}");
                ExitCode::from(EXIT_FAILED_TO_RUN)
            }
        },
        Commands::Top(args) => match top(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("gridlock: error: {e:#}");
                ExitCode::from(EXIT_FAILED_TO_RUN)
            }
        },
        Commands::Run(args) => match run(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("gridlock: error: {e:#}");
                ExitCode::from(EXIT_FAILED_TO_RUN)
            }
        },
        Commands::Watch(args) => match watch_host(&args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("gridlock: error: {e:#}");
                ExitCode::from(EXIT_FAILED_TO_RUN)
            }
        },
        Commands::Completions(args) => {
            let mut out = std::io::stdout().lock();
            match ignore_broken_pipe(gridlock::cli_docs::completions(args.shell, &mut out)) {
                Ok(()) => ExitCode::from(EXIT_OK),
                Err(e) => {
                    eprintln!("gridlock: error: cannot write the completion script: {e}");
                    ExitCode::from(EXIT_FAILED_TO_RUN)
                }
            }
        }
        Commands::Man(args) => match man(&args) {
            Ok(()) => ExitCode::from(EXIT_OK),
            Err(e) => {
                eprintln!("gridlock: error: {e:#}");
                ExitCode::from(EXIT_FAILED_TO_RUN)
            }
        },
    }
}

fn man(args: &gridlock::cli::ManArgs) -> anyhow::Result<()> {
    match &args.out_dir {
        Some(dir) => gridlock::cli_docs::man_pages_to(dir)
            .map_err(|e| anyhow::anyhow!("cannot write man pages to {}: {e}", dir.display())),
        None => {
            let mut out = std::io::stdout().lock();
            ignore_broken_pipe(gridlock::cli_docs::man_page(&mut out).and_then(|_| out.flush()))?;
            Ok(())
        }
    }
}

fn record(args: &RecordArgs) -> anyhow::Result<u8> {
    let command = this_command("record");
    let options = gridlock::RecordOptions {
        duration: args.duration,
        rate: args.rate,
        tree: args.tree,
        loop_threshold: args.loop_threshold,
        native: args.native,
    };
    let doc = gridlock::record(args.pid, &options, command)?;
    if let Some(split) = gridlock::cost_split::report() {
        eprint!("{split}");
    }
    ignore_broken_pipe(print_document(&doc, args.json, &args.color))?;
    // What was recorded is printed, but the recording is incomplete: as dump, exit 1.
    if doc.processes.iter().any(|p| p.pid == args.pid && p.exited) {
        eprintln!(
            "gridlock: error: process {} exited during the recording (the report shows what was recorded before)",
            args.pid
        );
        return Ok(EXIT_FAILED_TO_RUN);
    }
    Ok(verdict(&doc, &args.fail_on))
}

fn top(args: &TopArgs) -> anyhow::Result<u8> {
    let command = this_command("top");
    gridlock::tui::run(gridlock::tui::TopOptions {
        pid: args.pid,
        rate: args.rate,
        tree: args.tree,
        command,
    })?;
    Ok(EXIT_OK)
}

fn run(args: &RunArgs) -> anyhow::Result<u8> {
    use gridlock::watch::{self, Outcome, WatchOptions};
    use std::os::unix::process::ExitStatusExt;

    watch::install_signal_handlers();
    // CMD's tree dies with gridlock, even by SIGKILL; the guard starts outside the tree.
    let mut guard = gridlock::guard::Guard::start();
    // Orphans of CMD's tree are re-parented to gridlock and stay watched.
    watch::become_subreaper()?;
    let mut cmd = std::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    gridlock::guard::die_with_parent(&mut cmd);
    let probe_dirs = if args.probe {
        gridlock::probe::materialize()?
    } else {
        Vec::new()
    };
    if args.probe {
        let mut path = gridlock::probe::python_path(&probe_dirs);
        if let Some(old) = std::env::var_os("PYTHONPATH") {
            path.extend(std::env::split_paths(&old));
        }
        cmd.env("PYTHONPATH", std::env::join_paths(path)?);
        cmd.env("GRIDLOCK_PROBE", "1");
    }
    let child = cmd
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {:?}: {e}", args.command[0]))?;
    let opts = WatchOptions {
        interval: std::time::Duration::from_secs_f64(1.0 / args.rate),
        persist: args.window,
        hang_after: args.hang_after,
        timeout: args.timeout,
        fail_on: args.fail_on.clone(),
        loop_threshold: args.loop_threshold,
        probe: args.probe.then_some(probe_dirs),
        verbose: args.verbose,
    };
    let command = this_command("run");
    let result = watch::watch(&child, &opts, command, &mut guard);
    let doc = &result.document;
    let write_files = || -> anyhow::Result<()> {
        if let Some(path) = &args.report {
            report::json(doc, std::io::BufWriter::new(std::fs::File::create(path)?))?;
        }
        if let Some(path) = &args.junit {
            report::junit::render(
                doc,
                &args.fail_on,
                std::io::BufWriter::new(std::fs::File::create(path)?),
            )?;
        }
        Ok(())
    };
    let print_report = || {
        let color = std::io::stderr().is_terminal();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "\ngridlock run: stopping {:?}", args.command.join(" "));
        let _ = report::text::render(doc, &report::text::Style { color }, &mut err);
    };
    let root = child.id() as i32;
    match result.outcome {
        Outcome::Exited => {
            write_files()?;
            if !doc.findings.is_empty() {
                let mut err = std::io::stderr().lock();
                let _ = report::text::render(doc, &report::text::Style { color: false }, &mut err);
            } else {
                // A clean run still says where the probe it was asked for did not load.
                for p in &doc.processes {
                    for n in p
                        .notes
                        .iter()
                        .filter(|n| n.starts_with(gridlock::probe::MISSING))
                    {
                        eprintln!("gridlock run: process {}: {n}", p.pid);
                    }
                }
            }
            let status = result.status.expect("exited");
            // A lock-order inversion asked for with --fail-on fails a run that ended by itself
            // (the probe records them all, so they can be known only at the end).
            let inversion = args.fail_on.contains(&FindingKind::LockOrderInversion)
                && doc
                    .findings
                    .iter()
                    .any(|f| f.kind == FindingKind::LockOrderInversion);
            if inversion {
                return Ok(EXIT_FINDING);
            }
            if let (true, Some(why)) = (status.success(), &result.unmatched) {
                eprintln!("gridlock run: incomplete: {why}");
                return Ok(EXIT_INCOMPLETE);
            }
            Ok(status
                .code()
                .map(|c| c as u8)
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0) as u8))
        }
        Outcome::Failed => {
            print_report();
            write_files()?;
            watch::kill_tree();
            Ok(EXIT_FINDING)
        }
        Outcome::TimedOut => {
            eprintln!("\ngridlock run: --timeout ran out");
            print_report();
            write_files()?;
            watch::kill_tree();
            Ok(124)
        }
        Outcome::Signalled(sig) => {
            print_report();
            write_files()?;
            watch::signal_tree(root, sig, result.status, std::time::Duration::from_secs(5));
            Ok(128 + sig as u8)
        }
    }
}

/// `gridlock watch`: the node agent, until SIGINT or SIGTERM.
fn watch_host(args: &gridlock::cli::WatchArgs) -> anyhow::Result<u8> {
    use gridlock::agent::{events::EventSink, host::Filter, WatchOptions};
    let uid = match &args.user {
        None => None,
        Some(u) => Some(match u.parse::<u32>() {
            Ok(uid) => uid,
            Err(_) => nix::unistd::User::from_name(u)?
                .ok_or_else(|| anyhow::anyhow!("no such user: {u}"))?
                .uid
                .as_raw(),
        }),
    };
    let metrics = match args.metrics.as_str() {
        "none" => None,
        addr => Some(addr.parse().map_err(|_| {
            anyhow::anyhow!(
                "invalid --metrics address {addr:?}: use IP:PORT, e.g. 127.0.0.1:9464, or none"
            )
        })?),
    };
    let options = WatchOptions {
        filter: Filter {
            pids: args.pid.clone(),
            comm: args.comm.clone(),
            uid,
            cgroup: args.cgroup.clone(),
            ppid: args.ppid,
        },
        rate: args.rate,
        window: args.window,
        max_cpu: args.max_cpu / 100.0,
        metrics,
        events: args.events.as_deref().map(EventSink::parse),
        report_dir: args.report_dir.clone(),
        label_cmdline: args.label_cmdline,
        loop_threshold: args.loop_threshold,
    };
    gridlock::watch::install_signal_handlers();
    gridlock::agent::run(
        &options,
        this_command("watch"),
        &gridlock::watch::RECEIVED_SIGNAL,
    )?;
    Ok(EXIT_OK)
}

fn dump(args: &DumpArgs) -> anyhow::Result<u8> {
    let command = this_command("dump");
    let options = gridlock::DumpOptions {
        window: args.window,
        locals: args.locals,
        tree: args.tree,
        loop_threshold: args.loop_threshold,
        native: args.native,
    };
    let doc = match (&args.core, args.pid) {
        (Some(core), _) => gridlock::dump_core(
            &gridlock::CoreDumpOptions {
                core: core.clone(),
                executable: args.executable.clone(),
                sysroot: args.sysroot.clone(),
                locals: args.locals,
                loop_threshold: args.loop_threshold,
            },
            command,
        )?,
        (None, Some(pid)) => gridlock::dump(pid, &options, command)?,
        (None, None) => unreachable!("clap requires a pid without --core"),
    };
    ignore_broken_pipe(print_document(&doc, args.json, &args.color))?;
    if let Some(path) = &args.dot {
        if path.as_os_str() == "-" {
            let mut out = std::io::stdout().lock();
            ignore_broken_pipe(report::dot::render(&doc, &mut out).and_then(|_| out.flush()))?;
        } else {
            let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
            report::dot::render(&doc, &mut file)?;
            file.flush()?;
        }
    }
    Ok(verdict(&doc, &args.fail_on))
}

/// The exit status of a report: a failing finding; else, when some thread's kernel state
/// could not be matched, it is blocked in a syscall gridlock does not model, or it waits on a
/// lock whose holders cannot be known, or a trio run is parked whole with a task whose waker
/// is unknown, an incomplete report (said on stderr), never "nothing found".
fn verdict(doc: &gridlock::model::Document, fail_on: &[FindingKind]) -> u8 {
    if gridlock::fails(doc, fail_on) {
        return EXIT_FINDING;
    }
    match doc
        .unmatched_summary()
        .or_else(|| doc.unmodelled_summary())
        .or_else(|| doc.unowned_summary())
        .or_else(|| gridlock::analysis::trio_runs::unknown_waker_summary(doc))
    {
        Some(why) => {
            eprintln!("gridlock: incomplete report: {why}");
            EXIT_INCOMPLETE
        }
        None => EXIT_OK,
    }
}

/// The document on stdout: JSON, or the text report (coloured per `--color`).
fn print_document(doc: &gridlock::model::Document, json: bool, color: &str) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if json {
        report::json(doc, &mut out)?;
    } else {
        let color = match color {
            "always" => true,
            "never" => false,
            _ => std::io::stdout().is_terminal(),
        };
        report::text::render(doc, &report::text::Style { color }, &mut out)?;
    }
    out.flush()
}

/// The command as the report contract records it: the verb and gridlock's own arguments.
fn this_command(name: &str) -> Command {
    Command {
        name: name.into(),
        args: std::env::args().skip(1).collect(),
    }
}

fn ignore_broken_pipe(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

//! `debcover`: the coordinator server and its client commands. Thin glue: parse arguments, set
//! up logging and the runtime, run the command, map the outcome to an exit code.
//! Exit codes: 0 success; 1 the command ran but some inputs were rejected; 2 error.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use debcover_cli::args::Cli;
use debcover_cli::client::output;

/// Parsing allocates many small strings on two threads at once; mimalloc's per-thread free
/// lists make that markedly cheaper than the system allocator (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("debcover: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(debcover_cli::commands::run(cli)) {
        Ok(code) => code,
        // `debcover ... | head`: the reader has what it wanted; end quietly, as ripgrep does.
        Err(e) if output::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("debcover: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: logs redirected to files or collectors stay plain text.
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

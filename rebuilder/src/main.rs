//! `debcover-rebuilder`: the rebuilder node (skeleton; see the crate docs).

use std::process::ExitCode;

use clap::Parser;

/// Rebuild Debian packages for a debcover coordinator and report what was reproduced.
///
/// This version is a skeleton: it accepts its configuration but runs no jobs yet.
#[derive(Parser)]
#[command(name = "debcover-rebuilder", version, about, long_about)]
struct Cli {
    /// Coordinator to take jobs from.
    #[arg(long, env = "DEBCOVER_SERVER", default_value = "http://127.0.0.1:7430")]
    server: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    eprintln!(
        "debcover-rebuilder {} ({}): would serve {}, but node support is not built yet.",
        env!("CARGO_PKG_VERSION"),
        debcover_rebuilder::CAPABILITIES,
        cli.server
    );
    ExitCode::from(2)
}

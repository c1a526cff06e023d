//! `debcover-rebuilder`: the rebuilder node (see the crate docs).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use debcover_rebuilder::backend::{self, BackendKind};
use debcover_rebuilder::config::{self, Config, FileConfig, defaults, parse_duration, parse_size};
use debcover_rebuilder::key::NodeKey;
use debcover_rebuilder::node::{self, Shutdown};

/// Rebuild Debian packages for a debcover coordinator and report what was reproduced.
///
/// Every setting comes from a flag, else its environment variable, else the configuration file
/// (--config, TOML, same key names with underscores), else the default.
#[derive(Parser)]
#[command(name = "debcover-rebuilder", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "DEBCOVER_REBUILDER_CONFIG")]
    config: Option<PathBuf>,
    /// Coordinator URL [default: http://127.0.0.1:7430].
    #[arg(long, global = true, env = "DEBCOVER_SERVER")]
    server: Option<String>,
    /// The node's bearer token (from `debcover node add`); prefer --token-file.
    #[arg(long, global = true, env = "DEBCOVER_NODE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// File holding the node's bearer token.
    #[arg(long, global = true, env = "DEBCOVER_NODE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Work directory: the node's key and one directory per running job [default: /var/lib/debcover-rebuilder].
    #[arg(long, global = true, env = "DEBCOVER_WORK_DIR")]
    work_dir: Option<PathBuf>,
    /// Concurrent builds [default: 1].
    #[arg(long, global = true, env = "DEBCOVER_SLOTS")]
    slots: Option<u32>,
    /// Architectures built (comma-separated) [default: this machine's].
    #[arg(long, global = true, env = "DEBCOVER_ARCHITECTURES", value_delimiter = ',')]
    architectures: Option<Vec<String>>,
    /// Backends offered, first is preferred (comma-separated: local, debrebuild, command) [default: local].
    #[arg(long, global = true, env = "DEBCOVER_BACKENDS", value_delimiter = ',')]
    backends: Option<Vec<String>>,
    /// Tags, e.g. big (comma-separated).
    #[arg(long, global = true, env = "DEBCOVER_TAGS", value_delimiter = ',')]
    tags: Option<Vec<String>>,
    /// Time limit of one build, e.g. 90m, 4h [default: 4h].
    #[arg(long, global = true, env = "DEBCOVER_BUILD_TIMEOUT")]
    build_timeout: Option<String>,
    /// Largest build log kept and sent, e.g. 64MiB [default: 64MiB].
    #[arg(long, global = true, env = "DEBCOVER_LOG_CAP")]
    log_cap: Option<String>,
    /// On SIGTERM, how long running builds may go on before they are handed back [default: 60s].
    #[arg(long, global = true, env = "DEBCOVER_SHUTDOWN_GRACE")]
    shutdown_grace: Option<String>,
    /// Program of the command backend (see the crate docs for its contract).
    #[arg(long, global = true, env = "DEBCOVER_COMMAND")]
    command: Option<PathBuf>,
    /// Builder for the debrebuild backend [default: sbuild+unshare].
    #[arg(long, global = true, env = "DEBCOVER_DEBREBUILD_BUILDER")]
    debrebuild_builder: Option<String>,
    /// Do not run diffoscope on unreproducible results even when it is installed.
    #[arg(long, global = true)]
    no_diffoscope: bool,
    /// Keep the work directory of jobs that did not build, for inspection.
    #[arg(long, global = true)]
    keep_failed: bool,
    /// CA certificate (PEM) for an https:// coordinator.
    #[arg(long, global = true, env = "DEBCOVER_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// The user the local backend builds as, so builds cannot read the node's key or token
    /// (`self`: the node's own user) [default: nobody when run as root].
    #[arg(long, global = true, env = "DEBCOVER_BUILD_USER")]
    build_user: Option<String>,
    /// Log format.
    #[arg(long, global = true, env = "DEBCOVER_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command_: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Take and run jobs until SIGTERM or SIGINT (the default).
    Run,
    /// Check the configuration and the backends' tools, without contacting the coordinator.
    Check {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the node's public key (made on first use).
    Key {
        /// SubjectPublicKeyInfo PEM instead of OpenSSH form.
        #[arg(long)]
        pem: bool,
    },
}

fn resolve(cli: &Cli, needs_token: bool) -> Result<Config> {
    let file = match &cli.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let token = match (cli.token.clone(), cli.token_file.clone(), file.token.clone(), file.token_file.clone()) {
        (Some(t), _, _, _) => t,
        (None, Some(p), _, _) | (None, None, None, Some(p)) => std::fs::read_to_string(&p)
            .with_context(|| format!("cannot read the token file {}", p.display()))?
            .trim()
            .to_owned(),
        (None, None, Some(t), _) => t,
        (None, None, None, None) if needs_token => anyhow::bail!(
            "no node token: pass --token-file FILE (or DEBCOVER_NODE_TOKEN_FILE, or token_file in the configuration); \
             an operator issues one with `debcover node add --operator NAME --name NODE`"
        ),
        _ => String::new(),
    };
    let backends = cli.backends.clone().or(file.backends).unwrap_or_else(|| vec!["local".into()]);
    let backends = backends
        .iter()
        .map(|b| b.trim().parse::<BackendKind>().map_err(|e| config::ConfigError::Invalid { key: "backends", message: e }))
        .collect::<Result<Vec<_>, _>>()?;
    let slots = cli.slots.or(file.slots).unwrap_or(1);
    if slots == 0 || slots > 256 {
        Err(config::ConfigError::Invalid { key: "slots", message: format!("{slots} is not between 1 and 256") })?;
    }
    let s = |flag: &Option<String>, file: Option<String>, default: &str| flag.clone().or(file).unwrap_or_else(|| default.to_owned());
    Ok(Config {
        server: s(&cli.server, file.server, defaults::SERVER),
        token,
        work_dir: cli.work_dir.clone().or(file.work_dir).unwrap_or_else(|| defaults::WORK_DIR.into()),
        slots,
        architectures: cli.architectures.clone().or(file.architectures).unwrap_or_else(|| vec![config::host_architecture()]),
        backends,
        tags: cli.tags.clone().or(file.tags).unwrap_or_default(),
        build_timeout: parse_duration("build_timeout", &s(&cli.build_timeout, file.build_timeout, defaults::BUILD_TIMEOUT))?,
        log_cap: parse_size("log_cap", &s(&cli.log_cap, file.log_cap, defaults::LOG_CAP))?,
        shutdown_grace: parse_duration("shutdown_grace", &s(&cli.shutdown_grace, file.shutdown_grace, defaults::SHUTDOWN_GRACE))?,
        command: cli.command.clone().or(file.command),
        debrebuild_builder: s(&cli.debrebuild_builder, file.debrebuild_builder, defaults::DEBREBUILD_BUILDER),
        diffoscope: !cli.no_diffoscope && file.diffoscope.unwrap_or(true),
        keep_failed: cli.keep_failed || file.keep_failed.unwrap_or(false),
        ca_cert: cli.ca_cert.clone().or(file.ca_cert),
        build_user: config::build_user(cli.build_user.clone().or(file.build_user).as_deref())?,
    })
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DEBCOVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == "json" { b.json().init() } else { b.init() }
}

/// SIGTERM/SIGINT: the first stops claiming and starts the grace period; a second one, or the
/// end of the grace period, aborts running builds (they are handed back).
async fn signals(shutdown: Shutdown, grace: std::time::Duration) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!(grace = ?grace, "shutdown requested: no new jobs; running builds may finish within the grace period");
    shutdown.stop.cancel();
    tokio::select! {
        _ = term.recv() => tracing::info!("second signal: stopping running builds now"),
        _ = int.recv() => tracing::info!("second signal: stopping running builds now"),
        _ = tokio::time::sleep(grace) => tracing::info!("grace period over: stopping running builds"),
    }
    shutdown.abort.cancel();
    Ok(())
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command_ {
        None | Some(Cmd::Run) => {
            let config = resolve(&cli, true)?;
            let key = NodeKey::load_or_create(&node::default_key_path(&config.work_dir))?;
            if key.created {
                tracing::info!(path = %key.path.display(), public = %key.openssh_public(), "made a new node key");
            }
            let shutdown = Shutdown::default();
            let sig = tokio::spawn(signals(shutdown.clone(), config.shutdown_grace));
            let r = node::run(config, key, shutdown).await;
            sig.abort();
            r
        }
        Some(Cmd::Check { json }) => {
            let config = resolve(&cli, false)?;
            let backends: Vec<(BackendKind, Result<(), String>)> =
                config.backends.iter().map(|b| (*b, backend::available(*b, &config))).collect();
            // The work directory's parents must let the build user through.
            let reach = config.build_user.as_ref().and_then(|u| node::reachable_by(u, &config.work_dir).err().map(|e| e.to_string()));
            let ok = backends.iter().all(|(_, r)| r.is_ok()) && !config.token.is_empty() && reach.is_none();
            if json {
                let v = serde_json::json!({
                    "ok": ok,
                    "server": config.server,
                    "token": if config.token.is_empty() { "missing" } else { "set" },
                    "work_dir": config.work_dir,
                    "slots": config.slots,
                    "architectures": config.architectures,
                    "tags": config.tags,
                    "build_timeout_seconds": config.build_timeout.as_secs(),
                    "log_cap_bytes": config.log_cap,
                    "backends": backends.iter().map(|(b, r)| serde_json::json!({
                        "backend": b.as_str(), "available": r.is_ok(), "problem": r.as_ref().err(),
                    })).collect::<Vec<_>>(),
                    "diffoscope": backend::which("diffoscope").is_some() && config.diffoscope,
                    "build_user": config.build_user.as_ref().map(|u| u.name.clone()),
                    "build_user_problem": reach,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("server        {}", config.server);
                println!("token         {}", if config.token.is_empty() { "MISSING" } else { "set" });
                println!("work dir      {}", config.work_dir.display());
                println!("slots         {}", config.slots);
                println!("architectures {}", config.architectures.join(", "));
                println!("tags          {}", config.tags.join(", "));
                match &config.build_user {
                    Some(u) => println!("build user    {} (uid {}): builds cannot read the node's key or token", u.name, u.uid),
                    None => println!("build user    the node's own: builds can read its key (run as root to build as nobody)"),
                }
                if let Some(r) = &reach {
                    println!("work dir      NOT REACHABLE: {r}");
                }
                for (b, r) in &backends {
                    match r {
                        Ok(()) => println!("backend       {b}: ok"),
                        Err(e) => println!("backend       {b}: NOT AVAILABLE: {e}"),
                    }
                }
            }
            if !ok {
                anyhow::bail!("the node is not ready to run (see above)");
            }
            Ok(())
        }
        Some(Cmd::Key { pem }) => {
            let config = resolve(&cli, false)?;
            let key = NodeKey::load_or_create(&node::default_key_path(&config.work_dir))?;
            if pem { print!("{}", key.public_pem()) } else { println!("{}", key.openssh_public()) }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    if matches!(cli.command_, None | Some(Cmd::Run)) {
        if let Err(e) = debcover_rebuilder::process::watchdog::start() {
            eprintln!("debcover-rebuilder: cannot start the build watchdog: {e}");
            return ExitCode::FAILURE;
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("debcover-rebuilder: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("debcover-rebuilder: {e:#}");
            ExitCode::FAILURE
        }
    }
}

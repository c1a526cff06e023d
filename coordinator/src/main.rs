//! `debcover`: the coordinator server and its client commands.
//!
//! Thin glue: parse arguments, set up logging, resolve configuration, call the library.
//! Exit codes: 0 success; 1 the command ran but some inputs were rejected; 2 error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use debcover_coordinator::client::{self, output};
use debcover_coordinator::config::{self, FileConfig, ServeConfig};
use debcover_coordinator::ingest::Limits;
use debcover_coordinator::service::{self, CoordinatorService};
use debcover_coordinator::storage::{self, postgres::PgStore, sqlite::SqliteStore};
use debcover_coordinator::outln;
use debcover_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

/// Parsing allocates many small strings on two threads at once; mimalloc's per-thread free
/// lists make that markedly cheaper than the system allocator (see ARCHITECTURE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Prove that security fixes in statically linked libraries actually shipped.
///
/// The coordinator (`debcover serve`) stores .buildinfo files and archive indices and answers
/// which binaries were built against which library versions. Every other command is a client
/// that talks to a coordinator over gRPC.
#[derive(Parser)]
#[command(name = "debcover", version, about, long_about, after_help = EXIT_CODES)]
struct Cli {
    /// Configuration file (TOML). Default: $XDG_CONFIG_HOME/debcover/config.toml if it exists.
    #[arg(long, global = true, env = "DEBCOVER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log filter (tracing syntax: error, warn, info, debug, or per-module directives).
    #[arg(long, global = true, env = "DEBCOVER_LOG", default_value = "info", value_name = "FILTER")]
    log: String,

    /// Write logs as JSON lines (for log collectors).
    #[arg(long, global = true, env = "DEBCOVER_LOG_JSON")]
    log_json: bool,

    /// Client commands: PEM CA certificate that an https:// coordinator's certificate must chain
    /// to [default: the system's roots].
    #[arg(long, global = true, env = "DEBCOVER_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 success, 1 some inputs were rejected, 2 error.";

#[derive(Subcommand)]
enum Command {
    /// Run the coordinator (gRPC server).
    Serve(ServeArgs),
    /// Send buildinfo files or archive indices to the coordinator.
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// List builds made with PACKAGE installed below a version.
    ///
    /// PACKAGE is a binary package name as it appears in Installed-Build-Depends, or src:NAME
    /// for every binary of source package NAME.
    BuiltWith(BuiltWithArgs),
    /// Inspect stored builds.
    #[command(subcommand)]
    Build(BuildCommand),
    /// Show what the coordinator holds.
    Status(StatusArgs),
    /// Library fixes: find every shipped binary that embeds a vulnerable version, plan the
    /// rebuilds, and track each one until the evidence shows the fix.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Rebuilder node credentials (admin).
    #[command(subcommand)]
    Node(NodeCommand),
    /// Queue verification rebuilds (admin).
    #[command(subcommand)]
    Rebuild(RebuildCommand),
    /// `verify DIR`: check an exported set of attestations offline (no server): signatures,
    /// key validity, and that K distinct operators agree with the buildinfo (exit 0 only if
    /// verified). `verify suite SUITE`: queue background verification of everything a suite
    /// ships (admin).
    #[command(args_conflicts_with_subcommands = true)]
    Verify(VerifyArgs),
    /// Every published public key (nodes' with their validity periods, and the coordinator's).
    Keys(client::attest::KeysArgs),
    /// The stored signed attestations of a build; --export DIR writes them with their keys and
    /// the coordinator-signed in-toto layout, for `debcover verify` or in-toto-verify.
    Attestations(client::attest::AttestationsArgs),
    /// The rebuild queue: counts per state and priority, and the first jobs.
    Queue(QueueArgs),
    /// Read what a local .deb's binaries say they contain (Go build info, Rust .dep-v0, rustc)
    /// and, with --packages, check it against the package's *Built-Using (offline; exit 1 on
    /// any disagreement or undeclared finding).
    InspectDeb(client::inspect::InspectDebArgs),
}

#[derive(Args, Clone)]
struct AdminArg {
    /// File holding the admin token [default: DATA_DIR/admin.token, as written by `debcover
    /// serve`]. DEBCOVER_ADMIN_TOKEN, when set, is the token itself.
    #[arg(long, env = "DEBCOVER_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Issue a credential for a node; the token is printed once and stored only hashed.
    Add {
        /// Operator (one organisation or person; independence is counted per operator).
        #[arg(long)]
        operator: String,
        /// Node name, unique per operator.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        admin: AdminArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Every node, its credential state, capabilities and leases.
    List {
        #[command(flatten)]
        admin: AdminArg,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Revoke a node's credential; its leases go back to the queue.
    Revoke {
        /// Operator.
        #[arg(long)]
        operator: String,
        /// Node name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        admin: AdminArg,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Subcommand)]
enum RebuildCommand {
    /// Queue the ingested builds of SOURCE (optionally one VERSION and architecture).
    Request {
        /// Source package.
        source: String,
        /// Binary or source version [default: every ingested version].
        version: Option<String>,
        /// Host architecture (aliases such as x86_64 accepted) [default: every one].
        #[arg(long)]
        arch: Option<String>,
        /// Backend the node must use (local, debrebuild, command) [default: any].
        #[arg(long)]
        backend: Option<String>,
        /// Tag the node must carry, e.g. big (repeat for several).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Priority: request, or campaign (ahead of everything).
        #[arg(long, default_value = "request", value_parser = ["request", "campaign"])]
        priority: String,
        #[command(flatten)]
        admin: AdminArg,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Subcommand)]
enum VerifyCommand {
    /// Queue every shipped build of SUITE at background priority (deduplicated; builds
    /// verified or parked before are skipped).
    Suite {
        /// Suite with an ingested Packages index.
        suite: String,
        /// Only builds for this host architecture (repeat for several).
        #[arg(long = "arch", value_name = "ARCH")]
        arches: Vec<String>,
        #[command(flatten)]
        admin: AdminArg,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Args)]
struct VerifyArgs {
    #[command(subcommand)]
    command: Option<VerifyCommand>,
    /// An export directory (`debcover attestations ... --export DIR`).
    dir: Option<PathBuf>,
    #[command(flatten)]
    offline: client::attest::VerifyDirArgs,
}

#[derive(Args)]
struct QueueArgs {
    /// Jobs in this state (queued, leased, verified, parked; repeat) [default: queued and leased].
    #[arg(long = "state", value_name = "STATE")]
    states: Vec<String>,
    /// Jobs listed (counts always cover everything).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(Args)]
struct CampaignSpecArgs {
    /// Source package of the library (all its binaries count), e.g. golang-golang-x-net.
    #[arg(long)]
    library: String,
    /// First fixed version of the library (Debian version).
    #[arg(long, value_name = "VERSION")]
    fixed: String,
    /// Suite in scope (repeat for several); it must have a Packages index ingested.
    #[arg(long = "suite", required = true, value_name = "SUITE")]
    suites: Vec<String>,
    /// Architecture in scope (repeat for several) [default: every indexed one].
    #[arg(long = "arch", value_name = "ARCH")]
    arches: Vec<String>,
    /// binnmu (wanna-build binNMUs; unstable-like suites) or sourceful (no-change uploads;
    /// security suites).
    #[arg(long, default_value = "binnmu", value_parser = ["binnmu", "sourceful"])]
    mode: String,
    /// Title [default: LIBRARY FIXED].
    #[arg(long, default_value = "")]
    title: String,
    /// Advisory reference, e.g. CVE-2023-39325 (repeat for several).
    #[arg(long = "advisory", value_name = "ID")]
    advisories: Vec<String>,
    /// Waves of transitive dependents to follow (1: direct items only).
    #[arg(long, default_value_t = debcover_coordinator::campaign::DEFAULT_MAX_DEPTH)]
    max_depth: u32,
    /// Which affected items make their dependents affected: `declared` follows static
    /// libraries that declare what they embed (Static-Built-Using and kin); `dev` follows every
    /// -dev/-static/-source binary of an affected item (for undeclared static libraries;
    /// over-approximates with shared libraries).
    #[arg(long, default_value = "declared", value_parser = ["declared", "dev"])]
    propagate: String,
    /// "Name <email>" for the changelog entries of sourceful uploads
    /// [default: $DEBFULLNAME <$DEBEMAIL>, else the Debian Security Team].
    #[arg(long, value_name = "NAME <EMAIL>")]
    changed_by: Option<String>,
    /// Output: table, json, wb (wanna-build nmu/dw lines) or uploads (sourceful changelogs).
    /// Each asks the server for no more than it prints: wb and uploads for no items, the table
    /// for each item without its upstream thresholds and with only its first vulnerable evidence.
    #[arg(long, value_enum, default_value = "table")]
    format: client::campaign::PlanFormat,
    #[command(flatten)]
    items: ItemArgs,
    #[command(flatten)]
    server: ServerArg,
}

/// How much of a plan's items `--json` asks for.
#[derive(Args)]
struct ItemArgs {
    /// How much of each item to ask the server for: full (every field), summary (no upstream
    /// thresholds, only the first vulnerable evidence), brief (no evidence, notes or upstream
    /// thresholds) or none (no items: campaign, counts, cycles, notes, waves, exports and
    /// `item_count`). Default: the least the output prints: full for --json, summary for the
    /// table (which accepts summary or full), none for wb and uploads. Smaller answers come
    /// much faster for suite-wide plans.
    #[arg(long = "items", value_name = "SHAPE", value_parser = client::campaign::ITEM_SHAPES)]
    detail: Option<String>,
    /// With --json: skip the first N items (in wave order); `item_count` gives the total.
    #[arg(long, value_name = "N", default_value_t = 0)]
    item_offset: u32,
    /// With --json: at most N items (0: all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    item_limit: u32,
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Preview a campaign: impact analysis and rebuild plan, nothing saved.
    Plan(CampaignSpecArgs),
    /// Save a campaign: its items are tracked from now on.
    Create(CampaignSpecArgs),
    /// List campaigns with their counts per state.
    List {
        #[command(flatten)]
        server: ServerArg,
    },
    /// Counts per state and per wave, and every item with its state and the reason for it.
    Status {
        /// Campaign id.
        id: i64,
        #[command(flatten)]
        server: ServerArg,
    },
    /// The audit trail: every state change with its time and evidence.
    Events {
        /// Campaign id.
        id: i64,
        #[command(flatten)]
        server: ServerArg,
    },
    /// A saved campaign's plan: table, json, wb or uploads.
    Export {
        /// Campaign id.
        id: i64,
        /// Output format (table, json, wb or uploads); each asks the server for no more than it
        /// prints.
        #[arg(long, value_enum, default_value = "wb")]
        format: client::campaign::PlanFormat,
        /// "Name <email>" for changelog entries (sourceful campaigns).
        #[arg(long, value_name = "NAME <EMAIL>")]
        changed_by: Option<String>,
        #[command(flatten)]
        items: ItemArgs,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7430].
    #[arg(long, env = "DEBCOVER_LISTEN", value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address of the web pages, their JSON twins (/api/...), /metrics and
    /// /dists/SUITE/ARCH/Buildinfo.xz, or `off` [default: 127.0.0.1:7440].
    #[arg(long, env = "DEBCOVER_HTTP_LISTEN", value_name = "HOST:PORT|off")]
    http_listen: Option<String>,
    /// Database: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite in the data directory].
    #[arg(long, env = "DEBCOVER_DB", value_name = "URL")]
    db: Option<String>,
    /// Data directory [default: $XDG_DATA_HOME/debcover].
    #[arg(long, env = "DEBCOVER_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// File holding the admin token; created with a new random token if missing
    /// [default: DATA_DIR/admin.token]. DEBCOVER_ADMIN_TOKEN, when set, is the token itself.
    #[arg(long, env = "DEBCOVER_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// A rebuild lease ends this long after the claim or last heartbeat (e.g. 10m).
    #[arg(long, env = "DEBCOVER_LEASE_TTL", value_name = "DURATION")]
    lease_ttl: Option<String>,
    /// Delays before retries after failures, comma-separated [default: 10m,1h,6h].
    #[arg(long, env = "DEBCOVER_RETRY_DELAYS", value_name = "LIST")]
    retry_delays: Option<String>,
    /// Failures after which a rebuild job is parked [default: 4].
    #[arg(long, env = "DEBCOVER_MAX_FAILURES", value_name = "N")]
    max_failures: Option<u32>,
    /// Unreproducible results after which a rebuild job is parked [default: 2].
    #[arg(long, env = "DEBCOVER_MAX_UNREPRODUCIBLE", value_name = "N")]
    max_unreproducible: Option<u32>,
    /// Distinct operators that must reproduce a build [default: 2].
    #[arg(long, env = "DEBCOVER_VERIFIERS", value_name = "K")]
    verifiers: Option<u32>,
    /// Serve gRPC over TLS with this PEM certificate chain (needs --tls-key); clients then use
    /// https://HOST:PORT.
    #[arg(long, env = "DEBCOVER_TLS_CERT", value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "DEBCOVER_TLS_KEY", value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Debian mirror rebuild jobs point nodes to for sources and the archive's binaries
    /// (http://, https:// or file:///PATH) [default: none: nodes use their own apt].
    #[arg(long, env = "DEBCOVER_ARCHIVE_MIRROR", value_name = "URL")]
    archive_mirror: Option<String>,
}

#[derive(Args, Clone)]
struct ServerArg {
    /// Coordinator to talk to [default: http://127.0.0.1:7430].
    #[arg(long, env = "DEBCOVER_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum IngestCommand {
    /// Ingest .buildinfo files: files, directories (recursively), aggregated indices
    /// (Buildinfo, .gz, .xz) and http(s) URLs.
    Buildinfo {
        /// Inputs.
        #[arg(required = true, value_name = "PATH|URL")]
        inputs: Vec<String>,
        /// Buildinfos per batch sent to the server.
        #[arg(long, default_value_t = 512)]
        batch_size: usize,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Ingest Packages or Sources indices (plain, .gz, .xz; files or URLs) for a suite.
    /// Each index replaces the suite's membership for its architecture (Packages) or its
    /// sources (Sources), atomically.
    Archive {
        /// Suite the indices belong to (e.g. bookworm).
        #[arg(long)]
        suite: String,
        /// Architecture of the Packages indices [default: inferred from the entries].
        #[arg(long)]
        arch: Option<String>,
        /// Index kind [default: from the file name].
        #[arg(long, value_parser = ["packages", "sources"])]
        kind: Option<String>,
        /// Inputs.
        #[arg(required = true, value_name = "PATH|URL")]
        inputs: Vec<String>,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Args)]
struct BuiltWithArgs {
    /// Binary package name, or src:NAME.
    package: String,
    /// Only versions strictly lower than this (Debian ordering).
    #[arg(long, value_name = "VERSION")]
    before: Option<String>,
    /// Only builds with binaries shipped in this suite.
    #[arg(long)]
    suite: Option<String>,
    /// Only builds for this architecture (or "all").
    #[arg(long)]
    arch: Option<String>,
    #[command(flatten)]
    server: ServerArg,
}

#[derive(Subcommand)]
enum BuildCommand {
    /// The builds of a source package and what each was built against.
    Show {
        /// Source package.
        source: String,
        /// Only this version (binary or source version).
        version: Option<String>,
        /// Only this architecture.
        #[arg(long)]
        arch: Option<String>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Print the stored buildinfo of a build, byte for byte.
    Get {
        /// Build id (SHA-256 of the buildinfo).
        id: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Every rebuild job of a source and each attempt: node, operator, outcome.
    History {
        /// Source package.
        source: String,
        /// Only this version (binary or source version).
        version: Option<String>,
        #[command(flatten)]
        server: ServerArg,
    },
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    server: ServerArg,
}

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
    match runtime.block_on(dispatch(cli)) {
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
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: logs redirected to files or collectors stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// `Name <email>` for changelog trailers: the flag, else the Debian packaging variables.
fn changed_by(flag: Option<String>) -> String {
    flag.or_else(|| {
        let name = std::env::var("DEBFULLNAME").ok()?;
        let mail = std::env::var("DEBEMAIL").ok()?;
        Some(format!("{name} <{mail}>"))
    })
    .unwrap_or_default()
}

async fn campaign(cmd: CampaignCommand, file: &FileConfig) -> Result<ExitCode> {
    use client::campaign as cc;
    match cmd {
        CampaignCommand::Plan(a) => campaign_spec(a, file, false).await,
        CampaignCommand::Create(a) => campaign_spec(a, file, true).await,
        CampaignCommand::List { server } => {
            let mut c = cc::connect(&config::resolve_server(server.server, file)).await?;
            let r = c
                .list_campaigns(pb::ListCampaignsRequest {})
                .await
                .map_err(|s| client::status_error("campaign list", s))?
                .into_inner();
            if server.json {
                output::print_json(&cc::list_view(&r))?;
            } else {
                cc::print_list(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Status { id, server } => {
            let mut c = cc::connect(&config::resolve_server(server.server, file)).await?;
            let r = c
                .campaign_status(pb::CampaignRequest {
                    id,
                    ..Default::default()
                })
                .await
                .map_err(|s| client::status_error("campaign status", s))?
                .into_inner();
            let v = cc::status_view(&r)?;
            if server.json {
                output::print_json(&v)?;
            } else {
                cc::print_status(&v);
            }
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Events { id, server } => {
            let mut c = cc::connect(&config::resolve_server(server.server, file)).await?;
            let r = c
                .campaign_events(pb::CampaignRequest {
                    id,
                    ..Default::default()
                })
                .await
                .map_err(|s| client::status_error("campaign events", s))?
                .into_inner();
            let v = cc::events_view(&r);
            if server.json {
                output::print_json(&v)?;
            } else {
                cc::print_events(&v);
            }
            Ok(ExitCode::SUCCESS)
        }
        CampaignCommand::Export {
            id,
            format,
            changed_by: who,
            items,
            server,
        } => {
            let format = if server.json {
                cc::PlanFormat::Json
            } else {
                format
            };
            let detail = cc::items_to_ask(format, items.detail, items.item_offset, items.item_limit)?;
            let mut c = cc::connect(&config::resolve_server(server.server, file)).await?;
            let r = c
                .export_campaign(pb::CampaignRequest {
                    id,
                    changed_by: changed_by(who),
                    items: detail.clone(),
                    item_offset: items.item_offset,
                    item_limit: items.item_limit,
                })
                .await
                .map_err(|s| client::status_error("campaign export", s))?
                .into_inner();
            cc::print_plan(&cc::plan_view(r, &detail)?, format)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn campaign_spec(a: CampaignSpecArgs, file: &FileConfig, save: bool) -> Result<ExitCode> {
    use client::campaign as cc;
    let format = if a.server.json {
        cc::PlanFormat::Json
    } else {
        a.format
    };
    let detail = cc::items_to_ask(format, a.items.detail, a.items.item_offset, a.items.item_limit)?;
    let mut c = cc::connect(&config::resolve_server(a.server.server, file)).await?;
    let spec = pb::CampaignSpec {
        library: a.library,
        fixed_version: a.fixed,
        suites: a.suites,
        architectures: a.arches,
        mode: a.mode,
        title: a.title,
        advisories: a.advisories,
        max_depth: a.max_depth,
        changed_by: changed_by(a.changed_by),
        propagate: a.propagate,
        items: detail.clone(),
        item_offset: a.items.item_offset,
        item_limit: a.items.item_limit,
    };
    let (what, r) = if save {
        ("campaign create", c.create_campaign(spec).await)
    } else {
        ("campaign plan", c.plan_campaign(spec).await)
    };
    let r = r.map_err(|s| client::status_error(what, s))?.into_inner();
    cc::print_plan(&cc::plan_view(r, &detail)?, format)?;
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let file = FileConfig::load(cli.config.as_deref())?;
    client::set_ca_cert(config::resolve_ca_cert(cli.ca_cert, &file));
    let progress = std::io::stderr().is_terminal();
    match cli.command {
        Command::InspectDeb(a) => Ok(if client::inspect::run(&a)? { ExitCode::SUCCESS } else { ExitCode::from(1) }),
        Command::Campaign(cmd) => campaign(cmd, &file).await,
        Command::Serve(a) => {
            let cfg = ServeConfig::resolve(a.listen, a.db, a.data_dir, &file)?;
            let http_listen = config::resolve_http_listen(a.http_listen, &file)?;
            let flags = config::RebuildFlags {
                lease_ttl: a.lease_ttl,
                retry_delays: a.retry_delays,
                max_failures: a.max_failures,
                max_unreproducible: a.max_unreproducible,
                verifiers: a.verifiers,
                archive_mirror: a.archive_mirror,
            };
            let rebuild = config::RebuildConfig::resolve(flags, &file)?;
            let token_file = config::admin_token_file(a.admin_token_file, Some(&cfg.data_dir), &file);
            let tls = config::TlsFiles::resolve(a.tls_cert, a.tls_key, &file)?;
            serve(cfg, http_listen, rebuild, token_file, tls).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Node(cmd) => node(cmd, &file).await,
        Command::Rebuild(RebuildCommand::Request { source, version, arch, backend, tags, priority, admin, server }) => {
            let mut c = admin_client(&server, &admin, &file).await?;
            let r = c
                .request_rebuild(pb::RebuildRequest {
                    source,
                    version: version.unwrap_or_default(),
                    architecture: arch.unwrap_or_default(),
                    backend: backend.unwrap_or_default(),
                    tags,
                    priority,
                })
                .await
                .map_err(|s| client::status_error("rebuild request", s))?
                .into_inner();
            if server.json {
                output::print_json(&client::rebuild::enqueue_json(&r))?;
            } else {
                client::rebuild::print_enqueue(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(VerifyArgs { command: None, dir, offline }) => {
            let dir = dir.context("name an export directory (`debcover verify DIR --threshold K`) or `verify suite SUITE`")?;
            Ok(if client::attest::verify_dir(&dir, &offline)? { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Keys(a) => {
            client::attest::keys(&config::resolve_server(a.server.clone(), &file), &a).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Attestations(a) => {
            client::attest::attestations(&config::resolve_server(a.server.clone(), &file), &a).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify(VerifyArgs { command: Some(VerifyCommand::Suite { suite, arches, admin, server }), .. }) => {
            let mut c = admin_client(&server, &admin, &file).await?;
            let r = c
                .verify_suite(pb::VerifySuiteRequest { suite, architectures: arches })
                .await
                .map_err(|s| client::status_error("verify suite", s))?
                .into_inner();
            if server.json {
                output::print_json(&client::rebuild::enqueue_json(&r))?;
            } else {
                client::rebuild::print_enqueue(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Queue(a) => {
            let mut c = client::rebuild::connect(&config::resolve_server(a.server.server, &file), None).await?;
            let r = c
                .queue(pb::QueueRequest { states: a.states, limit: a.limit })
                .await
                .map_err(|s| client::status_error("queue", s))?
                .into_inner();
            if a.server.json {
                output::print_json(&client::rebuild::queue_json(&r))?;
            } else {
                client::rebuild::print_queue(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(BuildCommand::History { source, version, server }) => {
            let mut c = client::rebuild::connect(&config::resolve_server(server.server, &file), None).await?;
            let r = c
                .job_history(pb::JobHistoryRequest { source, version: version.unwrap_or_default() })
                .await
                .map_err(|s| client::status_error("build history", s))?
                .into_inner();
            if server.json {
                output::print_json(&client::rebuild::history_json(&r))?;
            } else {
                client::rebuild::print_history(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(IngestCommand::Buildinfo { inputs, batch_size, server }) => {
            let url = config::resolve_server(server.server, &file);
            let opts = client::buildinfo::Options { batch_files: batch_size, progress, ..Default::default() };
            let summary = client::buildinfo::ingest(&url, &inputs, &opts).await?;
            if server.json {
                output::print_json(&summary)?;
            } else {
                for r in &summary.rejected {
                    eprintln!("rejected: {}", r.reason);
                }
                outln!(
                    "{} ingested, {} already known, {} rejected",
                    summary.ingested,
                    summary.already_known,
                    summary.rejected.len()
                );
            }
            Ok(if summary.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Ingest(IngestCommand::Archive { suite, arch, kind, inputs, server }) => {
            let url = config::resolve_server(server.server, &file);
            let mut results = Vec::new();
            let mut failed = false;
            for input in &inputs {
                let outcome = match client::archive::kind_of(input, kind.as_deref()) {
                    Ok(k) => client::archive::ingest_one(&url, &suite, arch.as_deref(), k, input, progress).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(o) => {
                        if !server.json {
                            let kind = if o.kind == pb::IndexKind::Sources as i32 { "Sources" } else { "Packages" };
                            let scope = if o.architecture.is_empty() { o.suite.clone() } else { format!("{}/{}", o.suite, o.architecture) };
                            let linked = if o.kind == pb::IndexKind::Packages as i32 {
                                format!(", {} linked to builds", o.linked)
                            } else {
                                String::new()
                            };
                            outln!(
                                "{input}: {kind} for {scope}: {} entries, {} added, {} removed{linked}",
                                o.entries, o.added, o.removed
                            );
                        }
                        results.push(serde_json::json!({
                            "input": input, "suite": o.suite, "architecture": o.architecture,
                            "entries": o.entries, "added": o.added, "removed": o.removed,
                            "linked": o.linked, "sha256": o.sha256,
                        }));
                    }
                    Err(e) => {
                        failed = true;
                        if !server.json {
                            eprintln!("rejected: {e:#}");
                        }
                        results.push(serde_json::json!({ "input": input, "error": format!("{e:#}") }));
                    }
                }
            }
            if server.json {
                output::print_json(&results)?;
            }
            Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::BuiltWith(a) => {
            let url = config::resolve_server(a.server.server, &file);
            let r = client::built_with(
                client::channel(&url).await?,
                pb::BuiltWithRequest {
                    package: a.package.clone(),
                    before: a.before.unwrap_or_default(),
                    suite: a.suite.unwrap_or_default(),
                    architecture: a.arch.unwrap_or_default(),
                },
            )
            .await?;
            if a.server.json {
                output::print_json(&output::BuiltWithView::from(&r))?;
            } else {
                output::print_built_with(&r, &a.package);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(BuildCommand::Show { source, version, arch, server }) => {
            let url = config::resolve_server(server.server, &file);
            let mut c = client::connect(&url).await?;
            let r = c
                .show_builds(pb::ShowBuildsRequest {
                    source,
                    version: version.unwrap_or_default(),
                    architecture: arch.unwrap_or_default(),
                })
                .await
                .map_err(|s| client::status_error("build show", s))?
                .into_inner();
            if server.json {
                let views: Vec<_> = r.builds.iter().map(output::DetailView::from).collect();
                output::print_json(&views)?;
            } else {
                output::print_builds(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(BuildCommand::Get { id, server }) => {
            use std::io::Write;
            let url = config::resolve_server(server.server, &file);
            let mut c = client::connect(&url).await?;
            let r = c
                .get_buildinfo(pb::GetBuildinfoRequest { id })
                .await
                .map_err(|s| client::status_error("build get", s))?
                .into_inner();
            std::io::stdout().write_all(&r.content)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status(a) => {
            let url = config::resolve_server(a.server.server, &file);
            let s = client::status(&url).await?;
            if a.server.json {
                output::print_json(&serde_json::json!({
                    "version": s.version, "backend": s.backend, "builds": s.builds,
                    "dependency_entries": s.dependency_entries,
                    "interned_packages": s.interned_packages, "binaries": s.binaries,
                    "suites": s.suites,
                }))?;
            } else {
                outln!("debcover {} on {} at {url}", s.version, s.backend);
                outln!("  builds:             {}", s.builds);
                outln!("  dependency entries: {}", s.dependency_entries);
                outln!("  interned packages:  {}", s.interned_packages);
                outln!("  archive binaries:   {}", s.binaries);
                outln!("  suites:             {}", if s.suites.is_empty() { "none".into() } else { s.suites.join(", ") });
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An admin client for a command, with the admin token.
async fn admin_client(server: &ServerArg, admin: &AdminArg, file: &FileConfig) -> Result<client::rebuild::AdminClient> {
    let data_dir = std::env::var_os("DEBCOVER_DATA_DIR").map(PathBuf::from);
    let token_file = config::admin_token_file(admin.admin_token_file.clone(), data_dir.as_deref(), file);
    let token = client::rebuild::admin_token(std::env::var("DEBCOVER_ADMIN_TOKEN").ok(), &token_file)?;
    client::rebuild::connect(&config::resolve_server(server.server.clone(), file), Some(&token)).await
}

async fn node(cmd: NodeCommand, file: &FileConfig) -> Result<ExitCode> {
    use client::rebuild as cr;
    match cmd {
        NodeCommand::Add { operator, name, admin, server } => {
            let mut c = admin_client(&server, &admin, file).await?;
            let r = c
                .add_node(pb::AddNodeRequest { operator, name })
                .await
                .map_err(|s| client::status_error("node add", s))?
                .into_inner();
            let n = r.node.unwrap_or_default();
            if server.json {
                let mut v = cr::node_json(&n);
                v["token"] = serde_json::Value::String(r.token);
                output::print_json(&v)?;
            } else {
                outln!("node {} of operator {} added. Its token (shown only now; keep it secret):", n.name, n.operator);
                outln!("{}", r.token);
            }
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::List { admin, server } => {
            let mut c = admin_client(&server, &admin, file).await?;
            let r = c
                .list_nodes(pb::ListNodesRequest {})
                .await
                .map_err(|s| client::status_error("node list", s))?
                .into_inner();
            if server.json {
                output::print_json(&r.nodes.iter().map(cr::node_json).collect::<Vec<_>>())?;
            } else {
                cr::print_nodes(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        NodeCommand::Revoke { operator, name, admin, server } => {
            let mut c = admin_client(&server, &admin, file).await?;
            c.revoke_node(pb::RevokeNodeRequest { operator: operator.clone(), name: name.clone() })
                .await
                .map_err(|s| client::status_error("node revoke", s))?;
            if server.json {
                outln!("{}", serde_json::json!({"operator": operator, "name": name, "revoked": true}));
            } else {
                outln!("node {name} of operator {operator} revoked; its leases went back to the queue");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The admin token of `serve`: DEBCOVER_ADMIN_TOKEN, else the token file, created with a new
/// random token (mode 0600) when missing.
fn serve_admin_token(path: &std::path::Path) -> Result<String> {
    if let Ok(t) = std::env::var("DEBCOVER_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    if !path.exists() {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let token = format!("dca_{}", &debcover_coordinator::rebuild::new_token()[4..]);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        match opts.open(path) {
            Ok(mut f) => {
                writeln!(f, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!(file = %path.display(), "new admin token written");
            }
            // Another coordinator sharing the directory wrote it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create the admin token file {}", path.display())),
        }
    }
    client::rebuild::admin_token(None, path)
}

/// Open the configured backend and serve until SIGINT or SIGTERM.
async fn serve(
    cfg: ServeConfig,
    http_listen: Option<std::net::SocketAddr>,
    rebuild: config::RebuildConfig,
    token_file: PathBuf,
    tls: Option<config::TlsFiles>,
) -> Result<()> {
    // Read and check the certificate and key before anything else, so a wrong file is named.
    let tls = match &tls {
        Some(files) => {
            let pem = files.load()?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(pem.cert, pem.key)))
        }
        None => None,
    };
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let admin_token = serve_admin_token(&token_file)?;
    if let Some(m) = &rebuild.archive_mirror {
        tracing::info!(mirror = %m, "rebuild jobs point to this archive mirror");
    }
    let scheduler = Arc::new(
        service::rebuild::RebuildSettings::new(rebuild.policy, rebuild.routes, &admin_token, cfg.data_dir.clone())
            .with_archive_mirror(rebuild.archive_mirror),
    );
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is another coordinator running? set --listen)", cfg.listen))?;
    let web = match http_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for the web views (set --http-listen, or --http-listen off)")
        })?),
        None => None,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    let limits = Limits::default();
    let listeners = (listener, web);
    match storage::backend_of_url(&cfg.db)? {
        "postgres" => {
            let store = PgStore::open(&cfg.db).await.context("cannot open the PostgreSQL database")?;
            run_with(store, listeners, limits, scheduler, tls, shutdown, &cfg).await
        }
        _ => {
            let store = SqliteStore::open(&cfg.db).await.with_context(|| format!("cannot open {}", cfg.db))?;
            run_with(store, listeners, limits, scheduler, tls, shutdown, &cfg).await
        }
    }
}

async fn run_with<S: storage::KeyStore + storage::ViewStore>(
    store: S,
    (listener, web): (tokio::net::TcpListener, Option<tokio::net::TcpListener>),
    limits: Limits,
    scheduler: Arc<service::rebuild::RebuildSettings>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: CancellationToken,
    cfg: &ServeConfig,
) -> Result<()> {
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let store = Arc::new(store);
    // The web views share the gRPC server's token: whichever stops first stops both.
    let web = match web {
        Some(web) => {
            let addr = web.local_addr()?;
            tracing::info!(web = %addr, "web views listening: pages, /api, /metrics");
            let (store, data_dir, token) = (store.clone(), cfg.data_dir.clone(), shutdown.clone());
            Some(tokio::spawn(async move {
                let served = debcover_coordinator::web::serve(web, store, data_dir, token.clone()).await;
                token.cancel();
                served
            }))
        }
        None => None,
    };
    // Logged last: the address announces a server that is ready, web views included.
    tracing::info!(%scheme, %addr, backend = store.backend(), db = %redact(&cfg.db), "coordinator listening");
    let served = service::run(listener, CoordinatorService::new(store, limits), scheduler, tls, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(web) = web {
        match web.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the web views failed"),
            Err(e) => tracing::error!(error = %e, "the web views task failed"),
        }
    }
    served.context("the gRPC server failed (with TLS: check --tls-cert and --tls-key)")?;
    tracing::info!("coordinator stopped");
    Ok(())
}

/// Hide a password in a database URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn signal_shutdown(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
    token.cancel();
}

//! The `debcover` command line: one clap tree. Global options (`--server`, `--json`,
//! `--admin-token-file`, `--config`, `--ca-cert`, `--log`) are accepted before or after the
//! subcommand, as git, kubectl and cargo accept theirs.
#![allow(missing_docs)] // Each field's documentation is its `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Prove that security fixes in statically linked libraries actually shipped.
///
/// The coordinator (`debcover serve`) stores .buildinfo files and archive indices and answers
/// which binaries were built against which library versions. Every other command is a client
/// that talks to a coordinator over gRPC.
#[derive(Parser)]
#[command(name = "debcover", version, about, long_about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Configuration file (TOML). Default: $XDG_CONFIG_HOME/debcover/config.toml if it exists.
    #[arg(long, global = true, env = "DEBCOVER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log filter (tracing syntax: error, warn, info, debug, or per-module directives).
    #[arg(long, global = true, env = "DEBCOVER_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,

    /// Write logs as JSON lines (for log collectors).
    #[arg(long, global = true, env = "DEBCOVER_LOG_JSON")]
    pub log_json: bool,

    /// Client commands: PEM CA certificate that an https:// coordinator's certificate must chain
    /// to [default: the system's roots].
    #[arg(long, global = true, env = "DEBCOVER_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,

    /// Client commands: the coordinator to talk to [default: http://127.0.0.1:7430].
    #[arg(long, global = true, env = "DEBCOVER_SERVER", value_name = "URL")]
    pub server: Option<String>,

    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// File holding the admin token: read by admin commands [default: DATA_DIR/admin.token, as
    /// written by `debcover serve`]; `serve` creates it with a new random token if missing.
    /// DEBCOVER_ADMIN_TOKEN, when set, is the token itself.
    #[arg(long, global = true, env = "DEBCOVER_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Client commands: file holding the API token calls carry (made by `debcover token add`;
    /// DEBCOVER_TOKEN, when set, is the token itself) [default: the admin token, when readable].
    #[arg(long, global = true, env = "DEBCOVER_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

pub const EXIT_CODES: &str = "Exit codes: 0 success, 1 some inputs were rejected, 2 error.";

#[derive(Subcommand)]
pub enum Command {
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
    Status,
    /// Library fixes: find every shipped binary that embeds a vulnerable version, plan the
    /// rebuilds, and track each one until the evidence shows the fix.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Rebuilder node credentials (admin).
    #[command(subcommand)]
    Node(NodeCommand),
    /// API tokens with a role: admin, ingest (automation feeding buildinfos and indices),
    /// campaign (security and release teams: campaigns and rebuild requests) (admin).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit trail: who ingested, created, requested and revoked what (admin).
    Audit {
        /// Newest entries to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
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
    Keys {
        /// Print only the coordinator's current public key, as PEM: the file `debcover verify
        /// --trust-key` takes (fetch it once over a channel you trust, and keep it).
        #[arg(long)]
        coordinator_pem: bool,
    },
    /// The stored signed attestations of a build; --export DIR writes them with their keys and
    /// the coordinator-signed in-toto layout, for `debcover verify` or in-toto-verify.
    Attestations(crate::client::attest::AttestationsArgs),
    /// The rebuild queue: counts per state and priority, and the first jobs.
    Queue(QueueArgs),
    /// Read what a local .deb's binaries say they contain (Go build info, Rust .dep-v0, rustc)
    /// and, with --packages, check it against the package's *Built-Using (offline; exit 1 on
    /// any disagreement or undeclared finding).
    InspectDeb(crate::client::inspect::InspectDebArgs),
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a token; its secret is printed once (store it in a file for --token-file) and kept
    /// only hashed.
    Add {
        /// Name, unique among valid tokens (who it is for: `ci-feeder`, `security-team`).
        #[arg(long)]
        name: String,
        /// admin, ingest or campaign.
        #[arg(long)]
        role: String,
    },
    /// Every token with its role and last use (never the secrets).
    List,
    /// Revoke a token: refused from its next call.
    Revoke {
        /// Its name.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum NodeCommand {
    /// Issue a credential for a node; the token is printed once and stored only hashed.
    Add {
        /// Operator (one organisation or person; independence is counted per operator).
        #[arg(long)]
        operator: String,
        /// Node name, unique per operator.
        #[arg(long)]
        name: String,
    },
    /// Every node, its credential state, capabilities and leases.
    List,
    /// Revoke a node's credential; its leases go back to the queue.
    Revoke {
        /// Operator.
        #[arg(long)]
        operator: String,
        /// Node name.
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum RebuildCommand {
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
    },
    /// Queue parked jobs again with fresh budgets (admin): `--job ID`, or every parked job of
    /// SOURCE (optionally one VERSION). See why they were parked with `debcover build history`.
    Release {
        /// Source package.
        #[arg(required_unless_present = "job")]
        source: Option<String>,
        /// Binary or source version [default: every one].
        version: Option<String>,
        /// One job, by id (`debcover queue --state parked`).
        #[arg(long, conflicts_with = "source")]
        job: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum VerifyCommand {
    /// Queue every shipped build of SUITE at background priority (deduplicated; builds
    /// verified or parked before are skipped).
    Suite {
        /// Suite with an ingested Packages index.
        suite: String,
        /// Only builds for this host architecture (repeat for several).
        #[arg(long = "arch", value_name = "ARCH")]
        arches: Vec<String>,
    },
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(subcommand)]
    pub command: Option<VerifyCommand>,
    /// An export directory (`debcover attestations ... --export DIR`).
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub offline: crate::client::attest::VerifyDirArgs,
}

#[derive(Args)]
pub struct QueueArgs {
    /// Jobs in this state (queued, leased, verified, parked; repeat) [default: queued and leased].
    #[arg(long = "state", value_name = "STATE")]
    pub states: Vec<String>,
    /// Jobs listed (counts always cover everything).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Args)]
pub struct CampaignSpecArgs {
    /// Source package of the library (all its binaries count), e.g. golang-golang-x-net.
    #[arg(long)]
    pub library: String,
    /// First fixed version of the library (Debian version).
    #[arg(long, value_name = "VERSION")]
    pub fixed: String,
    /// Suite in scope (repeat for several); it must have a Packages index ingested.
    #[arg(long = "suite", required = true, value_name = "SUITE")]
    pub suites: Vec<String>,
    /// Architecture in scope (repeat for several) [default: every indexed one].
    #[arg(long = "arch", value_name = "ARCH")]
    pub arches: Vec<String>,
    /// binnmu (wanna-build binNMUs; unstable-like suites) or sourceful (no-change uploads;
    /// security suites).
    #[arg(long, default_value = "binnmu", value_parser = ["binnmu", "sourceful"])]
    pub mode: String,
    /// Title [default: LIBRARY FIXED].
    #[arg(long, default_value = "")]
    pub title: String,
    /// Advisory reference, e.g. CVE-2023-39325 (repeat for several).
    #[arg(long = "advisory", value_name = "ID")]
    pub advisories: Vec<String>,
    /// Waves of transitive dependents to follow (1: direct items only).
    #[arg(long, default_value_t = debcover_core::campaign::DEFAULT_MAX_DEPTH)]
    pub max_depth: u32,
    /// Which affected items make their dependents affected: `declared` follows static
    /// libraries that declare what they embed (Static-Built-Using and kin); `dev` follows every
    /// -dev/-static/-source binary of an affected item (for undeclared static libraries;
    /// over-approximates with shared libraries).
    #[arg(long, default_value = "declared", value_parser = ["declared", "dev"])]
    pub propagate: String,
    /// "Name <email>" for the changelog entries of sourceful uploads
    /// [default: $DEBFULLNAME <$DEBEMAIL>, else the Debian Security Team].
    #[arg(long, value_name = "NAME <EMAIL>")]
    pub changed_by: Option<String>,
    /// Output: table, json, wb (wanna-build nmu/dw lines) or uploads (sourceful changelogs).
    /// Each asks the server for no more than it prints: wb and uploads for no items, the table
    /// for each item without its upstream thresholds and with only its first vulnerable evidence.
    #[arg(long, value_enum, default_value = "table")]
    pub format: crate::client::campaign::PlanFormat,
    #[command(flatten)]
    pub items: ItemArgs,
}

/// How much of a plan's items `--json` asks for.
#[derive(Args)]
pub struct ItemArgs {
    /// How much of each item to ask the server for: full (every field), summary (no upstream
    /// thresholds, only the first vulnerable evidence), brief (no evidence, notes or upstream
    /// thresholds) or none (no items: campaign, counts, cycles, notes, waves, exports and
    /// `item_count`). Default: the least the output prints: full for --json, summary for the
    /// table (which accepts summary or full), none for wb and uploads. Smaller answers come
    /// much faster for suite-wide plans.
    #[arg(long = "items", value_name = "SHAPE", value_parser = crate::client::campaign::ITEM_SHAPES)]
    pub detail: Option<String>,
    /// With --json: skip the first N items (in wave order); `item_count` gives the total.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub item_offset: u32,
    /// With --json: at most N items (0: all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub item_limit: u32,
}

#[derive(Subcommand)]
pub enum CampaignCommand {
    /// Preview a campaign: impact analysis and rebuild plan, nothing saved.
    Plan(CampaignSpecArgs),
    /// Save a campaign: its items are tracked from now on.
    Create(CampaignSpecArgs),
    /// List campaigns with their counts per state.
    List,
    /// Counts per state and per wave, and every item with its state and the reason for it.
    Status {
        /// Campaign id.
        id: i64,
    },
    /// The audit trail: every state change with its time and evidence.
    Events {
        /// Campaign id.
        id: i64,
    },
    /// A saved campaign's plan: table, json, wb or uploads.
    Export {
        /// Campaign id.
        id: i64,
        /// Output format (table, json, wb or uploads); each asks the server for no more than it
        /// prints.
        #[arg(long, value_enum, default_value = "wb")]
        format: crate::client::campaign::PlanFormat,
        /// "Name <email>" for changelog entries (sourceful campaigns).
        #[arg(long, value_name = "NAME <EMAIL>")]
        changed_by: Option<String>,
        #[command(flatten)]
        items: ItemArgs,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:7430].
    #[arg(long, env = "DEBCOVER_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Address of the web pages, their JSON twins (/api/...), /metrics and
    /// /dists/SUITE/ARCH/Buildinfo.xz, or `off` [default: 127.0.0.1:7440].
    #[arg(long, env = "DEBCOVER_HTTP_LISTEN", value_name = "HOST:PORT|off")]
    pub http_listen: Option<String>,
    /// Database: sqlite://PATH or postgres://USER@HOST/DB [default: sqlite in the data directory].
    #[arg(long, env = "DEBCOVER_DB", value_name = "URL")]
    pub db: Option<String>,
    /// Data directory [default: $XDG_DATA_HOME/debcover].
    #[arg(long, env = "DEBCOVER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A rebuild lease ends this long after the claim or last heartbeat (e.g. 10m).
    #[arg(long, env = "DEBCOVER_LEASE_TTL", value_name = "DURATION")]
    pub lease_ttl: Option<String>,
    /// Delays before retries after failures, comma-separated [default: 10m,1h,6h].
    #[arg(long, env = "DEBCOVER_RETRY_DELAYS", value_name = "LIST")]
    pub retry_delays: Option<String>,
    /// Failures after which a rebuild job is parked [default: 4].
    #[arg(long, env = "DEBCOVER_MAX_FAILURES", value_name = "N")]
    pub max_failures: Option<u32>,
    /// Unreproducible results after which a rebuild job is parked [default: 2].
    #[arg(long, env = "DEBCOVER_MAX_UNREPRODUCIBLE", value_name = "N")]
    pub max_unreproducible: Option<u32>,
    /// Distinct operators that must reproduce a build [default: 2].
    #[arg(long, env = "DEBCOVER_VERIFIERS", value_name = "K")]
    pub verifiers: Option<u32>,
    /// Serve gRPC over TLS with this PEM certificate chain (needs --tls-key); clients then use
    /// https://HOST:PORT.
    #[arg(long, env = "DEBCOVER_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "DEBCOVER_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Debian mirror rebuild jobs point nodes to for sources and the archive's binaries
    /// (http://, https:// or file:///PATH) [default: none: nodes use their own apt].
    #[arg(long, env = "DEBCOVER_ARCHIVE_MIRROR", value_name = "URL")]
    pub archive_mirror: Option<String>,

    /// Reads (built-with, builds, campaigns, queue, attestations, web views) need a credential
    /// too; without it they are open to anyone who reaches the ports. Writes always need one.
    #[arg(long, env = "DEBCOVER_CLOSED_READS")]
    pub closed_reads: bool,

    /// OpenPGP keyring (armored or binary, e.g. from `gpg --export`) whose keys buildinfo
    /// signatures are checked against; repeat for several. The verified signer is stored with
    /// each build (`debcover build show`).
    #[arg(long = "buildinfo-keyring", value_name = "FILE", env = "DEBCOVER_BUILDINFO_KEYRINGS", value_delimiter = ':')]
    pub buildinfo_keyrings: Vec<PathBuf>,

    /// Which buildinfos are accepted by their signature: any (default; a bad signature is
    /// still refused), signed (refuse unsigned), known (only signatures that verify with a key
    /// of --buildinfo-keyring).
    #[arg(long, env = "DEBCOVER_SIGNATURE_POLICY", value_name = "any|signed|known")]
    pub signature_policy: Option<String>,

    /// Most paragraphs accepted in one archive index (bounds the coordinator's memory during
    /// an import; the largest Debian index has about 66,000) [default: 250000].
    #[arg(long, env = "DEBCOVER_MAX_INDEX_ENTRIES", value_name = "N")]
    pub max_index_entries: Option<usize>,
}

#[derive(Subcommand)]
pub enum IngestCommand {
    /// Ingest .buildinfo files: files, directories (recursively), aggregated indices
    /// (Buildinfo, .gz, .xz) and http(s) URLs.
    Buildinfo {
        /// Inputs.
        #[arg(required = true, value_name = "PATH|URL")]
        inputs: Vec<String>,
        /// Buildinfos per batch sent to the server.
        #[arg(long, default_value_t = 512)]
        batch_size: usize,
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
    },
}

#[derive(Args)]
pub struct BuiltWithArgs {
    /// Binary package name, or src:NAME.
    pub package: String,
    /// Only versions strictly lower than this (Debian ordering).
    #[arg(long, value_name = "VERSION")]
    pub before: Option<String>,
    /// Only builds with binaries shipped in this suite.
    #[arg(long)]
    pub suite: Option<String>,
    /// Only builds for this architecture (or "all").
    #[arg(long)]
    pub arch: Option<String>,
}

#[derive(Subcommand)]
pub enum BuildCommand {
    /// The builds of a source package and what each was built against.
    Show {
        /// Source package.
        source: String,
        /// Only this version (binary or source version).
        version: Option<String>,
        /// Only this architecture.
        #[arg(long)]
        arch: Option<String>,
    },
    /// Print the stored buildinfo of a build, byte for byte.
    Get {
        /// Build id (SHA-256 of the buildinfo).
        id: String,
    },
    /// Every rebuild job of a source and each attempt: node, operator, outcome.
    History {
        /// Source package.
        source: String,
        /// Only this version (binary or source version).
        version: Option<String>,
    },
}



//! Build backends: how a job becomes a set of produced files.
//!
//! - [`BackendKind::Local`]: on this machine, with its installed packages. Fetches the source
//!   ([`crate::source`]), checks the installed packages against the buildinfo's
//!   Installed-Build-Depends ([`crate::envcheck`]) and reports any difference as
//!   `environment-mismatch` without building, reconstructs the build (Environment, Build-Path
//!   when recorded, the binNMU changelog entry from Binary-Only-Changes, the architecture set)
//!   and runs `dpkg-buildpackage`.
//! - [`BackendKind::Debrebuild`]: the production backend for Debian. `debrebuild` (devscripts)
//!   recreates the recorded environment from snapshot.debian.org and builds in it:
//!   `debrebuild --buildresult OUT --builder=BUILDER BUILDINFO`.
//! - [`BackendKind::Command`]: an operator's own program, under this contract:
//!   - it runs in the job's work directory, with the job in environment variables:
//!     `DEBCOVER_BUILDINFO` (path of the original .buildinfo), `DEBCOVER_SOURCE`,
//!     `DEBCOVER_SOURCE_VERSION`, `DEBCOVER_VERSION` (binary version), `DEBCOVER_ARCH`,
//!     `DEBCOVER_DSC_URL` and `DEBCOVER_DSC_SHA256` (empty when the coordinator knows no
//!     mirror), `DEBCOVER_JOB_ID`, and `DEBCOVER_OUTPUT_DIR` (an empty directory);
//!   - its standard output and error are the build log;
//!   - exit 0: built. Every regular file it left in `DEBCOVER_OUTPUT_DIR` is a produced file
//!     (the node hashes them); a `.buildinfo` file there is also sent as the produced buildinfo;
//!   - exit 2: the build dependencies could not be installed (`dependencies-unavailable`);
//!   - exit 3: the build environment differs from the recorded one; one difference per line
//!     in `DEBCOVER_OUTPUT_DIR/environment-differences.txt`;
//!   - any other exit: the build failed (`build-failed`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use debcover_formats::Buildinfo;
use debversion::Version;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::envcheck;
use crate::hash::sha256_file;
use crate::process::{self, Ended, Log, Step};
use crate::source::{self, SourceError, SourceRequest};

/// A backend a node offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// dpkg-buildpackage on this machine.
    Local,
    /// debrebuild with a snapshot-based builder.
    Debrebuild,
    /// The operator's program.
    Command,
}

impl BackendKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Local => "local",
            BackendKind::Debrebuild => "debrebuild",
            BackendKind::Command => "command",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(BackendKind::Local),
            "debrebuild" => Ok(BackendKind::Debrebuild),
            "command" => Ok(BackendKind::Command),
            other => Err(format!("unknown backend {other:?}: expected local, debrebuild or command")),
        }
    }
}

/// A job, validated: the buildinfo parsed, the source request derived from it.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// Coordinator job id.
    pub job_id: i64,
    /// The original .buildinfo bytes.
    pub buildinfo_bytes: Vec<u8>,
    /// The same, parsed.
    pub buildinfo: Buildinfo,
    /// Where the source comes from.
    pub source: SourceRequest,
    /// The backend the job requires, if any.
    pub backend: Option<BackendKind>,
    /// Originals the archive ships: (file name, SHA-256, URL).
    pub originals: Vec<(String, String, String)>,
}

/// Why a build failed (the wire's failure codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The package's build failed.
    BuildFailed,
    /// The build environment could not be had.
    DependenciesUnavailable,
    /// The time limit passed.
    Timeout,
    /// Something on this node broke (network, disk, missing tool).
    Infrastructure,
}

impl FailureKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::BuildFailed => "build-failed",
            FailureKind::DependenciesUnavailable => "dependencies-unavailable",
            FailureKind::Timeout => "timeout",
            FailureKind::Infrastructure => "infrastructure",
        }
    }
}

/// A produced file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    /// File name.
    pub name: String,
    /// Size.
    pub size: u64,
    /// Lower-case hex SHA-256, computed by the node.
    pub sha256: String,
    /// Where it is.
    pub path: PathBuf,
}

/// How a job ended on the node.
#[derive(Debug)]
pub enum Outcome {
    /// The build ran; the coordinator judges the files.
    Built {
        /// Every produced file.
        files: Vec<Produced>,
        /// The produced .buildinfo, when the build wrote one.
        buildinfo: Option<Vec<u8>>,
        /// A diffoscope report on files that differ from the originals, when one was made.
        diffoscope: Option<PathBuf>,
    },
    /// It failed.
    Failed {
        /// Why, as a code.
        kind: FailureKind,
        /// Why, in words.
        message: String,
    },
    /// This machine's environment differs from the recorded one; nothing was built.
    EnvironmentMismatch {
        /// One line per difference.
        differences: Vec<String>,
    },
    /// Shutdown or a lost lease stopped it.
    Cancelled,
}

impl Outcome {
    fn failed(kind: FailureKind, message: impl Into<String>) -> Outcome {
        Outcome::Failed { kind, message: message.into() }
    }
}

/// What a backend needs besides the job.
pub struct Ctx<'a> {
    /// Node configuration.
    pub config: &'a Config,
    /// The job's fresh work directory.
    pub dir: &'a Path,
    /// The job's build log.
    pub log: &'a mut Log,
    /// Fires on shutdown or when the lease is lost.
    pub cancel: &'a CancellationToken,
}

/// Whether the tools a backend needs are installed: `Err` says what to install.
pub fn available(kind: BackendKind, config: &Config) -> Result<(), String> {
    let need: &[(&str, &str)] = match kind {
        BackendKind::Local => &[
            ("dpkg-buildpackage", "dpkg-dev"),
            ("dpkg-source", "dpkg-dev"),
            ("dpkg-query", "dpkg"),
            ("fakeroot", "fakeroot"),
        ],
        BackendKind::Debrebuild => match config.debrebuild_builder.as_str() {
            "sbuild" | "sbuild+unshare" => &[("debrebuild", "devscripts"), ("sbuild", "sbuild"), ("mmdebstrap", "mmdebstrap")],
            "mmdebstrap" => &[("debrebuild", "devscripts"), ("mmdebstrap", "mmdebstrap")],
            _ => &[("debrebuild", "devscripts")],
        },
        BackendKind::Command => {
            return match &config.command {
                None => Err("the command backend needs `command` (a program path) in the configuration".into()),
                Some(p) if !is_executable(p) => Err(format!("command {} is not an executable file", p.display())),
                Some(_) => Ok(()),
            };
        }
    };
    let missing: Vec<String> =
        need.iter().filter(|(tool, _)| which(tool).is_none()).map(|(tool, pkg)| format!("{tool} (package {pkg})")).collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("missing {}", missing.join(", "))) }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// The path of `tool` on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(tool)).find(|p| is_executable(p))
}

/// Run `job` with `kind`.
pub async fn run(kind: BackendKind, job: &JobSpec, ctx: &mut Ctx<'_>) -> Outcome {
    let outcome = match kind {
        BackendKind::Local => local(job, ctx).await,
        BackendKind::Debrebuild => debrebuild(job, ctx).await,
        BackendKind::Command => command(job, ctx).await,
    };
    match outcome {
        Outcome::Built { files, buildinfo, .. } if ctx.config.diffoscope => {
            let diffoscope = diffoscope(job, &files, ctx).await;
            Outcome::Built { files, buildinfo, diffoscope }
        }
        other => other,
    }
}

fn io_failure(what: &str, e: impl fmt::Display) -> Outcome {
    Outcome::failed(FailureKind::Infrastructure, format!("{what}: {e}"))
}

fn source_failure(e: SourceError) -> Outcome {
    match e {
        SourceError::Cancelled => Outcome::Cancelled,
        SourceError::Unavailable(m) => Outcome::failed(FailureKind::DependenciesUnavailable, m),
        SourceError::Fetch(m) | SourceError::Integrity(m) => Outcome::failed(FailureKind::Infrastructure, m),
    }
}

/// `-b`, `-B` or `-A`, from the buildinfo's Architecture field.
pub fn build_type(architectures: &[String]) -> &'static str {
    let indep = architectures.iter().any(|a| a == "all");
    let dep = architectures.iter().any(|a| a != "all" && a != "source");
    match (dep, indep) {
        (true, true) => "-b",
        (true, false) => "-B",
        (false, _) => "-A",
    }
}

/// The unpacked tree's directory, and the directory to remove afterwards when it lies outside
/// the work directory. The recorded Build-Path is used when it is one Debian records
/// (`/build/DIR/TREE`: dpkg writes Build-Path only under /build), has no `..`, and its parent
/// does not exist yet, so that the node creates, and later removes, only a directory of its
/// own; else `DIR/build/SOURCE-UPSTREAM`.
fn build_path(job: &JobSpec, dir: &Path, log: &mut Log) -> (PathBuf, Option<PathBuf>) {
    if let Some(recorded) = &job.buildinfo.build_path {
        let p = Path::new(recorded);
        let plain = p.components().all(|c| matches!(c, std::path::Component::RootDir | std::path::Component::Normal(_)));
        let parent = p.parent().filter(|parent| parent.starts_with("/build") && parent.components().count() >= 3);
        match parent {
            Some(parent) if plain && !parent.exists() => {
                let _ = log.note(&format!("building in the recorded Build-Path {recorded}"));
                return (p.to_owned(), Some(parent.to_owned()));
            }
            _ => {
                let _ = log.note(&format!(
                    "recorded Build-Path {recorded} is not usable here (not /build/DIR/TREE, or in use); building in the work directory"
                ));
            }
        }
    }
    let v: &Version = &job.source.version;
    (dir.join("build").join(format!("{}-{}", job.source.source, v.upstream_version)), None)
}

/// Prepend the binNMU changelog entry the buildinfo recorded, as sbuild does.
fn apply_binnmu(tree: &Path, entry: &str) -> std::io::Result<()> {
    let path = tree.join("debian/changelog");
    let old = std::fs::read_to_string(&path)?;
    let mut text = entry.trim_end_matches('\n').to_owned();
    text.push_str("\n\n");
    text.push_str(&old);
    std::fs::write(&path, text)
}

/// The variables dpkg records in a buildinfo's Environment (`Dpkg::BuildInfo`'s
/// `get_build_env_allowed`, dpkg 1.21.14 and later, plus the `DEB_*FLAGS_{SET,STRIP,APPEND,
/// PREPEND}` that dpkg-genbuildinfo records from dpkg-buildflags): the only ones a build is
/// given from a buildinfo. Anything else a buildinfo names (`LD_PRELOAD`, `PERL5OPT`, `PATH`,
/// `BASH_ENV`, ...) was not recorded by dpkg and would let its author run code on the node.
pub const DPKG_RECORDED_ENV: &[&str] = &[
    // Toolchain.
    "CC", "CPP", "CXX", "OBJC", "OBJCXX", "PC", "FC", "M2C", "AS", "LD", "AR", "RANLIB", "MAKE", "AWK", "LEX", "YACC",
    // Toolchain flags.
    "ASFLAGS", "CFLAGS", "CPPFLAGS", "CXXFLAGS", "OBJCFLAGS", "OBJCXXFLAGS", "GCJFLAGS", "DFLAGS", "FFLAGS", "LDFLAGS",
    "ARFLAGS", "MAKEFLAGS",
    // Dynamic linker.
    "LD_LIBRARY_PATH",
    // Locale.
    "LANG", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_TIME", "LC_COLLATE", "LC_MONETARY", "LC_MESSAGES", "LC_PAPER",
    "LC_NAME", "LC_ADDRESS", "LC_TELEPHONE", "LC_MEASUREMENT", "LC_IDENTIFICATION",
    // Build flags, vendor, dpkg's own directories, symbols, reproducibility.
    "DEB_BUILD_OPTIONS", "DEB_BUILD_PROFILES", "DEB_VENDOR", "DPKG_ROOT", "DPKG_ADMINDIR", "DPKG_DATADIR",
    "DPKG_ORIGINS_DIR", "DPKG_GENSYMBOLS_CHECK_LEVEL", "SOURCE_DATE_EPOCH",
];

/// Whether dpkg records `name` (see [`DPKG_RECORDED_ENV`]).
pub fn dpkg_records(name: &str) -> bool {
    if DPKG_RECORDED_ENV.contains(&name) {
        return true;
    }
    // DEB_<FLAG>_<OP>, e.g. DEB_CFLAGS_APPEND, DEB_LDFLAGS_MAINT_STRIP.
    let Some(rest) = name.strip_prefix("DEB_") else { return false };
    ["_SET", "_STRIP", "_APPEND", "_PREPEND"].iter().any(|op| {
        rest.strip_suffix(op).is_some_and(|flag| {
            let flag = flag.strip_suffix("_MAINT").unwrap_or(flag);
            flag.ends_with("FLAGS") && flag.bytes().all(|c| c.is_ascii_uppercase() || c == b'_')
        })
    })
}

/// The environment of a build from `b`: the variables the buildinfo recorded that dpkg
/// records (others are listed in the second vector, for the log), over an empty environment.
fn build_env(b: &Buildinfo) -> (Vec<(String, String)>, Vec<String>) {
    let mut env = Vec::new();
    let mut refused = Vec::new();
    for (k, v) in &b.environment {
        if dpkg_records(k) {
            env.push((k.clone(), v.clone()));
        } else {
            refused.push(k.clone());
        }
    }
    (env, refused)
}

async fn local(job: &JobSpec, ctx: &mut Ctx<'_>) -> Outcome {
    let b = &job.buildinfo;
    // 1. The environment: a build elsewhere proves nothing, so check before building.
    let installed = match envcheck::installed_packages().await {
        Ok(i) => i,
        Err(e) => return io_failure("listing installed packages", e),
    };
    let host = crate::config::host_architecture();
    let differences = envcheck::differences(&b.installed_build_depends, &installed, &host);
    if !differences.is_empty() {
        let _ = ctx.log.note(&format!("{} differences from the recorded Installed-Build-Depends:", differences.len()));
        for d in &differences {
            let _ = ctx.log.note(&format!("  {d}"));
        }
        return Outcome::EnvironmentMismatch { differences };
    }
    let _ = ctx.log.note(&format!(
        "build environment matches the {} recorded Installed-Build-Depends",
        b.installed_build_depends.len()
    ));
    // 2. The source.
    let src_dir = ctx.dir.join("source");
    if let Err(e) = tokio::fs::create_dir_all(&src_dir).await {
        return io_failure("creating the source directory", e);
    }
    let dsc = match source::fetch(&job.source, &src_dir, ctx.log, ctx.cancel).await {
        Ok(d) => d,
        Err(e) => return source_failure(e),
    };
    let (tree, outside) = build_path(job, ctx.dir, ctx.log);
    let result = match source::unpack(&dsc, &tree, ctx.log, ctx.cancel).await {
        Ok(()) => build_in_tree(job, ctx, &tree).await,
        Err(e) => source_failure(e),
    };
    // A recorded Build-Path's directory (created by this job) is removed here; the work
    // directory itself is removed by the caller.
    if let Some(own) = outside {
        let _ = tokio::fs::remove_dir_all(own).await;
    }
    result
}

async fn build_in_tree(job: &JobSpec, ctx: &mut Ctx<'_>, tree: &Path) -> Outcome {
    let b = &job.buildinfo;
    // 3. The binNMU entry.
    if let Some(entry) = &b.binary_only_changes {
        if let Err(e) = apply_binnmu(tree, entry) {
            return io_failure("adding the binNMU changelog entry", e);
        }
        let _ = ctx.log.note("added the recorded Binary-Only-Changes entry to debian/changelog");
    }
    // 4. Build, as the build user when there is one: the tree, its output directory and a home
    // become that user's; the node's key, token and other jobs stay out of reach.
    if let Some(user) = &ctx.config.build_user {
        let home = ctx.dir.join("home");
        let out = tree.parent().unwrap_or(ctx.dir);
        let owned = std::fs::create_dir_all(&home).and_then(|()| user.own_tree(&home)).and_then(|()| user.own_tree(out));
        if let Err(e) = owned {
            return io_failure(&format!("giving the build tree to the build user {}", user.name), e);
        }
        let _ = ctx.log.note(&format!("building as user {} (uid {})", user.name, user.uid));
    }
    let mode = build_type(&b.architectures);
    let mut step = Step::new("dpkg-buildpackage", &["-us", "-uc", mode], tree);
    let (env, refused) = build_env(b);
    if !refused.is_empty() {
        let _ = ctx.log.note(&format!(
            "not passed to the build (dpkg does not record them, so they are not part of the recorded build): {}",
            refused.join(", ")
        ));
    }
    step.env = env;
    step.env.push(("HOME".into(), ctx.dir.join("home").to_string_lossy().into_owned()));
    step.clean_env = true;
    step.user = ctx.config.build_user.clone();
    let ended = match process::run(&step, ctx.log, ctx.config.build_timeout, ctx.cancel).await {
        Ok(e) => e,
        Err(e) => return io_failure("running dpkg-buildpackage", e),
    };
    match ended {
        Ended::Exited(0) => {}
        Ended::Exited(code) => {
            return Outcome::failed(FailureKind::BuildFailed, format!("dpkg-buildpackage {mode} exited with status {code}"));
        }
        Ended::TimedOut => {
            return Outcome::failed(
                FailureKind::Timeout,
                format!("dpkg-buildpackage ran past the limit of {} s", ctx.config.build_timeout.as_secs()),
            );
        }
        Ended::Cancelled => return Outcome::Cancelled,
    }
    // 5. What it produced: the files its .buildinfo lists, hashed here.
    let out_dir = tree.parent().unwrap_or(ctx.dir).to_owned();
    collect(&out_dir, ctx.log, Select::Listed).await
}

/// Which files of an output directory are the build's products.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Select {
    /// The files the .buildinfo there lists (or, without one, every .deb/.udeb/.ddeb): what
    /// dpkg-buildpackage and debrebuild leave beside other files.
    Listed,
    /// Every regular file (the command backend's output directory).
    All,
}

/// The produced files in `dir`, each hashed by the node, with the .buildinfo found there.
async fn collect(dir: &Path, log: &mut Log, select: Select) -> Outcome {
    let dir = dir.to_owned();
    let found = tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<Produced>, Option<Vec<u8>>)> {
        let mut names: Vec<String> = Vec::new();
        let mut buildinfo = None;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "environment-differences.txt" {
                continue;
            }
            if name.ends_with(".buildinfo") && buildinfo.is_none() {
                buildinfo = Some(std::fs::read(entry.path())?);
            }
            names.push(name);
        }
        if select == Select::Listed {
            let listed: Option<Vec<String>> = buildinfo
                .as_ref()
                .and_then(|b| Buildinfo::parse(b).ok())
                .map(|b| b.checksums.into_iter().map(|c| c.name).collect());
            names = match listed {
                Some(l) => l.into_iter().filter(|n| names.contains(n)).collect(),
                None => names
                    .into_iter()
                    .filter(|n| n.ends_with(".deb") || n.ends_with(".udeb") || n.ends_with(".ddeb"))
                    .collect(),
            };
        }
        let mut files = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let (size, sha256) = sha256_file(&path)?;
            files.push(Produced { name, size, sha256, path });
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((files, buildinfo))
    })
    .await;
    match found {
        Ok(Ok((files, buildinfo))) => {
            for f in &files {
                let _ = log.note(&format!("produced {} ({} bytes, sha256 {})", f.name, f.size, f.sha256));
            }
            if files.is_empty() {
                return Outcome::failed(FailureKind::BuildFailed, "the build produced no package files");
            }
            Outcome::Built { files, buildinfo, diffoscope: None }
        }
        Ok(Err(e)) => io_failure("hashing the produced files", e),
        Err(e) => io_failure("hashing the produced files", e),
    }
}

async fn write_original(job: &JobSpec, dir: &Path) -> Result<PathBuf, Outcome> {
    let v = {
        let mut v = job.buildinfo.version.clone();
        v.epoch = None;
        v
    };
    let path = dir.join(format!("{}_{}_{}.buildinfo", job.buildinfo.source, v, job.buildinfo.host_architecture()));
    tokio::fs::write(&path, &job.buildinfo_bytes).await.map_err(|e| io_failure("writing the original buildinfo", e))?;
    Ok(path)
}

async fn debrebuild(job: &JobSpec, ctx: &mut Ctx<'_>) -> Outcome {
    let original = match write_original(job, ctx.dir).await {
        Ok(p) => p,
        Err(o) => return o,
    };
    let out = ctx.dir.join("result");
    if let Err(e) = tokio::fs::create_dir_all(&out).await {
        return io_failure("creating the result directory", e);
    }
    let out_s = out.to_string_lossy().into_owned();
    let builder = format!("--builder={}", ctx.config.debrebuild_builder);
    let original_s = original.to_string_lossy().into_owned();
    let step = Step::new("debrebuild", &["--buildresult", &out_s, &builder, &original_s], ctx.dir);
    match process::run(&step, ctx.log, ctx.config.build_timeout, ctx.cancel).await {
        Ok(Ended::Exited(0)) => collect(&out, ctx.log, Select::Listed).await,
        Ok(Ended::Exited(code)) => {
            // A build that ran leaves its sbuild/mmdebstrap log (*.build) in the result
            // directory; without one, debrebuild failed before building: it could not recreate
            // the recorded environment (snapshot.debian.org or metasnap unreachable, packages
            // gone).
            let built = std::fs::read_dir(&out)
                .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".build")))
                .unwrap_or(false);
            if built {
                Outcome::failed(FailureKind::BuildFailed, format!("debrebuild exited with status {code}: the build failed"))
            } else {
                Outcome::failed(
                    FailureKind::DependenciesUnavailable,
                    format!("debrebuild exited with status {code} before building: it could not recreate the recorded environment (see the log)"),
                )
            }
        }
        Ok(Ended::TimedOut) => Outcome::failed(FailureKind::Timeout, "debrebuild ran past the time limit"),
        Ok(Ended::Cancelled) => Outcome::Cancelled,
        Err(e) => io_failure("running debrebuild", e),
    }
}

async fn command(job: &JobSpec, ctx: &mut Ctx<'_>) -> Outcome {
    let Some(program) = ctx.config.command.clone() else {
        return Outcome::failed(FailureKind::Infrastructure, "the command backend has no program configured");
    };
    let original = match write_original(job, ctx.dir).await {
        Ok(p) => p,
        Err(o) => return o,
    };
    let out = ctx.dir.join("output");
    if let Err(e) = tokio::fs::create_dir_all(&out).await {
        return io_failure("creating the output directory", e);
    }
    let mut step = Step::new(&program.to_string_lossy(), &[], ctx.dir);
    let b = &job.buildinfo;
    step.env = vec![
        ("DEBCOVER_BUILDINFO".into(), original.to_string_lossy().into_owned()),
        ("DEBCOVER_SOURCE".into(), b.source.clone()),
        ("DEBCOVER_SOURCE_VERSION".into(), b.source_version.to_string()),
        ("DEBCOVER_VERSION".into(), b.version.to_string()),
        ("DEBCOVER_ARCH".into(), b.host_architecture().to_owned()),
        ("DEBCOVER_DSC_URL".into(), job.source.dsc_url.clone()),
        ("DEBCOVER_DSC_SHA256".into(), job.source.dsc_sha256.clone()),
        ("DEBCOVER_JOB_ID".into(), job.job_id.to_string()),
        ("DEBCOVER_OUTPUT_DIR".into(), out.to_string_lossy().into_owned()),
    ];
    match process::run(&step, ctx.log, ctx.config.build_timeout, ctx.cancel).await {
        Ok(Ended::Exited(0)) => collect(&out, ctx.log, Select::All).await,
        Ok(Ended::Exited(2)) => {
            Outcome::failed(FailureKind::DependenciesUnavailable, format!("{} exited 2: dependencies unavailable", program.display()))
        }
        Ok(Ended::Exited(3)) => {
            let text = tokio::fs::read_to_string(out.join("environment-differences.txt")).await.unwrap_or_default();
            let mut differences: Vec<String> =
                text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| l.chars().take(500).collect()).take(1000).collect();
            if differences.is_empty() {
                differences.push(format!("{} reported an environment mismatch without listing differences", program.display()));
            }
            Outcome::EnvironmentMismatch { differences }
        }
        Ok(Ended::Exited(code)) => {
            Outcome::failed(FailureKind::BuildFailed, format!("{} exited with status {code}", program.display()))
        }
        Ok(Ended::TimedOut) => Outcome::failed(FailureKind::Timeout, format!("{} ran past the time limit", program.display())),
        Ok(Ended::Cancelled) => Outcome::Cancelled,
        Err(e) => io_failure("running the command backend", e),
    }
}

/// With diffoscope installed: compare each produced package that differs from the original
/// build's hash against the original (fetched from the archive URL the coordinator gave) and
/// keep the text report. Best effort: a missing tool or original only means no report.
async fn diffoscope(job: &JobSpec, files: &[Produced], ctx: &mut Ctx<'_>) -> Option<PathBuf> {
    let tool = which("diffoscope")?;
    let official: Vec<(&str, &str)> =
        job.buildinfo.checksums.iter().filter_map(|c| c.sha256.as_deref().map(|s| (c.name.as_str(), s))).collect();
    let differing: Vec<&Produced> = files
        .iter()
        .filter(|f| official.iter().any(|(n, s)| *n == f.name && *s != f.sha256))
        .filter(|f| f.name.ends_with(".deb") || f.name.ends_with(".udeb"))
        .collect();
    if differing.is_empty() {
        return None;
    }
    let orig_dir = ctx.dir.join("originals");
    tokio::fs::create_dir_all(&orig_dir).await.ok()?;
    let report = ctx.dir.join("diffoscope.txt");
    let mut any = false;
    for f in differing {
        let Some((_, _, url)) = job.originals.iter().find(|(n, _, u)| *n == f.name && !u.is_empty()) else {
            let _ = ctx.log.note(&format!("diffoscope: no archive URL for {}; skipped", f.name));
            continue;
        };
        let orig = orig_dir.join(&f.name);
        if let Err(e) = source::fetch_file(url, &orig, ctx.cancel).await {
            let _ = ctx.log.note(&format!("diffoscope: cannot fetch the original {}: {e}", f.name));
            continue;
        }
        let part = ctx.dir.join(format!("diffoscope-{}.txt", f.name));
        let (a, b, out) =
            (orig.to_string_lossy().into_owned(), f.path.to_string_lossy().into_owned(), part.to_string_lossy().into_owned());
        let step = Step::new(&tool.to_string_lossy(), &["--text", &out, "--no-progress", &a, &b], ctx.dir);
        // diffoscope exits 1 when the files differ, which is what is expected here.
        match process::run(&step, ctx.log, Duration::from_secs(1800), ctx.cancel).await {
            Ok(Ended::Exited(0 | 1)) => {
                if let Ok(text) = tokio::fs::read(&part).await {
                    let mut all = tokio::fs::read(&report).await.unwrap_or_default();
                    all.extend_from_slice(&text);
                    let _ = tokio::fs::write(&report, all).await;
                    any = true;
                }
            }
            other => {
                let _ = ctx.log.note(&format!("diffoscope on {} ended with {other:?}; no report", f.name));
            }
        }
    }
    any.then_some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_types() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(build_type(&s(&["amd64"])), "-B");
        assert_eq!(build_type(&s(&["all"])), "-A");
        assert_eq!(build_type(&s(&["all", "amd64"])), "-b");
        assert_eq!(build_type(&s(&["source", "all", "amd64"])), "-b");
    }

    /// A buildinfo's Environment reaches the build only for the variables dpkg records: a
    /// buildinfo naming LD_PRELOAD, PERL5OPT, BASH_ENV or PATH would otherwise run its author's
    /// code on the node before the build starts.
    #[test]
    fn only_what_dpkg_records_reaches_the_build() {
        let text = "Format: 1.0\nSource: hello\nBinary: hello\nArchitecture: amd64\nVersion: 2.10-3\n\
                    Installed-Build-Depends:\n libc6 (= 2.36-9)\nEnvironment:\n DEB_BUILD_OPTIONS=\"parallel=2\"\n \
                    LD_PRELOAD=\"/tmp/evil.so\"\n PERL5OPT=\"-Mevil\"\n BASH_ENV=\"/tmp/evil.sh\"\n PATH=\"/tmp/evil\"\n \
                    DEB_CFLAGS_MAINT_APPEND=\"-O3\"\n LANG=\"C.UTF-8\"\n SOURCE_DATE_EPOCH=\"1700000000\"\n";
        let b = Buildinfo::parse(text.as_bytes()).unwrap();
        let (env, refused) = build_env(&b);
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["DEB_BUILD_OPTIONS", "DEB_CFLAGS_MAINT_APPEND", "LANG", "SOURCE_DATE_EPOCH"], "{env:?}");
        assert_eq!(refused, ["LD_PRELOAD", "PERL5OPT", "BASH_ENV", "PATH"]);
    }

    /// The list is dpkg's own: compared with what the installed dpkg says it records.
    #[test]
    fn the_recorded_list_is_dpkgs() {
        let out = std::process::Command::new("perl")
            .args(["-MDpkg::BuildInfo=get_build_env_allowed", "-e", "print join(qq(\n), get_build_env_allowed())"])
            .output();
        let Some(out) = out.ok().filter(|o| o.status.success()) else {
            assert!(std::env::var_os("CI").is_none(), "perl with Dpkg::BuildInfo (dpkg-dev) is needed in CI");
            eprintln!("SKIPPING: no perl Dpkg::BuildInfo here");
            return;
        };
        let dpkg: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
        let ours: Vec<String> = DPKG_RECORDED_ENV.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(ours, dpkg);
        assert!(dpkg_records("DEB_LDFLAGS_STRIP") && dpkg_records("DEB_CXXFLAGS_MAINT_PREPEND"));
        assert!(!dpkg_records("DEB_X_APPEND") && !dpkg_records("DEB_CFLAGS") && !dpkg_records("LD_PRELOAD"));
    }

    fn job_with_build_path(path: &str) -> JobSpec {
        let text = format!(
            "Format: 1.0\nSource: hello\nBinary: hello\nArchitecture: amd64\nVersion: 2.10-3\nBuild-Path: {path}\n\
             Installed-Build-Depends:\n libc6 (= 2.36-9)\n"
        );
        let buildinfo = Buildinfo::parse(text.as_bytes()).unwrap();
        JobSpec {
            job_id: 1,
            buildinfo_bytes: text.into_bytes(),
            source: SourceRequest {
                source: "hello".into(),
                version: "2.10-3".parse().unwrap(),
                dsc_url: String::new(),
                dsc_sha256: String::new(),
            },
            buildinfo,
            backend: None,
            originals: Vec::new(),
        }
    }

    #[test]
    fn recorded_build_path_only_under_build_and_only_if_free() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::create(&dir.path().join("log"), 1 << 20).unwrap();
        let own = "/build/debcover-test-nonexistent-1f3a";
        let (tree, cleanup) = build_path(&job_with_build_path(&format!("{own}/hello-2.10")), dir.path(), &mut log);
        assert_eq!(tree, Path::new(own).join("hello-2.10"));
        assert_eq!(cleanup.as_deref(), Some(Path::new(own)));
        // Elsewhere, or with `..`, or directly under /build: the work directory, nothing to remove.
        for bad in ["/usr/src/hello-2.10", "/build/../etc/hello", "/build/hello-2.10"] {
            let (tree, cleanup) = build_path(&job_with_build_path(bad), dir.path(), &mut log);
            assert!(tree.starts_with(dir.path()), "{bad}: {}", tree.display());
            assert!(cleanup.is_none(), "{bad}");
        }
    }

    #[test]
    fn binnmu_entry_goes_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("debian")).unwrap();
        std::fs::write(dir.path().join("debian/changelog"), "foo (1-1) unstable; urgency=low\n\n  * x\n\n -- A <a@b>  Sat, 21 Nov 2026 12:00:00 +0000\n").unwrap();
        apply_binnmu(dir.path(), "foo (1-1+b1) unstable; urgency=low, binary-only=yes\n\n  * Rebuild\n\n -- B <b@c>  Sun, 22 Nov 2026 12:00:00 +0000").unwrap();
        let text = std::fs::read_to_string(dir.path().join("debian/changelog")).unwrap();
        assert!(text.starts_with("foo (1-1+b1)"));
        assert!(text.contains("+0000\n\nfoo (1-1) unstable"));
    }
}

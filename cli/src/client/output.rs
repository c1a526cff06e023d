//! Human and `--json` renderings of server answers. JSON field names are part of the CLI's
//! contract for scripts: only ever add fields.

use std::io::Write as _;

use debcover_proto::v1 as pb;
use serde::Serialize;

use debcover_core::model;
use debcover_wire::convert;

/// Prints to stdout like `print!`, but a write error is not a panic: when the reading end of
/// the pipe is gone (`debcover built-with ... | head`) the command ends quietly with success,
/// as ripgrep does; any other error ends it with a message and exit code 2.
///
/// The process keeps Rust's default of ignoring SIGPIPE, so that a write to a closed *socket*
/// (a server that hung up) stays an error the command can report rather than a silent death.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::client::output::write_stdout(format_args!($($arg)*))
    };
}

/// [`out!`] with a newline, the counterpart of `println!`.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::client::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::client::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes formatted text to stdout; see [`out!`] for what a failed write does.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        stdout_failed(&e);
    }
}

/// Ends the process after a failed write to stdout: quietly with success on a closed pipe,
/// with a message and exit code 2 otherwise.
fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("debcover: cannot write to standard output: {e}");
    std::process::exit(2);
}

/// Prints `value` as pretty JSON and a newline, streamed to stdout rather than built as one
/// string first (`built-with --json` for a whole suite is ~50 MB); a failed write ends the
/// command as [`out!`] does. Errors: only a value JSON cannot represent.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    match serde_json::to_writer_pretty(&mut out, value) {
        Err(e) if e.is_io() => stdout_failed(&e.into()),
        written => written?,
    }
    if let Err(e) = out.write_all(b"\n").and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
    Ok(())
}

/// Whether a command failed because its output pipe was closed: its error *is* an `io::Error`
/// of kind `BrokenPipe`, as `writeln!(stdout, ..)?` returns. Only the outermost error counts: a
/// broken pipe deep in a chain (a socket under a reqwest error) is a real failure to report.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// A build as shown to users.
#[derive(Debug, Serialize)]
pub struct BuildView {
    /// SHA-256 of the buildinfo.
    pub id: String,
    /// Source package.
    pub source: String,
    /// Source version.
    pub source_version: String,
    /// Binary version.
    pub version: String,
    /// Architecture field tokens.
    pub architectures: Vec<String>,
    /// Concrete architecture.
    pub host_architecture: String,
    /// Build-Date.
    pub build_date: String,
    /// Installed-Build-Depends count.
    pub installed_build_depends: u32,
    /// Clearsigned when ingested.
    pub signed: bool,
    /// The verified signer, when a configured keyring holds its key.
    pub signer: Option<String>,
    /// Where it was ingested from.
    pub origin: String,
}

impl From<&pb::BuildSummary> for BuildView {
    fn from(b: &pb::BuildSummary) -> Self {
        BuildView::from(&convert::build_summary_of(b.clone()))
    }
}

/// An installed package.
#[derive(Debug, Serialize)]
pub struct DepView {
    /// Name.
    pub name: String,
    /// Architecture qualifier, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// Version.
    pub version: String,
}

impl From<&model::BuildSummary> for BuildView {
    fn from(b: &model::BuildSummary) -> Self {
        BuildView {
            id: b.id.clone(),
            source: b.source.clone(),
            source_version: b.source_version.clone(),
            version: b.version.clone(),
            architectures: b.architectures.clone(),
            host_architecture: b.host_architecture.clone(),
            build_date: b.build_date.clone(),
            installed_build_depends: b.installed_build_depends,
            signed: b.signed,
            signer: (!b.signer.is_empty()).then(|| b.signer.clone()),
            origin: b.origin.clone(),
        }
    }
}

impl From<&model::Dependency> for DepView {
    fn from(d: &model::Dependency) -> Self {
        DepView { name: d.name.clone(), arch: d.arch.clone(), version: d.version.clone() }
    }
}

impl From<&model::BinarySummary> for BinaryView {
    fn from(b: &model::BinarySummary) -> Self {
        BinaryView {
            package: b.package.clone(),
            version: b.version.clone(),
            architecture: b.architecture.clone(),
            filename: b.filename.clone(),
            size: b.size,
            sha256: b.sha256.clone(),
            shipped_in: b.shipped_in.clone(),
        }
    }
}

impl From<&pb::Dependency> for DepView {
    fn from(d: &pb::Dependency) -> Self {
        DepView::from(&convert::dependency_of(d.clone()))
    }
}

/// A produced binary.
#[derive(Debug, Serialize)]
pub struct BinaryView {
    /// Package name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Architecture.
    pub architecture: String,
    /// File name.
    pub filename: String,
    /// Size.
    pub size: u64,
    /// SHA-256.
    pub sha256: String,
    /// `suite/arch` shipping it.
    pub shipped_in: Vec<String>,
}

impl From<&pb::Binary> for BinaryView {
    fn from(b: &pb::Binary) -> Self {
        BinaryView::from(&convert::binary_summary_of(b.clone()))
    }
}

/// One `built-with` match.
#[derive(Debug, Serialize)]
pub struct MatchView {
    /// The build.
    pub build: BuildView,
    /// The matching installed packages.
    pub matched: Vec<DepView>,
    /// Its binaries.
    pub binaries: Vec<BinaryView>,
}

/// The `built-with` answer.
#[derive(Debug, Serialize)]
pub struct BuiltWithView {
    /// Binary names searched.
    pub resolved_packages: Vec<String>,
    /// Number of builds.
    pub count: usize,
    /// The builds.
    pub builds: Vec<MatchView>,
}

impl From<&model::BuiltWithResult> for BuiltWithView {
    fn from(r: &model::BuiltWithResult) -> Self {
        BuiltWithView {
            resolved_packages: r.resolved_packages.clone(),
            count: r.builds.len(),
            builds: r
                .builds
                .iter()
                .map(|m| MatchView {
                    build: BuildView::from(&m.build),
                    matched: m.matched.iter().map(DepView::from).collect(),
                    binaries: m.binaries.iter().map(BinaryView::from).collect(),
                })
                .collect(),
        }
    }
}

/// One build in `build show`.
#[derive(Debug, Serialize)]
pub struct DetailView {
    /// The build.
    pub build: BuildView,
    /// Everything installed when it was built.
    pub installed_build_depends: Vec<DepView>,
    /// Its binaries.
    pub binaries: Vec<BinaryView>,
    /// binNMU changelog entry.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub binary_only_changes: String,
    /// Build-Path.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub build_path: String,
    /// Build-Tainted-By.
    pub build_tainted_by: Vec<String>,
}

impl From<&pb::BuildDetail> for DetailView {
    fn from(d: &pb::BuildDetail) -> Self {
        DetailView {
            build: d.build.as_ref().map(BuildView::from).unwrap_or_else(|| BuildView::from(&pb::BuildSummary::default())),
            installed_build_depends: d.installed_build_depends.iter().map(DepView::from).collect(),
            binaries: d.binaries.iter().map(BinaryView::from).collect(),
            binary_only_changes: d.binary_only_changes.clone(),
            build_path: d.build_path.clone(),
            build_tainted_by: d.build_tainted_by.clone(),
        }
    }
}

/// Print a `built-with` answer as a table.
pub fn print_built_with(r: &model::BuiltWithResult, package: &str) {
    if r.resolved_packages.is_empty() {
        crate::outln!("No binary package is known for {package}: ingest Packages/Sources indices or buildinfos of that source first.");
        return;
    }
    if r.builds.is_empty() {
        crate::outln!("No build matches (searched: {}).", r.resolved_packages.join(", "));
        return;
    }
    crate::outln!("{:<32} {:<28} {:<8} {:<40} BINARIES", "SOURCE", "VERSION", "ARCH", "BUILT WITH");
    for m in &r.builds {
        let b = &m.build;
        let with: Vec<String> = m.matched.iter().map(|d| format!("{} {}", d.name, d.version)).collect();
        let bins: Vec<String> = m
            .binaries
            .iter()
            .map(|x| if x.shipped_in.is_empty() { x.package.clone() } else { format!("{} [{}]", x.package, x.shipped_in.join(",")) })
            .collect();
        crate::outln!("{:<32} {:<28} {:<8} {:<40} {}", b.source, b.version, b.host_architecture, with.join(", "), bins.join(" "));
    }
    crate::outln!("{} build(s).", r.builds.len());
}

/// Print `build show` as text.
pub fn print_builds(r: &pb::ShowBuildsResponse) {
    if r.builds.is_empty() {
        crate::outln!("No build stored for this source.");
        return;
    }
    for d in &r.builds {
        let Some(b) = &d.build else { continue };
        crate::outln!("{} {} [{}]", b.source, b.version, b.architectures.join(" "));
        crate::outln!("  id:        {}", b.id);
        if b.source_version != b.version {
            crate::outln!("  source:    {} {}", b.source, b.source_version);
        }
        crate::outln!("  built:     {} ({})", b.build_date, if b.build_origin.is_empty() { "unknown origin" } else { &b.build_origin });
        let signed = match (b.signed, b.signer.is_empty()) {
            (true, false) => format!("yes, by {}", b.signer),
            (true, true) => "yes (by a key of no configured keyring)".to_owned(),
            (false, _) => "no".to_owned(),
        };
        crate::outln!("  signed:    {signed}");
        for x in &d.binaries {
            let shipped = if x.shipped_in.is_empty() { "not shipped".to_owned() } else { x.shipped_in.join(", ") };
            crate::outln!("  binary:    {} ({shipped})", x.filename);
        }
        crate::outln!("  built against ({} packages):", d.installed_build_depends.len());
        for dep in &d.installed_build_depends {
            let name = if dep.arch.is_empty() { dep.name.clone() } else { format!("{}:{}", dep.name, dep.arch) };
            crate::outln!("    {name} {}", dep.version);
        }
        crate::outln!();
    }
}

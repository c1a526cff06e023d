//! `debcover inspect-deb`: what the binaries of a local `.deb` say they contain (Go build
//! info, Rust `.dep-v0`, rustc version), and, given a `Packages` index, the corroboration
//! against the package's `*Built-Using` declarations. Works offline: no coordinator involved;
//! all parsing is `debcover-formats`'.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use debcover_formats::corroborate::{self, Declared, Finding, Verdict};
use debcover_formats::embedded::{self, DepV0, ElfInfo};
use debcover_formats::{PackagesEntry, compress, deb, paragraph::Paragraphs};

/// Arguments of `debcover inspect-deb`.
#[derive(Args, Debug)]
pub struct InspectDebArgs {
    /// The binary package to read.
    pub deb: PathBuf,
    /// A `Packages` index (plain, .gz or .xz): corroborate against the declarations of the
    /// entry with this .deb's SHA-256 (else its file name).
    #[arg(long, value_name = "PACKAGES_FILE")]
    pub packages: Option<PathBuf>,
}

/// One ELF file's report.
#[derive(Debug, serde::Serialize)]
pub struct BinaryReport {
    /// Path in the package.
    pub path: String,
    /// What it says, if it could be read as ELF.
    pub info: Option<ElfInfo>,
    /// Why it could not.
    pub error: Option<String>,
    /// Corroboration findings (with `--packages`).
    pub findings: Vec<Finding>,
}

/// The whole report.
#[derive(Debug, serde::Serialize)]
pub struct DebReport {
    /// The .deb's path.
    pub deb: String,
    /// Lower-case hex SHA-256 of the .deb.
    pub sha256: String,
    /// What was read.
    pub summary: deb::DebSummary,
    /// `package version architecture` of the matched index entry, and how it was matched.
    pub index_entry: Option<(String, String)>,
    /// Per ELF file.
    pub binaries: Vec<BinaryReport>,
}

impl DebReport {
    /// Does any finding disagree or lack a declaration?
    pub fn has_disagreement(&self) -> bool {
        self.binaries.iter().flat_map(|b| &b.findings).any(|f| f.verdict != Verdict::Agrees)
    }
}

/// Run the command; `true` when every finding agrees.
pub fn run(args: &InspectDebArgs, json: bool) -> Result<bool> {
    let report = inspect(&args.deb, args.packages.as_deref())?;
    if json {
        super::output::print_json(&report)?;
    } else {
        render(&report, &mut std::io::stdout().lock())?;
    }
    Ok(!report.has_disagreement())
}

/// Read `deb` and, with `packages`, corroborate.
pub fn inspect(deb_path: &Path, packages: Option<&Path>) -> Result<DebReport> {
    let display = deb_path.display().to_string();
    let sha256 = {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        let mut f = File::open(deb_path).with_context(|| format!("cannot open {display}"))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).with_context(|| format!("cannot read {display}"))?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        hex::encode(hasher.finalize())
    };
    let entry = match packages {
        Some(p) => Some(find_entry(p, deb_path, &sha256)?),
        None => None,
    };
    let declared: Vec<Declared<'_>> = entry
        .as_ref()
        .map(|(e, _)| {
            vec![
                Declared { field: "Built-Using", refs: &e.built_using },
                Declared { field: "Static-Built-Using", refs: &e.static_built_using },
                Declared { field: "X-Cargo-Built-Using", refs: &e.x_cargo_built_using },
            ]
        })
        .unwrap_or_default();
    let file = File::open(deb_path).with_context(|| format!("cannot open {display}"))?;
    let mut binaries = Vec::new();
    let summary = deb::for_each_elf(BufReader::new(file), &deb::Limits::default(), |elf| {
        let (info, error) = match embedded::inspect_elf(elf.bytes) {
            Ok(info) => (Some(info), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let findings = match (&info, &entry) {
            (Some(info), Some(_)) => corroborate::corroborate(elf.path, info, &declared),
            _ => Vec::new(),
        };
        binaries.push(BinaryReport { path: elf.path.to_owned(), info, error, findings });
    })
    .with_context(|| display.clone())?;
    let index_entry = entry.map(|(e, how)| (format!("{} {} {}", e.package, e.version, e.architecture), how));
    Ok(DebReport { deb: display, sha256, summary, index_entry, binaries })
}

/// The entry of `packages` for this .deb: by SHA-256, else by the file name of `Filename`.
fn find_entry(packages: &Path, deb_path: &Path, sha256: &str) -> Result<(PackagesEntry, String)> {
    let display = packages.display().to_string();
    let file = File::open(packages).with_context(|| format!("cannot open {display}"))?;
    let (_, reader) = compress::open(BufReader::new(file), compress::DEFAULT_MAX_DECOMPRESSED)
        .with_context(|| format!("cannot read {display}"))?;
    let name = deb_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut by_name = None;
    for p in Paragraphs::new(reader) {
        let p = p.map_err(|e| anyhow::anyhow!("{}", e.in_file(display.as_str())))?;
        let entry = PackagesEntry::parse(&p).map_err(|e| anyhow::anyhow!("{}", e.in_file(display.as_str())))?;
        if entry.sha256 == sha256 {
            return Ok((entry, "sha256".into()));
        }
        if by_name.is_none() && entry.filename.rsplit('/').next() == Some(name.as_str()) {
            by_name = Some(entry);
        }
    }
    by_name
        .map(|e| (e, "file name".into()))
        .with_context(|| format!("{display}: no entry with SHA-256 {sha256} or file name {name}"))
}

fn render(report: &DebReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{} ({}, {} ELF files)", report.deb, report.summary.data_member, report.summary.elf_files)?;
    if let Some((entry, how)) = &report.index_entry {
        writeln!(out, "index entry: {entry} (matched by {how})")?;
    }
    for b in &report.binaries {
        writeln!(out, "{}", b.path)?;
        if let Some(e) = &b.error {
            writeln!(out, "  error: {e}")?;
        }
        let Some(info) = &b.info else { continue };
        match &info.go {
            Some(go) => {
                writeln!(out, "  go: {} ({} layout)", go.version, go.layout)?;
                if let Some(path) = &go.path {
                    writeln!(out, "  go path: {path}")?;
                }
                if let Some(m) = &go.main {
                    writeln!(out, "  go mod: {} {}", m.path, m.version)?;
                }
                if go.deps.is_empty() {
                    writeln!(out, "  go deps: none recorded")?;
                }
                for d in &go.deps {
                    let replace = d.replace.as_ref().map(|r| format!(" => {} {}", r.path, r.version)).unwrap_or_default();
                    writeln!(out, "  go dep: {} {}{replace}", d.path, d.version)?;
                }
            }
            None => writeln!(out, "  go: no build info")?,
        }
        match &info.rust.dep_v0 {
            DepV0::Absent => writeln!(out, "  rust .dep-v0: absent")?,
            DepV0::Invalid => writeln!(out, "  rust .dep-v0: unreadable")?,
            DepV0::Present(p) => {
                writeln!(out, "  rust .dep-v0: {} packages", p.len())?;
                for c in p {
                    writeln!(out, "    {} {}{}", c.name, c.version, if c.root { " (root)" } else { "" })?;
                }
            }
        }
        if let Some(rustc) = &info.rust.rustc {
            writeln!(out, "  rustc: {rustc}")?;
        }
        for n in &info.notes {
            writeln!(out, "  note: {n}")?;
        }
        for f in &b.findings {
            writeln!(out, "  {f}")?;
        }
    }
    Ok(())
}

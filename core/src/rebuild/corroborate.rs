//! Corroboration for coverage: what a rebuilt binary says about its own build (Go build info,
//! rustc version, cargo-auditable `.dep-v0`, read by `debcover_formats::embedded`) against the
//! original buildinfo's Installed-Build-Depends. The buildinfo stays authoritative; a
//! disagreement is reported, never used to overrule it.
//!
//! Installed-Build-Depends names *binary* packages; `debcover_formats::corroborate` compares
//! with *source* names, so the toolchain and library packages are mapped first, by Debian's
//! naming conventions:
//! - `golang-X.Y-go`, `golang-X.Y-src` → `golang-X.Y`;
//! - `rustc` → `rustc`; `librust-NAME[+FEATURE]-dev` → `rust-NAME`;
//! - `golang-…-dev` → `golang-…` (Go library sources).
//!
//! Everything else is not a thing a binary can say it embeds and is left out.
//!
//! # Invariants
//! - Pure: no I/O, no SQL, no protobuf.

use debcover_formats::corroborate::{Declared, Finding, Verdict, corroborate};
use debcover_formats::embedded::{CargoPackage, DepV0, ElfInfo, GoBuildInfo, GoModule};
use debcover_formats::relation::{SourceRef, strip_binnmu};
use debversion::Version;
use serde::Serialize;

/// The field name findings cite.
pub const FIELD: &str = "Installed-Build-Depends";

/// The source a binary package of Installed-Build-Depends stands for, when it is one a binary
/// can name (a Go toolchain, rustc, a Rust crate, a Go library).
pub fn source_of(binary: &str) -> Option<String> {
    if let Some(rest) = binary.strip_prefix("golang-")
        && let Some((series, kind)) = rest.split_once('-')
        && matches!(kind, "go" | "src")
        && series.split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        })
    {
        return Some(format!("golang-{series}"));
    }
    if binary == "rustc" {
        return Some("rustc".into());
    }
    if let Some(name) = binary.strip_prefix("librust-").and_then(|n| n.strip_suffix("-dev")) {
        let name = name.split('+').next().unwrap_or(name);
        return (!name.is_empty()).then(|| format!("rust-{name}"));
    }
    if binary.starts_with("golang-") && binary.ends_with("-dev") {
        return binary.strip_suffix("-dev").map(str::to_owned);
    }
    None
}

/// Installed-Build-Depends entries `(binary package, version)` as the sources they stand for,
/// each once (binNMU suffixes removed). Versions that do not parse are left out.
pub fn installed_sources(installed: &[(String, String)]) -> Vec<SourceRef> {
    let mut out: Vec<SourceRef> = Vec::new();
    for (name, version) in installed {
        let (Some(source), Ok(v)) = (source_of(name), version.parse::<Version>()) else { continue };
        let v = strip_binnmu(&v);
        if !out.iter().any(|r| r.name == source && r.version == v) {
            out.push(SourceRef { name: source, version: v });
        }
    }
    out
}

/// What `info` (read from the binary at `path`) says, against the buildinfo's
/// Installed-Build-Depends.
pub fn against_buildinfo(path: &str, info: &ElfInfo, installed: &[(String, String)]) -> Vec<Finding> {
    let refs = installed_sources(installed);
    corroborate(path, info, &[Declared { field: FIELD, refs: &refs }])
}

/// Most findings kept for one attempt; beyond, disagreements are kept first.
pub const MAX_FINDINGS: usize = 10_000;

/// A Go module or crate a binary names, with its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Module {
    /// Module path or crate name.
    pub name: String,
    /// The version used.
    pub version: String,
}

/// What one ELF file of a rebuilt `.deb` says about its build, as a node reported it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct EmbeddedBinary {
    /// The `.deb`'s file name.
    pub deb: String,
    /// The binary's path in the package (`usr/bin/lego`).
    pub path: String,
    /// Go toolchain (`go1.19.5`), for Go binaries.
    pub go_version: Option<String>,
    /// Go modules with the versions used (replacements applied).
    pub go_modules: Vec<Module>,
    /// The rustc version it names.
    pub rustc_version: Option<String>,
    /// cargo-auditable `.dep-v0` packages, the root left out.
    pub rust_crates: Vec<Module>,
}

impl EmbeddedBinary {
    /// The same facts in the shape `debcover_formats::corroborate` reads.
    pub fn elf_info(&self) -> ElfInfo {
        let mut info = ElfInfo::default();
        if let Some(version) = &self.go_version {
            info.go = Some(GoBuildInfo {
                version: version.clone(),
                layout: "reported",
                deps: self
                    .go_modules
                    .iter()
                    .map(|m| GoModule { path: m.name.clone(), version: m.version.clone(), sum: None, replace: None })
                    .collect(),
                ..GoBuildInfo::default()
            });
        }
        info.rust.rustc = self.rustc_version.clone();
        if !self.rust_crates.is_empty() {
            info.rust.dep_v0 = DepV0::Present(
                self.rust_crates
                    .iter()
                    .map(|m| CargoPackage { name: m.name.clone(), version: m.version.clone(), source: None, kind: None, root: false })
                    .collect(),
            );
        }
        info
    }
}

/// One finding about a rebuilt binary, as stored with its attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Corroboration {
    /// The `.deb` the binary is in.
    pub deb: String,
    /// The finding (binary path, subject, embedded value, declarations, verdict).
    #[serde(flatten)]
    pub finding: Finding,
}

impl Corroboration {
    /// The one-line form `build history` prints for a disagreement: `usr/bin/lego
    /// (lego_4.9.1-1_amd64.deb) says go toolchain go1.19.6, Installed-Build-Depends has
    /// golang-1.19 1.19.5-1`.
    pub fn line(&self) -> String {
        let f = &self.finding;
        line(&f.binary, &self.deb, &f.subject, &f.embedded, &f.declared)
    }
}

/// The one-line form of a finding from its parts (see [`Corroboration::line`]).
pub fn line(binary: &str, deb: &str, subject: &str, embedded: &str, declared: &[String]) -> String {
    let prefix = format!("{FIELD}: ");
    let declared: Vec<&str> = declared.iter().map(|d| d.strip_prefix(&prefix).unwrap_or(d)).collect();
    let has = if declared.is_empty() { "nothing to compare with".to_owned() } else { declared.join(", ") };
    format!("{binary} ({deb}) says {subject} {embedded}, {FIELD} has {has}")
}

/// A stored finding with the attempt it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptCorroboration {
    /// Job id.
    pub job_id: i64,
    /// The attempt's fencing token.
    pub fence: i64,
    /// The finding.
    #[serde(flatten)]
    pub corroboration: Corroboration,
}

/// Every binary's findings against the buildinfo's Installed-Build-Depends, at most
/// [`MAX_FINDINGS`] (disagreements kept first when there are more; order otherwise kept).
pub fn findings(binaries: &[EmbeddedBinary], installed: &[(String, String)]) -> Vec<Corroboration> {
    let mut out: Vec<Corroboration> = binaries
        .iter()
        .flat_map(|b| {
            against_buildinfo(&b.path, &b.elf_info(), installed)
                .into_iter()
                .map(|finding| Corroboration { deb: b.deb.clone(), finding })
        })
        .collect();
    if out.len() > MAX_FINDINGS {
        out.sort_by_key(|c| c.finding.verdict != Verdict::Disagrees);
        out.truncate(MAX_FINDINGS);
    }
    out
}

/// The stored name of a verdict.
pub fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Agrees => "agrees",
        Verdict::Disagrees => "disagrees",
        Verdict::Undeclared => "undeclared",
    }
}

/// A verdict from its stored name.
pub fn verdict_from_name(s: &str) -> Option<Verdict> {
    match s {
        "agrees" => Some(Verdict::Agrees),
        "disagrees" => Some(Verdict::Disagrees),
        "undeclared" => Some(Verdict::Undeclared),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_packages_map_to_the_sources_binaries_name() {
        assert_eq!(source_of("golang-1.19-go").as_deref(), Some("golang-1.19"));
        assert_eq!(source_of("golang-1.19-src").as_deref(), Some("golang-1.19"));
        assert_eq!(source_of("golang-go"), None, "the unversioned metapackage names no toolchain");
        assert_eq!(source_of("rustc").as_deref(), Some("rustc"));
        assert_eq!(source_of("librust-serde+derive-dev").as_deref(), Some("rust-serde"));
        assert_eq!(source_of("golang-github-miekg-dns-dev").as_deref(), Some("golang-github-miekg-dns"));
        assert_eq!(source_of("libc6-dev"), None);
        let refs = installed_sources(&[
            ("golang-1.19-go".into(), "1.19.5-1".into()),
            ("golang-1.19-src".into(), "1.19.5-1".into()),
            ("libc6".into(), "2.36-8".into()),
        ]);
        assert_eq!(refs.len(), 1, "the toolchain once");
        assert_eq!((refs[0].name.as_str(), refs[0].version.to_string().as_str()), ("golang-1.19", "1.19.5-1"));
    }

    #[test]
    fn reported_binaries_are_corroborated_as_read_ones() {
        let lego = EmbeddedBinary {
            deb: "lego_4.9.1-1_amd64.deb".into(),
            path: "usr/bin/lego".into(),
            go_version: Some("go1.19.5".into()),
            go_modules: vec![Module { name: "github.com/miekg/dns".into(), version: "v1.1.50".into() }],
            ..Default::default()
        };
        let installed = [
            ("golang-1.19-go".to_owned(), "1.19.6-1".to_owned()),
            ("golang-github-miekg-dns-dev".to_owned(), "1.1.50-1".to_owned()),
        ];
        let got = findings(std::slice::from_ref(&lego), &installed);
        let verdicts: Vec<_> = got.iter().map(|c| (c.finding.subject.as_str(), c.finding.verdict)).collect();
        assert_eq!(verdicts, [("go toolchain", Verdict::Disagrees), ("go module github.com/miekg/dns", Verdict::Agrees)]);
        assert_eq!(
            got[0].line(),
            "usr/bin/lego (lego_4.9.1-1_amd64.deb) says go toolchain go1.19.5, Installed-Build-Depends has golang-1.19 1.19.6-1"
        );
        let hexyl = EmbeddedBinary {
            deb: "hexyl.deb".into(),
            path: "usr/bin/hexyl".into(),
            rustc_version: Some("1.63.0".into()),
            rust_crates: vec![Module { name: "clap".into(), version: "2.34.0".into() }],
            ..Default::default()
        };
        let got = findings(&[hexyl], &[("rustc".to_owned(), "1.63.0+dfsg1-2".to_owned())]);
        let verdicts: Vec<_> = got.iter().map(|c| (c.finding.subject.as_str(), c.finding.verdict)).collect();
        assert_eq!(verdicts, [("rustc", Verdict::Agrees), ("crate clap", Verdict::Undeclared)]);
        assert_eq!(got[1].line(), "usr/bin/hexyl (hexyl.deb) says crate clap 2.34.0, Installed-Build-Depends has nothing to compare with");
        // Over the cap, disagreements are kept first.
        let many: Vec<EmbeddedBinary> = (0..MAX_FINDINGS + 1)
            .map(|i| EmbeddedBinary { path: format!("usr/bin/{i}"), go_version: Some(if i == MAX_FINDINGS { "go1.19.4" } else { "go1.19.6" }.into()), ..lego.clone() })
            .map(|b| EmbeddedBinary { go_modules: vec![], ..b })
            .collect();
        let got = findings(&many, &installed);
        assert_eq!(got.len(), MAX_FINDINGS);
        assert_eq!(got[0].finding.binary, format!("usr/bin/{MAX_FINDINGS}"));
        for v in [Verdict::Agrees, Verdict::Disagrees, Verdict::Undeclared] {
            assert_eq!(verdict_from_name(verdict_name(v)), Some(v));
        }
    }
}

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

use debcover_formats::corroborate::{Declared, Finding, corroborate};
use debcover_formats::embedded::ElfInfo;
use debcover_formats::relation::{SourceRef, strip_binnmu};
use debversion::Version;

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
}

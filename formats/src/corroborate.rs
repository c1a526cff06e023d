//! Corroboration: what a binary says it contains ([`crate::embedded`]) against what its
//! package declares (`Built-Using`, `Static-Built-Using`, `X-Cargo-Built-Using`). The
//! buildinfo and the declarations stay authoritative; this reports agreement or each
//! disagreement as data.
//!
//! The rules, kept simple on purpose:
//! - **Upstream part** of a declared version: the epoch and the Debian revision removed, then
//!   everything from the first `+` (`+dfsg1`, `+ds1`), and every `~` dropped (`1.19~rc1` is
//!   `1.19rc1`, Go's spelling).
//! - **Go toolchain**: `goX.Y[.Z]` (the first word of the embedded version) agrees with a
//!   declared `golang-X.Y` whose upstream part is `X.Y[.Z]`. Other `golang-A.B` declarations
//!   only: disagrees. None at all: undeclared.
//! - **rustc**: the embedded rustc version agrees with a declared `rustc` or `rustc-*` whose
//!   upstream part is that version.
//! - **Go modules** (`dep` lines, replacements applied): mapped to Debian's naming
//!   (`github.com/a/b[/vN]` → `golang-github-a-b`, hosts `golang.org`, `gopkg.in`,
//!   `gitlab.com`, `google.golang.org` likewise shortened to their first label), compared
//!   without the `v` and `+incompatible`; a pseudo-version (`v0.0.0-DATE-HASH`) agrees when the
//!   declared version contains the first 7 characters of the hash. Modules with no such
//!   declared package are not mappable and produce no finding.
//! - **Crates** (`.dep-v0`, not the root): `rust-NAME` or `rust-NAME-SUFFIX` (`_` as `-`),
//!   agrees when one's upstream part equals the crate version; none: undeclared.

use std::fmt;

use crate::embedded::{DepV0, ElfInfo, GoModule};
use crate::relation::SourceRef;

/// One field's declarations.
#[derive(Debug, Clone, Copy)]
pub struct Declared<'a> {
    /// The field's name (`Static-Built-Using`).
    pub field: &'a str,
    /// Its entries.
    pub refs: &'a [SourceRef],
}

/// The outcome of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A declaration names exactly what the binary embeds.
    Agrees,
    /// Declarations of the same thing name other versions.
    Disagrees,
    /// Nothing declared for what the binary embeds.
    Undeclared,
}

/// One comparison, for one binary.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Path of the binary in the package (`usr/bin/lego`).
    pub binary: String,
    /// What is compared: `go toolchain`, `rustc`, `go module PATH`, `crate NAME`.
    pub subject: String,
    /// What the binary embeds (`go1.19.5`).
    pub embedded: String,
    /// The relevant declarations as `FIELD: NAME VERSION`.
    pub declared: Vec<String>,
    /// The outcome.
    pub verdict: Verdict,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "binary {} embeds {} {}; ", self.binary, self.subject, self.embedded)?;
        if self.declared.is_empty() {
            write!(f, "nothing declared for it")?;
        } else {
            write!(f, "{} {}", if self.declared.len() == 1 { "declaration names" } else { "declarations name" }, self.declared.join(", "))?;
        }
        let verdict = match self.verdict {
            Verdict::Agrees => "agrees",
            Verdict::Disagrees => "DISAGREES",
            Verdict::Undeclared => "UNDECLARED",
        };
        write!(f, ": {verdict}")
    }
}

/// The upstream part of a declared version, by this module's rule.
pub fn upstream_part(version: &debversion::Version) -> String {
    let upstream = version.upstream_version.as_str();
    let upstream = upstream.split('+').next().unwrap_or(upstream);
    upstream.replace('~', "")
}

/// Compare everything `info` (read from `binary`) says with `declared`.
pub fn corroborate(binary: &str, info: &ElfInfo, declared: &[Declared<'_>]) -> Vec<Finding> {
    let mut out = Vec::new();
    let all = || declared.iter().flat_map(|d| d.refs.iter().map(move |r| (d.field, r)));
    let judge = |subject: String, embedded: &str, candidates: Vec<(&str, &SourceRef)>, agrees: &dyn Fn(&SourceRef) -> bool| {
        let verdict = if candidates.is_empty() {
            Verdict::Undeclared
        } else if candidates.iter().any(|(_, r)| agrees(r)) {
            Verdict::Agrees
        } else {
            Verdict::Disagrees
        };
        Finding {
            binary: binary.to_owned(),
            subject,
            embedded: embedded.to_owned(),
            declared: candidates.iter().map(|(field, r)| format!("{field}: {} {}", r.name, r.version)).collect(),
            verdict,
        }
    };
    if let Some(go) = &info.go {
        let version = go.version.split_whitespace().next().unwrap_or_default();
        let number = version.strip_prefix("go").unwrap_or(version);
        let series: String = {
            let mut parts = number.split('.');
            let major = parts.next().unwrap_or_default();
            let minor: String = parts.next().unwrap_or_default().chars().take_while(char::is_ascii_digit).collect();
            format!("golang-{major}.{minor}")
        };
        let same_series: Vec<_> = all().filter(|(_, r)| r.name == series).collect();
        let candidates = if same_series.is_empty() {
            all().filter(|(_, r)| is_go_toolchain(&r.name)).collect()
        } else {
            same_series
        };
        out.push(judge("go toolchain".into(), version, candidates, &|r| r.name == series && upstream_part(&r.version) == number));
        for dep in &go.deps {
            let module = dep.replace.as_deref().unwrap_or(dep);
            let Some(name) = debian_go_name(&dep.path) else { continue };
            let candidates: Vec<_> = all().filter(|(_, r)| r.name == name).collect();
            if candidates.is_empty() {
                continue;
            }
            out.push(judge(format!("go module {}", dep.path), &module.version, candidates, &|r| {
                go_module_agrees(module, &upstream_part(&r.version))
            }));
        }
    }
    if let Some(rustc) = &info.rust.rustc {
        let candidates: Vec<_> = all().filter(|(_, r)| r.name == "rustc" || r.name.starts_with("rustc-")).collect();
        out.push(judge("rustc".into(), rustc, candidates, &|r| upstream_part(&r.version) == *rustc));
    }
    if let DepV0::Present(packages) = &info.rust.dep_v0 {
        for package in packages.iter().filter(|p| !p.root) {
            let name = format!("rust-{}", package.name.replace('_', "-"));
            let prefix = format!("{name}-");
            let candidates: Vec<_> = all().filter(|(_, r)| r.name == name || r.name.starts_with(&prefix)).collect();
            out.push(judge(format!("crate {}", package.name), &package.version, candidates, &|r| {
                upstream_part(&r.version) == package.version
            }));
        }
    }
    out
}

/// `golang-X.Y`?
fn is_go_toolchain(name: &str) -> bool {
    name.strip_prefix("golang-")
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
}

/// Debian's source name for a Go module path, by the usual convention.
pub fn debian_go_name(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1 && parts.last().is_some_and(|l| l.len() > 1 && l.starts_with('v') && l[1..].bytes().all(|b| b.is_ascii_digit())) {
        parts.pop();
    }
    let (host, rest) = parts.split_first()?;
    let host = host.split('.').next().filter(|h| !h.is_empty())?;
    let mut name = format!("golang-{host}");
    for part in rest {
        name.push('-');
        name.push_str(part);
    }
    Some(name.to_ascii_lowercase().replace('_', "-"))
}

fn go_module_agrees(module: &GoModule, declared_upstream: &str) -> bool {
    let version = module.version.strip_prefix('v').unwrap_or(&module.version);
    let version = version.strip_suffix("+incompatible").unwrap_or(version);
    // Pseudo-version: vX.Y.Z-[0.]YYYYMMDDhhmmss-abcdefabcdef.
    let pieces: Vec<&str> = version.rsplitn(3, '-').collect();
    if let [hash, stamp, _] = pieces.as_slice() {
        let stamp = stamp.rsplit('.').next().unwrap_or(stamp);
        if stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()) && hash.len() >= 7 {
            return declared_upstream.contains(hash.get(..7).unwrap_or(hash));
        }
    }
    version == declared_upstream
}

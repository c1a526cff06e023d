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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::{CargoPackage, GoBuildInfo};
    use crate::relation::parse_built_using;

    fn go_info(version: &str, deps: Vec<GoModule>) -> ElfInfo {
        ElfInfo { go: Some(GoBuildInfo { version: version.into(), deps, ..GoBuildInfo::default() }), ..ElfInfo::default() }
    }

    fn module(path: &str, version: &str) -> GoModule {
        GoModule { path: path.into(), version: version.into(), sum: None, replace: None }
    }

    fn verdicts(info: &ElfInfo, declared: &str) -> Vec<(String, Verdict)> {
        let refs = parse_built_using(declared).unwrap();
        corroborate("usr/bin/x", info, &[Declared { field: "Static-Built-Using", refs: &refs }])
            .into_iter()
            .map(|f| (f.subject, f.verdict))
            .collect()
    }

    #[test]
    fn go_toolchain_rules() {
        let toolchain = |v: &str, d: &str| verdicts(&go_info(v, vec![]), d)[0].1;
        assert_eq!(toolchain("go1.19.5", "golang-1.19 (= 1.19.5-1)"), Verdict::Agrees);
        assert_eq!(toolchain("go1.19.5 X:boringcrypto", "golang-1.19 (= 1.19.5-1+b2)"), Verdict::Agrees);
        assert_eq!(toolchain("go1.19", "golang-1.19 (= 1.19-1)"), Verdict::Agrees);
        assert_eq!(toolchain("go1.21rc2", "golang-1.21 (= 1.21~rc2-1)"), Verdict::Agrees);
        assert_eq!(toolchain("go1.19.5", "golang-1.19 (= 1.19.8-2)"), Verdict::Disagrees);
        assert_eq!(toolchain("go1.19.5", "golang-1.18 (= 1.18.3-1)"), Verdict::Disagrees);
        assert_eq!(toolchain("go1.19.5", "golang-logrus (= 1.9.0-1)"), Verdict::Undeclared);
    }

    #[test]
    fn go_module_rules() {
        let mut replaced = module("golang.org/x/net", "v0.4.0");
        replaced.replace = Some(Box::new(module("golang.org/x/net", "v0.5.0")));
        let info = go_info(
            "go1.19.5",
            vec![
                module("github.com/miekg/dns", "v1.1.50"),
                replaced,
                module("github.com/golang/groupcache", "v0.0.0-20200121045136-8c9f03a8e57e"),
                module("github.com/urfave/cli/v2", "v2.3.0+incompatible"),
                module("example.org/unmapped", "v1.0.0"),
            ],
        );
        let got = verdicts(
            &info,
            "golang-1.19 (= 1.19.5-1), golang-github-miekg-dns (= 1.1.49-1), golang-golang-x-net (= 1:0.5.0+dfsg-1), \
             golang-github-golang-groupcache (= 0.0~git20200121.8c9f03a-2), golang-github-urfave-cli (= 2.3.0-2)",
        );
        assert_eq!(
            got,
            vec![
                ("go toolchain".into(), Verdict::Agrees),
                ("go module github.com/miekg/dns".into(), Verdict::Disagrees),
                ("go module golang.org/x/net".into(), Verdict::Agrees),
                ("go module github.com/golang/groupcache".into(), Verdict::Agrees),
                ("go module github.com/urfave/cli/v2".into(), Verdict::Agrees),
            ]
        );
        assert_eq!(debian_go_name("gopkg.in/ini.v1").as_deref(), Some("golang-gopkg-ini.v1"));
        assert_eq!(debian_go_name("google.golang.org/grpc").as_deref(), Some("golang-google-grpc"));
    }

    #[test]
    fn crate_and_rustc_rules() {
        let package = |name: &str, version: &str, root: bool| CargoPackage {
            name: name.into(),
            version: version.into(),
            source: None,
            kind: None,
            root,
        };
        let mut info = ElfInfo::default();
        info.rust.rustc = Some("1.63.0".into());
        info.rust.dep_v0 = DepV0::Present(vec![
            package("tool", "1.0.0", true),
            package("clap", "2.34.0", false),
            package("aho_corasick", "0.7.19", false),
            package("libc", "0.2.140", false),
            package("memchr", "2.5.0", false),
        ]);
        let got = verdicts(
            &info,
            "rustc (= 1.63.0+dfsg1-2), rust-clap-2 (= 2.34.0-3), rust-aho-corasick (= 0.7.19-1), rust-libc (= 0.2.139-1)",
        );
        assert_eq!(
            got,
            vec![
                ("rustc".into(), Verdict::Agrees),
                ("crate clap".into(), Verdict::Agrees),
                ("crate aho_corasick".into(), Verdict::Agrees),
                ("crate libc".into(), Verdict::Disagrees),
                ("crate memchr".into(), Verdict::Undeclared),
            ]
        );
    }
}

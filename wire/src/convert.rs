//! Wire ↔ domain conversions of builds, binaries and what a node reports its binaries embed.

use debcover_core::attestation::PublishedKey;
use debcover_core::model::{BinarySummary, BuildRecord, BuildSummary, Dependency, PkgVer, ProducedFile, file_name_parts};
use debcover_core::rebuild::corroborate::{Corroboration, EmbeddedBinary, Module, verdict_name};
use debcover_proto::v1 as pb;

/// Most binaries in `ReportHeader.embedded` (rebuild.proto; the node keeps to the same bounds).
pub const MAX_EMBEDDED_BINARIES: usize = 200;
/// Most Go modules, and most crates, of one embedded binary.
pub const MAX_EMBEDDED_MODULES: usize = 2_000;
/// Most Go modules and crates of one report, all binaries together.
pub const MAX_EMBEDDED_MODULES_TOTAL: usize = 10_000;
/// Longest `EmbeddedBinary.path`.
pub const MAX_EMBEDDED_PATH_BYTES: usize = 4_096;
/// Longest `EmbeddedBinary.deb` (a file name).
pub const MAX_EMBEDDED_DEB_BYTES: usize = 255;
/// Longest other string of an embedded binary.
pub const MAX_EMBEDDED_STRING_BYTES: usize = 256;

/// A report header's embedded build info as domain values, checked against the bounds of
/// rebuild.proto; every refusal names the field (`embedded[3].go_modules[7].version`).
pub fn embedded_binaries(header: &pb::ReportHeader) -> Result<Vec<EmbeddedBinary>, tonic::Status> {
    let bad = |field: String, why: &str| tonic::Status::invalid_argument(format!("{field}: {why}"));
    let text = |field: String, s: &str, max: usize, required: bool| -> Result<(), tonic::Status> {
        if required && s.is_empty() {
            return Err(bad(field, "required"));
        }
        if s.len() > max {
            return Err(bad(field, &format!("longer than {max} bytes")));
        }
        if s.chars().any(char::is_control) {
            return Err(bad(field, "contains control characters"));
        }
        Ok(())
    };
    if header.embedded.len() > MAX_EMBEDDED_BINARIES {
        return Err(bad("embedded".into(), &format!("more than {MAX_EMBEDDED_BINARIES} binaries")));
    }
    let total: usize = header.embedded.iter().map(|b| b.go_modules.len() + b.rust_crates.len()).sum();
    if total > MAX_EMBEDDED_MODULES_TOTAL {
        return Err(bad("embedded".into(), &format!("more than {MAX_EMBEDDED_MODULES_TOTAL} modules and crates in all")));
    }
    let modules = |field: String, list: &[pb::EmbeddedModule]| -> Result<Vec<Module>, tonic::Status> {
        if list.len() > MAX_EMBEDDED_MODULES {
            return Err(bad(field, &format!("more than {MAX_EMBEDDED_MODULES} entries")));
        }
        list.iter()
            .enumerate()
            .map(|(j, m)| {
                text(format!("{field}[{j}].name"), &m.name, MAX_EMBEDDED_STRING_BYTES, true)?;
                text(format!("{field}[{j}].version"), &m.version, MAX_EMBEDDED_STRING_BYTES, false)?;
                Ok(Module { name: m.name.clone(), version: m.version.clone() })
            })
            .collect()
    };
    header
        .embedded
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let field = |name: &str| format!("embedded[{i}].{name}");
            text(field("deb"), &b.deb, MAX_EMBEDDED_DEB_BYTES, true)?;
            if b.deb.contains('/') {
                return Err(bad(field("deb"), "must be a file name"));
            }
            text(field("path"), &b.path, MAX_EMBEDDED_PATH_BYTES, true)?;
            text(field("go_version"), &b.go_version, MAX_EMBEDDED_STRING_BYTES, false)?;
            text(field("rustc_version"), &b.rustc_version, MAX_EMBEDDED_STRING_BYTES, false)?;
            let go_modules = modules(field("go_modules"), &b.go_modules)?;
            if !go_modules.is_empty() && b.go_version.is_empty() {
                return Err(bad(field("go_modules"), "Go modules without a go_version"));
            }
            Ok(EmbeddedBinary {
                deb: b.deb.clone(),
                path: b.path.clone(),
                go_version: (!b.go_version.is_empty()).then(|| b.go_version.clone()),
                go_modules,
                rustc_version: (!b.rustc_version.is_empty()).then(|| b.rustc_version.clone()),
                rust_crates: modules(field("rust_crates"), &b.rust_crates)?,
            })
        })
        .collect()
}

/// A stored corroboration finding on the wire.
pub fn corroboration_finding(c: &Corroboration) -> pb::CorroborationFinding {
    pb::CorroborationFinding {
        deb: c.deb.clone(),
        binary: c.finding.binary.clone(),
        subject: c.finding.subject.clone(),
        embedded: c.finding.embedded.clone(),
        declared: c.finding.declared.clone(),
        verdict: verdict_name(c.finding.verdict).to_owned(),
    }
}

/// A build record on the wire.
pub fn build_summary(b: &BuildRecord) -> pb::BuildSummary {
    pb::BuildSummary {
        id: b.sha256.clone(),
        source: b.source.clone(),
        source_version: b.source_version.clone(),
        version: b.version.clone(),
        architectures: b.architectures.clone(),
        host_architecture: b.host_arch.clone(),
        build_date: b.build_date.clone().unwrap_or_default(),
        build_origin: b.build_origin.clone().unwrap_or_default(),
        installed_build_depends: b.ibd_count,
        signed: b.signed,
        origin: b.origin.clone(),
        signer: b.signer.clone().unwrap_or_default(),
    }
}

/// An interned package on the wire.
pub fn dependency(p: &PkgVer) -> pb::Dependency {
    pb::Dependency { name: p.name.clone(), arch: p.arch.clone(), version: p.version.clone() }
}

/// A produced binary package on the wire; package, version and architecture come from the
/// Debian file name `NAME_VERSION_ARCH.deb` (with the epoch dropped, as dpkg names files).
pub fn binary(f: &ProducedFile) -> pb::Binary {
    let (package, version, architecture, _) = file_name_parts(&f.name);
    pb::Binary {
        package: package.to_owned(),
        version: version.to_owned(),
        architecture: architecture.to_owned(),
        filename: f.name.clone(),
        size: f.size,
        sha256: f.sha256.clone().unwrap_or_default(),
        shipped_in: f.shipped_in.clone(),
    }
}

/// A wire build summary as a domain value.
pub fn build_summary_of(b: pb::BuildSummary) -> BuildSummary {
    BuildSummary {
        id: b.id,
        source: b.source,
        source_version: b.source_version,
        version: b.version,
        architectures: b.architectures,
        host_architecture: b.host_architecture,
        build_date: b.build_date,
        build_origin: b.build_origin,
        installed_build_depends: b.installed_build_depends,
        signed: b.signed,
        origin: b.origin,
        signer: b.signer,
    }
}

/// A wire dependency as a domain value.
pub fn dependency_of(d: pb::Dependency) -> Dependency {
    Dependency { name: d.name, arch: d.arch, version: d.version }
}

/// A wire binary as a domain value.
pub fn binary_summary_of(x: pb::Binary) -> BinarySummary {
    BinarySummary {
        package: x.package,
        version: x.version,
        architecture: x.architecture,
        filename: x.filename,
        size: x.size,
        sha256: x.sha256,
        shipped_in: x.shipped_in,
    }
}

/// A published key on the wire.
pub fn key_wire(k: &PublishedKey) -> pb::PublishedKey {
    pb::PublishedKey {
        role: k.role.as_str().to_owned(),
        operator: k.operator.clone(),
        node: k.node.clone(),
        keyid: k.keyid(),
        openssh: k.public_key.clone(),
        pem: k.pem(),
        valid_from: k.valid_from,
        valid_until: k.valid_until.unwrap_or_default(),
    }
}

/// A published key from the wire (the client side of the conversion).
pub fn key_from_wire(k: &pb::PublishedKey) -> Result<PublishedKey, String> {
    Ok(PublishedKey {
        role: k.role.parse().map_err(|e| format!("key role: {e}"))?,
        operator: k.operator.clone(),
        node: k.node.clone(),
        public_key: k.openssh.clone(),
        valid_from: k.valid_from,
        valid_until: (k.valid_until != 0).then_some(k.valid_until),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(name: &str, version: &str) -> pb::EmbeddedModule {
        pb::EmbeddedModule { name: name.into(), version: version.into() }
    }

    #[test]
    fn embedded_binaries_are_checked_and_converted() {
        let lego = pb::EmbeddedBinary {
            deb: "lego_4.9.1-1_amd64.deb".into(),
            path: "usr/bin/lego".into(),
            go_version: "go1.19.5".into(),
            go_modules: vec![module("github.com/miekg/dns", "v1.1.50")],
            ..Default::default()
        };
        let header = |embedded: Vec<pb::EmbeddedBinary>| pb::ReportHeader { embedded, ..Default::default() };
        let got = embedded_binaries(&header(vec![lego.clone()])).unwrap();
        assert_eq!(
            got,
            [EmbeddedBinary {
                deb: "lego_4.9.1-1_amd64.deb".into(),
                path: "usr/bin/lego".into(),
                go_version: Some("go1.19.5".into()),
                go_modules: vec![Module { name: "github.com/miekg/dns".into(), version: "v1.1.50".into() }],
                rustc_version: None,
                rust_crates: vec![],
            }]
        );
        let refused = |b: pb::EmbeddedBinary| embedded_binaries(&header(vec![lego.clone(), b])).unwrap_err().message().to_owned();
        assert_eq!(refused(pb::EmbeddedBinary { deb: "a/b.deb".into(), ..lego.clone() }), "embedded[1].deb: must be a file name");
        assert_eq!(refused(pb::EmbeddedBinary { path: String::new(), ..lego.clone() }), "embedded[1].path: required");
        assert_eq!(
            refused(pb::EmbeddedBinary { go_modules: vec![module("m", "v1"), module("m", "v\u{1b}[31m")], ..lego.clone() }),
            "embedded[1].go_modules[1].version: contains control characters"
        );
        assert_eq!(
            refused(pb::EmbeddedBinary { rustc_version: "1".repeat(MAX_EMBEDDED_STRING_BYTES + 1), ..lego.clone() }),
            "embedded[1].rustc_version: longer than 256 bytes"
        );
        assert_eq!(
            refused(pb::EmbeddedBinary { go_version: String::new(), ..lego.clone() }),
            "embedded[1].go_modules: Go modules without a go_version"
        );
        assert_eq!(
            refused(pb::EmbeddedBinary { rust_crates: vec![module("c", "1"); MAX_EMBEDDED_MODULES + 1], go_modules: vec![], ..lego.clone() }),
            "embedded[1].rust_crates: more than 2000 entries"
        );
        let many = vec![pb::EmbeddedBinary { go_modules: vec![], ..lego.clone() }; MAX_EMBEDDED_BINARIES + 1];
        assert_eq!(embedded_binaries(&header(many)).unwrap_err().message(), "embedded: more than 200 binaries");
        let big = pb::EmbeddedBinary { go_modules: vec![module("m", "v1"); MAX_EMBEDDED_MODULES], ..lego.clone() };
        let total = vec![big; MAX_EMBEDDED_MODULES_TOTAL / MAX_EMBEDDED_MODULES + 1];
        assert_eq!(embedded_binaries(&header(total)).unwrap_err().message(), "embedded: more than 10000 modules and crates in all");
    }
}

//! Wire ↔ domain conversions, done once at the service boundary.

use debcover_proto::v1 as pb;

use prost::Message;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

use crate::index::{IndexedAnswer, IndexedMatch, ResolvedBuild};
use crate::model::{BuildRecord, PkgVer, ProducedFile};
use crate::storage::StoreError;

/// Map a storage failure to a gRPC status. Details go to the server log; the client gets a
/// message that says what to do.
pub fn store_status(e: StoreError) -> tonic::Status {
    tracing::error!(error = %e, "storage failure");
    match e {
        StoreError::Corrupt(m) => tonic::Status::data_loss(m),
        other => tonic::Status::unavailable(format!("storage failure ({other}); retry later")),
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
    }
}

/// An interned package on the wire.
pub fn dependency(p: &PkgVer) -> pb::Dependency {
    pb::Dependency { name: p.name.clone(), arch: p.arch.clone(), version: p.version.clone() }
}

/// A produced binary package on the wire; package, version and architecture come from the
/// Debian file name `NAME_VERSION_ARCH.deb` (with the epoch dropped, as dpkg names files).
pub fn binary(f: &ProducedFile) -> pb::Binary {
    let stem = f.name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&f.name);
    let mut parts = stem.splitn(3, '_');
    pb::Binary {
        package: parts.next().unwrap_or_default().to_owned(),
        version: parts.next().unwrap_or_default().to_owned(),
        architecture: parts.next().unwrap_or_default().to_owned(),
        filename: f.name.clone(),
        size: f.size,
        sha256: f.sha256.clone().unwrap_or_default(),
        shipped_in: f.shipped_in.clone(),
    }
}

/// One field of a message (`tag`, length-delimited) appended to `buf`: the bytes prost writes
/// for a message-typed field.
fn encode_field(tag: u32, m: &impl Message, buf: &mut Vec<u8>) {
    prost::encoding::message::encode(tag, m, buf);
}

/// `BuildMatch.binaries` (field 3) for these files, encoded.
fn encode_binaries(files: &[ProducedFile]) -> Vec<u8> {
    let mut buf = Vec::new();
    for f in files {
        encode_field(3, &binary(f), &mut buf);
    }
    buf
}

/// The parts of a `BuildMatch` that depend only on the build and the generation: field 1
/// (`build`) and every field 3 (`binaries`), encoded. Computed once per generation and kept in
/// the index entry.
fn build_parts(r: &ResolvedBuild) -> &(Vec<u8>, Vec<u8>) {
    r.encoded.get_or_init(|| {
        let mut summary = Vec::new();
        encode_field(1, &build_summary(&r.build.record), &mut summary);
        (summary, encode_binaries(&r.files))
    })
}

/// An indexed answer as the bytes of a `BuiltWithResponse`, assembled from the per-build
/// encodings the index keeps; byte for byte what prost writes for the same
/// `BuiltWithResponse` (fields in number order), so any protobuf decoder reads it as one.
pub fn encode_built_with(answer: &IndexedAnswer) -> Vec<u8> {
    // The matched entries of one question are a handful of package versions: encode each once.
    let mut deps: std::collections::HashMap<i64, Vec<u8>> = std::collections::HashMap::new();
    for m in &answer.builds {
        for p in &m.matched {
            deps.entry(p.id).or_insert_with(|| {
                let mut b = Vec::new();
                encode_field(2, &dependency(p), &mut b);
                b
            });
        }
    }
    let dep = |id: i64| deps.get(&id).map_or(&[][..], Vec::as_slice);
    // With a suite, each build's binaries are the ones shipped there: encoded per question.
    let filtered: Vec<Option<Vec<u8>>> =
        answer.builds.iter().map(|m| m.suite_files.as_deref().map(encode_binaries)).collect();
    let body_len = |m: &IndexedMatch, f: &Option<Vec<u8>>| {
        let (summary, binaries) = build_parts(&m.resolved);
        summary.len()
            + m.matched.iter().map(|p| dep(p.id).len()).sum::<usize>()
            + f.as_ref().map_or(binaries.len(), Vec::len)
    };
    let lens: Vec<usize> = answer.builds.iter().zip(&filtered).map(|(m, f)| body_len(m, f)).collect();
    let total: usize = lens.iter().map(|len| 1 + encoded_len_varint(*len as u64) + len).sum::<usize>()
        + answer.resolved.iter().map(|r| 2 + encoded_len_varint(r.len() as u64) + r.len()).sum::<usize>();
    let mut buf = Vec::with_capacity(total);
    for ((m, f), len) in answer.builds.iter().zip(&filtered).zip(&lens) {
        let (summary, binaries) = build_parts(&m.resolved);
        encode_key(1, WireType::LengthDelimited, &mut buf);
        encode_varint(*len as u64, &mut buf);
        buf.extend_from_slice(summary);
        for p in &m.matched {
            buf.extend_from_slice(dep(p.id));
        }
        buf.extend_from_slice(f.as_deref().unwrap_or(binaries));
    }
    for r in &answer.resolved {
        prost::encoding::string::encode(2, r, &mut buf);
    }
    buf
}

/// An indexed answer as a `BuiltWithResponse` message.
pub fn built_with_response(answer: &IndexedAnswer) -> pb::BuiltWithResponse {
    pb::BuiltWithResponse {
        resolved_packages: answer.resolved.clone(),
        builds: answer
            .builds
            .iter()
            .map(|m| pb::BuildMatch {
                build: Some(build_summary(&m.resolved.build.record)),
                matched: m.matched.iter().map(|p| dependency(p)).collect(),
                binaries: m.files().iter().map(binary).collect(),
            })
            .collect(),
    }
}

//! Wire ↔ domain conversions, done once at the service boundary.

use debcover_proto::v1 as pb;

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

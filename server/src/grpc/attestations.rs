//! The `Attestations` service (open, read-only): published keys and a build's signed links
//! with the coordinator-signed layout.

use std::sync::Arc;

use debcover_core::store::Store;
use debcover_proto::v1 as pb;
use debcover_wire::convert::key_wire;
use tonic::{Request, Response, Status};

use super::{readable, status};
use crate::Coordinator;
use crate::ops::attestations::{self as ops, AttestationsRequest, AttestedBuild};

/// The service.
pub struct Api<S>(pub Arc<Coordinator<S>>);

fn attested_build(b: AttestedBuild) -> pb::AttestedBuild {
    pb::AttestedBuild {
        build_id: b.build_id,
        source: b.source,
        version: b.version,
        architecture: b.architecture,
        files: b.files.into_iter().map(|(name, sha256)| pb::AttestedFile { name, sha256 }).collect(),
        attestations: b
            .attestations
            .into_iter()
            .map(|a| pb::StoredAttestation {
                job_id: a.job_id,
                fence: a.fence,
                operator: a.operator,
                node: a.node,
                keyid: a.keyid,
                outcome: a.outcome,
                finished_at: a.finished_at,
                attestation_sha256: a.attestation_sha256,
                link: a.link,
            })
            .collect(),
        keys: b.keys.iter().map(key_wire).collect(),
        layout: b.layout,
        coordinator_key: Some(key_wire(&b.coordinator_key)),
        threshold: b.threshold,
        manifest: b.manifest,
    }
}

#[tonic::async_trait]
impl<S: Store> pb::attestations_server::Attestations for Api<S> {
    async fn list_keys(&self, request: Request<pb::ListKeysRequest>) -> Result<Response<pb::ListKeysResponse>, Status> {
        readable(&self.0, request.metadata()).await?;
        let (nodes, coordinators) = ops::keys(&self.0).await.map_err(status)?;
        Ok(Response::new(pb::ListKeysResponse { keys: coordinators.iter().chain(&nodes).map(key_wire).collect() }))
    }

    async fn build_attestations(
        &self,
        request: Request<pb::BuildAttestationsRequest>,
    ) -> Result<Response<pb::BuildAttestationsResponse>, Status> {
        readable(&self.0, request.metadata()).await?;
        let r = request.into_inner();
        let req = AttestationsRequest { source: r.source, version: r.version, architecture: r.architecture, threshold: r.threshold };
        let builds = ops::build_attestations(&self.0, req).await.map_err(status)?;
        Ok(Response::new(pb::BuildAttestationsResponse { builds: builds.into_iter().map(attested_build).collect() }))
    }
}

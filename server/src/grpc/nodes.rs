//! The `RebuildNodes` service: what a rebuilder node calls, each call authenticated by the
//! node's bearer token.

use std::sync::Arc;
use std::time::Duration;

use debcover_core::rebuild::{self, Artifact};
use debcover_core::store::Store;
use debcover_proto::v1 as pb;
use debcover_wire::rebuild as wire;
use tonic::{Request, Response, Status, Streaming};

use super::{bearer, node, status};
use crate::Coordinator;
use crate::cas::{BlobKind, BlobWriter, CasError};
use crate::ops::report::{self, MAX_ARTIFACTS, Received};
use crate::ops::scheduler::{self, Registration};

/// Largest build log accepted (uncompressed).
pub const MAX_LOG_BYTES: u64 = 256 * 1024 * 1024;
/// Largest produced .buildinfo accepted.
pub const MAX_BUILDINFO_BYTES: u64 = 4 * 1024 * 1024;
/// Largest diffoscope report accepted (uncompressed).
pub const MAX_DIFFOSCOPE_BYTES: u64 = 64 * 1024 * 1024;

/// The service.
pub struct Api<S>(pub Arc<Coordinator<S>>);

fn valid_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn cas(e: CasError) -> Status {
    match e {
        CasError::TooLarge { .. } => Status::resource_exhausted(e.to_string()),
        other => {
            tracing::error!(error = %other, "content store failure");
            Status::unavailable(other.to_string())
        }
    }
}

#[tonic::async_trait]
impl<S: Store> pb::rebuild_nodes_server::RebuildNodes for Api<S> {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let node = node(&self.0, request.metadata()).await?;
        let token_sha256 = rebuild::token_digest(bearer(request.metadata())?);
        let r = request.into_inner();
        let registration = Registration {
            public_key: r.public_key,
            time: r.registration_time,
            signature: r.registration_signature,
            architectures: r.architectures,
            backends: r.backends,
            tags: r.tags,
            slots: r.slots,
            software: r.software,
        };
        let caps = scheduler::register(&self.0, &node, &token_sha256, registration).await.map_err(status)?;
        let ttl = self.0.settings.policy.lease_ttl.as_secs();
        Ok(Response::new(pb::RegisterResponse {
            operator: node.operator,
            node: node.name,
            architectures: caps.arches,
            lease_ttl_seconds: u32::try_from(ttl).unwrap_or(u32::MAX),
            heartbeat_seconds: u32::try_from((ttl / 3).max(1)).unwrap_or(u32::MAX),
        }))
    }

    async fn claim(&self, request: Request<pb::ClaimRequest>) -> Result<Response<pb::ClaimResponse>, Status> {
        let node = node(&self.0, request.metadata()).await?;
        if node.registered_at.is_none() {
            return Err(Status::failed_precondition("register this node before claiming"));
        }
        let r = request.into_inner();
        if r.claim_id.len() > 128 {
            return Err(Status::invalid_argument("claim_id: longer than 128 bytes"));
        }
        let wait = Duration::from_secs(u64::from(r.wait_seconds));
        let lease = scheduler::claim_once(&self.0, &node, &r.claim_id, wait).await.map_err(status)?;
        Ok(Response::new(pb::ClaimResponse {
            job: lease.map(|l| wire::lease_to_job(l, self.0.settings.archive_mirror.as_deref())),
        }))
    }

    async fn heartbeat(&self, request: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let node = node(&self.0, request.metadata()).await?;
        let r = request.into_inner();
        let expires = scheduler::heartbeat(&self.0, &node, r.job_id, r.fence).await.map_err(status)?;
        Ok(Response::new(pb::HeartbeatResponse { lease_expires_at: expires }))
    }

    async fn report_result(&self, request: Request<Streaming<pb::ReportChunk>>) -> Result<Response<pb::ReportResponse>, Status> {
        use pb::report_chunk::Chunk;
        let node = node(&self.0, request.metadata()).await?;
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::ReportChunk { chunk: Some(Chunk::Header(h)) }) => h,
            _ => return Err(Status::invalid_argument("the first message of ReportResult must be a header")),
        };
        // Refuse early (before receiving logs) when the lease is not this node's current one.
        let job = report::lease_for_report(&self.0, &node, header.job_id, header.fence).await.map_err(status)?;
        let Some(_slot) = self.0.reporting.enter(header.job_id) else {
            return Err(Status::resource_exhausted(format!(
                "job {}: a report for this lease is already being received; one at a time",
                header.job_id
            )));
        };
        let result = wire::result_of(&header)?;
        let embedded = debcover_wire::convert::embedded_binaries(&header)?;
        let dir = &self.0.settings.data_dir;
        let mut r = Received {
            job_id: header.job_id,
            fence: header.fence,
            result,
            message: header.message,
            embedded,
            embedded_truncated: header.embedded_truncated,
            artifacts: Vec::new(),
            // Started on the first chunk: a report without a log or buildinfo touches no file.
            log: None,
            buildinfo: None,
            diffoscope: None,
            // The produced buildinfo is also kept here (within MAX_BUILDINFO_BYTES, which its
            // writer enforces first), to be parsed and ingested as a build.
            produced: Vec::new(),
            attestation: Vec::new(),
        };
        while let Some(msg) = stream.message().await? {
            match msg.chunk {
                Some(Chunk::Artifact(a)) => {
                    if r.artifacts.len() >= MAX_ARTIFACTS {
                        return Err(Status::resource_exhausted(format!("more than {MAX_ARTIFACTS} artifacts")));
                    }
                    if a.name.is_empty() || a.name.len() > 255 || a.name.contains('/') {
                        return Err(Status::invalid_argument(format!("artifact name {:?} is not a file name", a.name)));
                    }
                    if !valid_sha256(&a.sha256) {
                        return Err(Status::invalid_argument(format!(
                            "artifact {}: sha256 must be 64 lower-case hex digits",
                            a.name
                        )));
                    }
                    r.artifacts.push(Artifact { name: a.name, size: a.size, sha256: a.sha256 });
                }
                Some(Chunk::Buildinfo(b)) => {
                    let w = r.buildinfo.get_or_insert_with(|| BlobWriter::start(dir, BlobKind::Buildinfo, MAX_BUILDINFO_BYTES));
                    w.write(b.clone()).await.map_err(cas)?;
                    r.produced.extend_from_slice(&b);
                }
                Some(Chunk::Log(b)) => {
                    r.log.get_or_insert_with(|| BlobWriter::start(dir, BlobKind::Log, MAX_LOG_BYTES)).write(b).await.map_err(cas)?
                }
                Some(Chunk::Diffoscope(b)) => r
                    .diffoscope
                    .get_or_insert_with(|| BlobWriter::start(dir, BlobKind::Diffoscope, MAX_DIFFOSCOPE_BYTES))
                    .write(b)
                    .await
                    .map_err(cas)?,
                Some(Chunk::Header(_)) => return Err(Status::invalid_argument("a report has one header")),
                Some(Chunk::Attestation(b)) => {
                    if r.attestation.len() as u64 + b.len() as u64 > rebuild::attest::MAX_ATTESTATION_BYTES {
                        return Err(Status::resource_exhausted(format!(
                            "attestation larger than {} bytes",
                            rebuild::attest::MAX_ATTESTATION_BYTES
                        )));
                    }
                    r.attestation.extend_from_slice(&b);
                }
                None => {}
            }
        }
        let recorded = report::record(&self.0, &node, job, r).await.map_err(status)?;
        let report = recorded.report;
        Ok(Response::new(pb::ReportResponse {
            outcome: report.outcome.as_str().to_owned(),
            differing: match &report.outcome {
                rebuild::AttemptOutcome::Unreproducible { differing } => differing.clone(),
                _ => Vec::new(),
            },
            job_state: recorded.state.as_str().to_owned(),
            log_sha256: report.log_sha256.unwrap_or_default(),
            buildinfo_sha256: report.buildinfo_sha256.unwrap_or_default(),
            diffoscope_sha256: report.diffoscope_sha256.unwrap_or_default(),
            attestation_sha256: report.attestation.as_ref().map(|a| a.sha256().to_owned()).unwrap_or_default(),
            verdicts: recorded.verdicts.iter().map(wire::verdict_wire).collect(),
        }))
    }

    async fn hand_back(&self, request: Request<pb::HandBackRequest>) -> Result<Response<pb::HandBackResponse>, Status> {
        let node = node(&self.0, request.metadata()).await?;
        let r = request.into_inner();
        scheduler::hand_back(&self.0, &node, r.job_id, r.fence, &r.reason).await.map_err(status)?;
        Ok(Response::new(pb::HandBackResponse {}))
    }
}

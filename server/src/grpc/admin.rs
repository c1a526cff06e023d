//! The `RebuildAdmin` service: node credentials and the queue. Every call that changes
//! anything needs a role (nodes: admin; rebuild requests: campaign) and is audited; `Queue` and
//! `JobHistory` are reads.

use std::sync::Arc;

use debcover_core::rebuild::EnqueueSummary;
use debcover_core::store::Store;
use debcover_proto::v1 as pb;
use debcover_wire::rebuild as wire;
use tonic::{Request, Response, Status};

use debcover_core::access::Role;

use super::{authorized, nonempty, readable, status};
use crate::Coordinator;
use crate::ops::access::record;
use crate::ops::scheduler::{self, RebuildRequest};

/// The service.
pub struct Api<S>(pub Arc<Coordinator<S>>);

fn enqueued((s, builds): (EnqueueSummary, usize)) -> pb::EnqueueResponse {
    pb::EnqueueResponse { queued: s.queued, already_queued: s.already_queued, already_done: s.already_done, builds: builds as u64 }
}

#[tonic::async_trait]
impl<S: Store> pb::rebuild_admin_server::RebuildAdmin for Api<S> {
    async fn add_node(&self, request: Request<pb::AddNodeRequest>) -> Result<Response<pb::AddNodeResponse>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Admin, "node add").await?;
        let r = request.into_inner();
        let (node, token) = scheduler::add_node(&self.0, &r.operator, &r.name).await.map_err(status)?;
        record(&self.0, &who, "add-node", format!("{}/{}", r.operator, r.name)).await;
        Ok(Response::new(pb::AddNodeResponse { node: Some(wire::node_wire(&node)), token }))
    }

    async fn list_nodes(&self, request: Request<pb::ListNodesRequest>) -> Result<Response<pb::ListNodesResponse>, Status> {
        authorized(&self.0, request.metadata(), Role::Admin, "node list").await?;
        let nodes = self.0.store.nodes().await.map_err(super::store_status)?;
        Ok(Response::new(pb::ListNodesResponse { nodes: nodes.iter().map(wire::node_wire).collect() }))
    }

    async fn revoke_node(&self, request: Request<pb::RevokeNodeRequest>) -> Result<Response<pb::RevokeNodeResponse>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Admin, "node revoke").await?;
        let r = request.into_inner();
        scheduler::revoke_node(&self.0, &r.operator, &r.name).await.map_err(status)?;
        record(&self.0, &who, "revoke-node", format!("{}/{}", r.operator, r.name)).await;
        Ok(Response::new(pb::RevokeNodeResponse {}))
    }

    async fn request_rebuild(&self, request: Request<pb::RebuildRequest>) -> Result<Response<pb::EnqueueResponse>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Campaign, "rebuild request").await?;
        let r = request.into_inner();
        let req = RebuildRequest {
            source: r.source,
            version: nonempty(&r.version),
            architecture: nonempty(&r.architecture),
            backend: r.backend,
            tags: r.tags,
            priority: r.priority,
        };
        let subject =
            format!("{} {} {}", req.source, req.version.as_deref().unwrap_or("*"), req.architecture.as_deref().unwrap_or("*"));
        let answer = enqueued(scheduler::request_rebuild(&self.0, req).await.map_err(status)?);
        record(&self.0, &who, "request-rebuild", format!("{subject}: {} queued", answer.queued)).await;
        Ok(Response::new(answer))
    }

    async fn verify_suite(&self, request: Request<pb::VerifySuiteRequest>) -> Result<Response<pb::EnqueueResponse>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Campaign, "verify suite").await?;
        let r = request.into_inner();
        let answer = enqueued(scheduler::verify_suite(&self.0, &r.suite, &r.architectures).await.map_err(status)?);
        record(&self.0, &who, "verify-suite", format!("{} {}: {} queued", r.suite, r.architectures.join(","), answer.queued))
            .await;
        Ok(Response::new(answer))
    }

    async fn queue(&self, request: Request<pb::QueueRequest>) -> Result<Response<pb::QueueResponse>, Status> {
        readable(&self.0, request.metadata()).await?;
        let r = request.into_inner();
        let states = wire::states_from_wire(&r.states)?;
        let (counts, jobs) = scheduler::queue(&self.0, states, r.limit).await.map_err(status)?;
        Ok(Response::new(pb::QueueResponse {
            counts: counts.by_state.into_iter().map(|(state, priority, jobs)| pb::QueueCount { state, priority, jobs }).collect(),
            jobs: jobs.iter().map(wire::job_info).collect(),
        }))
    }

    async fn job_history(&self, request: Request<pb::JobHistoryRequest>) -> Result<Response<pb::JobHistoryResponse>, Status> {
        readable(&self.0, request.metadata()).await?;
        let r = request.into_inner();
        let history = scheduler::history(&self.0, r.source, nonempty(&r.version)).await.map_err(status)?;
        Ok(Response::new(pb::JobHistoryResponse {
            jobs: history
                .into_iter()
                .map(|h| pb::JobHistory {
                    job: Some(wire::job_info(&h.job)),
                    attempts: h
                        .attempts
                        .iter()
                        .map(|(a, findings)| {
                            wire::attempt_info(a, findings.iter().map(debcover_wire::convert::corroboration_finding).collect())
                        })
                        .collect(),
                    disagreements: h.disagreements,
                })
                .collect(),
        }))
    }

    async fn release_parked(
        &self,
        request: Request<pb::ReleaseParkedRequest>,
    ) -> Result<Response<pb::ReleaseParkedResponse>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Admin, "rebuild release").await?;
        let r = request.into_inner();
        let job = (r.job_id != 0).then_some(r.job_id);
        let released = scheduler::release_parked(&self.0, &r.source, nonempty(&r.version).as_deref(), job).await.map_err(status)?;
        let what = match job {
            Some(id) => format!("job {id}"),
            None => format!("{} {}", r.source, if r.version.is_empty() { "*" } else { &r.version }),
        };
        record(&self.0, &who, "release-parked", format!("{what}: {} released {:?}", released.len(), released)).await;
        Ok(Response::new(pb::ReleaseParkedResponse { released }))
    }
}

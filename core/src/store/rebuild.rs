//! [`RebuildStore`]: persistence of the rebuilder network (nodes, jobs, fenced leases,
//! attempts). The rules applied inside the transactions come from [`crate::rebuild`].

use std::future::Future;

use super::StoreError;
use crate::rebuild::corroborate::AttemptCorroboration;
use crate::rebuild::{
    AttemptRecord, AttemptReport, BuildTarget, EnqueueSummary, Fenced, Finished, JobFilter, JobRecord, JobState, Lease,
    LeaseView, NewJob, NodeCaps, NodeRecord, Policy, QueueCounts, Requeue,
};

/// Scheduler persistence. Every method that takes a lease (`job_id`, `fence`) refuses, with a
/// [`crate::rebuild::Refusal`], unless `node_id` holds the job's current, unexpired lease.
/// Times are unix seconds passed in by the caller, so that tests control the clock.
pub trait RebuildStore: Send + Sync + 'static {
    /// Issue a credential: the operator is created if new. `None` when the operator already has
    /// a node of that name.
    fn add_node(
        &self,
        operator: &str,
        name: &str,
        token_sha256: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<NodeRecord>, StoreError>> + Send;

    /// Every node, revoked ones included, by operator and name.
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeRecord>, StoreError>> + Send;

    /// Revoke a node's credential; its leases are given back to the queue at once (no budget
    /// charged). `false` when there is no such (unrevoked) node.
    fn revoke_node(
        &self,
        operator: &str,
        name: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Produced buildinfos of built results that are not builds yet, oldest first, at most
    /// `limit`: what a coordinator that stopped between recording a result and ingesting the
    /// buildinfo it produced ingests again when it starts (the blob is in the content store,
    /// written and synced before the result's transaction).
    fn produced_not_ingested(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<crate::rebuild::ProducedBuildinfo>, StoreError>> + Send;

    /// Queue parked jobs again with fresh budgets ([`crate::rebuild::JobEvent::Release`]): the job
    /// `job_id`, or every parked job of `source` (of `version`, binary or source, when given). A
    /// build with a job queued or leased already is skipped, as is a second parked job of one
    /// build. Returns the ids released.
    fn release_parked(
        &self,
        source: &str,
        version: Option<&str>,
        job_id: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// The unrevoked node holding this credential.
    fn node_by_token(
        &self,
        token_sha256: &str,
    ) -> impl Future<Output = Result<Option<NodeRecord>, StoreError>> + Send;

    /// Record what a node declares it can build.
    fn register_node(
        &self,
        node_id: i64,
        caps: &NodeCaps,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every build linked to a binary shipped in `suite` (optionally of these host
    /// architectures), once each.
    fn shipped_builds(
        &self,
        suite: &str,
        arches: &[String],
    ) -> impl Future<Output = Result<Vec<BuildTarget>, StoreError>> + Send;

    /// Queue jobs in one transaction; a build already queued or leased is not queued again
    /// (its priority is raised when the new job's is higher). Builds ingested from a rebuild's
    /// produced buildinfo (`rebuild_of`) are never queued: they count as already done.
    fn enqueue(
        &self,
        jobs: &[NewJob],
        mode: Requeue,
        now: i64,
    ) -> impl Future<Output = Result<EnqueueSummary, StoreError>> + Send;

    /// Lease the first job this node may take (priority, then queue order): architecture,
    /// backend and tags match, retry-after time passed, no other node of its operator ever
    /// attempted it, its operator has not judged it yet, and the node has a free slot. Safe
    /// under concurrent claims from several coordinators. The lease carries the build's text,
    /// its source's pool directory and .dsc hash (from the ingested Sources indices) and the
    /// build's binaries as the archive ships them (read after the claim, outside its lock).
    fn claim(
        &self,
        node: &NodeRecord,
        now: i64,
        policy: &Policy,
    ) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;

    /// Extend a lease; returns the new expiry.
    fn heartbeat(
        &self,
        node_id: i64,
        job_id: i64,
        fence: i64,
        now: i64,
        policy: &Policy,
    ) -> impl Future<Output = Result<Fenced<i64>, StoreError>> + Send;

    /// End an attempt with its report (artifacts and corroboration findings included) and move
    /// the job by [`Policy::after`], in one transaction. Returns the job's new state, and
    /// whether a campaign has items for its source (read in the same transaction, so that the
    /// caller re-judges campaign coverage only when it can change).
    fn finish_report(
        &self,
        node_id: i64,
        job_id: i64,
        fence: i64,
        report: &AttemptReport,
        now: i64,
        policy: &Policy,
    ) -> impl Future<Output = Result<Fenced<Finished>, StoreError>> + Send;

    /// [`RebuildStore::finish_report`], for callers that need only the job's new state.
    fn finish(
        &self,
        node_id: i64,
        job_id: i64,
        fence: i64,
        report: &AttemptReport,
        now: i64,
        policy: &Policy,
    ) -> impl Future<Output = Result<Fenced<JobState>, StoreError>> + Send {
        async move { Ok(self.finish_report(node_id, job_id, fence, report, now, policy).await?.map(|f| f.state)) }
    }

    /// End every lease that expired before `now` as `node-lost`. Returns how many.
    fn reclaim_expired(&self, now: i64, policy: &Policy) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A job's lease holder and token, with what the original build produced (its buildinfo's
    /// Checksums-Sha256) and the archive's hashes of the build's shipped binaries.
    fn lease_view(&self, job_id: i64) -> impl Future<Output = Result<Option<LeaseView>, StoreError>> + Send;

    /// Job counts per state and priority.
    fn queue_counts(&self) -> impl Future<Output = Result<QueueCounts, StoreError>> + Send;

    /// Jobs matching `filter`, by priority then queue order (active ones) or id.
    fn jobs(&self, filter: &JobFilter) -> impl Future<Output = Result<Vec<JobRecord>, StoreError>> + Send;

    /// The attempts of these jobs, oldest first, with their artifacts.
    fn attempts(&self, job_ids: &[i64]) -> impl Future<Output = Result<Vec<AttemptRecord>, StoreError>> + Send;

    /// The signed attestation (in-toto link) stored under this SHA-256 by
    /// [`RebuildStore::finish`] from [`AttemptReport::attestation`], byte for byte. `None` when
    /// there is none: links accepted before migration 0012 are in the content-addressed store
    /// (the server's `cas::BlobKind::Attestation`), where readers look next.
    fn attestation(&self, sha256: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// The corroboration findings stored with the attempts of these jobs (written by
    /// [`RebuildStore::finish`] from [`AttemptReport::corroboration`]), by job, fencing token
    /// and the order they were computed in.
    fn corroboration(
        &self,
        job_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<AttemptCorroboration>, StoreError>> + Send;
}

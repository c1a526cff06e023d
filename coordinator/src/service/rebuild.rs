//! The `RebuildNodes` and `RebuildAdmin` gRPC services: authentication, request validation and
//! wire ↔ domain conversion happen here, once; the scheduling rules are in [`crate::rebuild`]
//! and their persistence in [`crate::storage::RebuildStore`].
//!
//! # Invariants
//! - Every node call is authenticated by its bearer token (looked up by SHA-256 among
//!   unrevoked credentials); a node acts only on its own leases, with the current fencing token.
//! - Every admin call that changes anything needs the admin token; `Queue` and `JobHistory`
//!   are open (read-only).
//! - Results are judged here (artifact hashes against the original build's checksums) before
//!   they are stored; the store re-checks the lease in the same transaction that records them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use debcover_proto::v1 as pb;
use debcover_proto::v1::rebuild_admin_server::RebuildAdmin;
use debcover_proto::v1::rebuild_nodes_server::RebuildNodes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use super::convert::store_status;
use crate::rebuild::cas::{BlobKind, BlobWriter, CasError};
use crate::campaign::Transition;
use crate::rebuild::{
    self, Artifact, Attestation, AttemptOutcome, AttemptRecord, AttemptReport, EnqueueSummary, FailureCode, FileVerdict,
    JobFilter, JobRecord, JobState, LeaseView, NewJob, NodeCaps, NodeRecord, Policy, Priority, Refusal, Requeue, RouteRule,
};
use crate::storage::{RebuildStore, StoreError, now_unix};

/// Longest Claim long-poll.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// Largest message of the node-facing service (one report chunk, one job with its buildinfo).
pub const MAX_NODE_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Largest message of the admin service (a queue or history listing).
pub const MAX_ADMIN_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Largest build log accepted (uncompressed).
pub const MAX_LOG_BYTES: u64 = 256 * 1024 * 1024;
/// Largest produced .buildinfo accepted.
pub const MAX_BUILDINFO_BYTES: u64 = 4 * 1024 * 1024;
/// Largest diffoscope report accepted (uncompressed).
pub const MAX_DIFFOSCOPE_BYTES: u64 = 64 * 1024 * 1024;
/// Most environment differences in one report, and the longest one.
pub const MAX_DIFFERENCES: usize = 10_000;
/// Longest environment difference line.
pub const MAX_DIFFERENCE_BYTES: usize = 1024;
/// Longest node software description.
pub const MAX_SOFTWARE_BYTES: usize = 200;
/// Most artifacts in one report.
pub const MAX_ARTIFACTS: usize = 10_000;
/// Most concurrent leases a node may declare.
pub const MAX_SLOTS: u32 = 256;

/// The scheduler's settings and shared state, for both services and the reclaimer.
pub struct RebuildSettings {
    /// Retry, budget, lease and independence rules.
    pub policy: Policy,
    /// Routing rules applied to new jobs.
    pub routes: Vec<RouteRule>,
    /// SHA-256 (hex) of the admin token.
    pub admin_token_sha256: String,
    /// Data directory (the content-addressed store lives under it).
    pub data_dir: PathBuf,
    /// Archive mirror URL (`http://deb.debian.org/debian`, `file:///srv/mirror`) jobs get
    /// their source and original binaries from; None: nodes use their own apt.
    pub archive_mirror: Option<String>,
    /// Woken whenever jobs become claimable (queued, requeued, reclaimed).
    pub work: Notify,
    /// Cancelled when the server begins to shut down: waiting Claims answer at once (empty)
    /// instead of holding the graceful shutdown for up to their long-poll time, which could
    /// outlast the leases of nodes that are building meanwhile.
    pub stopping: tokio_util::sync::CancellationToken,
    /// Recently authenticated nodes.
    nodes: NodeCache,
    /// Leases this coordinator handed out, with what judging their reports needs.
    leases: LeaseCache,
}

/// How long an authenticated node is remembered. Revocation through this coordinator takes
/// effect at once (the cache is cleared); through another coordinator sharing the database,
/// within this time.
pub const NODE_CACHE_TTL: Duration = Duration::from_secs(2);

/// Nodes by token digest, for [`NODE_CACHE_TTL`]: spares a database read on every call of a
/// busy node.
#[derive(Default)]
struct NodeCache(std::sync::Mutex<std::collections::HashMap<String, (NodeRecord, std::time::Instant)>>);

impl NodeCache {
    fn get(&self, digest: &str) -> Option<NodeRecord> {
        let map = self.0.lock().ok()?;
        map.get(digest).filter(|(_, at)| at.elapsed() < NODE_CACHE_TTL).map(|(n, _)| n.clone())
    }

    fn put(&self, digest: String, node: NodeRecord) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= 10_000 {
                map.clear();
            }
            map.insert(digest, (node, std::time::Instant::now()));
        }
    }

    fn clear(&self) {
        if let Ok(mut map) = self.0.lock() {
            map.clear();
        }
    }
}

/// Most leases kept in a [`LeaseCache`]; beyond it the cache starts again empty (reports of the
/// forgotten leases read their view from the database, as after a restart).
const LEASE_CACHE_MAX: usize = 100_000;

/// A lease this coordinator handed out: its token, its holder, its expiry as last extended through this
/// coordinator, and its view.
struct CachedLease {
    fence: i64,
    node_id: i64,
    expires_at: i64,
    view: Arc<LeaseView>,
}

/// The leases handed out by this coordinator, by job: a report on one of them is checked and
/// judged without reading the lease again (one database round trip fewer per result). The
/// cache only ever saves that read: the store checks the lease again, in the transaction that
/// records the result, so a stale entry cannot let a report through. A report is judged
/// against the archive's copies as they were when the job was leased, which are the copies the
/// node was told to compare with. Reports on leases handed out by another coordinator, or
/// before a restart, read the view from the database.
#[derive(Default)]
struct LeaseCache(std::sync::Mutex<std::collections::HashMap<i64, CachedLease>>);

impl LeaseCache {
    fn put(&self, lease: &rebuild::Lease, node_id: i64) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= LEASE_CACHE_MAX {
                map.clear();
            }
            let view = Arc::new(lease.view(node_id));
            map.insert(lease.job_id, CachedLease { fence: lease.fence, node_id, expires_at: lease.expires_at, view });
        }
    }

    /// The view of `job_id`'s lease with `fence`, if this coordinator handed it to `node_id`
    /// and it has not expired by `now` as far as this coordinator knows.
    fn get(&self, job_id: i64, fence: i64, node_id: i64, now: i64) -> Option<Arc<LeaseView>> {
        let map = self.0.lock().ok()?;
        let l = map.get(&job_id)?;
        (l.fence == fence && l.node_id == node_id && l.expires_at >= now).then(|| l.view.clone())
    }

    fn extend(&self, job_id: i64, fence: i64, expires_at: i64) {
        if let Ok(mut map) = self.0.lock()
            && let Some(l) = map.get_mut(&job_id)
            && l.fence == fence
        {
            l.expires_at = expires_at;
        }
    }

    fn forget(&self, job_id: i64) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&job_id);
        }
    }
}

impl RebuildSettings {
    /// Settings with this policy, routes, admin token (as given; it is hashed here) and data
    /// directory.
    pub fn new(policy: Policy, routes: Vec<RouteRule>, admin_token: &str, data_dir: PathBuf) -> Self {
        RebuildSettings {
            policy,
            routes,
            admin_token_sha256: rebuild::token_digest(admin_token),
            data_dir,
            archive_mirror: None,
            work: Notify::new(),
            stopping: tokio_util::sync::CancellationToken::new(),
            nodes: NodeCache::default(),
            leases: LeaseCache::default(),
        }
    }

    /// The same settings with this archive mirror (already checked by
    /// [`rebuild::parse_mirror`]).
    pub fn with_archive_mirror(mut self, mirror: Option<String>) -> Self {
        self.archive_mirror = mirror;
        self
    }
}

/// Queue verification jobs at campaign priority for the builds that fixed campaign items
/// (`fixed-unverified`), one per build: a build queued or leased already is not queued again
/// (its priority is raised to campaign), one verified or parked before is not queued again.
pub async fn queue_fixed<S: RebuildStore>(
    store: &S,
    settings: &RebuildSettings,
    changes: &[Transition],
) -> Result<EnqueueSummary, StoreError> {
    let mut wanted: Vec<(i64, i64)> =
        changes.iter().flat_map(|t| t.builds_to_verify().iter().map(move |b| (*b, t.campaign_id))).collect();
    wanted.sort_unstable();
    wanted.dedup_by_key(|(b, _)| *b);
    if wanted.is_empty() {
        return Ok(EnqueueSummary::default());
    }
    let ids: Vec<i64> = wanted.iter().map(|(b, _)| *b).collect();
    let records = store.builds_by_id(&ids).await?;
    let mut jobs: Vec<NewJob> = wanted
        .iter()
        .filter_map(|(b, c)| {
            records.iter().find(|r| r.id == *b).map(|r| NewJob {
                build_id: r.id,
                source: r.source.clone(),
                version: r.version.clone(),
                arch: r.host_arch.clone(),
                backend: String::new(),
                tags: Vec::new(),
                priority: Priority::Campaign,
                origin: format!("campaign {c}"),
            })
        })
        .collect();
    for j in &mut jobs {
        rebuild::route(j, &settings.routes);
    }
    let s = store.enqueue(&jobs, Requeue::OnlyNew, now_unix()).await?;
    if s.queued > 0 {
        tracing::info!(jobs = s.queued, "verification queued for builds that fixed campaign items");
        settings.work.notify_waiters();
    }
    Ok(s)
}

/// The bearer token of a call.
fn bearer(md: &MetadataMap) -> Result<&str, Status> {
    let v = md
        .get("authorization")
        .ok_or_else(|| Status::unauthenticated("no credential: send `authorization: Bearer TOKEN`"))?;
    let v = v.to_str().map_err(|_| Status::unauthenticated("authorization metadata is not text"))?;
    v.strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer TOKEN`"))
}

/// Compare two digests without an early exit.
fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn authenticate_node<S: RebuildStore>(
    store: &S,
    settings: &RebuildSettings,
    md: &MetadataMap,
) -> Result<NodeRecord, Status> {
    let digest = rebuild::token_digest(bearer(md)?);
    if let Some(n) = settings.nodes.get(&digest) {
        return Ok(n);
    }
    let node = store
        .node_by_token(&digest)
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::unauthenticated("unknown or revoked node credential"))?;
    settings.nodes.put(digest, node.clone());
    Ok(node)
}

fn authenticate_admin(settings: &RebuildSettings, md: &MetadataMap) -> Result<(), Status> {
    let token = bearer(md)?;
    if same_digest(&rebuild::token_digest(token), &settings.admin_token_sha256) {
        Ok(())
    } else {
        Err(Status::permission_denied("this call needs the coordinator's admin token"))
    }
}

fn refused(r: Refusal) -> Status {
    match r {
        Refusal::NoSuchJob => Status::not_found(r.to_string()),
        Refusal::NotYours => Status::permission_denied(r.to_string()),
        Refusal::StaleFence { .. } | Refusal::Expired => Status::failed_precondition(r.to_string()),
    }
}

/// A name for operators and nodes: 1-64 of `A-Z a-z 0-9 . _ -`.
fn valid_name(what: &str, s: &str) -> Result<(), Status> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!("{what}: {s:?} must be 1-64 letters, digits, '.', '_' or '-'")))
    }
}

/// A backend or tag word: 1-64 of `a-z 0-9 . _ -`.
fn valid_word(what: &str, s: &str) -> Result<(), Status> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!("{what}: {s:?} must be 1-64 lower-case letters, digits, '.', '_' or '-'")))
    }
}

fn valid_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn job_info(j: &JobRecord) -> pb::JobInfo {
    pb::JobInfo {
        id: j.id,
        build_id: j.build_sha256.clone(),
        source: j.source.clone(),
        version: j.version.clone(),
        architecture: j.arch.clone(),
        backend: j.backend.clone(),
        tags: j.tags.clone(),
        priority: j.priority.as_str().to_owned(),
        origin: j.origin.clone(),
        state: j.state.as_str().to_owned(),
        not_before: j.not_before,
        fence: j.fence,
        lease_node: j.lease_node.clone().unwrap_or_default(),
        lease_expires_at: j.lease_expires.unwrap_or_default(),
        failures: j.failures,
        unreproducible: j.unreproducible,
        verified: j.verified,
        parked_reason: j.parked_reason.clone().unwrap_or_default(),
        queued_at: j.queued_at,
    }
}

fn artifact_wire(a: &Artifact) -> pb::Artifact {
    pb::Artifact { name: a.name.clone(), size: a.size, sha256: a.sha256.clone() }
}

fn attempt_info(a: &AttemptRecord, corroboration: Vec<pb::CorroborationFinding>) -> pb::AttemptInfo {
    pb::AttemptInfo {
        corroboration,
        fence: a.fence,
        operator: a.operator.clone(),
        node: a.node.clone(),
        started_at: a.started_at,
        finished_at: a.finished_at.unwrap_or_default(),
        outcome: a.outcome.clone().unwrap_or_default(),
        failure_code: a.failure_code.clone().unwrap_or_default(),
        message: a.message.clone(),
        buildinfo_sha256: a.buildinfo_sha256.clone().unwrap_or_default(),
        log_sha256: a.log_sha256.clone().unwrap_or_default(),
        artifacts: a.artifacts.iter().map(artifact_wire).collect(),
        diffoscope_sha256: a.diffoscope_sha256.clone().unwrap_or_default(),
        attestation_sha256: a.attestation_sha256.clone().unwrap_or_default(),
        differences: a.differences.clone(),
    }
}

fn node_wire(n: &NodeRecord) -> pb::Node {
    pb::Node {
        operator: n.operator.clone(),
        name: n.name.clone(),
        created_at: n.created_at,
        revoked_at: n.revoked_at.unwrap_or_default(),
        architectures: n.caps.arches.clone(),
        backends: n.caps.backends.clone(),
        tags: n.caps.tags.clone(),
        slots: n.caps.slots,
        registered_at: n.registered_at.unwrap_or_default(),
        last_seen: n.last_seen.unwrap_or_default(),
        active_leases: n.active_leases,
        public_key: n.caps.public_key.clone(),
        software: n.caps.software.clone(),
    }
}

fn verdict_wire(v: &FileVerdict) -> pb::ArtifactVerdict {
    pb::ArtifactVerdict {
        name: v.name.clone(),
        rebuilt_sha256: v.rebuilt.clone().unwrap_or_default(),
        buildinfo_sha256: v.buildinfo.clone().unwrap_or_default(),
        // Several differing archive hashes are rare (one file name shipped with other bytes in
        // another suite); the one that differs from the rebuild is the one to show.
        archive_sha256: v
            .archive
            .iter()
            .find(|a| v.rebuilt.as_ref() != Some(*a))
            .or(v.archive.first())
            .cloned()
            .unwrap_or_default(),
        matches: v.matches,
    }
}

/// Expire stale leases every `every` until `shutdown`; wakes claimers when jobs come back.
pub async fn reclaimer<S: RebuildStore>(
    store: Arc<S>,
    settings: Arc<RebuildSettings>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.reclaim_expired(now_unix(), &settings.policy).await {
            Ok(0) => {}
            Ok(n) => {
                crate::web::metrics::global().lease_expiries.inc_by(n);
                tracing::info!(jobs = n, "expired leases reclaimed (node-lost)");
                settings.work.notify_waiters();
            }
            Err(e) => tracing::error!(error = %e, "reclaiming expired leases failed"),
        }
    }
}

/// How often the reclaimer runs for a lease TTL: a tenth of it, between 1 and 30 seconds.
pub fn reclaim_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// A lease on the wire: with a mirror, the URLs of the .dsc and of the archive's files;
/// without one, empty URLs (the node uses its own apt), hashes still given.
fn lease_to_job(l: rebuild::Lease, mirror: Option<&str>) -> pb::Job {
    let url = |path: &str| mirror.map(|m| rebuild::mirror_url(m, path)).unwrap_or_default();
    let (dsc_url, dsc_sha256) = match (&l.dsc, l.source_version.parse::<debversion::Version>()) {
        (Some(d), Ok(v)) => {
            (url(&format!("{}/{}", d.directory.trim_end_matches('/'), rebuild::dsc_name(&l.source, &v))), d.sha256.clone())
        }
        _ => (String::new(), None),
    };
    pb::Job {
        dsc_url,
        dsc_sha256: dsc_sha256.unwrap_or_default(),
        originals: l
            .originals
            .iter()
            .map(|o| pb::OriginalFile { name: o.name.clone(), sha256: o.sha256.clone(), url: url(&o.filename) })
            .collect(),
        job_id: l.job_id,
        fence: l.fence,
        lease_expires_at: l.expires_at,
        build_id: l.build_sha256,
        source: l.source,
        version: l.version,
        architecture: l.arch,
        backend: l.backend,
        buildinfo: l.buildinfo,
    }
}

/// What a report header says happened.
#[derive(Debug)]
enum Reported {
    /// Built: the coordinator judges the artifacts.
    Built,
    /// Failed with this code.
    Failed(FailureCode),
    /// The node could not set up the recorded environment: these differences.
    EnvironmentMismatch(Vec<String>),
}

/// The header's result, checked: every problem names its field.
fn result_of(header: &pb::ReportHeader) -> Result<Reported, Status> {
    match header.result.as_str() {
        "built" => Ok(Reported::Built),
        "failed" => {
            let code: FailureCode = header.failure_code.parse().map_err(|e| Status::invalid_argument(format!("failure_code: {e}")))?;
            if code == FailureCode::NodeLost {
                return Err(Status::invalid_argument("failure_code: node-lost is decided by the coordinator"));
            }
            Ok(Reported::Failed(code))
        }
        "environment-mismatch" => {
            let d = &header.environment_differences;
            if d.is_empty() {
                return Err(Status::invalid_argument(
                    "environment_differences: an environment-mismatch result names at least one difference",
                ));
            }
            if d.len() > MAX_DIFFERENCES {
                return Err(Status::invalid_argument(format!("environment_differences: more than {MAX_DIFFERENCES}")));
            }
            for line in d {
                if line.trim().is_empty() || line.len() > MAX_DIFFERENCE_BYTES || line.contains(['\n', '\r']) {
                    return Err(Status::invalid_argument(format!(
                        "environment_differences: {:?} must be one non-empty line of at most {MAX_DIFFERENCE_BYTES} bytes",
                        line.chars().take(80).collect::<String>()
                    )));
                }
            }
            Ok(Reported::EnvironmentMismatch(d.iter().map(|l| l.trim().to_owned()).collect()))
        }
        other => Err(Status::invalid_argument(format!(
            "result: {other:?} is not built, failed or environment-mismatch"
        ))),
    }
}

/// Parse a produced .buildinfo (on a blocking thread) as a build reproducing `job`'s: it must
/// parse, and name the job's source and version.
async fn prepare_produced(origin: String, bytes: Vec<u8>, job: &rebuild::LeaseView) -> Result<crate::model::NewBuild, Status> {
    let limits = crate::ingest::Limits::default();
    let name = origin.clone();
    let mut nb = tokio::task::spawn_blocking(move || crate::ingest::Preparer::new(limits).prepare(&name, &bytes))
        .await
        .map_err(|e| Status::internal(format!("parser task failed: {e}")))?
        .map_err(|e| Status::invalid_argument(format!("buildinfo: the produced .buildinfo does not parse: {e}")))?;
    if nb.info.source != job.source {
        return Err(Status::invalid_argument(format!(
            "buildinfo: the produced .buildinfo is of source {:?}, the job rebuilds {:?}",
            nb.info.source, job.source
        )));
    }
    if job.version.parse::<debversion::Version>().ok().as_ref() != Some(&nb.info.version) {
        return Err(Status::invalid_argument(format!(
            "buildinfo: the produced .buildinfo has version {}, the job rebuilds {}",
            nb.info.version, job.version
        )));
    }
    nb.rebuild_of = Some(job.build_id);
    Ok(nb)
}

/// What the rebuilt binaries say (`embedded`) against the original buildinfo's
/// Installed-Build-Depends; every disagreement is logged. Best effort: the buildinfo stays
/// authoritative, so a failure here is logged and yields no findings, never a refused report.
async fn corroborate<S: RebuildStore>(
    store: &S,
    job: &rebuild::LeaseView,
    embedded: Vec<rebuild::corroborate::EmbeddedBinary>,
    holder: &str,
    job_id: i64,
    fence: i64,
) -> Vec<rebuild::corroborate::Corroboration> {
    let build = match store.builds_by_id(&[job.build_id]).await {
        Ok(b) => b.into_iter().next(),
        Err(e) => {
            tracing::error!(job = job_id, error = %e, "corroboration skipped: the original build could not be read");
            return Vec::new();
        }
    };
    let Some(build) = build else {
        tracing::error!(job = job_id, build = job.build_id, "corroboration skipped: the original build is not stored");
        return Vec::new();
    };
    let text = match store.raw_buildinfo(&build.sha256).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::error!(job = job_id, build = %build.sha256, "corroboration skipped: the original buildinfo text is not stored");
            return Vec::new();
        }
        Err(e) => {
            tracing::error!(job = job_id, build = %build.sha256, error = %e, "corroboration skipped: the original buildinfo could not be read");
            return Vec::new();
        }
    };
    let computed = tokio::task::spawn_blocking(move || {
        let b = debcover_formats::Buildinfo::parse(&text).map_err(|e| e.to_string())?;
        let installed: Vec<(String, String)> =
            b.installed_build_depends.iter().map(|d| (d.name.clone(), d.version.to_string())).collect();
        Ok::<_, String>(rebuild::corroborate::findings(&embedded, &installed))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let findings = match computed {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(job = job_id, build = %build.sha256, error = %e, "corroboration skipped: the original buildinfo does not parse");
            return Vec::new();
        }
    };
    for c in findings.iter().filter(|c| c.finding.verdict == debcover_formats::corroborate::Verdict::Disagrees) {
        tracing::warn!(build = %build.sha256, job = job_id, fence, node = %holder, deb = %c.deb, binary = %c.finding.binary,
            field = %c.finding.subject, embedded = %c.finding.embedded, declared = %c.finding.declared.join(", "),
            "corroboration: a rebuilt binary disagrees with the original buildinfo (reported; the buildinfo stays authoritative)");
    }
    findings
}

/// The node-facing service.
pub struct NodeService<S> {
    store: Arc<S>,
    settings: Arc<RebuildSettings>,
}

impl<S: RebuildStore> NodeService<S> {
    /// A service over `store`.
    pub fn new(store: Arc<S>, settings: Arc<RebuildSettings>) -> Self {
        NodeService { store, settings }
    }
}

#[tonic::async_trait]
impl<S: RebuildStore> RebuildNodes for NodeService<S> {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Result<Response<pb::RegisterResponse>, Status> {
        let node = authenticate_node(&*self.store, &self.settings, request.metadata()).await?;
        let token_sha256 = rebuild::token_digest(bearer(request.metadata())?);
        let r = request.into_inner();
        // Proof of possession: the node signed this credential, its key and the time with it.
        crate::attestation::registration::check(
            &token_sha256,
            r.public_key.trim(),
            r.registration_time,
            &r.registration_signature,
            now_unix(),
        )
        .map_err(|e| {
            tracing::warn!(operator = %node.operator, node = %node.name, error = %e, "registration refused");
            Status::invalid_argument(e)
        })?;
        let arches = rebuild::normalise(r.architectures.iter().map(|a| rebuild::canonical_arch(a)));
        if arches.is_empty() {
            return Err(Status::invalid_argument("architectures: at least one is required"));
        }
        for a in &arches {
            if !debcover_formats::relation::is_valid_arch(a) {
                return Err(Status::invalid_argument(format!("architectures: {a:?} is not an architecture name")));
            }
        }
        for b in &r.backends {
            valid_word("backends", b)?;
        }
        for t in &r.tags {
            valid_word("tags", t)?;
        }
        if r.public_key.len() > 4096 {
            return Err(Status::invalid_argument("public_key: longer than 4096 bytes"));
        }
        let software = r.software.trim();
        if software.len() > MAX_SOFTWARE_BYTES || software.chars().any(char::is_control) {
            return Err(Status::invalid_argument(format!(
                "software: at most {MAX_SOFTWARE_BYTES} bytes of printable text, e.g. \"debcover-rebuilder 0.3.0\""
            )));
        }
        let caps = NodeCaps {
            public_key: r.public_key.trim().to_owned(),
            arches,
            backends: rebuild::normalise(r.backends),
            tags: rebuild::normalise(r.tags),
            slots: r.slots.clamp(1, MAX_SLOTS),
            software: software.to_owned(),
        };
        self.store.register_node(node.id, &caps, now_unix()).await.map_err(store_status)?;
        self.settings.nodes.clear();
        tracing::info!(operator = %node.operator, node = %node.name, arches = ?caps.arches, backends = ?caps.backends,
            tags = ?caps.tags, slots = caps.slots, "node registered");
        let ttl = self.settings.policy.lease_ttl.as_secs();
        Ok(Response::new(pb::RegisterResponse {
            operator: node.operator,
            node: node.name,
            architectures: caps.arches,
            lease_ttl_seconds: u32::try_from(ttl).unwrap_or(u32::MAX),
            heartbeat_seconds: u32::try_from((ttl / 3).max(1)).unwrap_or(u32::MAX),
        }))
    }

    async fn claim(&self, request: Request<pb::ClaimRequest>) -> Result<Response<pb::ClaimResponse>, Status> {
        let node = authenticate_node(&*self.store, &self.settings, request.metadata()).await?;
        if node.registered_at.is_none() {
            return Err(Status::failed_precondition("register this node before claiming"));
        }
        let wait = Duration::from_secs(u64::from(request.into_inner().wait_seconds)).min(MAX_CLAIM_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Subscribe before looking, so a job queued in between wakes us.
            let notified = self.settings.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(l) = self.store.claim(&node, now_unix(), &self.settings.policy).await.map_err(store_status)? {
                tracing::debug!(job = l.job_id, fence = l.fence, node = %node.name, "job leased");
                self.settings.leases.put(&l, node.id);
                return Ok(Response::new(pb::ClaimResponse {
                    job: Some(lease_to_job(l, self.settings.archive_mirror.as_deref())),
                }));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Response::new(pb::ClaimResponse { job: None }));
            }
            // Woken by this coordinator's queue changes; other coordinators sharing the database
            // (and retry-after times passing) are seen by polling every second.
            tokio::select! {
                _ = tokio::time::timeout((deadline - now).min(Duration::from_secs(1)), notified) => {}
                _ = self.settings.stopping.cancelled() => return Ok(Response::new(pb::ClaimResponse { job: None })),
            }
        }
    }

    async fn heartbeat(&self, request: Request<pb::HeartbeatRequest>) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let node = authenticate_node(&*self.store, &self.settings, request.metadata()).await?;
        let r = request.into_inner();
        let expires = self
            .store
            .heartbeat(node.id, r.job_id, r.fence, now_unix(), &self.settings.policy)
            .await
            .map_err(store_status)?
            .map_err(refused)?;
        self.settings.leases.extend(r.job_id, r.fence, expires);
        Ok(Response::new(pb::HeartbeatResponse { lease_expires_at: expires }))
    }

    async fn report_result(
        &self,
        request: Request<Streaming<pb::ReportChunk>>,
    ) -> Result<Response<pb::ReportResponse>, Status> {
        use pb::report_chunk::Chunk;
        let node = authenticate_node(&*self.store, &self.settings, request.metadata()).await?;
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::ReportChunk { chunk: Some(Chunk::Header(h)) }) => h,
            _ => return Err(Status::invalid_argument("the first message of ReportResult must be a header")),
        };
        // Refuse early (before receiving logs) when the lease is not this node's current one;
        // the store checks again when it records the result.
        let job = match self.settings.leases.get(header.job_id, header.fence, node.id, now_unix()) {
            Some(view) => view,
            None => Arc::new(
                self.store
                    .lease_view(header.job_id)
                    .await
                    .map_err(store_status)?
                    .ok_or_else(|| refused(Refusal::NoSuchJob))?,
            ),
        };
        let holder = format!("{}/{}", node.operator, node.name);
        if job.state != JobState::Leased || job.fence != header.fence {
            return Err(refused(Refusal::StaleFence { current: job.fence }));
        }
        if job.lease_node != Some(node.id) {
            return Err(refused(Refusal::NotYours));
        }
        let result = result_of(&header)?;
        let embedded = super::convert::embedded_binaries(&header)?;
        let cas = |e: CasError| match e {
            CasError::TooLarge { .. } => Status::resource_exhausted(e.to_string()),
            other => {
                tracing::error!(error = %other, "content store failure");
                Status::unavailable(other.to_string())
            }
        };
        let mut artifacts: Vec<Artifact> = Vec::new();
        // Started on the first chunk: a report without a log or buildinfo touches no file.
        let mut log: Option<BlobWriter> = None;
        let mut buildinfo: Option<BlobWriter> = None;
        let mut diffoscope: Option<BlobWriter> = None;
        let mut attestation: Vec<u8> = Vec::new();
        // The produced buildinfo is also kept here (within MAX_BUILDINFO_BYTES, which its
        // writer enforces first), to be parsed and ingested as a build.
        let mut produced: Vec<u8> = Vec::new();
        let dir = &self.settings.data_dir;
        while let Some(msg) = stream.message().await? {
            match msg.chunk {
                Some(Chunk::Artifact(a)) => {
                    if artifacts.len() >= MAX_ARTIFACTS {
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
                    artifacts.push(Artifact { name: a.name, size: a.size, sha256: a.sha256 });
                }
                Some(Chunk::Buildinfo(b)) => {
                    let w = buildinfo.get_or_insert_with(|| BlobWriter::start(dir, BlobKind::Buildinfo, MAX_BUILDINFO_BYTES));
                    w.write(b.clone()).await.map_err(cas)?;
                    produced.extend_from_slice(&b);
                }
                Some(Chunk::Log(b)) => {
                    log.get_or_insert_with(|| BlobWriter::start(dir, BlobKind::Log, MAX_LOG_BYTES)).write(b).await.map_err(cas)?
                }
                Some(Chunk::Diffoscope(b)) => diffoscope
                    .get_or_insert_with(|| BlobWriter::start(dir, BlobKind::Diffoscope, MAX_DIFFOSCOPE_BYTES))
                    .write(b)
                    .await
                    .map_err(cas)?,
                Some(Chunk::Header(_)) => return Err(Status::invalid_argument("a report has one header")),
                Some(Chunk::Attestation(b)) => {
                    if attestation.len() as u64 + b.len() as u64 > rebuild::attest::MAX_ATTESTATION_BYTES {
                        return Err(Status::resource_exhausted(format!(
                            "attestation larger than {} bytes",
                            rebuild::attest::MAX_ATTESTATION_BYTES
                        )));
                    }
                    attestation.extend_from_slice(&b);
                }
                None => {}
            }
        }
        if let Some(b) = embedded.iter().find(|b| !artifacts.iter().any(|a| a.name == b.deb)) {
            return Err(Status::invalid_argument(format!("embedded: {:?} is not one of the reported artifacts", b.deb)));
        }
        // A signed attestation must verify with the node's registered key and speak of this
        // lease and exactly these files; nothing is recorded otherwise. It is stored with the
        // result, in its transaction: a refused result leaves nothing behind.
        let attestation = if attestation.is_empty() {
            None
        } else {
            rebuild::attest::check(&attestation, &node.caps.public_key, header.job_id, header.fence, &artifacts)
                .map_err(|e| Status::invalid_argument(format!("attestation: {e}")))?;
            Some(Attestation::new(attestation))
        };
        // A built result's buildinfo must parse and describe the job's build before anything of
        // the report is recorded: otherwise the lease stays and the node may report again.
        let rebuilt = match (&result, produced.is_empty()) {
            (Reported::Built, false) => {
                let origin = format!("rebuild:{holder}:job-{}:fence-{}", header.job_id, header.fence);
                Some(prepare_produced(origin, produced, &job).await?)
            }
            _ => None,
        };
        let log_sha256 = match log {
            Some(w) => w.finish().await.map_err(cas)?,
            None => None,
        };
        let buildinfo_sha256 = match buildinfo {
            Some(w) => w.finish().await.map_err(cas)?,
            None => None,
        };
        let diffoscope_sha256 = match diffoscope {
            Some(w) => w.finish().await.map_err(cas)?,
            None => None,
        };
        let mut verdicts = Vec::new();
        let outcome = match result {
            Reported::Failed(code) => AttemptOutcome::Failed { code, message: header.message.chars().take(4096).collect() },
            Reported::EnvironmentMismatch(differences) => AttemptOutcome::EnvironmentMismatch { differences },
            Reported::Built => {
                let (outcome, v) = rebuild::judge(&job.checksums, &job.archive, &artifacts);
                verdicts = v;
                outcome
            }
        };
        if header.embedded_truncated {
            tracing::info!(job = header.job_id, fence = header.fence, node = %holder,
                "the node listed only part of what its binaries embed (bounds, or an unreadable .deb)");
        }
        let corroboration = match (&outcome, embedded.is_empty()) {
            (AttemptOutcome::Reproducible | AttemptOutcome::Unreproducible { .. }, false) => {
                corroborate(&*self.store, &job, embedded, &holder, header.job_id, header.fence).await
            }
            _ => Vec::new(),
        };
        let report = AttemptReport {
            outcome,
            artifacts,
            buildinfo_sha256,
            log_sha256,
            diffoscope_sha256,
            attestation,
            corroboration,
        };
        let finished = self
            .store
            .finish_report(node.id, header.job_id, header.fence, &report, now_unix(), &self.settings.policy)
            .await
            .map_err(store_status);
        // Ended or refused, the lease is not this node's to report on again.
        self.settings.leases.forget(header.job_id);
        let finished = finished?.map_err(refused)?;
        let state = finished.state;
        crate::web::metrics::global().record_result(report.outcome.as_str());
        if state == JobState::Queued {
            self.settings.work.notify_waiters();
        }
        tracing::debug!(job = header.job_id, fence = header.fence, node = %holder, outcome = report.outcome.as_str(),
            state = state.as_str(), "result recorded");
        // A built result can change the coverage of campaign items shipping this build (covered
        // when the job became verified; unreproducible or disagreement otherwise).
        if finished.campaign_items && matches!(report.outcome, AttemptOutcome::Reproducible | AttemptOutcome::Unreproducible { .. }) {
            super::refresh_campaigns(&*self.store, Some(std::slice::from_ref(&job.source)), Some(&self.settings)).await;
        }
        if let Some(nb) = rebuilt {
            // The result is recorded; the produced build is ingested like any other (a failure
            // here is logged: the buildinfo stays in the content-addressed store).
            let name = nb.origin.clone();
            match super::write_batch(&*self.store, vec![(name.clone(), Ok(nb))], Some(&self.settings)).await {
                Ok(o) => tracing::debug!(origin = %name, status = ?o.outcomes.first().map(|f| f.status), "produced buildinfo ingested"),
                Err(e) => tracing::error!(origin = %name, error = %e.message(), "ingesting the produced buildinfo failed"),
            }
        }
        Ok(Response::new(pb::ReportResponse {
            outcome: report.outcome.as_str().to_owned(),
            differing: match &report.outcome {
                AttemptOutcome::Unreproducible { differing } => differing.clone(),
                _ => Vec::new(),
            },
            job_state: state.as_str().to_owned(),
            log_sha256: report.log_sha256.unwrap_or_default(),
            buildinfo_sha256: report.buildinfo_sha256.unwrap_or_default(),
            diffoscope_sha256: report.diffoscope_sha256.unwrap_or_default(),
            attestation_sha256: report.attestation.as_ref().map(|a| a.sha256().to_owned()).unwrap_or_default(),
            verdicts: verdicts.iter().map(verdict_wire).collect(),
        }))
    }

    async fn hand_back(&self, request: Request<pb::HandBackRequest>) -> Result<Response<pb::HandBackResponse>, Status> {
        let node = authenticate_node(&*self.store, &self.settings, request.metadata()).await?;
        let r = request.into_inner();
        let report = AttemptReport::bare(AttemptOutcome::HandedBack);
        let ended = self.store.finish(node.id, r.job_id, r.fence, &report, now_unix(), &self.settings.policy).await;
        self.settings.leases.forget(r.job_id);
        ended.map_err(store_status)?.map_err(refused)?;
        tracing::info!(job = r.job_id, node = %node.name, reason = %r.reason, "lease handed back");
        self.settings.work.notify_waiters();
        Ok(Response::new(pb::HandBackResponse {}))
    }
}

/// The admin-facing service.
pub struct AdminService<S> {
    store: Arc<S>,
    settings: Arc<RebuildSettings>,
}

impl<S: RebuildStore> AdminService<S> {
    /// A service over `store`.
    pub fn new(store: Arc<S>, settings: Arc<RebuildSettings>) -> Self {
        AdminService { store, settings }
    }

    async fn enqueue(&self, mut jobs: Vec<NewJob>, mode: Requeue) -> Result<pb::EnqueueResponse, Status> {
        for j in &mut jobs {
            rebuild::route(j, &self.settings.routes);
        }
        let s = self.store.enqueue(&jobs, mode, now_unix()).await.map_err(store_status)?;
        if s.queued > 0 {
            self.settings.work.notify_waiters();
        }
        Ok(pb::EnqueueResponse {
            queued: s.queued,
            already_queued: s.already_queued,
            already_done: s.already_done,
            builds: jobs.len() as u64,
        })
    }
}

fn states_from_wire(states: &[String]) -> Result<Vec<JobState>, Status> {
    states.iter().map(|s| s.parse().map_err(Status::invalid_argument)).collect()
}

#[tonic::async_trait]
impl<S: RebuildStore> RebuildAdmin for AdminService<S> {
    async fn add_node(&self, request: Request<pb::AddNodeRequest>) -> Result<Response<pb::AddNodeResponse>, Status> {
        authenticate_admin(&self.settings, request.metadata())?;
        let r = request.into_inner();
        valid_name("operator", &r.operator)?;
        valid_name("name", &r.name)?;
        let token = rebuild::new_token();
        let node = self
            .store
            .add_node(&r.operator, &r.name, &rebuild::token_digest(&token), now_unix())
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::already_exists(format!("operator {} already has a node {}", r.operator, r.name)))?;
        tracing::info!(operator = %r.operator, node = %r.name, "node credential issued");
        Ok(Response::new(pb::AddNodeResponse { node: Some(node_wire(&node)), token }))
    }

    async fn list_nodes(&self, request: Request<pb::ListNodesRequest>) -> Result<Response<pb::ListNodesResponse>, Status> {
        authenticate_admin(&self.settings, request.metadata())?;
        let nodes = self.store.nodes().await.map_err(store_status)?;
        Ok(Response::new(pb::ListNodesResponse { nodes: nodes.iter().map(node_wire).collect() }))
    }

    async fn revoke_node(&self, request: Request<pb::RevokeNodeRequest>) -> Result<Response<pb::RevokeNodeResponse>, Status> {
        authenticate_admin(&self.settings, request.metadata())?;
        let r = request.into_inner();
        let revoked = self.store.revoke_node(&r.operator, &r.name, now_unix()).await.map_err(store_status)?;
        self.settings.nodes.clear();
        if !revoked {
            return Err(Status::not_found(format!("no valid credential for node {} of operator {}", r.name, r.operator)));
        }
        tracing::info!(operator = %r.operator, node = %r.name, "node credential revoked");
        self.settings.work.notify_waiters();
        Ok(Response::new(pb::RevokeNodeResponse {}))
    }

    async fn request_rebuild(&self, request: Request<pb::RebuildRequest>) -> Result<Response<pb::EnqueueResponse>, Status> {
        authenticate_admin(&self.settings, request.metadata())?;
        let r = request.into_inner();
        if !debcover_formats::relation::is_valid_package_name(&r.source) {
            return Err(Status::invalid_argument(format!("source: {:?} is not a source package name", r.source)));
        }
        let priority = match r.priority.as_str() {
            "" => Priority::Request,
            p => p.parse::<Priority>().map_err(Status::invalid_argument)?,
        };
        if !r.backend.is_empty() {
            valid_word("backend", &r.backend)?;
        }
        for t in &r.tags {
            valid_word("tags", t)?;
        }
        let arch = (!r.architecture.is_empty()).then(|| rebuild::canonical_arch(&r.architecture));
        let version = (!r.version.is_empty()).then_some(r.version.as_str());
        let builds = self.store.builds_of_source(&r.source, version, arch.as_deref()).await.map_err(store_status)?;
        if builds.is_empty() {
            return Err(Status::not_found(format!(
                "no ingested build of {}{}{}",
                r.source,
                version.map(|v| format!(" {v}")).unwrap_or_default(),
                arch.map(|a| format!(" on {a}")).unwrap_or_default()
            )));
        }
        let jobs = builds
            .into_iter()
            .map(|b| NewJob {
                build_id: b.id,
                source: b.source,
                version: b.version,
                arch: b.host_arch,
                backend: r.backend.clone(),
                tags: r.tags.clone(),
                priority,
                origin: "request".to_owned(),
            })
            .collect();
        Ok(Response::new(self.enqueue(jobs, Requeue::UnlessActive).await?))
    }

    async fn verify_suite(&self, request: Request<pb::VerifySuiteRequest>) -> Result<Response<pb::EnqueueResponse>, Status> {
        authenticate_admin(&self.settings, request.metadata())?;
        let r = request.into_inner();
        if r.suite.is_empty() {
            return Err(Status::invalid_argument("suite: required"));
        }
        let arches = rebuild::normalise(r.architectures.iter().map(|a| rebuild::canonical_arch(a)));
        let builds = self.store.shipped_builds(&r.suite, &arches).await.map_err(store_status)?;
        if builds.is_empty() && self.store.suite_arches(&r.suite).await.map_err(store_status)?.is_empty() {
            return Err(Status::not_found(format!("no Packages index of suite {} was ingested", r.suite)));
        }
        let origin = format!("verify suite {}", r.suite);
        let jobs = builds
            .into_iter()
            .map(|b| NewJob {
                build_id: b.build_id,
                source: b.source,
                version: b.version,
                arch: b.arch,
                backend: String::new(),
                tags: Vec::new(),
                priority: Priority::Background,
                origin: origin.clone(),
            })
            .collect();
        Ok(Response::new(self.enqueue(jobs, Requeue::OnlyNew).await?))
    }

    async fn queue(&self, request: Request<pb::QueueRequest>) -> Result<Response<pb::QueueResponse>, Status> {
        let r = request.into_inner();
        let mut states = states_from_wire(&r.states)?;
        if states.is_empty() {
            states = vec![JobState::Queued, JobState::Leased];
        }
        let counts = self.store.queue_counts().await.map_err(store_status)?;
        let limit = if r.limit == 0 { 50 } else { r.limit.min(10_000) };
        let jobs = self.store.jobs(&JobFilter { states, limit, ..Default::default() }).await.map_err(store_status)?;
        Ok(Response::new(pb::QueueResponse {
            counts: counts
                .by_state
                .into_iter()
                .map(|(state, priority, jobs)| pb::QueueCount { state, priority, jobs })
                .collect(),
            jobs: jobs.iter().map(job_info).collect(),
        }))
    }

    async fn job_history(&self, request: Request<pb::JobHistoryRequest>) -> Result<Response<pb::JobHistoryResponse>, Status> {
        let r = request.into_inner();
        if r.source.is_empty() {
            return Err(Status::invalid_argument("source: required"));
        }
        let filter = JobFilter {
            source: Some(r.source),
            version: (!r.version.is_empty()).then_some(r.version),
            limit: 1000,
            ..Default::default()
        };
        let jobs = self.store.jobs(&filter).await.map_err(store_status)?;
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let attempts = self.store.attempts(&ids).await.map_err(store_status)?;
        let mut corroboration: std::collections::HashMap<(i64, i64), Vec<pb::CorroborationFinding>> = Default::default();
        for c in self.store.corroboration(&ids).await.map_err(store_status)? {
            corroboration.entry((c.job_id, c.fence)).or_default().push(super::convert::corroboration_finding(&c.corroboration));
        }
        Ok(Response::new(pb::JobHistoryResponse {
            jobs: jobs
                .iter()
                .map(|j| {
                    // Disagreements are judged over every job of the same build listed here.
                    let same_build: Vec<AttemptRecord> = attempts
                        .iter()
                        .filter(|a| jobs.iter().any(|o| o.id == a.job_id && o.build_id == j.build_id))
                        .cloned()
                        .collect();
                    pb::JobHistory {
                        job: Some(job_info(j)),
                        attempts: attempts.iter().filter(|a| a.job_id == j.id).map(|a| {
                            attempt_info(a, corroboration.get(&(a.job_id, a.fence)).cloned().unwrap_or_default())
                        })
                        .collect(),
                        disagreements: rebuild::coverage::disagreements(&same_build)
                            .iter()
                            .map(|d| d.to_string())
                            .collect(),
                    }
                })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_headers_name_the_bad_field() {
        let h = |result: &str, code: &str, diffs: &[&str]| pb::ReportHeader {
            result: result.into(),
            failure_code: code.into(),
            environment_differences: diffs.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        assert!(matches!(result_of(&h("built", "", &[])), Ok(Reported::Built)));
        assert!(matches!(result_of(&h("failed", "timeout", &[])), Ok(Reported::Failed(FailureCode::Timeout))));
        match result_of(&h("environment-mismatch", "", &[" libc6: 2.36-9 installed, 2.36-8 recorded "])) {
            Ok(Reported::EnvironmentMismatch(d)) => assert_eq!(d, ["libc6: 2.36-9 installed, 2.36-8 recorded"]),
            other => panic!("{other:?}"),
        }
        for (header, field) in [
            (h("environment-mismatch", "", &[]), "environment_differences:"),
            (h("environment-mismatch", "", &["a\nb"]), "environment_differences:"),
            (h("failed", "oops", &[]), "failure_code:"),
            (h("failed", "node-lost", &[]), "failure_code:"),
            (h("done", "", &[]), "result:"),
        ] {
            let e = result_of(&header).unwrap_err();
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().starts_with(field), "{}", e.message());
        }
    }

    #[test]
    fn jobs_point_to_the_mirror_when_there_is_one() {
        let lease = rebuild::Lease {
            job_id: 1,
            fence: 2,
            expires_at: 3,
            build_id: 4,
            build_sha256: "b".repeat(64),
            source: "hello".into(),
            version: "2.10-3+b1".into(),
            arch: "amd64".into(),
            backend: String::new(),
            buildinfo: b"Format: 1.0\n".to_vec(),
            source_version: "1:2.10-3".into(),
            dsc: Some(rebuild::SourceDsc { directory: "pool/main/h/hello/".into(), sha256: Some("d".repeat(64)) }),
            originals: vec![rebuild::ArchiveFile {
                name: "hello_2.10-3+b1_amd64.deb".into(),
                sha256: "a".repeat(64),
                filename: "pool/main/h/hello/hello_2.10-3+b1_amd64.deb".into(),
            }],
            checksums: vec![("hello_2.10-3+b1_amd64.deb".into(), Some("a".repeat(64)))],
        };
        let j = lease_to_job(lease.clone(), Some("file:///srv/mirror"));
        assert_eq!(j.dsc_url, "file:///srv/mirror/pool/main/h/hello/hello_2.10-3.dsc", "no epoch in file names");
        assert_eq!(j.dsc_sha256, "d".repeat(64));
        assert_eq!(j.originals[0].url, "file:///srv/mirror/pool/main/h/hello/hello_2.10-3+b1_amd64.deb");
        assert_eq!((j.job_id, j.fence, j.buildinfo.as_slice()), (1, 2, &b"Format: 1.0\n"[..]));
        // Without a mirror: the node falls back to apt; the hashes are still given.
        let j = lease_to_job(lease.clone(), None);
        assert_eq!((j.dsc_url.as_str(), j.dsc_sha256.len()), ("", 64));
        assert_eq!((j.originals[0].url.as_str(), j.originals[0].sha256.len()), ("", 64));
        // Without a Sources entry: no source URL even with a mirror.
        let j = lease_to_job(rebuild::Lease { dsc: None, ..lease }, Some("http://deb.debian.org/debian"));
        assert_eq!((j.dsc_url.as_str(), j.dsc_sha256.as_str()), ("", ""));
        assert_eq!(j.originals[0].url, "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3+b1_amd64.deb");
    }

    #[test]
    fn verdict_shows_the_differing_archive_hash() {
        let v = FileVerdict {
            name: "a.deb".into(),
            rebuilt: Some("aa".into()),
            buildinfo: Some("aa".into()),
            archive: vec!["aa".into(), "bb".into()],
            matches: false,
        };
        let w = verdict_wire(&v);
        assert_eq!((w.archive_sha256.as_str(), w.buildinfo_sha256.as_str(), w.matches), ("bb", "aa", false));
    }

    #[test]
    fn credentials() {
        let mut md = MetadataMap::new();
        assert_eq!(bearer(&md).unwrap_err().code(), tonic::Code::Unauthenticated);
        md.insert("authorization", "Basic x".parse().unwrap());
        assert_eq!(bearer(&md).unwrap_err().code(), tonic::Code::Unauthenticated);
        md.insert("authorization", "Bearer dcn_x".parse().unwrap());
        assert_eq!(bearer(&md).unwrap(), "dcn_x");
        let s = RebuildSettings::new(Policy::default(), vec![], "secret", PathBuf::new());
        assert!(authenticate_admin(&s, &md).is_err());
        md.insert("authorization", "Bearer secret".parse().unwrap());
        assert!(authenticate_admin(&s, &md).is_ok());
        assert!(same_digest("ab", "ab") && !same_digest("ab", "ac") && !same_digest("ab", "abc"));
    }
}

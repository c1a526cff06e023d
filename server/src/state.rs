//! What every request of one coordinator process shares: the store, the settings, the
//! in-memory caches and the scheduler's wake-ups. One [`Coordinator`] per process, behind an
//! `Arc`, handed to the gRPC services, the use cases ([`crate::ops`]) and the reclaimer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use debcover_core::attestation::coordinator_key::CoordinatorKey;
use debcover_core::campaign::snapshot::ArchiveCache;
use debcover_core::index::BuiltWithIndex;
use debcover_core::ingest::Limits;
use debcover_core::rebuild::{self, LeaseView, NodeRecord, Policy, RouteRule};
use tokio::sync::{Notify, OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;

/// Concurrent ingestion streams (buildinfo or archive); further ones wait.
pub const MAX_CONCURRENT_INGESTS: usize = 4;

/// What a coordinator is configured with (resolved by the binary from flags, environment and
/// its configuration file).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Retry, budget, lease and independence rules.
    pub policy: Policy,
    /// Routing rules applied to new jobs.
    pub routes: Vec<RouteRule>,
    /// SHA-256 (hex) of the admin token.
    pub admin_token_sha256: String,
    /// Data directory (the content-addressed store and the coordinator key live under it).
    pub data_dir: PathBuf,
    /// Archive mirror URL (`http://deb.debian.org/debian`, `file:///srv/mirror`) jobs get their
    /// source and original binaries from; None: nodes use their own apt.
    pub archive_mirror: Option<String>,
    /// Input limits of ingestion.
    pub limits: Limits,
    /// The database, as the log names it (a password hidden).
    pub database: String,
    /// Reads need a credential too (`--closed-reads`); else they are open.
    pub closed_reads: bool,
    /// Buildinfo signatures: keyrings and policy.
    pub signatures: crate::ops::ingest::Signatures,
}

impl Settings {
    /// Settings with this policy, routes, admin token (as given; it is hashed here) and data
    /// directory; no mirror, default limits.
    pub fn new(policy: Policy, routes: Vec<RouteRule>, admin_token: &str, data_dir: PathBuf) -> Self {
        Settings {
            policy,
            routes,
            admin_token_sha256: rebuild::token_digest(admin_token),
            data_dir,
            archive_mirror: None,
            limits: Limits::default(),
            database: String::new(),
            closed_reads: false,
            signatures: Default::default(),
        }
    }

    /// The same settings with this archive mirror (already checked by
    /// [`rebuild::parse_mirror`]).
    pub fn with_archive_mirror(mut self, mirror: Option<String>) -> Self {
        self.archive_mirror = mirror;
        self
    }
}

/// The shared state of one coordinator process.
pub struct Coordinator<S> {
    /// The database.
    pub store: Arc<S>,
    /// The configuration.
    pub settings: Settings,
    /// The `built-with` index.
    pub index: BuiltWithIndex,
    /// Suite snapshots for impact analysis, valid for one query generation.
    pub archive: ArchiveCache,
    /// Ingestion streams running at once ([`MAX_CONCURRENT_INGESTS`]).
    pub ingest_slots: Arc<Semaphore>,
    /// Woken whenever jobs become claimable (queued, requeued, reclaimed).
    pub work: Notify,
    /// Cancelled when the server begins to shut down: waiting Claims answer at once (empty)
    /// instead of holding the graceful shutdown for up to their long-poll time, which could
    /// outlast the leases of nodes that are building meanwhile.
    pub stopping: CancellationToken,
    /// Recently authenticated nodes.
    pub(crate) nodes: NodeCache,
    /// Leases this coordinator handed out, with what judging their reports needs.
    pub(crate) leases: LeaseCache,
    /// The lease each recent claim id was answered with (see `ClaimRequest.claim_id`).
    pub(crate) claims: ClaimAnswers,
    /// The leases whose report is being received: one report stream per lease at a time.
    pub(crate) reporting: Reporting,
    /// The coordinator's signing key (loaded or made at start; a failure is kept and answered
    /// to every call that needs the key).
    pub(crate) key: Result<Arc<CoordinatorKey>, String>,
    /// Set once the key is listed in the store.
    pub(crate) key_recorded: OnceCell<()>,
}

impl<S> Coordinator<S> {
    /// The state of a coordinator over `store`; its key is loaded from (or made in) the data
    /// directory.
    pub fn new(store: Arc<S>, settings: Settings) -> Self {
        let key = CoordinatorKey::load_or_create(&settings.data_dir).map(Arc::new).map_err(|e| {
            tracing::error!(error = %e, "no coordinator key: layouts cannot be signed");
            e.to_string()
        });
        if let Ok(k) = &key {
            tracing::info!(key = %k.openssh_public(), path = %k.path.display(), "coordinator key");
        }
        Coordinator {
            store,
            settings,
            index: BuiltWithIndex::new(),
            archive: ArchiveCache::new(),
            ingest_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_INGESTS)),
            work: Notify::new(),
            stopping: CancellationToken::new(),
            nodes: NodeCache::default(),
            leases: LeaseCache::default(),
            claims: ClaimAnswers::default(),
            reporting: Reporting::default(),
            key,
            key_recorded: OnceCell::new(),
        }
    }
}

/// How long an authenticated node is remembered. Revocation through this coordinator takes
/// effect at once (the cache is cleared); through another coordinator sharing the database,
/// within this time.
pub const NODE_CACHE_TTL: Duration = Duration::from_secs(2);

/// Nodes by token digest, for [`NODE_CACHE_TTL`]: spares a database read on every call of a
/// busy node.
#[derive(Default)]
pub(crate) struct NodeCache(Mutex<HashMap<String, (NodeRecord, Instant)>>);

impl NodeCache {
    pub(crate) fn get(&self, digest: &str) -> Option<NodeRecord> {
        let map = self.0.lock().ok()?;
        map.get(digest).filter(|(_, at)| at.elapsed() < NODE_CACHE_TTL).map(|(n, _)| n.clone())
    }

    pub(crate) fn put(&self, digest: String, node: NodeRecord) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= 10_000 {
                map.clear();
            }
            map.insert(digest, (node, Instant::now()));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.0.lock() {
            map.clear();
        }
    }
}

/// The leases (job id) whose report stream is open. A second stream for the same lease is
/// refused while the first runs, so one node cannot multiply a report's log, buildinfo and
/// diffoscope uploads (each up to its cap) by opening streams in parallel.
#[derive(Default)]
pub(crate) struct Reporting(Arc<Mutex<std::collections::HashSet<i64>>>);

/// Held while a report stream is received; the lease is free again when it drops.
pub(crate) struct ReportSlot(Arc<Mutex<std::collections::HashSet<i64>>>, i64);

impl Reporting {
    pub(crate) fn enter(&self, job_id: i64) -> Option<ReportSlot> {
        let mut set = self.0.lock().ok()?;
        set.insert(job_id).then(|| ReportSlot(self.0.clone(), job_id))
    }
}

impl Drop for ReportSlot {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&self.1);
        }
    }
}

/// Claim answers kept for retried claims (beyond, the map starts again empty: a retry then
/// gets a new job and the lost lease expires, as without claim ids).
const CLAIM_ANSWERS_MAX: usize = 10_000;

/// The answers of recent claims by (node, claim id), so that a node retrying a claim whose
/// answer was lost in transit gets the same lease again. In memory: a coordinator restarted
/// between the claim and its retry answers the retry with a new job.
#[derive(Default)]
pub(crate) struct ClaimAnswers(Mutex<HashMap<(i64, String), rebuild::Lease>>);

impl ClaimAnswers {
    pub(crate) fn put(&self, node_id: i64, claim_id: &str, lease: &rebuild::Lease) {
        if claim_id.is_empty() {
            return;
        }
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= CLAIM_ANSWERS_MAX {
                map.clear();
            }
            map.insert((node_id, claim_id.to_owned()), lease.clone());
        }
    }

    pub(crate) fn get(&self, node_id: i64, claim_id: &str) -> Option<rebuild::Lease> {
        if claim_id.is_empty() {
            return None;
        }
        self.0.lock().ok()?.get(&(node_id, claim_id.to_owned())).cloned()
    }
}

/// Most leases kept in a [`LeaseCache`]; beyond it the cache starts again empty (reports of the
/// forgotten leases read their view from the database, as after a restart).
const LEASE_CACHE_MAX: usize = 100_000;

/// A lease this coordinator handed out: its token, its holder, its expiry as last extended
/// through this coordinator, and its view.
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
pub(crate) struct LeaseCache(Mutex<HashMap<i64, CachedLease>>);

impl LeaseCache {
    pub(crate) fn put(&self, lease: &rebuild::Lease, node_id: i64) {
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
    pub(crate) fn get(&self, job_id: i64, fence: i64, node_id: i64, now: i64) -> Option<Arc<LeaseView>> {
        let map = self.0.lock().ok()?;
        let l = map.get(&job_id)?;
        (l.fence == fence && l.node_id == node_id && l.expires_at >= now).then(|| l.view.clone())
    }

    pub(crate) fn extend(&self, job_id: i64, fence: i64, expires_at: i64) {
        if let Ok(mut map) = self.0.lock()
            && let Some(l) = map.get_mut(&job_id)
            && l.fence == fence
        {
            l.expires_at = expires_at;
        }
    }

    pub(crate) fn forget(&self, job_id: i64) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(&job_id);
        }
    }
}

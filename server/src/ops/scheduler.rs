//! The rebuild scheduler's use cases: credentials, registration, claims (long-polled),
//! heartbeats, hand-backs, queuing, the reclaimer of expired leases, and the listings of the
//! queue and of a source's rebuild history. The rules are `debcover_core::rebuild`'s; the
//! store applies them inside its transactions.
//!
//! # Invariants
//! - Every node call is authenticated by its bearer token (looked up by SHA-256 among
//!   unrevoked credentials); a node acts only on its own leases, with the current fencing token.
//! - Every admin call that changes anything needs the admin token; the queue and history
//!   listings are open (read-only).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use debcover_core::campaign::Transition;
use debcover_core::rebuild::corroborate::Corroboration;
use debcover_core::rebuild::{
    self, AttemptOutcome, AttemptRecord, AttemptReport, EnqueueSummary, JobFilter, JobRecord, JobState, Lease, NewJob,
    NodeCaps, NodeRecord, Priority, QueueCounts, Requeue,
};
use debcover_core::store::{Store, StoreError, now_unix};
use tokio_util::sync::CancellationToken;

use super::{Error, Result};
use crate::Coordinator;

/// Longest Claim long-poll.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(30);
/// Longest node software description.
pub const MAX_SOFTWARE_BYTES: usize = 200;
/// Most concurrent leases a node may declare.
pub const MAX_SLOTS: u32 = 256;

/// Compare two digests without an early exit.
fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The unrevoked node holding `token`.
pub async fn authenticate_node<S: Store>(c: &Coordinator<S>, token: &str) -> std::result::Result<NodeRecord, AuthError> {
    let digest = rebuild::token_digest(token);
    if let Some(n) = c.nodes.get(&digest) {
        return Ok(n);
    }
    let node = c.store.node_by_token(&digest).await?.ok_or(AuthError::UnknownNode)?;
    c.nodes.put(digest, node.clone());
    Ok(node)
}

/// Whether `token` is the admin token.
pub fn authenticate_admin<S>(c: &Coordinator<S>, token: &str) -> std::result::Result<(), AuthError> {
    if same_digest(&rebuild::token_digest(token), &c.settings.admin_token_sha256) {
        Ok(())
    } else {
        Err(AuthError::NotAdmin)
    }
}

/// Why a credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No unrevoked node holds it.
    #[error("unknown or revoked node credential")]
    UnknownNode,
    /// It is not the admin token.
    #[error("this call needs the coordinator's admin token")]
    NotAdmin,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a node declares when it registers.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    /// Its ed25519 public key (OpenSSH form).
    pub public_key: String,
    /// When it signed the registration statement (unix seconds).
    pub time: i64,
    /// The statement's signature.
    pub signature: Vec<u8>,
    /// Architectures it builds (aliases such as x86_64 accepted).
    pub architectures: Vec<String>,
    /// Backends it offers.
    pub backends: Vec<String>,
    /// Tags it carries.
    pub tags: Vec<String>,
    /// Concurrent leases.
    pub slots: u32,
    /// Its software's name and version.
    pub software: String,
}

/// A backend or tag word: 1-64 of `a-z 0-9 . _ -`.
pub fn valid_word(what: &str, s: &str) -> Result<()> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{what}: {s:?} must be 1-64 lower-case letters, digits, '.', '_' or '-'")))
    }
}

/// A name for operators and nodes: 1-64 of `A-Z a-z 0-9 . _ -`.
pub fn valid_name(what: &str, s: &str) -> Result<()> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        Ok(())
    } else {
        Err(Error::Invalid(format!("{what}: {s:?} must be 1-64 letters, digits, '.', '_' or '-'")))
    }
}

/// Most architectures one node may register (Debian has about 25, ports included).
pub const MAX_NODE_ARCHITECTURES: usize = 64;
/// Most backends one node may register.
pub const MAX_NODE_BACKENDS: usize = 16;
/// Most tags one node may register.
pub const MAX_NODE_TAGS: usize = 64;

/// Register `node` (authenticated by the token whose digest is `token_sha256`): check its proof
/// of possession of the key and what it declares; returns what was recorded.
pub async fn register<S: Store>(c: &Coordinator<S>, node: &NodeRecord, token_sha256: &str, r: Registration) -> Result<NodeCaps> {
    // Proof of possession: the node signed this credential, its key and the time with it.
    debcover_core::attestation::registration::check(token_sha256, r.public_key.trim(), r.time, &r.signature, now_unix())
        .map_err(|e| {
            tracing::warn!(operator = %node.operator, node = %node.name, error = %e, "registration refused");
            Error::Invalid(e)
        })?;
    // Bounded before anything is stored: each value becomes a row (and a bound variable of
    // one statement) in the store.
    for (field, n, max) in [
        ("architectures", r.architectures.len(), MAX_NODE_ARCHITECTURES),
        ("backends", r.backends.len(), MAX_NODE_BACKENDS),
        ("tags", r.tags.len(), MAX_NODE_TAGS),
    ] {
        if n > max {
            return Err(Error::Invalid(format!("{field}: {n} given, at most {max} are accepted")));
        }
    }
    let arches = rebuild::normalise(r.architectures.iter().map(|a| rebuild::canonical_arch(a)));
    if arches.is_empty() {
        return Err(Error::Invalid("architectures: at least one is required".into()));
    }
    for a in &arches {
        if !debcover_formats::relation::is_valid_arch(a) {
            return Err(Error::Invalid(format!("architectures: {a:?} is not an architecture name")));
        }
    }
    for b in &r.backends {
        valid_word("backends", b)?;
    }
    for t in &r.tags {
        valid_word("tags", t)?;
    }
    if r.public_key.len() > 4096 {
        return Err(Error::Invalid("public_key: longer than 4096 bytes".into()));
    }
    let software = r.software.trim();
    if software.len() > MAX_SOFTWARE_BYTES || software.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
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
    c.store.register_node(node.id, &caps, now_unix()).await?;
    c.nodes.clear();
    tracing::info!(operator = %node.operator, node = %node.name, arches = ?caps.arches, backends = ?caps.backends,
        tags = ?caps.tags, slots = caps.slots, "node registered");
    Ok(caps)
}

/// Lease the next job `node` may take, waiting up to `wait` (at most [`MAX_CLAIM_WAIT`]) for
/// one; None when none came (or the server began to shut down).
pub async fn claim<S: Store>(c: &Coordinator<S>, node: &NodeRecord, wait: Duration) -> Result<Option<Lease>> {
    if node.registered_at.is_none() {
        return Err(Error::Invalid("register this node before claiming".into()));
    }
    let deadline = tokio::time::Instant::now() + wait.min(MAX_CLAIM_WAIT);
    loop {
        // Subscribe before looking, so a job queued in between wakes us.
        let notified = c.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(l) = c.store.claim(node, now_unix(), &c.settings.policy).await? {
            tracing::debug!(job = l.job_id, fence = l.fence, node = %node.name, "job leased");
            c.leases.put(&l, node.id);
            return Ok(Some(l));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        // Woken by this coordinator's queue changes; other coordinators sharing the database
        // (and retry-after times passing) are seen by polling every second.
        tokio::select! {
            _ = tokio::time::timeout((deadline - now).min(Duration::from_secs(1)), notified) => {}
            _ = c.stopping.cancelled() => return Ok(None),
        }
    }
}

/// [`claim`], answering a retried claim (same `claim_id`, see `ClaimRequest.claim_id`) with
/// the lease its first attempt got while that lease is still the node's, so a lost answer
/// costs neither the job a lease expiry nor the node a strike.
pub async fn claim_once<S: Store>(c: &Coordinator<S>, node: &NodeRecord, claim_id: &str, wait: Duration) -> Result<Option<Lease>> {
    if let Some(l) = c.claims.get(node.id, claim_id) {
        if c.leases.get(l.job_id, l.fence, node.id, now_unix()).is_some() {
            tracing::info!(job = l.job_id, fence = l.fence, node = %node.name, "claim retried: the same lease answered again");
            return Ok(Some(l));
        }
    }
    let lease = claim(c, node, wait).await?;
    if let Some(l) = &lease {
        c.claims.put(node.id, claim_id, l);
    }
    Ok(lease)
}

/// Extend `node`'s lease on `job_id`; returns the new expiry.
pub async fn heartbeat<S: Store>(c: &Coordinator<S>, node: &NodeRecord, job_id: i64, fence: i64) -> Result<i64> {
    let expires = c.store.heartbeat(node.id, job_id, fence, now_unix(), &c.settings.policy).await?.map_err(Error::Lease)?;
    c.leases.extend(job_id, fence, expires);
    Ok(expires)
}

/// `node` gives its lease on `job_id` back without a result (no budget charged).
pub async fn hand_back<S: Store>(c: &Coordinator<S>, node: &NodeRecord, job_id: i64, fence: i64, reason: &str) -> Result<()> {
    let report = AttemptReport::bare(AttemptOutcome::HandedBack);
    let ended = c.store.finish(node.id, job_id, fence, &report, now_unix(), &c.settings.policy).await;
    c.leases.forget(job_id);
    ended?.map_err(Error::Lease)?;
    tracing::info!(job = job_id, node = %node.name, %reason, "lease handed back");
    c.work.notify_waiters();
    Ok(())
}

/// Queue verification jobs at campaign priority for the builds that fixed campaign items
/// (`fixed-unverified`), one per build: a build queued or leased already is not queued again
/// (its priority is raised to campaign), one verified or parked before is not queued again.
pub async fn queue_fixed<S: Store>(c: &Coordinator<S>, changes: &[Transition]) -> std::result::Result<EnqueueSummary, StoreError> {
    let mut wanted: Vec<(i64, i64)> =
        changes.iter().flat_map(|t| t.builds_to_verify().iter().map(move |b| (*b, t.campaign_id))).collect();
    wanted.sort_unstable();
    wanted.dedup_by_key(|(b, _)| *b);
    if wanted.is_empty() {
        return Ok(EnqueueSummary::default());
    }
    let ids: Vec<i64> = wanted.iter().map(|(b, _)| *b).collect();
    let records = c.store.builds_by_id(&ids).await?;
    let jobs: Vec<NewJob> = wanted
        .iter()
        .filter_map(|(b, campaign)| {
            records.iter().find(|r| r.id == *b).map(|r| NewJob {
                build_id: r.id,
                source: r.source.clone(),
                version: r.version.clone(),
                arch: r.host_arch.clone(),
                backend: String::new(),
                tags: Vec::new(),
                priority: Priority::Campaign,
                origin: format!("campaign {campaign}"),
            })
        })
        .collect();
    let s = enqueue(c, jobs, Requeue::OnlyNew).await?;
    if s.queued > 0 {
        tracing::info!(jobs = s.queued, "verification queued for builds that fixed campaign items");
    }
    Ok(s)
}

/// Queue `jobs` (routed by the configured rules first) and wake waiting claims.
pub async fn enqueue<S: Store>(c: &Coordinator<S>, mut jobs: Vec<NewJob>, mode: Requeue) -> std::result::Result<EnqueueSummary, StoreError> {
    for j in &mut jobs {
        rebuild::route(j, &c.settings.routes);
    }
    let s = c.store.enqueue(&jobs, mode, now_unix()).await?;
    if s.queued > 0 {
        c.work.notify_waiters();
    }
    Ok(s)
}

/// Issue a credential for a new node: the node and its token (shown once, stored hashed).
pub async fn add_node<S: Store>(c: &Coordinator<S>, operator: &str, name: &str) -> Result<(NodeRecord, String)> {
    valid_name("operator", operator)?;
    valid_name("name", name)?;
    let token = rebuild::new_token();
    let node = c
        .store
        .add_node(operator, name, &rebuild::token_digest(&token), now_unix())
        .await?
        .ok_or_else(|| Error::AlreadyExists(format!("operator {operator} already has a node {name}")))?;
    tracing::info!(%operator, node = %name, "node credential issued");
    Ok((node, token))
}

/// Revoke a node's credential; its leases go back to the queue.
pub async fn revoke_node<S: Store>(c: &Coordinator<S>, operator: &str, name: &str) -> Result<()> {
    let revoked = c.store.revoke_node(operator, name, now_unix()).await?;
    c.nodes.clear();
    if !revoked {
        return Err(Error::NotFound(format!("no valid credential for node {name} of operator {operator}")));
    }
    tracing::info!(%operator, node = %name, "node credential revoked");
    c.work.notify_waiters();
    Ok(())
}

/// Queue parked jobs again with fresh budgets: job `job_id`, or the parked jobs of `source`
/// (optionally one version). Returns the ids released.
pub async fn release_parked<S: Store>(
    c: &Coordinator<S>,
    source: &str,
    version: Option<&str>,
    job_id: Option<i64>,
) -> Result<Vec<i64>> {
    if job_id.is_none() && source.is_empty() {
        return Err(Error::Invalid("name a source (and optionally a version) or a job id".into()));
    }
    let released = c.store.release_parked(source, version, job_id, now_unix()).await?;
    if !released.is_empty() {
        tracing::info!(jobs = ?released, "parked jobs released");
        c.work.notify_waiters();
    }
    Ok(released)
}

/// What a rebuild request asks for.
#[derive(Debug, Clone, Default)]
pub struct RebuildRequest {
    /// Source package.
    pub source: String,
    /// Binary or source version; None: every ingested one.
    pub version: Option<String>,
    /// Host architecture (aliases accepted); None: every one.
    pub architecture: Option<String>,
    /// Backend the node must use; empty: any.
    pub backend: String,
    /// Tags the node must carry.
    pub tags: Vec<String>,
    /// Priority name (`request` or `campaign`); empty: request.
    pub priority: String,
}

/// Queue the ingested builds of a source (an explicit request: queued again unless queued now);
/// returns the summary and how many builds matched.
pub async fn request_rebuild<S: Store>(c: &Coordinator<S>, r: RebuildRequest) -> Result<(EnqueueSummary, usize)> {
    if !debcover_formats::relation::is_valid_package_name(&r.source) {
        return Err(Error::Invalid(format!("source: {:?} is not a source package name", r.source)));
    }
    let priority = match r.priority.as_str() {
        "" => Priority::Request,
        p => p.parse::<Priority>().map_err(Error::Invalid)?,
    };
    if !r.backend.is_empty() {
        valid_word("backend", &r.backend)?;
    }
    for t in &r.tags {
        valid_word("tags", t)?;
    }
    let arch = r.architecture.as_deref().map(rebuild::canonical_arch);
    let version = r.version.as_deref();
    let builds = c.store.builds_of_source(&r.source, version, arch.as_deref()).await?;
    if builds.is_empty() {
        return Err(Error::NotFound(format!(
            "no ingested build of {}{}{}",
            r.source,
            version.map(|v| format!(" {v}")).unwrap_or_default(),
            arch.map(|a| format!(" on {a}")).unwrap_or_default()
        )));
    }
    let jobs: Vec<NewJob> = builds
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
    let n = jobs.len();
    Ok((enqueue(c, jobs, Requeue::UnlessActive).await?, n))
}

/// Queue every shipped build of a suite (optionally of these architectures) at background
/// priority; builds that had a job before are skipped. Returns the summary and how many builds
/// the suite ships.
pub async fn verify_suite<S: Store>(c: &Coordinator<S>, suite: &str, architectures: &[String]) -> Result<(EnqueueSummary, usize)> {
    if suite.is_empty() {
        return Err(Error::Invalid("suite: required".into()));
    }
    let arches = rebuild::normalise(architectures.iter().map(|a| rebuild::canonical_arch(a)));
    let builds = c.store.shipped_builds(suite, &arches).await?;
    if builds.is_empty() && c.store.suite_arches(suite).await?.is_empty() {
        return Err(Error::NotFound(format!("no Packages index of suite {suite} was ingested")));
    }
    let origin = format!("verify suite {suite}");
    let jobs: Vec<NewJob> = builds
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
    let n = jobs.len();
    Ok((enqueue(c, jobs, Requeue::OnlyNew).await?, n))
}

/// Job counts per state and priority, and the first `limit` jobs (at most 10,000; 0: 50) in
/// these states (empty: queued and leased).
pub async fn queue<S: Store>(c: &Coordinator<S>, mut states: Vec<JobState>, limit: u32) -> Result<(QueueCounts, Vec<JobRecord>)> {
    if states.is_empty() {
        states = vec![JobState::Queued, JobState::Leased];
    }
    let counts = c.store.queue_counts().await?;
    let limit = if limit == 0 { 50 } else { limit.min(10_000) };
    let jobs = c.store.jobs(&JobFilter { states, limit, ..Default::default() }).await?;
    Ok((counts, jobs))
}

/// One job of a source's rebuild history: its attempts (with their corroboration findings) and
/// the disagreements between operators over every job of the same build.
#[derive(Debug)]
pub struct JobHistory {
    /// The job.
    pub job: JobRecord,
    /// Its attempts, oldest first, each with its findings.
    pub attempts: Vec<(AttemptRecord, Vec<Corroboration>)>,
    /// Where two operators' rebuilds of the build produced different bytes.
    pub disagreements: Vec<String>,
}

/// Every rebuild job of a source (optionally of one version) and its attempts.
pub async fn history<S: Store>(c: &Coordinator<S>, source: String, version: Option<String>) -> Result<Vec<JobHistory>> {
    if source.is_empty() {
        return Err(Error::Invalid("source: required".into()));
    }
    let filter = JobFilter { source: Some(source), version, limit: 1000, ..Default::default() };
    let jobs = c.store.jobs(&filter).await?;
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let attempts = c.store.attempts(&ids).await?;
    let mut corroboration: HashMap<(i64, i64), Vec<Corroboration>> = HashMap::new();
    for f in c.store.corroboration(&ids).await? {
        corroboration.entry((f.job_id, f.fence)).or_default().push(f.corroboration);
    }
    Ok(jobs
        .iter()
        .map(|j| {
            // Disagreements are judged over every job of the same build listed here.
            let same_build: Vec<AttemptRecord> = attempts
                .iter()
                .filter(|a| jobs.iter().any(|o| o.id == a.job_id && o.build_id == j.build_id))
                .cloned()
                .collect();
            JobHistory {
                job: j.clone(),
                attempts: attempts
                    .iter()
                    .filter(|a| a.job_id == j.id)
                    .map(|a| (a.clone(), corroboration.get(&(a.job_id, a.fence)).cloned().unwrap_or_default()))
                    .collect(),
                disagreements: rebuild::coverage::disagreements(&same_build).iter().map(|d| d.to_string()).collect(),
            }
        })
        .collect())
}

/// Expire stale leases every `every` until `shutdown`; wakes claimers when jobs come back.
pub async fn reclaimer<S: Store>(c: Arc<Coordinator<S>>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match c.store.reclaim_expired(now_unix(), &c.settings.policy).await {
            Ok(0) => {}
            Ok(n) => {
                crate::metrics::global().lease_expiries.inc_by(n);
                tracing::info!(jobs = n, "expired leases reclaimed (node-lost)");
                c.work.notify_waiters();
            }
            Err(e) => tracing::error!(error = %e, "reclaiming expired leases failed"),
        }
    }
}

/// How often the reclaimer runs for a lease TTL: a tenth of it, between 1 and 30 seconds.
pub fn reclaim_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_compare_whole() {
        assert!(same_digest("ab", "ab") && !same_digest("ab", "ac") && !same_digest("ab", "abc"));
    }
}

//! The rebuilder network's vocabulary and rules: nodes and their credentials, verification
//! jobs, fenced leases, attempts, and the scheduling policy (priorities, retries, budgets,
//! operator independence, architecture aliases and routing).
//!
//! The storage backends (`crate::store::RebuildStore`) apply these rules inside their
//! transactions; this module decides *what* they mean, so that both backends agree.
//!
//! # Invariants
//! - No SQL and no protobuf here.
//! - A result or heartbeat is accepted only with the job's current fencing token, from the
//!   node that holds the lease, before the lease expires. The token grows with every lease.
//! - A build is never queued twice at once, and never given to two nodes of one operator.
//! - Credentials are kept only as SHA-256 digests of the tokens.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod attest;
pub mod corroborate;
pub mod coverage;
mod machine;

pub use machine::{Charge, JobAfter, JobEvent, JobFacts};

/// Why a job was queued; lower values are claimed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Priority {
    /// A campaign item needs verification.
    Campaign = 0,
    /// An operator asked for it (`debcover rebuild request`).
    Request = 1,
    /// Background verification of a suite (`debcover verify suite`).
    Background = 2,
}

impl Priority {
    /// The stored integer (lower is claimed first).
    pub fn rank(self) -> i64 {
        self as i64
    }

    /// From the stored integer.
    pub fn from_rank(rank: i64) -> Option<Priority> {
        match rank {
            0 => Some(Priority::Campaign),
            1 => Some(Priority::Request),
            2 => Some(Priority::Background),
            _ => None,
        }
    }

    /// `campaign`, `request` or `background`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Campaign => "campaign",
            Priority::Request => "request",
            Priority::Background => "background",
        }
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "campaign" => Ok(Priority::Campaign),
            "request" => Ok(Priority::Request),
            "background" => Ok(Priority::Background),
            other => Err(format!("unknown priority {other:?}: expected campaign, request or background")),
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobState {
    /// Waiting for a node (possibly not before its retry-after time).
    Queued,
    /// A node holds a lease on it.
    Leased,
    /// Reproduced by the required number of distinct operators, each with an accepted signed
    /// attestation.
    Verified,
    /// A budget is exhausted; the reason says which.
    Parked,
}

impl JobState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Leased => "leased",
            JobState::Verified => "verified",
            JobState::Parked => "parked",
        }
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "queued" => Ok(JobState::Queued),
            "leased" => Ok(JobState::Leased),
            "verified" => Ok(JobState::Verified),
            "parked" => Ok(JobState::Parked),
            other => Err(format!("unknown job state {other:?}")),
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureCode {
    /// The package's build itself failed.
    BuildFailed,
    /// The recorded build environment could not be installed.
    DependenciesUnavailable,
    /// The build ran past the node's time limit.
    Timeout,
    /// The node's own infrastructure failed (network, disk, ...).
    Infrastructure,
    /// The lease expired: the node stopped sending heartbeats.
    NodeLost,
}

impl FailureCode {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::BuildFailed => "build-failed",
            FailureCode::DependenciesUnavailable => "dependencies-unavailable",
            FailureCode::Timeout => "timeout",
            FailureCode::Infrastructure => "infrastructure",
            FailureCode::NodeLost => "node-lost",
        }
    }

    /// Failures that are not the package's fault are retried at once rather than after the
    /// back-off delays.
    pub fn retry_at_once(self) -> bool {
        self.blames_node()
    }

    /// The node's machine or network failed (`infrastructure`, `node-lost`): charged to the
    /// node (strikes, then quarantine), never to the job.
    pub fn blames_node(self) -> bool {
        matches!(self, FailureCode::Infrastructure | FailureCode::NodeLost)
    }
}

impl FromStr for FailureCode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "build-failed" => Ok(FailureCode::BuildFailed),
            "dependencies-unavailable" => Ok(FailureCode::DependenciesUnavailable),
            "timeout" => Ok(FailureCode::Timeout),
            "infrastructure" => Ok(FailureCode::Infrastructure),
            "node-lost" => Ok(FailureCode::NodeLost),
            other => Err(format!(
                "unknown failure code {other:?}: expected build-failed, dependencies-unavailable, timeout, \
                 infrastructure or node-lost"
            )),
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum AttemptOutcome {
    /// Every artifact matched the original build.
    Reproducible,
    /// The build succeeded but these files differ (or are missing).
    Unreproducible {
        /// Names of the differing files.
        differing: Vec<String>,
    },
    /// The attempt failed.
    Failed {
        /// Why.
        code: FailureCode,
        /// The node's explanation.
        message: String,
    },
    /// The node's build environment differs from the buildinfo's Installed-Build-Depends, so
    /// nothing was built. Not a verdict on the package: it counts against the failure budget
    /// (with the normal retry delay), so that a build no node can set up is parked in the end.
    EnvironmentMismatch {
        /// One line per difference, as the node reported them.
        differences: Vec<String>,
    },
    /// The node gave the lease back without a result (shutting down); no budget is charged.
    HandedBack,
}

impl AttemptOutcome {
    /// Stored name of [`AttemptOutcome::Reproducible`] (SQL and readers use these constants).
    pub const REPRODUCIBLE: &'static str = "reproducible";
    /// Stored name of [`AttemptOutcome::Unreproducible`].
    pub const UNREPRODUCIBLE: &'static str = "unreproducible";
    /// Stored name of [`AttemptOutcome::Failed`].
    pub const FAILED: &'static str = "failed";
    /// Stored name of [`AttemptOutcome::EnvironmentMismatch`].
    pub const ENVIRONMENT_MISMATCH: &'static str = "environment-mismatch";
    /// Stored name of [`AttemptOutcome::HandedBack`].
    pub const HANDED_BACK: &'static str = "handed-back";

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            AttemptOutcome::Reproducible => Self::REPRODUCIBLE,
            AttemptOutcome::Unreproducible { .. } => Self::UNREPRODUCIBLE,
            AttemptOutcome::Failed { .. } => Self::FAILED,
            AttemptOutcome::EnvironmentMismatch { .. } => Self::ENVIRONMENT_MISMATCH,
            AttemptOutcome::HandedBack => Self::HANDED_BACK,
        }
    }

    /// What is stored as the attempt's differences: the differing files of an unreproducible
    /// result, the environment differences of a mismatch, nothing otherwise.
    pub fn differences(&self) -> &[String] {
        match self {
            AttemptOutcome::Unreproducible { differing } => differing,
            AttemptOutcome::EnvironmentMismatch { differences } => differences,
            _ => &[],
        }
    }
}

/// A file an attempt produced, as the node reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// File name, e.g. `hello_2.10-3_amd64.deb`.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// A node's signed attestation (an in-toto link) as accepted with a result: the bytes the node
/// signed, kept byte for byte, and their SHA-256, the key it is stored and published under
/// (computed here, so key and bytes always agree).
#[derive(Clone, PartialEq, Eq)]
pub struct Attestation {
    sha256: String,
    /// Shared: the SQLite writer's batch takes its own copy of a report, and a link may be up
    /// to a MiB.
    body: std::sync::Arc<[u8]>,
}

impl Attestation {
    /// The attestation of these bytes (checked by [`attest::check`] before a result is
    /// recorded with it).
    pub fn new(body: Vec<u8>) -> Attestation {
        Attestation { sha256: hex::encode(Sha256::digest(&body)), body: body.into() }
    }

    /// Lower-case hex SHA-256 of the bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The bytes as signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Debug for Attestation {
    /// The key and size only: a link is kilobytes of JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attestation").field("sha256", &self.sha256).field("bytes", &self.body.len()).finish()
    }
}

/// What a node reports when its attempt ends, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// The judged outcome.
    pub outcome: AttemptOutcome,
    /// Produced files.
    pub artifacts: Vec<Artifact>,
    /// SHA-256 of the produced .buildinfo in the content-addressed store.
    pub buildinfo_sha256: Option<String>,
    /// SHA-256 of the build log (uncompressed) in the content-addressed store.
    pub log_sha256: Option<String>,
    /// SHA-256 of the diffoscope report (uncompressed) in the content-addressed store.
    pub diffoscope_sha256: Option<String>,
    /// The node's signed attestation, verified before it was accepted; stored in the result's
    /// transaction (`RebuildStore::attestation` reads it back by its SHA-256).
    pub attestation: Option<Attestation>,
    /// What the rebuilt binaries say about their build against the original buildinfo
    /// ([`corroborate::findings`]): reports only, never part of the outcome.
    pub corroboration: Vec<corroborate::Corroboration>,
}

impl AttemptReport {
    /// A report with this outcome and nothing else (hand-backs, lost nodes).
    pub fn bare(outcome: AttemptOutcome) -> AttemptReport {
        AttemptReport {
            outcome,
            artifacts: Vec::new(),
            buildinfo_sha256: None,
            log_sha256: None,
            diffoscope_sha256: None,
            attestation: None,
            corroboration: Vec::new(),
        }
    }
}

/// An operator's node as stored (never with its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRecord {
    /// Node id.
    pub id: i64,
    /// Operator id.
    pub operator_id: i64,
    /// Operator name.
    pub operator: String,
    /// Node name (unique per operator).
    pub name: String,
    /// When the credential was issued.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// What the node declared at its last registration.
    pub caps: NodeCaps,
    /// Last registration.
    pub registered_at: Option<i64>,
    /// Last call seen from it.
    pub last_seen: Option<i64>,
    /// Leases it holds now.
    pub active_leases: u64,
    /// Failures charged to it in a row, and its quarantine.
    pub standing: NodeStanding,
}

/// What a node can build, as it declares at registration (architectures canonicalised).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeCaps {
    /// ed25519 public key (text), kept for attestations.
    pub public_key: String,
    /// Debian architecture names, canonical, sorted.
    pub arches: Vec<String>,
    /// Backends (`local`, `debrebuild`, `command`), sorted.
    pub backends: Vec<String>,
    /// Tags such as `big`, sorted.
    pub tags: Vec<String>,
    /// Concurrent leases it may hold (at least 1).
    pub slots: u32,
    /// The node software's name and version (`debcover-rebuilder 0.3.0`); empty if not given.
    pub software: String,
}

impl NodeCaps {
    /// Architectures whose jobs this node takes: its own, plus `all` when it builds amd64
    /// (Debian builds architecture-independent packages on amd64) or declares `all`.
    pub fn claimable_arches(&self) -> Vec<String> {
        let mut v = self.arches.clone();
        if v.iter().any(|a| a == "amd64") && !v.iter().any(|a| a == "all") {
            v.push("all".to_owned());
        }
        v.sort();
        v
    }
}

/// A build to queue for verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// `builds.id`.
    pub build_id: i64,
    /// Source package.
    pub source: String,
    /// Version of the build (binary version).
    pub version: String,
    /// Host architecture of the build.
    pub arch: String,
    /// Required backend; empty means any.
    pub backend: String,
    /// Tags a node must carry, sorted.
    pub tags: Vec<String>,
    /// Priority.
    pub priority: Priority,
    /// Why it was queued (`request`, `verify suite bookworm`, `campaign 3`).
    pub origin: String,
}

/// What queuing did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EnqueueSummary {
    /// New jobs.
    pub queued: u64,
    /// Builds already queued or leased (their priority raised when the new one is higher).
    pub already_queued: u64,
    /// Builds skipped because a job for them already ended (background verification only).
    pub already_done: u64,
}

/// How [`crate::store::RebuildStore::enqueue`] treats builds that had jobs before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Queue again unless queued now (explicit requests).
    UnlessActive,
    /// Queue only builds that were never verified or parked (background verification,
    /// campaign builds); a build parked before a node credential was issued is tried again.
    OnlyNew,
}

/// A lease handed to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Job id.
    pub job_id: i64,
    /// Fencing token: the job's lease counter; every later call must carry it.
    pub fence: i64,
    /// When the lease ends unless renewed (unix seconds).
    pub expires_at: i64,
    /// `builds.id` of the build to reproduce.
    pub build_id: i64,
    /// SHA-256 of the original buildinfo (the build's identity).
    pub build_sha256: String,
    /// Source package.
    pub source: String,
    /// Version.
    pub version: String,
    /// Host architecture.
    pub arch: String,
    /// Required backend ('' = node's choice).
    pub backend: String,
    /// The original buildinfo, exactly as ingested.
    pub buildinfo: Vec<u8>,
    /// Source version of the build (without binNMU suffix).
    pub source_version: String,
    /// The source package as the ingested Sources indices list it, if they do.
    pub dsc: Option<SourceDsc>,
    /// The build's binaries as the archive ships them.
    pub originals: Vec<ArchiveFile>,
    /// `(file name, SHA-256)` of the original build's Checksums-Sha256, as in [`LeaseView`]:
    /// the coordinator keeps it with the lease to judge the report without reading it again.
    pub checksums: Vec<(String, Option<String>)>,
}

impl Lease {
    /// What judging this lease's report needs, as [`RebuildStore::lease_view`] would read it
    /// right after the claim.
    ///
    /// [`RebuildStore::lease_view`]: crate::store::RebuildStore::lease_view
    pub fn view(&self, node_id: i64) -> LeaseView {
        LeaseView {
            build_id: self.build_id,
            state: JobState::Leased,
            fence: self.fence,
            lease_node: Some(node_id),
            checksums: self.checksums.clone(),
            archive: self.originals.clone(),
            source: self.source.clone(),
            version: self.version.clone(),
        }
    }
}

/// How ending an attempt went, when the lease was the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// The job's new state.
    pub state: JobState,
    /// Whether any campaign has an item for the job's source, read in the same transaction:
    /// only then can a built result change a campaign item's coverage.
    pub campaign_items: bool,
}

/// Where a Sources index puts a source package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceDsc {
    /// `Directory` (pool path, e.g. `pool/main/h/hello`).
    pub directory: String,
    /// SHA-256 of the .dsc from Checksums-Sha256, when the index had it.
    pub sha256: Option<String>,
}

/// A binary the archive ships (a Packages entry), as a candidate file of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveBinary {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: String,
    /// `Architecture`.
    pub architecture: String,
    /// `SHA256`.
    pub sha256: String,
    /// `Filename` (pool path).
    pub filename: String,
}

/// A file of a build as the archive ships it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    /// File name as a buildinfo lists it (`hello_2.10-3_amd64.deb`).
    pub name: String,
    /// The archive's SHA-256.
    pub sha256: String,
    /// Path below the mirror (`pool/main/h/hello/hello_2.10-3_amd64.deb`).
    pub filename: String,
}

impl ArchiveBinary {
    /// The file name a buildinfo gives this binary: `PACKAGE_VERSION-WITHOUT-EPOCH_ARCH.EXT`,
    /// the extension taken from the pool file name (`deb`, `udeb`). `None` when the version
    /// does not parse.
    pub fn file_name(&self) -> Option<String> {
        let v: debversion::Version = self.version.parse().ok()?;
        let ext = self.filename.rsplit_once('.').map(|(_, e)| e).filter(|e| !e.contains('/')).unwrap_or("deb");
        Some(format!("{}_{}_{}.{ext}", self.package, without_epoch(&v), self.architecture))
    }
}

/// A version as file names spell it: without its epoch.
pub fn without_epoch(v: &debversion::Version) -> String {
    let mut v = v.clone();
    v.epoch = None;
    v.to_string()
}

/// The archive's files of a build from the shipped binaries of its source, version and
/// architectures, one per file name (the first listed wins; the same bytes shipped twice are
/// one file). Binaries whose version does not parse are skipped.
pub fn archive_files(binaries: &[ArchiveBinary]) -> Vec<ArchiveFile> {
    let mut out: Vec<ArchiveFile> = Vec::new();
    for b in binaries {
        let Some(name) = b.file_name() else { continue };
        if out.iter().any(|f| f.name == name && f.sha256 == b.sha256) {
            continue;
        }
        out.push(ArchiveFile { name, sha256: b.sha256.clone(), filename: b.filename.clone() });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.sha256.cmp(&b.sha256)));
    out
}

/// The .dsc file name of a source version: `SOURCE_VERSION-WITHOUT-EPOCH.dsc`.
pub fn dsc_name(source: &str, source_version: &debversion::Version) -> String {
    format!("{source}_{}.dsc", without_epoch(source_version))
}

/// `path` below a mirror URL (`http://deb.debian.org/debian`, `file:///srv/mirror`).
pub fn mirror_url(mirror: &str, path: &str) -> String {
    format!("{}/{}", mirror.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// A checked mirror URL: `http://`, `https://` or `file://` (absolute path) with something
/// after the scheme; trailing slashes removed.
pub fn parse_mirror(url: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    let rest = ["http://", "https://", "file://"].iter().find_map(|p| u.strip_prefix(p).map(|r| (*p, r)));
    match rest {
        Some(("file://", r)) if r.starts_with('/') && r.len() > 1 => Ok(u.to_owned()),
        Some(("file://", _)) => {
            Err("a file:// mirror needs an absolute path, e.g. file:///srv/mirror".into())
        }
        Some((_, r))
            if !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace) =>
        {
            Ok(u.to_owned())
        }
        _ => Err(
            "expected an http://, https:// or file:// URL, e.g. http://deb.debian.org/debian"
                .into(),
        ),
    }
}

/// One file's verdict: the rebuilt hash against every official one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileVerdict {
    /// File name.
    pub name: String,
    /// The rebuilt SHA-256; None when the rebuild did not produce the file.
    pub rebuilt: Option<String>,
    /// From the original buildinfo's Checksums-Sha256.
    pub buildinfo: Option<String>,
    /// From the archive's Packages indices where the file ships (every distinct hash).
    pub archive: Vec<String>,
    /// The rebuilt hash equals every official hash there is.
    pub matches: bool,
}

/// Judge a built attempt: every binary package (`.deb`, `.udeb`, `.ddeb`) the original build
/// produced or the archive ships must come back with the SHA-256 of the buildinfo *and* of
/// the archive; other files (sources) are compared when both sides have them. Returns the
/// outcome and one verdict per file compared, by name.
pub fn judge(original: &[(String, Option<String>)], archive: &[ArchiveFile], rebuilt: &[Artifact]) -> (AttemptOutcome, Vec<FileVerdict>) {
    let mut names: Vec<&str> = original.iter().map(|(n, _)| n.as_str()).chain(archive.iter().map(|a| a.name.as_str())).collect();
    names.sort_unstable();
    names.dedup();
    let mut differing = Vec::new();
    let mut verdicts = Vec::new();
    for name in names {
        let buildinfo = original.iter().find(|(n, _)| n == name).and_then(|(_, s)| s.clone());
        let mut official: Vec<String> = archive.iter().filter(|a| a.name == name).map(|a| a.sha256.clone()).collect();
        official.sort();
        official.dedup();
        if buildinfo.is_none() && official.is_empty() {
            continue;
        }
        let is_binary = name.ends_with(".deb") || name.ends_with(".udeb") || name.ends_with(".ddeb");
        let rebuilt_sha = rebuilt.iter().find(|a| a.name == name).map(|a| a.sha256.clone());
        if rebuilt_sha.is_none() && !is_binary {
            continue;
        }
        let matches = rebuilt_sha.as_ref().is_some_and(|r| buildinfo.iter().chain(&official).all(|o| o == r));
        if !matches {
            differing.push(name.to_owned());
        }
        verdicts.push(FileVerdict { name: name.to_owned(), rebuilt: rebuilt_sha, buildinfo, archive: official, matches });
    }
    let outcome =
        if differing.is_empty() { AttemptOutcome::Reproducible } else { AttemptOutcome::Unreproducible { differing } };
    (outcome, verdicts)
}

/// A produced buildinfo recorded with a built result (see
/// `RebuildStore::produced_not_ingested`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedBuildinfo {
    /// The job.
    pub job_id: i64,
    /// The attempt's fencing token.
    pub fence: i64,
    /// SHA-256 of the buildinfo (its blob in the content store, and the build it becomes).
    pub sha256: String,
    /// The node's operator.
    pub operator: String,
    /// The node.
    pub node: String,
    /// The build the job rebuilds (`builds.id`): the produced build's `rebuild_of`.
    pub build_id: i64,
}

/// A job's lease as a report needs it: who holds it with which token, and what the original
/// build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// `builds.id`.
    pub build_id: i64,
    /// State.
    pub state: JobState,
    /// Current fencing token.
    pub fence: i64,
    /// Node holding the lease.
    pub lease_node: Option<i64>,
    /// `(file name, SHA-256)` of the original build's Checksums-Sha256.
    pub checksums: Vec<(String, Option<String>)>,
    /// The build's binaries as the archive ships them.
    pub archive: Vec<ArchiveFile>,
    /// The job's source package.
    pub source: String,
    /// The job's version (the build's binary version).
    pub version: String,
}

/// Why a lease-carrying call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such job.
    NoSuchJob,
    /// The token is not the job's current one (the job was reassigned), or the job is no
    /// longer leased.
    StaleFence {
        /// The job's current token.
        current: i64,
    },
    /// Another node holds the lease.
    NotYours,
    /// The lease expired before this call.
    Expired,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoSuchJob => write!(f, "no such job"),
            Refusal::StaleFence { current } => {
                write!(f, "stale fencing token: the lease was reassigned or ended (current token {current})")
            }
            Refusal::NotYours => write!(f, "this node does not hold the lease on this job"),
            Refusal::Expired => write!(f, "the lease expired"),
        }
    }
}

/// A call that carried a lease: accepted (with a value) or refused.
pub type Fenced<T> = Result<T, Refusal>;

/// A job as listed by `debcover queue` and history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRecord {
    /// Job id.
    pub id: i64,
    /// `builds.id`.
    pub build_id: i64,
    /// SHA-256 of the build's buildinfo.
    pub build_sha256: String,
    /// Source package.
    pub source: String,
    /// Version.
    pub version: String,
    /// Host architecture.
    pub arch: String,
    /// Required backend.
    pub backend: String,
    /// Required tags.
    pub tags: Vec<String>,
    /// Priority.
    pub priority: Priority,
    /// Why it was queued.
    pub origin: String,
    /// State.
    pub state: JobState,
    /// Retry-after time.
    pub not_before: i64,
    /// Current fencing token.
    pub fence: i64,
    /// Node holding the lease (`operator/node`).
    pub lease_node: Option<String>,
    /// Lease expiry.
    pub lease_expires: Option<i64>,
    /// Failures so far.
    pub failures: u32,
    /// Unreproducible results so far.
    pub unreproducible: u32,
    /// Distinct operators that reproduced it.
    pub verified: u32,
    /// Why it was parked.
    pub parked_reason: Option<String>,
    /// When it was queued.
    pub queued_at: i64,
}

/// One attempt in a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    /// Job id.
    pub job_id: i64,
    /// The lease's fencing token.
    pub fence: i64,
    /// Operator name.
    pub operator: String,
    /// Node name.
    pub node: String,
    /// Lease start.
    pub started_at: i64,
    /// End, once ended.
    pub finished_at: Option<i64>,
    /// `reproducible`, `unreproducible`, `failed`, `environment-mismatch`, `handed-back`;
    /// None while running.
    pub outcome: Option<String>,
    /// Failure sub-code.
    pub failure_code: Option<String>,
    /// Explanation.
    pub message: String,
    /// Produced buildinfo in the content-addressed store.
    pub buildinfo_sha256: Option<String>,
    /// Build log in the content-addressed store.
    pub log_sha256: Option<String>,
    /// Reported files.
    pub artifacts: Vec<Artifact>,
    /// Diffoscope report in the content-addressed store.
    pub diffoscope_sha256: Option<String>,
    /// Differing files (unreproducible) or environment differences (environment-mismatch).
    pub differences: Vec<String>,
    /// SHA-256 of the node's signed attestation (`RebuildStore::attestation` reads it; links
    /// accepted by older versions are in the content-addressed store, `cas::BlobKind::Attestation`).
    pub attestation_sha256: Option<String>,
}

/// Which jobs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only these states (empty: all).
    pub states: Vec<JobState>,
    /// Only this source package.
    pub source: Option<String>,
    /// Only this version (binary or source version).
    pub version: Option<String>,
    /// Only this job.
    pub id: Option<i64>,
    /// At most this many (0: no limit).
    pub limit: u32,
}

/// A build that may become a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildTarget {
    /// `builds.id`.
    pub build_id: i64,
    /// Source package.
    pub source: String,
    /// Version of the build.
    pub version: String,
    /// Host architecture.
    pub arch: String,
}

/// Counts for `debcover queue`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// `(state, priority, count)`.
    pub by_state: Vec<(String, String, u64)>,
}

/// The scheduler's tunables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A lease ends this long after the claim or the last heartbeat.
    pub lease_ttl: Duration,
    /// Delay before retry n (1-based) after a failure; the last one repeats.
    pub retry_delays: Vec<Duration>,
    /// Failures after which a job is parked.
    pub max_failures: u32,
    /// Unreproducible results after which a job is parked.
    pub max_unreproducible: u32,
    /// Distinct operators that must reproduce a build (k of n), each with an accepted attestation.
    pub verifiers: u32,
}

/// Default lease TTL.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(600);
/// Default retry delays: 10 min, 1 h, 6 h.
pub const DEFAULT_RETRY_DELAYS: [Duration; 3] =
    [Duration::from_secs(600), Duration::from_secs(3600), Duration::from_secs(6 * 3600)];

impl Default for Policy {
    fn default() -> Self {
        Policy {
            lease_ttl: DEFAULT_LEASE_TTL,
            retry_delays: DEFAULT_RETRY_DELAYS.to_vec(),
            max_failures: 4,
            max_unreproducible: 2,
            verifiers: 2,
        }
    }
}

/// The history note of a failure charged to the node that held the lease.
pub const NODE_FAULT_NOTE: &str =
    "charged to the node, not the job: its machine or network failed; the job is retried at once by other nodes";

/// Node-charged failures in a row after which a node is quarantined.
pub const STRIKES_TO_QUARANTINE: u32 = 3;
/// The first quarantine; each next one doubles, up to [`MAX_QUARANTINE`].
pub const FIRST_QUARANTINE: Duration = Duration::from_secs(60);
/// The longest quarantine.
pub const MAX_QUARANTINE: Duration = Duration::from_secs(6 * 3600);

/// A node's standing: failures charged to it in a row, and its quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct NodeStanding {
    /// Node-charged failures since its last good attempt.
    pub strikes: u32,
    /// Quarantines so far (each doubles the next).
    pub quarantines: u32,
    /// It claims nothing before this time (unix seconds).
    pub quarantined_until: Option<i64>,
}

impl NodeStanding {
    /// The standing after an attempt of this node ended as `next` says: a node-charged failure
    /// is a strike (the third in a row a quarantine, doubling each time, at most
    /// [`MAX_QUARANTINE`]); a result (reproducible or not) or a failure charged to the job shows
    /// the node works and clears its strikes; a hand-back changes nothing.
    pub fn after(self, next: &JobAfter, now: i64) -> NodeStanding {
        let built = matches!(next.ended, Some(AttemptOutcome::Reproducible | AttemptOutcome::Unreproducible { .. }));
        let charge = if next.charge == Charge::Nobody && built { Charge::Job } else { next.charge };
        match charge {
            Charge::Node => {
                let strikes = self.strikes + 1;
                if strikes < STRIKES_TO_QUARANTINE {
                    return NodeStanding { strikes, ..self };
                }
                let first = secs(FIRST_QUARANTINE);
                let wait = first.saturating_mul(1i64 << self.quarantines.min(20)).min(secs(MAX_QUARANTINE));
                NodeStanding { strikes: 0, quarantines: self.quarantines + 1, quarantined_until: Some(now + wait) }
            }
            Charge::Job => NodeStanding { strikes: 0, ..self },
            Charge::Nobody => self,
        }
    }
}

/// The history note of a built attempt that carried no accepted attestation.
pub const UNATTESTED_NOTE: &str = "not attested: no signed in-toto link accepted, so this result is recorded and shown \
     but counts neither towards verification nor against the build";

impl Policy {
    /// The failures one operator may charge to a job: half its budget (at least one), so that
    /// parking a job for failures takes two operators, or one operator and the job's own
    /// unreproducible results.
    pub fn operator_share(&self) -> u32 {
        (self.max_failures / 2).max(1)
    }

    /// The delay before the retry that follows failure number `failures` (1-based).
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let i = (failures.max(1) - 1) as usize;
        self.retry_delays.get(i).or(self.retry_delays.last()).copied().unwrap_or_default()
    }

    /// The job's next state after an attempt with `outcome` ended at `now`, given its
    /// counters before; `operator_already_verified`: this operator had reproduced it before (it
    /// is then not counted twice). Part of [`Policy::transition`], which decides for reports
    /// whether a reproduction counts at all.
    pub(crate) fn after(
        &self,
        outcome: &AttemptOutcome,
        now: i64,
        failures: u32,
        unreproducible: u32,
        verified: u32,
        operator_already_verified: bool,
    ) -> JobAfter {
        let mut next = JobAfter {
            state: JobState::Queued,
            fence: 0,
            holder: None,
            expires: None,
            not_before: now,
            failures,
            unreproducible,
            verified,
            parked_reason: None,
            note: None,
            ended: Some(outcome.clone()),
            charge: Charge::Nobody,
        };
        match outcome {
            AttemptOutcome::Reproducible => {
                if !operator_already_verified {
                    next.verified += 1;
                }
                if next.verified >= self.verifiers.max(1) {
                    next.state = JobState::Verified;
                }
            }
            AttemptOutcome::Unreproducible { differing } => {
                next.unreproducible += 1;
                if next.unreproducible >= self.max_unreproducible.max(1) {
                    next.state = JobState::Parked;
                    next.parked_reason = Some(format!(
                        "unreproducible {} times (budget {}); last differing: {}",
                        next.unreproducible,
                        self.max_unreproducible,
                        differing.join(" ")
                    ));
                } else {
                    next.not_before = now + secs(self.retry_delay(next.unreproducible));
                }
            }
            AttemptOutcome::Failed { code, message } => {
                next.failures += 1;
                if next.failures >= self.max_failures.max(1) {
                    next.state = JobState::Parked;
                    next.parked_reason = Some(format!(
                        "failed {} times (budget {}); last: {}: {}",
                        next.failures,
                        self.max_failures,
                        code.as_str(),
                        message
                    ));
                } else if !code.retry_at_once() {
                    next.not_before = now + secs(self.retry_delay(next.failures));
                }
            }
            AttemptOutcome::EnvironmentMismatch { differences } => {
                next.failures += 1;
                if next.failures >= self.max_failures.max(1) {
                    next.state = JobState::Parked;
                    next.parked_reason = Some(format!(
                        "failed {} times (budget {}); last: environment-mismatch: no node could install the recorded \
                         build environment: {}",
                        next.failures,
                        self.max_failures,
                        differences.join("; ")
                    ));
                } else {
                    next.not_before = now + secs(self.retry_delay(next.failures));
                }
            }
            AttemptOutcome::HandedBack => {}
        }
        next
    }
}

pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

/// Parse a duration such as `10m`, `1h`, `6h`, `30s`, `2d` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 10m, 1h, 2d)"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h or d)")),
    };
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

/// The canonical Debian name of an architecture, from Debian or kernel/toolchain spellings
/// (`x86_64` → `amd64`, `aarch64` → `arm64`, ...). Unknown names are returned lower-cased.
pub fn canonical_arch(arch: &str) -> String {
    let a = arch.trim().to_ascii_lowercase();
    match a.as_str() {
        "x86_64" | "x86-64" | "x64" => "amd64",
        "aarch64" | "armv8" | "armv8l" => "arm64",
        "i386" | "i486" | "i586" | "i686" | "x86" => "i386",
        "armv7l" | "armv7" | "armv7hl" => "armhf",
        "armv5tel" | "armv6l" => "armel",
        "ppc64le" | "powerpc64le" => "ppc64el",
        "ppc64" | "powerpc64" => "ppc64",
        "riscv64gc" => "riscv64",
        "mips64el" | "mips64le" => "mips64el",
        "loong64" | "loongarch64" => "loong64",
        _ => return a,
    }
    .to_owned()
}

/// Normalise a list of words: trimmed, non-empty, sorted, deduplicated.
pub fn normalise(words: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = words.into_iter().map(|w| w.trim().to_owned()).filter(|w| !w.is_empty()).collect();
    v.sort();
    v.dedup();
    v
}

/// A per-package routing rule: jobs of matching sources require these tags (e.g. `big`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// Source package name; a trailing `*` matches a prefix (`llvm-toolchain-*`).
    pub source: String,
    /// Tags required.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Backend required, if any.
    #[serde(default)]
    pub backend: Option<String>,
}

impl RouteRule {
    /// Does this rule apply to `source`?
    pub fn matches(&self, source: &str) -> bool {
        match self.source.strip_suffix('*') {
            Some(prefix) => source.starts_with(prefix),
            None => self.source == source,
        }
    }
}

/// Apply routing rules to a job: their tags are added, the first rule with a backend sets it
/// unless the job names one.
pub fn route(job: &mut NewJob, rules: &[RouteRule]) {
    for r in rules.iter().filter(|r| r.matches(&job.source)) {
        job.tags.extend(r.tags.iter().cloned());
        if job.backend.is_empty()
            && let Some(b) = &r.backend
        {
            job.backend = b.clone();
        }
    }
    job.tags = normalise(std::mem::take(&mut job.tags));
}

/// Prefix of node tokens (recognisable in logs and secret scanners).
pub const NODE_TOKEN_PREFIX: &str = "dcn_";

/// A fresh node credential: 256 random bits from the operating system's generator.
pub fn new_token() -> String {
    new_secret(NODE_TOKEN_PREFIX)
}

/// A fresh bearer secret: `prefix` then 256 random bits (hex) from the operating system's
/// generator. Node credentials and API tokens differ only in their prefix.
pub fn new_secret(prefix: &str) -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{prefix}{}", hex::encode(bytes))
}

/// The stored form of a token: lower-case hex SHA-256.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        assert_eq!(canonical_arch("x86_64"), "amd64");
        assert_eq!(canonical_arch("AARCH64"), "arm64");
        assert_eq!(canonical_arch("amd64"), "amd64");
        assert_eq!(canonical_arch("ppc64le"), "ppc64el");
        let caps = NodeCaps { arches: vec!["amd64".into()], ..Default::default() };
        assert_eq!(caps.claimable_arches(), ["all", "amd64"]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(21600));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("1y").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn retry_backoff_and_budgets() {
        let p = Policy::default();
        let fail = AttemptOutcome::Failed { code: FailureCode::BuildFailed, message: "x".into() };
        let a = p.after(&fail, 1000, 0, 0, 0, false);
        assert_eq!((a.state, a.not_before, a.failures), (JobState::Queued, 1600, 1));
        let a = p.after(&fail, 1000, 1, 0, 0, false);
        assert_eq!(a.not_before, 1000 + 3600);
        let a = p.after(&fail, 1000, 2, 0, 0, false);
        assert_eq!(a.not_before, 1000 + 6 * 3600);
        let a = p.after(&fail, 1000, 3, 0, 0, false);
        assert_eq!(a.state, JobState::Parked);
        assert!(a.parked_reason.unwrap().contains("build-failed"));
        let lost = AttemptOutcome::Failed { code: FailureCode::NodeLost, message: String::new() };
        assert_eq!(p.after(&lost, 1000, 0, 0, 0, false).not_before, 1000);
        // Separate budgets: failures do not use up the unreproducible budget.
        let unrepro = AttemptOutcome::Unreproducible { differing: vec!["a.deb".into()] };
        assert_eq!(p.after(&unrepro, 1000, 3, 0, 0, false).state, JobState::Queued);
        assert_eq!(p.after(&unrepro, 1000, 0, 1, 0, false).state, JobState::Parked);
        // k of n.
        assert_eq!(p.after(&AttemptOutcome::Reproducible, 1, 0, 0, 0, false).state, JobState::Queued);
        assert_eq!(p.after(&AttemptOutcome::Reproducible, 1, 0, 0, 1, false).state, JobState::Verified);
        assert_eq!(p.after(&AttemptOutcome::Reproducible, 1, 0, 0, 1, true).state, JobState::Queued);
    }

    #[test]
    fn only_attested_reproductions_count() {
        let p = Policy::default();
        // A job leased to node 1 with token 1, its counters as given; a report from its holder.
        let report = |r: &AttemptReport, unreproducible: u32, verified: u32| {
            let job = JobFacts { state: JobState::Leased, fence: 1, holder: Some(1), expires: Some(10), unreproducible, verified, ..JobFacts::new() };
            p.transition(&job, JobEvent::Report { node_id: 1, fence: 1, now: 1, report: r, operator_already_verified: false }).unwrap()
        };
        let mut r = AttemptReport::bare(AttemptOutcome::Reproducible);
        let a = report(&r, 0, 1);
        assert_eq!((a.state, a.verified, a.note.as_deref()), (JobState::Queued, 1, Some(UNATTESTED_NOTE)));
        r.attestation = Some(Attestation::new(b"{\"signed\": {}}".to_vec()));
        let a = report(&r, 0, 1);
        assert_eq!((a.state, a.verified, a.note), (JobState::Verified, 2, None));
        // An unreproducible result counts against the build only when attested: an unsigned one
        // is recorded, and leaves the job queued for others.
        let mut u = AttemptReport::bare(AttemptOutcome::Unreproducible {
            differing: vec!["a.deb".into()],
        });
        let a = report(&u, 1, 0);
        assert_eq!(
            (a.state, a.unreproducible, a.note.as_deref()),
            (JobState::Queued, 1, Some(UNATTESTED_NOTE))
        );
        u.attestation = Some(Attestation::new(b"{\"signed\": {}}".to_vec()));
        assert_eq!(report(&u, 1, 0).state, JobState::Parked);
    }

    fn art(name: &str, sha: &str) -> Artifact {
        Artifact { name: name.into(), size: 1, sha256: sha.into() }
    }

    fn shipped(name: &str, sha: &str) -> ArchiveFile {
        ArchiveFile { name: name.into(), sha256: sha.into(), filename: format!("pool/main/a/a/{name}") }
    }

    #[test]
    fn verdicts_against_the_buildinfo() {
        let original = vec![
            ("a_1_amd64.deb".to_owned(), Some("aa".to_owned())),
            ("a_1.dsc".to_owned(), Some("dd".to_owned())),
            ("a-dbgsym_1_amd64.deb".to_owned(), Some("bb".to_owned())),
        ];
        let (o, v) = judge(&original, &[], &[art("a_1_amd64.deb", "aa"), art("a-dbgsym_1_amd64.deb", "bb")]);
        assert_eq!(o, AttemptOutcome::Reproducible);
        assert_eq!(v.iter().map(|v| (v.name.as_str(), v.matches)).collect::<Vec<_>>(),
            [("a-dbgsym_1_amd64.deb", true), ("a_1_amd64.deb", true)], "the .dsc was not rebuilt: not compared");
        let (o, _) =
            judge(&original, &[], &[art("a_1_amd64.deb", "aa"), art("a-dbgsym_1_amd64.deb", "cc"), art("a_1.dsc", "ee")]);
        assert_eq!(o, AttemptOutcome::Unreproducible { differing: vec!["a-dbgsym_1_amd64.deb".into(), "a_1.dsc".into()] });
        let (o, v) = judge(&original, &[], &[art("a_1_amd64.deb", "aa")]);
        assert_eq!(o, AttemptOutcome::Unreproducible { differing: vec!["a-dbgsym_1_amd64.deb".into()] });
        assert_eq!(v[0].rebuilt, None, "a missing binary has no rebuilt hash");
    }

    #[test]
    fn verdicts_against_the_archive_too() {
        let original = vec![("a_1_amd64.deb".to_owned(), Some("aa".to_owned()))];
        // The archive agrees with the buildinfo: matching both is reproducible.
        let (o, v) = judge(&original, &[shipped("a_1_amd64.deb", "aa")], &[art("a_1_amd64.deb", "aa")]);
        assert_eq!(o, AttemptOutcome::Reproducible);
        assert_eq!((v[0].buildinfo.as_deref(), v[0].archive.as_slice(), v[0].matches), (Some("aa"), &["aa".to_owned()][..], true));
        // The archive ships other bytes than the buildinfo lists: matching one is not enough.
        let (o, v) = judge(&original, &[shipped("a_1_amd64.deb", "ff")], &[art("a_1_amd64.deb", "aa")]);
        assert_eq!(o, AttemptOutcome::Unreproducible { differing: vec!["a_1_amd64.deb".into()] });
        assert!(!v[0].matches);
        let (o, _) = judge(&original, &[shipped("a_1_amd64.deb", "ff")], &[art("a_1_amd64.deb", "ff")]);
        assert_eq!(o, AttemptOutcome::Unreproducible { differing: vec!["a_1_amd64.deb".into()] });
        // A shipped binary the buildinfo does not list is compared with the archive alone.
        let (o, v) = judge(&original, &[shipped("a-doc_1_all.deb", "cc")], &[art("a_1_amd64.deb", "aa"), art("a-doc_1_all.deb", "cc")]);
        assert_eq!(o, AttemptOutcome::Reproducible);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].name.as_str(), v[0].buildinfo.as_deref()), ("a-doc_1_all.deb", None));
    }

    #[test]
    fn archive_file_names_and_urls() {
        let b = ArchiveBinary {
            package: "hello".into(),
            version: "1:2.10-3+b1".into(),
            architecture: "amd64".into(),
            sha256: "aa".into(),
            filename: "pool/main/h/hello/hello_2.10-3+b1_amd64.deb".into(),
        };
        assert_eq!(b.file_name().as_deref(), Some("hello_2.10-3+b1_amd64.deb"));
        let u = ArchiveBinary { package: "hello-udeb".into(), filename: "pool/x/hello-udeb_2.10-3_amd64.udeb".into(), ..b.clone() };
        assert_eq!(u.file_name().as_deref(), Some("hello-udeb_2.10-3+b1_amd64.udeb"));
        assert_eq!(archive_files(&[b.clone(), b.clone()]).len(), 1, "the same bytes twice are one file");
        assert_eq!(dsc_name("hello", &"1:2.10-3".parse().unwrap()), "hello_2.10-3.dsc");
        assert_eq!(mirror_url("file:///srv/mirror/", "pool/main/h/hello/x.dsc"), "file:///srv/mirror/pool/main/h/hello/x.dsc");
        assert_eq!(parse_mirror("file:///srv/mirror/").unwrap(), "file:///srv/mirror");
        assert_eq!(parse_mirror("http://deb.debian.org/debian").unwrap(), "http://deb.debian.org/debian");
        assert!(parse_mirror("file://srv").unwrap_err().contains("absolute path"));
        assert!(parse_mirror("ftp://x").is_err() && parse_mirror("http://").is_err() && parse_mirror("/srv").is_err());
    }

    #[test]
    fn environment_mismatch_uses_the_failure_budget() {
        let p = Policy { max_failures: 2, ..Policy::default() };
        let env = AttemptOutcome::EnvironmentMismatch { differences: vec!["libc6: 2.36-9 installed, 2.36-8 recorded".into()] };
        assert_eq!(env.as_str(), "environment-mismatch");
        assert_eq!(env.differences().len(), 1);
        let a = p.after(&env, 1000, 0, 0, 0, false);
        assert_eq!((a.state, a.failures, a.unreproducible, a.not_before), (JobState::Queued, 1, 0, 1600), "normal retry delay");
        let a = p.after(&env, 1000, 1, 0, 0, false);
        assert_eq!(a.state, JobState::Parked);
        let reason = a.parked_reason.unwrap();
        assert!(reason.contains("environment-mismatch") && reason.contains("libc6: 2.36-9 installed"), "{reason}");
    }

    #[test]
    fn routing() {
        let rules = vec![
            RouteRule { source: "llvm-toolchain-*".into(), tags: vec!["big".into()], backend: None },
            RouteRule { source: "hello".into(), tags: vec![], backend: Some("local".into()) },
        ];
        let mut j = NewJob {
            build_id: 1,
            source: "llvm-toolchain-16".into(),
            version: "1".into(),
            arch: "amd64".into(),
            backend: String::new(),
            tags: vec![],
            priority: Priority::Request,
            origin: String::new(),
        };
        route(&mut j, &rules);
        assert_eq!(j.tags, ["big"]);
        j.source = "hello".into();
        j.tags.clear();
        route(&mut j, &rules);
        assert_eq!((j.tags.len(), j.backend.as_str()), (0, "local"));
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(NODE_TOKEN_PREFIX) && a.len() == 4 + 64);
        assert_eq!(token_digest(&a).len(), 64);
        assert_ne!(token_digest(&a), a);
    }
}

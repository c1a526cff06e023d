//! [`ViewStore`]: the read-only queries behind the web pages, the JSON endpoints, the
//! Prometheus metrics and the aggregated `Buildinfo.xz` (the server's web module).
//!
//! Every query is bounded by an index or by one suite or campaign (the store's concern).
//! Nothing here judges: statuses are decided by the web module from the facts
//! ([`StatusFacts`]) read here.

use std::future::Future;

use serde::Serialize;

use super::StoreError;
use crate::campaign::ItemRecord;

/// A build behind a binary shipped in a suite, with the facts its rebuild status is judged on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuiteBuild {
    /// `builds.id`.
    pub build_id: i64,
    /// Source package.
    pub source: String,
    /// Binary version.
    pub version: String,
    /// Host architecture (`all` for arch-independent builds).
    pub arch: String,
    /// SHA-256 of the buildinfo.
    pub sha256: String,
    /// Unix seconds the build was ingested.
    pub ingested_at: i64,
    /// A rebuild job of it reached `verified`.
    pub verified: bool,
    /// A rebuild job of it was parked (a budget exhausted).
    pub parked: bool,
    /// Attempts that reproduced it.
    pub reproducible: u64,
    /// Attempts that produced different bytes.
    pub unreproducible: u64,
    /// Attempts that failed (including environment mismatches).
    pub failed: u64,
    /// Unix seconds of the latest change of its jobs or attempts (0: never queued).
    pub last_change: i64,
}

impl SuiteBuild {
    /// The facts its status is judged on.
    pub fn facts(&self) -> StatusFacts {
        StatusFacts {
            verified: self.verified,
            parked: self.parked,
            reproduced: self.reproducible > 0,
            differed: self.unreproducible > 0,
            failed: self.failed > 0,
        }
    }
}

/// What a build's rebuild status is judged on (`web::BuildStatus::judge`): whether its jobs
/// reached `verified` or `parked`, and whether any attempt reproduced it, differed, or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct StatusFacts {
    /// A rebuild job of it reached `verified`.
    pub verified: bool,
    /// A rebuild job of it was parked (a budget exhausted).
    pub parked: bool,
    /// An attempt reproduced it.
    pub reproduced: bool,
    /// An attempt produced different bytes.
    pub differed: bool,
    /// An attempt failed (including environment mismatches).
    pub failed: bool,
}

/// How many builds of a suite, of one host architecture, share one combination of facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusGroup {
    /// Host architecture (`all` for arch-independent builds).
    pub arch: String,
    /// The facts every build of the group has.
    pub facts: StatusFacts,
    /// Builds.
    pub count: u64,
}

/// Attempts that ended on one day, for one architecture and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// Days since the epoch (UTC).
    pub day: i64,
    /// Host architecture of the rebuilt builds.
    pub arch: String,
    /// Attempt outcome (`reproducible`, `unreproducible`, `failed`, ...).
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// Queued rebuild jobs of one architecture and priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Host architecture.
    pub arch: String,
    /// Priority number (0 campaign, 1 request, 2 background).
    pub priority: i64,
    /// Queued jobs.
    pub count: u64,
}

/// Item counts of a campaign for one wave, architecture and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaveCount {
    /// Wave, from 1.
    pub wave: u32,
    /// Architecture.
    pub arch: String,
    /// State name (kebab-case, as stored).
    pub state: String,
    /// Items.
    pub count: u64,
}

/// A build for the aggregated buildinfo index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexBuild {
    /// `builds.id`.
    pub build_id: i64,
    /// Source package.
    pub source: String,
    /// Binary version.
    pub version: String,
    /// SHA-256 of the stored buildinfo.
    pub sha256: String,
}

/// Read queries of the web views.
pub trait ViewStore: Send + Sync + 'static {
    /// Every suite an index was imported for, sorted.
    fn suites(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Every build linked to a binary shipped in `suite`, once, by source, version, arch.
    fn suite_builds(&self, suite: &str) -> impl Future<Output = Result<Vec<SuiteBuild>, StoreError>> + Send;

    /// The builds of [`ViewStore::suite_builds`] counted per host architecture and
    /// combination of [`StatusFacts`], without reading them: every build in exactly one group,
    /// groups sorted by architecture and facts, none empty (no group: the suite has no build).
    fn suite_status_counts(&self, suite: &str) -> impl Future<Output = Result<Vec<StatusGroup>, StoreError>> + Send;

    /// One page of [`ViewStore::suite_builds`]: the same rows in the same order, at most
    /// `limit` of them from `offset`, with the jobs and attempts of those builds only.
    fn suite_build_page(
        &self,
        suite: &str,
        offset: u64,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<SuiteBuild>, StoreError>> + Send;

    /// Unix seconds of the latest change among the builds of `suite` (0: no build): the latest
    /// of their `ingested_at` and [`SuiteBuild::last_change`], read with one index probe per
    /// table instead of the builds themselves.
    fn suite_last_change(&self, suite: &str) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Ended attempts on the builds of `suite`, per day, architecture and outcome.
    fn suite_history(&self, suite: &str) -> impl Future<Output = Result<Vec<DayCount>, StoreError>> + Send;

    /// Unix seconds of the last index imported for `suite` (0: none).
    fn suite_imported_at(&self, suite: &str) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Attempts ended since `since` (handed-back ones excluded), per node id.
    fn node_activity(&self, since: i64) -> impl Future<Output = Result<Vec<(i64, u64)>, StoreError>> + Send;

    /// Queued jobs per architecture and priority.
    fn queue_depth(&self) -> impl Future<Output = Result<Vec<QueueDepth>, StoreError>> + Send;

    /// Item counts of a campaign per wave, architecture and state.
    fn campaign_progress(&self, campaign: i64) -> impl Future<Output = Result<Vec<WaveCount>, StoreError>> + Send;

    /// One page of a campaign's items, by wave, suite, source, architecture.
    fn campaign_item_page(
        &self,
        campaign: i64,
        offset: u64,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<ItemRecord>, StoreError>> + Send;

    /// The builds behind the binaries of architecture `arch` (`all` included as its own
    /// architecture) shipped in `suite`, once each, unordered.
    fn index_builds(&self, suite: &str, arch: &str)
    -> impl Future<Output = Result<Vec<IndexBuild>, StoreError>> + Send;
}

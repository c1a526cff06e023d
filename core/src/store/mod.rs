//! What the coordinator keeps, as traits over domain types: the storage interface.
//!
//! The traits are split by who uses them, and none requires another: ingestion and build
//! reads ([`BuildStore`]), the archive's indices ([`ArchiveStore`]), the `built-with` index's
//! reads ([`IndexStore`]), campaigns ([`CampaignStore`]), the rebuild scheduler
//! ([`RebuildStore`]), published keys ([`KeyStore`]), credentials and the audit trail
//! ([`AccessStore`]) and the web views' reads ([`ViewStore`]).
//! A function states the traits it needs (`S: CampaignStore + RebuildStore`), and nothing more;
//! [`Store`] names all of them for the server, which needs everything.
//!
//! The implementations (SQLite and PostgreSQL) live in the `debcover-store` crate, the only
//! place with SQL; one conformance suite runs against both.
//!
//! # Invariants
//! - Only domain types cross these traits: no SQL rows, no protobuf.
//! - Debian version ordering never happens in SQL: versions are stored as text and compared in
//!   Rust with `debversion` by the callers (see [`crate::query`]).
//! - Every multi-row write is one transaction: a batch of builds or an archive index is stored
//!   whole or not at all.
//! - Times are unix seconds passed in by the caller where rules depend on them (tests control
//!   the clock).

use std::future::Future;

use crate::campaign::{CampaignRecord, ItemEvent, ItemRecord, PlannedItem, Transition};
use crate::model::{
    BuildRecord, ImportSummary, NewBuild, PackagesImport, PkgVer, ProducedFile, ShippedBinary, ShippedBy, ShippingRow,
    SourcesImport, StoreStats, Stored,
};
use crate::rebuild::JobRecord;

mod access;
mod keys;
mod rebuild;
pub mod views;

pub use access::AccessStore;
pub use keys::KeyStore;
pub use rebuild::RebuildStore;
pub use views::ViewStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one this coordinator can open.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything the database reported.
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data that cannot be decoded (corruption, or a bug).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A setting of the database connection is wrong (names the setting and its values).
    #[error("database setting {0}")]
    Setting(String),
}

/// Every storage trait: what the coordinator's server needs of its database. Implemented for
/// every type that implements them all.
pub trait Store:
    BuildStore + ArchiveStore + IndexStore + CampaignStore + RebuildStore + KeyStore + ViewStore + AccessStore
{
}

impl<T> Store for T where
    T: BuildStore + ArchiveStore + IndexStore + CampaignStore + RebuildStore + KeyStore + ViewStore + AccessStore
{
}

/// Builds: storing parsed buildinfos and reading them back.
///
/// Implementations must be safe to call concurrently; writes are serialised by the database
/// (SQLite: one writer connection; PostgreSQL: transactions and unique constraints).
pub trait BuildStore: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Store a batch of parsed builds in one transaction. Returns, per input in order, whether
    /// it was new or already known (same SHA-256, also within the batch).
    fn ingest_builds(&self, builds: &[NewBuild]) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// The build records with these ids (any order; missing ids are skipped).
    fn builds_by_id(&self, ids: &[i64]) -> impl Future<Output = Result<Vec<BuildRecord>, StoreError>> + Send;

    /// The builds of a source, optionally of one version (binary or source version) and host
    /// architecture.
    fn builds_of_source(
        &self,
        source: &str,
        version: Option<&str>,
        host_arch: Option<&str>,
    ) -> impl Future<Output = Result<Vec<BuildRecord>, StoreError>> + Send;

    /// The files these builds produced, with the suites shipping them.
    fn produced_files(&self, build_ids: &[i64]) -> impl Future<Output = Result<Vec<ProducedFile>, StoreError>> + Send;

    /// The files these builds produced, without shipping places (`shipped_in` empty). A
    /// build's files never change once stored.
    fn build_files(&self, build_ids: &[i64]) -> impl Future<Output = Result<Vec<ProducedFile>, StoreError>> + Send;

    /// The exact buildinfo bytes of a build (decompressed), if stored.
    fn raw_buildinfo(&self, sha256: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Counts for status displays.
    fn stats(&self) -> impl Future<Output = Result<StoreStats, StoreError>> + Send;
}

/// The archive: Packages and Sources indices, and what each suite ships.
pub trait ArchiveStore: Send + Sync + 'static {
    /// Apply a Packages index: upsert its binaries, replace the `(suite, arch)` membership and
    /// link binaries to builds, in one transaction.
    fn import_packages(&self, import: &PackagesImport) -> impl Future<Output = Result<ImportSummary, StoreError>> + Send;

    /// Apply a Sources index: upsert its sources and replace the suite's source membership, in
    /// one transaction.
    fn import_sources(&self, import: &SourcesImport) -> impl Future<Output = Result<ImportSummary, StoreError>> + Send;

    /// Architectures for which a Packages index of `suite` was imported, sorted.
    fn suite_arches(&self, suite: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Binaries shipped in `suite` selected by `by`, with their build link and declarations.
    fn shipped_binaries(
        &self,
        suite: &str,
        by: ShippedBy<'_>,
    ) -> impl Future<Output = Result<Vec<ShippedBinary>, StoreError>> + Send;
}

/// What the `built-with` index reads: posting lists, interned package versions and the
/// shipping snapshot, stamped with the query generation.
pub trait IndexStore: Send + Sync + 'static {
    /// Every binary package name known to belong to `source` (from buildinfos, Packages and
    /// Sources), sorted.
    fn binaries_of_source(&self, source: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Every interned installed package with one of these names.
    fn pkgvers_named(&self, names: &[String]) -> impl Future<Output = Result<Vec<PkgVer>, StoreError>> + Send;

    /// `(build id, pkgver id)` for every build that had one of `pkgver_ids` installed,
    /// restricted to builds with a binary shipped in `suite` and to `host_arch`, when given.
    fn builds_with(
        &self,
        pkgver_ids: &[i64],
        suite: Option<&str>,
        host_arch: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;

    /// The query generation: a counter that every write which can change a `built-with`
    /// answer (new builds, archive indices) bumps in its own transaction, on every
    /// coordinator sharing the database. Equal generations mean equal answers.
    fn query_generation(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Every binary shipped in any suite, with its place and build link, and the query
    /// generation read before them (in the same read snapshot where the backend has one): the
    /// rows reflect at least every write of that generation.
    fn shipping(&self) -> impl Future<Output = Result<(i64, Vec<ShippingRow>), StoreError>> + Send;
}

/// Item counts of a campaign per state name, in display order.
pub type StateCounts = Vec<(String, u64)>;

/// Campaign persistence, and the verification jobs coverage verdicts read.
pub trait CampaignStore: Send + Sync + 'static {
    /// Save a campaign and its items (state `affected`, one creation event each), in one
    /// transaction. Returns the campaign id.
    fn create_campaign(
        &self,
        campaign: &CampaignRecord,
        items: &[PlannedItem],
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Every campaign, newest first, with its item counts per state.
    fn campaigns(&self) -> impl Future<Output = Result<Vec<(CampaignRecord, StateCounts)>, StoreError>> + Send;

    /// One campaign.
    fn campaign(&self, id: i64) -> impl Future<Output = Result<Option<CampaignRecord>, StoreError>> + Send;

    /// Items of one campaign (`Some(id)`) or of every campaign (`None`), optionally only those
    /// of these source packages.
    fn campaign_items(
        &self,
        campaign: Option<i64>,
        sources: Option<&[String]>,
    ) -> impl Future<Output = Result<Vec<ItemRecord>, StoreError>> + Send;

    /// Apply state changes in one transaction; a change whose item is no longer in
    /// `from` is skipped. Returns how many were applied.
    fn record_transitions(&self, changes: &[Transition]) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The audit trail of a campaign, oldest first.
    fn campaign_events(&self, campaign: i64) -> impl Future<Output = Result<Vec<ItemEvent>, StoreError>> + Send;

    /// Every verification job (any state) of these builds, by build then job id, for coverage
    /// verdicts. Their attempts come from [`RebuildStore::attempts`].
    fn jobs_of_builds(&self, build_ids: &[i64]) -> impl Future<Output = Result<Vec<JobRecord>, StoreError>> + Send;
}

/// Unix time in seconds, for `ingested_at`/`imported_at` columns and the scheduler's clock.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

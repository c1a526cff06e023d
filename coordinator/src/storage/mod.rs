//! Storage: the one place that speaks SQL.
//!
//! [`Store`] is a small, domain-shaped interface; [`sqlite::SqliteStore`] (the embedded default)
//! and [`postgres::PgStore`] (scale-out: several coordinators, one database) implement it, each
//! with its own migrations (`migrations/sqlite`, `migrations/postgres`) applied at open. One
//! conformance suite (`coordinator/tests/storage.rs`) runs against both.
//!
//! # Invariants
//! - No SQL outside this module; no protobuf types inside it.
//! - Debian version ordering never happens in SQL: versions are stored as text and compared in
//!   Rust with `debversion` by the callers (see `crate::query`).
//! - Every multi-row write is one transaction: a batch of builds or an archive index is stored
//!   whole or not at all.
//! - The interning cache only ever holds ids of committed rows.

use std::future::Future;

use crate::campaign::{CampaignRecord, ItemEvent, ItemRecord, PlannedItem, Transition};
use crate::model::{
    BuildRecord, ImportSummary, NewBuild, PackagesImport, PkgVer, ProducedFile, ShippedBinary,
    ShippedBy, ShippingRow, SourcesImport, StoreStats, Stored,
};

pub mod postgres;
pub mod sqlite;

mod batch;
mod campaign_rows;
mod intern;
mod key_store;
mod postings;
mod rebuild_rows;
mod rebuild_store;
mod coverage_store;
pub mod views;

pub use key_store::KeyStore;
pub use rebuild_store::RebuildStore;
pub use coverage_store::CoverageStore;
pub use views::ViewStore;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one this coordinator can open.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything the database reported.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored data that cannot be decoded (corruption, or a bug).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// The coordinator's persistent state.
///
/// Methods take and return domain types (`crate::model`). Implementations must be safe to call
/// concurrently; writes are serialised by the database (SQLite: one writer connection;
/// PostgreSQL: transactions and unique constraints).
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Store a batch of parsed builds in one transaction. Returns, per input in order, whether
    /// it was new or already known (same SHA-256, also within the batch).
    fn ingest_builds(
        &self,
        builds: &[NewBuild],
    ) -> impl Future<Output = Result<Vec<Stored>, StoreError>> + Send;

    /// Apply a Packages index: upsert its binaries, replace the `(suite, arch)` membership and
    /// link binaries to builds, in one transaction.
    fn import_packages(
        &self,
        import: &PackagesImport,
    ) -> impl Future<Output = Result<ImportSummary, StoreError>> + Send;

    /// Apply a Sources index: upsert its sources and replace the suite's source membership, in
    /// one transaction.
    fn import_sources(
        &self,
        import: &SourcesImport,
    ) -> impl Future<Output = Result<ImportSummary, StoreError>> + Send;

    /// Every binary package name known to belong to `source` (from buildinfos, Packages and
    /// Sources), sorted.
    fn binaries_of_source(
        &self,
        source: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Every interned installed package with one of these names.
    fn pkgvers_named(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<PkgVer>, StoreError>> + Send;

    /// `(build id, pkgver id)` for every build that had one of `pkgver_ids` installed,
    /// restricted to builds with a binary shipped in `suite` and to `host_arch`, when given.
    fn builds_with(
        &self,
        pkgver_ids: &[i64],
        suite: Option<&str>,
        host_arch: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>, StoreError>> + Send;

    /// The build records with these ids (any order; missing ids are skipped).
    fn builds_by_id(
        &self,
        ids: &[i64],
    ) -> impl Future<Output = Result<Vec<BuildRecord>, StoreError>> + Send;

    /// The builds of a source, optionally of one version (binary or source version) and host
    /// architecture.
    fn builds_of_source(
        &self,
        source: &str,
        version: Option<&str>,
        host_arch: Option<&str>,
    ) -> impl Future<Output = Result<Vec<BuildRecord>, StoreError>> + Send;

    /// The files these builds produced, with the suites shipping them.
    fn produced_files(
        &self,
        build_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<ProducedFile>, StoreError>> + Send;

    /// The files these builds produced, without shipping places (`shipped_in` empty). A
    /// build's files never change once stored.
    fn build_files(
        &self,
        build_ids: &[i64],
    ) -> impl Future<Output = Result<Vec<ProducedFile>, StoreError>> + Send;

    /// The query generation: a counter that every write which can change a `built-with`
    /// answer (new builds, archive indices) bumps in its own transaction, on every
    /// coordinator sharing the database. Equal generations mean equal answers.
    fn query_generation(&self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Every binary shipped in any suite, with its place and build link, and the query
    /// generation read before them (in the same read snapshot where the backend has one): the
    /// rows reflect at least every write of that generation.
    fn shipping(&self) -> impl Future<Output = Result<(i64, Vec<ShippingRow>), StoreError>> + Send;

    /// The exact buildinfo bytes of a build (decompressed), if stored.
    fn raw_buildinfo(
        &self,
        sha256: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;

    /// Counts for status displays.
    fn stats(&self) -> impl Future<Output = Result<StoreStats, StoreError>> + Send;
}

/// Item counts of a campaign per state name, in display order.
pub type StateCounts = Vec<(String, u64)>;

/// Campaign persistence and the archive facts impact analysis needs. A separate trait from
/// [`Store`] so that the campaign code's needs stay visible in one place; both backends
/// implement it.
pub trait CampaignStore: Store {
    /// Architectures for which a Packages index of `suite` was imported, sorted.
    fn suite_arches(&self, suite: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Binaries shipped in `suite` selected by `by`, with their build link and declarations.
    fn shipped_binaries(
        &self,
        suite: &str,
        by: ShippedBy<'_>,
    ) -> impl Future<Output = Result<Vec<ShippedBinary>, StoreError>> + Send;

    /// Save a campaign and its items (state `affected`, one creation event each), in one
    /// transaction. Returns the campaign id.
    fn create_campaign(
        &self,
        campaign: &CampaignRecord,
        items: &[PlannedItem],
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Every campaign, newest first, with its item counts per state.
    fn campaigns(
        &self,
    ) -> impl Future<Output = Result<Vec<(CampaignRecord, StateCounts)>, StoreError>> + Send;

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
}

/// Unix time in seconds, for `ingested_at`/`imported_at` columns.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The statement that ends every write transaction which can change a `built-with` answer
/// (see [`Store::query_generation`]). Last, so that PostgreSQL holds the row lock only until
/// the commit right after it.
const BUMP_QUERY_GENERATION: &str = "UPDATE query_generation SET gen = gen + 1 WHERE id = 1";

/// Decompress a stored `raw_zstd` column.
fn unzstd(bytes: &[u8]) -> Result<Vec<u8>, StoreError> {
    zstd::decode_all(bytes).map_err(|e| StoreError::Corrupt(format!("stored buildinfo: {e}")))
}

/// Split a space-separated column into tokens.
fn tokens(s: &str) -> Vec<String> {
    s.split_ascii_whitespace().map(str::to_owned).collect()
}

/// The `'sqlite'`/`'postgres'` name of a database URL, or an error.
pub fn backend_of_url(url: &str) -> Result<&'static str, StoreError> {
    if url.starts_with("sqlite:") {
        Ok("sqlite")
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok("postgres")
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Build a migrator from migrations embedded with `include_str!`, so the binary carries its
/// schema and needs no `migrations/` directory at run time.
fn embedded_migrator(migrations: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    use std::borrow::Cow;
    Migrator {
        migrations: Cow::Owned(
            migrations
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        sqlx::SqlStr::from_static(sql),
                        false,
                    )
                })
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

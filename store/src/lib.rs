//! Storage: the one crate that speaks SQL.
//!
//! [`sqlite::SqliteStore`] (the embedded default) and [`postgres::PgStore`] (scale-out: several
//! coordinators, one database) implement the storage traits of `debcover_core::store`, each
//! with its own migrations (`store/migrations/{sqlite,postgres}`) embedded and applied at
//! open. One conformance suite (`store/tests/`) runs against both. [`open`] picks the backend
//! by the URL's scheme, once.
//!
//! # Invariants
//! - No SQL outside this crate; no protobuf inside it; no rule decided here (rules come from
//!   `debcover_core`, applied inside transactions).
//! - Debian version ordering never happens in SQL: versions are stored as text and compared in
//!   Rust with `debversion` by the callers.
//! - Every multi-row write is one transaction: a batch of builds or an archive index is stored
//!   whole or not at all.
//! - The interning cache only ever holds ids of committed rows.
//! - Rows are read by column name.

pub(crate) use debcover_core::store::{
    ArchiveStore, BuildStore, CampaignStore, IndexStore, KeyStore, RebuildStore, StateCounts, StoreError, ViewStore,
};
pub(crate) use debcover_core::store::now_unix;

pub mod postgres;
pub mod sqlite;
pub mod testing;

mod batch;
mod intern;
mod postings;
mod rows;
#[macro_use]
mod shared;
mod views;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A `sqlx` failure as a [`StoreError`] (the core's error type knows no database library).
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Database(Box::new(e))
}

/// `?` on a `sqlx` result inside this crate: `.await.db()?`.
pub(crate) trait SqlResult<T> {
    /// The result with its error as a [`StoreError`].
    fn db(self) -> Result<T, StoreError>;
}

impl<T> SqlResult<T> for Result<T, sqlx::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(db)
    }
}

/// The statement that ends every write transaction which can change a `built-with` answer
/// (see [`IndexStore::query_generation`]). Last, so that PostgreSQL holds the row lock only until
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

/// The migrations of the backend whose directory under `store/migrations/` is `$dir`, embedded
/// (every backend has the same versions and names; their SQL differs).
macro_rules! migrations {
    ($dir:literal) => {
        $crate::embedded_migrator(&[
            (1, "builds and archive", include_str!(concat!("../../migrations/", $dir, "/0001_builds_and_archive.sql"))),
            (2, "campaigns", include_str!(concat!("../../migrations/", $dir, "/0002_campaigns.sql"))),
            (3, "query generation", include_str!(concat!("../../migrations/", $dir, "/0003_query_generation.sql"))),
            (4, "rebuild jobs", include_str!(concat!("../../migrations/", $dir, "/0004_rebuild_jobs.sql"))),
            (5, "rebuild results", include_str!(concat!("../../migrations/", $dir, "/0005_rebuild_results.sql"))),
            (6, "attestations", include_str!(concat!("../../migrations/", $dir, "/0006_attestations.sql"))),
            (7, "key history", include_str!(concat!("../../migrations/", $dir, "/0007_key_history.sql"))),
            (8, "coverage", include_str!(concat!("../../migrations/", $dir, "/0008_coverage.sql"))),
            (9, "view indexes", include_str!(concat!("../../migrations/", $dir, "/0009_view_indexes.sql"))),
            (10, "corroboration", include_str!(concat!("../../migrations/", $dir, "/0010_corroboration.sql"))),
            (11, "suite page indexes", include_str!(concat!("../../migrations/", $dir, "/0011_suite_page_indexes.sql"))),
            (12, "attestation bodies", include_str!(concat!("../../migrations/", $dir, "/0012_attestation_bodies.sql"))),
            (13, "access", include_str!(concat!("../../migrations/", $dir, "/0013_access.sql"))),
            (14, "fair budgets", include_str!(concat!("../../migrations/", $dir, "/0014_fair_budgets.sql"))),
            (15, "build signer", include_str!(concat!("../../migrations/", $dir, "/0015_build_signer.sql"))),
        ])
    };
}
pub(crate) use migrations;

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

//! [`ViewStore`] for SQLite: the queries of `views.rs` in SQLite's parameter spelling, on the
//! reader pool.

use std::sync::LazyLock;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::campaign_rows as rows;
use crate::views::{self, CountRow, count};
use debcover_core::store::views::{DayCount, IndexBuild, QueueDepth, StatusFacts, StatusGroup, SuiteBuild, WaveCount};
use debcover_core::campaign::ItemRecord;
use crate::{SqlResult, StoreError, ViewStore};

static SUITE_BUILDS: LazyLock<String> = LazyLock::new(|| views::sqlite(&views::suite_builds_sql()));
static SUITE_BUILD_PAGE: LazyLock<String> = LazyLock::new(|| views::sqlite(&views::suite_build_page_sql()));
static SUITE_STATUS_COUNTS: LazyLock<String> = LazyLock::new(|| views::sqlite(&views::suite_status_counts_sql()));
static SUITE_LAST_CHANGE: LazyLock<String> = LazyLock::new(|| views::sqlite(&views::suite_last_change_sql()));
static SUITE_HISTORY: LazyLock<String> = LazyLock::new(|| views::sqlite(&views::suite_history_sql()));
static SUITE_IMPORTED_AT: LazyLock<String> = LazyLock::new(|| views::sqlite(views::SUITE_IMPORTED_AT));
static NODE_ACTIVITY: LazyLock<String> = LazyLock::new(|| views::sqlite(views::NODE_ACTIVITY));
static CAMPAIGN_PROGRESS: LazyLock<String> = LazyLock::new(|| views::sqlite(views::CAMPAIGN_PROGRESS));
static CAMPAIGN_ITEM_PAGE: LazyLock<String> = LazyLock::new(|| views::sqlite(&views::campaign_item_page_sql()));
static INDEX_BUILDS: LazyLock<String> = LazyLock::new(|| views::sqlite(views::INDEX_BUILDS));

impl ViewStore for SqliteStore {
    async fn suites(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(views::SUITES).fetch_all(&self.reader).await.db()?)
    }

    async fn suite_builds(&self, suite: &str) -> Result<Vec<SuiteBuild>, StoreError> {
        let rows = sqlx::query(SUITE_BUILDS.as_str()).bind(suite).fetch_all(&self.reader).await.db()?;
        Ok(rows.iter().map(suite_build).collect())
    }

    async fn suite_status_counts(&self, suite: &str) -> Result<Vec<StatusGroup>, StoreError> {
        let rows = sqlx::query(SUITE_STATUS_COUNTS.as_str()).bind(suite).fetch_all(&self.reader).await.db()?;
        Ok(views::status_groups(
            rows.iter()
                .map(|r| CountRow {
                    kind: r.get(0),
                    arch: r.get(1),
                    facts: StatusFacts {
                        verified: r.get::<i64, _>(2) != 0,
                        parked: r.get::<i64, _>(3) != 0,
                        reproduced: r.get::<i64, _>(4) != 0,
                        differed: r.get::<i64, _>(5) != 0,
                        failed: r.get::<i64, _>(6) != 0,
                    },
                    count: count(r.get(7)),
                })
                .collect(),
        ))
    }

    async fn suite_build_page(&self, suite: &str, offset: u64, limit: u64) -> Result<Vec<SuiteBuild>, StoreError> {
        let rows = sqlx::query(SUITE_BUILD_PAGE.as_str())
            .bind(suite)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await.db()?;
        Ok(rows.iter().map(suite_build).collect())
    }

    async fn suite_last_change(&self, suite: &str) -> Result<i64, StoreError> {
        let r = sqlx::query(SUITE_LAST_CHANGE.as_str()).bind(suite).fetch_one(&self.reader).await.db()?;
        Ok((0..4usize).map(|i| r.get::<i64, _>(i)).fold(0, i64::max))
    }

    async fn suite_history(&self, suite: &str) -> Result<Vec<DayCount>, StoreError> {
        let rows = sqlx::query(SUITE_HISTORY.as_str()).bind(suite).fetch_all(&self.reader).await.db()?;
        Ok(rows
            .iter()
            .map(|r| DayCount { day: r.get(0), arch: r.get(1), outcome: r.get(2), count: count(r.get(3)) })
            .collect())
    }

    async fn suite_imported_at(&self, suite: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(SUITE_IMPORTED_AT.as_str()).bind(suite).fetch_one(&self.reader).await.db()?)
    }

    async fn node_activity(&self, since: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = sqlx::query(NODE_ACTIVITY.as_str()).bind(since).fetch_all(&self.reader).await.db()?;
        Ok(rows.iter().map(|r| (r.get(0), count(r.get(1)))).collect())
    }

    async fn queue_depth(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let rows = sqlx::query(views::QUEUE_DEPTH).fetch_all(&self.reader).await.db()?;
        Ok(rows.iter().map(|r| QueueDepth { arch: r.get(0), priority: r.get(1), count: count(r.get(2)) }).collect())
    }

    async fn campaign_progress(&self, campaign: i64) -> Result<Vec<WaveCount>, StoreError> {
        let rows = sqlx::query(CAMPAIGN_PROGRESS.as_str()).bind(campaign).fetch_all(&self.reader).await.db()?;
        Ok(rows
            .iter()
            .map(|r| WaveCount {
                wave: u32::try_from(r.get::<i64, _>(0)).unwrap_or(0),
                arch: r.get(1),
                state: r.get(2),
                count: count(r.get(3)),
            })
            .collect())
    }

    async fn campaign_item_page(&self, campaign: i64, offset: u64, limit: u64) -> Result<Vec<ItemRecord>, StoreError> {
        let rows = sqlx::query(CAMPAIGN_ITEM_PAGE.as_str())
            .bind(campaign)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await.db()?;
        rows.iter()
            .map(|r| {
                rows::item(
                    r.get(0),
                    r.get(1),
                    r.get::<&str, _>(2),
                    r.get(3),
                    r.get(4),
                    r.get::<&str, _>(5),
                    r.get(6),
                    r.get::<&str, _>(7),
                )
            })
            .collect()
    }

    async fn index_builds(&self, suite: &str, arch: &str) -> Result<Vec<IndexBuild>, StoreError> {
        let rows = sqlx::query(INDEX_BUILDS.as_str()).bind(suite).bind(arch).fetch_all(&self.reader).await.db()?;
        Ok(rows
            .iter()
            .map(|r| IndexBuild { build_id: r.get(0), source: r.get(1), version: r.get(2), sha256: r.get(3) })
            .collect())
    }
}

/// A row of `suite_builds_sql` or `suite_build_page_sql`.
fn suite_build(r: &SqliteRow) -> SuiteBuild {
    SuiteBuild {
        build_id: r.get(0),
        source: r.get(1),
        version: r.get(2),
        arch: r.get(3),
        sha256: r.get(4),
        ingested_at: r.get(5),
        verified: r.get::<i64, _>(6) != 0,
        parked: r.get::<i64, _>(7) != 0,
        reproducible: count(r.get(9)),
        unreproducible: count(r.get(10)),
        failed: count(r.get(11)),
        last_change: r.get::<i64, _>(8).max(r.get(12)),
    }
}

//! [`CampaignStore`] for SQLite.

use sqlx::{QueryBuilder, Row, Sqlite};

use super::{IN_CHUNK, SqliteStore};
use debcover_core::campaign::{CampaignRecord, ItemEvent, ItemRecord, ItemState, PlannedItem, Transition};
use debcover_core::model::ShippedBinary;
use crate::campaign_rows::{self as rows, CAMPAIGN_COLUMNS, ITEM_COLUMNS};
use crate::rebuild_rows;
use debcover_core::rebuild::JobRecord;
use crate::{CampaignStore, SqlResult, StoreError, now_unix};


fn campaign(r: &sqlx::sqlite::SqliteRow) -> Result<CampaignRecord, StoreError> {
    rows::campaign(
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get::<&str, _>(4),
        r.get::<&str, _>(5),
        r.get::<&str, _>(6),
        r.get::<&str, _>(7),
        r.get(8),
        r.get::<&str, _>(9),
        r.get(10),
    )
}

pub(super) fn shipped(r: &sqlx::sqlite::SqliteRow) -> ShippedBinary {
    let build_id: Option<i64> = r.get(9);
    let build_sha: Option<String> = r.get(10);
    let link: Option<String> = r.get(11);
    ShippedBinary {
        id: r.get(0),
        suite: r.get(1),
        index_arch: r.get(2),
        package: r.get(3),
        version: r.get(4),
        architecture: r.get(5),
        source: r.get(6),
        source_version: r.get(7),
        sha256: r.get(8),
        build: build_id.zip(build_sha).map(|(id, sha)| (id, sha, link.as_deref() == Some("sha256"))),
        embeds: Vec::new(),
    }
}

impl CampaignStore for SqliteStore {
    async fn create_campaign(&self, c: &CampaignRecord, items: &[PlannedItem]) -> Result<i64, StoreError> {
        let now = now_unix();
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO campaigns (title, library, fixed_version, suites, arches, mode, advisories,
                 max_depth, notes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&c.title)
        .bind(&c.library)
        .bind(&c.fixed_version)
        .bind(c.suites.join(" "))
        .bind(c.arches.join(" "))
        .bind(c.mode.as_str())
        .bind(c.advisories.join(" "))
        .bind(i64::from(c.max_depth))
        .bind(rows::to_json(&c.notes)?)
        .bind(c.created_at)
        .fetch_one(&mut *tx)
        .await.db()?;
        for item in items {
            let reason = item.planning_reason();
            let item_id: i64 = sqlx::query_scalar(
                "INSERT INTO campaign_items (campaign_id, suite, source, arch, wave, state, reason,
                     current_version, planned, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(id)
            .bind(&item.suite)
            .bind(&item.source)
            .bind(&item.arch)
            .bind(i64::from(item.wave))
            .bind(ItemState::Affected.as_str())
            .bind(&reason)
            .bind(&item.version)
            .bind(rows::planned_json(item)?)
            .bind(now)
            .fetch_one(&mut *tx)
            .await.db()?;
            sqlx::query(
                "INSERT INTO campaign_events (item_id, at, from_state, to_state, version, reason, evidence)
                 VALUES (?, ?, NULL, ?, ?, ?, ?)",
            )
            .bind(item_id)
            .bind(now)
            .bind(ItemState::Affected.as_str())
            .bind(&item.version)
            .bind(&reason)
            .bind(rows::evidence_json(&item.evidence)?)
            .execute(&mut *tx)
            .await.db()?;
        }
        tx.commit().await.db()?;
        Ok(id)
    }

    async fn campaigns(&self) -> Result<Vec<(CampaignRecord, Vec<(String, u64)>)>, StoreError> {
        let list =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY id DESC")))
                .fetch_all(&self.reader)
                .await.db()?;
        let counts = sqlx::query("SELECT campaign_id, state, count(*) FROM campaign_items GROUP BY campaign_id, state")
            .fetch_all(&self.reader)
            .await.db()?;
        let mut out = Vec::with_capacity(list.len());
        for r in &list {
            let c = campaign(r)?;
            let mine = counts
                .iter()
                .filter(|k| k.get::<i64, _>(0) == c.id)
                .map(|k| (k.get::<String, _>(1), k.get::<i64, _>(2).max(0) as u64))
                .collect();
            out.push((c, mine));
        }
        Ok(out)
    }

    async fn campaign(&self, id: i64) -> Result<Option<CampaignRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.reader)
            .await.db()?
            .as_ref()
            .map(campaign)
            .transpose()
    }

    async fn campaign_items(
        &self,
        campaign: Option<i64>,
        sources: Option<&[String]>,
    ) -> Result<Vec<ItemRecord>, StoreError> {
        let all = [None];
        let chunks: Vec<Option<&[String]>> = match sources {
            Some(s) => s.chunks(IN_CHUNK).map(Some).collect(),
            None => all.to_vec(),
        };
        let mut out = Vec::new();
        for chunk in chunks {
            let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {ITEM_COLUMNS} FROM campaign_items WHERE 1 = 1"));
            if let Some(c) = campaign {
                qb.push(" AND campaign_id = ").push_bind(c);
            }
            if let Some(names) = chunk {
                qb.push(" AND source IN ").push_tuples(names, |mut b, n| {
                    b.push_bind(n);
                });
            }
            qb.push(" ORDER BY id");
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                out.push(rows::item(
                    r.get(0),
                    r.get(1),
                    r.get::<&str, _>(2),
                    r.get(3),
                    r.get(4),
                    r.get::<&str, _>(5),
                    r.get(6),
                    r.get::<&str, _>(7),
                )?);
            }
        }
        Ok(out)
    }

    async fn record_transitions(&self, changes: &[Transition]) -> Result<usize, StoreError> {
        if changes.is_empty() {
            return Ok(0);
        }
        let now = now_unix();
        let mut tx = self.write_tx().await?;
        let mut applied = 0;
        for t in changes {
            let done = sqlx::query(
                "UPDATE campaign_items SET state = ?, reason = ?, current_version = ?, updated_at = ?, coverage = ?
                 WHERE id = ? AND state = ?",
            )
            .bind(t.to.as_str())
            .bind(&t.reason)
            .bind(&t.version)
            .bind(now)
            .bind(t.coverage.as_str())
            .bind(t.item_id)
            .bind(t.from.as_str())
            .execute(&mut *tx)
            .await.db()?
            .rows_affected();
            if done == 1 {
                sqlx::query(
                    "INSERT INTO campaign_events (item_id, at, from_state, to_state, version, reason, evidence)
                     VALUES (?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(t.item_id)
                .bind(now)
                .bind(t.from.as_str())
                .bind(t.to.as_str())
                .bind(&t.version)
                .bind(&t.reason)
                .bind(rows::evidence_json(&t.evidence)?)
                .execute(&mut *tx)
                .await.db()?;
                applied += 1;
            }
        }
        tx.commit().await.db()?;
        Ok(applied)
    }

    async fn campaign_events(&self, campaign: i64) -> Result<Vec<ItemEvent>, StoreError> {
        let list = sqlx::query(
            "SELECT e.item_id, i.suite, i.source, i.arch, e.at, e.from_state, e.to_state, e.version,
                    e.reason, e.evidence
             FROM campaign_events e JOIN campaign_items i ON i.id = e.item_id
             WHERE i.campaign_id = ? ORDER BY e.id",
        )
        .bind(campaign)
        .fetch_all(&self.reader)
        .await.db()?;
        list.iter()
            .map(|r| {
                rows::event(
                    r.get(0),
                    r.get(1),
                    r.get::<&str, _>(2),
                    r.get::<&str, _>(3),
                    r.get(4),
                    r.get(5),
                    r.get::<&str, _>(6),
                    r.get(7),
                    r.get(8),
                    r.get::<&str, _>(9),
                )
            })
            .collect()
    }

    async fn jobs_of_builds(&self, build_ids: &[i64]) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for chunk in build_ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(rebuild_rows::job_select("group_concat(tag, ' ')"));
            qb.push(" WHERE j.build_id IN ").push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                out.push(rebuild_rows::job(&r)?);
            }
        }
        out.sort_by_key(|j| (j.build_id, j.id));
        Ok(out)
    }
}

//! [`CampaignStore`](crate::CampaignStore) for SQLite: its own list reads (`IN` lists in
//! chunks); the rest is `crate::shared::campaign_store!`.

use sqlx::{QueryBuilder, Sqlite};

use super::{IN_CHUNK, SqliteStore};
use crate::rows::{self, ITEM_COLUMNS};
use crate::{SqlResult, StoreError};
use debcover_core::campaign::ItemRecord;
use debcover_core::rebuild::JobRecord;

crate::shared::campaign_store!(SqliteStore, {
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
                out.push(rows::item(&r)?);
            }
        }
        Ok(out)
    }

    async fn jobs_of_builds(&self, build_ids: &[i64]) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for chunk in build_ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(rows::job_select("group_concat(tag, ' ')"));
            qb.push(" WHERE j.build_id IN ").push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                out.push(rows::job(&r)?);
            }
        }
        out.sort_by_key(|j| (j.build_id, j.id));
        Ok(out)
    }
});

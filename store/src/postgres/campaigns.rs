//! [`CampaignStore`](crate::CampaignStore) for PostgreSQL: its own list reads (arrays); the rest
//! is `crate::shared::campaign_store!`.

use super::PgStore;
use crate::rows::{self, ITEM_COLUMNS};
use crate::{SqlResult, StoreError};
use debcover_core::campaign::ItemRecord;
use debcover_core::rebuild::JobRecord;

crate::shared::campaign_store!(PgStore, {
    async fn campaign_items(&self, campaign: Option<i64>, sources: Option<&[String]>) -> Result<Vec<ItemRecord>, StoreError> {
        let sql = crate::shared::sql!(
            PgStore,
            format!(
                "SELECT {ITEM_COLUMNS} FROM campaign_items
                 WHERE ($1::bigint IS NULL OR campaign_id = $1) AND ($2::text[] IS NULL OR source = ANY($2))
                 ORDER BY id"
            )
        );
        let list = sqlx::query(sql).bind(campaign).bind(sources).fetch_all(&self.pool).await.db()?;
        list.iter().map(rows::item).collect()
    }

    async fn jobs_of_builds(&self, build_ids: &[i64]) -> Result<Vec<JobRecord>, StoreError> {
        let sql = crate::shared::sql!(
            PgStore,
            format!("{} WHERE j.build_id = ANY($1) ORDER BY j.build_id, j.id", rows::job_select("string_agg(tag, ' ')"))
        );
        sqlx::query(sql).bind(build_ids).fetch_all(&self.pool).await.db()?.iter().map(rows::job).collect()
    }
});

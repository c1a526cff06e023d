//! [`CoverageStore`] on PostgreSQL.

use super::PgStore;
use crate::rebuild::JobRecord;
use crate::storage::rebuild_rows as rows;
use crate::storage::{CoverageStore, StoreError};

impl CoverageStore for PgStore {
    async fn jobs_of_builds(&self, build_ids: &[i64]) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!("{} WHERE j.build_id = ANY($1) ORDER BY j.build_id, j.id", rows::job_select("string_agg(tag, ' ')"));
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(build_ids).fetch_all(&self.pool).await?.iter().map(rows::job).collect()
    }
}

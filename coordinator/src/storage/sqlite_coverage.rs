//! [`CoverageStore`] on SQLite.

use sqlx::{QueryBuilder, Sqlite};

use super::{IN_CHUNK, SqliteStore};
use crate::rebuild::JobRecord;
use crate::storage::rebuild_rows as rows;
use crate::storage::{CoverageStore, StoreError};

impl CoverageStore for SqliteStore {
    async fn jobs_of_builds(&self, build_ids: &[i64]) -> Result<Vec<JobRecord>, StoreError> {
        let mut out = Vec::new();
        for chunk in build_ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(rows::job_select("group_concat(tag, ' ')"));
            qb.push(" WHERE j.build_id IN ").push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in qb.build().fetch_all(&self.reader).await? {
                out.push(rows::job(&r)?);
            }
        }
        out.sort_by_key(|j| (j.build_id, j.id));
        Ok(out)
    }
}

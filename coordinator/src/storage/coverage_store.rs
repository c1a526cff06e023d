//! [`CoverageStore`]: what coverage verdicts read about the verification of builds. Rules live
//! in [`crate::rebuild::coverage`] and [`crate::campaign`]; this only fetches.

use std::future::Future;

use super::{CampaignStore, StoreError};
use crate::rebuild::JobRecord;

/// Reads for coverage verdicts; every [`super::RebuildStore`] is one.
pub trait CoverageStore: CampaignStore {
    /// Every verification job (any state) of these builds, by build then job id. Their
    /// attempts come from [`super::RebuildStore::attempts`].
    fn jobs_of_builds(&self, build_ids: &[i64]) -> impl Future<Output = Result<Vec<JobRecord>, StoreError>> + Send;
}

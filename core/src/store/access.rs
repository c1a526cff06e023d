//! [`AccessStore`]: named API tokens and the audit trail (migration 0013).

use std::future::Future;

use super::StoreError;
use crate::access::{ApiToken, AuditEntry, Role};

/// Credential and audit persistence. Times are unix seconds passed in by the caller.
pub trait AccessStore: Send + Sync + 'static {
    /// Store a new token (its SHA-256 only). `None` when an unrevoked token has that name.
    fn add_token(
        &self,
        name: &str,
        role: Role,
        token_sha256: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<ApiToken>, StoreError>> + Send;

    /// The unrevoked token with this SHA-256.
    fn token_by_digest(
        &self,
        token_sha256: &str,
    ) -> impl Future<Output = Result<Option<ApiToken>, StoreError>> + Send;

    /// Every token, revoked ones included, oldest first.
    fn tokens(&self) -> impl Future<Output = Result<Vec<ApiToken>, StoreError>> + Send;

    /// Revoke the unrevoked token called `name`; `false` when there is none.
    fn revoke_token(
        &self,
        name: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Record that token `id` was used at `now`.
    fn touch_token(&self, id: i64, now: i64)
    -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Append to the audit trail.
    fn audit(&self, entry: &AuditEntry) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The newest `limit` audit entries, newest first.
    fn audit_log(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
}

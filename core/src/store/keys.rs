//! [`KeyStore`]: the published public keys (migration 0007): every key a node has registered
//! with the period it was current, and the coordinators' own keys. Node key history is written
//! by [`super::RebuildStore::register_node`] in the registration's transaction; this trait
//! reads it and records coordinator keys.

use std::future::Future;

use super::StoreError;
use crate::attestation::PublishedKey;

/// Key publication persistence. Times are unix seconds passed in by the caller.
pub trait KeyStore: Send + Sync + 'static {
    /// Every node key ever registered, revoked nodes' included (a revoked node's current key
    /// ends at the revocation), by operator, node and time.
    fn node_keys(&self) -> impl Future<Output = Result<Vec<PublishedKey>, StoreError>> + Send;

    /// Record a coordinator key (OpenSSH form) as in use from `now`, unless it is listed
    /// already. Idempotent: a coordinator calls it at every start.
    fn record_coordinator_key(&self, public_key: &str, now: i64) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every coordinator key, oldest first.
    fn coordinator_keys(&self) -> impl Future<Output = Result<Vec<PublishedKey>, StoreError>> + Send;
}

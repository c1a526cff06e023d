//! The in-process cache of interned `(name, arch, version)` ids.
//!
//! Interned rows are immutable once committed, so a cache of them stays valid even with several
//! coordinators sharing one database. New ids are staged per transaction and published only
//! after commit ([`InternCache::publish`]), so a rolled-back batch never leaves dangling ids.

use std::sync::Mutex;

/// A key made by [`debcover_core::model::dep_key`]: name, arch qualifier and version in one string.
pub(crate) type Key = debcover_core::model::DepKey;

/// Thread-safe map from interned key to row id.
#[derive(Default)]
pub(crate) struct InternCache {
    map: Mutex<foldhash::HashMap<Key, i64>>,
}

impl InternCache {
    /// Look up many keys at once: the id of each, where cached.
    pub(crate) fn lookup(&self, keys: &[Key]) -> Vec<Option<i64>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter().map(|k| map.get(k).copied()).collect()
    }

    /// Publish ids of rows whose transaction has committed.
    pub(crate) fn publish(&self, ids: impl IntoIterator<Item = (Key, i64)>) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.extend(ids);
    }

    /// Number of cached entries.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

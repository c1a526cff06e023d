//! The in-process cache of interned `(name, arch, version)` ids.
//!
//! Interned rows are immutable once committed, so a cache of them stays valid even with several
//! coordinators sharing one database. New ids are staged per transaction and published only
//! after commit ([`InternCache::publish`]), so a rolled-back batch never leaves dangling ids.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A key made by [`crate::model::dep_key`]: name, arch qualifier and version in one string.
pub(crate) type Key = String;

/// Thread-safe map from interned key to row id.
#[derive(Default)]
pub(crate) struct InternCache {
    map: Mutex<HashMap<Key, i64>>,
}

impl InternCache {
    /// Look up many keys at once; returns the ids found and the distinct misses.
    pub(crate) fn lookup<'k>(&self, keys: impl Iterator<Item = &'k str>) -> (HashMap<Key, i64>, Vec<Key>) {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut found = HashMap::new();
        let mut missing = HashSet::new();
        for k in keys {
            if found.contains_key(k) || missing.contains(k) {
                continue;
            }
            match map.get(k) {
                Some(id) => {
                    found.insert(k.to_owned(), *id);
                }
                None => {
                    missing.insert(k.to_owned());
                }
            }
        }
        let mut missing: Vec<Key> = missing.into_iter().collect();
        missing.sort_unstable();
        (found, missing)
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

//! What a suite ships, in memory, for impact analysis.
//!
//! A campaign plan over a widely used library touches most of a suite: tens of thousands of
//! shipped binaries, each with its build link and its `Built-Using` family declarations. Reading
//! them row by row on every plan costs most of the plan's time, yet they only change when an
//! index is imported or builds are ingested (which link binaries to builds). Both kinds of write
//! bump the store's query generation ([`Store::query_generation`]), on whichever coordinator
//! made them, so a snapshot stamped with the generation read *before* it was loaded is valid for
//! as long as the counter shows that value. Several coordinators sharing one PostgreSQL database
//! therefore never plan on an archive older than the last committed write.
//!
//! The snapshot is read-only and shared (`Arc`); a newer generation replaces it whole.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::{ShippedBinary, ShippedBy};
use crate::store::{ArchiveStore, IndexStore, StoreError};

/// Every binary one suite ships, with lookups by build, by declared embedding and by source.
#[derive(Debug, Default)]
pub struct SuiteSnapshot {
    /// One row per (binary, index architecture), as [`CampaignStore::shipped_binaries`] gives.
    pub binaries: Vec<ShippedBinary>,
    by_build: HashMap<i64, Vec<u32>>,
    by_embedded: HashMap<String, Vec<u32>>,
}

impl SuiteSnapshot {
    fn new(binaries: Vec<ShippedBinary>) -> SuiteSnapshot {
        let mut by_build: HashMap<i64, Vec<u32>> = HashMap::new();
        let mut by_embedded: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, b) in binaries.iter().enumerate() {
            let i = i as u32;
            if let Some((build, _, _)) = &b.build {
                by_build.entry(*build).or_default().push(i);
            }
            for (_, source, _) in &b.embeds {
                let list = by_embedded.entry(source.clone()).or_default();
                // A binary can name one source in several fields: list it once.
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        SuiteSnapshot { binaries, by_build, by_embedded }
    }

    /// Binaries selected as [`CampaignStore::shipped_binaries`] would select them.
    pub fn select(&self, by: ShippedBy<'_>) -> Vec<&ShippedBinary> {
        if let ShippedBy::Sources(names) = by {
            return self.binaries.iter().filter(|b| names.contains(&b.source)).collect();
        }
        let mut idx = Vec::new();
        self.indices(by, &mut idx);
        self.rows(idx)
    }

    /// Binaries selected by `a`, then those selected by `b` and not by `a`: each row once.
    pub fn select_union(&self, a: ShippedBy<'_>, b: ShippedBy<'_>) -> Vec<&ShippedBinary> {
        if matches!(a, ShippedBy::Sources(_)) || matches!(b, ShippedBy::Sources(_)) {
            let mut rows = self.select(a);
            rows.extend(self.select(b));
            let mut seen = std::collections::HashSet::new();
            rows.retain(|r| seen.insert(std::ptr::from_ref(*r)));
            return rows;
        }
        let mut first = Vec::new();
        self.indices(a, &mut first);
        first.sort_unstable();
        first.dedup();
        let mut second = Vec::new();
        self.indices(b, &mut second);
        second.sort_unstable();
        second.dedup();
        second.retain(|i| first.binary_search(i).is_err());
        first.into_iter().chain(second).map(|i| &self.binaries[i as usize]).collect()
    }

    /// Whether `by` selects any binary.
    pub fn any(&self, by: ShippedBy<'_>) -> bool {
        match by {
            ShippedBy::All => !self.binaries.is_empty(),
            ShippedBy::Builds(ids) => ids.iter().any(|id| self.by_build.contains_key(id)),
            ShippedBy::Embedding(names) => names.iter().any(|n| self.by_embedded.contains_key(n)),
            ShippedBy::Sources(names) => self.binaries.iter().any(|b| names.contains(&b.source)),
        }
    }

    /// Append the rows `by` selects (not `Sources`).
    fn indices(&self, by: ShippedBy<'_>, idx: &mut Vec<u32>) {
        match by {
            ShippedBy::All => idx.extend(0..self.binaries.len() as u32),
            ShippedBy::Builds(ids) => idx.extend(ids.iter().filter_map(|id| self.by_build.get(id)).flatten()),
            ShippedBy::Embedding(names) => idx.extend(names.iter().filter_map(|n| self.by_embedded.get(n)).flatten()),
            ShippedBy::Sources(_) => {}
        }
    }

    fn rows(&self, mut idx: Vec<u32>) -> Vec<&ShippedBinary> {
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter().map(|i| &self.binaries[i as usize]).collect()
    }
}

/// Per-suite snapshots of one query generation.
#[derive(Debug, Default)]
struct Generation {
    stamp: i64,
    suites: HashMap<String, Arc<SuiteSnapshot>>,
}

/// The coordinator's cache of suite snapshots (one per process, shared by every plan).
#[derive(Debug, Default)]
pub struct ArchiveCache {
    current: Mutex<Generation>,
}

impl ArchiveCache {
    /// An empty cache.
    pub fn new() -> ArchiveCache {
        ArchiveCache::default()
    }

    /// The snapshot of `suite` as of the store's current generation, loaded if needed.
    pub async fn suite<S: IndexStore + ArchiveStore>(&self, store: &S, suite: &str) -> Result<Arc<SuiteSnapshot>, StoreError> {
        // The counter first: what is loaded afterwards is at least as new as it says.
        let stamp = IndexStore::query_generation(store).await?;
        {
            let current = self.lock();
            if current.stamp == stamp
                && let Some(s) = current.suites.get(suite)
            {
                return Ok(s.clone());
            }
        }
        let started = std::time::Instant::now();
        let snapshot = Arc::new(SuiteSnapshot::new(store.shipped_binaries(suite, ShippedBy::All).await?));
        tracing::debug!(suite, generation = stamp, binaries = snapshot.binaries.len(),
            ms = started.elapsed().as_millis() as u64, "campaign: suite snapshot loaded");
        let mut current = self.lock();
        if current.stamp != stamp {
            // Only ever move forward: a slower load of an older generation must not win.
            if current.stamp > stamp {
                return Ok(snapshot);
            }
            *current = Generation { stamp, suites: HashMap::new() };
        }
        current.suites.insert(suite.to_owned(), snapshot.clone());
        Ok(snapshot)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generation> {
        // The guarded data is replaced whole, never left half-written: a poisoned lock is safe.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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
use crate::storage::{CampaignStore, Store, StoreError};

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
        let mut idx: Vec<u32> = match by {
            ShippedBy::All => return self.binaries.iter().collect(),
            ShippedBy::Builds(ids) => ids.iter().filter_map(|id| self.by_build.get(id)).flatten().copied().collect(),
            ShippedBy::Embedding(names) => {
                names.iter().filter_map(|n| self.by_embedded.get(n)).flatten().copied().collect()
            }
            ShippedBy::Sources(names) => {
                return self.binaries.iter().filter(|b| names.contains(&b.source)).collect();
            }
        };
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
    pub async fn suite<S: CampaignStore>(&self, store: &S, suite: &str) -> Result<Arc<SuiteSnapshot>, StoreError> {
        // The counter first: what is loaded afterwards is at least as new as it says.
        let stamp = Store::query_generation(store).await?;
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

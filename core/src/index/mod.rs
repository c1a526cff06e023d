//! The in-memory `built-with` index: what a coordinator keeps so that large answers (tens of
//! thousands of builds) do not re-read rows from the database on every question.
//!
//! Two kinds of data, two rules:
//! - **Immutable per build**: a build's record and the files it produced never change once
//!   stored (a build is the SHA-256 of its text). They are cached by build id for the life of
//!   the process, filled lazily for the builds answers touch.
//! - **Everything else** (posting lists, interned package versions, source → binary names,
//!   where binaries ship and which build they are linked to) belongs to one *query generation*
//!   ([`IndexStore::query_generation`]): a counter in the database that every write which can change
//!   an answer bumps in its own transaction, whichever coordinator made it. Each question reads
//!   the counter (one tiny query); a different value drops the generation's caches and loads a
//!   new shipping snapshot. So several coordinators sharing one PostgreSQL database never serve
//!   an answer older than the last write committed before the question.
//!
//! A generation's data is loaded *after* its counter was read, so it holds at least every write
//! of that generation; a write racing a load can only make the cache newer than its stamp, and
//! the next question, seeing the new counter, reloads.
//!
//! Whole answers are never cached: every question walks its posting lists, filters, resolves
//! and sorts its builds. What is reused is per package version and per build.
//!
//! Debian version comparison happens here (in Rust), as in [`crate::query`], whose uncached
//! [`crate::query::built_with`] is the reference this index must agree with (tests check it).

// foldhash: these maps are probed tens of thousands of times per answer, on small keys.
use foldhash::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};

use debversion::Version;

use crate::model::{BuildRecord, PkgVer, ProducedFile};
use crate::query::{BuildMatch, BuiltWithAnswer, BuiltWithQuery, PackageSpec, is_binary_package};
use crate::store::{BuildStore, IndexStore, StoreError};

pub mod interned;

/// A stored build and the binary packages it produced (no shipping places): immutable.
#[derive(Debug)]
pub struct CachedBuild {
    /// The record.
    pub record: BuildRecord,
    /// Its version, parsed once (for ordering); `None` if unparsable (sorted first).
    version: Option<Version>,
    /// `.deb`/`.udeb`/`.ddeb` files of its checksums, in stored order.
    files: Vec<ProducedFile>,
}

/// A build with its binaries and where each ships, as of one generation.
#[derive(Debug)]
pub struct ResolvedBuild {
    /// The build.
    pub build: Arc<CachedBuild>,
    /// Its binary packages with `shipped_in` filled in.
    pub files: Vec<ProducedFile>,
    /// Where this entry's interned row is, in its generation's [`interned::Rows`].
    pub interned: interned::Slot,
}

/// One matching build of an indexed answer.
#[derive(Debug, Clone)]
pub struct IndexedMatch {
    /// The build, its binaries and their shipping places.
    pub resolved: Arc<ResolvedBuild>,
    /// Installed-Build-Depends entries that satisfied the query, sorted.
    pub matched: Vec<Arc<PkgVer>>,
    /// With a suite: only the binaries shipped in it (otherwise `None`: all of `resolved.files`).
    pub suite_files: Option<Vec<ProducedFile>>,
}

impl IndexedMatch {
    /// The binaries to report for this build.
    pub fn files(&self) -> &[ProducedFile] {
        self.suite_files.as_deref().unwrap_or(&self.resolved.files)
    }
}

/// An answer from the index: the same content as [`BuiltWithAnswer`], sharing cached data.
#[derive(Debug, Clone, Default)]
pub struct IndexedAnswer {
    /// Binary package names searched for.
    pub resolved: Vec<String>,
    /// Matching builds, ordered by source, version, architecture and id.
    pub builds: Vec<IndexedMatch>,
    /// The interned rows of the generation that answered (the entries'
    /// [`ResolvedBuild::interned`] slots point into it); `None` for an answer with no builds.
    pub interned: Option<Arc<interned::Rows>>,
}

impl IndexedAnswer {
    /// The answer with owned values (as [`crate::query::built_with`] returns it).
    pub fn into_answer(self) -> BuiltWithAnswer {
        BuiltWithAnswer {
            resolved: self.resolved,
            builds: self
                .builds
                .into_iter()
                .map(|m| BuildMatch {
                    build: m.resolved.build.record.clone(),
                    matched: m.matched.iter().map(|p| (**p).clone()).collect(),
                    files: m.files().to_vec(),
                })
                .collect(),
        }
    }
}

/// Shipping facts and lazily filled caches of one query generation.
struct Generation {
    generation: i64,
    /// SHA-256 of a shipped .deb → `suite/arch` places.
    by_sha: HashMap<String, Vec<Arc<str>>>,
    /// Build → `(PACKAGE_, suite/arch)` of binaries linked to it by name.
    by_name: HashMap<i64, Vec<(String, Arc<str>)>>,
    /// Build → suites shipping a binary linked to it (either way).
    linked_suites: HashMap<i64, Vec<Arc<str>>>,
    postings: Mutex<HashMap<i64, Arc<Vec<i64>>>>,
    pkgvers: Mutex<HashMap<String, Arc<Vec<Arc<PkgVer>>>>>,
    sources: Mutex<HashMap<String, Arc<Vec<String>>>>,
    resolved: Mutex<HashMap<i64, Arc<ResolvedBuild>>>,
    /// Answer order of the builds in `resolved`.
    ranks: Mutex<Arc<HashMap<i64, u32>>>,
    /// This generation's interned rows and their strings.
    interned: Arc<interned::Rows>,
}

/// Timings of the last question, for the debug log and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
struct Timings {
    generation_us: u128,
    postings_us: u128,
    builds_us: u128,
    /// End of ordering (ranks, filters, sort).
    resolve_us: u128,
    /// End of building the matches.
    sort_us: u128,
}

/// The index. One per coordinator process, shared by its connections.
#[derive(Default)]
pub struct BuiltWithIndex {
    builds: RwLock<HashMap<i64, Arc<CachedBuild>>>,
    current: RwLock<Option<Arc<Generation>>>,
    reload: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves a cache, not an invariant, half-filled; the
    // entries are whole values, so carrying on is safe.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BuiltWithIndex {
    /// An empty index; it fills itself from the store as questions arrive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answer a question from the index, checking the store's generation first.
    pub async fn built_with<S: BuildStore + IndexStore>(&self, store: &S, q: &BuiltWithQuery) -> Result<IndexedAnswer, StoreError> {
        let started = std::time::Instant::now();
        let mut t = Timings::default();
        let g = self.generation(store).await?;
        t.generation_us = started.elapsed().as_micros();

        let resolved: Vec<String> = match &q.package {
            PackageSpec::Binary(n) => vec![n.clone()],
            PackageSpec::Source(s) => {
                let hit = lock(&g.sources).get(s).cloned();
                let names = match hit {
                    Some(n) => n,
                    None => {
                        let n = Arc::new(store.binaries_of_source(s).await?);
                        lock(&g.sources).insert(s.clone(), n.clone());
                        n
                    }
                };
                names.to_vec()
            }
        };
        if resolved.is_empty() {
            return Ok(IndexedAnswer::default());
        }
        let interned = Some(g.interned.clone());
        let candidates = self.candidates(store, &g, &resolved, q.before.as_ref()).await?;
        if candidates.is_empty() {
            return Ok(IndexedAnswer { resolved, builds: Vec::new(), interned });
        }

        // Posting lists → (build id, candidate) pairs, grouped by build.
        let postings = self.postings(store, &g, &candidates).await?;
        let mut pairs: Vec<(i64, u32)> = Vec::with_capacity(postings.iter().map(|l| l.len()).sum());
        for (k, list) in postings.iter().enumerate() {
            let k = u32::try_from(k).map_err(|_| StoreError::Corrupt("too many package versions".into()))?;
            pairs.extend(list.iter().map(|b| (*b, k)));
        }
        if postings.len() > 1 {
            pairs.sort_unstable();
        }
        let mut groups: Vec<(i64, std::ops::Range<usize>)> = Vec::new();
        for (i, (b, _)) in pairs.iter().enumerate() {
            match groups.last_mut() {
                Some((last, range)) if last == b => range.end = i + 1,
                _ => groups.push((*b, i..i + 1)),
            }
        }
        // The suite filter needs only the shipping snapshot.
        if let Some(suite) = &q.suite {
            groups.retain(|(b, _)| g.linked_suites.get(b).is_some_and(|s| s.iter().any(|x| **x == **suite)));
        }
        t.postings_us = started.elapsed().as_micros();

        let resolved_builds = self.resolved(store, &g, groups.iter().map(|(b, _)| *b)).await?;
        t.builds_us = started.elapsed().as_micros();
        // The answer order first, on small keys (rank, id, position); then the matches, built
        // once each in that order. The ranks held cover every build resolved when they were
        // computed; a build resolved since has none, and then they are computed again (once:
        // every build of this answer is resolved by now).
        let mut ranks = lock(&g.ranks).clone();
        let mut reranked = false;
        let mut order: Vec<(u32, i64, usize)> = Vec::with_capacity(resolved_builds.len());
        'rank: loop {
            order.clear();
            for (i, r) in resolved_builds.iter().enumerate() {
                let Some(r) = r else { continue };
                if q.arch.as_ref().is_some_and(|a| r.build.record.host_arch != *a) {
                    continue;
                }
                let id = r.build.record.id;
                let k = match ranks.get(&id) {
                    Some(k) => *k,
                    None if !reranked => {
                        ranks = rank_all(&g);
                        reranked = true;
                        continue 'rank;
                    }
                    None => u32::MAX,
                };
                order.push((k, id, i));
            }
            break;
        }
        order.sort_unstable();
        t.resolve_us = started.elapsed().as_micros();
        let mut resolved_builds = resolved_builds;
        let prefix = q.suite.as_ref().map(|s| format!("{s}/"));
        let out: Vec<IndexedMatch> = order
            .into_iter()
            .filter_map(|(_, _, i)| {
                let r = resolved_builds[i].take()?;
                let range = groups[i].1.clone();
                let mut m: Vec<Arc<PkgVer>> =
                    pairs[range].iter().map(|(_, k)| candidates[*k as usize].clone()).collect();
                if m.len() > 1 {
                    m.sort_by(|a, b| (&a.name, &a.arch, &a.version).cmp(&(&b.name, &b.arch, &b.version)));
                }
                let suite_files = prefix.as_ref().map(|p| {
                    r.files.iter().filter(|f| f.shipped_in.iter().any(|s| s.starts_with(p.as_str()))).cloned().collect()
                });
                Some(IndexedMatch { resolved: r, matched: m, suite_files })
            })
            .collect();
        t.sort_us = started.elapsed().as_micros();
        tracing::debug!(
            builds = out.len(),
            generation = g.generation,
            generation_us = t.generation_us as u64,
            postings_us = (t.postings_us - t.generation_us) as u64,
            records_us = (t.builds_us - t.postings_us) as u64,
            order_us = (t.resolve_us - t.builds_us) as u64,
            matches_us = (t.sort_us - t.resolve_us) as u64,
            "built-with answered from the index"
        );
        Ok(IndexedAnswer { resolved, builds: out, interned })
    }

    /// The generation the store is at, loading its shipping snapshot if it is not the one held.
    async fn generation<S: IndexStore>(&self, store: &S) -> Result<Arc<Generation>, StoreError> {
        let now = store.query_generation().await?;
        if let Some(g) = self.held(now) {
            return Ok(g);
        }
        // One loader at a time; whoever waited may find the work done.
        let _loading = self.reload.lock().await;
        if let Some(g) = self.held(now) {
            return Ok(g);
        }
        let started = std::time::Instant::now();
        let (generation, rows) = store.shipping().await?;
        let mut places: HashMap<String, Arc<str>> = HashMap::default();
        let mut by_sha: HashMap<String, Vec<Arc<str>>> = HashMap::default();
        let mut by_name: HashMap<i64, Vec<(String, Arc<str>)>> = HashMap::default();
        let mut linked_suites: HashMap<i64, Vec<Arc<str>>> = HashMap::default();
        let mut suites: HashMap<String, Arc<str>> = HashMap::default();
        for r in rows {
            let place = places.entry(r.place.clone()).or_insert_with(|| Arc::from(r.place.as_str())).clone();
            if let Some(b) = r.build_id {
                let suite_name = r.place.split_once('/').map_or(r.place.as_str(), |(s, _)| s);
                let suite = suites.entry(suite_name.to_owned()).or_insert_with(|| Arc::from(suite_name)).clone();
                let l = linked_suites.entry(b).or_default();
                if !l.contains(&suite) {
                    l.push(suite);
                }
                if r.by_name {
                    by_name.entry(b).or_default().push((format!("{}_", r.package), place.clone()));
                }
            }
            by_sha.entry(r.sha256).or_default().push(place);
        }
        let g = Arc::new(Generation {
            generation,
            by_sha,
            by_name,
            linked_suites,
            postings: Mutex::default(),
            pkgvers: Mutex::default(),
            sources: Mutex::default(),
            resolved: Mutex::default(),
            ranks: Mutex::default(),
            interned: Arc::default(),
        });
        tracing::debug!(
            generation,
            shipped = g.by_sha.len(),
            load_ms = started.elapsed().as_millis() as u64,
            "built-with index: new generation"
        );
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(g.clone());
        Ok(g)
    }

    /// The held generation if it is at least `now` (a snapshot loaded after a newer write is
    /// as good).
    fn held(&self, now: i64) -> Option<Arc<Generation>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|g| g.generation >= now).cloned()
    }

    /// Interned versions of `names` below `before`, in a fixed order.
    async fn candidates<S: IndexStore>(
        &self,
        store: &S,
        g: &Generation,
        names: &[String],
        before: Option<&Version>,
    ) -> Result<Vec<Arc<PkgVer>>, StoreError> {
        let mut all: Vec<Arc<PkgVer>> = Vec::new();
        let mut missing: Vec<String> = Vec::new();
        {
            let cache = lock(&g.pkgvers);
            for n in names {
                match cache.get(n) {
                    Some(v) => all.extend(v.iter().cloned()),
                    None => missing.push(n.clone()),
                }
            }
        }
        if !missing.is_empty() {
            let mut fetched: HashMap<String, Vec<Arc<PkgVer>>> =
                missing.iter().map(|n| (n.clone(), Vec::new())).collect();
            for p in store.pkgvers_named(&missing).await? {
                if let Some(v) = fetched.get_mut(&p.name) {
                    v.push(Arc::new(p));
                }
            }
            let mut cache = lock(&g.pkgvers);
            for (n, v) in fetched {
                all.extend(v.iter().cloned());
                cache.insert(n, Arc::new(v));
            }
        }
        all.retain(|p| match (before, Version::from_str(&p.version)) {
            (None, _) => true,
            (Some(before), Ok(v)) => v < *before,
            (Some(_), Err(e)) => {
                tracing::warn!(name = %p.name, version = %p.version, error = %e, "unparsable stored version");
                false
            }
        });
        all.sort_by_key(|p| p.id);
        all.dedup_by_key(|p| p.id);
        Ok(all)
    }

    /// The posting list of each candidate, in the candidates' order.
    async fn postings<S: IndexStore>(
        &self,
        store: &S,
        g: &Generation,
        candidates: &[Arc<PkgVer>],
    ) -> Result<Vec<Arc<Vec<i64>>>, StoreError> {
        let missing: Vec<i64> = {
            let cache = lock(&g.postings);
            candidates.iter().map(|p| p.id).filter(|id| !cache.contains_key(id)).collect()
        };
        if !missing.is_empty() {
            let mut fetched: HashMap<i64, Vec<i64>> = missing.iter().map(|id| (*id, Vec::new())).collect();
            for (build, pv) in store.builds_with(&missing, None, None).await? {
                if let Some(v) = fetched.get_mut(&pv) {
                    v.push(build);
                }
            }
            let mut cache = lock(&g.postings);
            for (pv, mut list) in fetched {
                list.sort_unstable();
                list.dedup();
                cache.insert(pv, Arc::new(list));
            }
        }
        let cache = lock(&g.postings);
        candidates
            .iter()
            .map(|p| cache.get(&p.id).cloned().ok_or_else(|| StoreError::Corrupt(format!("posting list {} lost", p.id))))
            .collect()
    }

    /// The resolved entries of these builds in generation `g`, in order (`None`: unknown to
    /// the store), resolving and loading what is not held yet.
    async fn resolved<S: BuildStore>(
        &self,
        store: &S,
        g: &Generation,
        ids: impl Iterator<Item = i64>,
    ) -> Result<Vec<Option<Arc<ResolvedBuild>>>, StoreError> {
        let mut out: Vec<Option<Arc<ResolvedBuild>>>;
        let mut missing: Vec<(usize, i64)> = Vec::new();
        {
            let cache = lock(&g.resolved);
            out = ids
                .enumerate()
                .map(|(i, id)| {
                    let r = cache.get(&id).cloned();
                    if r.is_none() {
                        missing.push((i, id));
                    }
                    r
                })
                .collect();
        }
        if !missing.is_empty() {
            let ids: Vec<i64> = missing.iter().map(|(_, id)| *id).collect();
            let builds: HashMap<i64, Arc<CachedBuild>> =
                self.builds(store, &ids).await?.into_iter().map(|b| (b.record.id, b)).collect();
            let mut cache = lock(&g.resolved);
            for (i, id) in missing {
                if let Some(b) = builds.get(&id) {
                    let r = cache.entry(id).or_insert_with(|| Arc::new(resolve(g, b))).clone();
                    out[i] = Some(r);
                }
            }
        }
        Ok(out)
    }

    /// The cached builds with these ids, loading those not held yet (ids unknown to the store
    /// are skipped).
    async fn builds<S: BuildStore>(&self, store: &S, ids: &[i64]) -> Result<Vec<Arc<CachedBuild>>, StoreError> {
        let missing: Vec<i64> = {
            let held = self.builds.read().unwrap_or_else(|e| e.into_inner());
            ids.iter().copied().filter(|id| !held.contains_key(id)).collect()
        };
        if !missing.is_empty() {
            let records = store.builds_by_id(&missing).await?;
            let mut files: HashMap<i64, Vec<ProducedFile>> = HashMap::default();
            for f in store.build_files(&missing).await? {
                if is_binary_package(&f.name) {
                    files.entry(f.build_id).or_default().push(f);
                }
            }
            let mut held = self.builds.write().unwrap_or_else(|e| e.into_inner());
            for record in records {
                let files = files.remove(&record.id).unwrap_or_default();
                let version = Version::from_str(&record.version).ok();
                held.insert(record.id, Arc::new(CachedBuild { record, version, files }));
            }
        }
        let held = self.builds.read().unwrap_or_else(|e| e.into_inner());
        Ok(ids.iter().filter_map(|id| held.get(id).cloned()).collect())
    }
}

/// A build with its shipping places in generation `g` (what `produced_files` computes).
/// The answer order (source, Debian version, architecture, id) as ranks over every build
/// resolved in generation `g` so far, kept in `g` for the answers after this one.
fn rank_all(g: &Generation) -> Arc<HashMap<i64, u32>> {
    let mut all: Vec<Arc<CachedBuild>> = lock(&g.resolved).values().map(|r| r.build.clone()).collect();
    all.sort_by(|a, b| {
        (&a.record.source, &a.version, &a.record.host_arch, a.record.id)
            .cmp(&(&b.record.source, &b.version, &b.record.host_arch, b.record.id))
    });
    let ranks: Arc<HashMap<i64, u32>> =
        Arc::new(all.iter().enumerate().map(|(i, b)| (b.record.id, u32::try_from(i).unwrap_or(u32::MAX))).collect());
    *lock(&g.ranks) = ranks.clone();
    ranks
}

fn resolve(g: &Generation, b: &Arc<CachedBuild>) -> ResolvedBuild {
    let links = g.by_name.get(&b.record.id);
    let files = b
        .files
        .iter()
        .map(|f| {
            let mut shipped: Vec<String> = Vec::new();
            if let Some(places) = f.sha256.as_ref().and_then(|s| g.by_sha.get(s)) {
                shipped.extend(places.iter().map(|p| p.to_string()));
            }
            if let Some(links) = links {
                shipped.extend(links.iter().filter(|(p, _)| f.name.starts_with(p.as_str())).map(|(_, pl)| pl.to_string()));
            }
            shipped.sort();
            shipped.dedup();
            ProducedFile { shipped_in: shipped, ..f.clone() }
        })
        .collect();
    ResolvedBuild { build: b.clone(), files, interned: interned::Slot::default() }
}

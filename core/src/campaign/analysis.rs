//! Impact analysis: which shipped binaries embed a vulnerable version of the library, and which
//! are affected through them.
//!
//! Direct evidence, per shipped binary in scope:
//! 1. its build's Installed-Build-Depends (any binary of the library's source below the fix);
//! 2. its own `Built-Using`, `Static-Built-Using`, `X-Cargo-Built-Using` naming the library
//!    (by source name, or by one of its binary names) below the fix.
//!
//! The buildinfo is authoritative when there is one: it records what was installed. A
//! declaration that disagrees with it is reported (stale or missing `Static-Built-Using`);
//! without a buildinfo, the declarations decide.
//!
//! Transitive evidence: an affected arch-any item whose binaries other packages were built
//! against (a static library, vendored code) makes those packages affected through it. They must
//! be rebuilt after it; waves are the topological levels of that graph (see [`super::waves`]).
//! Only binaries that carry code into their consumers propagate (see [`carries_code`]): a
//! package merely installed in a build chroot (a compiler, a shared library's runtime package, a
//! documentation tool) does not put the vulnerable code into what was built with it. By default
//! ([`Propagation::Declared`]) such a binary must also declare what it embeds: most `-dev`
//! packages of C libraries ship a shared library, and following all of them would make half the
//! archive "affected" by any library in a build chroot.

use std::collections::{BTreeMap, BTreeSet, HashMap};

type FoldMap<K, V> = foldhash::HashMap<K, V>;
type FoldSet<T> = foldhash::HashSet<T>;

use debversion::Version;

use super::snapshot::{ArchiveCache, SuiteSnapshot};
use super::waves;
use super::{
    CampaignError, CampaignSpec, CycleGroup, Detail, Evidence, EvidenceKind, FoundBy, Mode, Plan, PlannedItem, Propagation,
    UpstreamThreshold, export, version,
};
use crate::model::{PkgVer, ShippedBinary, ShippedBy};
use crate::store::{ArchiveStore, BuildStore, IndexStore};

/// Compare an installed binary version with a source version: binNMU suffixes do not make a
/// version newer than the source it was built from.
fn below(installed: &Version, fixed: &Version) -> bool {
    debcover_formats::relation::strip_binnmu(installed) < *fixed
}

/// An interned version of one of the library's binaries, judged once.
struct Installed {
    pv: PkgVer,
    /// The version without a binNMU suffix, as text (what declarations are compared with).
    stripped: String,
    /// Below the fixed version.
    vulnerable: bool,
}

/// An item being assembled.
struct Draft {
    item: PlannedItem,
}

/// Run impact analysis for `spec`, on the suites' snapshots in `archive`, recording `detail`.
/// Reads only; saves nothing.
pub async fn analyze<S: BuildStore + ArchiveStore + IndexStore>(
    store: &S,
    archive: &ArchiveCache,
    spec: &CampaignSpec,
    detail: Detail,
) -> Result<Plan, CampaignError> {
    let started = std::time::Instant::now();
    let mut snapshots: HashMap<&str, std::sync::Arc<SuiteSnapshot>> = HashMap::new();
    for suite in &spec.suites {
        let arches = store.suite_arches(suite).await?;
        if arches.is_empty() {
            let known = store.stats().await?.suites;
            return Err(CampaignError::UnknownSuite {
                suite: suite.clone(),
                known: if known.is_empty() { "none".into() } else { known.join(", ") },
            });
        }
        if let Some(a) = spec.arches.iter().find(|a| !arches.contains(a)) {
            return Err(CampaignError::UnknownArch { suite: suite.clone(), arch: a.clone(), known: arches.join(", ") });
        }
        snapshots.insert(suite, archive.suite(store, suite).await?);
    }

    let library_binaries = store.binaries_of_source(&spec.library).await?;
    // Declarations name sources, but some name a binary package: accept both.
    let mut decl_names: Vec<String> = vec![spec.library.clone()];
    decl_names.extend(library_binaries.iter().cloned());

    // Every interned version of every binary of the library, and the builds that had one.
    let pkgvers = store.pkgvers_named(&library_binaries).await?;
    // Each interned version is parsed and judged once, not once per binary built with it.
    let pv_by_id: FoldMap<i64, Installed> = pkgvers
        .into_iter()
        .filter_map(|p| {
            let v = version(&p.version)?;
            let stripped = debcover_formats::relation::strip_binnmu(&v);
            Some((p.id, Installed { vulnerable: stripped < spec.fixed, stripped: stripped.to_string(), pv: p }))
        })
        .collect();
    let ids: Vec<i64> = pv_by_id.keys().copied().collect();
    let mut installed: FoldMap<i64, Vec<i64>> = FoldMap::default();
    if !ids.is_empty() {
        for (build, pv) in store.builds_with(&ids, None, None).await? {
            installed.entry(build).or_default().push(pv);
        }
    }
    let mut builds: Vec<i64> = installed.keys().copied().collect();
    builds.sort_unstable();
    tracing::debug!(builds = builds.len(), ms = started.elapsed().as_millis() as u64, "analysis: builds with the library");

    let mut plan = Plan { library_binaries: library_binaries.clone(), ..Plan::default() };
    let mut drafts: Vec<Draft> = Vec::new();
    let mut index = ItemIndex::default();
    let mut edges: Vec<(usize, usize)> = Vec::new();
    let mut known_library = !library_binaries.is_empty();
    let mut skipped_all = 0usize;

    for suite in &spec.suites {
        let in_scope = |b: &&ShippedBinary| spec.arches.is_empty() || spec.arches.contains(&b.index_arch);
        let snapshot = &snapshots[suite.as_str()];
        known_library |= snapshot.any(ShippedBy::Embedding(&decl_names));
        let shipped = snapshot.select_union(ShippedBy::Builds(&builds), ShippedBy::Embedding(&decl_names));
        let shipped = dedup_all(shipped.into_iter().filter(in_scope).collect());
        tracing::debug!(%suite, binaries = shipped.len(), ms = started.elapsed().as_millis() as u64, "analysis: shipped binaries");

        for &b in &shipped {
            if b.source == spec.library {
                continue;
            }
            let seen: Vec<&Installed> = b
                .build
                .as_ref()
                .and_then(|(id, _, _)| installed.get(id))
                .map(|pvs| pvs.iter().filter_map(|id| pv_by_id.get(id)).collect())
                .unwrap_or_default();
            let declares = b.embeds.iter().any(|(_, src, _)| decl_names.contains(src));
            if b.architecture == "all" && !declares {
                // Source code or data built with the library installed: nothing embedded.
                skipped_all += usize::from(seen.iter().any(|i| i.vulnerable));
                continue;
            }
            let mut decl: Vec<Evidence> = Vec::new();
            for (field, src, ver) in &b.embeds {
                // The name first: most declarations are about other sources.
                if !decl_names.contains(src) {
                    continue;
                }
                let (Some(kind), Some(v)) = (EvidenceKind::from_field(field), version(ver)) else {
                    continue;
                };
                decl.push(Evidence {
                    kind,
                    binary: b.package.clone(),
                    package: src.clone(),
                    version: ver.clone(),
                    vulnerable: below(&v, &spec.fixed),
                    through: None,
                });
            }
            if seen.is_empty() && decl.is_empty() {
                continue;
            }
            // The buildinfo decides when there is one; the declarations otherwise.
            let vulnerable = if seen.is_empty() {
                decl.iter().any(|e| e.vulnerable)
            } else {
                seen.iter().any(|i| i.vulnerable)
            };
            let ibd_evidence = |i: &Installed| Evidence {
                kind: EvidenceKind::InstalledBuildDepends,
                binary: b.package.clone(),
                package: i.pv.name.clone(),
                version: i.pv.version.clone(),
                vulnerable: i.vulnerable,
                through: None,
            };
            if !vulnerable || detail == Detail::Full {
                let ibd: Vec<Evidence> = seen.iter().map(|i| ibd_evidence(i)).collect();
                let disagreement = disagreement(b, &ibd, &decl, &seen, spec);
                if !vulnerable {
                    if let Some(d) = disagreement {
                        plan.notes.push(format!("{suite}: {d} (not affected: the buildinfo is authoritative)"));
                    }
                    continue;
                }
                let i = draft_for(&mut drafts, &mut index, suite, b);
                let d = &mut drafts[i];
                d.item.evidence.extend(ibd);
                d.item.evidence.extend(decl);
                if let Some(text) = disagreement {
                    d.item.notes.push(text);
                }
            } else {
                let i = draft_for(&mut drafts, &mut index, suite, b);
                let ev = &mut drafts[i].item.evidence;
                for inst in &seen {
                    let known = ev.iter().any(|e| {
                        e.kind == EvidenceKind::InstalledBuildDepends && e.package == inst.pv.name && e.version == inst.pv.version
                    });
                    if !known {
                        ev.push(ibd_evidence(inst));
                    }
                }
                ev.extend(decl);
            }
        }
    }
    if !known_library {
        return Err(CampaignError::UnknownLibrary(spec.library.clone()));
    }
    if skipped_all > 0 {
        plan.notes.push(format!(
            "{skipped_all} arch:all binaries were built with {} installed but declare no embedding: \
             source code or data, not rebuilt",
            spec.library
        ));
    }

    tracing::debug!(items = drafts.len(), ms = started.elapsed().as_millis() as u64, "analysis: direct items");
    // Transitive dependents, one depth at a time.
    let mut frontier: Vec<usize> = (0..drafts.len()).filter(|&i| drafts[i].item.arch != "all").collect();
    let mut depth = 1;
    while !frontier.is_empty() {
        let capped = depth >= spec.max_depth;
        let mut next = Vec::new();
        for suite in &spec.suites {
            let mine: Vec<usize> = frontier.iter().copied().filter(|&i| drafts[i].item.suite == *suite).collect();
            if mine.is_empty() {
                continue;
            }
            let found = dependents(store, &snapshots[suite.as_str()], spec, &drafts, &mine).await?;
            for (b, upstream, ev) in found {
                let existing = index.get(suite, &b.source, &b.architecture);
                if existing.is_none() && capped {
                    plan.beyond_depth += 1;
                    // Count each (source, arch) once.
                    index.insert(suite, &b.source, &b.architecture, usize::MAX);
                    continue;
                }
                if existing == Some(usize::MAX) {
                    continue;
                }
                let i = draft_for(&mut drafts, &mut index, suite, b);
                if existing.is_none() {
                    next.push(i);
                }
                let up = &drafts[upstream].item;
                // Declarations name the source version; installed packages carry binary versions.
                let max_version = if ev.kind.is_declaration() { up.source_version.clone() } else { up.version.clone() };
                let threshold = UpstreamThreshold { package: ev.package.clone(), max_version, through: up.key() };
                let d = &mut drafts[i].item;
                if !d.upstream.contains(&threshold) {
                    d.upstream.push(threshold);
                }
                if !d.evidence.contains(&ev) {
                    d.evidence.push(ev);
                }
                edges.push((upstream, i));
            }
        }
        tracing::debug!(depth, new = next.len(), ms = started.elapsed().as_millis() as u64, "analysis: transitive depth");
        if capped {
            break;
        }
        frontier = next;
        depth += 1;
    }
    if plan.beyond_depth > 0 {
        plan.notes.push(format!(
            "{} more items are affected beyond the depth cap of {}; raise --max-depth to plan them",
            plan.beyond_depth, spec.max_depth
        ));
    }

    let levels = waves::levels(drafts.len(), &edges);
    tracing::debug!(edges = edges.len(), ms = started.elapsed().as_millis() as u64, "analysis: waves");
    let mut after: Vec<BTreeSet<String>> = vec![BTreeSet::new(); drafts.len()];
    for &(a, b) in &edges {
        if a != b {
            after[b].insert(drafts[a].item.key());
        }
    }
    for (i, d) in drafts.iter_mut().enumerate() {
        d.item.wave = levels.wave[i];
        d.item.cycle = levels.cycle[i].map(|g| g + 1);
        d.item.after = std::mem::take(&mut after[i]).into_iter().collect();
        d.item.found_by = found_by(&d.item);
        d.item.binaries.sort();
        d.item.binaries.dedup();
        d.item.evidence.sort_by(|a, b| (a.kind, &a.binary, &a.package).cmp(&(b.kind, &b.binary, &b.package)));
        if spec.mode == Mode::Sourceful {
            d.item.planned_version = Some(export::sourceful_version(&d.item.suite, &d.item.source_version));
        }
    }
    for (g, members) in levels.groups.iter().enumerate() {
        let names: Vec<String> = members.iter().map(|&m| drafts[m].item.key()).collect();
        let wave = levels.wave[members[0]];
        plan.notes.push(format!(
            "dependency cycle {}: {} were each built against another's vulnerable build; they are \
             scheduled together in wave {wave}, and may need a second round once all are rebuilt",
            g + 1,
            names.join(", ")
        ));
        plan.cycles.push(CycleGroup { id: g as u32 + 1, members: names, wave });
    }
    let mut items: Vec<PlannedItem> = drafts.into_iter().map(|d| d.item).collect();
    items.sort_by(|a, b| (a.wave, &a.suite, &a.source, &a.arch).cmp(&(b.wave, &b.suite, &b.source, &b.arch)));
    plan.items = items;
    tracing::debug!(
        items = plan.items.len(),
        waves = plan.waves(),
        ms = started.elapsed().as_millis() as u64,
        "impact analysis"
    );
    Ok(plan)
}

/// arch:all binaries are listed in every architecture's index: keep one row of each. (A
/// snapshot selection has one row per binary and index architecture already.)
fn dedup_all(mut shipped: Vec<&ShippedBinary>) -> Vec<&ShippedBinary> {
    let mut seen_all: FoldSet<i64> = FoldSet::default();
    shipped.retain(|b| b.architecture != "all" || seen_all.insert(b.id));
    shipped
}

/// Drafts by `(suite, source, arch)`, looked up without allocating.
#[derive(Default)]
struct ItemIndex {
    map: FoldMap<String, usize>,
    /// The key being looked up, reused.
    buf: String,
}

impl ItemIndex {
    fn key(&mut self, suite: &str, source: &str, arch: &str) {
        self.buf.clear();
        // No name contains a NUL (command-line arguments and index fields cannot).
        for part in [suite, "\0", source, "\0", arch] {
            self.buf.push_str(part);
        }
    }

    fn get(&mut self, suite: &str, source: &str, arch: &str) -> Option<usize> {
        self.key(suite, source, arch);
        self.map.get(self.buf.as_str()).copied()
    }

    fn insert(&mut self, suite: &str, source: &str, arch: &str, i: usize) {
        self.key(suite, source, arch);
        self.map.insert(self.buf.clone(), i);
    }
}

/// The draft for `(suite, b.source, b.architecture)`, created from `b` when new.
fn draft_for(drafts: &mut Vec<Draft>, index: &mut ItemIndex, suite: &str, b: &ShippedBinary) -> usize {
    let arch = b.architecture.as_str();
    let i = match index.get(suite, &b.source, arch) {
        Some(i) => i,
        None => {
            drafts.push(Draft {
                item: PlannedItem {
                    suite: suite.to_owned(),
                    source: b.source.clone(),
                    arch: arch.to_owned(),
                    source_version: b.source_version.clone(),
                    version: b.version.clone(),
                    build_sha256: b.build.as_ref().map(|(_, sha, _)| sha.clone()),
                    binaries: Vec::new(),
                    wave: 1,
                    cycle: None,
                    found_by: FoundBy::Both,
                    evidence: Vec::new(),
                    notes: Vec::new(),
                    after: Vec::new(),
                    upstream: Vec::new(),
                    planned_version: None,
                },
            });
            index.insert(suite, &b.source, arch, drafts.len() - 1);
            drafts.len() - 1
        }
    };
    let item = &mut drafts[i].item;
    item.binaries.push(b.package.clone());
    // Several binaries of one source can differ in version (binNMU of arch-any only): keep the
    // highest, which is what a rebuild must exceed.
    if b.version != item.version
        && let (Some(new), Some(old)) = (version(&b.version), version(&item.version))
        && new > old
    {
        item.version = b.version.clone();
        item.build_sha256 = b.build.as_ref().map(|(_, sha, _)| sha.clone());
    }
    i
}

/// Words for a disagreement between a binary's buildinfo and its declarations, if any.
fn disagreement(
    b: &ShippedBinary,
    ibd: &[Evidence],
    decl: &[Evidence],
    installed: &[&Installed],
    spec: &CampaignSpec,
) -> Option<String> {
    if ibd.is_empty() {
        return None;
    }
    // Built piece by piece: one note for nearly every binary of a suite-wide plan.
    let seen = |text: &mut String| {
        for (n, e) in ibd.iter().enumerate() {
            if n > 0 {
                text.push_str(", ");
            }
            for part in [e.package.as_str(), " ", e.version.as_str()] {
                text.push_str(part);
            }
        }
    };
    if decl.is_empty() {
        let vulnerable = ibd.iter().any(|e| e.vulnerable);
        return vulnerable.then(|| {
            let mut text = String::with_capacity(160 + 40 * ibd.len());
            for part in [b.package.as_str(), " ", b.version.as_str(), ": built with "] {
                text.push_str(part);
            }
            seen(&mut text);
            for part in [" but declares no Built-Using/Static-Built-Using for ", spec.library.as_str(),
                         " (missing declaration)"] {
                text.push_str(part);
            }
            text
        });
    }
    // Declarations name binNMU-free versions.
    let installed: BTreeSet<&str> = installed.iter().map(|i| i.stripped.as_str()).collect();
    if decl.iter().all(|d| installed.contains(d.version.as_str())) {
        return None;
    }
    let decls = decl.iter().map(|e| format!("{}: {} (= {})", e.kind.field(), e.package, e.version)).collect::<Vec<_>>();
    let mut shows = String::new();
    seen(&mut shows);
    Some(format!("{} {}: declares {} but its buildinfo shows {shows} (stale declaration)", b.package, b.version,
        decls.join(", ")))
}

fn found_by(item: &PlannedItem) -> FoundBy {
    let ibd = item.evidence.iter().any(|e| !e.kind.is_declaration());
    let decl = item.evidence.iter().any(|e| e.kind.is_declaration());
    match (ibd, decl) {
        (true, true) => FoundBy::Both,
        (true, false) => FoundBy::BuildinfoOnly,
        _ => FoundBy::DeclarationOnly,
    }
}

/// Whether other packages built with binary `name` installed take its code into their own
/// binaries: development packages (headers, static archives, `.a`-shipping `-dev`, Go and Rust
/// source packages) and explicit static variants. Runtime libraries (`libfoo1`), programs and
/// data are dynamically linked or not linked at all, and a rebuild of the library's own
/// package fixes them. Declared embedding (`Static-Built-Using` naming the item's source) always
/// propagates, whatever the binary's name.
pub fn carries_code(name: &str) -> bool {
    name.ends_with("-dev") || name.ends_with("-static") || name.ends_with("-source")
}

/// Whether dependents built with `binary` of affected `item` are affected through it.
fn propagates_through(item: &PlannedItem, binary: &str, mode: Propagation) -> bool {
    carries_code(binary)
        && match mode {
            Propagation::Dev => true,
            Propagation::Declared => {
                item.evidence.iter().any(|e| e.binary == binary && e.kind.is_declaration() && e.vulnerable)
            }
        }
}

/// Shipped arch-any binaries of `suite` built against (or declaring) a vulnerable binary of one
/// of the `upstream` items: `(binary, upstream item index, evidence)`.
async fn dependents<'a, S: BuildStore + ArchiveStore + IndexStore>(
    store: &S,
    snapshot: &'a SuiteSnapshot,
    spec: &CampaignSpec,
    drafts: &[Draft],
    upstream: &[usize],
) -> Result<Vec<(&'a ShippedBinary, usize, Evidence)>, CampaignError> {
    // package name → [(upstream item, arch, vulnerable version)]
    let mut by_package: BTreeMap<String, Vec<(usize, String, Version)>> = BTreeMap::new();
    let mut by_source: FoldMap<&str, Vec<usize>> = FoldMap::default();
    for &u in upstream {
        let it = &drafts[u].item;
        let mut through = it.binaries.iter().filter(|b| propagates_through(it, b, spec.propagate)).peekable();
        // Parsed only for items that propagate through a binary (few of a large plan).
        if through.peek().is_some()
            && let Some(v) = version(&it.version)
        {
            for bin in through {
                by_package.entry(bin.clone()).or_default().push((u, it.arch.clone(), v.clone()));
            }
        }
        // Declarations naming the item's source are compared with its source version.
        by_source.entry(it.source.as_str()).or_default().push(u);
    }
    let names: Vec<String> = by_package.keys().cloned().collect();
    let pvs = store.pkgvers_named(&names).await?;
    let candidates: FoldMap<i64, (PkgVer, Version)> = pvs
        .into_iter()
        .filter_map(|p| {
            let v = version(&p.version)?;
            by_package.get(&p.name).is_some_and(|ups| ups.iter().any(|(_, _, max)| v <= *max)).then_some((p.id, (p, v)))
        })
        .collect();
    let mut installed: FoldMap<i64, Vec<i64>> = FoldMap::default();
    if !candidates.is_empty() {
        let ids: Vec<i64> = candidates.keys().copied().collect();
        for (build, pv) in store.builds_with(&ids, None, None).await? {
            installed.entry(build).or_default().push(pv);
        }
    }
    let mut builds: Vec<i64> = installed.keys().copied().collect();
    builds.sort_unstable();
    let sources: Vec<String> = by_source.keys().map(|s| (*s).to_owned()).collect();
    let shipped = dedup_all(snapshot.select_union(ShippedBy::Builds(&builds), ShippedBy::Embedding(&sources)));

    let mut out = Vec::new();
    for b in shipped {
        if b.architecture == "all" || b.source == spec.library {
            continue;
        }
        if !spec.arches.is_empty() && !spec.arches.contains(&b.index_arch) {
            continue;
        }
        let mut found: Vec<(usize, Evidence)> = Vec::new();
        if let Some(pvs) = b.build.as_ref().and_then(|(id, _, _)| installed.get(id)) {
            for (pv, v) in pvs.iter().filter_map(|id| candidates.get(id)) {
                for (u, arch, max) in by_package.get(&pv.name).into_iter().flatten() {
                    if *arch == b.architecture && v <= max {
                        found.push((
                            *u,
                            Evidence {
                                kind: EvidenceKind::InstalledBuildDepends,
                                binary: b.package.clone(),
                                package: pv.name.clone(),
                                version: pv.version.clone(),
                                vulnerable: true,
                                through: Some(drafts[*u].item.key()),
                            },
                        ));
                    }
                }
            }
        }
        for (field, src, ver) in &b.embeds {
            // The name first: most declarations are about sources that are not affected.
            let Some(ups) = by_source.get(src.as_str()) else {
                continue;
            };
            let (Some(kind), Some(v)) = (EvidenceKind::from_field(field), version(ver)) else {
                continue;
            };
            for &u in ups {
                let up = &drafts[u].item;
                if up.arch != b.architecture {
                    continue;
                }
                let max = version(&up.source_version);
                if max.is_some_and(|m| v <= m) {
                    found.push((
                        u,
                        Evidence {
                            kind,
                            binary: b.package.clone(),
                            package: src.clone(),
                            version: ver.clone(),
                            vulnerable: true,
                            through: Some(up.key()),
                        },
                    ));
                }
            }
        }
        for (u, ev) in found {
            let up = &drafts[u].item;
            if up.source == b.source && up.arch == b.architecture {
                continue; // built against its own earlier version
            }
            out.push((b, u, ev));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{carries_code, propagates_through};
    use crate::campaign::{Evidence, EvidenceKind, FoundBy, PlannedItem, Propagation};

    #[test]
    fn declared_propagation_needs_a_declaration_on_that_binary() {
        let ev = |kind, binary: &str| Evidence {
            kind,
            binary: binary.into(),
            package: "libvuln".into(),
            version: "1.0-1".into(),
            vulnerable: true,
            through: None,
        };
        let item = PlannedItem {
            suite: "sid".into(),
            source: "libmid".into(),
            arch: "amd64".into(),
            source_version: "1.0-1".into(),
            version: "1.0-1".into(),
            build_sha256: None,
            binaries: vec!["libmid-dev".into(), "libmid1".into(), "libother-dev".into()],
            wave: 1,
            cycle: None,
            found_by: FoundBy::Both,
            evidence: vec![
                ev(EvidenceKind::StaticBuiltUsing, "libmid-dev"),
                ev(EvidenceKind::StaticBuiltUsing, "libmid1"),
                ev(EvidenceKind::InstalledBuildDepends, "libother-dev"),
            ],
            notes: vec![],
            after: vec![],
            upstream: vec![],
            planned_version: None,
        };
        assert!(propagates_through(&item, "libmid-dev", Propagation::Declared));
        assert!(!propagates_through(&item, "libmid1", Propagation::Declared), "a runtime package carries no code");
        assert!(!propagates_through(&item, "libother-dev", Propagation::Declared), "built with it, declares nothing");
        assert!(propagates_through(&item, "libother-dev", Propagation::Dev));
        assert!(!propagates_through(&item, "libmid1", Propagation::Dev));
    }

    #[test]
    fn only_packages_that_carry_code_propagate() {
        for yes in ["libgmp-dev", "golang-golang-x-sys-dev", "librust-regex-dev", "libc6-dev", "busybox-static",
                    "libssl-dev-static", "rust-src-source"] {
            assert!(carries_code(yes), "{yes}");
        }
        for no in ["libgmp10", "libc6", "gcc-12", "dpkg-dev-el", "debhelper", "libdevil1c2", "python3-dev-tools"] {
            assert!(!carries_code(no), "{no}");
        }
    }
}

//! Tracking: saved items follow the evidence.
//!
//! After every ingested batch of buildinfos and every archive import, the items whose source
//! was touched are re-evaluated: what does the suite ship now for (source, arch), which build
//! did those bytes come from, and what was installed when it was built? The answer is an
//! [`Observation`]; [`Standing::after`] turns it into a state, and every change is stored as an
//! event with its evidence.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use debversion::Version;

use super::{
    CampaignRecord, Check, Coverage, Evidence, EvidenceKind, How, ItemRecord, Observation, PlannedItem, Standing,
    Transition, Verdict, version,
};
use crate::model::{PkgVer, ShippedBinary, ShippedBy};
use crate::rebuild::coverage::{BuildCheck, check_build};
use crate::rebuild::{AttemptRecord, JobRecord, JobState};
use crate::store::{ArchiveStore, BuildStore, CampaignStore, IndexStore, RebuildStore, StoreError};

/// Re-evaluate saved items: those of these source packages, or all when `None`. Returns the
/// state changes the facts call for (recorded unless another coordinator recorded them first).
pub async fn refresh<S: CampaignStore + RebuildStore + BuildStore + ArchiveStore + IndexStore>(store: &S, sources: Option<&[String]>) -> Result<Vec<Transition>, StoreError> {
    let items = store.campaign_items(None, sources).await?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_campaign: BTreeMap<i64, Vec<ItemRecord>> = BTreeMap::new();
    for it in items {
        by_campaign.entry(it.campaign_id).or_default().push(it);
    }
    let mut changes = Vec::new();
    for (id, items) in by_campaign {
        let Some(campaign) = store.campaign(id).await? else {
            continue;
        };
        changes.extend(evaluate(store, &campaign, &items).await?);
    }
    let applied = store.record_transitions(&changes).await?;
    if applied > 0 {
        tracing::info!(changes = applied, "campaign items changed state");
    }
    Ok(changes)
}

/// The state changes the current facts call for, for `items` of `campaign`.
pub async fn evaluate<S: CampaignStore + RebuildStore + BuildStore + ArchiveStore + IndexStore>(
    store: &S,
    campaign: &CampaignRecord,
    items: &[ItemRecord],
) -> Result<Vec<Transition>, StoreError> {
    let Ok(fixed) = Version::from_str(&campaign.fixed_version) else {
        return Err(StoreError::Corrupt(format!(
            "campaign {}: stored fixed version {:?} does not parse",
            campaign.id, campaign.fixed_version
        )));
    };
    // Installed packages that matter: the library's binaries and the upstream thresholds.
    let mut names = store.binaries_of_source(&campaign.library).await?;
    let library_binaries = names.clone();
    for it in items {
        names.extend(it.planned.upstream.iter().map(|u| u.package.clone()));
    }
    names.sort();
    names.dedup();
    let pvs: HashMap<i64, PkgVer> = store.pkgvers_named(&names).await?.into_iter().map(|p| (p.id, p)).collect();

    let mut by_suite: BTreeMap<&str, Vec<&ItemRecord>> = BTreeMap::new();
    for it in items {
        by_suite.entry(&it.planned.suite).or_default().push(it);
    }
    let mut out = Vec::new();
    for (suite, items) in by_suite {
        let mut sources: Vec<String> = items.iter().map(|i| i.planned.source.clone()).collect();
        sources.sort();
        sources.dedup();
        let shipped = store.shipped_binaries(suite, ShippedBy::Sources(&sources)).await?;
        let mut builds: Vec<i64> = shipped.iter().filter_map(|b| b.build.as_ref().map(|(id, _, _)| *id)).collect();
        builds.sort_unstable();
        builds.dedup();
        let mut installed: HashMap<i64, Vec<&PkgVer>> = HashMap::new();
        if !builds.is_empty() && !pvs.is_empty() {
            let ids: Vec<i64> = pvs.keys().copied().collect();
            for (build, pv) in store.builds_with(&ids, None, None).await? {
                if builds.binary_search(&build).is_ok()
                    && let Some(p) = pvs.get(&pv)
                {
                    installed.entry(build).or_default().push(p);
                }
            }
        }
        let observed: Vec<(Observation, Vec<i64>)> =
            items.iter().map(|it| observe(&it.planned, &shipped, &installed, &library_binaries, &fixed)).collect();
        // What the verification rebuilds of fixed items' builds say.
        let mut fixed_builds: Vec<i64> = observed
            .iter()
            .filter(|(o, _)| matches!(o, Observation::Newer { verdict: Verdict::Fixed(..), .. }))
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        fixed_builds.sort_unstable();
        fixed_builds.dedup();
        let (jobs, attempts) = if fixed_builds.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let jobs = store.jobs_of_builds(&fixed_builds).await?;
            let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
            let attempts = store.attempts(&ids).await?;
            (jobs, attempts)
        };
        for (it, (mut obs, builds)) in items.iter().zip(observed) {
            if let Observation::Newer { verdict: Verdict::Fixed(_, check), .. } = &mut obs {
                *check = verification(&builds, &shipped, &jobs, &attempts);
            }
            if let Some(mut t) = transition(it, &obs) {
                t.builds = builds;
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// What the verification rebuilds say about the builds a fixed item ships: covered when every
/// one is verified on attestations with the bytes the suite ships from it; otherwise the
/// gravest missing condition (disagreement, then unreproducible, then unverified), in words.
fn verification(builds: &[i64], shipped: &[ShippedBinary], jobs: &[JobRecord], attempts: &[AttemptRecord]) -> Check {
    let mut attestations = Vec::new();
    let mut gaps: Vec<(Coverage, String)> = Vec::new();
    for &build in builds {
        let mine: Vec<&JobRecord> = jobs.iter().filter(|j| j.build_id == build).collect();
        let states: Vec<(i64, JobState)> = mine.iter().map(|j| (j.id, j.state)).collect();
        let tried: Vec<AttemptRecord> =
            attempts.iter().filter(|a| mine.iter().any(|j| j.id == a.job_id)).cloned().collect();
        let mut bytes: Vec<String> = shipped
            .iter()
            .filter(|b| b.build.as_ref().is_some_and(|(id, _, _)| *id == build))
            .map(|b| b.sha256.clone())
            .collect();
        bytes.sort();
        bytes.dedup();
        // k as the scheduler applied it when it marked the job verified.
        let k = mine.iter().filter(|j| j.state == JobState::Verified).map(|j| j.verified).max().unwrap_or(1);
        let sha = shipped
            .iter()
            .find_map(|b| b.build.as_ref().filter(|(id, _, _)| *id == build).map(|(_, sha, _)| sha.clone()))
            .or_else(|| mine.first().map(|j| j.build_sha256.clone()))
            .unwrap_or_default();
        let short = debcover_formats::prefix(&sha, 12);
        match check_build(&states, &tried, &bytes, k) {
            BuildCheck::Verified { attestors } => attestations.extend(attestors.into_iter().map(|a| Evidence {
                kind: EvidenceKind::Attestation,
                binary: sha.clone(),
                package: a.node,
                version: a.attestation_sha256,
                vulnerable: false,
                through: None,
            })),
            BuildCheck::Unverified { why } => gaps.push((Coverage::Unverified, format!("build {short}: {why}"))),
            BuildCheck::Unreproducible { why } => gaps.push((Coverage::Unreproducible, format!("build {short}: {why}"))),
            BuildCheck::Disagreement { disagreements } => {
                let words: Vec<String> = disagreements.iter().map(|d| d.to_string()).collect();
                gaps.push((Coverage::Disagreement, format!("build {short}: {}", words.join("; "))))
            }
        }
    }
    if builds.is_empty() {
        gaps.push((Coverage::Unverified, "no build known for the shipped binaries".into()));
    }
    let rank = |c: Coverage| match c {
        Coverage::Disagreement => 0,
        Coverage::Unreproducible => 1,
        _ => 2,
    };
    match gaps.iter().map(|(g, _)| *g).min_by_key(|g| rank(*g)) {
        None => Check::Covered(attestations),
        Some(gap) => Check::Missing { gap, why: gaps.into_iter().map(|(_, w)| w).collect::<Vec<_>>().join("; ") },
    }
}

/// The change `obs` calls for on item `it`, if any. A new version in an unchanged state is
/// recorded too (e.g. a second binNMU that is still vulnerable).
fn transition(it: &ItemRecord, obs: &Observation) -> Option<Transition> {
    let (version, reason, evidence) = match obs {
        Observation::Original => (
            it.planned.version.clone(),
            format!("still ships the vulnerable {} {}", it.planned.source, it.planned.version),
            Vec::new(),
        ),
        Observation::Gone => (
            it.current_version.clone(),
            format!(
                "no binary of {} on {} is shipped in {} any more",
                it.planned.source, it.planned.arch, it.planned.suite
            ),
            Vec::new(),
        ),
        Observation::Newer { version, how, verdict } => {
            let how_text = match how {
                How::Rebuild => format!("rebuilt as {version}"),
                How::MaintainerUpload => format!("superseded by the upload of {version}"),
            };
            match verdict {
                Verdict::Pending(why) => (version.clone(), format!("{how_text}; {why}"), Vec::new()),
                Verdict::Vulnerable(ev) => {
                    let words: Vec<String> = ev.iter().map(|e| e.to_string()).collect();
                    (version.clone(), format!("{how_text}, but built against {}", words.join("; ")), ev.clone())
                }
                Verdict::Fixed(ev, check) => {
                    let words: Vec<String> = ev.iter().map(|e| e.to_string()).collect();
                    let basis = if words.is_empty() {
                        "its buildinfo shows no vulnerable package installed".to_owned()
                    } else {
                        format!("its buildinfo shows {}", words.join("; "))
                    };
                    let mut evidence = ev.clone();
                    let verified = match check {
                        Check::Covered(att) => {
                            let who: Vec<&str> = att.iter().map(|a| a.package.as_str()).collect();
                            evidence.extend(att.iter().cloned());
                            format!("covered: reproduced bit for bit in attested rebuilds by {}", who.join(", "))
                        }
                        Check::Missing { gap, why } => format!("not covered ({gap}): {why}"),
                    };
                    (version.clone(), format!("{how_text}; {basis}; shipped bytes match the buildinfo; {verified}"), evidence)
                }
            }
        }
    };
    let Standing { state: to, coverage } = Standing::after(obs);
    // A fixed item's verification moves on (another attested reproduction) without changing
    // its coverage: the new reason is recorded too.
    let verifying = matches!(obs, Observation::Newer { verdict: Verdict::Fixed(..), .. }) && reason != it.reason;
    if to == it.state && version == it.current_version && coverage == it.coverage && !verifying {
        return None;
    }
    Some(Transition {
        item_id: it.id,
        from: it.state,
        to,
        version,
        reason,
        evidence,
        campaign_id: it.campaign_id,
        builds: Vec::new(),
        coverage,
    })
}

/// What the suite and the buildinfos say about one item now, with the builds behind the
/// shipped version when they were judged.
fn observe(
    item: &PlannedItem,
    shipped: &[ShippedBinary],
    installed: &HashMap<i64, Vec<&PkgVer>>,
    library_binaries: &[String],
    fixed: &Version,
) -> (Observation, Vec<i64>) {
    let mine: Vec<&ShippedBinary> = shipped
        .iter()
        .filter(|b| {
            b.source == item.source
                && if item.arch == "all" { b.architecture == "all" } else { b.architecture == item.arch }
        })
        .collect();
    let Some(newest) = mine.iter().filter_map(|b| version(&b.version).map(|v| (v, *b))).max_by(|a, b| a.0.cmp(&b.0))
    else {
        return (Observation::Gone, Vec::new());
    };
    let (current, newest) = newest;
    match version(&item.version) {
        Some(original) if current <= original => return (Observation::Original, Vec::new()),
        _ => {}
    }
    let how = if newest.source_version == item.source_version
        || item.planned_version.as_deref() == Some(newest.source_version.as_str())
    {
        How::Rebuild
    } else {
        How::MaintainerUpload
    };
    let (verdict, builds) = verdict(item, &mine, &current, installed, library_binaries, fixed);
    (Observation::Newer { version: newest.version.clone(), how, verdict }, builds)
}

fn verdict(
    item: &PlannedItem,
    mine: &[&ShippedBinary],
    current: &Version,
    installed: &HashMap<i64, Vec<&PkgVer>>,
    library_binaries: &[String],
    fixed: &Version,
) -> (Verdict, Vec<i64>) {
    let newest: Vec<&&ShippedBinary> = mine.iter().filter(|b| version(&b.version).as_ref() == Some(current)).collect();
    let mut builds = Vec::new();
    for b in &newest {
        match &b.build {
            None => {
                return (Verdict::Pending(format!(
                    "no buildinfo ingested yet for {} {} ({})",
                    b.package, b.version, b.architecture
                )), Vec::new());
            }
            Some((_, sha, false)) => {
                return (
                    Verdict::Pending(format!(
                        "the shipped {} {} differs from the bytes its buildinfo {} lists (linked by name only)",
                        b.package,
                        b.version,
                        debcover_formats::prefix(&sha, 12)
                    )),
                    Vec::new(),
                );
            }
            Some((id, _, true)) => builds.push((*id, b.package.clone())),
        }
    }
    builds.sort();
    builds.dedup_by_key(|(id, _)| *id);
    let ids: Vec<i64> = builds.iter().map(|(id, _)| *id).collect();
    let mut vulnerable = Vec::new();
    let mut fine = Vec::new();
    for (build, binary) in builds {
        for pv in installed.get(&build).into_iter().flatten() {
            let Some(v) = version(&pv.version) else {
                continue;
            };
            let mut ev = Evidence {
                kind: EvidenceKind::InstalledBuildDepends,
                binary: binary.clone(),
                package: pv.name.clone(),
                version: pv.version.clone(),
                vulnerable: false,
                through: None,
            };
            if library_binaries.contains(&pv.name) {
                ev.vulnerable = debcover_formats::relation::strip_binnmu(&v) < *fixed;
            }
            for up in item.upstream.iter().filter(|u| u.package == pv.name) {
                if version(&up.max_version).is_some_and(|max| v <= max) {
                    ev.vulnerable = true;
                    ev.through = Some(up.through.clone());
                }
            }
            let relevant = library_binaries.contains(&pv.name) || item.upstream.iter().any(|u| u.package == pv.name);
            if ev.vulnerable {
                vulnerable.push(ev);
            } else if relevant {
                fine.push(ev);
            }
        }
    }
    // The verification check is filled in by `evaluate`, which reads the rebuilds.
    let unchecked = Check::Missing { gap: Coverage::Unverified, why: "not checked yet".into() };
    (if vulnerable.is_empty() { Verdict::Fixed(fine, unchecked) } else { Verdict::Vulnerable(vulnerable) }, ids)
}

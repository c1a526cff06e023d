//! Campaigns: plan one library fix, save it, re-judge its items as evidence arrives (queuing
//! the builds that fixed items for verification), and render its exports.

use std::collections::BTreeMap;

use debcover_core::campaign::export::{self, ExportContext};
use debcover_core::campaign::{
    self, CampaignRecord, CampaignSpec, CycleGroup, Detail, ItemEvent, ItemRecord, Mode, Plan, PlannedItem, Transition,
    analysis, track,
};
use debcover_core::store::{Store, now_unix};

use super::Result;
use crate::Coordinator;

/// Changelog trailer used when the client names nobody.
pub const DEFAULT_CHANGED_BY: &str = "Debian Security Team <team@security.debian.org>";

/// Re-evaluate campaign items after new evidence (of these sources, or all), and queue the
/// builds that fixed items for verification. A failure here is logged, not returned: the
/// evidence is stored, and the next ingest or `campaign status` evaluates it again.
pub async fn refresh<S: Store>(c: &Coordinator<S>, sources: Option<&[String]>) {
    if sources.is_some_and(|s| s.is_empty()) {
        return;
    }
    match track::refresh(&*c.store, sources).await {
        Ok(changes) => {
            if let Err(e) = super::scheduler::queue_fixed(c, &changes).await {
                tracing::error!(error = %e, "queuing verification of fixed campaign items failed");
            }
        }
        Err(e) => tracing::error!(error = %e, "re-evaluating campaign items failed"),
    }
}

/// Record `changes` and queue the builds of fixed items for verification; true when a change
/// was recorded.
async fn apply<S: Store>(c: &Coordinator<S>, changes: &[Transition]) -> Result<bool> {
    let applied = c.store.record_transitions(changes).await?;
    if let Err(e) = super::scheduler::queue_fixed(c, changes).await {
        tracing::error!(error = %e, "queuing verification of fixed campaign items failed");
    }
    Ok(applied > 0)
}

/// A preview: the impact analysis and its rebuild plan, nothing saved. `detail`: how much
/// evidence per item the answer needs.
pub async fn plan<S: Store>(c: &Coordinator<S>, spec: &CampaignSpec, detail: Detail) -> Result<(CampaignRecord, Plan)> {
    let plan = analysis::analyze(&*c.store, &c.archive, spec, detail).await?;
    let record = CampaignRecord { created_at: 0, ..record_of(spec, &plan) };
    Ok((record, plan))
}

/// Save a campaign: its plan (every piece of evidence kept, whatever an answer shows) and
/// items, judged at once on the evidence already stored (a campaign opened after the fix
/// shipped). Returns the saved record, the plan and the items.
pub async fn create<S: Store>(c: &Coordinator<S>, spec: &CampaignSpec) -> Result<(CampaignRecord, Plan, Vec<ItemRecord>)> {
    let plan = analysis::analyze(&*c.store, &c.archive, spec, Detail::Full).await?;
    let mut record = record_of(spec, &plan);
    record.id = c.store.create_campaign(&record, &plan.items).await?;
    tracing::info!(id = record.id, library = %record.library, fixed = %record.fixed_version,
        items = plan.items.len(), waves = plan.waves(), "campaign created");
    let items = c.store.campaign_items(Some(record.id), None).await?;
    let changes = track::evaluate(&*c.store, &record, &items).await?;
    let items = if apply(c, &changes).await? { c.store.campaign_items(Some(record.id), None).await? } else { items };
    Ok((record, plan, items))
}

/// A saved campaign and its items.
pub async fn load<S: Store>(c: &Coordinator<S>, id: i64) -> Result<(CampaignRecord, Vec<ItemRecord>)> {
    let record = c.store.campaign(id).await?.ok_or(campaign::CampaignError::NoSuchCampaign(id))?;
    let items = c.store.campaign_items(Some(id), None).await?;
    Ok((record, items))
}

/// A saved campaign and its items, judged on the current evidence first (even if a refresh
/// after an ingest failed).
pub async fn status<S: Store>(c: &Coordinator<S>, id: i64) -> Result<(CampaignRecord, Vec<ItemRecord>)> {
    let (record, items) = load(c, id).await?;
    let changes = track::evaluate(&*c.store, &record, &items).await?;
    let items = if apply(c, &changes).await? { c.store.campaign_items(Some(record.id), None).await? } else { items };
    Ok((record, items))
}

/// A saved campaign's audit trail, oldest first.
pub async fn events<S: Store>(c: &Coordinator<S>, id: i64) -> Result<Vec<ItemEvent>> {
    load(c, id).await?;
    Ok(c.store.campaign_events(id).await?)
}

/// A saved campaign, its items and its plan rebuilt from them.
pub async fn saved<S: Store>(c: &Coordinator<S>, id: i64) -> Result<(CampaignRecord, Vec<ItemRecord>, Plan)> {
    let (record, items) = load(c, id).await?;
    let bins = c.store.binaries_of_source(&record.library).await?;
    let plan = saved_plan(&record, &items, bins);
    Ok((record, items, plan))
}

/// The exports of `plan` in its campaign's mode, changelog entries signed by `changed_by`
/// (empty: [`DEFAULT_CHANGED_BY`]).
pub fn exports(c: &CampaignRecord, plan: &Plan, changed_by: &str) -> debcover_wire::campaign::Exports {
    let date = chrono::Utc::now().to_rfc2822();
    let ctx = ExportContext {
        id: (c.id != 0).then_some(c.id),
        library: &c.library,
        fixed: &c.fixed_version,
        advisories: &c.advisories,
        title: &c.title,
        changed_by: if changed_by.is_empty() { DEFAULT_CHANGED_BY } else { changed_by },
        date: &date,
    };
    match c.mode {
        Mode::Binnmu => debcover_wire::campaign::Exports { wanna_build: export::wanna_build(plan, &ctx), uploads: Vec::new() },
        Mode::Sourceful => debcover_wire::campaign::Exports { wanna_build: String::new(), uploads: export::uploads(plan, &ctx) },
    }
}

pub(crate) fn record_of(spec: &CampaignSpec, plan: &Plan) -> CampaignRecord {
    CampaignRecord {
        id: 0,
        title: if spec.title.is_empty() { format!("{} {}", spec.library, spec.fixed) } else { spec.title.clone() },
        library: spec.library.clone(),
        fixed_version: spec.fixed.to_string(),
        suites: spec.suites.clone(),
        arches: spec.arches.clone(),
        mode: spec.mode,
        advisories: spec.advisories.clone(),
        max_depth: spec.max_depth,
        created_at: now_unix(),
        notes: {
            let mut notes = plan.notes.clone();
            notes.push(format!(
                "transitive dependents followed through {} binaries, at most {} waves deep",
                match spec.propagate {
                    campaign::Propagation::Declared => "static libraries that declare what they embed",
                    campaign::Propagation::Dev => "every -dev/-static/-source",
                },
                spec.max_depth
            ));
            notes
        },
    }
}

/// A saved campaign's plan export in its mode, as `campaign export` renders it: wanna-build
/// lines (`binnmu`) or the sourceful uploads as text (`sourceful`). For the web views.
pub fn export_text(c: &CampaignRecord, items: &[ItemRecord], library_binaries: Vec<String>) -> String {
    let plan = saved_plan(c, items, library_binaries);
    let date = chrono::Utc::now().to_rfc2822();
    let ctx = ExportContext {
        id: (c.id != 0).then_some(c.id),
        library: &c.library,
        fixed: &c.fixed_version,
        advisories: &c.advisories,
        title: &c.title,
        changed_by: DEFAULT_CHANGED_BY,
        date: &date,
    };
    match c.mode {
        Mode::Binnmu => export::wanna_build(&plan, &ctx),
        Mode::Sourceful => export::uploads_text(&plan, &ctx),
    }
}

/// The plan of a saved campaign, rebuilt from its items.
pub(crate) fn saved_plan(c: &CampaignRecord, items: &[ItemRecord], library_binaries: Vec<String>) -> Plan {
    let mut groups: BTreeMap<u32, CycleGroup> = BTreeMap::new();
    for it in items {
        if let Some(g) = it.planned.cycle {
            let e = groups.entry(g).or_insert_with(|| CycleGroup { id: g, members: Vec::new(), wave: it.planned.wave });
            e.members.push(it.planned.key());
        }
    }
    let mut planned: Vec<PlannedItem> = items.iter().map(|i| i.planned.clone()).collect();
    planned.sort_by(|a, b| (a.wave, &a.suite, &a.source, &a.arch).cmp(&(b.wave, &b.suite, &b.source, &b.arch)));
    Plan {
        items: planned,
        cycles: groups.into_values().collect(),
        library_binaries,
        notes: c.notes.clone(),
        beyond_depth: 0,
    }
}

//! The `Campaigns` gRPC service: requests are validated and converted to domain types here,
//! once; the work is done by [`crate::campaign`].

use std::collections::BTreeMap;
use std::sync::Arc;

use debcover_proto::v1 as pb;
use debcover_proto::v1::campaigns_server::Campaigns;
use tonic::{Request, Response, Status};

use super::convert::store_status;
use crate::campaign::export::{self, ExportContext};
use crate::campaign::{
    self, CampaignError, CampaignRecord, CampaignSpec, CycleGroup, Evidence, ItemRecord, Mode, Plan, PlannedItem,
    analysis, track,
};
use crate::storage::{CampaignStore, now_unix};

/// Changelog trailer used when the client names nobody.
pub const DEFAULT_CHANGED_BY: &str = "Debian Security Team <team@security.debian.org>";

/// The campaign service over a store.
pub struct CampaignService<S> {
    store: Arc<S>,
    /// Suite snapshots for impact analysis, valid for one query generation.
    archive: crate::campaign::snapshot::ArchiveCache,
    /// The rebuild scheduler: builds that fix items are queued for verification through it.
    scheduler: Option<Arc<super::rebuild::RebuildSettings>>,
}

impl<S: CampaignStore> CampaignService<S> {
    /// A service over `store`.
    pub fn new(store: Arc<S>) -> Self {
        CampaignService { store, archive: crate::campaign::snapshot::ArchiveCache::new(), scheduler: None }
    }

    /// The same service, queuing builds that fix items for verification through `scheduler`.
    pub fn with_scheduler(mut self, scheduler: Arc<super::rebuild::RebuildSettings>) -> Self {
        self.scheduler = Some(scheduler);
        self
    }
}

impl<S: crate::storage::RebuildStore> CampaignService<S> {
    /// Record `changes` and queue the builds of fixed items for verification; true when a
    /// change was recorded.
    async fn apply(&self, changes: &[campaign::Transition]) -> Result<bool, Status> {
        let applied = self.store.record_transitions(changes).await.map_err(store_status)?;
        if let Some(settings) = &self.scheduler
            && let Err(e) = super::rebuild::queue_fixed(&*self.store, settings, changes).await
        {
            tracing::error!(error = %e, "queuing verification of fixed campaign items failed");
        }
        Ok(applied > 0)
    }
}

/// How much of each item a plan answer carries (`CampaignSpec.items`; see the ITEM SHAPES of
/// `campaigns.proto`). A property of the answer only: the analysis is the same for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemDetail {
    /// Every field (the default).
    Full,
    /// Without `upstream`, and only the first vulnerable evidence (what a table shows).
    Summary,
    /// Without `evidence`, `notes` and `upstream`.
    Brief,
    /// No items.
    None,
}

impl ItemDetail {
    /// `full`, `summary`, `brief` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemDetail::Full => "full",
            ItemDetail::Summary => "summary",
            ItemDetail::Brief => "brief",
            ItemDetail::None => "none",
        }
    }
}

impl std::str::FromStr for ItemDetail {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "" | "full" => Ok(ItemDetail::Full),
            "summary" => Ok(ItemDetail::Summary),
            "brief" => Ok(ItemDetail::Brief),
            "none" => Ok(ItemDetail::None),
            other => Err(format!("unknown item shape {other:?}: expected full, summary, brief or none")),
        }
    }
}

/// The shape and page of the items a plan answer carries.
#[derive(Debug, Clone, Copy)]
struct Shape {
    detail: ItemDetail,
    offset: usize,
    /// `None`: every item after the offset.
    limit: Option<usize>,
}

impl Shape {
    fn from_wire(items: &str, offset: u32, limit: u32) -> Result<Shape, Status> {
        let detail = items.parse().map_err(|e: String| Status::invalid_argument(format!("items: {e}")))?;
        Ok(Shape { detail, offset: offset as usize, limit: (limit != 0).then_some(limit as usize) })
    }
}

fn campaign_status(e: CampaignError) -> Status {
    match e {
        CampaignError::UnknownLibrary(_) | CampaignError::UnknownSuite { .. } | CampaignError::NoSuchCampaign(_) => {
            Status::not_found(e.to_string())
        }
        CampaignError::UnknownArch { .. } => Status::invalid_argument(e.to_string()),
        CampaignError::Store(s) => store_status(s),
    }
}

/// Validate a spec from the wire.
fn spec_from_wire(r: pb::CampaignSpec) -> Result<CampaignSpec, Status> {
    if !debcover_formats::relation::is_valid_package_name(&r.library) {
        return Err(Status::invalid_argument(format!(
            "library: {:?} is not a source package name (lower-case letters, digits, + - .)",
            r.library
        )));
    }
    if r.fixed_version.is_empty() {
        return Err(Status::invalid_argument("fixed_version: required (the first version with the fix)"));
    }
    let fixed = debcover_formats::relation::parse_version(&r.fixed_version)
        .map_err(|e| Status::invalid_argument(format!("fixed_version {:?}: {}", r.fixed_version, e.message)))?;
    if r.suites.is_empty() {
        return Err(Status::invalid_argument("suites: at least one suite is required"));
    }
    for a in &r.architectures {
        if !debcover_formats::relation::is_valid_arch(a) {
            return Err(Status::invalid_argument(format!("architectures: {a:?} is not an architecture name")));
        }
    }
    let mode = if r.mode.is_empty() { Mode::Binnmu } else { r.mode.parse().map_err(Status::invalid_argument)? };
    let propagate = if r.propagate.is_empty() {
        campaign::Propagation::Declared
    } else {
        r.propagate.parse().map_err(|e: String| Status::invalid_argument(format!("propagate: {e}")))?
    };
    let mut suites = r.suites;
    suites.sort();
    suites.dedup();
    let mut arches = r.architectures;
    arches.sort();
    arches.dedup();
    Ok(CampaignSpec {
        library: r.library,
        fixed,
        suites,
        arches,
        mode,
        title: r.title,
        advisories: r.advisories,
        max_depth: if r.max_depth == 0 { campaign::DEFAULT_MAX_DEPTH } else { r.max_depth },
        propagate,
    })
}

fn record_of(spec: &CampaignSpec, plan: &Plan) -> CampaignRecord {
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

fn evidence(e: &Evidence) -> pb::Evidence {
    pb::Evidence {
        kind: e.kind.as_str().to_owned(),
        binary: e.binary.clone(),
        package: e.package.clone(),
        version: e.version.clone(),
        vulnerable: e.vulnerable,
        through: e.through.clone().unwrap_or_default(),
    }
}

fn evidence_owned(e: Evidence) -> pb::Evidence {
    pb::Evidence {
        kind: e.kind.as_str().to_owned(),
        binary: e.binary,
        package: e.package,
        version: e.version,
        vulnerable: e.vulnerable,
        through: e.through.unwrap_or_default(),
    }
}

fn item(p: &PlannedItem, saved: Option<&ItemRecord>) -> pb::CampaignItem {
    item_owned(p.clone(), saved, ItemDetail::Full, &mut Vec::new())
}

/// Free `garbage` on a blocking thread when there is a runtime: a suite-wide plan is hundreds of
/// thousands of small allocations, and the answer need not wait for them to be freed.
fn drop_later<T: Send + 'static>(garbage: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn_blocking(move || drop(garbage));
        }
        Err(_) => drop(garbage),
    }
}

/// An item on the wire in shape `detail` (never [`ItemDetail::None`]: no item is sent then);
/// the evidence left out goes to `garbage`.
fn item_owned(
    mut p: PlannedItem,
    saved: Option<&ItemRecord>,
    detail: ItemDetail,
    garbage: &mut Vec<Vec<Evidence>>,
) -> pb::CampaignItem {
    if detail != ItemDetail::Full {
        garbage.push(std::mem::take(&mut p.evidence));
    }
    let (evidence, notes, upstream) = match detail {
        ItemDetail::Full => (
            p.evidence.into_iter().map(evidence_owned).collect(),
            p.notes,
            p.upstream
                .into_iter()
                .map(|u| pb::UpstreamThreshold { package: u.package, max_version: u.max_version, through: u.through })
                .collect(),
        ),
        ItemDetail::Summary => {
            let first = garbage.last().and_then(|ev| ev.iter().find(|e| e.vulnerable)).map(evidence);
            (first.into_iter().collect(), p.notes, Vec::new())
        }
        ItemDetail::Brief | ItemDetail::None => (Vec::new(), Vec::new(), Vec::new()),
    };
    pb::CampaignItem {
        suite: p.suite,
        source: p.source,
        architecture: p.arch,
        source_version: p.source_version,
        version: p.version,
        build_id: p.build_sha256.unwrap_or_default(),
        binaries: p.binaries,
        wave: p.wave,
        cycle: p.cycle.unwrap_or(0),
        found_by: p.found_by.as_str().to_owned(),
        evidence,
        notes,
        after: p.after,
        planned_version: p.planned_version.unwrap_or_default(),
        state: saved.map(|s| s.state.to_string()).unwrap_or_default(),
        reason: saved.map(|s| s.reason.clone()).unwrap_or_default(),
        current_version: saved.map(|s| s.current_version.clone()).unwrap_or_default(),
        coverage: saved.map(|s| s.coverage.to_string()).unwrap_or_default(),
        detail_json: String::new(),
        upstream,
    }
}

fn info(c: &CampaignRecord, counts: &[(String, u64)]) -> pb::CampaignInfo {
    pb::CampaignInfo {
        id: c.id,
        title: c.title.clone(),
        library: c.library.clone(),
        fixed_version: c.fixed_version.clone(),
        suites: c.suites.clone(),
        architectures: c.arches.clone(),
        mode: c.mode.as_str().to_owned(),
        advisories: c.advisories.clone(),
        max_depth: c.max_depth,
        created_at: c.created_at,
        counts: counts.iter().map(|(s, n)| pb::StateCount { state: s.clone(), count: *n }).collect(),
    }
}

/// The plan message, with the exports rendered for the campaign's mode and the items in `shape`.
fn plan_message(c: &CampaignRecord, mut plan: Plan, saved: &[ItemRecord], changed_by: &str, shape: Shape) -> pb::CampaignPlan {
    let started = std::time::Instant::now();
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
    let (wanna_build, uploads) = match c.mode {
        Mode::Binnmu => (export::wanna_build(&plan, &ctx), Vec::new()),
        Mode::Sourceful => (String::new(), export::uploads(&plan, &ctx)),
    };
    let by_key: BTreeMap<(&str, &str, &str), &ItemRecord> = saved
        .iter()
        .map(|s| ((s.planned.suite.as_str(), s.planned.source.as_str(), s.planned.arch.as_str()), s))
        .collect();
    let waves = plan.waves();
    let item_count = plan.items.len() as u64;
    let mut all = std::mem::take(&mut plan.items);
    let mut garbage = Vec::new();
    let items: Vec<pb::CampaignItem> = if shape.detail == ItemDetail::None {
        Vec::new()
    } else {
        let end = shape.limit.map_or(all.len(), |n| shape.offset.saturating_add(n)).min(all.len());
        let start = shape.offset.min(end);
        all.drain(start..end)
            .map(|p| {
                let s = by_key.get(&(p.suite.as_str(), p.source.as_str(), p.arch.as_str())).copied();
                item_owned(p, s, shape.detail, &mut garbage)
            })
            .collect()
    };
    drop_later((all, garbage));
    tracing::debug!(items = items.len(), detail = shape.detail.as_str(), ms = started.elapsed().as_millis() as u64,
        "campaign: plan answer");
    pb::CampaignPlan {
        campaign: Some(info(c, &counts(saved))),
        item_count,
        items,
        cycles: plan.cycles.into_iter().map(|g| pb::CycleGroup { id: g.id, members: g.members, wave: g.wave }).collect(),
        notes: plan.notes,
        beyond_depth: plan.beyond_depth as u64,
        library_binaries: plan.library_binaries,
        waves,
        wanna_build,
        uploads: uploads
            .into_iter()
            .map(|u| pb::Upload {
                wave: u.wave,
                suite: u.suite,
                source: u.source,
                current_version: u.current_version,
                version: u.version,
                architectures: u.arches,
                changelog: u.changelog,
            })
            .collect(),
    }
}

fn counts(saved: &[ItemRecord]) -> Vec<(String, u64)> {
    let mut m: BTreeMap<campaign::ItemState, u64> = BTreeMap::new();
    for s in saved {
        *m.entry(s.state).or_default() += 1;
    }
    m.into_iter().map(|(s, n)| (s.to_string(), n)).collect()
}

/// A saved campaign's plan export in its mode, as `ExportCampaign` renders it: wanna-build
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
fn saved_plan(c: &CampaignRecord, items: &[ItemRecord], library_binaries: Vec<String>) -> Plan {
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

impl<S: CampaignStore> CampaignService<S> {
    async fn load(&self, id: i64) -> Result<(CampaignRecord, Vec<ItemRecord>), Status> {
        let c = self
            .store
            .campaign(id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| campaign_status(CampaignError::NoSuchCampaign(id)))?;
        let items = self.store.campaign_items(Some(id), None).await.map_err(store_status)?;
        Ok((c, items))
    }
}

#[tonic::async_trait]
impl<S: crate::storage::RebuildStore> Campaigns for CampaignService<S> {
    async fn plan_campaign(&self, request: Request<pb::CampaignSpec>) -> Result<Response<pb::CampaignPlan>, Status> {
        let r = request.into_inner();
        let changed_by = r.changed_by.clone();
        let shape = Shape::from_wire(&r.items, r.item_offset, r.item_limit)?;
        let spec = spec_from_wire(r)?;
        // An answer without evidence needs none of the per-binary records.
        let detail = match shape.detail {
            ItemDetail::Full | ItemDetail::Summary => campaign::Detail::Full,
            ItemDetail::Brief | ItemDetail::None => campaign::Detail::Lean,
        };
        let plan = analysis::analyze(&*self.store, &self.archive, &spec, detail).await.map_err(campaign_status)?;
        let record = CampaignRecord { created_at: 0, ..record_of(&spec, &plan) };
        Ok(Response::new(plan_message(&record, plan, &[], &changed_by, shape)))
    }

    async fn create_campaign(&self, request: Request<pb::CampaignSpec>) -> Result<Response<pb::CampaignPlan>, Status> {
        let r = request.into_inner();
        let changed_by = r.changed_by.clone();
        let shape = Shape::from_wire(&r.items, r.item_offset, r.item_limit)?;
        let spec = spec_from_wire(r)?;
        // Saved items keep every piece of evidence, whatever the answer shows.
        let plan = analysis::analyze(&*self.store, &self.archive, &spec, campaign::Detail::Full)
            .await
            .map_err(campaign_status)?;
        let mut record = record_of(&spec, &plan);
        record.id = self.store.create_campaign(&record, &plan.items).await.map_err(store_status)?;
        tracing::info!(id = record.id, library = %record.library, fixed = %record.fixed_version,
            items = plan.items.len(), waves = plan.waves(), "campaign created");
        // Evidence may already show rebuilds (e.g. a campaign opened after the fix shipped).
        let items = self.store.campaign_items(Some(record.id), None).await.map_err(store_status)?;
        let changes = track::evaluate(&*self.store, &record, &items).await.map_err(store_status)?;
        let items = if self.apply(&changes).await? {
            self.store.campaign_items(Some(record.id), None).await.map_err(store_status)?
        } else {
            items
        };
        Ok(Response::new(plan_message(&record, plan, &items, &changed_by, shape)))
    }

    async fn list_campaigns(
        &self,
        _request: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        let list = self.store.campaigns().await.map_err(store_status)?;
        Ok(Response::new(pb::ListCampaignsResponse { campaigns: list.iter().map(|(c, n)| info(c, n)).collect() }))
    }

    async fn campaign_status(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignStatusResponse>, Status> {
        let (c, items) = self.load(request.into_inner().id).await?;
        // Judge on the current evidence, even if a refresh after an ingest failed.
        let changes = track::evaluate(&*self.store, &c, &items).await.map_err(store_status)?;
        let mut items = if self.apply(&changes).await? {
            self.store.campaign_items(Some(c.id), None).await.map_err(store_status)?
        } else {
            items
        };
        items.sort_by(|a, b| {
            (a.planned.wave, &a.planned.suite, &a.planned.source, &a.planned.arch).cmp(&(
                b.planned.wave,
                &b.planned.suite,
                &b.planned.source,
                &b.planned.arch,
            ))
        });
        let mut waves: BTreeMap<(u32, campaign::ItemState), u64> = BTreeMap::new();
        let mut coverage: BTreeMap<campaign::Coverage, u64> = BTreeMap::new();
        for it in &items {
            *waves.entry((it.planned.wave, it.state)).or_default() += 1;
            *coverage.entry(it.coverage).or_default() += 1;
        }
        Ok(Response::new(pb::CampaignStatusResponse {
            campaign: Some(info(&c, &counts(&items))),
            waves: waves
                .into_iter()
                .map(|((wave, state), count)| pb::WaveCount { wave, state: state.to_string(), count })
                .collect(),
            items: items.iter().map(|s| item(&s.planned, Some(s))).collect(),
            notes: c.notes.clone(),
            coverage: coverage.into_iter().map(|(c, count)| pb::StateCount { state: c.to_string(), count }).collect(),
        }))
    }

    async fn campaign_events(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignEventsResponse>, Status> {
        let id = request.into_inner().id;
        let _ = self.load(id).await?;
        let events = self.store.campaign_events(id).await.map_err(store_status)?;
        Ok(Response::new(pb::CampaignEventsResponse {
            events: events
                .iter()
                .map(|e| pb::CampaignEvent {
                    suite: e.suite.clone(),
                    item: e.item.clone(),
                    at: e.at,
                    from_state: e.from.map(|s| s.to_string()).unwrap_or_default(),
                    to_state: e.to.to_string(),
                    version: e.version.clone(),
                    reason: e.reason.clone(),
                    evidence: e.evidence.iter().map(evidence).collect(),
                })
                .collect(),
        }))
    }

    async fn export_campaign(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignPlan>, Status> {
        let r = request.into_inner();
        let shape = Shape::from_wire(&r.items, r.item_offset, r.item_limit)?;
        let (c, items) = self.load(r.id).await?;
        let bins = self.store.binaries_of_source(&c.library).await.map_err(store_status)?;
        let plan = saved_plan(&c, &items, bins);
        Ok(Response::new(plan_message(&c, plan, &items, &r.changed_by, shape)))
    }
}

//! The campaign service's messages as domain values and back: specs (checked field by field),
//! plans in the answer's item shape, statuses and the audit trail.

use std::collections::BTreeMap;

use debcover_core::campaign::{self, CampaignRecord, CampaignSpec, Evidence, ItemEvent, ItemRecord, Mode, Plan, PlannedItem};
use debcover_core::campaign::export::Upload;
use debcover_proto::v1 as pb;
use tonic::Status;

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
pub struct Shape {
    /// How much of each item.
    pub detail: ItemDetail,
    /// Items skipped first.
    pub offset: usize,
    /// `None`: every item after the offset.
    pub limit: Option<usize>,
}

impl Shape {
    /// From the request's `items`, `item_offset` and `item_limit`.
    pub fn from_wire(items: &str, offset: u32, limit: u32) -> Result<Shape, Status> {
        let detail = items.parse().map_err(|e: String| Status::invalid_argument(format!("items: {e}")))?;
        Ok(Shape { detail, offset: offset as usize, limit: (limit != 0).then_some(limit as usize) })
    }
}

/// A spec from the wire, checked: every refusal names its field.
pub fn spec_from_wire(r: pb::CampaignSpec) -> Result<CampaignSpec, Status> {
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

/// A piece of evidence on the wire.
pub fn evidence(e: &Evidence) -> pb::Evidence {
    pb::Evidence {
        kind: e.kind.as_str().to_owned(),
        binary: e.binary.clone(),
        package: e.package.clone(),
        version: e.version.clone(),
        vulnerable: e.vulnerable,
        through: e.through.clone().unwrap_or_default(),
    }
}

/// [`evidence`], moving its strings.
pub fn evidence_owned(e: Evidence) -> pb::Evidence {
    pb::Evidence {
        kind: e.kind.as_str().to_owned(),
        binary: e.binary,
        package: e.package,
        version: e.version,
        vulnerable: e.vulnerable,
        through: e.through.unwrap_or_default(),
    }
}

/// An item on the wire, every field, with its saved state when it has one.
pub fn item(p: &PlannedItem, saved: Option<&ItemRecord>) -> pb::CampaignItem {
    item_owned(p.clone(), saved, ItemDetail::Full, &mut Vec::new())
}

/// An item on the wire in shape `detail` (never [`ItemDetail::None`]: no item is sent then);
/// the evidence left out goes to `garbage`.
pub fn item_owned(
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

/// A campaign and its counts per state on the wire.
pub fn info(c: &CampaignRecord, counts: &[(String, u64)]) -> pb::CampaignInfo {
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

/// The rendered exports of a plan, in its campaign's mode: wanna-build lines (`binnmu`) or
/// sourceful uploads.
#[derive(Debug, Default)]
pub struct Exports {
    /// wanna-build `nmu`/`dw` lines.
    pub wanna_build: String,
    /// No-change uploads with their changelog entries.
    pub uploads: Vec<Upload>,
}

/// The plan message, with the items in `shape`: what is left out of it (items beyond the page,
/// evidence not shown) is returned to be freed later, since a suite-wide plan is hundreds of
/// thousands of small allocations and the answer need not wait for them.
pub fn plan_message(
    c: &CampaignRecord,
    mut plan: Plan,
    saved: &[ItemRecord],
    exports: Exports,
    shape: Shape,
) -> (pb::CampaignPlan, impl Send + 'static) {
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
    let message = pb::CampaignPlan {
        campaign: Some(info(c, &campaign::state_counts(saved))),
        item_count,
        items,
        cycles: plan.cycles.into_iter().map(|g| pb::CycleGroup { id: g.id, members: g.members, wave: g.wave }).collect(),
        notes: plan.notes,
        beyond_depth: plan.beyond_depth as u64,
        library_binaries: plan.library_binaries,
        waves,
        wanna_build: exports.wanna_build,
        uploads: exports
            .uploads
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
    };
    (message, (all, garbage))
}

/// A campaign's status: counts per wave and state and per coverage, and every item (sorted
/// by wave, suite, source, architecture) with its state and reason.
pub fn status_message(c: &CampaignRecord, mut items: Vec<ItemRecord>) -> pb::CampaignStatusResponse {
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
    pb::CampaignStatusResponse {
        campaign: Some(info(c, &campaign::state_counts(&items))),
        waves: waves.into_iter().map(|((wave, state), count)| pb::WaveCount { wave, state: state.to_string(), count }).collect(),
        items: items.iter().map(|s| item(&s.planned, Some(s))).collect(),
        notes: c.notes.clone(),
        coverage: coverage.into_iter().map(|(c, count)| pb::StateCount { state: c.to_string(), count }).collect(),
    }
}

/// One audit-trail event on the wire.
pub fn event(e: &ItemEvent) -> pb::CampaignEvent {
    pb::CampaignEvent {
        suite: e.suite.clone(),
        item: e.item.clone(),
        at: e.at,
        from_state: e.from.map(|s| s.to_string()).unwrap_or_default(),
        to_state: e.to.to_string(),
        version: e.version.clone(),
        reason: e.reason.clone(),
        evidence: e.evidence.iter().map(evidence).collect(),
    }
}

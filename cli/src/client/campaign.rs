//! `debcover campaign ...`: plan, create, list, status, events and export, over gRPC.
//!
//! Server answers are converted once into views (domain [`PlannedItem`]s from the item's JSON
//! detail, plus state); the text and `--json` renderings work on those views.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use debcover_proto::v1 as pb;
use debcover_proto::v1::campaigns_client::CampaignsClient;
use serde::Serialize;

use debcover_core::campaign::{Evidence, PlannedItem, UpstreamThreshold};

/// How to print a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// A table for people.
    Table,
    /// Machine-readable JSON.
    Json,
    /// wanna-build `nmu`/`dw` lines (binnmu campaigns).
    Wb,
    /// No-change uploads with changelog entries (sourceful campaigns).
    Uploads,
}

/// Item shapes a plan answer can be asked for (`CampaignSpec.items`), smallest last.
pub const ITEM_SHAPES: [&str; 4] = ["full", "summary", "brief", "none"];

/// The item shape to ask for: `asked` (`--items`), else the smallest `format` prints (JSON:
/// every field of every item). A page (`offset`, `limit`) applies to JSON only.
pub fn items_to_ask(format: PlanFormat, asked: Option<String>, offset: u32, limit: u32) -> Result<String> {
    if format != PlanFormat::Json && (offset != 0 || limit != 0) {
        bail!("--item-offset and --item-limit apply to --json output only");
    }
    Ok(match (format, asked) {
        // The table shows each item's first vulnerable evidence and its notes.
        (PlanFormat::Table, Some(a)) if a == "brief" || a == "none" => {
            bail!("the table shows each item's evidence and notes: --items summary or full")
        }
        (_, Some(a)) => a,
        (PlanFormat::Json, None) => "full".into(),
        (PlanFormat::Table, None) => "summary".into(),
        // The exports are rendered by the server: no item is needed.
        (PlanFormat::Wb | PlanFormat::Uploads, None) => "none".into(),
    })
}

/// Open a channel to the coordinator's campaign service.
pub async fn connect(server: &str) -> Result<CampaignsClient<super::Conn>> {
    Ok(CampaignsClient::new(super::channel(server).await?)
        .max_decoding_message_size(debcover_wire::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(debcover_wire::MAX_MESSAGE_BYTES))
}

/// An item as shown: the plan's view plus, for saved campaigns, its state.
#[derive(Debug, Serialize)]
pub struct ItemView {
    /// The plan's view.
    #[serde(flatten)]
    pub planned: PlannedItem,
    /// State (saved campaigns).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub state: String,
    /// Why it is in that state.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Binary version the state was judged on.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub current_version: String,
    /// `covered`, or the missing condition (saved campaigns).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub coverage: String,
}

/// A kebab-case enum value as the wire carries it.
fn wire_enum<T: serde::de::DeserializeOwned>(value: &str, what: &str, i: &pb::CampaignItem) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(value.to_owned())).with_context(|| {
        format!("the server sent item {}/{} with an unknown {what} {value:?}", i.source, i.architecture)
    })
}

fn item_view(i: &pb::CampaignItem) -> Result<ItemView> {
    item_view_owned(i.clone())
}

fn item_view_owned(i: pb::CampaignItem) -> Result<ItemView> {
    let some = |s: String| (!s.is_empty()).then_some(s);
    let found_by = wire_enum(&i.found_by, "found_by", &i)?;
    let evidence = i
        .evidence
        .iter()
        .map(|e| {
            Ok(Evidence {
                kind: wire_enum(&e.kind, "evidence kind", &i)?,
                binary: e.binary.clone(),
                package: e.package.clone(),
                version: e.version.clone(),
                vulnerable: e.vulnerable,
                through: some(e.through.clone()),
            })
        })
        .collect::<Result<_>>()?;
    let planned = PlannedItem {
        suite: i.suite,
        source: i.source,
        arch: i.architecture,
        source_version: i.source_version,
        version: i.version,
        build_sha256: some(i.build_id),
        binaries: i.binaries,
        wave: i.wave,
        cycle: (i.cycle != 0).then_some(i.cycle),
        found_by,
        evidence,
        notes: i.notes,
        after: i.after,
        upstream: i
            .upstream
            .into_iter()
            .map(|u| UpstreamThreshold { package: u.package, max_version: u.max_version, through: u.through })
            .collect(),
        planned_version: some(i.planned_version),
    };
    Ok(ItemView { planned, state: i.state, reason: i.reason, current_version: i.current_version, coverage: i.coverage })
}

/// A campaign's header as shown.
#[derive(Debug, Serialize)]
pub struct CampaignView {
    /// Id (0: not saved).
    pub id: i64,
    /// Title.
    pub title: String,
    /// Library source package.
    pub library: String,
    /// First fixed version.
    pub fixed_version: String,
    /// Suites.
    pub suites: Vec<String>,
    /// Architectures (empty: all).
    pub architectures: Vec<String>,
    /// binnmu | sourceful.
    pub mode: String,
    /// Advisories.
    pub advisories: Vec<String>,
    /// Depth cap.
    pub max_depth: u32,
    /// Unix seconds (0: not saved).
    pub created_at: i64,
    /// Items per state.
    pub counts: std::collections::BTreeMap<String, u64>,
}

fn campaign_view(c: Option<&pb::CampaignInfo>) -> CampaignView {
    let c = c.cloned().unwrap_or_default();
    CampaignView {
        id: c.id,
        title: c.title,
        library: c.library,
        fixed_version: c.fixed_version,
        suites: c.suites,
        architectures: c.architectures,
        mode: c.mode,
        advisories: c.advisories,
        max_depth: c.max_depth,
        created_at: c.created_at,
        counts: c.counts.into_iter().map(|s| (s.state, s.count)).collect(),
    }
}

/// A plan as shown.
#[derive(Debug, Serialize)]
pub struct PlanView {
    /// The campaign.
    pub campaign: CampaignView,
    /// Number of waves.
    pub waves: u32,
    /// The item shape asked for, when not `full`: `summary`, `brief` or `none`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_detail: Option<String>,
    /// Items in the whole plan, when `items` does not hold them all (shape `none`, a page).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
    /// Items in wave order (in the shape asked for).
    pub items: Vec<ItemView>,
    /// Dependency cycles.
    pub cycles: Vec<CycleView>,
    /// Plan-level notes.
    pub notes: Vec<String>,
    /// Items left out beyond the depth cap.
    pub beyond_depth: u64,
    /// Binaries of the library searched for.
    pub library_binaries: Vec<String>,
    /// wanna-build lines (binnmu).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wanna_build: String,
    /// Uploads (sourceful).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uploads: Vec<UploadView>,
}

/// A cycle group.
#[derive(Debug, Serialize)]
pub struct CycleView {
    /// Group id.
    pub id: u32,
    /// Members, SOURCE/ARCH.
    pub members: Vec<String>,
    /// Wave.
    pub wave: u32,
}

/// A sourceful upload.
#[derive(Debug, Serialize)]
pub struct UploadView {
    /// Wave.
    pub wave: u32,
    /// Suite.
    pub suite: String,
    /// Source.
    pub source: String,
    /// Version shipped now.
    pub current_version: String,
    /// Version to upload.
    pub version: String,
    /// Architectures it fixes.
    pub architectures: Vec<String>,
    /// Changelog entry.
    pub changelog: String,
}

/// Convert a plan answer, asked for in item shape `detail`.
pub fn plan_view(mut p: pb::CampaignPlan, detail: &str) -> Result<PlanView> {
    // A server older than item shapes and paging sends every item and no count.
    let count = if p.item_count == 0 { p.items.len() as u64 } else { p.item_count };
    let items = std::mem::take(&mut p.items);
    Ok(PlanView {
        campaign: campaign_view(p.campaign.as_ref()),
        waves: p.waves,
        items_detail: (!detail.is_empty() && detail != "full").then(|| detail.to_owned()),
        item_count: (count != items.len() as u64).then_some(count),
        items: items.into_iter().map(item_view_owned).collect::<Result<_>>()?,
        cycles: p.cycles.iter().map(|c| CycleView { id: c.id, members: c.members.clone(), wave: c.wave }).collect(),
        notes: p.notes.clone(),
        beyond_depth: p.beyond_depth,
        library_binaries: p.library_binaries.clone(),
        wanna_build: p.wanna_build.clone(),
        uploads: p
            .uploads
            .iter()
            .map(|u| UploadView {
                wave: u.wave,
                suite: u.suite.clone(),
                source: u.source.clone(),
                current_version: u.current_version.clone(),
                version: u.version.clone(),
                architectures: u.architectures.clone(),
                changelog: u.changelog.clone(),
            })
            .collect(),
    })
}

/// Print a plan in `format`.
pub fn print_plan(v: &PlanView, format: PlanFormat) -> Result<()> {
    match format {
        PlanFormat::Json => crate::client::output::print_json(v)?,
        PlanFormat::Wb => {
            if v.campaign.mode != "binnmu" {
                bail!("this is a {} campaign: wanna-build binNMUs do not apply; use --format uploads", v.campaign.mode);
            }
            crate::out!("{}", v.wanna_build);
        }
        PlanFormat::Uploads => {
            if v.campaign.mode != "sourceful" {
                bail!("this is a {} campaign: use --format wb for its wanna-build lines", v.campaign.mode);
            }
            for u in &v.uploads {
                crate::outln!(
                    "# wave {}: {} {} -> {} in {} ({})\n",
                    u.wave,
                    u.source,
                    u.current_version,
                    u.version,
                    u.suite,
                    u.architectures.join(" ")
                );
                crate::outln!("{}", u.changelog);
            }
        }
        PlanFormat::Table => crate::out!("{}", plan_table(v)),
    }
    Ok(())
}

fn headline(c: &CampaignView) -> String {
    let mut s = format!("{} fixed in {}", c.library, c.fixed_version);
    if !c.advisories.is_empty() {
        s.push_str(&format!(" ({})", c.advisories.join(", ")));
    }
    s.push_str(&format!("; mode {}; suites {}", c.mode, c.suites.join(", ")));
    if !c.architectures.is_empty() {
        s.push_str(&format!("; architectures {}", c.architectures.join(" ")));
    }
    s
}

/// The table of a plan, as text (printed in one write: suite-wide plans have ~60,000 lines).
fn plan_table(v: &PlanView) -> String {
    let mut out = String::new();
    let c = &v.campaign;
    if c.id != 0 {
        let _ = writeln!(out, "Campaign {}: {}", c.id, c.title);
    } else {
        let _ = writeln!(out, "Campaign plan (not saved): {}", c.title);
    }
    let _ = writeln!(out, "{}", headline(c));
    if v.items.is_empty() {
        let _ = writeln!(out, 
            "\nNo shipped binary in {} embeds {} below {}: nothing to rebuild.",
            c.suites.join(", "),
            c.library,
            c.fixed_version
        );
    } else {
        let count = |f: debcover_core::campaign::FoundBy| v.items.iter().filter(|i| i.planned.found_by == f).count();
        let _ = writeln!(out, 
            "{} items in {} waves; found by both buildinfo and declarations: {}, buildinfo only: {}, declarations only: {}",
            v.items.len(),
            v.waves,
            count(debcover_core::campaign::FoundBy::Both),
            count(debcover_core::campaign::FoundBy::BuildinfoOnly),
            count(debcover_core::campaign::FoundBy::DeclarationOnly),
        );
        out.push('\n');
        let saved = v.items.iter().any(|i| !i.state.is_empty());
        let rows: Vec<Vec<String>> = v
            .items
            .iter()
            .map(|i| {
                let p = &i.planned;
                let mut why =
                    p.evidence.iter().filter(|e| e.vulnerable).map(|e| e.to_string()).next().unwrap_or_default();
                if !p.after.is_empty() {
                    why = format!("after {}; {why}", p.after.join(", "));
                }
                let mut row =
                    vec![p.wave.to_string(), p.suite.clone(), p.source.clone(), p.arch.clone(), p.version.clone()];
                if saved {
                    row.push(i.state.clone());
                }
                row.push(found_by(p.found_by).to_owned());
                row.push(why);
                row
            })
            .collect();
        let mut header = vec!["WAVE", "SUITE", "SOURCE", "ARCH", "VERSION"];
        if saved {
            header.push("STATE");
        }
        header.extend(["FOUND BY", "EVIDENCE"]);
        out.push_str(&table_text(&header, &rows));
        let disagreements: Vec<String> = v
            .items
            .iter()
            .flat_map(|i| i.planned.notes.iter().map(move |n| format!("{}/{}: {n}", i.planned.suite, i.planned.source)))
            .collect();
        if !disagreements.is_empty() {
            let _ = writeln!(out, "\nDisagreements between buildinfo and declarations:");
            for d in disagreements {
                let _ = writeln!(out, "  - {d}");
            }
        }
    }
    if !v.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for n in &v.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

fn found_by(f: debcover_core::campaign::FoundBy) -> &'static str {
    match f {
        debcover_core::campaign::FoundBy::Both => "both",
        debcover_core::campaign::FoundBy::BuildinfoOnly => "buildinfo-only",
        debcover_core::campaign::FoundBy::DeclarationOnly => "declaration-only",
    }
}

/// Print rows under a header, columns padded to their widest cell (the last one unpadded).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    crate::out!("{}", table_text(header, rows));
}

/// Rows under a header as text, columns padded to their widest cell (the last one unpadded).
pub fn table_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let start = out.len();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                let _ = write!(out, "{c:<w$}  ", w = width[i]);
            }
        }
        out.truncate(out[start..].trim_end().len() + start);
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// A campaign's status as shown.
#[derive(Debug, Serialize)]
pub struct StatusView {
    /// The campaign, with counts per state.
    pub campaign: CampaignView,
    /// Counts per wave and state.
    pub waves: Vec<WaveView>,
    /// Every item with its state and reason.
    pub items: Vec<ItemView>,
    /// Plan-level notes.
    pub notes: Vec<String>,
    /// Items per coverage value (`covered`, `unverified`, ...).
    pub coverage: std::collections::BTreeMap<String, u64>,
}

/// Items of one wave in one state.
#[derive(Debug, Serialize)]
pub struct WaveView {
    /// Wave.
    pub wave: u32,
    /// State.
    pub state: String,
    /// Count.
    pub count: u64,
}

/// Convert a status answer.
pub fn status_view(r: &pb::CampaignStatusResponse) -> Result<StatusView> {
    Ok(StatusView {
        campaign: campaign_view(r.campaign.as_ref()),
        waves: r.waves.iter().map(|w| WaveView { wave: w.wave, state: w.state.clone(), count: w.count }).collect(),
        items: r.items.iter().map(item_view).collect::<Result<_>>()?,
        notes: r.notes.clone(),
        coverage: r.coverage.iter().map(|c| (c.state.clone(), c.count)).collect(),
    })
}

/// Print a status as text.
pub fn print_status(v: &StatusView) {
    let c = &v.campaign;
    crate::outln!("Campaign {}: {}", c.id, c.title);
    crate::outln!("{}", headline(c));
    let counts: Vec<String> = c.counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    crate::outln!("{} items: {}", v.items.len(), if counts.is_empty() { "none".into() } else { counts.join(", ") });
    if !v.coverage.is_empty() {
        let cov: Vec<String> = v.coverage.iter().map(|(s, n)| format!("{s} {n}")).collect();
        crate::outln!("coverage: {}", cov.join(", "));
    }
    let mut wave = 0;
    let mut line = String::new();
    for w in &v.waves {
        if w.wave != wave {
            if !line.is_empty() {
                crate::outln!("{line}");
            }
            wave = w.wave;
            line = format!("  wave {wave}:");
        } else {
            line.push(',');
        }
        line.push_str(&format!(" {} {}", w.state, w.count));
    }
    if !line.is_empty() {
        crate::outln!("{line}");
    }
    if !v.items.is_empty() {
        crate::outln!();
        let rows: Vec<Vec<String>> = v
            .items
            .iter()
            .map(|i| {
                vec![
                    i.planned.wave.to_string(),
                    i.planned.suite.clone(),
                    i.planned.source.clone(),
                    i.planned.arch.clone(),
                    i.state.clone(),
                    i.coverage.clone(),
                    i.current_version.clone(),
                    i.reason.clone(),
                ]
            })
            .collect();
        print_table(&["WAVE", "SUITE", "SOURCE", "ARCH", "STATE", "COVERAGE", "VERSION", "REASON"], &rows);
    }
    if !v.notes.is_empty() {
        crate::outln!("\nNotes:");
        for n in &v.notes {
            crate::outln!("  - {n}");
        }
    }
}

/// One event as shown.
#[derive(Debug, Serialize)]
pub struct EventView {
    /// Unix seconds.
    pub at: i64,
    /// Suite.
    pub suite: String,
    /// SOURCE/ARCH.
    pub item: String,
    /// Previous state (empty: planning).
    pub from: String,
    /// New state.
    pub to: String,
    /// Version judged.
    pub version: String,
    /// Why.
    pub reason: String,
    /// Evidence, in words.
    pub evidence: Vec<String>,
}

/// Convert an events answer.
pub fn events_view(r: &pb::CampaignEventsResponse) -> Vec<EventView> {
    r.events
        .iter()
        .map(|e| EventView {
            at: e.at,
            suite: e.suite.clone(),
            item: e.item.clone(),
            from: e.from_state.clone(),
            to: e.to_state.clone(),
            version: e.version.clone(),
            reason: e.reason.clone(),
            evidence: e
                .evidence
                .iter()
                .map(|x| {
                    let mut s = format!("{} {} {} of {}", x.kind, x.package, x.version, x.binary);
                    if !x.through.is_empty() {
                        s.push_str(&format!(" (through {})", x.through));
                    }
                    s
                })
                .collect(),
        })
        .collect()
}

/// Print events as text.
pub fn print_events(events: &[EventView]) {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            let when = chrono::DateTime::from_timestamp(e.at, 0)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| e.at.to_string());
            let change = if e.from.is_empty() { format!("-> {}", e.to) } else { format!("{} -> {}", e.from, e.to) };
            vec![when, format!("{}/{}", e.suite, e.item), change, e.version.clone(), e.reason.clone()]
        })
        .collect();
    print_table(&["TIME (UTC)", "ITEM", "CHANGE", "VERSION", "REASON"], &rows);
}

/// Print the campaign list as text.
pub fn print_list(r: &pb::ListCampaignsResponse) {
    if r.campaigns.is_empty() {
        crate::outln!(
            "No campaigns yet. Preview one with `debcover campaign plan`, save it with `debcover campaign create`."
        );
        return;
    }
    let rows: Vec<Vec<String>> = r
        .campaigns
        .iter()
        .map(|c| {
            let total: u64 = c.counts.iter().map(|s| s.count).sum();
            let states: Vec<String> = c.counts.iter().map(|s| format!("{} {}", s.state, s.count)).collect();
            vec![
                c.id.to_string(),
                c.library.clone(),
                c.fixed_version.clone(),
                c.suites.join(","),
                c.mode.clone(),
                total.to_string(),
                states.join(", "),
                c.title.clone(),
            ]
        })
        .collect();
    print_table(&["ID", "LIBRARY", "FIXED", "SUITES", "MODE", "ITEMS", "STATES", "TITLE"], &rows);
}

/// Convert the campaign list for `--json`.
pub fn list_view(r: &pb::ListCampaignsResponse) -> Vec<CampaignView> {
    r.campaigns.iter().map(|c| campaign_view(Some(c))).collect()
}

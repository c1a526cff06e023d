//! `/campaigns` (every campaign with its item counts), `/campaigns/{id}` (progress per wave
//! and architecture, the items page by page with state, reason and evidence) and
//! `/campaigns/{id}/export` (the plan in the release team's format, as the gRPC export).
//!
//! States and reasons are rendered by their stored names: new states need no change here.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use maud::html;
use serde::Serialize;

use super::{PageInfo, PageQuery, St, WebError, WebResult, layout, respond, seg, when};
use debcover_core::campaign::{CampaignRecord, ItemRecord};
use debcover_core::store::{CampaignStore, IndexStore, ViewStore};

/// A campaign's summary: the record and its item counts per state.
#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    campaign: CampaignRecord,
    counts: BTreeMap<String, u64>,
    items: u64,
}

fn summary(campaign: CampaignRecord, counts: Vec<(String, u64)>) -> Summary {
    let items = counts.iter().map(|(_, n)| n).sum();
    Summary { campaign, counts: counts.into_iter().collect(), items }
}

/// `/campaigns`.
pub async fn list<S: CampaignStore, const JSON: bool>(State(web): St<S>) -> WebResult {
    let all: Vec<Summary> = web.store.campaigns().await?.into_iter().map(|(c, n)| summary(c, n)).collect();
    respond(JSON, &all, |all| {
        layout(
            "Campaigns",
            html! {
                h1 { "Campaigns" }
                @if all.is_empty() { p.muted { "No campaign yet." } }
                @else {
                    table {
                        tr { th { "id" } th { "title" } th { "library" } th { "fixed" } th { "suites" } th { "mode" }
                             th { "created" } th { "items by state" } }
                        @for s in all {
                            tr {
                                td.n { (s.campaign.id) }
                                td { a href={ "/campaigns/" (s.campaign.id) } { (s.campaign.title) } }
                                td { a href={ "/source/" (seg(&s.campaign.library)) } { (s.campaign.library) } }
                                td { code { (s.campaign.fixed_version) } }
                                td { (s.campaign.suites.join(" ")) }
                                td { (s.campaign.mode.as_str()) }
                                td { (when(s.campaign.created_at)) }
                                td { @for (state, n) in &s.counts { span.state { (state) } ": " (n) " " } }
                            }
                        }
                    }
                }
            },
        )
    })
}

/// Items of one wave and architecture per state.
#[derive(Serialize)]
struct Progress {
    wave: u32,
    arch: String,
    counts: BTreeMap<String, u64>,
    total: u64,
}

/// One item as listed.
#[derive(Serialize)]
struct Item {
    suite: String,
    source: String,
    arch: String,
    wave: u32,
    version: String,
    current_version: String,
    state: String,
    reason: String,
    evidence: Vec<String>,
    build_sha256: Option<String>,
    updated_at: i64,
}

impl From<ItemRecord> for Item {
    fn from(r: ItemRecord) -> Self {
        Item {
            evidence: r.planned.evidence.iter().map(|e| e.to_string()).collect(),
            suite: r.planned.suite,
            source: r.planned.source,
            arch: r.planned.arch,
            wave: r.planned.wave,
            version: r.planned.version,
            current_version: r.current_version,
            state: r.state.to_string(),
            reason: r.reason,
            build_sha256: r.planned.build_sha256,
            updated_at: r.updated_at,
        }
    }
}

/// `/campaigns/{id}` as data.
#[derive(Serialize)]
struct CampaignPage {
    campaign: Summary,
    states: Vec<String>,
    progress: Vec<Progress>,
    items: Vec<Item>,
    page: PageInfo,
    export: String,
}

/// `/campaigns/{id}?page=N&per_page=M`.
pub async fn page<S: ViewStore + CampaignStore, const JSON: bool>(
    State(web): St<S>,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> WebResult {
    let c = web.store.campaign(id).await?.ok_or_else(|| WebError::not_found(format!("no campaign {id}")))?;
    let rows = web.store.campaign_progress(id).await?;
    let mut states: Vec<String> = Vec::new();
    let mut by_state: BTreeMap<String, u64> = BTreeMap::new();
    let mut progress: Vec<Progress> = Vec::new();
    for r in rows {
        if !states.contains(&r.state) {
            states.push(r.state.clone());
        }
        *by_state.entry(r.state.clone()).or_default() += r.count;
        match progress.last_mut() {
            Some(p) if p.wave == r.wave && p.arch == r.arch => {
                p.total += r.count;
                p.counts.insert(r.state, r.count);
            }
            _ => progress.push(Progress {
                wave: r.wave,
                arch: r.arch,
                total: r.count,
                counts: BTreeMap::from([(r.state, r.count)]),
            }),
        }
    }
    states.sort();
    let total = by_state.values().sum();
    let page = q.resolve(total);
    let items = web.store.campaign_item_page(id, page.offset(), page.per_page).await?;
    let data = CampaignPage {
        export: format!("/campaigns/{id}/export"),
        campaign: summary(c, by_state.into_iter().collect()),
        states,
        progress,
        items: items.into_iter().map(Item::from).collect(),
        page,
    };
    respond(JSON, &data, |d| {
        let c = &d.campaign.campaign;
        layout(
            &c.title,
            html! {
                h1 { "Campaign " (c.id) ": " (c.title) }
                table {
                    tr { th { "library" } td { a href={ "/source/" (seg(&c.library)) } { (c.library) } } }
                    tr { th { "fixed version" } td { code { (c.fixed_version) } } }
                    tr { th { "suites" } td { @for s in &c.suites { a href={ "/suites/" (seg(s)) } { (s) } " " } } }
                    tr { th { "architectures" } td { @if c.arches.is_empty() { "all indexed" } @else { (c.arches.join(" ")) } } }
                    tr { th { "mode" } td { (c.mode.as_str()) } }
                    tr { th { "advisories" } td { (c.advisories.join(" ")) } }
                    tr { th { "created" } td { (when(c.created_at)) } }
                    tr { th { "items" } td { (d.campaign.items) " — "
                        @for (state, n) in &d.campaign.counts { span.state { (state) } ": " (n) " " } } }
                    tr { th { "plan export" } td {
                        a href=(d.export) { @if c.mode.as_str() == "binnmu" { "wanna-build requests" } @else { "sourceful uploads" } }
                        " · " a href={ "/api/campaigns/" (c.id) } { "JSON" } } }
                }
                @for note in &c.notes { p.muted { (note) } }
                h2 { "Progress per wave and architecture" }
                table {
                    tr { th { "wave" } th { "arch" } @for s in &d.states { th { (s) } } th { "total" } }
                    @for p in &d.progress {
                        tr { td.n { (p.wave) } td { (p.arch) }
                             @for s in &d.states { td.n { (p.counts.get(s).copied().unwrap_or(0)) } }
                             td.n { (p.total) } }
                    }
                }
                h2 { "Items" }
                (d.page.nav(&format!("/campaigns/{}", c.id)))
                table {
                    tr { th { "wave" } th { "suite" } th { "source" } th { "arch" } th { "version" } th { "state" }
                         th { "reason" } th { "evidence" } th { "changed" } }
                    @for i in &d.items {
                        tr {
                            td.n { (i.wave) } td { (i.suite) }
                            td { a href={ "/source/" (seg(&i.source)) } { (i.source) } } td { (i.arch) }
                            td { code { (i.current_version) } }
                            td.state { (i.state) } td { (i.reason) }
                            td { @for e in &i.evidence { (e) br; } }
                            td { (when(i.updated_at)) }
                        }
                    }
                }
                (d.page.nav(&format!("/campaigns/{}", c.id)))
            },
        )
    })
}

/// `/campaigns/{id}/export`: the plan as text, as `debcover campaign export` prints it.
pub async fn export<S: CampaignStore + IndexStore>(State(web): St<S>, Path(id): Path<i64>) -> WebResult {
    let c = web.store.campaign(id).await?.ok_or_else(|| WebError::not_found(format!("no campaign {id}")))?;
    let items = web.store.campaign_items(Some(id), None).await?;
    let bins = web.store.binaries_of_source(&c.library).await?;
    let text = crate::ops::campaigns::export_text(&c, &items, bins);
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], text).into_response())
}

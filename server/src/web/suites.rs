//! `/suites/{suite}`: reproducibility of the builds behind a suite's binaries, per
//! architecture, and over time (attempts per day); `/api/suites/{suite}/status`: the whole
//! suite's status list for scripts, with `Last-Modified` and `If-Modified-Since`.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use maud::html;
use serde::Serialize;

use super::{PageInfo, PageQuery, St, WebError, WebResult, layout, respond, seg, when};
use debcover_core::store::ViewStore;
use debcover_core::store::views::{StatusFacts, SuiteBuild};

/// Where a build stands in the rebuilder network, from its jobs and attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildStatus {
    /// Verified by the required operators, or reproduced with no attempt that differed.
    Reproducible,
    /// Some attempt produced different bytes.
    Unreproducible,
    /// Attempts failed (or the job was parked) and none reproduced it.
    Failed,
    /// Not rebuilt yet (queued, leased, or never queued).
    Pending,
}

impl BuildStatus {
    /// Every status, in display order.
    pub const ALL: [BuildStatus; 4] =
        [BuildStatus::Reproducible, BuildStatus::Unreproducible, BuildStatus::Failed, BuildStatus::Pending];

    /// The status of one build: [`BuildStatus::judge`] of its facts.
    pub fn of(b: &SuiteBuild) -> BuildStatus {
        BuildStatus::judge(b.facts())
    }

    /// The rule: a differing result outweighs a reproduction (the bytes are not what every
    /// rebuild gives) unless the build is verified, a reproduction outweighs failures,
    /// failures (or a parked job) outweigh nothing.
    pub fn judge(f: StatusFacts) -> BuildStatus {
        if f.differed && !f.verified {
            BuildStatus::Unreproducible
        } else if f.verified || f.reproduced {
            BuildStatus::Reproducible
        } else if f.failed || f.parked {
            BuildStatus::Failed
        } else {
            BuildStatus::Pending
        }
    }

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Reproducible => "reproducible",
            BuildStatus::Unreproducible => "unreproducible",
            BuildStatus::Failed => "failed",
            BuildStatus::Pending => "pending",
        }
    }
}

/// Counts per status of one architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
struct ArchCounts {
    arch: String,
    reproducible: u64,
    unreproducible: u64,
    failed: u64,
    pending: u64,
    total: u64,
}

impl ArchCounts {
    fn add(&mut self, s: BuildStatus, n: u64) {
        self.total += n;
        match s {
            BuildStatus::Reproducible => self.reproducible += n,
            BuildStatus::Unreproducible => self.unreproducible += n,
            BuildStatus::Failed => self.failed += n,
            BuildStatus::Pending => self.pending += n,
        }
    }
}

/// Attempts of one day and architecture, per outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct Day {
    date: String,
    arch: String,
    outcomes: BTreeMap<String, u64>,
}

/// One build of the suite with its status.
#[derive(Serialize)]
struct Entry {
    source: String,
    version: String,
    arch: String,
    buildinfo_sha256: String,
    status: BuildStatus,
    last_change: i64,
}

impl From<&SuiteBuild> for Entry {
    fn from(b: &SuiteBuild) -> Self {
        Entry {
            source: b.source.clone(),
            version: b.version.clone(),
            arch: b.arch.clone(),
            buildinfo_sha256: b.sha256.clone(),
            status: BuildStatus::of(b),
            last_change: b.last_change.max(b.ingested_at),
        }
    }
}

/// The part of a suite page that reads every build: counts per architecture and status, and
/// the attempts per day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Summary {
    arches: Vec<ArchCounts>,
    history: Vec<Day>,
    total: u64,
}

/// What a suite's data looked like when a [`Summary`] was computed: the latest change among
/// its builds, jobs and attempts ([`ViewStore::suite_last_change`]) and its latest index import.
/// Both are index probes (well under a millisecond), unlike the summary itself (tens to
/// hundreds of milliseconds once a suite's builds have been through the rebuilder network).
pub(super) type Stamp = (i64, i64);

/// Summaries per suite, reused while the suite's [`Stamp`] is unchanged.
///
/// Why it is safe: every write that can change a summary (an index import, a build ingested,
/// a job's state, an attempt started or ended) stamps its row with the Unix second it
/// happened. A summary is only kept when its stamp is at least [`SummaryCache::SETTLED`]
/// seconds older than the moment it was read, so no later write can carry the same second:
/// any change afterwards moves the stamp and the summary is computed again. With several
/// coordinators on one database the margin must also cover their clocks' difference.
#[derive(Default)]
pub(super) struct SummaryCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Stamp, std::sync::Arc<Summary>)>>,
}

impl SummaryCache {
    /// Seconds a stamp must lie in the past for its summary to be kept.
    pub(super) const SETTLED: i64 = 2;
    /// Suites kept at most (the map is emptied when full: suites are few).
    const CAPACITY: usize = 256;

    /// The summary of `suite` computed at `stamp`, if one is kept.
    fn get(&self, suite: &str, stamp: Stamp) -> Option<std::sync::Arc<Summary>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(suite).filter(|(s, _)| *s == stamp).map(|(_, v)| v.clone())
    }

    /// Keep `summary` of `suite`, computed at `stamp` as read at `now`, if the stamp has settled.
    fn put(&self, suite: &str, stamp: Stamp, now: i64, summary: std::sync::Arc<Summary>) {
        if stamp.0.max(stamp.1) > now - Self::SETTLED {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::CAPACITY && !entries.contains_key(suite) {
            entries.clear();
        }
        entries.insert(suite.to_owned(), (stamp, summary));
    }
}

/// Count and date a suite's builds and attempts (the expensive part of its page).
async fn summarise<S: ViewStore>(store: &S, suite: &str) -> Result<Summary, WebError> {
    let groups = store.suite_status_counts(suite).await?;
    let total: u64 = groups.iter().map(|g| g.count).sum();
    let mut arches: BTreeMap<&str, ArchCounts> = BTreeMap::new();
    for g in &groups {
        arches
            .entry(g.arch.as_str())
            .or_insert_with(|| ArchCounts { arch: g.arch.clone(), ..Default::default() })
            .add(BuildStatus::judge(g.facts), g.count);
    }
    let mut history: Vec<Day> = Vec::new();
    for d in store.suite_history(suite).await? {
        let date = when(d.day * 86400).get(..10).unwrap_or_default().to_owned();
        match history.last_mut() {
            Some(h) if h.date == date && h.arch == d.arch => {
                h.outcomes.insert(d.outcome, d.count);
            }
            _ => history.push(Day { date, arch: d.arch, outcomes: BTreeMap::from([(d.outcome, d.count)]) }),
        }
    }
    Ok(Summary { arches: arches.into_values().collect(), history, total })
}

/// `/suites/{suite}` as data.
#[derive(Serialize)]
struct SuitePage {
    suite: String,
    arches: Vec<ArchCounts>,
    history: Vec<Day>,
    builds: Vec<Entry>,
    page: PageInfo,
    status_list: String,
}

/// `/suites/{suite}?page=N&per_page=M`: counts per architecture and status from grouped facts
/// (a handful of rows), then only the page's builds.
pub async fn page<S: ViewStore, const JSON: bool>(
    State(web): St<S>,
    Path(suite): Path<String>,
    Query(q): Query<PageQuery>,
) -> WebResult {
    // The clock is read before the stamp: see `SummaryCache` for why that order matters.
    let now = super::now_unix();
    let stamp: Stamp = (web.store.suite_last_change(&suite).await?, web.store.suite_imported_at(&suite).await?);
    let summary = match web.summaries.get(&suite, stamp) {
        Some(s) => s,
        None => {
            let s = std::sync::Arc::new(summarise(&*web.store, &suite).await?);
            web.summaries.put(&suite, stamp, now, s.clone());
            s
        }
    };
    if summary.total == 0 && stamp.1 == 0 {
        return Err(WebError::not_found(format!("no suite {suite:?}: no index of it was imported")));
    }
    let (arches, history, total) = (summary.arches.clone(), summary.history.clone(), summary.total);
    let page = q.resolve(total);
    let builds = web.store.suite_build_page(&suite, page.offset(), page.per_page).await?;
    let data = SuitePage {
        status_list: format!("/api/suites/{}/status", seg(&suite)),
        arches,
        history,
        builds: builds.iter().map(Entry::from).collect(),
        page,
        suite,
    };
    respond(JSON, &data, |d| {
        let outcomes: Vec<&String> = {
            let mut o: Vec<&String> = d.history.iter().flat_map(|h| h.outcomes.keys()).collect();
            o.sort();
            o.dedup();
            o
        };
        layout(
            &d.suite,
            html! {
                h1 { "Suite " (d.suite) }
                p { "Reproducibility of the builds behind the suite's binaries. "
                    a href=(d.status_list) { "Whole-suite status list (JSON)" } }
                h2 { "Per architecture" }
                table {
                    tr { th { "arch" } @for s in BuildStatus::ALL { th { (s.as_str()) } } th { "builds" } }
                    @for a in &d.arches {
                        tr { td { (a.arch) } td.n { (a.reproducible) } td.n { (a.unreproducible) } td.n { (a.failed) }
                             td.n { (a.pending) } td.n { (a.total) } }
                    }
                }
                h2 { "Over time (rebuild attempts per day)" }
                @if d.history.is_empty() { p.muted { "No rebuild attempt has ended yet." } }
                @else {
                    table {
                        tr { th { "day" } th { "arch" } @for o in &outcomes { th { (o) } } }
                        @for h in &d.history {
                            tr { td { (h.date) } td { (h.arch) }
                                 @for o in &outcomes { td.n { (h.outcomes.get(*o).copied().unwrap_or(0)) } } }
                        }
                    }
                }
                h2 { "Builds" }
                (d.page.nav(&format!("/suites/{}", seg(&d.suite))))
                table {
                    tr { th { "source" } th { "version" } th { "arch" } th { "status" } th { "last change" } }
                    @for b in &d.builds {
                        tr { td { a href={ "/source/" (seg(&b.source)) } { (b.source) } } td { code { (b.version) } }
                             td { (b.arch) } td.state { (b.status.as_str()) } td { (when(b.last_change)) } }
                    }
                }
                (d.page.nav(&format!("/suites/{}", seg(&d.suite))))
            },
        )
    })
}

/// The whole-suite status list.
#[derive(Serialize)]
struct StatusList {
    suite: String,
    last_modified: i64,
    builds: Vec<Entry>,
}

/// `/api/suites/{suite}/status`: every build of the suite with its status. `Last-Modified` is
/// the latest change in the suite's data (an index imported, a build ingested, a job or
/// attempt of one of its builds changed); a request whose `If-Modified-Since` is not older
/// gets `304 Not Modified` with no body. Times have one-second resolution, as HTTP dates.
/// `Last-Modified` is read first, with its own index probes (`ViewStore::suite_last_change`),
/// so a `304` never reads the list.
pub async fn status<S: ViewStore>(State(web): St<S>, Path(suite): Path<String>, headers: HeaderMap) -> WebResult {
    let imported = web.store.suite_imported_at(&suite).await?;
    let changed = web.store.suite_last_change(&suite).await?;
    if changed == 0 && imported == 0 {
        return Err(WebError::not_found(format!("no suite {suite:?}: no index of it was imported")));
    }
    let last_modified = imported.max(changed);
    if let Some(since) = headers.get(header::IF_MODIFIED_SINCE) {
        // An unparsable date is ignored, as RFC 9110 asks.
        if let Some(since) = since.to_str().ok().and_then(|s| httpdate::parse_http_date(s).ok()) {
            let since = since.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
            if last_modified <= since {
                return Ok((StatusCode::NOT_MODIFIED, [(header::LAST_MODIFIED, http_date(last_modified)?)]).into_response());
            }
        }
    }
    let builds: Vec<Entry> = web.store.suite_builds(&suite).await?.iter().map(Entry::from).collect();
    // The list may have moved since the stamp was read: its own latest change wins.
    let last_modified = builds.iter().map(|b| b.last_change).fold(last_modified, i64::max);
    let stamp = http_date(last_modified)?;
    let body = serde_json::to_vec(&StatusList { suite, last_modified, builds })
        .map_err(|e| WebError::bad_request(e.to_string()))?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::LAST_MODIFIED, stamp)],
        body,
    )
        .into_response())
}

/// Unix seconds as an HTTP date header value.
fn http_date(secs: i64) -> Result<HeaderValue, WebError> {
    let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0)));
    HeaderValue::from_str(&date).map_err(|e| WebError::bad_request(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn summary(total: u64) -> Arc<Summary> {
        Arc::new(Summary { arches: Vec::new(), history: Vec::new(), total })
    }

    #[test]
    fn a_summary_is_reused_only_for_its_settled_stamp() {
        let cache = SummaryCache::default();
        // Read at 100 with the last change at 98: settled, kept.
        cache.put("sid", (98, 50), 100, summary(1));
        assert_eq!(cache.get("sid", (98, 50)).map(|s| s.total), Some(1));
        // Any change moves the stamp: not reused.
        assert!(cache.get("sid", (99, 50)).is_none());
        assert!(cache.get("sid", (98, 51)).is_none());
        assert!(cache.get("bookworm", (98, 50)).is_none());
        // A change in the last second (or an index imported then) could be followed by another
        // in the same second: not kept.
        cache.put("trixie", (99, 10), 100, summary(2));
        cache.put("forky", (10, 100), 100, summary(3));
        assert!(cache.get("trixie", (99, 10)).is_none());
        assert!(cache.get("forky", (10, 100)).is_none());
        // A newer settled summary replaces the old one.
        cache.put("sid", (120, 50), 200, summary(4));
        assert!(cache.get("sid", (98, 50)).is_none());
        assert_eq!(cache.get("sid", (120, 50)).map(|s| s.total), Some(4));
    }
}

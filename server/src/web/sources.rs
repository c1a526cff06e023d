//! `/source/{name}`: a source package's builds (where they ship, what they were built
//! against in summary), its rebuild history with the attestations of each attempt and what
//! its rebuilt binaries say against the original buildinfo (corroboration findings);
//! `/source/{name}/{sha256}/built-against`: one build's full Installed-Build-Depends;
//! `/cas/attestations/{sha256}`: a node's signed in-toto link, byte for byte as stored (in the
//! database; links accepted by versions before migration 0012 in the content store). The path
//! is the content store's, kept so that links published before stay valid.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use debcover_formats::buildinfo::Buildinfo;
use debcover_formats::corroborate::Verdict;
use maud::html;
use serde::Serialize;

use super::{St, WebError, WebResult, layout, respond, seg, when};
use crate::ops::attestations::{LinkError, stored_link};
use debcover_core::rebuild::corroborate::{Corroboration, verdict_name};
use debcover_core::rebuild::{AttemptRecord, JobFilter, JobRecord};
use debcover_core::store::{BuildStore, RebuildStore};

/// Rebuild jobs listed on a source page at most (newest first).
const MAX_JOBS: u32 = 200;

/// One build of the source.
#[derive(Serialize)]
struct Build {
    sha256: String,
    version: String,
    source_version: String,
    architectures: Vec<String>,
    host_arch: String,
    build_date: Option<String>,
    build_origin: Option<String>,
    signed: bool,
    origin: String,
    /// Installed-Build-Depends entries; the whole list is at `built_against`.
    built_against_count: u32,
    built_against: String,
    /// Produced files and the `suite/arch` places shipping them.
    files: Vec<(String, Vec<String>)>,
}

/// A job with its attempts.
#[derive(Serialize)]
struct Job {
    #[serde(flatten)]
    job: JobRecord,
    attempts: Vec<Attempt>,
}

/// An attempt, with its attestation's download link and what its rebuilt binaries say
/// against the original buildinfo.
#[derive(Serialize)]
struct Attempt {
    #[serde(flatten)]
    attempt: AttemptRecord,
    attestation_url: Option<String>,
    corroboration: Vec<Corroboration>,
}

/// Findings other than disagreements shown per attempt on the HTML page (all are in the JSON).
const SHOWN_FINDINGS: usize = 20;

/// `/source/{name}` as data.
#[derive(Serialize)]
struct SourcePage {
    source: String,
    builds: Vec<Build>,
    rebuilds: Vec<Job>,
}

/// `/source/{name}`.
pub async fn page<S: BuildStore + RebuildStore, const JSON: bool>(State(web): St<S>, Path(name): Path<String>) -> WebResult {
    let records = web.store.builds_of_source(&name, None, None).await?;
    let ids: Vec<i64> = records.iter().map(|b| b.id).collect();
    let files = web.store.produced_files(&ids).await?;
    let jobs = web
        .store
        .jobs(&JobFilter { source: Some(name.clone()), limit: MAX_JOBS, ..Default::default() })
        .await?;
    if records.is_empty() && jobs.is_empty() {
        return Err(WebError::not_found(format!("no build of source package {name:?} is known")));
    }
    let job_ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let mut attempts = web.store.attempts(&job_ids).await?;
    let mut corroboration: HashMap<(i64, i64), Vec<Corroboration>> = HashMap::new();
    for c in web.store.corroboration(&job_ids).await? {
        corroboration.entry((c.job_id, c.fence)).or_default().push(c.corroboration);
    }
    let mut builds: Vec<Build> = records
        .into_iter()
        .map(|b| Build {
            built_against: format!("/source/{}/{}/built-against", seg(&name), b.sha256),
            files: files
                .iter()
                .filter(|f| f.build_id == b.id)
                .map(|f| (f.name.clone(), f.shipped_in.clone()))
                .collect(),
            sha256: b.sha256,
            version: b.version,
            source_version: b.source_version,
            architectures: b.architectures,
            host_arch: b.host_arch,
            build_date: b.build_date,
            build_origin: b.build_origin,
            signed: b.signed,
            origin: b.origin,
            built_against_count: b.ibd_count,
        })
        .collect();
    builds.sort_by(|a, b| (&a.version, &a.host_arch, &a.sha256).cmp(&(&b.version, &b.host_arch, &b.sha256)));
    let rebuilds = jobs
        .into_iter()
        .map(|job| {
            let (mine, rest): (Vec<_>, Vec<_>) = attempts.drain(..).partition(|a| a.job_id == job.id);
            attempts = rest;
            Job {
                attempts: mine
                    .into_iter()
                    .map(|a| Attempt {
                        attestation_url: a.attestation_sha256.as_ref().map(|s| format!("/cas/attestations/{s}")),
                        corroboration: corroboration.remove(&(a.job_id, a.fence)).unwrap_or_default(),
                        attempt: a,
                    })
                    .collect(),
                job,
            }
        })
        .collect();
    let data = SourcePage { source: name, builds, rebuilds };
    respond(JSON, &data, |d| {
        layout(
            &d.source,
            html! {
                h1 { "Source package " (d.source) }
                p { a href={ "/api/source/" (seg(&d.source)) } { "JSON" } }
                h2 { "Builds" }
                @if d.builds.is_empty() { p.muted { "No buildinfo of this source is known." } }
                table {
                    tr { th { "version" } th { "arch" } th { "built" } th { "built against" } th { "files (shipped in)" }
                         th { "buildinfo" } }
                    @for b in &d.builds {
                        tr {
                            td { code { (b.version) } }
                            td { (b.host_arch) }
                            td { (b.build_date.as_deref().unwrap_or("")) br; span.muted { (b.build_origin.as_deref().unwrap_or("")) } }
                            td { a href=(b.built_against) { (b.built_against_count) " packages" } }
                            td { @for (f, places) in &b.files { (f) @if !places.is_empty() { " (" (places.join(", ")) ")" } br; } }
                            td { code { (b.sha256.get(..16).unwrap_or(&b.sha256)) "…" } @if b.signed { " signed" } br;
                                 span.muted { (b.origin) } }
                        }
                    }
                }
                h2 { "Rebuild history" }
                @if d.rebuilds.is_empty() { p.muted { "Never queued for a verification rebuild." } }
                @for j in &d.rebuilds {
                    h3 { "Job " (j.job.id) ": " (j.job.version) " " (j.job.arch) " — " (j.job.state.as_str())
                         " (" (j.job.priority.as_str()) ", " (j.job.origin) ")" }
                    @if j.attempts.is_empty() { p.muted { "No attempt yet." } }
                    @else {
                        table {
                            tr { th { "lease" } th { "operator / node" } th { "started" } th { "ended" } th { "outcome" }
                                 th { "details" } th { "attestation" } th { "binaries vs. buildinfo" } }
                            @for a in &j.attempts {
                                tr {
                                    td.n { (a.attempt.fence) }
                                    td { (a.attempt.operator) " / " (a.attempt.node) }
                                    td { (when(a.attempt.started_at)) }
                                    td { (a.attempt.finished_at.map(when).unwrap_or_default()) }
                                    td.state { (a.attempt.outcome.as_deref().unwrap_or("running"))
                                               @if let Some(c) = &a.attempt.failure_code { " (" (c) ")" } }
                                    td { (a.attempt.message) @for x in &a.attempt.differences { br; (x) } }
                                    td { @if let Some(u) = &a.attestation_url { a href=(u) download { "in-toto link" } } }
                                    td {
                                        @for c in a.corroboration.iter().filter(|c| c.finding.verdict == Verdict::Disagrees) {
                                            span.state.error { "disagrees" } ": " (c.line()) br;
                                        }
                                        @let others: Vec<&Corroboration> = a.corroboration.iter().filter(|c| c.finding.verdict != Verdict::Disagrees).collect();
                                        @for c in others.iter().take(SHOWN_FINDINGS) {
                                            span.state { (verdict_name(c.finding.verdict)) } ": " (c.line()) br;
                                        }
                                        @if others.len() > SHOWN_FINDINGS {
                                            span.muted { "… and " (others.len() - SHOWN_FINDINGS) " more in the JSON" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        )
    })
}

/// One installed package of a build.
#[derive(Serialize)]
struct Installed {
    package: String,
    arch: Option<String>,
    version: String,
}

/// `/source/{name}/{sha256}/built-against` as data.
#[derive(Serialize)]
struct BuiltAgainst {
    source: String,
    version: String,
    arch: String,
    sha256: String,
    installed: Vec<Installed>,
}

/// `/source/{name}/{sha256}/built-against`: every Installed-Build-Depends entry of one build.
pub async fn built_against<S: BuildStore, const JSON: bool>(
    State(web): St<S>,
    Path((name, sha256)): Path<(String, String)>,
) -> WebResult {
    let text = web
        .store
        .raw_buildinfo(&sha256)
        .await?
        .ok_or_else(|| WebError::not_found(format!("no build with buildinfo SHA-256 {sha256}")))?;
    let b = Buildinfo::parse(&text).map_err(|e| {
        tracing::error!(%sha256, error = %e, "stored buildinfo does not parse");
        WebError::not_found(format!("stored buildinfo {sha256} does not parse: {e}"))
    })?;
    if b.source != name {
        return Err(WebError::not_found(format!("build {sha256} is of source {:?}, not {name:?}", b.source)));
    }
    let data = BuiltAgainst {
        arch: b.host_architecture().to_owned(),
        source: b.source,
        version: b.version.to_string(),
        sha256,
        installed: b
            .installed_build_depends
            .into_iter()
            .map(|d| Installed { package: d.name, arch: d.arch, version: d.version.to_string() })
            .collect(),
    };
    respond(JSON, &data, |d| {
        layout(
            &format!("{} built against", d.source),
            html! {
                h1 { a href={ "/source/" (seg(&d.source)) } { (d.source) } " " (d.version) " " (d.arch) " was built against" }
                p.muted { "Buildinfo " code { (d.sha256) } ": " (d.installed.len()) " installed packages." }
                table {
                    tr { th { "package" } th { "version" } }
                    @for i in &d.installed {
                        tr { td { (i.package) @if let Some(a) = &i.arch { ":" (a) } } td { code { (i.version) } } }
                    }
                }
            },
        )
    })
}

/// `/cas/attestations/{sha256}`: a stored attestation (an in-toto link, JSON), from the
/// database, else (accepted by an older version) from the content store.
pub async fn attestation<S: RebuildStore>(State(web): St<S>, Path(sha256): Path<String>) -> WebResult {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(WebError::bad_request(format!("{sha256:?} is not a lower-case hex SHA-256")));
    }
    let blob = match stored_link(&*web.store, &web.data_dir, &sha256).await {
        Ok(blob) => blob,
        Err(LinkError::Store(e)) => return Err(e.into()),
        Err(LinkError::Cas(e)) => {
            tracing::error!(error = %e, "reading an attestation failed");
            return Err(WebError::not_found(e.to_string()));
        }
    }
    .ok_or_else(|| WebError::not_found(format!("no attestation {sha256}")))?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{sha256}.link\""))
        .map_err(|e| WebError::bad_request(e.to_string()))?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json")), (header::CONTENT_DISPOSITION, disposition)],
        blob,
    )
        .into_response())
}

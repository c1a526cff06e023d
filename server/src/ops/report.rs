//! Recording a node's report: the lease checked before the report's bulk is received, the
//! signed attestation checked against the node's registered key, the produced buildinfo
//! parsed, every file judged against the original build and the archive, what the binaries
//! say corroborated, all of it stored in one transaction; then campaign coverage re-judged and
//! the produced buildinfo ingested as a build.

use std::sync::Arc;

use debcover_core::model::NewBuild;
use debcover_core::rebuild::corroborate::EmbeddedBinary;
use debcover_core::rebuild::{
    self, Artifact, Attestation, AttemptOutcome, AttemptReport, FileVerdict, JobState, LeaseView, NodeRecord, Refusal,
};
use debcover_core::store::{Store, now_unix};
use debcover_wire::rebuild::Reported;

use super::{Error, Result};
use crate::Coordinator;
use crate::cas::{BlobWriter, CasError};

/// Most artifacts in one report.
pub const MAX_ARTIFACTS: usize = 10_000;

/// The view of the lease a report is about, if `node` holds it with `fence`: checked before
/// the report's logs are received (the store checks again when it records the result).
pub async fn lease_for_report<S: Store>(c: &Coordinator<S>, node: &NodeRecord, job_id: i64, fence: i64) -> Result<Arc<LeaseView>> {
    let job = match c.leases.get(job_id, fence, node.id, now_unix()) {
        Some(view) => view,
        None => Arc::new(c.store.lease_view(job_id).await?.ok_or(Error::Lease(Refusal::NoSuchJob))?),
    };
    if job.state != JobState::Leased || job.fence != fence {
        return Err(Error::Lease(Refusal::StaleFence { current: job.fence }));
    }
    if job.lease_node != Some(node.id) {
        return Err(Error::Lease(Refusal::NotYours));
    }
    Ok(job)
}

/// A report as received: the header's claims, the artifacts, the content-store blobs being
/// written (made visible only once the report is accepted), the produced buildinfo and the
/// signed attestation.
pub struct Received {
    /// The job.
    pub job_id: i64,
    /// The lease's fencing token.
    pub fence: i64,
    /// What the node says happened.
    pub result: Reported,
    /// The node's explanation of a failure.
    pub message: String,
    /// What the rebuilt binaries say about their build.
    pub embedded: Vec<EmbeddedBinary>,
    /// The node listed only part of it.
    pub embedded_truncated: bool,
    /// The produced files.
    pub artifacts: Vec<Artifact>,
    /// The build log being stored.
    pub log: Option<BlobWriter>,
    /// The produced buildinfo being stored.
    pub buildinfo: Option<BlobWriter>,
    /// The diffoscope report being stored.
    pub diffoscope: Option<BlobWriter>,
    /// The produced buildinfo's bytes (within the blob's limit), to be ingested as a build.
    pub produced: Vec<u8>,
    /// The signed attestation's bytes (empty: none).
    pub attestation: Vec<u8>,
}

/// What recording a report did.
#[derive(Debug)]
pub struct Recorded {
    /// The report as stored.
    pub report: AttemptReport,
    /// Every file's verdict (built results).
    pub verdicts: Vec<FileVerdict>,
    /// The job's state after it.
    pub state: JobState,
}

fn cas(e: CasError) -> Error {
    match e {
        CasError::TooLarge { .. } => Error::TooLarge(e.to_string()),
        other => {
            tracing::error!(error = %other, "content store failure");
            Error::Unavailable(other.to_string())
        }
    }
}

/// Check, judge and store `r` from `node` on the lease `job` (see the module documentation).
/// Nothing of a refused report is recorded: the lease stays and the node may report again.
pub async fn record<S: Store>(c: &Coordinator<S>, node: &NodeRecord, job: Arc<LeaseView>, r: Received) -> Result<Recorded> {
    let holder = format!("{}/{}", node.operator, node.name);
    if let Some(b) = r.embedded.iter().find(|b| !r.artifacts.iter().any(|a| a.name == b.deb)) {
        return Err(Error::Invalid(format!("embedded: {:?} is not one of the reported artifacts", b.deb)));
    }
    // A signed attestation must verify with the node's registered key and speak of this lease
    // and exactly these files; nothing is recorded otherwise. It is stored with the result, in
    // its transaction: a refused result leaves nothing behind.
    let attestation = if r.attestation.is_empty() {
        None
    } else {
        rebuild::attest::check(&r.attestation, &node.caps.public_key, r.job_id, r.fence, &r.artifacts)
            .map_err(|e| Error::Invalid(format!("attestation: {e}")))?;
        Some(Attestation::new(r.attestation))
    };
    // A built result's buildinfo must parse and describe the job's build before anything of the
    // report is recorded.
    let rebuilt = match (&r.result, r.produced.is_empty()) {
        (Reported::Built, false) => {
            let origin = format!("rebuild:{holder}:job-{}:fence-{}", r.job_id, r.fence);
            Some(prepare_produced(origin, r.produced, &job).await?)
        }
        _ => None,
    };
    let finish = |w: Option<BlobWriter>| async move {
        match w {
            Some(w) => w.finish().await.map_err(cas),
            None => Ok(None),
        }
    };
    let log_sha256 = finish(r.log).await?;
    let buildinfo_sha256 = finish(r.buildinfo).await?;
    let diffoscope_sha256 = finish(r.diffoscope).await?;
    let mut verdicts = Vec::new();
    let outcome = match r.result {
        Reported::Failed(code) => AttemptOutcome::Failed { code, message: r.message.chars().take(4096).collect() },
        Reported::EnvironmentMismatch(differences) => AttemptOutcome::EnvironmentMismatch { differences },
        Reported::Built => {
            let (outcome, v) = rebuild::judge(&job.checksums, &job.archive, &r.artifacts);
            verdicts = v;
            outcome
        }
    };
    if r.embedded_truncated {
        tracing::info!(job = r.job_id, fence = r.fence, node = %holder,
            "the node listed only part of what its binaries embed (bounds, or an unreadable .deb)");
    }
    let corroboration = match (&outcome, r.embedded.is_empty()) {
        (AttemptOutcome::Reproducible | AttemptOutcome::Unreproducible { .. }, false) => {
            corroborate(&*c.store, &job, r.embedded, &holder, r.job_id, r.fence).await
        }
        _ => Vec::new(),
    };
    let report = AttemptReport {
        outcome,
        artifacts: r.artifacts,
        buildinfo_sha256,
        log_sha256,
        diffoscope_sha256,
        attestation,
        corroboration,
    };
    let finished = c.store.finish_report(node.id, r.job_id, r.fence, &report, now_unix(), &c.settings.policy).await;
    // Ended or refused, the lease is not this node's to report on again.
    c.leases.forget(r.job_id);
    let finished = finished?.map_err(Error::Lease)?;
    let state = finished.state;
    crate::metrics::global().record_result(report.outcome.as_str());
    if state == JobState::Queued {
        c.work.notify_waiters();
    }
    tracing::debug!(job = r.job_id, fence = r.fence, node = %holder, outcome = report.outcome.as_str(),
        state = state.as_str(), "result recorded");
    // A built result can change the coverage of campaign items shipping this build (covered when
    // the job became verified; unreproducible or disagreement otherwise).
    if finished.campaign_items && matches!(report.outcome, AttemptOutcome::Reproducible | AttemptOutcome::Unreproducible { .. }) {
        super::campaigns::refresh(c, Some(std::slice::from_ref(&job.source))).await;
    }
    if let Some(nb) = rebuilt {
        // A test stops the coordinator here, between the two transactions, to show that the
        // start-up redo finishes the work (see `redo_produced`).
        if std::env::var("DEBCOVER_FAILPOINT").is_ok_and(|v| v == "after-result") {
            tracing::error!("failpoint after-result: aborting between the result and its produced buildinfo");
            std::process::abort();
        }
        // The result is recorded; the produced build is ingested like any other (a failure here
        // is logged: the buildinfo stays in the content-addressed store).
        let name = nb.origin.clone();
        match super::ingest::write_batch(c, vec![(name.clone(), Ok(nb))]).await {
            Ok(o) => tracing::debug!(origin = %name, status = ?o.first().map(|f| f.status), "produced buildinfo ingested"),
            Err(e) => tracing::error!(origin = %name, error = %e, "ingesting the produced buildinfo failed"),
        }
    }
    Ok(Recorded { report, verdicts, state })
}

/// Ingest the produced buildinfos of recorded built results that are not builds yet. A
/// result's transaction records the SHA-256 of the buildinfo its node produced (the blob was
/// synced to the content store before); the build is ingested right after, in a second
/// transaction. A coordinator killed between the two finds the difference here when it
/// starts, and ingests what is missing from the blob: nothing a node was told is recorded
/// goes missing. Failures are logged; the next start tries again.
pub async fn redo_produced<S: Store>(c: &Coordinator<S>) {
    let missing = match c.store.produced_not_ingested(10_000).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "cannot list produced buildinfos to ingest again");
            return;
        }
    };
    for p in missing {
        let origin = format!("rebuild:{}/{}:job-{}:fence-{}", p.operator, p.node, p.job_id, p.fence);
        let bytes = match crate::cas::read_blob(&c.settings.data_dir, crate::cas::BlobKind::Buildinfo, &p.sha256) {
            Ok(Some(b)) => b,
            Ok(None) => {
                tracing::error!(origin = %origin, sha256 = %p.sha256, "a recorded produced buildinfo is not in the content store");
                continue;
            }
            Err(e) => {
                tracing::error!(origin = %origin, error = %e, "cannot read a recorded produced buildinfo");
                continue;
            }
        };
        let limits = debcover_core::ingest::Limits::default();
        let name = origin.clone();
        let prepared = tokio::task::spawn_blocking(move || debcover_core::ingest::Preparer::new(limits).prepare(&name, &bytes)).await;
        let mut nb = match prepared {
            Ok(Ok(nb)) => nb,
            Ok(Err(e)) => {
                tracing::error!(origin = %origin, error = %e, "a recorded produced buildinfo does not parse");
                continue;
            }
            Err(e) => {
                tracing::error!(origin = %origin, error = %e, "parser task failed");
                continue;
            }
        };
        nb.rebuild_of = Some(p.build_id);
        match super::ingest::write_batch(c, vec![(origin.clone(), Ok(nb))]).await {
            Ok(_) => tracing::info!(origin = %origin, "produced buildinfo ingested after a restart (its result was recorded before the stop)"),
            Err(e) => tracing::error!(origin = %origin, error = %e, "ingesting a recorded produced buildinfo failed"),
        }
    }
}

/// Parse a produced .buildinfo (on a blocking thread) as a build reproducing `job`'s: it must
/// parse, and name the job's source and version.
async fn prepare_produced(origin: String, bytes: Vec<u8>, job: &LeaseView) -> Result<NewBuild> {
    let limits = debcover_core::ingest::Limits::default();
    let name = origin.clone();
    let mut nb = tokio::task::spawn_blocking(move || debcover_core::ingest::Preparer::new(limits).prepare(&name, &bytes))
        .await
        .map_err(|e| Error::Internal(format!("parser task failed: {e}")))?
        .map_err(|e| Error::Invalid(format!("buildinfo: the produced .buildinfo does not parse: {e}")))?;
    if nb.info.source != job.source {
        return Err(Error::Invalid(format!(
            "buildinfo: the produced .buildinfo is of source {:?}, the job rebuilds {:?}",
            nb.info.source, job.source
        )));
    }
    if job.version.parse::<debversion::Version>().ok().as_ref() != Some(&nb.info.version) {
        return Err(Error::Invalid(format!(
            "buildinfo: the produced .buildinfo has version {}, the job rebuilds {}",
            nb.info.version, job.version
        )));
    }
    nb.rebuild_of = Some(job.build_id);
    Ok(nb)
}

/// What the rebuilt binaries say (`embedded`) against the original buildinfo's
/// Installed-Build-Depends; every disagreement is logged. Best effort: the buildinfo stays
/// authoritative, so a failure here is logged and yields no findings, never a refused report.
async fn corroborate<S: Store>(
    store: &S,
    job: &LeaseView,
    embedded: Vec<rebuild::corroborate::EmbeddedBinary>,
    holder: &str,
    job_id: i64,
    fence: i64,
) -> Vec<rebuild::corroborate::Corroboration> {
    let build = match store.builds_by_id(&[job.build_id]).await {
        Ok(b) => b.into_iter().next(),
        Err(e) => {
            tracing::error!(job = job_id, error = %e, "corroboration skipped: the original build could not be read");
            return Vec::new();
        }
    };
    let Some(build) = build else {
        tracing::error!(job = job_id, build = job.build_id, "corroboration skipped: the original build is not stored");
        return Vec::new();
    };
    let text = match store.raw_buildinfo(&build.sha256).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            tracing::error!(job = job_id, build = %build.sha256, "corroboration skipped: the original buildinfo text is not stored");
            return Vec::new();
        }
        Err(e) => {
            tracing::error!(job = job_id, build = %build.sha256, error = %e, "corroboration skipped: the original buildinfo could not be read");
            return Vec::new();
        }
    };
    let computed = tokio::task::spawn_blocking(move || {
        let b = debcover_formats::Buildinfo::parse(&text).map_err(|e| e.to_string())?;
        let installed: Vec<(String, String)> =
            b.installed_build_depends.iter().map(|d| (d.name.clone(), d.version.to_string())).collect();
        Ok::<_, String>(rebuild::corroborate::findings(&embedded, &installed))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let findings = match computed {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(job = job_id, build = %build.sha256, error = %e, "corroboration skipped: the original buildinfo does not parse");
            return Vec::new();
        }
    };
    for c in findings.iter().filter(|c| c.finding.verdict == debcover_formats::corroborate::Verdict::Disagrees) {
        tracing::warn!(build = %build.sha256, job = job_id, fence, node = %holder, deb = %c.deb, binary = %c.finding.binary,
            field = %c.finding.subject, embedded = %c.finding.embedded, declared = %c.finding.declared.join(", "),
            "corroboration: a rebuilt binary disagrees with the original buildinfo (reported; the buildinfo stays authoritative)");
    }
    findings
}

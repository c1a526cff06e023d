//! Ingesting buildinfos and archive indices: parse (on blocking threads), store in one
//! transaction, count, and re-judge the campaign items the new evidence touches.

use std::io::Read;

use debcover_core::ingest;
use debcover_core::model::{NewBuild, PackagesImport, SourcesImport, Stored};
use debcover_core::store::Store;
use debcover_formats::ParseError;

use super::{Error, Result};
use crate::Coordinator;

/// The parsed files of one batch as the client sent it, each with its name.
pub type ParsedBatch = Vec<(String, std::result::Result<NewBuild, ParseError>)>;

/// What ingestion checks of buildinfo signatures: the configured keyrings and the policy.
#[derive(Debug, Clone, Default)]
pub struct Signatures {
    /// The public keys signatures are checked against.
    pub keyring: std::sync::Arc<debcover_core::signature::Keyring>,
    /// What is accepted.
    pub policy: debcover_core::signature::Policy,
}

impl Signatures {
    /// Check a parsed buildinfo's signature: refused (naming the file and why) when the
    /// policy says so, else kept with its verified signer. Nothing to do (and no cost) with no
    /// keyring and policy `any`.
    pub fn judge(&self, name: &str, raw: &[u8], mut b: NewBuild) -> std::result::Result<NewBuild, ParseError> {
        if self.keyring.is_empty() && self.policy == debcover_core::signature::Policy::Any {
            return Ok(b);
        }
        let check = self.keyring.check(raw);
        self.policy.judge(&check).map_err(|why| ParseError::new(format!("signature: {why}")).in_file(name))?;
        b.signer = check.signer();
        Ok(b)
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Stored as a new build.
    Ingested,
    /// A build with the same SHA-256 was stored already.
    AlreadyKnown,
    /// Not stored: see the error.
    Rejected,
}

/// One file's outcome.
#[derive(Debug, Clone)]
pub struct FileOutcome {
    /// Where the client found it.
    pub name: String,
    /// What happened.
    pub status: FileStatus,
    /// Its SHA-256 (empty when rejected before hashing).
    pub build_id: String,
    /// Why it was rejected: names the file, the field and the line.
    pub error: String,
    /// `source version arch`, for display.
    pub summary: String,
}

/// Parse one batch (`(name, bytes)` per file) under `limits`; every file gets a result.
pub fn parse_batch(limits: ingest::Limits, signatures: &Signatures, files: Vec<(String, Vec<u8>)>) -> ParsedBatch {
    let start = std::time::Instant::now();
    let n = files.len();
    let mut preparer = ingest::Preparer::new(limits);
    let parsed = files
        .into_iter()
        .map(|(name, content)| {
            let prepared = preparer.prepare(&name, &content).and_then(|b| signatures.judge(&name, &content, b));
            (name, prepared)
        })
        .collect::<Vec<_>>();
    tracing::debug!(files = n, elapsed_ms = start.elapsed().as_millis() as u64, "batch parsed");
    parsed
}

/// Store several parsed batches in one transaction; the outcomes per batch, in order.
pub async fn write_batches<S: Store>(c: &Coordinator<S>, batches: Vec<ParsedBatch>) -> Result<Vec<Vec<FileOutcome>>> {
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    let all: ParsedBatch = batches.into_iter().flatten().collect();
    let mut outcomes = write_batch(c, all).await?.into_iter();
    Ok(sizes.into_iter().map(|n| outcomes.by_ref().take(n).collect()).collect())
}

/// Store the parsed files of one batch and say what happened to each: the ingestion path of
/// `debcover ingest`, and of the buildinfos that rebuilds produce.
pub async fn write_batch<S: Store>(c: &Coordinator<S>, files: ParsedBatch) -> Result<Vec<FileOutcome>> {
    let mut outcomes = Vec::with_capacity(files.len());
    let mut good = Vec::new();
    let mut slots = Vec::new();
    for (name, parsed) in files {
        match parsed {
            Ok(b) => {
                slots.push(outcomes.len());
                outcomes.push(FileOutcome {
                    name,
                    status: FileStatus::Rejected,
                    build_id: b.sha256.clone(),
                    error: String::new(),
                    summary: format!("{} {} {}", b.info.source, b.info.version, b.info.host_architecture()),
                });
                good.push(b);
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "buildinfo rejected");
                outcomes.push(FileOutcome {
                    name,
                    status: FileStatus::Rejected,
                    build_id: String::new(),
                    error: e.to_string(),
                    summary: String::new(),
                });
            }
        }
    }
    if !good.is_empty() {
        let start = std::time::Instant::now();
        let stored = c.store.ingest_builds(&good).await?;
        tracing::debug!(builds = good.len(), elapsed_ms = start.elapsed().as_millis() as u64, "batch stored");
        let mut sources: Vec<String> = good
            .iter()
            .zip(&stored)
            .filter(|(_, s)| **s == Stored::Inserted)
            .map(|(b, _)| b.info.source.clone())
            .collect();
        sources.sort();
        sources.dedup();
        super::campaigns::refresh(c, Some(&sources)).await;
        for (slot, s) in slots.into_iter().zip(stored) {
            outcomes[slot].status = match s {
                Stored::Inserted => FileStatus::Ingested,
                Stored::AlreadyKnown => FileStatus::AlreadyKnown,
            };
        }
    }
    let count = |s: FileStatus| outcomes.iter().filter(|o| o.status == s).count() as u64;
    crate::metrics::global().record_buildinfos(
        count(FileStatus::Ingested),
        count(FileStatus::AlreadyKnown),
        count(FileStatus::Rejected),
    );
    Ok(outcomes)
}

/// Which index an archive import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// A Packages index: a suite's binaries for one architecture.
    Packages,
    /// A Sources index: a suite's sources.
    Sources,
}

/// What an archive import asks for.
#[derive(Debug, Clone)]
pub struct ArchiveImport {
    /// The suite the index belongs to.
    pub suite: String,
    /// Packages or Sources.
    pub kind: IndexKind,
    /// Where it came from (path or URL), for messages and the import history.
    pub name: String,
    /// For Packages: the architecture; None: inferred from the entries.
    pub architecture: Option<String>,
}

/// What an archive import did.
#[derive(Debug, Clone)]
pub struct ArchiveOutcome {
    /// The architecture of a Packages index (inferred when not given); empty for Sources.
    pub architecture: String,
    /// Counts.
    pub summary: debcover_core::model::ImportSummary,
    /// SHA-256 of the index bytes as sent.
    pub sha256: String,
}

/// Read, parse and apply one archive index (`reader`: its bytes as sent, plain or compressed)
/// in one transaction, then re-judge every campaign item. Blocking reads happen on a blocking
/// thread.
pub async fn import_archive<S: Store>(
    c: &Coordinator<S>,
    import: ArchiveImport,
    reader: impl Read + Send + 'static,
) -> Result<ArchiveOutcome> {
    if import.suite.is_empty() {
        return Err(Error::Invalid(format!("{}: no suite given", import.name)));
    }
    let limits = c.settings.limits;
    let name = import.name.clone();
    let task_failed = |e: tokio::task::JoinError| Error::Internal(format!("parser task failed: {e}"));
    match import.kind {
        IndexKind::Packages => {
            let (entries, sha256) = tokio::task::spawn_blocking(move || ingest::read_packages(&name, reader, &limits))
                .await
                .map_err(task_failed)?
                .map_err(|e| Error::Invalid(e.to_string()))?;
            let arch = match import.architecture {
                Some(a) => a,
                None => ingest::infer_architecture(&import.name, &entries).map_err(|e| Error::Invalid(e.to_string()))?,
            };
            let packages = PackagesImport {
                suite: import.suite.clone(),
                arch: arch.clone(),
                origin: import.name.clone(),
                sha256: sha256.clone(),
                entries,
            };
            let s = c.store.import_packages(&packages).await?;
            crate::metrics::global().packages_entries.inc_by(s.entries);
            super::campaigns::refresh(c, None).await;
            tracing::info!(suite = %import.suite, %arch, origin = %import.name, entries = s.entries,
                added = s.added, removed = s.removed, linked = s.linked, "Packages index applied");
            Ok(ArchiveOutcome { architecture: arch, summary: s, sha256 })
        }
        IndexKind::Sources => {
            let (entries, sha256) = tokio::task::spawn_blocking(move || ingest::read_sources(&name, reader, &limits))
                .await
                .map_err(task_failed)?
                .map_err(|e| Error::Invalid(e.to_string()))?;
            let sources = SourcesImport { suite: import.suite.clone(), origin: import.name.clone(), sha256: sha256.clone(), entries };
            let s = c.store.import_sources(&sources).await?;
            tracing::info!(suite = %import.suite, origin = %import.name, entries = s.entries,
                added = s.added, removed = s.removed, "Sources index applied");
            Ok(ArchiveOutcome { architecture: String::new(), summary: s, sha256 })
        }
    }
}

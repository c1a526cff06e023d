//! Keys and attestations: the coordinator's signing key (listed in the store on first use),
//! every published key, and a build's stored signed links with the layout that names their
//! keys, for `debcover attestations --export` and offline verification.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use debcover_core::attestation::coordinator_key::CoordinatorKey;
use debcover_core::attestation::{PublishedKey, export, layout};
use debcover_core::rebuild::{JobFilter, JobRecord, canonical_arch};
use debcover_core::store::{RebuildStore, Store, StoreError, now_unix};

use super::{Error, Result};
use crate::Coordinator;
use crate::cas::{BlobKind, CasError, blob_path, read_blob};

/// Most builds answered at once.
pub const MAX_BUILDS: usize = 100;

/// The coordinator's key, listed in the store.
pub async fn key<S: Store>(c: &Coordinator<S>) -> Result<Arc<CoordinatorKey>> {
    let key = c.key.clone().map_err(Error::Internal)?;
    c.key_recorded
        .get_or_try_init(|| async { c.store.record_coordinator_key(&key.openssh_public(), now_unix()).await })
        .await?;
    Ok(key)
}

/// Every published key: the nodes' (with their validity periods) and the coordinators'.
pub async fn keys<S: Store>(c: &Coordinator<S>) -> Result<(Vec<PublishedKey>, Vec<PublishedKey>)> {
    key(c).await?;
    let nodes = c.store.node_keys().await?;
    let coordinators = c.store.coordinator_keys().await?;
    Ok((nodes, coordinators))
}

/// A stored signed link of an attempt.
#[derive(Debug, Clone)]
pub struct StoredAttestation {
    /// The job.
    pub job_id: i64,
    /// The lease's fencing token.
    pub fence: i64,
    /// The attesting operator.
    pub operator: String,
    /// The attesting node.
    pub node: String,
    /// The key id the link is attributed to.
    pub keyid: String,
    /// The attempt's outcome.
    pub outcome: String,
    /// When the attempt ended.
    pub finished_at: i64,
    /// SHA-256 of the link.
    pub attestation_sha256: String,
    /// The link, byte for byte.
    pub link: Vec<u8>,
}

/// A build's attestations with what checking them needs.
#[derive(Debug, Clone)]
pub struct AttestedBuild {
    /// The build (SHA-256 of its buildinfo).
    pub build_id: String,
    /// Source package.
    pub source: String,
    /// Version.
    pub version: String,
    /// Host architecture.
    pub architecture: String,
    /// The binaries the buildinfo lists, `(name, sha256)`.
    pub files: Vec<(String, String)>,
    /// One link per signing key: the latest.
    pub attestations: Vec<StoredAttestation>,
    /// The published keys of those links.
    pub keys: Vec<PublishedKey>,
    /// The in-toto layout naming them, signed by the coordinator.
    pub layout: Vec<u8>,
    /// The coordinator's key.
    pub coordinator_key: PublishedKey,
    /// The layout's threshold.
    pub threshold: u32,
    /// The export manifest, signed by the coordinator key.
    pub manifest: Vec<u8>,
}

/// What an attestation export asks for.
#[derive(Debug, Clone, Default)]
pub struct AttestationsRequest {
    /// Source package.
    pub source: String,
    /// Version.
    pub version: String,
    /// Host architecture; empty: every one.
    pub architecture: String,
    /// The layout's threshold: at least the coordinator's k (a caller may ask for more, never
    /// less); 0: k.
    pub threshold: u32,
}

/// The stored attestations of a build (see [`AttestedBuild`]).
pub async fn build_attestations<S: Store>(c: &Coordinator<S>, r: AttestationsRequest) -> Result<Vec<AttestedBuild>> {
    if r.source.is_empty() {
        return Err(Error::Invalid("source: required".into()));
    }
    if r.version.is_empty() {
        return Err(Error::Invalid("version: required".into()));
    }
    r.version
        .parse::<debversion::Version>()
        .map_err(|e| Error::Invalid(format!("version: {:?} is not a Debian version: {e}", r.version)))?;
    let arch = (!r.architecture.is_empty()).then(|| canonical_arch(&r.architecture));
    // The coordinator signs its own rule, never a weaker one a caller asks for.
    let threshold = r.threshold.max(c.settings.policy.verifiers).max(1);
    let key = key(c).await?;
    let (node_keys, coordinator_keys) = keys(c).await?;
    let coordinator = coordinator_keys
        .iter()
        .find(|k| k.key_bytes() == Some(key.public_bytes()))
        .cloned()
        .ok_or_else(|| Error::Internal("the coordinator key is not listed in the store".into()))?;
    let filter = JobFilter { source: Some(r.source), version: Some(r.version), limit: 1000, ..Default::default() };
    let jobs = c.store.jobs(&filter).await?;
    let jobs: Vec<_> = jobs.into_iter().filter(|j| arch.as_ref().is_none_or(|a| &j.arch == a)).collect();
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let attempts = c.store.attempts(&ids).await?;
    // Jobs by build: a build verified again later has several.
    let mut by_build: BTreeMap<&str, Vec<&JobRecord>> = BTreeMap::new();
    for j in &jobs {
        by_build.entry(j.build_sha256.as_str()).or_default().push(j);
    }
    if by_build.len() > MAX_BUILDS {
        return Err(Error::Invalid(format!(
            "{} builds match: name an architecture (at most {MAX_BUILDS} are answered)",
            by_build.len()
        )));
    }
    let now = now_unix();
    let mut builds = Vec::new();
    for (build_id, jobs) in by_build {
        let first = jobs[0];
        let view = c.store.lease_view(first.id).await?;
        let files: Vec<(String, String)> = view
            .iter()
            .flat_map(|v| &v.checksums)
            .filter(|(n, _)| n.ends_with(".deb") || n.ends_with(".udeb") || n.ends_with(".ddeb"))
            .filter_map(|(n, s)| s.as_ref().map(|s| (n.clone(), s.clone())))
            .collect();
        // One link per operator (an operator counts once per build, whichever node or job
        // attested), attributed to the registered key that was the node's when the link was
        // accepted (never to what the link says about itself): the latest.
        let mut by_operator: BTreeMap<String, (StoredAttestation, PublishedKey)> = BTreeMap::new();
        for a in attempts.iter().filter(|a| jobs.iter().any(|j| j.id == a.job_id)) {
            let (Some(sha), Some(finished)) = (&a.attestation_sha256, a.finished_at) else {
                continue;
            };
            let link = match stored_link(&*c.store, &c.settings.data_dir, sha).await {
                Ok(Some(link)) => link,
                Ok(None) => {
                    return Err(Error::Internal(format!("attestation {sha} is not stored")));
                }
                Err(LinkError::Store(e)) => return Err(Error::Store(e)),
                Err(LinkError::Cas(e)) => {
                    return Err(Error::Internal(format!("attestation {sha}: {e}")));
                }
            };
            let Some(published) =
                node_keys.iter().find(|k| k.operator == a.operator && k.node == a.node && k.valid_at(finished)).cloned()
            else {
                tracing::warn!(operator = %a.operator, node = %a.node, attestation = %sha, "no registered key for a stored link: left out");
                continue;
            };
            let entry = StoredAttestation {
                job_id: a.job_id,
                fence: a.fence,
                operator: a.operator.clone(),
                node: a.node.clone(),
                keyid: published.keyid(),
                outcome: a.outcome.clone().unwrap_or_default(),
                finished_at: finished,
                attestation_sha256: sha.clone(),
                link,
            };
            match by_operator.get(&a.operator) {
                Some((old, _)) if old.finished_at > finished => {}
                _ => {
                    by_operator.insert(a.operator.clone(), (entry, published));
                }
            }
        }
        let by_key = by_operator;
        let keys: Vec<PublishedKey> = by_key.values().map(|(_, k)| k.clone()).collect();
        let functionaries: Vec<[u8; 32]> = keys.iter().filter_map(PublishedKey::key_bytes).collect();
        let signed = layout::sign(&key, &functionaries, threshold, now + layout::LAYOUT_VALIDITY_SECS);
        let attestations: Vec<StoredAttestation> = by_key.into_values().map(|(a, _)| a).collect();
        let manifest = export::Manifest {
            format: export::FORMAT.into(),
            build: build_id.to_owned(),
            source: first.source.clone(),
            version: first.version.clone(),
            architecture: first.arch.clone(),
            artifacts: files.iter().cloned().collect(),
            layout: Some(export::LAYOUT.into()),
            layout_threshold: threshold,
            keys: std::iter::once(&coordinator)
                .chain(&keys)
                .map(|k| export::ManifestKey {
                    file: export::key_file(k.role, &k.keyid()),
                    keyid: k.keyid(),
                    role: k.role,
                    operator: k.operator.clone(),
                    node: k.node.clone(),
                    valid_from: k.valid_from,
                    valid_until: k.valid_until,
                })
                .collect(),
            links: attestations
                .iter()
                .map(|a| export::ManifestLink {
                    file: export::link_file(&a.keyid),
                    keyid: a.keyid.clone(),
                    operator: a.operator.clone(),
                    node: a.node.clone(),
                    outcome: a.outcome.clone(),
                    time: a.finished_at,
                })
                .collect(),
        };
        builds.push(AttestedBuild {
            build_id: build_id.to_owned(),
            source: first.source.clone(),
            version: first.version.clone(),
            architecture: first.arch.clone(),
            files,
            attestations,
            keys,
            layout: signed,
            coordinator_key: coordinator.clone(),
            threshold,
            manifest: export::sign_manifest(&key, &manifest),
        });
    }
    Ok(builds)
}

/// Why a stored link could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The content store failed (a link accepted by an older version).
    #[error(transparent)]
    Cas(#[from] CasError),
}

/// A node's signed link stored under `sha256`, byte for byte: from the database, where results
/// store them (migration 0012), else from the content store under `data_dir`, where versions
/// before it kept them as files (`DATA_DIR/cas/attestations`). `None` when neither has it.
pub async fn stored_link<S: RebuildStore>(store: &S, data_dir: &Path, sha256: &str) -> std::result::Result<Option<Vec<u8>>, LinkError> {
    if let Some(body) = store.attestation(sha256).await? {
        return Ok(Some(body));
    }
    let (root, key) = (data_dir.to_path_buf(), sha256.to_owned());
    let read = tokio::task::spawn_blocking(move || read_blob(&root, BlobKind::Attestation, &key)).await;
    Ok(read.map_err(|e| CasError::Io {
        what: "read",
        path: blob_path(data_dir, BlobKind::Attestation, sha256),
        source: std::io::Error::other(e),
    })??)
}

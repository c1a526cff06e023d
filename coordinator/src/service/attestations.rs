//! The `Attestations` gRPC service (open, read-only): every published key, and a build's stored
//! in-toto links with the layout the coordinator signs for them. Requests are validated and
//! converted here, once; keys come from [`crate::storage::KeyStore`], links byte for byte from
//! the database ([`stored_link`]: the content store for links accepted by older versions), the
//! layout from [`crate::attestation::layout`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use debcover_proto::v1 as pb;
use debcover_proto::v1::attestations_server::Attestations;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

use super::convert::store_status;
use crate::attestation::coordinator_key::CoordinatorKey;
use crate::attestation::{PublishedKey, layout};
use crate::rebuild::cas::{BlobKind, CasError, blob_path, read_blob};
use super::rebuild::RebuildSettings;
use crate::rebuild::{JobFilter, canonical_arch};
use crate::storage::{KeyStore, RebuildStore, StoreError, now_unix};

/// Most builds answered at once.
pub const MAX_BUILDS: usize = 100;

/// The service.
pub struct AttestationService<S> {
    store: Arc<S>,
    settings: Arc<RebuildSettings>,
    /// Loaded (or made) when the service is built, so a first start creates it.
    key: Result<Arc<CoordinatorKey>, String>,
    /// Set once the key is listed in the store (done on the first call).
    recorded: OnceCell<()>,
}

impl<S: KeyStore> AttestationService<S> {
    /// The service over `store`; the coordinator key lives in `settings.data_dir` and is made
    /// there if missing (a failure is logged and answered to every call).
    pub fn new(store: Arc<S>, settings: Arc<RebuildSettings>) -> Self {
        let key = CoordinatorKey::load_or_create(&settings.data_dir).map(Arc::new).map_err(|e| {
            tracing::error!(error = %e, "no coordinator key: layouts cannot be signed");
            e.to_string()
        });
        if let Ok(k) = &key {
            tracing::info!(key = %k.openssh_public(), path = %k.path.display(), "coordinator key");
        }
        AttestationService { store, settings, key, recorded: OnceCell::new() }
    }

    /// The key, listed in the store.
    async fn key(&self) -> Result<Arc<CoordinatorKey>, Status> {
        let key = self.key.clone().map_err(Status::internal)?;
        self.recorded
            .get_or_try_init(|| async { self.store.record_coordinator_key(&key.openssh_public(), now_unix()).await })
            .await
            .map_err(store_status)?;
        Ok(key)
    }

    async fn all_keys(&self) -> Result<(Vec<PublishedKey>, Vec<PublishedKey>), Status> {
        self.key().await?;
        let nodes = self.store.node_keys().await.map_err(store_status)?;
        let coordinators = self.store.coordinator_keys().await.map_err(store_status)?;
        Ok((nodes, coordinators))
    }
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
pub async fn stored_link<S: RebuildStore>(store: &S, data_dir: &Path, sha256: &str) -> Result<Option<Vec<u8>>, LinkError> {
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

/// A published key on the wire.
pub fn key_wire(k: &PublishedKey) -> pb::PublishedKey {
    pb::PublishedKey {
        role: k.role.as_str().to_owned(),
        operator: k.operator.clone(),
        node: k.node.clone(),
        keyid: k.keyid(),
        openssh: k.public_key.clone(),
        pem: k.pem(),
        valid_from: k.valid_from,
        valid_until: k.valid_until.unwrap_or_default(),
    }
}

/// A published key from the wire (the client side of the conversion).
pub fn key_from_wire(k: &pb::PublishedKey) -> Result<PublishedKey, String> {
    Ok(PublishedKey {
        role: k.role.parse().map_err(|e| format!("key role: {e}"))?,
        operator: k.operator.clone(),
        node: k.node.clone(),
        public_key: k.openssh.clone(),
        valid_from: k.valid_from,
        valid_until: (k.valid_until != 0).then_some(k.valid_until),
    })
}

/// The key id a link's (first) signature names.
fn link_keyid(link: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(link).ok()?;
    v.get("signatures")?.get(0)?.get("keyid")?.as_str().map(str::to_owned)
}

#[tonic::async_trait]
impl<S: KeyStore> Attestations for AttestationService<S> {
    async fn list_keys(&self, _request: Request<pb::ListKeysRequest>) -> Result<Response<pb::ListKeysResponse>, Status> {
        let (nodes, coordinators) = self.all_keys().await?;
        Ok(Response::new(pb::ListKeysResponse { keys: coordinators.iter().chain(&nodes).map(key_wire).collect() }))
    }

    async fn build_attestations(
        &self,
        request: Request<pb::BuildAttestationsRequest>,
    ) -> Result<Response<pb::BuildAttestationsResponse>, Status> {
        let r = request.into_inner();
        if r.source.is_empty() {
            return Err(Status::invalid_argument("source: required"));
        }
        if r.version.is_empty() {
            return Err(Status::invalid_argument("version: required"));
        }
        r.version
            .parse::<debversion::Version>()
            .map_err(|e| Status::invalid_argument(format!("version: {:?} is not a Debian version: {e}", r.version)))?;
        let arch = (!r.architecture.is_empty()).then(|| canonical_arch(&r.architecture));
        let threshold = if r.threshold == 0 { self.settings.policy.verifiers.max(1) } else { r.threshold };
        let key = self.key().await?;
        let (node_keys, coordinator_keys) = self.all_keys().await?;
        let coordinator = coordinator_keys
            .iter()
            .find(|k| k.key_bytes() == Some(key.public_bytes()))
            .cloned()
            .ok_or_else(|| Status::internal("the coordinator key is not listed in the store"))?;
        let filter = JobFilter { source: Some(r.source), version: Some(r.version), limit: 1000, ..Default::default() };
        let jobs = self.store.jobs(&filter).await.map_err(store_status)?;
        let jobs: Vec<_> = jobs.into_iter().filter(|j| arch.as_ref().is_none_or(|a| &j.arch == a)).collect();
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let attempts = self.store.attempts(&ids).await.map_err(store_status)?;
        // Jobs by build: a build verified again later has several.
        let mut by_build: BTreeMap<&str, Vec<&crate::rebuild::JobRecord>> = BTreeMap::new();
        for j in &jobs {
            by_build.entry(j.build_sha256.as_str()).or_default().push(j);
        }
        if by_build.len() > MAX_BUILDS {
            return Err(Status::invalid_argument(format!(
                "{} builds match: name an architecture (at most {MAX_BUILDS} are answered)",
                by_build.len()
            )));
        }
        let now = now_unix();
        let mut builds = Vec::new();
        for (build_id, jobs) in by_build {
            let first = jobs[0];
            let view = self.store.lease_view(first.id).await.map_err(store_status)?;
            let files: Vec<pb::AttestedFile> = view
                .iter()
                .flat_map(|v| &v.checksums)
                .filter(|(n, _)| n.ends_with(".deb") || n.ends_with(".udeb") || n.ends_with(".ddeb"))
                .filter_map(|(n, s)| s.as_ref().map(|s| pb::AttestedFile { name: n.clone(), sha256: s.clone() }))
                .collect();
            // One link per signing key (in-toto names links by key): the latest.
            let mut by_key: BTreeMap<String, (pb::StoredAttestation, Option<PublishedKey>)> = BTreeMap::new();
            for a in attempts.iter().filter(|a| jobs.iter().any(|j| j.id == a.job_id)) {
                let (Some(sha), Some(finished)) = (&a.attestation_sha256, a.finished_at) else { continue };
                let link = match stored_link(&*self.store, &self.settings.data_dir, sha).await {
                    Ok(Some(link)) => link,
                    Ok(None) => return Err(Status::internal(format!("attestation {sha} is not stored"))),
                    Err(LinkError::Store(e)) => return Err(store_status(e)),
                    Err(LinkError::Cas(e)) => return Err(Status::internal(format!("attestation {sha}: {e}"))),
                };
                let published = node_keys
                    .iter()
                    .find(|k| k.operator == a.operator && k.node == a.node && k.valid_at(finished) && {
                        let id = k.keyid();
                        link_keyid(&link).is_none_or(|l| l == id)
                    })
                    .cloned();
                let keyid = published.as_ref().map(PublishedKey::keyid).or_else(|| link_keyid(&link)).unwrap_or_default();
                let entry = pb::StoredAttestation {
                    job_id: a.job_id,
                    fence: a.fence,
                    operator: a.operator.clone(),
                    node: a.node.clone(),
                    keyid: keyid.clone(),
                    outcome: a.outcome.clone().unwrap_or_default(),
                    finished_at: finished,
                    attestation_sha256: sha.clone(),
                    link,
                };
                match by_key.get(&keyid) {
                    Some((old, _)) if old.finished_at > finished => {}
                    _ => {
                        by_key.insert(keyid, (entry, published));
                    }
                }
            }
            let keys: Vec<PublishedKey> = by_key.values().filter_map(|(_, k)| k.clone()).collect();
            let functionaries: Vec<[u8; 32]> = keys.iter().filter_map(PublishedKey::key_bytes).collect();
            let signed = layout::sign(&key, &functionaries, threshold, now + layout::LAYOUT_VALIDITY_SECS);
            builds.push(pb::AttestedBuild {
                build_id: build_id.to_owned(),
                source: first.source.clone(),
                version: first.version.clone(),
                architecture: first.arch.clone(),
                files,
                attestations: by_key.into_values().map(|(a, _)| a).collect(),
                keys: keys.iter().map(key_wire).collect(),
                layout: signed,
                coordinator_key: Some(key_wire(&coordinator)),
                threshold,
            });
        }
        Ok(Response::new(pb::BuildAttestationsResponse { builds }))
    }
}

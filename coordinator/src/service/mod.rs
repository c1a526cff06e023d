//! The gRPC server behind `debcover serve`.
//!
//! Lifecycle: [`run`] takes an already-bound listener and a [`CancellationToken`]; it serves
//! until the token is cancelled, then stops accepting, lets in-flight calls finish, and returns.
//! Ingestion streams are bounded by a semaphore so that bulk loads cannot starve queries, and
//! every message size is capped.

use std::pin::Pin;
use std::sync::Arc;

use debcover_proto::v1 as pb;
use debcover_proto::v1::coordinator_server::Coordinator;
use futures::{FutureExt, Stream, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::index::BuiltWithIndex;
use crate::ingest::{self, Limits};
use crate::model::Stored;
use crate::query;
use crate::storage::{KeyStore, RebuildStore, Store};

pub mod attestations;
pub mod campaigns;
pub mod compact;
pub mod convert;
mod encoded;
pub mod rebuild;
mod stream_reader;

/// Largest gRPC message accepted: a batch of buildinfos or an index chunk.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Concurrent ingestion streams (buildinfo or archive); further ones wait.
pub const MAX_CONCURRENT_INGESTS: usize = 4;
/// Batches of one ingestion stream parsed ahead of the writer.
const PARSED_IN_FLIGHT: usize = 2;
/// Most files written in one transaction when parsed batches are waiting for the writer.
const MAX_MERGED_FILES: usize = 2048;

/// The service state shared by all connections.
pub struct CoordinatorService<S> {
    store: Arc<S>,
    limits: Limits,
    ingest_slots: Arc<Semaphore>,
    index: Arc<BuiltWithIndex>,
    /// The rebuild scheduler, set by [`run`]: builds that fix campaign items are queued for
    /// verification through it.
    scheduler: Option<Arc<rebuild::RebuildSettings>>,
}

impl<S: Store> CoordinatorService<S> {
    /// A service over `store` with the given input limits.
    pub fn new(store: Arc<S>, limits: Limits) -> Self {
        CoordinatorService {
            store,
            limits,
            ingest_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_INGESTS)),
            index: Arc::new(BuiltWithIndex::new()),
            scheduler: None,
        }
    }
}

/// A `BuiltWithRequest` as a query.
fn built_with_query(r: &pb::BuiltWithRequest) -> Result<query::BuiltWithQuery, Status> {
    Ok(query::BuiltWithQuery {
        package: r.package.parse().map_err(Status::invalid_argument)?,
        before: parse_version_field("before", &r.before)?,
        suite: nonempty(&r.suite),
        arch: nonempty(&r.architecture),
    })
}

/// Serve `service` and the rebuild scheduler (with its lease reclaimer) on `listener` until
/// `shutdown` is cancelled; over TLS when `tls` is given (rustls, ring provider), else plain
/// HTTP/2.
pub async fn run<S: KeyStore>(
    listener: TcpListener,
    mut service: CoordinatorService<S>,
    scheduler: Arc<rebuild::RebuildSettings>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    service.scheduler = Some(scheduler.clone());
    // Shutdown ends waiting Claims at once (see RebuildSettings::stopping).
    let stopping = {
        let (shutdown, stop) = (shutdown.clone(), scheduler.stopping.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stop.cancel();
        })
    };
    let reclaimer = tokio::spawn(rebuild::reclaimer(
        service.store.clone(),
        scheduler.clone(),
        rebuild::reclaim_interval(scheduler.policy.lease_ttl),
        shutdown.child_token(),
    ));
    let nodes = debcover_proto::v1::rebuild_nodes_server::RebuildNodesServer::new(rebuild::NodeService::new(
        service.store.clone(),
        scheduler.clone(),
    ))
    .max_decoding_message_size(rebuild::MAX_NODE_MESSAGE_BYTES)
    .max_encoding_message_size(rebuild::MAX_NODE_MESSAGE_BYTES);
    let admin = debcover_proto::v1::rebuild_admin_server::RebuildAdminServer::new(rebuild::AdminService::new(
        service.store.clone(),
        scheduler.clone(),
    ))
    .max_decoding_message_size(rebuild::MAX_ADMIN_MESSAGE_BYTES)
    .max_encoding_message_size(rebuild::MAX_ADMIN_MESSAGE_BYTES);
    let campaigns = debcover_proto::v1::campaigns_server::CampaignsServer::new(
        campaigns::CampaignService::new(service.store.clone()).with_scheduler(scheduler.clone()),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let attestations = debcover_proto::v1::attestations_server::AttestationsServer::new(
        attestations::AttestationService::new(service.store.clone(), scheduler.clone()),
    )
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    // BuiltWith answers go out as bytes assembled from the index's per-build encodings.
    let svc = encoded::WithEncodedBuiltWith::new(service);
    let served = builder
        .add_service(svc)
        .add_service(campaigns)
        .add_service(nodes)
        .add_service(admin)
        .add_service(attestations)
        // TCP_NODELAY: small unary answers otherwise wait ~40 ms for Nagle's algorithm to meet
        // the client's delayed ACK. Keepalive notices clients that vanished.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(std::time::Duration::from_secs(60))),
            shutdown.clone().cancelled_owned(),
        )
        .await;
    shutdown.cancel();
    let _ = reclaimer.await;
    let _ = stopping.await;
    served
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// An optional version from a request field: empty means none; otherwise the same strict
/// rules as versions in ingested files.
fn parse_version_field(field: &str, v: &str) -> Result<Option<debversion::Version>, Status> {
    if v.is_empty() {
        return Ok(None);
    }
    debcover_formats::relation::parse_version(v)
        .map(Some)
        .map_err(|e| Status::invalid_argument(format!("{field}: {}", e.message)))
}

fn nonempty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

#[tonic::async_trait]
impl<S: RebuildStore> Coordinator for CoordinatorService<S> {
    type IngestBuildinfosStream = BoxStream<pb::BatchOutcome>;

    async fn ingest_buildinfos(
        &self,
        request: Request<Streaming<pb::BuildinfoBatch>>,
    ) -> Result<Response<Self::IngestBuildinfosStream>, Status> {
        let permit = self
            .ingest_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("server is shutting down"))?;
        let limits = self.limits;
        let store = self.store.clone();
        let scheduler = self.scheduler.clone();
        let (tx, rx) = mpsc::channel::<Result<pb::BatchOutcome, Status>>(4);
        // Stage 1 parses batches on blocking threads, two at a time, in order; stage 2 (this
        // task) writes each parsed batch in one transaction and answers. Parsing of batch N+1
        // overlaps the write of batch N.
        let parsed = request.into_inner().map(move |batch| async move {
            let batch = batch?;
            tokio::task::spawn_blocking(move || {
                let start = std::time::Instant::now();
                let n = batch.files.len();
                let mut preparer = ingest::Preparer::new(limits);
                let parsed = batch
                    .files
                    .into_iter()
                    .map(|f| {
                        let prepared = preparer.prepare(&f.name, &f.content);
                        (f.name, prepared)
                    })
                    .collect::<Vec<_>>();
                tracing::debug!(files = n, elapsed_ms = start.elapsed().as_millis() as u64, "batch parsed");
                parsed
            })
            .await
            .map_err(|e| Status::internal(format!("parser task failed: {e}")))
        });
        tokio::spawn(async move {
            let _permit = permit;
            let mut parsed = parsed.buffered(PARSED_IN_FLIGHT);
            let mut ended = false;
            while !ended {
                let Some(first) = parsed.next().await else { break };
                // Batches parsed while the previous transaction ran are written together, in
                // one transaction: fewer, larger transactions (and posting rows) when the
                // writer is the bottleneck, no waiting when it is not.
                let mut group = vec![first];
                let mut files = group_files(&group);
                while files < MAX_MERGED_FILES {
                    match parsed.next().now_or_never() {
                        Some(Some(batch)) => {
                            group.push(batch);
                            files = group_files(&group);
                        }
                        Some(None) => {
                            ended = true;
                            break;
                        }
                        None => break,
                    }
                }
                let mut ok = Vec::with_capacity(group.len());
                let mut error = None;
                for batch in group {
                    match batch {
                        Ok(files) if error.is_none() => ok.push(files),
                        Ok(_) => {}
                        Err(status) => {
                            error.get_or_insert(status);
                        }
                    }
                }
                let mut failed = false;
                if !ok.is_empty() {
                    match write_batches(&*store, ok, scheduler.as_deref()).await {
                        Ok(replies) => {
                            for reply in replies {
                                if tx.send(Ok(reply)).await.is_err() {
                                    failed = true;
                                    break;
                                }
                            }
                        }
                        Err(status) => {
                            let _ = tx.send(Err(status)).await;
                            failed = true;
                        }
                    }
                }
                if let Some(status) = error {
                    if !failed {
                        let _ = tx.send(Err(status)).await;
                    }
                    failed = true;
                }
                if failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn ingest_archive(
        &self,
        request: Request<Streaming<pb::ArchiveChunk>>,
    ) -> Result<Response<pb::ArchiveOutcome>, Status> {
        let _permit = self
            .ingest_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Status::unavailable("server is shutting down"))?;
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::ArchiveChunk { chunk: Some(pb::archive_chunk::Chunk::Header(h)) }) => h,
            _ => return Err(Status::invalid_argument("the first message of IngestArchive must be a header")),
        };
        if header.suite.is_empty() {
            return Err(Status::invalid_argument(format!("{}: no suite given", header.name)));
        }
        let kind = pb::IndexKind::try_from(header.kind).unwrap_or(pb::IndexKind::Unspecified);
        let limits = self.limits;
        let name = header.name.clone();
        let reader = stream_reader::ChunkReader::spawn(stream);
        let outcome = match kind {
            pb::IndexKind::Packages => {
                let parsed = tokio::task::spawn_blocking(move || ingest::read_packages(&name, reader, &limits))
                    .await
                    .map_err(|e| Status::internal(format!("parser task failed: {e}")))?
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                let (entries, sha256) = parsed;
                let arch = match nonempty(&header.architecture) {
                    Some(a) => a,
                    None => ingest::infer_architecture(&header.name, &entries)
                        .map_err(|e| Status::invalid_argument(e.to_string()))?,
                };
                let import = crate::model::PackagesImport {
                    suite: header.suite.clone(),
                    arch: arch.clone(),
                    origin: header.name.clone(),
                    sha256: sha256.clone(),
                    entries,
                };
                let s = self.store.import_packages(&import).await.map_err(convert::store_status)?;
                crate::web::metrics::global().packages_entries.inc_by(s.entries);
                refresh_campaigns(&*self.store, None, self.scheduler.as_deref()).await;
                tracing::info!(suite = %header.suite, %arch, origin = %header.name, entries = s.entries,
                    added = s.added, removed = s.removed, linked = s.linked, "Packages index applied");
                pb::ArchiveOutcome {
                    suite: header.suite,
                    kind: kind as i32,
                    architecture: arch,
                    entries: s.entries,
                    added: s.added,
                    removed: s.removed,
                    linked: s.linked,
                    sha256,
                }
            }
            pb::IndexKind::Sources => {
                let parsed = tokio::task::spawn_blocking(move || ingest::read_sources(&name, reader, &limits))
                    .await
                    .map_err(|e| Status::internal(format!("parser task failed: {e}")))?
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                let (entries, sha256) = parsed;
                let import = crate::model::SourcesImport {
                    suite: header.suite.clone(),
                    origin: header.name.clone(),
                    sha256: sha256.clone(),
                    entries,
                };
                let s = self.store.import_sources(&import).await.map_err(convert::store_status)?;
                tracing::info!(suite = %header.suite, origin = %header.name, entries = s.entries,
                    added = s.added, removed = s.removed, "Sources index applied");
                pb::ArchiveOutcome {
                    suite: header.suite,
                    kind: kind as i32,
                    architecture: String::new(),
                    entries: s.entries,
                    added: s.added,
                    removed: s.removed,
                    linked: 0,
                    sha256,
                }
            }
            pb::IndexKind::Unspecified => {
                return Err(Status::invalid_argument(format!(
                    "{}: index kind not given (Packages or Sources)",
                    header.name
                )));
            }
        };
        Ok(Response::new(outcome))
    }

    async fn built_with(
        &self,
        request: Request<pb::BuiltWithRequest>,
    ) -> Result<Response<pb::BuiltWithResponse>, Status> {
        let q = built_with_query(request.get_ref())?;
        let answer = self.index.built_with(&*self.store, &q).await.map_err(convert::store_status)?;
        let started = std::time::Instant::now();
        let response = convert::built_with_response(&answer);
        tracing::debug!(builds = answer.builds.len(), convert_us = started.elapsed().as_micros() as u64, "built-with converted");
        Ok(Response::new(response))
    }

    async fn built_with_encoded(
        &self,
        request: Request<pb::BuiltWithRequest>,
    ) -> Result<Response<pb::EncodedBuiltWithResponse>, Status> {
        let q = built_with_query(request.get_ref())?;
        let answer = self.index.built_with(&*self.store, &q).await.map_err(convert::store_status)?;
        let started = std::time::Instant::now();
        let response = convert::encode_built_with(&answer);
        tracing::debug!(
            builds = answer.builds.len(),
            bytes = response.len(),
            encode_us = started.elapsed().as_micros() as u64,
            "built-with encoded"
        );
        Ok(Response::new(pb::EncodedBuiltWithResponse {
            response: response.into(),
            builds: answer.builds.len().try_into().unwrap_or(u32::MAX),
        }))
    }

    /// Served by `encoded::WithEncodedBuiltWith`, which writes the bytes itself; this generated
    /// path is reached only without that wrapper.
    async fn built_with_compact(
        &self,
        request: Request<pb::BuiltWithRequest>,
    ) -> Result<Response<pb::CompactBuiltWithResponse>, Status> {
        let q = built_with_query(request.get_ref())?;
        let answer = self.index.built_with(&*self.store, &q).await.map_err(convert::store_status)?;
        let bytes = compact::encode(&answer);
        let message = <pb::CompactBuiltWithResponse as prost::Message>::decode(bytes.as_slice())
            .map_err(|e| Status::internal(format!("compact answer does not decode: {e}")))?;
        Ok(Response::new(message))
    }

    async fn show_builds(
        &self,
        request: Request<pb::ShowBuildsRequest>,
    ) -> Result<Response<pb::ShowBuildsResponse>, Status> {
        let r = request.into_inner();
        let mut builds = self
            .store
            .builds_of_source(&r.source, nonempty(&r.version).as_deref(), nonempty(&r.architecture).as_deref())
            .await
            .map_err(convert::store_status)?;
        query::sort_builds(&mut builds, |b| b);
        let ids: Vec<i64> = builds.iter().map(|b| b.id).collect();
        let files = self.store.produced_files(&ids).await.map_err(convert::store_status)?;
        let mut out = Vec::with_capacity(builds.len());
        for b in &builds {
            let raw = self
                .store
                .raw_buildinfo(&b.sha256)
                .await
                .map_err(convert::store_status)?
                .ok_or_else(|| Status::data_loss(format!("build {} has no stored text", b.sha256)))?;
            let info = debcover_formats::Buildinfo::parse(&raw)
                .map_err(|e| Status::data_loss(format!("stored build {} no longer parses: {e}", b.sha256)))?;
            out.push(pb::BuildDetail {
                build: Some(convert::build_summary(b)),
                installed_build_depends: info
                    .installed_build_depends
                    .iter()
                    .map(|d| pb::Dependency {
                        name: d.name.clone(),
                        arch: d.arch.clone().unwrap_or_default(),
                        version: d.version.to_string(),
                    })
                    .collect(),
                binaries: files
                    .iter()
                    .filter(|f| f.build_id == b.id && query::is_binary_package(&f.name))
                    .map(convert::binary)
                    .collect(),
                binary_only_changes: info.binary_only_changes.unwrap_or_default(),
                build_path: info.build_path.unwrap_or_default(),
                build_tainted_by: info.build_tainted_by,
            });
        }
        Ok(Response::new(pb::ShowBuildsResponse { builds: out }))
    }

    async fn get_buildinfo(
        &self,
        request: Request<pb::GetBuildinfoRequest>,
    ) -> Result<Response<pb::GetBuildinfoResponse>, Status> {
        let id = request.into_inner().id;
        match self.store.raw_buildinfo(&id).await.map_err(convert::store_status)? {
            Some(content) => Ok(Response::new(pb::GetBuildinfoResponse { content })),
            None => Err(Status::not_found(format!("no build with id {id}"))),
        }
    }

    async fn server_info(
        &self,
        _request: Request<pb::ServerInfoRequest>,
    ) -> Result<Response<pb::ServerInfoResponse>, Status> {
        let s = self.store.stats().await.map_err(convert::store_status)?;
        Ok(Response::new(pb::ServerInfoResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            backend: self.store.backend().to_owned(),
            builds: s.builds,
            dependency_entries: s.dependency_entries,
            interned_packages: s.interned_packages,
            binaries: s.binaries,
            suites: s.suites,
        }))
    }
}

/// Re-evaluate campaign items after new evidence (of these sources, or all), and queue the
/// builds that fixed items for verification. A failure here is logged, not returned: the
/// evidence is stored, and the next ingest or `campaign status` evaluates it again.
async fn refresh_campaigns<S: RebuildStore>(store: &S, sources: Option<&[String]>, scheduler: Option<&rebuild::RebuildSettings>) {
    if sources.is_some_and(|s| s.is_empty()) {
        return;
    }
    match crate::campaign::track::refresh(store, sources).await {
        Ok(changes) => {
            if let Some(settings) = scheduler
                && let Err(e) = rebuild::queue_fixed(store, settings, &changes).await
            {
                tracing::error!(error = %e, "queuing verification of fixed campaign items failed");
            }
        }
        Err(e) => tracing::error!(error = %e, "re-evaluating campaign items failed"),
    }
}

/// Files in the parsed batches of a group (failed batches count for nothing).
fn group_files(group: &[Result<ParsedBatch, Status>]) -> usize {
    group.iter().map(|b| b.as_ref().map_or(0, Vec::len)).sum()
}

/// The parsed files of one batch as the client sent it, each with its name.
type ParsedBatch = Vec<(String, Result<crate::model::NewBuild, debcover_formats::ParseError>)>;

/// Store several parsed batches in one transaction; one outcome per batch, in order.
async fn write_batches<S: RebuildStore>(
    store: &S,
    batches: Vec<ParsedBatch>,
    scheduler: Option<&rebuild::RebuildSettings>,
) -> Result<Vec<pb::BatchOutcome>, Status> {
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    let all: ParsedBatch = batches.into_iter().flatten().collect();
    let mut outcomes = write_batch(store, all, scheduler).await?.outcomes.into_iter();
    Ok(sizes.into_iter().map(|n| pb::BatchOutcome { outcomes: outcomes.by_ref().take(n).collect() }).collect())
}

/// Store the parsed files of one batch and describe what happened to each: the ingestion path
/// of `debcover ingest`, and of the buildinfos that rebuilds produce.
async fn write_batch<S: RebuildStore>(
    store: &S,
    files: Vec<(String, Result<crate::model::NewBuild, debcover_formats::ParseError>)>,
    scheduler: Option<&rebuild::RebuildSettings>,
) -> Result<pb::BatchOutcome, Status> {
    let mut outcomes = Vec::with_capacity(files.len());
    let mut good = Vec::new();
    let mut slots = Vec::new();
    for (name, parsed) in files {
        match parsed {
            Ok(b) => {
                slots.push(outcomes.len());
                outcomes.push(pb::FileOutcome {
                    name,
                    status: pb::FileStatus::Unspecified as i32,
                    build_id: b.sha256.clone(),
                    error: String::new(),
                    summary: format!("{} {} {}", b.info.source, b.info.version, b.info.host_architecture()),
                });
                good.push(b);
            }
            Err(e) => {
                tracing::warn!(file = %name, error = %e, "buildinfo rejected");
                outcomes.push(pb::FileOutcome {
                    name,
                    status: pb::FileStatus::Rejected as i32,
                    build_id: String::new(),
                    error: e.to_string(),
                    summary: String::new(),
                });
            }
        }
    }
    if !good.is_empty() {
        let start = std::time::Instant::now();
        let stored = store.ingest_builds(&good).await.map_err(convert::store_status)?;
        tracing::debug!(builds = good.len(), elapsed_ms = start.elapsed().as_millis() as u64, "batch stored");
        let mut sources: Vec<String> = good
            .iter()
            .zip(&stored)
            .filter(|(_, s)| **s == Stored::Inserted)
            .map(|(b, _)| b.info.source.clone())
            .collect();
        sources.sort();
        sources.dedup();
        refresh_campaigns(store, Some(&sources), scheduler).await;
        for (slot, s) in slots.into_iter().zip(stored) {
            outcomes[slot].status = match s {
                Stored::Inserted => pb::FileStatus::Ingested,
                Stored::AlreadyKnown => pb::FileStatus::AlreadyKnown,
            } as i32;
        }
    }
    let count = |s: pb::FileStatus| outcomes.iter().filter(|o| o.status == s as i32).count() as u64;
    crate::web::metrics::global().record_buildinfos(
        count(pb::FileStatus::Ingested),
        count(pb::FileStatus::AlreadyKnown),
        count(pb::FileStatus::Rejected),
    );
    Ok(pb::BatchOutcome { outcomes })
}

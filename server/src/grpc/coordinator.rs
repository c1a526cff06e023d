//! The `Coordinator` service: ingestion of buildinfos and archive indices, `built-with`, build
//! details and server information.

use std::sync::Arc;

use debcover_core::query;
use debcover_core::store::Store;
use debcover_proto::v1 as pb;
use debcover_wire::convert;
use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use debcover_core::access::Role;

use super::{BoxStream, authorized, nonempty, parse_version_field, readable, status, store_status};
use crate::Coordinator;
use crate::ops::ingest::{self, FileOutcome, FileStatus, IndexKind, ParsedBatch};

/// Batches of one ingestion stream parsed ahead of the writer.
const PARSED_IN_FLIGHT: usize = 2;
/// Most files written in one transaction when parsed batches are waiting for the writer.
const MAX_MERGED_FILES: usize = 2048;

/// The service.
pub struct Api<S>(pub Arc<Coordinator<S>>);

/// A `BuiltWithRequest` as a query.
fn built_with_query(r: &pb::BuiltWithRequest) -> Result<query::BuiltWithQuery, Status> {
    Ok(query::BuiltWithQuery {
        package: r.package.parse().map_err(Status::invalid_argument)?,
        before: parse_version_field("before", &r.before)?,
        suite: nonempty(&r.suite),
        arch: nonempty(&r.architecture),
    })
}

fn file_outcome(o: FileOutcome) -> pb::FileOutcome {
    pb::FileOutcome {
        name: o.name,
        status: match o.status {
            FileStatus::Ingested => pb::FileStatus::Ingested,
            FileStatus::AlreadyKnown => pb::FileStatus::AlreadyKnown,
            FileStatus::Rejected => pb::FileStatus::Rejected,
        } as i32,
        build_id: o.build_id,
        error: o.error,
        summary: o.summary,
    }
}

/// The refusal of a stream that sent nothing for too long.
fn idle_status(call: &str) -> Status {
    Status::deadline_exceeded(format!(
        "{call}: no message for {} s; the stream is ended (send the first message right away, and keep sending)",
        super::IDLE_STREAM_LIMIT.as_secs()
    ))
}

/// Files in the parsed batches of a group (failed batches count for nothing).
fn group_files(group: &[Result<ParsedBatch, Status>]) -> usize {
    group.iter().map(|b| b.as_ref().map_or(0, Vec::len)).sum()
}

#[tonic::async_trait]
impl<S: Store> pb::coordinator_server::Coordinator for Api<S> {
    type IngestBuildinfosStream = BoxStream<pb::BatchOutcome>;

    async fn ingest_buildinfos(
        &self,
        request: Request<Streaming<pb::BuildinfoBatch>>,
    ) -> Result<Response<Self::IngestBuildinfosStream>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Ingest, "ingest").await?;
        // The slot is taken once the first batch has arrived: streams that open and send
        // nothing hold no slot, and are ended after IDLE_STREAM_LIMIT.
        let mut stream = request.into_inner();
        let first = match tokio::time::timeout(super::IDLE_STREAM_LIMIT, stream.message()).await {
            Err(_) => return Err(idle_status("IngestBuildinfos")),
            Ok(Err(s)) => return Err(s),
            Ok(Ok(None)) => return Ok(Response::new(Box::pin(futures::stream::empty()))),
            Ok(Ok(Some(b))) => b,
        };
        let permit =
            self.0.ingest_slots.clone().acquire_owned().await.map_err(|_| Status::unavailable("server is shutting down"))?;
        let rest = futures::stream::unfold(Some(stream), |stream| async move {
            let mut stream = stream?;
            match tokio::time::timeout(super::IDLE_STREAM_LIMIT, stream.message()).await {
                Err(_) => Some((Err(idle_status("IngestBuildinfos")), None)),
                Ok(Ok(Some(b))) => Some((Ok(b), Some(stream))),
                Ok(Ok(None)) => None,
                Ok(Err(s)) => Some((Err(s), None)),
            }
        });
        let batches = futures::stream::once(async move { Ok(first) }).chain(rest).boxed();
        let limits = self.0.settings.limits;
        let signatures = self.0.settings.signatures.clone();
        let c = self.0.clone();
        let (tx, rx) = mpsc::channel::<Result<pb::BatchOutcome, Status>>(4);
        // Stage 1 parses batches on blocking threads, two at a time, in order; stage 2 (this
        // task) writes each parsed batch in one transaction and answers. Parsing of batch N+1
        // overlaps the write of batch N.
        let parsed = batches.map(move |batch: Result<pb::BuildinfoBatch, Status>| {
            let signatures = signatures.clone();
            async move {
            let batch = batch?;
            let files = batch.files.into_iter().map(|f| (f.name, f.content)).collect();
            tokio::task::spawn_blocking(move || ingest::parse_batch(limits, &signatures, files))
                .await
                .map_err(|e| Status::internal(format!("parser task failed: {e}")))
            }
        });
        tokio::spawn(async move {
            let _permit = permit;
            let (mut ingested, mut known, mut rejected) = (0u64, 0u64, 0u64);
            let mut parsed = parsed.buffered(PARSED_IN_FLIGHT);
            let mut ended = false;
            while !ended {
                let Some(first) = parsed.next().await else {
                    break;
                };
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
                    match ingest::write_batches(&c, ok).await {
                        Ok(replies) => {
                            for reply in replies {
                                for o in &reply {
                                    match o.status {
                                        FileStatus::Ingested => ingested += 1,
                                        FileStatus::AlreadyKnown => known += 1,
                                        FileStatus::Rejected => rejected += 1,
                                    }
                                }
                                let reply = pb::BatchOutcome { outcomes: reply.into_iter().map(file_outcome).collect() };
                                if tx.send(Ok(reply)).await.is_err() {
                                    failed = true;
                                    break;
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(status(e))).await;
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
            if ingested + known + rejected > 0 {
                crate::ops::access::record(
                    &c,
                    &who,
                    "ingest-buildinfos",
                    format!("{ingested} ingested, {known} already known, {rejected} rejected"),
                )
                .await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn ingest_archive(
        &self,
        request: Request<Streaming<pb::ArchiveChunk>>,
    ) -> Result<Response<pb::ArchiveOutcome>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Ingest, "ingest archive").await?;
        let mut stream = request.into_inner();
        // As for buildinfos: no slot before the header, and the header must come soon.
        let first = tokio::time::timeout(super::IDLE_STREAM_LIMIT, stream.message())
            .await
            .map_err(|_| idle_status("IngestArchive"))??;
        let _permit =
            self.0.ingest_slots.clone().acquire_owned().await.map_err(|_| Status::unavailable("server is shutting down"))?;
        let header = match first {
            Some(pb::ArchiveChunk { chunk: Some(pb::archive_chunk::Chunk::Header(h)) }) => h,
            _ => {
                return Err(Status::invalid_argument("the first message of IngestArchive must be a header"));
            }
        };
        if header.suite.is_empty() {
            return Err(Status::invalid_argument(format!("{}: no suite given", header.name)));
        }
        let kind = match pb::IndexKind::try_from(header.kind).unwrap_or(pb::IndexKind::Unspecified) {
            pb::IndexKind::Packages => IndexKind::Packages,
            pb::IndexKind::Sources => IndexKind::Sources,
            pb::IndexKind::Unspecified => {
                return Err(Status::invalid_argument(format!(
                    "{}: index kind not given (Packages or Sources)",
                    header.name
                )));
            }
        };
        let import = ingest::ArchiveImport {
            suite: header.suite.clone(),
            kind,
            name: header.name.clone(),
            architecture: nonempty(&header.architecture),
        };
        let reader = super::stream_reader::ChunkReader::spawn(stream);
        let o = ingest::import_archive(&self.0, import, reader).await.map_err(status)?;
        crate::ops::access::record(
            &self.0,
            &who,
            "ingest-archive",
            format!(
                "{} {} {}: {} entries, {} added, {} removed (sha256 {})",
                header.suite, header.name, o.architecture, o.summary.entries, o.summary.added, o.summary.removed, o.sha256
            ),
        )
        .await;
        Ok(Response::new(pb::ArchiveOutcome {
            suite: header.suite,
            kind: header.kind,
            architecture: o.architecture,
            entries: o.summary.entries,
            added: o.summary.added,
            removed: o.summary.removed,
            linked: if kind == IndexKind::Packages { o.summary.linked } else { 0 },
            sha256: o.sha256,
        }))
    }

    type BuiltWithStream = BoxStream<pb::BuiltWithPage>;

    async fn built_with(&self, request: Request<pb::BuiltWithRequest>) -> Result<Response<Self::BuiltWithStream>, Status> {
        readable(&self.0, request.metadata()).await?;
        let q = built_with_query(request.get_ref())?;
        let answer = self.0.index.built_with(&*self.0.store, &q).await.map_err(store_status)?;
        // Pages are encoded on a blocking thread while the ones before are sent; two wait at
        // most (bounded memory whatever the answer's size).
        let (tx, rx) = mpsc::channel::<Result<pb::BuiltWithPage, Status>>(2);
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let mut pages = 0usize;
            debcover_wire::built_with::encode_pages(&answer, Default::default(), |page| {
                pages += 1;
                tx.blocking_send(Ok(page)).is_ok()
            });
            tracing::debug!(builds = answer.builds.len(), pages, encode_us = started.elapsed().as_micros() as u64, "built-with sent");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn show_builds(&self, request: Request<pb::ShowBuildsRequest>) -> Result<Response<pb::ShowBuildsResponse>, Status> {
        readable(&self.0, request.metadata()).await?;
        let r = request.into_inner();
        let store = &*self.0.store;
        let mut builds = store
            .builds_of_source(&r.source, nonempty(&r.version).as_deref(), nonempty(&r.architecture).as_deref())
            .await
            .map_err(store_status)?;
        query::sort_builds(&mut builds, |b| b);
        let ids: Vec<i64> = builds.iter().map(|b| b.id).collect();
        let files = store.produced_files(&ids).await.map_err(store_status)?;
        let mut out = Vec::with_capacity(builds.len());
        for b in &builds {
            let raw = store
                .raw_buildinfo(&b.sha256)
                .await
                .map_err(store_status)?
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
        readable(&self.0, request.metadata()).await?;
        let id = request.into_inner().id;
        match self.0.store.raw_buildinfo(&id).await.map_err(store_status)? {
            Some(content) => Ok(Response::new(pb::GetBuildinfoResponse { content })),
            None => Err(Status::not_found(format!("no build with id {id}"))),
        }
    }

    // Open even with closed reads: it is the health check nodes and load balancers call.
    async fn server_info(&self, _request: Request<pb::ServerInfoRequest>) -> Result<Response<pb::ServerInfoResponse>, Status> {
        let s = self.0.store.stats().await.map_err(store_status)?;
        Ok(Response::new(pb::ServerInfoResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            backend: self.0.store.backend().to_owned(),
            builds: s.builds,
            dependency_entries: s.dependency_entries,
            interned_packages: s.interned_packages,
            binaries: s.binaries,
            suites: s.suites,
        }))
    }
}

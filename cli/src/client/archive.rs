//! `debcover ingest archive`: stream Packages/Sources indices (files or URLs) to the
//! coordinator, which applies each one in a single transaction.

use std::path::Path;

use anyhow::{Context, Result, bail};
use debcover_proto::v1 as pb;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{connect, download, is_url, status_error};

/// Bytes per streamed chunk.
const CHUNK: usize = 1024 * 1024;

/// Which index an input is, from `--kind` or its file name.
pub fn kind_of(input: &str, explicit: Option<&str>) -> Result<pb::IndexKind> {
    let name = explicit.map(str::to_owned).unwrap_or_else(|| {
        input.rsplit('/').next().unwrap_or(input).to_owned()
    });
    let lower = name.to_ascii_lowercase();
    if lower.contains("sources") {
        Ok(pb::IndexKind::Sources)
    } else if lower.contains("packages") {
        Ok(pb::IndexKind::Packages)
    } else {
        bail!("{input}: cannot tell whether this is a Packages or a Sources index from its name; pass --kind packages|sources")
    }
}

/// Send one index to the server; returns what it applied.
pub async fn ingest_one(
    server: &str,
    suite: &str,
    arch: Option<&str>,
    kind: pb::IndexKind,
    input: &str,
    progress: bool,
) -> Result<pb::ArchiveOutcome> {
    let mut client = connect(server).await?;
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let path = if is_url(input) { download(input, tmp.path()).await? } else { Path::new(input).to_owned() };
    let mut file = tokio::fs::File::open(&path).await.with_context(|| format!("cannot open {input}"))?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let bar = if progress { indicatif::ProgressBar::new(len) } else { indicatif::ProgressBar::hidden() };
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg}") {
        bar.set_style(style);
    }
    bar.set_message(input.to_owned());
    let (tx, rx) = mpsc::channel(4);
    let header = pb::ArchiveHeader {
        suite: suite.to_owned(),
        kind: kind as i32,
        name: input.to_owned(),
        architecture: arch.unwrap_or_default().to_owned(),
    };
    let reading_bar = bar.clone();
    let reader = tokio::spawn(async move {
        if tx.send(pb::ArchiveChunk { chunk: Some(pb::archive_chunk::Chunk::Header(header)) }).await.is_err() {
            return Ok(());
        }
        loop {
            let mut buf = Vec::with_capacity(CHUNK);
            let n = (&mut file).take(CHUNK as u64).read_to_end(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            reading_bar.inc(n as u64);
            if tx.send(pb::ArchiveChunk { chunk: Some(pb::archive_chunk::Chunk::Data(buf)) }).await.is_err() {
                return Ok(());
            }
        }
    });
    let outcome = client.ingest_archive(ReceiverStream::new(rx)).await;
    reader.await.context("reader task failed")?.with_context(|| format!("cannot read {input}"))?;
    bar.finish_and_clear();
    Ok(outcome.map_err(|s| status_error(input, s))?.into_inner())
}

//! `debcover ingest buildinfo`: frame files, directories, aggregated indices and URLs into
//! batches, stream them to the coordinator, and tally what it answered.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use debcover_formats::{aggregate, compress, paragraph::Paragraphs};
use debcover_proto::v1 as pb;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{connect, download, is_url, status_error};

/// Options of one ingestion run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files per batch.
    pub batch_files: usize,
    /// Bytes per batch (a batch is sent once either limit is reached).
    pub batch_bytes: usize,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { batch_files: 512, batch_bytes: 16 * 1024 * 1024, progress: true }
    }
}

/// One rejected input and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejection {
    /// The file, URL or `index#line N` at fault.
    pub name: String,
    /// The reason, naming field and line where known.
    pub reason: String,
}

/// What an ingestion run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Builds stored as new.
    pub ingested: u64,
    /// Builds the server had already.
    pub already_known: u64,
    /// Inputs refused, with reasons.
    pub rejected: Vec<Rejection>,
}

/// Files larger than this are streamed paragraph by paragraph (they can only be indices).
const WHOLE_FILE_LIMIT: u64 = 4 * 1024 * 1024;

/// Ingest every input into the coordinator at `server`.
pub async fn ingest(server: &str, inputs: &[String], opts: &Options) -> Result<Summary> {
    let mut client = connect(server).await?;
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut sources: Vec<(String, PathBuf)> = Vec::new();
    for input in inputs {
        if is_url(input) {
            let path = download(input, tmp.path()).await?;
            sources.push((input.clone(), path));
        } else {
            sources.push((input.clone(), PathBuf::from(input)));
        }
    }
    let bar = progress_bar(opts.progress);
    let (tx, rx) = mpsc::channel::<pb::BuildinfoBatch>(2);
    let (local_tx, mut local_rx) = mpsc::unbounded_channel::<Rejection>();
    let batching = (opts.batch_files.max(1), opts.batch_bytes.max(1));
    // The framing runs on a blocking thread: it reads files and decompresses indices.
    let producer = tokio::task::spawn_blocking(move || {
        let mut b = Batcher { tx, files: Vec::new(), bytes: 0, limits: batching, local: local_tx };
        for (display, path) in sources {
            if b.walk(&display, &path).is_err() {
                return; // the receiver is gone: the server failed; its error is reported below
            }
        }
        let _ = b.flush();
    });
    let mut responses = client
        .ingest_buildinfos(ReceiverStream::new(rx))
        .await
        .map_err(|s| status_error("ingest", s))?
        .into_inner();
    let mut summary = Summary::default();
    while let Some(batch) = responses.next().await {
        let batch = batch.map_err(|s| status_error("ingest", s))?;
        for o in batch.outcomes {
            match pb::FileStatus::try_from(o.status) {
                Ok(pb::FileStatus::Ingested) => summary.ingested += 1,
                Ok(pb::FileStatus::AlreadyKnown) => summary.already_known += 1,
                _ => summary.rejected.push(Rejection { name: o.name, reason: o.error }),
            }
            bar.inc(1);
        }
        while let Ok(r) = local_rx.try_recv() {
            summary.rejected.push(r);
        }
    }
    producer.await.context("input reader failed")?;
    while let Ok(r) = local_rx.try_recv() {
        summary.rejected.push(r);
    }
    bar.finish_and_clear();
    Ok(summary)
}

fn progress_bar(show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {pos} buildinfos sent and answered ({per_sec}, {elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Accumulates files into batches and sends them; rejections found locally (unreadable files,
/// broken compression) go to `local`.
struct Batcher {
    tx: mpsc::Sender<pb::BuildinfoBatch>,
    files: Vec<pb::BuildinfoFile>,
    bytes: usize,
    limits: (usize, usize),
    local: mpsc::UnboundedSender<Rejection>,
}

/// The server stopped listening.
struct Closed;

impl Batcher {
    fn reject(&self, name: String, reason: String) {
        let _ = self.local.send(Rejection { name, reason });
    }

    fn push(&mut self, name: String, content: Vec<u8>) -> Result<(), Closed> {
        self.bytes += content.len();
        self.files.push(pb::BuildinfoFile { name, content });
        if self.files.len() >= self.limits.0 || self.bytes >= self.limits.1 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Closed> {
        if self.files.is_empty() {
            return Ok(());
        }
        let files = std::mem::take(&mut self.files);
        self.bytes = 0;
        self.tx.blocking_send(pb::BuildinfoBatch { files }).map_err(|_| Closed)
    }

    /// A path: a directory is walked for `*.buildinfo` files and aggregated indices
    /// (`Buildinfo*`); a file is taken as given.
    fn walk(&mut self, display: &str, path: &Path) -> Result<(), Closed> {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = walkdir::WalkDir::new(path)
                .sort_by_file_name()
                .into_iter()
                .filter_map(|e| match e {
                    Ok(e) => Some(e),
                    Err(err) => {
                        self.reject(display.to_owned(), format!("cannot walk directory: {err}"));
                        None
                    }
                })
                .filter(|e| e.file_type().is_file())
                .map(|e| e.into_path())
                .filter(|p| {
                    let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                    n.ends_with(".buildinfo") || n.starts_with("Buildinfo")
                })
                .collect();
            entries.sort();
            for p in entries {
                let d = p.display().to_string();
                self.file(&d, &p)?;
            }
            Ok(())
        } else {
            self.file(display, path)
        }
    }

    /// One file: a buildinfo (plain, clearsigned, or compressed) or an aggregated index.
    fn file(&mut self, display: &str, path: &Path) -> Result<(), Closed> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                self.reject(display.to_owned(), format!("cannot read: {e}"));
                return Ok(());
            }
        };
        let mut magic = [0u8; 6];
        let compressed = File::open(path)
            .and_then(|mut f| f.read(&mut magic))
            .map(|n| n >= 2 && (magic[..2] == [0x1f, 0x8b] || (n == 6 && magic == *b"\xfd7zXZ\0")))
            .unwrap_or(false);
        if !compressed && meta.len() <= WHOLE_FILE_LIMIT {
            match std::fs::read(path) {
                Ok(bytes) if aggregate::looks_like_index(&bytes) => self.index(display, &bytes[..]),
                Ok(bytes) => self.push(display.to_owned(), bytes),
                Err(e) => {
                    self.reject(display.to_owned(), format!("cannot read: {e}"));
                    Ok(())
                }
            }
        } else {
            match File::open(path).and_then(|f| compress::open(BufReader::new(f), compress::DEFAULT_MAX_DECOMPRESSED)) {
                Ok((_, reader)) => self.stream(display, reader),
                Err(e) => {
                    self.reject(display.to_owned(), format!("cannot read: {e}"));
                    Ok(())
                }
            }
        }
    }

    /// A small uncompressed aggregated index held in memory.
    fn index(&mut self, display: &str, bytes: &[u8]) -> Result<(), Closed> {
        self.stream(display, Box::new(bytes))
    }

    /// Stream a (decompressed) input: a single buildinfo if it holds one paragraph or is
    /// clearsigned, else an aggregated index split into one buildinfo per paragraph.
    fn stream(&mut self, display: &str, mut reader: Box<dyn std::io::BufRead + '_>) -> Result<(), Closed> {
        let head = match reader.fill_buf() {
            Ok(h) => h,
            Err(e) => {
                self.reject(display.to_owned(), format!("cannot read: {e}"));
                return Ok(());
            }
        };
        if head.starts_with(b"-----BEGIN PGP SIGNED MESSAGE-----") {
            let mut all = Vec::new();
            return match reader.take(WHOLE_FILE_LIMIT + 1).read_to_end(&mut all) {
                Ok(_) => self.push(display.to_owned(), all),
                Err(e) => {
                    self.reject(display.to_owned(), format!("cannot read: {e}"));
                    Ok(())
                }
            };
        }
        let mut paragraphs = Paragraphs::new(reader);
        let mut first: Option<(usize, String)> = None;
        let mut many = false;
        for p in paragraphs.by_ref() {
            match p {
                Ok(p) => {
                    if let Some((line, text)) = first.take() {
                        many = true;
                        self.push(format!("{display}#line {line}"), text.into_bytes())?;
                    }
                    if many {
                        self.push(format!("{display}#line {}", p.first_line), p.text.into_bytes())?;
                    } else {
                        first = Some((p.first_line, p.text));
                    }
                }
                Err(e) => {
                    self.reject(display.to_owned(), e.in_file(display).to_string());
                    break;
                }
            }
        }
        if let Some((_, text)) = first {
            self.push(display.to_owned(), text.into_bytes())?;
        }
        Ok(())
    }
}

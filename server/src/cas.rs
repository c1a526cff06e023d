//! The content-addressed blob store under the data directory: build logs and diffoscope
//! reports (zstd) and produced .buildinfo files, each named by the SHA-256 of its uncompressed bytes:
//! `DATA_DIR/cas/KIND/ab/abcdef....` (`.zst` for compressed kinds).
//!
//! Blobs are written to a temporary file and renamed into place, so a reader never sees a
//! partial blob and the same bytes stored twice end up as one file. Writing happens on a
//! blocking thread fed by a bounded channel: memory stays bounded by a few chunks.
//!
//! Signed attestations are not written here: they are stored in the database with their
//! result (migration 0012). Those accepted by older versions stay here as files
//! (`DATA_DIR/cas/attestations`), read through [`BlobKind::Attestation`].

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

/// A blob store failure.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    /// A filesystem operation failed.
    #[error("content store: {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// More bytes than the cap allows.
    #[error("{kind} larger than {cap} bytes")]
    TooLarge {
        /// Blob kind.
        kind: &'static str,
        /// Cap in bytes.
        cap: u64,
    },
    /// The writer thread went away.
    #[error("content store writer stopped")]
    Stopped,
}

/// What kind of blob, which decides its directory and compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// A build log, stored zstd-compressed.
    Log,
    /// A produced .buildinfo, stored as is.
    Buildinfo,
    /// A diffoscope report (text) on the files that differ, stored zstd-compressed.
    Diffoscope,
    /// A node's signed in-toto link, byte for byte as signed: only read, for links accepted by
    /// versions before migration 0012 (newer ones are in the database, see
    /// `storage::RebuildStore::attestation`).
    Attestation,
}

impl BlobKind {
    fn dir(self) -> &'static str {
        match self {
            BlobKind::Log => "logs",
            BlobKind::Buildinfo => "buildinfo",
            BlobKind::Diffoscope => "diffoscope",
            BlobKind::Attestation => "attestations",
        }
    }

    fn compressed(self) -> bool {
        matches!(self, BlobKind::Log | BlobKind::Diffoscope)
    }

    /// What it is called in errors.
    fn describe(self) -> &'static str {
        match self {
            BlobKind::Log => "build log",
            BlobKind::Buildinfo => "produced .buildinfo",
            BlobKind::Diffoscope => "diffoscope report",
            BlobKind::Attestation => "attestation",
        }
    }
}

/// Path of a stored blob.
pub fn blob_path(root: &Path, kind: BlobKind, sha256: &str) -> PathBuf {
    let prefix = sha256.get(..2).unwrap_or("00");
    let name = if kind.compressed() { format!("{sha256}.zst") } else { sha256.to_owned() };
    root.join("cas").join(kind.dir()).join(prefix).join(name)
}

/// Read a stored blob back (decompressed), if present.
pub fn read_blob(root: &Path, kind: BlobKind, sha256: &str) -> Result<Option<Vec<u8>>, CasError> {
    let path = blob_path(root, kind, sha256);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CasError::Io { what: "read", path, source }),
    };
    if kind.compressed() {
        zstd::decode_all(&bytes[..]).map(Some).map_err(|source| CasError::Io { what: "decompress", path, source })
    } else {
        Ok(Some(bytes))
    }
}

/// What the writing task receives: data, then `End`. A channel closed without `End` (the
/// writer dropped mid-stream) stores nothing.
enum Piece {
    Data(Vec<u8>),
    End,
}

/// A blob being written: feed chunks with [`BlobWriter::write`], then [`BlobWriter::finish`].
pub struct BlobWriter {
    tx: Option<mpsc::Sender<Piece>>,
    task: tokio::task::JoinHandle<Result<Option<String>, CasError>>,
    written: u64,
    cap: u64,
    kind: BlobKind,
}

impl BlobWriter {
    /// Start a blob of `kind` under `root`, refusing more than `cap` bytes.
    pub fn start(root: &Path, kind: BlobKind, cap: u64) -> BlobWriter {
        let (tx, mut rx) = mpsc::channel::<Piece>(4);
        let root = root.to_path_buf();
        let task = tokio::task::spawn_blocking(move || -> Result<Option<String>, CasError> {
            let tmp_dir = root.join("cas").join("tmp");
            std::fs::create_dir_all(&tmp_dir)
                .map_err(|source| CasError::Io { what: "create", path: tmp_dir.clone(), source })?;
            let tmp = tempfile::NamedTempFile::new_in(&tmp_dir)
                .map_err(|source| CasError::Io { what: "create a file in", path: tmp_dir.clone(), source })?;
            let io = |source| CasError::Io { what: "write", path: tmp.path().to_path_buf(), source };
            let mut hasher = Sha256::new();
            let mut any = false;
            let file = tmp.reopen().map_err(io)?;
            let mut sink: Box<dyn Write> = if kind.compressed() {
                Box::new(zstd::Encoder::new(file, 3).map_err(io)?.auto_finish())
            } else {
                Box::new(std::io::BufWriter::new(file))
            };
            loop {
                match rx.blocking_recv() {
                    Some(Piece::Data(chunk)) => {
                        any = true;
                        hasher.update(&chunk);
                        sink.write_all(&chunk).map_err(io)?;
                    }
                    Some(Piece::End) => break,
                    // The writer was dropped before `finish`: the stream that fed it failed.
                    // Nothing is stored; the temporary file goes with `tmp`.
                    None => return Err(CasError::Stopped),
                }
            }
            sink.flush().map_err(io)?;
            drop(sink);
            if !any {
                return Ok(None);
            }
            // On disk before it has a name: a blob a row points to survives a power loss.
            tmp.as_file().sync_all().map_err(io)?;
            let sha = hex::encode(hasher.finalize());
            let dest = blob_path(&root, kind, &sha);
            if let Some(dir) = dest.parent() {
                std::fs::create_dir_all(dir).map_err(|source| CasError::Io { what: "create", path: dir.to_path_buf(), source })?;
            }
            if !dest.exists() {
                tmp.persist(&dest).map_err(|e| CasError::Io { what: "rename into", path: dest.clone(), source: e.error })?;
                // The rename itself is durable once its directory is synced.
                if let Some(dir) = dest.parent() {
                    std::fs::File::open(dir)
                        .and_then(|d| d.sync_all())
                        .map_err(|source| CasError::Io { what: "sync", path: dir.to_path_buf(), source })?;
                }
            }
            Ok(Some(sha))
        });
        BlobWriter { tx: Some(tx), task, written: 0, cap, kind }
    }

    /// Append a chunk.
    pub async fn write(&mut self, chunk: Vec<u8>) -> Result<(), CasError> {
        self.written += chunk.len() as u64;
        if self.written > self.cap {
            return Err(CasError::TooLarge { kind: self.kind.describe(), cap: self.cap });
        }
        let tx = self.tx.as_ref().ok_or(CasError::Stopped)?;
        if tx.send(Piece::Data(chunk)).await.is_err() {
            // The writer failed: its error is the one to report.
            self.tx = None;
            return match (&mut self.task).await {
                Ok(Err(e)) => Err(e),
                _ => Err(CasError::Stopped),
            };
        }
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Close the blob; returns its SHA-256, or None when nothing was written.
    pub async fn finish(mut self) -> Result<Option<String>, CasError> {
        if let Some(tx) = self.tx.take() {
            // A failed send means the task already ended; its result says why.
            let _ = tx.send(Piece::End).await;
        }
        match self.task.await {
            Ok(r) => r,
            Err(_) => Err(CasError::Stopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestations_of_older_versions_are_read_where_they_were_written() {
        // The layout those versions wrote: DATA_DIR/cas/attestations/PREFIX/SHA256, as signed.
        let dir = tempfile::tempdir().unwrap();
        let link = b"{\"signed\": {}}";
        let sha = hex::encode(Sha256::digest(link));
        let path = dir.path().join("cas/attestations").join(&sha[..2]).join(&sha);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, link).unwrap();
        assert_eq!(blob_path(dir.path(), BlobKind::Attestation, &sha), path);
        assert_eq!(read_blob(dir.path(), BlobKind::Attestation, &sha).unwrap().unwrap(), link);
        assert_eq!(read_blob(dir.path(), BlobKind::Attestation, &"0".repeat(64)).unwrap(), None);
    }

    /// A writer dropped before `finish` (its report stream failed) leaves no blob and no
    /// temporary file behind.
    #[tokio::test]
    async fn an_aborted_blob_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlobWriter::start(dir.path(), BlobKind::Log, 1 << 20);
        w.write(b"half of a log".to_vec()).await.unwrap();
        drop(w);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let mut left = Vec::new();
        for entry in walk(&dir.path().join("cas")) {
            left.push(entry);
        }
        assert!(left.is_empty(), "{left:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
        out
    }

    #[tokio::test]
    async fn stores_by_content_and_compresses_logs() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = BlobWriter::start(dir.path(), BlobKind::Log, 1 << 20);
        w.write(b"hello ".to_vec()).await.unwrap();
        w.write(b"world".to_vec()).await.unwrap();
        let sha = w.finish().await.unwrap().unwrap();
        assert_eq!(sha, hex::encode(Sha256::digest(b"hello world")));
        assert!(blob_path(dir.path(), BlobKind::Log, &sha).to_string_lossy().ends_with(".zst"));
        assert_eq!(read_blob(dir.path(), BlobKind::Log, &sha).unwrap().unwrap(), b"hello world");
        // Twice: one file.
        let mut w = BlobWriter::start(dir.path(), BlobKind::Log, 1 << 20);
        w.write(b"hello world".to_vec()).await.unwrap();
        assert_eq!(w.finish().await.unwrap().unwrap(), sha);
        assert_eq!(std::fs::read_dir(dir.path().join("cas/tmp")).unwrap().count(), 0, "no temporary file left");
        assert!(BlobWriter::start(dir.path(), BlobKind::Buildinfo, 10).finish().await.unwrap().is_none());
        let mut w = BlobWriter::start(dir.path(), BlobKind::Buildinfo, 4);
        assert!(matches!(w.write(b"12345".to_vec()).await, Err(CasError::TooLarge { .. })));
    }

    #[tokio::test]
    async fn diffoscope_reports_are_compressed_and_capped() {
        let dir = tempfile::tempdir().unwrap();
        let report = b"--- a.deb\n+++ b.deb\n".repeat(100);
        let mut w = BlobWriter::start(dir.path(), BlobKind::Diffoscope, 1 << 20);
        w.write(report.clone()).await.unwrap();
        let sha = w.finish().await.unwrap().unwrap();
        assert_eq!(sha, hex::encode(Sha256::digest(&report)));
        let path = blob_path(dir.path(), BlobKind::Diffoscope, &sha);
        assert!(path.to_string_lossy().contains("/cas/diffoscope/") && path.to_string_lossy().ends_with(".zst"));
        assert!(std::fs::metadata(&path).unwrap().len() < report.len() as u64, "stored compressed");
        assert_eq!(read_blob(dir.path(), BlobKind::Diffoscope, &sha).unwrap().unwrap(), report);
        let mut w = BlobWriter::start(dir.path(), BlobKind::Diffoscope, 10);
        let e = w.write(vec![b'x'; 11]).await.unwrap_err();
        assert_eq!(e.to_string(), "diffoscope report larger than 10 bytes");
    }
}

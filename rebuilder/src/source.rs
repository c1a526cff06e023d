//! Getting the source package of a job: from the URL the coordinator gives (the .dsc, checked
//! against the Sources index's SHA-256, and every file it lists checked against the .dsc's
//! Checksums-Sha256), or else from the node's own apt (`apt-get source --download-only`, which
//! checks through apt's signed indices). Then `dpkg-source -x`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use debcover_formats::SourcesEntry;
use debversion::Version;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::process::{self, Ended, Log, Step};

/// Largest source file fetched (the biggest Debian source tarballs are a few GiB).
const MAX_SOURCE_FILE: u64 = 8 << 30;

/// Why the source could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Fetching failed (network, missing file, I/O).
    #[error("{0}")]
    Fetch(String),
    /// What was fetched is not what was announced: a checksum, size, name or version differs.
    #[error("{0}")]
    Integrity(String),
    /// apt does not know the source version.
    #[error("{0}")]
    Unavailable(String),
    /// The job was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// What a job says about its source.
#[derive(Debug, Clone)]
pub struct SourceRequest {
    /// Source package name (validated by the buildinfo parser).
    pub source: String,
    /// Source version.
    pub version: Version,
    /// URL of the .dsc, or empty.
    pub dsc_url: String,
    /// Expected SHA-256 of the .dsc, or empty.
    pub dsc_sha256: String,
}

/// The .dsc file name of `source` at `version`: the epoch is not part of file names.
pub fn dsc_name(source: &str, version: &Version) -> String {
    let mut v = version.clone();
    v.epoch = None;
    format!("{source}_{v}.dsc")
}

fn http_client() -> Result<reqwest::Client, SourceError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .user_agent(crate::SOFTWARE)
        .build()
        .map_err(|e| SourceError::Fetch(format!("cannot set up HTTP: {e}")))
}

/// How long a download may go without receiving a byte before it is abandoned.
const STALL_LIMIT: Duration = Duration::from_secs(60);

/// Fetch `url` into `dest`, returning its size and SHA-256. Supports http(s):// and file://.
/// Every source is read in chunks, at most [`MAX_SOURCE_FILE`] bytes, abandoned after
/// [`STALL_LIMIT`] without progress, and stopped when `cancel` fires.
async fn download(
    client: &reqwest::Client,
    url: &str,
    dest: &Path,
    cancel: &CancellationToken,
) -> Result<(u64, String), SourceError> {
    use tokio::io::AsyncReadExt;
    let fetch = |e: String| SourceError::Fetch(format!("fetching {url}: {e}"));
    let too_large = || SourceError::Integrity(format!("{url} is larger than {MAX_SOURCE_FILE} bytes"));
    let stalled = || SourceError::Fetch(format!("fetching {url}: no data for {} s", STALL_LIMIT.as_secs()));
    let mut out = tokio::fs::File::create(dest).await.map_err(|e| fetch(e.to_string()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    if let Some(path) = url.strip_prefix("file://") {
        let meta = tokio::fs::metadata(path).await.map_err(|e| fetch(e.to_string()))?;
        if !meta.is_file() {
            return Err(fetch("not a regular file".into()));
        }
        let file = tokio::fs::File::open(path).await.map_err(|e| fetch(e.to_string()))?;
        // One byte past the cap is enough to know it is exceeded.
        let mut file = file.take(MAX_SOURCE_FILE + 1);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = tokio::select! {
                r = file.read(&mut buf) => r.map_err(|e| fetch(e.to_string()))?,
                _ = cancel.cancelled() => return Err(SourceError::Cancelled),
            };
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > MAX_SOURCE_FILE {
                return Err(too_large());
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).await.map_err(|e| fetch(e.to_string()))?;
        }
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let mut resp = tokio::select! {
            r = tokio::time::timeout(STALL_LIMIT, client.get(url).send()) => {
                r.map_err(|_| stalled())?.map_err(|e| fetch(e.to_string()))?
            }
            _ = cancel.cancelled() => return Err(SourceError::Cancelled),
        };
        if !resp.status().is_success() {
            return Err(fetch(format!("HTTP {}", resp.status())));
        }
        if resp.content_length().is_some_and(|n| n > MAX_SOURCE_FILE) {
            return Err(too_large());
        }
        loop {
            let chunk = tokio::select! {
                r = tokio::time::timeout(STALL_LIMIT, resp.chunk()) => r.map_err(|_| stalled())?.map_err(|e| fetch(e.to_string()))?,
                _ = cancel.cancelled() => return Err(SourceError::Cancelled),
            };
            let Some(chunk) = chunk else { break };
            size += chunk.len() as u64;
            if size > MAX_SOURCE_FILE {
                return Err(too_large());
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await.map_err(|e| fetch(e.to_string()))?;
        }
    } else {
        return Err(fetch("only http://, https:// and file:// URLs are supported".into()));
    }
    out.flush().await.map_err(|e| fetch(e.to_string()))?;
    Ok((size, hex::encode(hasher.finalize())))
}

/// Fetch one file (an original package for comparison) from `url` into `dest`.
pub async fn fetch_file(url: &str, dest: &Path, cancel: &CancellationToken) -> Result<(u64, String), SourceError> {
    download(&http_client()?, url, dest, cancel).await
}

/// Fetch the source package into `dir`; returns the path of the .dsc.
pub async fn fetch(
    req: &SourceRequest,
    dir: &Path,
    log: &mut Log,
    cancel: &CancellationToken,
) -> Result<PathBuf, SourceError> {
    let name = dsc_name(&req.source, &req.version);
    if req.dsc_url.is_empty() {
        let spec = format!("{}={}", req.source, req.version);
        let _ = log.note(&format!("no source URL from the coordinator: asking apt for {spec}"));
        let step = Step::new("apt-get", &["source", "--download-only", "-q", &spec], dir);
        match process::run(&step, log, Duration::from_secs(3600), cancel).await {
            Ok(Ended::Exited(0)) => {}
            Ok(Ended::Cancelled) => return Err(SourceError::Cancelled),
            Ok(other) => {
                return Err(SourceError::Unavailable(format!(
                    "apt-get source {spec} failed ({other:?}); is a deb-src entry for its suite configured?"
                )));
            }
            Err(e) => return Err(SourceError::Fetch(format!("apt-get source: {e}"))),
        }
        let dsc = dir.join(&name);
        if !dsc.exists() {
            return Err(SourceError::Integrity(format!("apt-get source {spec} did not produce {name}")));
        }
        return Ok(dsc);
    }
    let client = http_client()?;
    let Some((base, _)) = req.dsc_url.rsplit_once('/') else {
        return Err(SourceError::Fetch(format!("source URL {:?} has no directory", req.dsc_url)));
    };
    let dsc = dir.join(&name);
    let (_, sha) = download(&client, &req.dsc_url, &dsc, cancel).await?;
    let _ = log.note(&format!("fetched {} (sha256 {sha})", req.dsc_url));
    if !req.dsc_sha256.is_empty() && !req.dsc_sha256.eq_ignore_ascii_case(&sha) {
        return Err(SourceError::Integrity(format!(
            "{}: SHA-256 {sha}, but the archive's Sources index says {}",
            req.dsc_url, req.dsc_sha256
        )));
    }
    let bytes = tokio::fs::read(&dsc).await.map_err(|e| SourceError::Fetch(format!("{}: {e}", dsc.display())))?;
    let parsed = SourcesEntry::parse_dsc(&bytes)
        .map_err(|e| SourceError::Integrity(format!("{}: {}", req.dsc_url, e.in_file(&name))))?;
    if parsed.package != req.source || parsed.version != req.version {
        return Err(SourceError::Integrity(format!(
            "{} is {} {}, but the job is {} {}",
            req.dsc_url, parsed.package, parsed.version, req.source, req.version
        )));
    }
    if parsed.files.is_empty() {
        return Err(SourceError::Integrity(format!("{}: no Checksums-Sha256 files listed", req.dsc_url)));
    }
    for (want_sha, want_size, file) in &parsed.files {
        if file.contains('/') || file.starts_with('.') || file.is_empty() {
            return Err(SourceError::Integrity(format!("{}: file name {file:?} is not a plain file name", req.dsc_url)));
        }
        if cancel.is_cancelled() {
            return Err(SourceError::Cancelled);
        }
        let url = format!("{base}/{file}");
        let (size, sha) = download(&client, &url, &dir.join(file), cancel).await?;
        if size != *want_size || sha != *want_sha {
            return Err(SourceError::Integrity(format!(
                "{url}: {size} bytes with SHA-256 {sha}, but the .dsc lists {want_size} bytes with {want_sha}"
            )));
        }
        let _ = log.note(&format!("fetched {url} ({size} bytes, checksum matches the .dsc)"));
    }
    Ok(dsc)
}

/// Unpack `dsc` into `dest` (which must not exist yet) with dpkg-source.
pub async fn unpack(dsc: &Path, dest: &Path, log: &mut Log, cancel: &CancellationToken) -> Result<(), SourceError> {
    let dir = dsc.parent().unwrap_or(Path::new("."));
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| SourceError::Fetch(format!("{}: {e}", parent.display())))?;
    }
    let dsc_s = dsc.to_string_lossy().into_owned();
    let dest_s = dest.to_string_lossy().into_owned();
    let step = Step::new("dpkg-source", &["--no-copy", "-x", &dsc_s, &dest_s], dir);
    match process::run(&step, log, Duration::from_secs(3600), cancel).await {
        Ok(Ended::Exited(0)) => Ok(()),
        Ok(Ended::Cancelled) => Err(SourceError::Cancelled),
        Ok(other) => Err(SourceError::Integrity(format!("dpkg-source -x {} failed ({other:?})", dsc.display()))),
        Err(e) => Err(SourceError::Fetch(format!("dpkg-source: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A download from a server that never answers ends when the job is cancelled, and a
    /// file:// URL that is not a regular file (a FIFO would block, a device would never end)
    /// is refused.
    #[tokio::test]
    async fn downloads_are_cancellable_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/x.dsc", listener.local_addr().unwrap());
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.cancel();
        });
        let t = std::time::Instant::now();
        let r = download(&http_client().unwrap(), &url, &dir.path().join("x"), &cancel).await;
        assert!(matches!(r, Err(SourceError::Cancelled)), "{r:?}");
        assert!(t.elapsed() < Duration::from_secs(10));
        drop(listener);
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let r = download(&http_client().unwrap(), &format!("file://{}", fifo.display()), &dir.path().join("y"), &CancellationToken::new()).await;
        assert!(matches!(&r, Err(SourceError::Fetch(m)) if m.contains("not a regular file")), "{r:?}");
        let r = download(&http_client().unwrap(), "file:///dev/zero", &dir.path().join("z"), &CancellationToken::new()).await;
        assert!(matches!(&r, Err(SourceError::Fetch(m)) if m.contains("not a regular file")), "{r:?}");
    }

    #[test]
    fn dsc_names_drop_the_epoch() {
        assert_eq!(dsc_name("gmp", &"2:6.2.1+dfsg1-1.1".parse().unwrap()), "gmp_6.2.1+dfsg1-1.1.dsc");
        assert_eq!(dsc_name("hello", &"2.10-3".parse().unwrap()), "hello_2.10-3.dsc");
    }
}

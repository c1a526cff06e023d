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

/// Fetch `url` into `dest`, returning its size and SHA-256. Supports http(s):// and file://.
async fn download(client: &reqwest::Client, url: &str, dest: &Path) -> Result<(u64, String), SourceError> {
    let fetch = |e: String| SourceError::Fetch(format!("fetching {url}: {e}"));
    let mut out = tokio::fs::File::create(dest).await.map_err(|e| fetch(e.to_string()))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    if let Some(path) = url.strip_prefix("file://") {
        let bytes = tokio::fs::read(path).await.map_err(|e| fetch(e.to_string()))?;
        hasher.update(&bytes);
        size = bytes.len() as u64;
        out.write_all(&bytes).await.map_err(|e| fetch(e.to_string()))?;
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let mut resp = client.get(url).send().await.map_err(|e| fetch(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fetch(format!("HTTP {}", resp.status())));
        }
        while let Some(chunk) = resp.chunk().await.map_err(|e| fetch(e.to_string()))? {
            size += chunk.len() as u64;
            if size > MAX_SOURCE_FILE {
                return Err(SourceError::Integrity(format!("{url} is larger than {MAX_SOURCE_FILE} bytes")));
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
pub async fn fetch_file(url: &str, dest: &Path) -> Result<(u64, String), SourceError> {
    download(&http_client()?, url, dest).await
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
    let (_, sha) = download(&client, &req.dsc_url, &dsc).await?;
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
        let (size, sha) = download(&client, &url, &dir.join(file)).await?;
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

    #[test]
    fn dsc_names_drop_the_epoch() {
        assert_eq!(dsc_name("gmp", &"2:6.2.1+dfsg1-1.1".parse().unwrap()), "gmp_6.2.1+dfsg1-1.1.dsc");
        assert_eq!(dsc_name("hello", &"2.10-3".parse().unwrap()), "hello_2.10-3.dsc");
    }
}

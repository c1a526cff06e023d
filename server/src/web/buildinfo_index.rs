//! `/dists/{suite}/{arch}/Buildinfo.xz`: the aggregated buildinfo index proposed for Debian,
//! one per suite and architecture, holding the builds behind the binaries the suite ships.
//!
//! Arch-all and arch-any builds are kept apart as the proposal asks (binNMUs do not rebuild
//! arch:all packages): `dists/S/amd64/Buildinfo.xz` holds the builds of the shipped amd64
//! binaries, `dists/S/all/Buildinfo.xz` those of the shipped arch:all binaries (a build that
//! produced both is in both). Each build is its stored buildinfo parsed and rendered by
//! `Buildinfo::render` (fields in one defined order, signature dropped), paragraphs separated
//! by one blank line as `debcover_formats::aggregate::render_index` does, sorted by source
//! name, version (Debian order) and buildinfo SHA-256, compressed with xz preset 6 on one
//! thread (CRC64 check): regenerating it from the same data gives the same bytes.

use std::io::Write;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use debcover_formats::buildinfo::Buildinfo;

use super::{St, WebError, WebResult};
use debcover_core::store::views::IndexBuild;
use debcover_core::store::{BuildStore, StoreError, ViewStore};

/// xz preset of the index (fixed: the bytes must not change between regenerations).
pub const XZ_PRESET: u32 = 6;
/// Builds rendered per step on the blocking compressor thread.
const CHUNK: usize = 256;

/// Why an index could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored buildinfo is missing or no longer parses (corruption, or a parser change).
    #[error("stored buildinfo {sha256} ({source_name} {version}): {message}")]
    Build {
        /// Its SHA-256.
        sha256: String,
        /// Source package.
        source_name: String,
        /// Version.
        version: String,
        /// What is wrong.
        message: String,
    },
    /// Compression failed.
    #[error("compressing Buildinfo.xz: {0}")]
    Compress(String),
}

/// The `Buildinfo.xz` of `suite` and `arch` (`all` for the arch-independent builds).
pub async fn buildinfo_index<S: ViewStore + BuildStore>(store: &S, suite: &str, arch: &str) -> Result<Vec<u8>, IndexError> {
    let mut builds = store.index_builds(suite, arch).await?;
    sort(&mut builds);
    let mut encoder = xz2::write::XzEncoder::new(Vec::new(), XZ_PRESET);
    let mut first = true;
    for chunk in builds.chunks(CHUNK) {
        let mut texts = Vec::with_capacity(chunk.len());
        for b in chunk {
            let text = store.raw_buildinfo(&b.sha256).await?.ok_or_else(|| build_error(b, "not stored"))?;
            texts.push((b.clone(), text));
        }
        let rendered = first;
        first = false;
        encoder = tokio::task::spawn_blocking(move || -> Result<_, IndexError> {
            let mut first = rendered;
            for (b, text) in texts {
                let parsed = Buildinfo::parse(&text).map_err(|e| build_error(&b, &e.to_string()))?;
                if !first {
                    encoder.write_all(b"\n").map_err(|e| IndexError::Compress(e.to_string()))?;
                }
                first = false;
                encoder.write_all(parsed.render().as_bytes()).map_err(|e| IndexError::Compress(e.to_string()))?;
            }
            Ok(encoder)
        })
        .await
        .map_err(|e| IndexError::Compress(e.to_string()))??;
    }
    tokio::task::spawn_blocking(move || encoder.finish())
        .await
        .map_err(|e| IndexError::Compress(e.to_string()))?
        .map_err(|e| IndexError::Compress(e.to_string()))
}

/// Source name, then Debian version order, then SHA-256 (total: no two builds share it).
fn sort(builds: &mut [IndexBuild]) {
    builds.sort_by(|a, b| {
        a.source.cmp(&b.source).then_with(|| {
            match (a.version.parse::<debversion::Version>(), b.version.parse::<debversion::Version>()) {
                (Ok(x), Ok(y)) => x.cmp(&y),
                _ => a.version.cmp(&b.version),
            }
            .then_with(|| a.sha256.cmp(&b.sha256))
        })
    });
}

fn build_error(b: &IndexBuild, message: &str) -> IndexError {
    IndexError::Build {
        sha256: b.sha256.clone(),
        source_name: b.source.clone(),
        version: b.version.clone(),
        message: message.to_owned(),
    }
}

/// `/dists/{suite}/{arch}/Buildinfo.xz`.
pub async fn handler<S: ViewStore + BuildStore>(State(web): St<S>, Path((suite, arch)): Path<(String, String)>) -> WebResult {
    if arch.is_empty() || !arch.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(WebError::bad_request(format!("{arch:?} is not a Debian architecture name")));
    }
    if web.store.suite_imported_at(&suite).await? == 0 {
        return Err(WebError::not_found(format!("no suite {suite:?}: no index of it was imported")));
    }
    let bytes = buildinfo_index(&*web.store, &suite, &arch).await.map_err(|e| {
        tracing::error!(%suite, %arch, error = %e, "Buildinfo.xz failed");
        WebError { status: axum::http::StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() }
    })?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/x-xz"))], bytes).into_response())
}

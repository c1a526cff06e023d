//! The client side of the `debcover` commands: each talks to a coordinator over gRPC, except
//! `inspect` (`debcover inspect-deb`), which reads a local `.deb` offline.
//!
//! # Invariants
//! - The client never parses buildinfo fields or touches a database: it only frames inputs
//!   (files, directories, aggregated indices, URLs) and shows what the server answered. The
//!   server is the one authority on what is valid.
//! - Memory stays bounded whatever the input size: files are read lazily and sent in batches
//!   over a bounded channel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use debcover_proto::v1 as pb;
use debcover_proto::v1::coordinator_client::CoordinatorClient;
use tonic::transport::{Channel, Endpoint};

pub mod archive;
pub mod buildinfo;
pub mod campaign;
pub mod inspect;
pub mod output;
pub mod rebuild;

/// Open a gRPC channel to the coordinator at `server` (shared by every service's client).
pub async fn channel(server: &str) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("{server:?} is not a valid server URL (expected http://HOST:PORT)"))?
        .connect_timeout(Duration::from_secs(10));
    endpoint.connect().await.with_context(|| {
        format!("cannot reach the coordinator at {server}; is `debcover serve` running there? (set --server or DEBCOVER_SERVER)")
    })
}

/// Open a channel to the coordinator at `server`.
pub async fn connect(server: &str) -> Result<CoordinatorClient<Channel>> {
    Ok(CoordinatorClient::new(channel(server).await?)
        .max_decoding_message_size(crate::service::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::service::MAX_MESSAGE_BYTES))
}

/// Ask `built-with`: through `BuiltWithEncoded` (the server assembles the answer from encodings
/// it keeps), decoded into the same `BuiltWithResponse` that `BuiltWith` returns; servers
/// without that call are asked `BuiltWith`.
pub async fn built_with(
    c: &mut CoordinatorClient<Channel>,
    req: debcover_proto::v1::BuiltWithRequest,
) -> Result<debcover_proto::v1::BuiltWithResponse> {
    match c.built_with_encoded(req.clone()).await {
        Ok(r) => {
            let r = r.into_inner();
            <debcover_proto::v1::BuiltWithResponse as prost::Message>::decode(r.response)
                .context("the server's built-with answer does not decode")
        }
        Err(s) if s.code() == tonic::Code::Unimplemented => Ok(c
            .built_with(req)
            .await
            .map_err(|s| status_error("built-with", s))?
            .into_inner()),
        Err(s) => Err(status_error("built-with", s)),
    }
}

/// Turn a gRPC error into a message for the user (the server's text, without transport noise).
pub fn status_error(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{what}: {} ({:?})", s.message(), s.code())
}

/// Is this input a URL rather than a path?
pub fn is_url(input: &str) -> bool {
    input.starts_with("http://") || input.starts_with("https://")
}

/// Download `url` into `dir`, returning the file's path. Used so that large remote inputs are
/// streamed to disk rather than held in memory.
pub async fn download(url: &str, dir: &Path) -> Result<PathBuf> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let client = http_client()?;
    let resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("{url}: request failed"))?
        .error_for_status()
        .with_context(|| format!("{url}: server refused"))?;
    let name = url.rsplit('/').find(|s| !s.is_empty()).unwrap_or("download");
    let path = dir.join(format!("{}-{}", std::process::id(), sanitize(name)));
    let mut file = tokio::fs::File::create(&path)
        .await
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("{url}: download interrupted"))?;
        file.write_all(&chunk).await.with_context(|| format!("cannot write {}", path.display()))?;
    }
    file.flush().await?;
    Ok(path)
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-+".contains(c) { c } else { '_' }).collect()
}

/// The HTTP client for URL inputs: rustls with the ring provider and the platform's roots.
pub fn http_client() -> Result<reqwest::Client> {
    // Installing twice is harmless (the second call reports the first provider); ignore it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("debcover/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .build()
        .context("cannot set up the HTTP client")
}

/// Server identity and counts, for `debcover status`.
pub async fn status(server: &str) -> Result<pb::ServerInfoResponse> {
    let mut c = connect(server).await?;
    Ok(c
        .server_info(pb::ServerInfoRequest {})
        .await
        .map_err(|s| status_error("status", s))?
        .into_inner())
}

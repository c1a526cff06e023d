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
use debcover_wire::channel::{Tuning, error_chain};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub mod archive;
pub mod attest;
pub mod buildinfo;
pub mod campaign;
pub mod inspect;
pub mod output;
pub mod rebuild;

/// The CA certificate file for `https://` servers, set once at start-up by [`set_ca_cert`].
static CA_CERT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Trust the PEM CA certificate(s) in `path` for `https://` coordinators in every later
/// [`channel`] of this process (None: the system's roots). The command line sets it once, from
/// `--ca-cert`, `DEBCOVER_CA_CERT` or the file's `ca_cert`; later calls are ignored.
pub fn set_ca_cert(path: Option<PathBuf>) {
    let _ = CA_CERT.set(path);
}

/// The credential every call of this process carries, set once at start-up by
/// [`set_credential`].
static CREDENTIAL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Send `token` as `authorization: Bearer TOKEN` on every later call of this process (None: no
/// credential; reads are open unless the coordinator closed them). Later calls are ignored.
pub fn set_credential(token: Option<String>) {
    let _ = CREDENTIAL.set(token);
}

/// The credential set by [`set_credential`].
pub fn credential() -> Option<&'static str> {
    CREDENTIAL.get().and_then(Option::as_deref)
}

/// A channel whose calls carry a credential.
pub type Conn = InterceptedService<Channel, BearerAuth>;

/// Adds `authorization: Bearer TOKEN` to every call (nothing without a token).
#[derive(Clone)]
pub struct BearerAuth(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl BearerAuth {
    /// With `token`, or without credentials.
    pub fn new(token: Option<&str>) -> Result<BearerAuth> {
        Ok(BearerAuth(match token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .context("the token contains characters not allowed in metadata")?,
            ),
            None => None,
        }))
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// Open a gRPC channel to the coordinator at `server` (shared by every service's client), its
/// calls carrying the process's credential ([`set_credential`]): `http://` plain, `https://`
/// over TLS with the CA set by [`set_ca_cert`] or the system roots. Large answers arrive in
/// 1 MiB frames ([`Tuning::LARGE_ANSWERS`]).
pub async fn channel(server: &str) -> Result<Conn> {
    channel_as(server, credential()).await
}

/// [`channel`] carrying `token` instead.
pub async fn channel_as(server: &str, token: Option<&str>) -> Result<Conn> {
    let raw = channel_with_ca(server, CA_CERT.get().and_then(Option::as_deref)).await?;
    Ok(InterceptedService::new(raw, BearerAuth::new(token)?))
}

/// Whether `e` is the coordinator refusing the call's credential (a retry with the same one
/// cannot succeed).
pub fn is_refused_credential(e: &anyhow::Error) -> bool {
    let refused = |c: tonic::Code| {
        matches!(
            c,
            tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
        )
    };
    e.chain().any(|c| {
        c.downcast_ref::<tonic::Status>()
            .is_some_and(|s| refused(s.code()))
            || c.downcast_ref::<CallError>()
                .is_some_and(|s| refused(s.code))
    })
}

/// [`channel`] with an explicit CA certificate file for `https://` servers.
pub async fn channel_with_ca(server: &str, ca_cert: Option<&Path>) -> Result<Channel> {
    let tls = server.starts_with("https://");
    let endpoint = debcover_wire::channel::endpoint(server, ca_cert, Tuning::LARGE_ANSWERS)?;
    endpoint.connect().await.map_err(|e| anyhow::anyhow!("{}", error_chain(&e))).with_context(|| {
        if !tls {
            format!("cannot reach the coordinator at {server}; is `debcover serve` running there? (set --server or DEBCOVER_SERVER)")
        } else {
            let trust = match ca_cert {
                Some(p) => format!("the CA certificate {}", p.display()),
                None => "the system's root certificates (no --ca-cert / DEBCOVER_CA_CERT given)".to_owned(),
            };
            format!(
                "cannot reach the coordinator at {server} over TLS; is `debcover serve --tls-cert ... --tls-key ...` running \
                 there, and is its certificate signed by {trust} and valid for that host name? (set --ca-cert or DEBCOVER_CA_CERT)"
            )
        }
    })
}

/// Open a channel to the coordinator at `server`.
pub async fn connect(server: &str) -> Result<CoordinatorClient<Conn>> {
    Ok(CoordinatorClient::new(channel(server).await?)
        .max_decoding_message_size(debcover_wire::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(debcover_wire::MAX_MESSAGE_BYTES))
}

/// Ask `built-with`: the answer's pages, each checked and decoded as it arrives, gathered into
/// the domain values the commands render.
pub async fn built_with(
    channel: Conn,
    req: debcover_proto::v1::BuiltWithRequest,
) -> Result<debcover_core::model::BuiltWithResult> {
    let mut c = CoordinatorClient::new(channel)
        .max_decoding_message_size(debcover_wire::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(debcover_wire::MAX_MESSAGE_BYTES);
    let mut stream = c.built_with(req).await.map_err(|s| status_error("built-with", s))?.into_inner();
    let mut pages = debcover_wire::built_with::Pages::new();
    while let Some(page) = stream.message().await.map_err(|s| status_error("built-with", s))? {
        pages.add(&page)?;
    }
    Ok(pages.finish())
}

/// Turn a gRPC error into a message for the user (the server's text, without transport noise).
pub fn status_error(what: &str, s: tonic::Status) -> anyhow::Error {
    // A plain-text client speaking to a TLS server sees only a broken HTTP/2 connection.
    let hint = if s.message().contains("h2 protocol error") {
        " (the connection broke: if the coordinator serves TLS, use an https:// server URL and --ca-cert)"
    } else {
        ""
    };
    let code = s.code();
    anyhow::Error::new(CallError {
        message: format!("{what}: {} ({code:?}){hint}", s.message()),
        code,
    })
}

/// A refused or failed call: the message names what was asked and why; the code says whether
/// retrying can help ([`is_refused_credential`]).
#[derive(Debug)]
pub struct CallError {
    message: String,
    /// The gRPC status code.
    pub code: tonic::Code,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CallError {}

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
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
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

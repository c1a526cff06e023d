//! Connecting to a coordinator, shared by the `debcover` commands and the rebuilder node: one
//! gRPC channel, plain for `http://` servers and TLS (rustls with the ring provider) for
//! `https://` ones.
//!
//! For `https://`, the server's certificate must chain to the CA certificate(s) given (a PEM
//! file, e.g. an operator's private CA) or, without one, to the system's root certificates,
//! and be valid for the URL's host name or IP address. A CA certificate with an `http://`
//! server is an error: the connection would not be protected, whatever the user believed.
//!
//! What to say when the connection itself fails is the caller's: a command and a node give
//! different advice; [`error_chain`] gives them the cause in one line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// How long establishing the connection (TCP and TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2 settings of a channel beyond the protocol's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tuning {
    /// The largest HTTP/2 frame accepted (default 16 KiB).
    pub max_frame_bytes: Option<u32>,
    /// The stream and connection windows: how much the server may send before the client
    /// acknowledges it.
    pub window_bytes: Option<u32>,
}

impl Tuning {
    /// For clients that receive large answers (`built-with` of a library in every build): 1 MiB
    /// frames and 8 MiB windows. A 35,000-build answer then arrives in a few hundred frames
    /// instead of thousands (measured: 16-18 ms instead of 18-25 ms, BENCHMARKS.md).
    pub const LARGE_ANSWERS: Tuning = Tuning { max_frame_bytes: Some(1024 * 1024), window_bytes: Some(8 * 1024 * 1024) };
}

/// Why a channel could not be set up (before any connection attempt).
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Neither `http://` nor `https://`.
    #[error(
        "coordinator URL {0:?} must start with http:// or https:// (expected http://HOST:PORT, or https://HOST:PORT for TLS)"
    )]
    Scheme(String),
    /// Not a URL.
    #[error("coordinator URL {0:?} is not a valid URL (expected http://HOST:PORT or https://HOST:PORT)")]
    Url(String),
    /// A CA certificate for a plain `http://` server.
    #[error(
        "a CA certificate ({}) was given but the coordinator URL {server} is plain http://: use https://, or remove the CA \
         certificate setting (--ca-cert / DEBCOVER_CA_CERT)",
        ca.display()
    )]
    CaWithPlainHttp {
        /// The server URL.
        server: String,
        /// The CA file.
        ca: PathBuf,
    },
    /// The CA file cannot be read.
    #[error("cannot read the CA certificate {}: {source}", path.display())]
    CaUnreadable {
        /// The CA file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file is not PEM.
    #[error("the CA certificate {} is not a PEM certificate file", path.display())]
    CaNotPem {
        /// The CA file.
        path: PathBuf,
    },
    /// The CA file holds no certificate.
    #[error("the CA certificate {} holds no \"BEGIN CERTIFICATE\" block", path.display())]
    CaEmpty {
        /// The CA file.
        path: PathBuf,
    },
    /// TLS could not be set up.
    #[error("cannot set up TLS for the coordinator {server}: {}", error_chain(source))]
    Tls {
        /// The server URL.
        server: String,
        /// Why.
        source: tonic::transport::Error,
    },
}

/// The endpoint for the coordinator at `server` (`http://HOST:PORT` or `https://HOST:PORT`),
/// validated and with TLS set up, not yet connected (`connect()` it, or `connect_lazy()` for a
/// client that starts before the coordinator and reconnects by itself after a restart).
pub fn endpoint(server: &str, ca_cert: Option<&Path>, tuning: Tuning) -> Result<Endpoint, ChannelError> {
    let tls = if server.starts_with("https://") {
        true
    } else if server.starts_with("http://") {
        false
    } else {
        return Err(ChannelError::Scheme(server.to_owned()));
    };
    let mut endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|_| ChannelError::Url(server.to_owned()))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if let Some(frame) = tuning.max_frame_bytes {
        endpoint = endpoint.max_frame_size(frame);
    }
    if let Some(window) = tuning.window_bytes {
        endpoint = endpoint.initial_stream_window_size(window).initial_connection_window_size(window);
    }
    if tls {
        // Installing twice is harmless (the second call reports the first provider).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = match ca_cert {
            Some(path) => ClientTlsConfig::new().ca_certificate(read_ca_cert(path)?),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint.tls_config(config).map_err(|source| ChannelError::Tls { server: server.to_owned(), source })?;
    } else if let Some(path) = ca_cert {
        return Err(ChannelError::CaWithPlainHttp { server: server.to_owned(), ca: path.to_owned() });
    }
    Ok(endpoint)
}

/// An error and its causes as one line, without the transport's generic words and without
/// repeating a cause its wrapper already printed (rustls errors appear twice in tonic's chain).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if text != "transport error" && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// Read a PEM CA certificate file; errors name the file.
fn read_ca_cert(path: &Path) -> Result<Certificate, ChannelError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).map_err(|source| ChannelError::CaUnreadable { path: path.to_owned(), source })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ChannelError::CaNotPem { path: path.to_owned() })?;
    if certs.is_empty() {
        return Err(ChannelError::CaEmpty { path: path.to_owned() });
    }
    Ok(Certificate::from_pem(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_and_files_are_named() {
        let e = endpoint("127.0.0.1:1", None, Tuning::default()).unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:1") && e.contains("http://"), "{e}");
        let e = endpoint("http://127.0.0.1:1", Some(Path::new("/x/ca.pem")), Tuning::default()).unwrap_err().to_string();
        assert!(e.contains("/x/ca.pem") && e.contains("https://") && e.contains("plain http://"), "{e}");
        let e = endpoint("https://127.0.0.1:1", Some(Path::new("/nonexistent/ca.pem")), Tuning::default()).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let e = endpoint("https://127.0.0.1:1", Some(&not_pem), Tuning::default()).unwrap_err().to_string();
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
    }
}

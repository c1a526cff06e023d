//! Connecting to the coordinator: one gRPC channel, plain for `http://` servers and TLS
//! (rustls with the ring provider) for `https://` ones.
//!
//! For `https://`, the server's certificate must chain to the CA certificate(s) given (a PEM
//! file, e.g. the operator's private CA) or, without one, to the system's root certificates,
//! and be valid for the URL's host name or IP address.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

/// How long establishing the connection (TCP and TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Open a gRPC channel to the coordinator at `server` (`http://HOST:PORT` or
/// `https://HOST:PORT`), trusting the PEM CA certificate(s) in `ca_cert` for `https://`
/// servers, or the system roots when None. A CA certificate with an `http://` server is an
/// error (the connection would not be protected). Errors name the server and what to check.
pub async fn channel(server: &str, ca_cert: Option<&Path>) -> Result<Channel> {
    let tls = server.starts_with("https://");
    endpoint(server, ca_cert)?.connect().await.map_err(|e| anyhow::anyhow!("{}", error_chain(&e))).with_context(|| {
        if tls {
            let trust = match ca_cert {
                Some(p) => format!("the CA certificate {}", p.display()),
                None => "a system root certificate (no CA certificate configured)".to_owned(),
            };
            format!(
                "cannot connect to the coordinator at {server} over TLS within {}s: check that it is running with \
                 --tls-cert/--tls-key, that its certificate is signed by {trust} and names that host, and the network",
                CONNECT_TIMEOUT.as_secs()
            )
        } else {
            format!(
                "cannot connect to the coordinator at {server} within {}s: check that `debcover serve` is running there \
                 and listening on that address, and the network",
                CONNECT_TIMEOUT.as_secs()
            )
        }
    })
}

/// The endpoint of [`channel`], validated and with TLS set up, not yet connected: the node
/// connects it lazily (`Endpoint::connect_lazy`), so that it starts before the coordinator and
/// reconnects by itself after a coordinator restart.
pub fn endpoint(server: &str, ca_cert: Option<&Path>) -> Result<Endpoint> {
    let tls = if server.starts_with("https://") {
        true
    } else if server.starts_with("http://") {
        false
    } else {
        bail!("coordinator URL {server:?} must start with http:// or https:// (e.g. https://coordinator.example.org:7430)");
    };
    let mut endpoint = Endpoint::from_shared(server.to_owned())
        .with_context(|| format!("coordinator URL {server:?} is not a valid URL (expected http(s)://HOST:PORT)"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    if tls {
        // Installing twice is harmless (the second call reports the first provider).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = match ca_cert {
            Some(path) => ClientTlsConfig::new().ca_certificate(read_ca_cert(path)?),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint.tls_config(config).with_context(|| format!("cannot set up TLS for the coordinator {server}"))?;
    } else if let Some(path) = ca_cert {
        bail!(
            "a CA certificate ({}) is configured but the coordinator URL {server} is plain http://: use https:// \
             (the coordinator serving with --tls-cert/--tls-key), or remove the CA certificate setting",
            path.display()
        );
    }
    Ok(endpoint)
}

/// An error and its causes as one line, without the transport's generic words and without
/// repeating a cause its wrapper already printed (rustls errors appear twice in tonic's chain).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
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
fn read_ca_cert(path: &Path) -> Result<Certificate> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pem = std::fs::read(path).with_context(|| format!("cannot read the CA certificate file {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("CA certificate file {} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        bail!("CA certificate file {} holds no \"BEGIN CERTIFICATE\" block", path.display());
    }
    Ok(Certificate::from_pem(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_urls_and_files_are_named() {
        let e = channel("127.0.0.1:1", None).await.unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:1") && e.contains("http://"), "{e}");
        let e = format!("{:#}", channel("http://127.0.0.1:1", Some(Path::new("/x/ca.pem"))).await.unwrap_err());
        assert!(e.contains("/x/ca.pem") && e.contains("https://"), "{e}");
        let e = format!("{:#}", channel("https://127.0.0.1:1", Some(Path::new("/nonexistent/ca.pem"))).await.unwrap_err());
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let e = format!("{:#}", channel("https://127.0.0.1:1", Some(&not_pem)).await.unwrap_err());
        assert!(e.contains("BEGIN CERTIFICATE"), "{e}");
        // Nothing listens on port 1: the error names the server.
        let e = format!("{:#}", channel("http://127.0.0.1:1", None).await.unwrap_err());
        assert!(e.contains("http://127.0.0.1:1") && e.contains("debcover serve"), "{e}");
    }
}

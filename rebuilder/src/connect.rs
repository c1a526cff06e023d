//! Connecting to the coordinator: one gRPC channel, plain for `http://` servers and TLS
//! (rustls with the ring provider) for `https://` ones.
//!
//! For `https://`, the server's certificate must chain to the CA certificate(s) given (a PEM
//! file, e.g. the operator's private CA) or, without one, to the system's root certificates,
//! and be valid for the URL's host name or IP address.

use std::path::Path;

use anyhow::{Context, Result};
use debcover_wire::channel::{CONNECT_TIMEOUT, Tuning, error_chain};
use tonic::transport::{Channel, Endpoint};

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
    Ok(debcover_wire::channel::endpoint(server, ca_cert, Tuning::default())?)
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

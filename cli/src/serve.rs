//! `debcover serve`: resolve the configuration, bind the listeners, open the backend the
//! database URL names (the one place the backend is chosen), and run the server until SIGINT
//! or SIGTERM.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use debcover_server::{Listeners, Settings};
use debcover_store::{PgStore, SqliteStore};
use tokio_util::sync::CancellationToken;

use crate::args::ServeArgs;
use crate::config::{self, ServeConfig};
use crate::ctx::Ctx;

/// Run the coordinator.
pub async fn run(a: ServeArgs, ctx: &Ctx) -> Result<()> {
    let file = &ctx.file;
    let cfg = ServeConfig::resolve(a.listen, a.db, a.data_dir, file)?;
    let http_listen = config::resolve_http_listen(a.http_listen, file)?;
    let flags = config::RebuildFlags {
        lease_ttl: a.lease_ttl,
        retry_delays: a.retry_delays,
        max_failures: a.max_failures,
        max_unreproducible: a.max_unreproducible,
        verifiers: a.verifiers,
        archive_mirror: a.archive_mirror,
    };
    let rebuild = config::RebuildConfig::resolve(flags, file)?;
    let token_file = config::admin_token_file(ctx.admin_token_file.clone(), Some(&cfg.data_dir), file);
    // Read and check the certificate and key before anything else, so a wrong file is named.
    let tls = match config::TlsFiles::resolve(a.tls_cert, a.tls_key, file)? {
        Some(files) => {
            let pem = files.load()?;
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(pem.cert, pem.key)))
        }
        None => None,
    };
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let admin_token = admin_token(&token_file)?;
    if let Some(m) = &rebuild.archive_mirror {
        tracing::info!(mirror = %m, "rebuild jobs point to this archive mirror");
    }
    let mut settings = Settings::new(rebuild.policy, rebuild.routes, &admin_token, cfg.data_dir.clone())
        .with_archive_mirror(rebuild.archive_mirror);
    settings.database = redact(&cfg.db);
    settings.closed_reads = a.closed_reads || file.closed_reads.unwrap_or(false);
    settings.signatures = signatures(a.buildinfo_keyrings, a.signature_policy, file)?;
    if let Some(n) = a.max_index_entries {
        anyhow::ensure!(n > 0, "--max-index-entries must be at least 1");
        settings.limits.max_index_entries = n;
    }
    let grpc = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {} (is another coordinator running? set --listen)", cfg.listen))?;
    let web = match http_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for the web views (set --http-listen, or --http-listen off)")
        })?),
        None => None,
    };
    let listeners = Listeners { grpc, web, tls };
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    match debcover_store::backend_of_url(&cfg.db)? {
        "postgres" => {
            let store = PgStore::open(&cfg.db).await.context("cannot open the PostgreSQL database")?;
            debcover_server::run(listeners, store, settings, shutdown).await?;
        }
        _ => {
            let store = SqliteStore::open(&cfg.db).await.with_context(|| format!("cannot open {}", cfg.db))?;
            debcover_server::run(listeners, store, settings, shutdown).await?;
        }
    }
    Ok(())
}

/// The admin token of `serve`: DEBCOVER_ADMIN_TOKEN, else the token file, created with a new
/// random token (mode 0600) when missing.
fn admin_token(path: &Path) -> Result<String> {
    if let Ok(t) = std::env::var("DEBCOVER_ADMIN_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    if !path.exists() {
        use std::io::Write;
        #[cfg(unix)]
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let token = format!("dca_{}", &debcover_core::rebuild::new_token()[4..]);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        match opts.open(path) {
            Ok(mut f) => {
                writeln!(f, "{token}").with_context(|| format!("cannot write {}", path.display()))?;
                tracing::info!(file = %path.display(), "new admin token written");
            }
            // Another coordinator sharing the directory wrote it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create the admin token file {}", path.display()));
            }
        }
    }
    crate::client::rebuild::admin_token(None, path)
}

/// Hide a password in a database URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn signal_shutdown(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
    token.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:///x"), "sqlite:///x");
    }
}

/// The buildinfo signature settings: keyrings (flags, else the file's) and policy.
fn signatures(
    flags: Vec<PathBuf>,
    policy: Option<String>,
    file: &config::FileConfig,
) -> Result<debcover_server::ops::ingest::Signatures> {
    use debcover_core::signature::{Keyring, Policy};
    // An empty entry (`DEBCOVER_BUILDINFO_KEYRINGS=`, a trailing `:`) names no file.
    let flags: Vec<PathBuf> = flags.into_iter().filter(|p| !p.as_os_str().is_empty()).collect();
    let paths = if flags.is_empty() { file.buildinfo_keyrings.clone().unwrap_or_default() } else { flags };
    let policy: Policy = match policy.or_else(|| file.signature_policy.clone()) {
        Some(p) => p.parse().map_err(|e: String| anyhow::anyhow!("--signature-policy: {e}"))?,
        None => Policy::Any,
    };
    let keyring = Keyring::load(&paths).map_err(|e| anyhow::anyhow!("--buildinfo-keyring: {e}"))?;
    if policy == Policy::Known && keyring.is_empty() {
        anyhow::bail!("--signature-policy known needs at least one --buildinfo-keyring FILE (no key would be known)");
    }
    if !paths.is_empty() || policy != Policy::Any {
        tracing::info!(keys = keyring.len(), keyrings = paths.len(), policy = policy.as_str(), "buildinfo signatures checked");
    }
    Ok(debcover_server::ops::ingest::Signatures { keyring: std::sync::Arc::new(keyring), policy })
}

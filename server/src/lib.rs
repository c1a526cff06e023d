//! The coordinator's server (`debcover serve`): the gRPC services, the web views and metrics,
//! the content-addressed store of logs and produced buildinfos, and the lease reclaimer, over
//! any backend of the core's storage traits.
//!
//! - [`run`]: the whole server on bound listeners until a cancellation token fires; the binary
//!   and the tests start it the same way.
//! - [`Coordinator`]: what every request shares (store, settings, caches).
//! - [`ops`]: the use cases, as plain functions; [`grpc`] and [`web`] are their transports.
//!
//! *Must not* know SQL or a database library (the binary picks the backend), nor render for a
//! terminal.
#![deny(missing_docs)]

pub mod cas;
pub mod grpc;
pub mod metrics;
pub mod ops;
mod state;
pub mod web;

use std::sync::Arc;

use debcover_core::store::Store;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use state::{Coordinator, MAX_CONCURRENT_INGESTS, NODE_CACHE_TTL, Settings};

/// Where the server listens: bound before [`run`], so that a port in use is reported by the
/// caller and tests can bind port 0.
pub struct Listeners {
    /// The gRPC services.
    pub grpc: TcpListener,
    /// The web views, `/metrics` and `/dists`; None: not served.
    pub web: Option<TcpListener>,
    /// TLS for gRPC (rustls, ring provider); None: plain HTTP/2.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener's address could not be read.
    #[error("cannot read the listening address: {0}")]
    Address(#[source] std::io::Error),
    /// The gRPC server failed (with TLS: check the certificate and key).
    #[error("the gRPC server failed (with TLS: check --tls-cert and --tls-key): {}", debcover_wire::channel::error_chain(.0))]
    Grpc(#[source] tonic::transport::Error),
}

/// Serve `store` on `listeners` until `shutdown` is cancelled: then stop accepting, let calls
/// in flight finish (waiting claims answer at once), stop the reclaimer and return. The web
/// views share the token: whichever stops first stops both.
pub async fn run<S: Store>(listeners: Listeners, store: S, settings: Settings, shutdown: CancellationToken) -> Result<(), ServeError> {
    let addr = listeners.grpc.local_addr().map_err(ServeError::Address)?;
    let scheme = if listeners.tls.is_some() { "https" } else { "http" };
    let database = settings.database.clone();
    let c = Arc::new(Coordinator::new(Arc::new(store), settings));
    // Shutdown ends waiting Claims at once (see Coordinator::stopping).
    let stopping = {
        let (shutdown, stop) = (shutdown.clone(), c.stopping.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            stop.cancel();
        })
    };
    // Finish what a coordinator that stopped mid-report left undone (before serving, so that
    // answers already include those builds).
    ops::report::redo_produced(&c).await;
    let reclaimer = tokio::spawn(ops::scheduler::reclaimer(
        c.clone(),
        ops::scheduler::reclaim_interval(c.settings.policy.lease_ttl),
        shutdown.child_token(),
    ));
    let web = match listeners.web {
        Some(web) => {
            let web_addr = web.local_addr().map_err(ServeError::Address)?;
            tracing::info!(web = %web_addr, "web views listening: pages, /api, /metrics");
            let (c, token) = (c.clone(), shutdown.clone());
            Some(tokio::spawn(async move {
                let served = web::serve(web, c, token.clone()).await;
                token.cancel();
                served
            }))
        }
        None => None,
    };
    // Logged last: the address announces a server that is ready, web views included.
    tracing::info!(%scheme, %addr, backend = c.store.backend(), db = %database, "coordinator listening");
    let served = grpc::serve(listeners.grpc, c, listeners.tls, shutdown.clone()).await;
    shutdown.cancel();
    let _ = reclaimer.await;
    let _ = stopping.await;
    if let Some(web) = web {
        match web.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the web views failed"),
            Err(e) => tracing::error!(error = %e, "the web views task failed"),
        }
    }
    served.map_err(ServeError::Grpc)?;
    tracing::info!("coordinator stopped");
    Ok(())
}

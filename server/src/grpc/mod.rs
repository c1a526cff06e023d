//! The gRPC services: thin handlers that authenticate the call, convert its message to domain
//! values (`debcover_wire`), run the use case ([`crate::ops`]) and convert the answer back.
//!
//! Every message size is capped per service; ingestion streams are bounded by the
//! coordinator's semaphore so that bulk loads cannot starve queries.

use std::pin::Pin;
use std::sync::Arc;

use debcover_core::store::{Store, StoreError};
use debcover_proto::v1 as pb;
use futures::Stream;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::Coordinator;
use crate::ops::{self, scheduler::AuthError};
use debcover_core::access::{Principal, Role};

mod access;
mod admin;
mod attestations;
mod campaigns;
mod coordinator;
mod nodes;
mod stream_reader;

pub use debcover_wire::{MAX_ADMIN_MESSAGE_BYTES, MAX_MESSAGE_BYTES, MAX_NODE_MESSAGE_BYTES};

/// The longest any call may run (a whole-archive import on a slow database included).
pub const CALL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Concurrent streams (calls) one HTTP/2 connection may have open.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;

/// How long an ingestion stream may go without a message before it is ended (its slot goes
/// to the next client). The first message must come within this time too, and no slot is
/// held before it.
pub const IDLE_STREAM_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Serve every gRPC service of `c` on `listener` until `shutdown` is cancelled; over TLS when
/// `tls` is given (rustls, ring provider), else plain HTTP/2.
pub async fn serve<S: Store>(
    listener: TcpListener,
    c: Arc<Coordinator<S>>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    // Bounds on what one client can hold: a deadline on every call (a client's shorter
    // grpc-timeout wins), HTTP/2 pings that find dead peers behind idle connections, and a cap
    // on the streams one connection may open, so a client that opens streams and sends
    // nothing holds a bounded share of the coordinator.
    let mut builder = tonic::transport::Server::builder()
        .timeout(CALL_DEADLINE)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(20)))
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        .concurrency_limit_per_connection(MAX_STREAMS_PER_CONNECTION as usize);
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let coordinator = pb::coordinator_server::CoordinatorServer::new(coordinator::Api(c.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let campaigns = pb::campaigns_server::CampaignsServer::new(campaigns::Api(c.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let nodes = pb::rebuild_nodes_server::RebuildNodesServer::new(nodes::Api(c.clone()))
        .max_decoding_message_size(MAX_NODE_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_NODE_MESSAGE_BYTES);
    let admin = pb::rebuild_admin_server::RebuildAdminServer::new(admin::Api(c.clone()))
        .max_decoding_message_size(MAX_ADMIN_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_ADMIN_MESSAGE_BYTES);
    let access = pb::access_server::AccessServer::new(access::Api(c.clone()))
        .max_decoding_message_size(MAX_ADMIN_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_ADMIN_MESSAGE_BYTES);
    let attestations = pb::attestations_server::AttestationsServer::new(attestations::Api(c))
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    builder
        .add_service(coordinator)
        .add_service(campaigns)
        .add_service(nodes)
        .add_service(admin)
        .add_service(attestations)
        .add_service(access)
        // TCP_NODELAY: small unary answers otherwise wait ~40 ms for Nagle's algorithm to meet
        // the client's delayed ACK. Keepalive notices clients that vanished.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(std::time::Duration::from_secs(60))),
            shutdown.cancelled_owned(),
        )
        .await
}

/// A storage failure as a gRPC status. Details go to the server log; the client gets a message
/// that says what to do.
pub fn store_status(e: StoreError) -> Status {
    tracing::error!(error = %e, "storage failure");
    match e {
        StoreError::Corrupt(m) => Status::data_loss(m),
        other => Status::unavailable(format!("storage failure ({other}); retry later")),
    }
}

/// A use case's refusal or failure as a gRPC status.
pub fn status(e: ops::Error) -> Status {
    use debcover_core::rebuild::Refusal;
    match e {
        ops::Error::Invalid(m) => Status::invalid_argument(m),
        ops::Error::NotFound(m) => Status::not_found(m),
        ops::Error::AlreadyExists(m) => Status::already_exists(m),
        ops::Error::TooLarge(m) => Status::resource_exhausted(m),
        ops::Error::PermissionDenied(m) => Status::permission_denied(m),
        ops::Error::Lease(r) => match r {
            Refusal::NoSuchJob => Status::not_found(r.to_string()),
            Refusal::NotYours => Status::permission_denied(r.to_string()),
            Refusal::StaleFence { .. } | Refusal::Expired => {
                Status::failed_precondition(r.to_string())
            }
        },
        ops::Error::Unavailable(m) => Status::unavailable(m),
        ops::Error::Internal(m) => Status::internal(m),
        ops::Error::Store(s) => store_status(s),
    }
}

fn auth_status(e: AuthError) -> Status {
    match e {
        AuthError::UnknownNode => Status::unauthenticated(e.to_string()),
        AuthError::NotAdmin => Status::permission_denied(e.to_string()),
        AuthError::Store(s) => store_status(s),
    }
}

/// The bearer token of a call.
fn bearer(md: &MetadataMap) -> Result<&str, Status> {
    let v = md.get("authorization").ok_or_else(|| {
        Status::unauthenticated("no credential: send `authorization: Bearer TOKEN`")
    })?;
    let v = v
        .to_str()
        .map_err(|_| Status::unauthenticated("authorization metadata is not text"))?;
    v.strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer TOKEN`"))
}

/// The node whose credential the call carries.
async fn node<S: Store>(c: &Coordinator<S>, md: &MetadataMap) -> Result<debcover_core::rebuild::NodeRecord, Status> {
    ops::scheduler::authenticate_node(c, bearer(md)?).await.map_err(auth_status)
}

/// The principal of a call that needs `role` (`what` names the call in a refusal).
async fn authorized<S: Store>(
    c: &Coordinator<S>,
    md: &MetadataMap,
    role: Role,
    what: &str,
) -> Result<Principal, Status> {
    let token = match md.get("authorization") {
        None => None,
        Some(_) => Some(bearer(md)?),
    };
    ops::access::authorize(c, token, role, what)
        .await
        .map_err(denied)
}

/// A read: open, unless the coordinator runs with closed reads (`--closed-reads`), when any
/// valid credential (every role, nodes included) may read.
async fn readable<S: Store>(c: &Coordinator<S>, md: &MetadataMap) -> Result<(), Status> {
    if !c.settings.closed_reads {
        return Ok(());
    }
    let token = bearer(md).map_err(|_| {
        Status::unauthenticated("this coordinator's reads are closed: send a credential (--token-file FILE or DEBCOVER_TOKEN)")
    })?;
    ops::access::identify(c, token)
        .await
        .map(|_| ())
        .map_err(denied)
}

fn denied(e: ops::access::Denied) -> Status {
    match e {
        ops::access::Denied::Unauthenticated(m) => Status::unauthenticated(m),
        ops::access::Denied::Forbidden(m) => Status::permission_denied(m),
        ops::access::Denied::Store(s) => store_status(s),
    }
}

/// An optional version from a request field: empty means none; otherwise the same strict rules
/// as versions in ingested files.
fn parse_version_field(field: &str, v: &str) -> Result<Option<debversion::Version>, Status> {
    if v.is_empty() {
        return Ok(None);
    }
    debcover_formats::relation::parse_version(v)
        .map(Some)
        .map_err(|e| Status::invalid_argument(format!("{field}: {}", e.message)))
}

fn nonempty(v: &str) -> Option<String> {
    (!v.is_empty()).then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use debcover_core::rebuild::Policy;
    use std::path::PathBuf;

    #[test]
    fn credentials() {
        let mut md = MetadataMap::new();
        assert_eq!(bearer(&md).unwrap_err().code(), tonic::Code::Unauthenticated);
        md.insert("authorization", "Basic x".parse().unwrap());
        assert_eq!(bearer(&md).unwrap_err().code(), tonic::Code::Unauthenticated);
        md.insert("authorization", "Bearer dcn_x".parse().unwrap());
        assert_eq!(bearer(&md).unwrap(), "dcn_x");
        let dir = tempfile::tempdir().unwrap();
        let c: Coordinator<()> = Coordinator::new(
            Arc::new(()),
            crate::Settings::new(Policy::default(), vec![], "secret", dir.path().into()),
        );
        assert!(ops::scheduler::authenticate_admin(&c, bearer(&md).unwrap()).is_err());
        md.insert("authorization", "Bearer secret".parse().unwrap());
        assert!(ops::scheduler::authenticate_admin(&c, bearer(&md).unwrap()).is_ok());
        let _ = PathBuf::new();
    }
}

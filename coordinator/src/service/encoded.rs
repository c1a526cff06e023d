//! `BuiltWith` served from pre-encoded bytes.
//!
//! tonic's generated `CoordinatorServer` would have the answer built as a `BuiltWithResponse`
//! (one `String` per field: ~800,000 for the 35,000-build answer) and then encoded. The bytes
//! are already at hand: `convert::encode_built_with` assembles them from the per-build
//! encodings the index keeps, byte for byte what prost would write. [`WithEncodedBuiltWith`]
//! routes the one path `/debcover.v1.Coordinator/BuiltWith` to a handler that sends those bytes
//! as the message, and every other path to the generated server. The wire contract is
//! unchanged: clients receive a `BuiltWithResponse`.
//!
//! `/debcover.v1.Coordinator/BuiltWithCompact` goes the same way: `compact::encode` writes the
//! `CompactBuiltWithResponse` straight from the index's per-build parts, and the handler sends
//! those bytes as the message.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use debcover_proto::v1 as pb;
use debcover_proto::v1::coordinator_server::CoordinatorServer;
use prost::bytes::{BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};

use super::{CoordinatorService, MAX_MESSAGE_BYTES, built_with_query, compact, convert};
use crate::storage::RebuildStore;

/// The gRPC path of `BuiltWith`.
const BUILT_WITH_PATH: &str = "/debcover.v1.Coordinator/BuiltWith";
/// The gRPC path of `BuiltWithCompact`.
const BUILT_WITH_COMPACT_PATH: &str = "/debcover.v1.Coordinator/BuiltWithCompact";

/// Which answer a pre-encoded handler writes.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `BuiltWithResponse`.
    Full,
    /// `CompactBuiltWithResponse`.
    Compact,
}

/// Requests decoded by prost; responses are message bytes, written as they are.
#[derive(Default)]
struct PreEncodedCodec;

/// Writes already-encoded message bytes.
struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

/// Decodes `BuiltWithRequest` (the generated server's decoder).
struct RequestDecoder(tonic_prost::ProstDecoder<pb::BuiltWithRequest>);

impl Decoder for RequestDecoder {
    type Item = pb::BuiltWithRequest;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<pb::BuiltWithRequest>, Status> {
        self.0.decode(src)
    }
}

impl Codec for PreEncodedCodec {
    type Encode = Bytes;
    type Decode = pb::BuiltWithRequest;
    type Encoder = BytesEncoder;
    type Decoder = RequestDecoder;
    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }
    fn decoder(&mut self) -> RequestDecoder {
        RequestDecoder(tonic_prost::ProstDecoder::default())
    }
}

/// The `BuiltWith` and `BuiltWithCompact` handler: the index's answer, encoded from its
/// per-build parts.
struct EncodedBuiltWith<S>(Arc<CoordinatorService<S>>, Shape);

impl<S: RebuildStore> UnaryService<pb::BuiltWithRequest> for EncodedBuiltWith<S> {
    type Response = Bytes;
    type Future = BoxFuture<Response<Bytes>, Status>;
    fn call(&mut self, request: Request<pb::BuiltWithRequest>) -> Self::Future {
        let (service, shape) = (self.0.clone(), self.1);
        Box::pin(async move {
            let q = built_with_query(request.get_ref())?;
            let answer = service.index.built_with(&*service.store, &q).await.map_err(convert::store_status)?;
            let started = std::time::Instant::now();
            let bytes = match shape {
                Shape::Full => convert::encode_built_with(&answer),
                Shape::Compact => compact::encode(&answer),
            };
            tracing::debug!(
                builds = answer.builds.len(),
                bytes = bytes.len(),
                ?shape,
                encode_us = started.elapsed().as_micros() as u64,
                "built-with encoded"
            );
            Ok(Response::new(Bytes::from(bytes)))
        })
    }
}

/// The generated `Coordinator` server with `BuiltWith` answered from pre-encoded bytes.
pub struct WithEncodedBuiltWith<S> {
    inner: CoordinatorServer<CoordinatorService<S>>,
    service: Arc<CoordinatorService<S>>,
}

impl<S> Clone for WithEncodedBuiltWith<S> {
    fn clone(&self) -> Self {
        WithEncodedBuiltWith { inner: self.inner.clone(), service: self.service.clone() }
    }
}

impl<S: RebuildStore> WithEncodedBuiltWith<S> {
    /// Wrap `service`, with the message size caps of the rest of the server.
    pub fn new(service: CoordinatorService<S>) -> Self {
        let service = Arc::new(service);
        let inner = CoordinatorServer::from_arc(service.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        WithEncodedBuiltWith { inner, service }
    }
}

impl<S> NamedService for WithEncodedBuiltWith<S> {
    const NAME: &'static str = <CoordinatorServer<CoordinatorService<S>> as NamedService>::NAME;
}

impl<S, B> Service<http::Request<B>> for WithEncodedBuiltWith<S>
where
    S: RebuildStore,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <CoordinatorServer<CoordinatorService<S>> as Service<http::Request<B>>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let shape = match req.uri().path() {
            BUILT_WITH_PATH => Shape::Full,
            BUILT_WITH_COMPACT_PATH => Shape::Compact,
            _ => return self.inner.call(req),
        };
        let service = self.service.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(PreEncodedCodec)
                .apply_max_message_size_config(Some(MAX_MESSAGE_BYTES), Some(MAX_MESSAGE_BYTES));
            Ok(grpc.unary(EncodedBuiltWith(service, shape), req).await)
        })
    }
}

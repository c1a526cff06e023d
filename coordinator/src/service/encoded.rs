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
//! `/debcover.v1.Coordinator/BuiltWithCompact` goes the same way: `compact::encode_pieces`
//! writes the `CompactBuiltWithResponse` straight from the index's per-build parts.
//!
//! The handler speaks the unary gRPC exchange itself (one length-prefixed message each way,
//! then the `grpc-status` trailer; errors as tonic writes them): tonic's server codec would
//! copy the answer into a buffer of its own, and the compact answer is sent as the pieces it
//! was written in (at 35,000 builds, 8.3 MB never copied after encoding).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use debcover_proto::v1 as pb;
use debcover_proto::v1::coordinator_server::CoordinatorServer;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Limited};
use prost::Message as _;
use prost::bytes::Bytes;
use tonic::Status;
use tonic::codegen::{BoxFuture, Service, StdError, http};
use tonic::server::NamedService;

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

/// Largest request body read: a `BuiltWithRequest` is a package name and a few short strings.
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The one `BuiltWithRequest` of a gRPC request body.
async fn read_request<B>(body: B) -> Result<pb::BuiltWithRequest, Status>
where
    B: Body + Send,
    B::Error: Into<StdError>,
{
    let bytes = Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("reading the BuiltWithRequest (at most {MAX_REQUEST_BYTES} bytes): {e}")))?
        .to_bytes();
    // A gRPC message: a flag (0: not compressed), its length (4 bytes, big-endian), the message.
    let Some((&flag, rest)) = bytes.split_first() else {
        return Err(Status::invalid_argument("empty request: one BuiltWithRequest message expected"));
    };
    if flag != 0 {
        return Err(Status::unimplemented("compressed requests are not supported; send BuiltWithRequest uncompressed"));
    }
    let Some((len, message)) = rest.split_first_chunk::<4>() else {
        return Err(Status::invalid_argument("truncated gRPC message header in the request"));
    };
    let len = u32::from_be_bytes(*len) as usize;
    if message.len() != len {
        return Err(Status::invalid_argument(format!(
            "the request holds {} message bytes where its header says {len}: one BuiltWithRequest message expected",
            message.len()
        )));
    }
    pb::BuiltWithRequest::decode(message)
        .map_err(|e| Status::invalid_argument(format!("the request is not a BuiltWithRequest: {e}")))
}

/// A unary gRPC response body: the message's pieces, then the trailers saying OK.
struct Message {
    pieces: VecDeque<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl Body for Message {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(match self.pieces.pop_front() {
            Some(piece) => Some(Ok(Frame::data(piece))),
            None => self.trailers.take().map(|t| Ok(Frame::trailers(t))),
        })
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty() && self.trailers.is_none()
    }
}

/// The response carrying one message made of `pieces`: sent as they are, never copied into
/// one buffer (tonic's encoder would copy the answer into its own).
fn response(pieces: Vec<Bytes>) -> Result<http::Response<tonic::body::Body>, Status> {
    let len: usize = pieces.iter().map(Bytes::len).sum();
    let header = u32::try_from(len).ok().filter(|_| len <= MAX_MESSAGE_BYTES).ok_or_else(|| {
        Status::out_of_range(format!(
            "the answer is {len} bytes, more than the {MAX_MESSAGE_BYTES}-byte message limit; \
             narrow the question (--before, --suite, --arch)"
        ))
    })?;
    let mut frame = VecDeque::with_capacity(pieces.len() + 1);
    let mut prefix = [0u8; 5];
    prefix[1..].copy_from_slice(&header.to_be_bytes());
    frame.push_back(Bytes::copy_from_slice(&prefix));
    frame.extend(pieces);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let mut response = http::Response::new(tonic::body::Body::new(Message { pieces: frame, trailers: Some(trailers) }));
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
    Ok(response)
}

/// `BuiltWith` or `BuiltWithCompact`: the index's answer, encoded from its per-build parts.
async fn answer<S, B>(
    service: Arc<CoordinatorService<S>>,
    shape: Shape,
    req: http::Request<B>,
) -> Result<http::Response<tonic::body::Body>, Status>
where
    S: RebuildStore,
    B: Body + Send,
    B::Error: Into<StdError>,
{
    let request = read_request(req.into_body()).await?;
    let q = built_with_query(&request)?;
    let answer = service.index.built_with(&*service.store, &q).await.map_err(convert::store_status)?;
    let started = std::time::Instant::now();
    let pieces = match shape {
        Shape::Full => vec![Bytes::from(convert::encode_built_with(&answer))],
        Shape::Compact => compact::encode_pieces(&answer),
    };
    tracing::debug!(
        builds = answer.builds.len(),
        bytes = pieces.iter().map(Bytes::len).sum::<usize>(),
        pieces = pieces.len(),
        ?shape,
        encode_us = started.elapsed().as_micros() as u64,
        "built-with encoded"
    );
    response(pieces)
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
    B::Data: Send,
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
        Box::pin(async move { Ok(answer(service, shape, req).await.unwrap_or_else(Status::into_http)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    fn framed(flag: u8, declared: u32, message: &[u8]) -> Full<Bytes> {
        let mut b = vec![flag];
        b.extend_from_slice(&declared.to_be_bytes());
        b.extend_from_slice(message);
        Full::new(Bytes::from(b))
    }

    async fn refusal(body: Full<Bytes>) -> (tonic::Code, String) {
        let e = read_request(body).await.expect_err("refused");
        (e.code(), e.message().to_owned())
    }

    #[tokio::test]
    async fn a_well_formed_request_is_read() {
        let req = pb::BuiltWithRequest { package: "libc6-dev".into(), before: "2.36".into(), ..Default::default() };
        let bytes = req.encode_to_vec();
        let got = read_request(framed(0, bytes.len() as u32, &bytes)).await.expect("read");
        assert_eq!(got, req);
    }

    #[tokio::test]
    async fn malformed_requests_are_refused_with_the_reason() {
        let (code, message) = refusal(Full::new(Bytes::new())).await;
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(message.contains("empty request"), "{message}");

        let (code, message) = refusal(framed(1, 0, b"")).await;
        assert_eq!(code, tonic::Code::Unimplemented);
        assert!(message.contains("compressed"), "{message}");

        let (code, message) = refusal(Full::new(Bytes::from_static(&[0, 0, 0]))).await;
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(message.contains("truncated"), "{message}");

        let (code, message) = refusal(framed(0, 10, b"abc")).await;
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(message.contains("3 message bytes where its header says 10"), "{message}");

        // Field 1 as a length-delimited string that claims more bytes than there are.
        let (code, message) = refusal(framed(0, 2, &[0x0a, 0x7f])).await;
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(message.contains("not a BuiltWithRequest"), "{message}");

        let big = vec![b'a'; MAX_REQUEST_BYTES + 1];
        let (code, message) = refusal(framed(0, big.len() as u32, &big)).await;
        assert_eq!(code, tonic::Code::InvalidArgument);
        assert!(message.contains(&MAX_REQUEST_BYTES.to_string()), "{message}");
    }

    #[tokio::test]
    async fn an_answer_over_the_message_limit_is_refused() {
        let piece = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES / 2 + 1]);
        let e = response(vec![piece.clone(), piece]).expect_err("over the limit");
        assert_eq!(e.code(), tonic::Code::OutOfRange);
        assert!(e.message().contains("narrow the question"), "{}", e.message());
    }

    #[tokio::test]
    async fn a_response_is_the_prefixed_message_then_the_ok_trailer() {
        let r = response(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cde")]).expect("response");
        assert_eq!(r.headers()[http::header::CONTENT_TYPE], "application/grpc");
        let collected = r.into_body().collect().await.expect("body");
        assert_eq!(collected.trailers().map(|t| t["grpc-status"].clone()), Some(http::HeaderValue::from_static("0")));
        assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\x05abcde");
    }
}

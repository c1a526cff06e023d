//! The wire: the one place where protobuf messages (`debcover-proto`) meet domain types
//! (`debcover-core`), and the gRPC channel set-up shared by the `debcover` commands and the
//! rebuilder node.
//!
//! - [`built_with`]: the `built-with` answer as pages of columns, and back.
//! - [`campaign`]: campaign specs, plans, statuses and events.
//! - [`convert`]: builds, binaries, keys, and what a node reports its binaries embed.
//! - [`rebuild`]: jobs, reports, queue and history listings of the rebuild services.
//! - [`channel`]: endpoints, TLS, and connection errors in one line.
//!
//! *Must not* know a database, HTTP routes or rendering; conversions check what they read
//! (bounds, lengths, indices) and name the field at fault.
#![deny(missing_docs)]

pub mod built_with;
pub mod campaign;
pub mod channel;
pub mod convert;
pub mod rebuild;

pub use debcover_proto::v1 as pb;

/// Largest gRPC message of the client-facing services: a batch of buildinfos, an index chunk,
/// a page of an answer.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Largest message of the node-facing service (one report chunk, one job with its buildinfo).
pub const MAX_NODE_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Largest message of the admin service (a queue or history listing).
pub const MAX_ADMIN_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

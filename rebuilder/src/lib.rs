//! The debcover rebuilder node.
//!
//! A node takes verification rebuilds from a coordinator over gRPC (`RebuildNodes` in
//! `proto/debcover/v1/rebuild.proto`), rebuilds each package as its `.buildinfo` describes, and
//! reports the SHA-256 of every file it produced, its own `.buildinfo`, the build log and, for
//! unreproducible results, a diffoscope report. The coordinator judges; the node only reports.
//!
//! Lifecycle (see [`node`]): load the configuration ([`config`]), load or create the node's
//! ed25519 key ([`key`]), register, then one task per slot claims a job (long-poll), runs it in
//! a fresh work directory through a backend ([`backend`]), renews the lease by heartbeat while
//! it runs, streams the result back and cleans up. SIGTERM stops claiming, lets running builds
//! finish within a grace period, and hands back what is still running.
//!
//! # Invariants
//! - Never talks to a database: only to a coordinator, over gRPC.
//! - Never trusts the job's data: versions, names and paths from a buildinfo or a .dsc are
//!   validated (by `debcover-formats`) before they reach a command line or a file name.
//! - Every build runs in its own process group under a time limit, and the whole group is
//!   killed on timeout or shutdown: no stray build processes survive a job.
//! - Parsing is shared with the coordinator through `debcover-formats`, never re-implemented.
#![deny(missing_docs)]

pub mod attest;
pub mod backend;
pub mod config;
pub mod connect;
pub mod embedded;
pub mod envcheck;
pub mod hash;
pub mod key;
pub mod node;
pub mod process;
pub mod source;

/// The node software's name and version, sent at registration.
pub const SOFTWARE: &str = concat!("debcover-rebuilder ", env!("CARGO_PKG_VERSION"));

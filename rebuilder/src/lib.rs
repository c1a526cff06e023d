//! The debcover rebuilder node (skeleton).
//!
//! A rebuilder node will take verification rebuilds from a coordinator over gRPC, rebuild each
//! package from its buildinfo, and report hashes, its own buildinfo, logs and signed
//! attestations. This crate currently holds only the node's configuration surface; the
//! scheduling protocol and build backends come with the rebuilder-network work.
//!
//! # Invariants
//! - Never talks to the database: only to a coordinator, over gRPC.
//! - Shares parsing with the coordinator through `debcover-formats`, never re-implements it.
#![deny(missing_docs)]

/// What this build of the node can do, for `--version` and status messages.
pub const CAPABILITIES: &str = "skeleton: no build backends yet";

//! The debcover rebuilder node (in progress: hashing of produced files).
#![deny(missing_docs)]

pub mod hash;

/// What this build of the node can do, for `--version` and status messages.
pub const CAPABILITIES: &str = "skeleton: no build backends yet";

//! The domain of debcover: what a build was built against, campaigns over a library fix, the
//! rules of verification rebuilds and attestations, and the storage interface they are kept
//! behind. No database, no network, no wire format: every other crate builds on this one.
//!
//! Read in this order:
//! - [`model`]: builds, binaries, archive imports.
//! - [`store`]: the storage traits (implemented by `debcover-store`).
//! - [`ingest`]: bytes in, validated domain values out (parsing, hashing, compression).
//! - [`query`] and [`index`]: "built with X below V", uncached and from the in-memory index.
//! - [`campaign`]: one library fix: impact analysis, rebuild waves, exports, item tracking.
//! - [`rebuild`]: the scheduler's vocabulary and rules (jobs, leases, policy, judging,
//!   coverage, corroboration, attestation checks).
//! - [`access`]: roles of credentials and the audit trail.
//! - [`signature`]: OpenPGP signatures of buildinfos, keyrings and the signature policy.
//! - [`attestation`]: published keys, the signed in-toto layout, exports and their offline check.
#![deny(missing_docs)]

pub mod access;
pub mod attestation;
pub mod campaign;
pub mod index;
pub mod ingest;
pub mod model;
pub mod query;
pub mod rebuild;
pub mod signature;
pub mod store;

//! The debcover coordinator: it knows which package versions every binary was built against.
//!
//! Read in this order:
//! - [`model`]: the domain vocabulary (builds, binaries, imports).
//! - [`storage`]: the [`storage::Store`] trait and its SQLite and PostgreSQL backends (all SQL).
//! - [`ingest`]: bytes in, validated domain values out (parsing, hashing, compression).
//! - [`query`]: questions answered over the store ("built with X below V").
//! - [`index`]: the in-memory, generation-checked `built-with` index the server answers from.
//! - [`campaign`]: one library fix: impact analysis, rebuild waves, exports, tracking.
//! - [`service`]: the gRPC server (`debcover serve`) and its wire conversions.
//! - [`attestation`]: published keys, the coordinator's signed in-toto layout, exports and
//!   their offline check.
//! - [`web`]: the HTML pages, their JSON twins, Prometheus metrics and `Buildinfo.xz`.
//! - [`client`]: the client side of the `debcover` commands.
//! - [`config`]: configuration from flags, TOML file and `DEBCOVER_*` variables.
#![deny(missing_docs)]

pub mod model;
pub mod storage;
pub mod ingest;
pub mod query;
pub mod index;
pub mod campaign;
pub mod rebuild;
pub mod attestation;
pub mod service;
pub mod web;
pub mod client;
pub mod config;

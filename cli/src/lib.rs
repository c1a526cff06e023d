//! The `debcover` command line: the client commands a security or release team runs against a
//! coordinator, the offline checks, and `debcover serve`, which starts the server on the
//! backend its database URL names.
//!
//! Built with `--no-default-features`, the crate is the client alone: no `serve`, and neither
//! the server nor a storage backend (sqlx, axum, maud) is linked.
//!
//! - [`args`]: the clap tree (global options before or after the subcommand).
//! - [`commands`]: one `run` per command; [`serve`]: `debcover serve`.
//! - [`ctx`]: the resolved global options and the connect/call/print helper.
//! - [`client`]: talking to the coordinator (channels, streams, uploads) and rendering answers.
//! - [`config`]: flags, `DEBCOVER_*` variables, the TOML file, defaults.
#![deny(missing_docs)]

pub mod args;
pub mod client;
pub mod commands;
pub mod config;
pub mod ctx;
#[cfg(feature = "serve")]
pub mod serve;

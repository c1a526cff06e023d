//! Parsers for the Debian formats debcover reads.
//!
//! This crate turns bytes into typed, validated domain values:
//!
//! - [`buildinfo`]: `.buildinfo` files (deb-buildinfo(5)), plain or OpenPGP-clearsigned, including
//!   the pre-release `Build-Environment:` layout.
//! - [`index`]: `Packages` and `Sources` archive indices, read paragraph by paragraph so a whole
//!   suite never sits in memory at once.
//! - [`aggregate`]: aggregated buildinfo indices (many buildinfo paragraphs in one file).
//! - [`intoto`]: canonical JSON and ed25519 key ids as in-toto signs and names them.
//! - [`compress`]: transparent `.gz` / `.xz` / plain decompression by magic bytes, with a size cap.
//! - [`deb`]: binary packages (`.deb`): `ar` → `data.tar.*` → the ELF files under executable
//!   paths, streamed, every size and count capped ([`deb::Limits`]).
//! - [`embedded`]: what an ELF binary says about its build: Go build info (toolchain, modules),
//!   Rust's cargo-auditable `.dep-v0`, the rustc version in Debian's std paths.
//! - [`corroborate`]: that against the package's `*Built-Using` declarations, as findings.
//!
//! # Invariants
//! - No I/O besides reading from a caller-supplied `Read`; no network, no database, no async.
//! - Never panics on any input: every malformed input is a [`ParseError`] naming the field and
//!   the line (the caller adds the file name with [`ParseError::in_file`]); binary inputs
//!   (`.deb`) fail with a [`deb::DebError`] naming the member and byte offset.
//! - Versions are [`debversion::Version`]; package names are validated against Debian policy
//!   (lower-case alphanumerics and `+-.`, starting with an alphanumeric).
#![deny(missing_docs)]

pub mod aggregate;
pub mod buildinfo;
pub mod compress;
pub mod corroborate;
pub mod deb;
pub mod embedded;
pub mod error;
mod fields;
pub mod index;
pub mod intoto;
pub mod paragraph;
pub mod relation;

pub use buildinfo::{Buildinfo, FileChecksum, InstalledDep, Layout};
pub use error::ParseError;
pub use index::{PackagesEntry, SourcesEntry};
pub use relation::{DepMemo, SourceRef};

/// Lower-case hex SHA-256 of `bytes`: the identity of a build is this digest of its buildinfo text.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The first `n` characters of `s` (not bytes: never splits a character, so text from outside
/// cannot make a caller panic when it shortens an id for display).
pub fn prefix(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

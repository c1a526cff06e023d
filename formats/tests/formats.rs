//! The parsers' tests against real Debian files, malformed inputs, property tests and the fuzz
//! corpora's seeds. One test binary.

mod common;

#[path = "buildinfo_real.rs"]
mod buildinfo_real;
#[path = "fuzz_seeds.rs"]
mod fuzz_seeds;
#[path = "indices.rs"]
mod indices;
#[path = "malformed.rs"]
mod malformed;
#[path = "proptests.rs"]
mod proptests;

//! gRPC wire types and service stubs of debcover, generated from `proto/debcover/v1/*.proto`.
//!
//! # Invariants
//! - Only generated code lives here: no logic, no conversions. `debcover-wire` converts these
//!   messages to and from domain types; nothing else does.
//! - The `.proto` files are the compatibility contract: fields are only ever added, never renumbered.

/// Version 1 of the debcover API.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("debcover.v1");
}

//! The coordinator's use cases, as plain functions over the shared state
//! ([`crate::Coordinator`]) and domain values: ingesting buildinfos and archive indices,
//! planning and tracking campaigns, scheduling and recording rebuilds, exporting attestations.
//! The gRPC services and the web views call these; neither protobuf nor HTTP appears here.

pub mod access;
pub mod attestations;
pub mod campaigns;
pub mod ingest;
pub mod report;
pub mod scheduler;

use debcover_core::campaign::CampaignError;
use debcover_core::rebuild::Refusal;
use debcover_core::store::StoreError;

/// Why a use case refused or failed; each transport maps it to its own status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// What the request would create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is larger than a limit allows.
    #[error("{0}")]
    TooLarge(String),
    /// The caller's credential does not allow this.
    #[error("{0}")]
    PermissionDenied(String),
    /// A lease-carrying call on a lease the caller does not hold.
    #[error("{0}")]
    Lease(Refusal),
    /// A resource of this server failed (the content store); retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// The server cannot do it (its key is missing, a task failed).
    #[error("{0}")]
    Internal(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CampaignError> for Error {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::UnknownLibrary(_)
            | CampaignError::UnknownSuite { .. }
            | CampaignError::NoSuchCampaign(_) => Error::NotFound(e.to_string()),
            CampaignError::UnknownArch { .. } => Error::Invalid(e.to_string()),
            CampaignError::Store(s) => Error::Store(s),
        }
    }
}

/// What a use case answers.
pub type Result<T> = std::result::Result<T, Error>;

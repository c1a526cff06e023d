//! What every client command shares: the resolved global options, and the one way of calling
//! the coordinator (connect, call, turn a refusal into a message) and printing its answer
//! (text, or `--json`).

use std::future::Future;
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::client;
use crate::config::{self, FileConfig};

/// The global options, resolved against the configuration file and the environment.
pub struct Ctx {
    /// The configuration file's settings (empty when there is none).
    pub file: FileConfig,
    /// The coordinator's URL.
    pub server: String,
    /// `--json`: machine-readable output.
    pub json: bool,
    /// `--admin-token-file`, if given.
    pub admin_token_file: Option<PathBuf>,
    /// Progress bars on standard error (it is a terminal).
    pub progress: bool,
}

impl Ctx {
    /// A coordinator client.
    pub async fn coordinator(&self) -> Result<debcover_proto::v1::coordinator_client::CoordinatorClient<client::Conn>> {
        client::connect(&self.server).await
    }

    /// A campaign service client.
    pub async fn campaigns(&self) -> Result<debcover_proto::v1::campaigns_client::CampaignsClient<client::Conn>> {
        client::campaign::connect(&self.server).await
    }

    /// An admin service client carrying the process's credential (reads).
    pub async fn open_admin(&self) -> Result<client::rebuild::AdminClient> {
        client::rebuild::connect(&self.server, client::credential()).await
    }

    /// An admin service client carrying the process's credential ([`crate::config::credential`]:
    /// `--token-file`, `DEBCOVER_TOKEN`, else the admin token when readable).
    pub async fn admin(&self) -> Result<client::rebuild::AdminClient> {
        if client::credential().is_none() {
            let data_dir = std::env::var_os("DEBCOVER_DATA_DIR").map(PathBuf::from);
            let token_file = config::admin_token_file(self.admin_token_file.clone(), data_dir.as_deref(), &self.file);
            // Fails with the message that says where the token was looked for.
            client::rebuild::admin_token(std::env::var("DEBCOVER_ADMIN_TOKEN").ok(), &token_file)?;
        }
        client::rebuild::connect(&self.server, client::credential()).await
    }

    /// An access service client (tokens, audit) carrying the process's credential.
    pub async fn access(&self) -> Result<debcover_proto::v1::access_client::AccessClient<client::Conn>> {
        self.admin().await?;
        Ok(debcover_proto::v1::access_client::AccessClient::new(client::channel(&self.server).await?))
    }

    /// Print `json` with `--json`, else run `text`.
    pub fn print<T: Serialize + ?Sized>(&self, json: &T, text: impl FnOnce()) -> Result<()> {
        if self.json {
            client::output::print_json(json)?;
        } else {
            text();
        }
        Ok(())
    }
}

/// The answer of a call, or the server's refusal as a message naming the command (`what`).
pub async fn call<T>(what: &str, call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> Result<T> {
    Ok(call.await.map_err(|s| client::status_error(what, s))?.into_inner())
}

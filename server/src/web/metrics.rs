//! `/metrics`: the process's metrics ([`crate::metrics`]) as OpenMetrics text.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use debcover_core::store::{CampaignStore, ViewStore};

use super::{St, WebResult};

/// `/metrics`.
pub async fn handler<S: ViewStore + CampaignStore>(State(web): St<S>) -> WebResult {
    let out = crate::metrics::scrape(&*web.store).await?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"))],
        out,
    )
        .into_response())
}

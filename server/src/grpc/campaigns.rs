//! The `Campaigns` service.

use std::sync::Arc;

use debcover_core::campaign::{CampaignRecord, Detail, ItemRecord, Plan};
use debcover_core::store::Store;
use debcover_proto::v1 as pb;
use debcover_wire::campaign::{self as wire, ItemDetail, Shape};
use tonic::{Request, Response, Status};

use debcover_core::access::Role;

use super::{authorized, readable, status};
use crate::Coordinator;
use crate::ops::campaigns as ops;

/// The service.
pub struct Api<S>(pub Arc<Coordinator<S>>);

/// Free `garbage` on a blocking thread: a suite-wide plan is hundreds of thousands of small
/// allocations, and the answer need not wait for them to be freed.
fn drop_later<T: Send + 'static>(garbage: T) {
    tokio::task::spawn_blocking(move || drop(garbage));
}

/// The plan answer in `shape`, its exports rendered for the campaign's mode.
fn answer(c: &CampaignRecord, plan: Plan, saved: &[ItemRecord], changed_by: &str, shape: Shape) -> pb::CampaignPlan {
    let started = std::time::Instant::now();
    let exports = ops::exports(c, &plan, changed_by);
    let (message, garbage) = wire::plan_message(c, plan, saved, exports, shape);
    drop_later(garbage);
    tracing::debug!(items = message.items.len(), detail = shape.detail.as_str(), ms = started.elapsed().as_millis() as u64,
        "campaign: plan answer");
    message
}

#[tonic::async_trait]
impl<S: Store> pb::campaigns_server::Campaigns for Api<S> {
    async fn plan_campaign(&self, request: Request<pb::CampaignSpec>) -> Result<Response<pb::CampaignPlan>, Status> {
        readable(&self.0, request.metadata()).await?;
        let r = request.into_inner();
        let changed_by = r.changed_by.clone();
        let shape = Shape::from_wire(&r.items, r.item_offset, r.item_limit)?;
        let spec = wire::spec_from_wire(r)?;
        // An answer without evidence needs none of the per-binary records.
        let detail = match shape.detail {
            ItemDetail::Full | ItemDetail::Summary => Detail::Full,
            ItemDetail::Brief | ItemDetail::None => Detail::Lean,
        };
        let (record, plan) = ops::plan(&self.0, &spec, detail).await.map_err(status)?;
        Ok(Response::new(answer(&record, plan, &[], &changed_by, shape)))
    }

    async fn create_campaign(&self, request: Request<pb::CampaignSpec>) -> Result<Response<pb::CampaignPlan>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Campaign, "campaign create").await?;
        let r = request.into_inner();
        let changed_by = r.changed_by.clone();
        let shape = Shape::from_wire(&r.items, r.item_offset, r.item_limit)?;
        let spec = wire::spec_from_wire(r)?;
        let (record, plan, items) = ops::create(&self.0, &spec).await.map_err(status)?;
        crate::ops::access::record(
            &self.0,
            &who,
            "create-campaign",
            format!("#{} {}: {} items", record.id, record.library, items.len()),
        )
        .await;
        Ok(Response::new(answer(&record, plan, &items, &changed_by, shape)))
    }

    async fn list_campaigns(
        &self,
        request: Request<pb::ListCampaignsRequest>,
    ) -> Result<Response<pb::ListCampaignsResponse>, Status> {
        readable(&self.0, request.metadata()).await?;
        let list = self.0.store.campaigns().await.map_err(super::store_status)?;
        Ok(Response::new(pb::ListCampaignsResponse { campaigns: list.iter().map(|(c, n)| wire::info(c, n)).collect() }))
    }

    async fn campaign_status(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignStatusResponse>, Status> {
        readable(&self.0, request.metadata()).await?;
        let (c, items) = ops::status(&self.0, request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(wire::status_message(&c, items)))
    }

    async fn campaign_events(
        &self,
        request: Request<pb::CampaignRequest>,
    ) -> Result<Response<pb::CampaignEventsResponse>, Status> {
        readable(&self.0, request.metadata()).await?;
        let events = ops::events(&self.0, request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::CampaignEventsResponse { events: events.iter().map(wire::event).collect() }))
    }

    async fn export_campaign(&self, request: Request<pb::CampaignRequest>) -> Result<Response<pb::CampaignPlan>, Status> {
        readable(&self.0, request.metadata()).await?;
        let r = request.into_inner();
        let shape = Shape::from_wire(&r.items, r.item_offset, r.item_limit)?;
        let (c, items, plan) = ops::saved(&self.0, r.id).await.map_err(status)?;
        Ok(Response::new(answer(&c, plan, &items, &r.changed_by, shape)))
    }
}

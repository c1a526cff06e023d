//! The `Access` service: named API tokens and the audit trail. Every call needs the admin role.

use std::sync::Arc;

use debcover_core::access::{ApiToken, Role};
use debcover_core::store::Store;
use debcover_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{authorized, status, store_status};
use crate::Coordinator;
use crate::ops::access as ops;

/// The service.
pub struct Api<S>(pub Arc<Coordinator<S>>);

/// Most audit entries one call answers.
const MAX_AUDIT_ENTRIES: u32 = 10_000;

fn token_wire(t: &ApiToken) -> pb::ApiToken {
    pb::ApiToken {
        name: t.name.clone(),
        role: t.role.to_string(),
        created_at: t.created_at,
        last_used_at: t.last_used_at.unwrap_or(0),
        revoked_at: t.revoked_at.unwrap_or(0),
    }
}

#[tonic::async_trait]
impl<S: Store> pb::access_server::Access for Api<S> {
    async fn add_token(
        &self,
        request: Request<pb::AddTokenRequest>,
    ) -> Result<Response<pb::AddTokenResponse>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Admin, "token add").await?;
        let r = request.into_inner();
        let (token, secret) = ops::add_token(&self.0, &who, &r.name, &r.role)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AddTokenResponse {
            token: Some(token_wire(&token)),
            secret,
        }))
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        authorized(&self.0, request.metadata(), Role::Admin, "token list").await?;
        let tokens = self.0.store.tokens().await.map_err(store_status)?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens.iter().map(token_wire).collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let who = authorized(&self.0, request.metadata(), Role::Admin, "token revoke").await?;
        ops::revoke_token(&self.0, &who, &request.into_inner().name)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn audit_log(
        &self,
        request: Request<pb::AuditLogRequest>,
    ) -> Result<Response<pb::AuditLogResponse>, Status> {
        authorized(&self.0, request.metadata(), Role::Admin, "audit").await?;
        let limit = match request.into_inner().limit {
            0 => 100,
            n => n.min(MAX_AUDIT_ENTRIES),
        };
        let entries = self.0.store.audit_log(limit).await.map_err(store_status)?;
        Ok(Response::new(pb::AuditLogResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AuditEntry {
                    at: e.at,
                    actor: e.actor,
                    role: e.role.to_string(),
                    action: e.action,
                    subject: e.subject,
                })
                .collect(),
        }))
    }
}

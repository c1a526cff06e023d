//! Who may call what: the credential of a call resolved to a [`Principal`] with a role, named
//! API tokens made and revoked, and the audit trail of every call that changed state.
//!
//! # Invariants
//! - Tokens are looked up by SHA-256 in the store on every call (no cache): a revoke takes
//!   effect for the next call. Node credentials (`dcn_…`) are resolved by the scheduler.
//! - A refusal names the role the call needs and the role the credential has.
//! - Every state-changing call is recorded in the audit trail after it succeeded.

use debcover_core::access::{self, ApiToken, AuditEntry, Principal, Role};
use debcover_core::rebuild;
use debcover_core::store::{Store, now_unix};

use super::{Error, Result};
use crate::Coordinator;
use crate::ops::scheduler;

/// Last-use times are written at most this often per token (seconds).
const TOUCH_EVERY: i64 = 60;

/// Why a credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// No credential, or one no one issued (or revoked).
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid credential without the role the call needs.
    #[error("{0}")]
    Forbidden(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] debcover_core::store::StoreError),
}

/// The principal behind `token`, allowed to make a call that needs `needed` (`what` names the
/// call in the refusal).
pub async fn authorize<S: Store>(
    c: &Coordinator<S>,
    token: Option<&str>,
    needed: Role,
    what: &str,
) -> std::result::Result<Principal, Denied> {
    let Some(token) = token else {
        return Err(Denied::Unauthenticated(format!(
            "{what} needs a credential with role {needed}: send `authorization: Bearer TOKEN` \
             (debcover: --token-file FILE or DEBCOVER_TOKEN; an admin makes one with `debcover token add --role {needed}`)"
        )));
    };
    let principal = identify(c, token).await?;
    if principal.role.permits(needed) {
        Ok(principal)
    } else {
        Err(Denied::Forbidden(format!(
            "{what} needs role {needed} (the admin token, or an API token with that role: `debcover token add --role {needed}`); \
             the credential {} has role {}",
            principal.name, principal.role
        )))
    }
}

/// The principal holding `token`: the admin token, an API token, or a node's credential.
pub async fn identify<S: Store>(
    c: &Coordinator<S>,
    token: &str,
) -> std::result::Result<Principal, Denied> {
    if scheduler::authenticate_admin(c, token).is_ok() {
        return Ok(Principal::admin());
    }
    let digest = rebuild::token_digest(token);
    if token.starts_with(access::TOKEN_PREFIX) {
        if let Some(t) = c.store.token_by_digest(&digest).await? {
            let now = now_unix();
            if t.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
                // Best effort: a failed touch must not refuse a valid call.
                if let Err(e) = c.store.touch_token(t.id, now).await {
                    tracing::warn!(error = %e, token = %t.name, "could not record the token's last use");
                }
            }
            return Ok(Principal {
                name: format!("token:{}", t.name),
                role: t.role,
            });
        }
    } else if let Ok(n) = scheduler::authenticate_node(c, token).await {
        return Ok(Principal {
            name: format!("node:{}/{}", n.operator, n.name),
            role: Role::Node,
        });
    }
    Err(Denied::Unauthenticated(
        "unknown or revoked credential".to_owned(),
    ))
}

/// Append to the audit trail; a failure is logged, not returned (the call already happened).
pub async fn record<S: Store>(
    c: &Coordinator<S>,
    who: &Principal,
    action: &str,
    subject: impl Into<String>,
) {
    let entry = AuditEntry {
        at: now_unix(),
        actor: who.name.clone(),
        role: who.role,
        action: action.to_owned(),
        subject: subject.into(),
    };
    tracing::info!(actor = %entry.actor, role = %entry.role, action, subject = %entry.subject, "audit");
    if let Err(e) = c.store.audit(&entry).await {
        tracing::error!(error = %e, action, "could not write the audit trail");
    }
}

/// Make a named API token; the secret is returned once and only its SHA-256 is stored.
pub async fn add_token<S: Store>(
    c: &Coordinator<S>,
    who: &Principal,
    name: &str,
    role: &str,
) -> Result<(ApiToken, String)> {
    access::check_token_name(name).map_err(Error::Invalid)?;
    let role: Role = role.parse().map_err(Error::Invalid)?;
    if role == Role::Node {
        return Err(Error::Invalid(
            "node credentials are made with `debcover node add --operator OP --name NAME`"
                .to_owned(),
        ));
    }
    let secret = rebuild::new_secret(access::TOKEN_PREFIX);
    let token = c
        .store
        .add_token(name, role, &rebuild::token_digest(&secret), now_unix())
        .await?
        .ok_or_else(|| {
            Error::AlreadyExists(format!(
                "a valid token called {name} exists (revoke it first)"
            ))
        })?;
    record(c, who, "add-token", format!("{name} ({role})")).await;
    Ok((token, secret))
}

/// Revoke the named API token; it is refused from its next call on.
pub async fn revoke_token<S: Store>(c: &Coordinator<S>, who: &Principal, name: &str) -> Result<()> {
    if !c.store.revoke_token(name, now_unix()).await? {
        return Err(Error::NotFound(format!("no valid token called {name}")));
    }
    record(c, who, "revoke-token", name).await;
    Ok(())
}

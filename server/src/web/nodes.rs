//! `/nodes`: every rebuilder node by operator, when it was last seen, what it builds, and how
//! many attempts it ended in the last 24 hours.

use std::collections::HashMap;

use axum::extract::State;
use maud::html;
use serde::Serialize;

use super::{St, WebResult, layout, now_unix, respond, when};
use debcover_core::rebuild::NodeRecord;
use debcover_core::store::{RebuildStore, ViewStore};

/// A node as listed.
#[derive(Serialize)]
struct Node {
    #[serde(flatten)]
    node: NodeRecord,
    /// Attempts ended in the last 24 hours (handed-back ones not counted).
    done_24h: u64,
}

/// `/nodes`.
pub async fn page<S: ViewStore + RebuildStore, const JSON: bool>(State(web): St<S>) -> WebResult {
    let done: HashMap<i64, u64> = web.store.node_activity(now_unix() - 86_400).await?.into_iter().collect();
    let nodes: Vec<Node> = web
        .store
        .nodes()
        .await?
        .into_iter()
        .map(|n| Node { done_24h: done.get(&n.id).copied().unwrap_or(0), node: n })
        .collect();
    respond(JSON, &nodes, |nodes| {
        layout(
            "Nodes",
            html! {
                h1 { "Rebuilder nodes" }
                p { a href="/api/nodes" { "JSON" } }
                @if nodes.is_empty() { p.muted { "No node credential issued yet." } }
                @else {
                    table {
                        tr { th { "operator" } th { "node" } th { "state" } th { "last seen" } th { "jobs done (24 h)" }
                             th { "leases held" } th { "architectures" } th { "backends" } th { "slots" } th { "software" } }
                        @for n in nodes {
                            tr {
                                td { (n.node.operator) } td { (n.node.name) }
                                td { @if n.node.revoked_at.is_some() { "revoked" }
                                     @else if n.node.registered_at.is_some() { "registered" } @else { "not registered" } }
                                td { (n.node.last_seen.map(when).unwrap_or_else(|| "never".to_owned())) }
                                td.n { (n.done_24h) } td.n { (n.node.active_leases) }
                                td { (n.node.caps.arches.join(" ")) } td { (n.node.caps.backends.join(" ")) }
                                td.n { (n.node.caps.slots) } td { (n.node.caps.software) }
                            }
                        }
                    }
                }
            },
        )
    })
}

//! Row ↔ domain conversions for campaigns, shared by both backends so that the JSON columns
//! and the space-separated lists are read and written one way.

use std::collections::HashMap;
use std::str::FromStr;

use super::{StoreError, tokens};
use debcover_core::campaign::{CampaignRecord, Coverage, Evidence, ItemEvent, ItemRecord, ItemState, Mode, PlannedItem};
use debcover_core::model::ShippedBinary;

/// The columns of `campaigns` in the order [`campaign`] reads them.
pub const CAMPAIGN_COLUMNS: &str =
    "id, title, library, fixed_version, suites, arches, mode, advisories, max_depth, notes, created_at";

/// The columns of `campaign_items` in the order [`item`] reads them.
pub const ITEM_COLUMNS: &str = "id, campaign_id, state, reason, current_version, planned, updated_at, coverage";

/// A `campaigns` row.
#[allow(clippy::too_many_arguments)]
pub fn campaign(
    id: i64,
    title: String,
    library: String,
    fixed_version: String,
    suites: &str,
    arches: &str,
    mode: &str,
    advisories: &str,
    max_depth: i64,
    notes: &str,
    created_at: i64,
) -> Result<CampaignRecord, StoreError> {
    Ok(CampaignRecord {
        id,
        title,
        library,
        fixed_version,
        suites: tokens(suites),
        arches: tokens(arches),
        mode: Mode::from_str(mode).map_err(StoreError::Corrupt)?,
        advisories: tokens(advisories),
        max_depth: u32::try_from(max_depth).unwrap_or(u32::MAX),
        notes: from_json(notes, "campaigns.notes")?,
        created_at,
    })
}

/// A `campaign_items` row (`coverage` '' for items saved before migration 0008: implied by
/// the state).
#[allow(clippy::too_many_arguments)]
pub fn item(
    id: i64,
    campaign_id: i64,
    state: &str,
    reason: String,
    current_version: String,
    planned: &str,
    updated_at: i64,
    coverage: &str,
) -> Result<ItemRecord, StoreError> {
    let state = ItemState::from_str(state).map_err(StoreError::Corrupt)?;
    let coverage = if coverage.is_empty() {
        Coverage::of_state(state)
    } else {
        Coverage::from_str(coverage).map_err(|e| StoreError::Corrupt(format!("campaign_items.coverage of item {id}: {e}")))?
    };
    Ok(ItemRecord {
        id,
        campaign_id,
        planned: from_json(planned, "campaign_items.planned")?,
        state,
        coverage,
        reason,
        current_version,
        updated_at,
    })
}

/// A `campaign_events` row joined with its item's suite, source and arch.
#[allow(clippy::too_many_arguments)]
pub fn event(
    item_id: i64,
    suite: String,
    source: &str,
    arch: &str,
    at: i64,
    from: Option<String>,
    to: &str,
    version: String,
    reason: String,
    evidence: &str,
) -> Result<ItemEvent, StoreError> {
    Ok(ItemEvent {
        item_id,
        item: format!("{source}/{arch}"),
        suite,
        at,
        from: from.as_deref().map(ItemState::from_str).transpose().map_err(StoreError::Corrupt)?,
        to: ItemState::from_str(to).map_err(StoreError::Corrupt)?,
        version,
        reason,
        evidence: from_json(evidence, "campaign_events.evidence")?,
    })
}

/// Serialize a value for a JSON column.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode JSON column: {e}")))
}

/// The JSON text of an evidence list.
pub fn evidence_json(evidence: &[Evidence]) -> Result<String, StoreError> {
    to_json(&evidence)
}

/// The JSON text of a planned item.
pub fn planned_json(item: &PlannedItem) -> Result<String, StoreError> {
    to_json(item)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Attach `(binary_id, field, source, version)` declaration rows to their binaries.
pub fn attach_embeds(binaries: &mut [ShippedBinary], rows: Vec<(i64, String, String, String)>) {
    let mut by_id: HashMap<i64, Vec<(String, String, String)>> = HashMap::new();
    for (id, field, source, version) in rows {
        by_id.entry(id).or_default().push((field, source, version));
    }
    for b in binaries {
        if let Some(mut e) = by_id.get(&b.id).cloned() {
            e.sort();
            b.embeds = e;
        }
    }
}

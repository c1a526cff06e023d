-- Campaigns: one library fix each; its items (source, arch, suite) and every state change.
-- The plan's view of an item (evidence, wave, thresholds) is kept as JSON written and read
-- only by the coordinator (coordinator/src/campaign); states and versions are columns so that
-- counts and lookups stay in SQL.

CREATE TABLE campaigns (
    id            INTEGER PRIMARY KEY,
    title         TEXT    NOT NULL,
    library       TEXT    NOT NULL,  -- source package
    fixed_version TEXT    NOT NULL,
    suites        TEXT    NOT NULL,  -- space-separated
    arches        TEXT    NOT NULL,  -- space-separated; '' = every indexed architecture
    mode          TEXT    NOT NULL,  -- 'binnmu' | 'sourceful'
    advisories    TEXT    NOT NULL,  -- space-separated
    max_depth     INTEGER NOT NULL,
    notes         TEXT    NOT NULL,  -- JSON array of strings
    created_at    INTEGER NOT NULL   -- unix seconds
);

CREATE TABLE campaign_items (
    id              INTEGER PRIMARY KEY,
    campaign_id     INTEGER NOT NULL REFERENCES campaigns (id),
    suite           TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    arch            TEXT    NOT NULL,
    wave            INTEGER NOT NULL,
    state           TEXT    NOT NULL,  -- campaign::ItemState, kebab-case
    reason          TEXT    NOT NULL,
    current_version TEXT    NOT NULL,  -- binary version the state was judged on
    planned         TEXT    NOT NULL,  -- JSON campaign::PlannedItem
    updated_at      INTEGER NOT NULL,
    UNIQUE (campaign_id, suite, source, arch)
);
CREATE INDEX campaign_items_source ON campaign_items (source);

-- The audit trail: one row per state change (the first one records the planning).
CREATE TABLE campaign_events (
    id         INTEGER PRIMARY KEY,
    item_id    INTEGER NOT NULL REFERENCES campaign_items (id),
    at         INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    evidence   TEXT    NOT NULL   -- JSON array of campaign::Evidence
);
CREATE INDEX campaign_events_item ON campaign_events (item_id, id);

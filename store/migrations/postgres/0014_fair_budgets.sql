-- Fair budgets (debcover_core::rebuild::Charge, NodeStanding): whom each ended attempt was
-- charged to, and each node's standing (failures charged to it in a row, its quarantines).
ALTER TABLE rebuild_attempts ADD COLUMN charged TEXT;                          -- job | node | NULL
ALTER TABLE rebuild_nodes ADD COLUMN strikes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rebuild_nodes ADD COLUMN quarantines BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rebuild_nodes ADD COLUMN quarantined_until BIGINT;                -- unix seconds

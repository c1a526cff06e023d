-- Key history: every public key a node has registered, with the period it was the node's key
-- (valid_until NULL while current; a node re-registering with another key closes the old one,
-- which stays listed so that attestations it signed remain verifiable), and the coordinator's
-- own keys (the key that signs in-toto layouts; one per coordinator data directory).
-- Times are unix seconds. Written only by coordinator/src/storage.

CREATE TABLE rebuild_node_keys (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id     BIGINT NOT NULL REFERENCES rebuild_nodes (id),
    public_key  TEXT    NOT NULL,  -- as registered (OpenSSH form)
    valid_from  BIGINT NOT NULL,
    valid_until BIGINT                 -- NULL while current
);
CREATE INDEX rebuild_node_keys_node ON rebuild_node_keys (node_id, valid_from);
CREATE UNIQUE INDEX rebuild_node_keys_current ON rebuild_node_keys (node_id) WHERE valid_until IS NULL;

-- Keys registered before this migration: current since their node's last registration.
INSERT INTO rebuild_node_keys (node_id, public_key, valid_from)
SELECT id, public_key, COALESCE(registered_at, created_at) FROM rebuild_nodes WHERE public_key <> '';

CREATE TABLE coordinator_keys (
    public_key  TEXT    PRIMARY KEY,  -- OpenSSH form
    valid_from  BIGINT NOT NULL,
    valid_until BIGINT                    -- NULL while in use
);

-- Signed attestations in the database: each accepted in-toto link, byte for byte as the node
-- signed it, under its SHA-256 (the key rebuild_attempts.attestation_sha256 names), written in
-- the transaction that records the attempt's result. The same bytes reported twice are one row.
-- Links accepted before this migration stay in the content-addressed store
-- (DATA_DIR/cas/attestations), where readers fall back to when a key has no row here.
CREATE TABLE attestations (
    sha256 TEXT PRIMARY KEY,  -- lower-case hex SHA-256 of body
    body   BYTEA NOT NULL     -- the link (JSON), as signed
);

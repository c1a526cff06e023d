-- Signed attestations: each attempt's in-toto link, as the node signed it, lives in the
-- content-addressed store under its SHA-256 (checked against the node's registered key before
-- the result was accepted).
ALTER TABLE rebuild_attempts ADD COLUMN attestation_sha256 TEXT;

-- Who may do what (debcover_core::access): named API tokens with a role, stored as the SHA-256
-- of the secret (the secret is shown once, when made), and the audit trail of every call that
-- changed state. Times are unix seconds.

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL,          -- admin | ingest | campaign
    token_sha256 TEXT    NOT NULL UNIQUE,   -- hex SHA-256 of the bearer token
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,                   -- to the minute
    revoked_at   INTEGER                    -- NULL while valid
);
-- A name is held by one valid token at a time.
CREATE UNIQUE INDEX api_tokens_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,  -- admin | token:NAME | node:OPERATOR/NAME
    role    TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    subject TEXT    NOT NULL
);

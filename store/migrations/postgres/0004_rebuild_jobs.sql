-- The rebuilder network: operators and their nodes (credentials stored as SHA-256 of the token,
-- never the token), verification jobs (one per build to reproduce), fenced leases, and every
-- attempt with the artifacts it reported. Written only by coordinator/src/storage; the rules
-- (priorities, budgets, independence) live in coordinator/src/rebuild.
-- Times are unix seconds.

CREATE TABLE rebuild_operators (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL
);

CREATE TABLE rebuild_nodes (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator_id   BIGINT  NOT NULL REFERENCES rebuild_operators (id),
    name          TEXT    NOT NULL,
    token_sha256  TEXT    NOT NULL UNIQUE,  -- hex SHA-256 of the bearer token
    created_at    BIGINT  NOT NULL,
    revoked_at    BIGINT,                  -- NULL while the credential is valid
    public_key    TEXT    NOT NULL DEFAULT '',
    arches        TEXT    NOT NULL DEFAULT '',  -- space-separated, canonical Debian names
    backends      TEXT    NOT NULL DEFAULT '',  -- space-separated
    tags          TEXT    NOT NULL DEFAULT '',  -- space-separated
    slots         BIGINT  NOT NULL DEFAULT 1,
    registered_at BIGINT,
    last_seen     BIGINT,
    UNIQUE (operator_id, name)
);

CREATE TABLE rebuild_jobs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    build_id       BIGINT  NOT NULL REFERENCES builds (id),
    source         TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    arch           TEXT    NOT NULL,             -- the build's host architecture
    backend        TEXT    NOT NULL DEFAULT '',  -- required backend; '' = any
    priority       BIGINT  NOT NULL,             -- 0 campaign, 1 request, 2 background
    origin         TEXT    NOT NULL,             -- why it was queued
    state          TEXT    NOT NULL,             -- queued | leased | verified | parked
    not_before     BIGINT  NOT NULL,             -- retry-after time
    fence          BIGINT  NOT NULL DEFAULT 0,   -- fencing token of the latest lease; only grows
    lease_node     BIGINT  REFERENCES rebuild_nodes (id),
    lease_expires  BIGINT,
    failures       BIGINT  NOT NULL DEFAULT 0,
    unreproducible BIGINT  NOT NULL DEFAULT 0,
    verified       BIGINT  NOT NULL DEFAULT 0,   -- distinct operators that reproduced it
    parked_reason  TEXT,
    queued_at      BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
-- The same build is never queued twice at once.
CREATE UNIQUE INDEX rebuild_jobs_active ON rebuild_jobs (build_id) WHERE state IN ('queued', 'leased');
CREATE INDEX rebuild_jobs_claim ON rebuild_jobs (priority, id) WHERE state = 'queued';
CREATE INDEX rebuild_jobs_expiry ON rebuild_jobs (lease_expires) WHERE state = 'leased';
CREATE INDEX rebuild_jobs_lease_node ON rebuild_jobs (lease_node) WHERE state = 'leased';
CREATE INDEX rebuild_jobs_build ON rebuild_jobs (build_id);
CREATE INDEX rebuild_jobs_source ON rebuild_jobs (source);

-- Tags a node must carry to take the job (e.g. 'big').
CREATE TABLE rebuild_job_tags (
    job_id BIGINT  NOT NULL REFERENCES rebuild_jobs (id),
    tag    TEXT    NOT NULL,
    PRIMARY KEY (job_id, tag)
);

-- One row per lease: the attempt and how it ended.
CREATE TABLE rebuild_attempts (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id           BIGINT  NOT NULL REFERENCES rebuild_jobs (id),
    fence            BIGINT  NOT NULL,
    node_id          BIGINT  NOT NULL REFERENCES rebuild_nodes (id),
    operator_id      BIGINT  NOT NULL REFERENCES rebuild_operators (id),
    started_at       BIGINT  NOT NULL,
    finished_at      BIGINT,
    outcome          TEXT,  -- NULL while running; reproducible | unreproducible | failed | handed-back
    failure_code     TEXT,  -- build-failed | dependencies-unavailable | timeout | infrastructure | node-lost
    message          TEXT    NOT NULL DEFAULT '',
    buildinfo_sha256 TEXT,  -- produced .buildinfo in the content-addressed store
    log_sha256       TEXT,  -- build log in the content-addressed store (zstd)
    UNIQUE (job_id, fence)
);
CREATE INDEX rebuild_attempts_operator ON rebuild_attempts (job_id, operator_id);

-- What an attempt produced, as reported: hashes are data, queryable.
CREATE TABLE rebuild_artifacts (
    attempt_id BIGINT  NOT NULL REFERENCES rebuild_attempts (id),
    name       TEXT    NOT NULL,
    size       BIGINT  NOT NULL,
    sha256     TEXT    NOT NULL,
    PRIMARY KEY (attempt_id, name)
);
CREATE INDEX rebuild_artifacts_sha256 ON rebuild_artifacts (sha256);

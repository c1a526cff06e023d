-- Builds (one row per distinct buildinfo text), what each was built against, and what the
-- archive ships. Versions are TEXT: Debian ordering is done in Rust with debversion, never in SQL.

-- A build is identified by the SHA-256 of its buildinfo text; the natural key
-- (source, version, arch) is not unique over time (rebuilds of one version).
CREATE TABLE builds (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256          TEXT    NOT NULL UNIQUE,
    source          TEXT    NOT NULL,
    source_version  TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    architectures   TEXT    NOT NULL,  -- the Architecture field's tokens, space-separated
    host_arch       TEXT    NOT NULL,  -- concrete arch, or 'all', or 'source'
    build_date      TEXT,
    build_origin    TEXT,
    layout          TEXT    NOT NULL,  -- 'current' | 'pre-release'
    signed          BOOLEAN NOT NULL,
    ibd_count       BIGINT NOT NULL,
    origin          TEXT    NOT NULL,  -- file or URL it was first ingested from
    ingested_at     BIGINT NOT NULL,  -- unix seconds
    raw_size        BIGINT NOT NULL
);
CREATE INDEX builds_source ON builds (source, version, host_arch);

-- The exact bytes ingested, zstd-compressed, apart from `builds` so that build records stay
-- small and dense (queries read thousands of records; only `build get` reads the text).
CREATE TABLE build_texts (
    build_id BIGINT PRIMARY KEY REFERENCES builds (id),
    raw_zstd BYTEA    NOT NULL
);

-- Interned installed packages: ~9 million dependency entries reference ~100k of these.
CREATE TABLE pkgvers (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name    TEXT NOT NULL,
    arch    TEXT NOT NULL,  -- architecture qualifier, '' when none
    version TEXT NOT NULL,
    UNIQUE (name, arch, version)
);

-- Installed-Build-Depends as posting lists (see coordinator/src/storage/postings.rs): one row
-- per (interned package, ingestion batch) holding the batch's build ids, sorted and
-- delta-encoded as LEB128 varints. Clustered by package: "who was built with X" is one range
-- scan, and a suite's ~9 million entries take a few hundred thousand rows.
CREATE TABLE build_deps (
    pkgver_id      BIGINT NOT NULL,
    first_build_id BIGINT NOT NULL,
    build_ids      BYTEA    NOT NULL,
    PRIMARY KEY (pkgver_id, first_build_id)
);

-- Files a build produced (its Checksums-* fields).
CREATE TABLE build_files (
    build_id BIGINT NOT NULL REFERENCES builds (id),
    name     TEXT    NOT NULL,
    size     BIGINT NOT NULL,
    sha256   TEXT,
    sha1     TEXT,
    md5      TEXT,
    PRIMARY KEY (build_id, name)
);
CREATE INDEX build_files_sha256 ON build_files (sha256);

-- Binary package -> source package names, learnt from buildinfos, Packages and Sources.
CREATE TABLE binary_sources (
    package TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (source, package)
);

-- Binary packages seen in Packages indices; identity is the .deb's SHA-256.
CREATE TABLE binaries (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256         TEXT    NOT NULL UNIQUE,
    package        TEXT    NOT NULL,
    version        TEXT    NOT NULL,
    architecture   TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    source_version TEXT    NOT NULL,
    filename       TEXT    NOT NULL,
    size           BIGINT NOT NULL,
    build_id       BIGINT REFERENCES builds (id),
    link           TEXT    -- how build_id was found: 'sha256' | 'name'; NULL when unlinked
);
CREATE INDEX binaries_source ON binaries (source, version, architecture);
CREATE INDEX binaries_build ON binaries (build_id);

-- Built-Using, Static-Built-Using and X-Cargo-Built-Using of a binary (versions normalised).
CREATE TABLE binary_embeds (
    binary_id BIGINT NOT NULL REFERENCES binaries (id),
    field     TEXT    NOT NULL,  -- 'Built-Using' | 'Static-Built-Using' | 'X-Cargo-Built-Using'
    source    TEXT    NOT NULL,
    version   TEXT    NOT NULL,
    PRIMARY KEY (binary_id, field, source, version)
);
CREATE INDEX binary_embeds_source ON binary_embeds (source);

-- Which binaries a suite ships, per architecture of the Packages index they came from.
CREATE TABLE suite_binaries (
    suite     TEXT    NOT NULL,
    arch      TEXT    NOT NULL,
    binary_id BIGINT NOT NULL REFERENCES binaries (id),
    PRIMARY KEY (suite, arch, binary_id)
);
CREATE INDEX suite_binaries_binary ON suite_binaries (binary_id);

-- Source packages seen in Sources indices.
CREATE TABLE sources (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    package             TEXT NOT NULL,
    version             TEXT NOT NULL,
    binaries            TEXT NOT NULL,  -- space-separated
    architecture        TEXT NOT NULL,  -- space-separated
    directory           TEXT,
    build_depends       TEXT,
    build_depends_indep TEXT,
    build_depends_arch  TEXT,
    UNIQUE (package, version)
);

CREATE TABLE suite_sources (
    suite     TEXT    NOT NULL,
    source_id BIGINT NOT NULL REFERENCES sources (id),
    PRIMARY KEY (suite, source_id)
);

-- Every archive index applied, for the audit trail.
CREATE TABLE archive_imports (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    suite       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,  -- 'packages' | 'sources'
    arch        TEXT    NOT NULL,  -- '' for Sources
    origin      TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    entries     BIGINT NOT NULL,
    added       BIGINT NOT NULL,
    removed     BIGINT NOT NULL,
    imported_at BIGINT NOT NULL
);

-- Rebuild results: where to fetch a job's source, diffoscope reports, environment mismatches,
-- the node software, and builds ingested from a rebuild's produced .buildinfo.

-- The .dsc's SHA-256 from the Sources index's Checksums-Sha256 (NULL for rows ingested before).
ALTER TABLE sources ADD COLUMN dsc_sha256 TEXT;

-- A build ingested from a verification rebuild's produced .buildinfo: the build it reproduces.
-- Such builds are never linked to archive binaries (the archive's bytes come from the
-- original build) and are never queued for verification themselves.
ALTER TABLE builds ADD COLUMN rebuild_of BIGINT REFERENCES builds (id);

-- The diffoscope report of an unreproducible attempt in the content-addressed store (zstd).
ALTER TABLE rebuild_attempts ADD COLUMN diffoscope_sha256 TEXT;
-- One per line: the differing files (unreproducible) or the environment differences
-- (environment-mismatch).
ALTER TABLE rebuild_attempts ADD COLUMN differences TEXT NOT NULL DEFAULT '';

-- The node software's name and version, as declared at registration.
ALTER TABLE rebuild_nodes ADD COLUMN software TEXT NOT NULL DEFAULT '';

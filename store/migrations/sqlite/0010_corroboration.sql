-- Corroboration: what a rebuilt binary says about its own build (Go toolchain and modules,
-- rustc, cargo-auditable crates, reported by the node) against the original buildinfo's
-- Installed-Build-Depends, one row per finding, written with the attempt's result. Reports
-- only: they never change an outcome, a job's state or coverage.
CREATE TABLE rebuild_findings (
    attempt_id  INTEGER NOT NULL REFERENCES rebuild_attempts (id),
    seq         INTEGER NOT NULL,  -- order of the findings as computed
    deb         TEXT    NOT NULL,  -- the .deb's file name
    binary_path TEXT    NOT NULL,  -- the binary's path in the .deb
    subject     TEXT    NOT NULL,  -- go toolchain | rustc | go module PATH | crate NAME
    embedded    TEXT    NOT NULL,  -- what the binary says (go1.19.5)
    declared    TEXT    NOT NULL,  -- the Installed-Build-Depends entries compared, one per line
    verdict     TEXT    NOT NULL,  -- agrees | disagrees | undeclared
    PRIMARY KEY (attempt_id, seq)
);

-- A counter of writes that can change a built-with answer. Every transaction that stores new
-- builds or applies an archive index bumps it as its last statement (storage/*.rs), so a
-- coordinator's in-memory query index (coordinator/src/index.rs) can tell with one read
-- whether what it holds is still current, also when other coordinators wrote. Bumping last
-- keeps the row lock for the few moments before commit: concurrent ingestion from several
-- coordinators is not serialised by it, and no other lock is taken after it (no deadlock).
CREATE TABLE query_generation (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    gen BIGINT NOT NULL
);
INSERT INTO query_generation (id, gen) VALUES (1, 0);

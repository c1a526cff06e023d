-- A counter of writes that can change a built-with answer. Every transaction that stores new
-- builds or applies an archive index bumps it as its last statement (storage/*.rs), so a
-- coordinator's in-memory query index (coordinator/src/index.rs) can tell with one read
-- whether what it holds is still current, also when other coordinators wrote.
CREATE TABLE query_generation (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    gen INTEGER NOT NULL
);
INSERT INTO query_generation (id, gen) VALUES (1, 0);

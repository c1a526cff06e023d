-- Indexes of the suite page (coordinator/src/web/suites.rs, storage/views.rs), so that it never
-- reads every build of a suite.
-- Status counts: the jobs that are verified or parked, and the attempts that ended with a
-- verdict or a failure, are found without scanning the others.
-- Partial, on the two states counted: an index on every state would be chosen for the
-- scheduler's claim (state = 'queued') over its own `rebuild_jobs_claim`, which made claims
-- 4x slower (bench/sched.sh, 32 nodes: 867 -> 183 cycles/s in one run).
CREATE INDEX rebuild_jobs_state ON rebuild_jobs (state, build_id) WHERE state IN ('verified', 'parked');
CREATE INDEX rebuild_attempts_outcome ON rebuild_attempts (outcome, job_id);
-- Last-Modified of the whole-suite status list: the latest build ingested and the latest job
-- change, read from the end of an index.
CREATE INDEX builds_ingested ON builds (ingested_at);
CREATE INDEX rebuild_jobs_updated ON rebuild_jobs (updated_at, build_id);

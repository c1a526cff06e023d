-- Indexes of the web views (coordinator/src/web, storage/views.rs).
-- A campaign page lists its items one page at a time in wave order.
CREATE INDEX campaign_items_page ON campaign_items (campaign_id, wave, suite, source, arch, id);
-- The nodes page counts each node's attempts of the last 24 hours.
CREATE INDEX rebuild_attempts_finished ON rebuild_attempts (finished_at, node_id);
-- The suite page's per-day history and status join attempts to their jobs.
CREATE INDEX rebuild_attempts_job ON rebuild_attempts (job_id, finished_at);

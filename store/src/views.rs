//! The SQL of the web views' reads ([`ViewStore`](crate::ViewStore)), written once for both
//! backends with PostgreSQL's `$N` placeholders (`crate::shared::view_store!` runs them).
//! Every aggregate is cast to `BIGINT`, which both read as `i64`; every column is named. Every
//! query is bounded by an index (migrations 0009 and 0011 add the ones the pages need) or by
//! one suite or campaign. Job states are written from [`JobState`]'s names.

use debcover_core::store::views::{StatusFacts, StatusGroup, SuiteBuild};

use crate::StoreError;
use crate::rows::{Get, count};

use crate::rows::{ENVIRONMENT_MISMATCH, FAILED, HANDED_BACK, PARKED, QUEUED, REPRODUCIBLE, UNREPRODUCIBLE, VERIFIED};

/// The builds of a suite: a subquery on `$1`.
const SUITE_BUILD_IDS: &str = "SELECT b.build_id FROM suite_binaries s JOIN binaries b ON b.id = s.binary_id
     WHERE s.suite = $1 AND b.build_id IS NOT NULL";

/// [`ViewStore::suite_builds`].
pub(super) fn suite_builds_sql() -> String {
    format!(
        "SELECT bu.id AS id, bu.source AS source, bu.version AS version, bu.host_arch AS host_arch,
            bu.sha256 AS sha256, bu.ingested_at AS ingested_at,
            CAST(COALESCE(j.verified, 0) AS BIGINT) AS verified, CAST(COALESCE(j.parked, 0) AS BIGINT) AS parked,
            CAST(COALESCE(j.updated, 0) AS BIGINT) AS job_change,
            CAST(COALESCE(a.repro, 0) AS BIGINT) AS reproducible, CAST(COALESCE(a.unrepro, 0) AS BIGINT) AS unreproducible,
            CAST(COALESCE(a.failed, 0) AS BIGINT) AS failed, CAST(COALESCE(a.last_at, 0) AS BIGINT) AS attempt_change
         FROM builds bu
         LEFT JOIN (SELECT build_id,
                MAX(CASE WHEN state = '{VERIFIED}' THEN 1 ELSE 0 END) AS verified,
                MAX(CASE WHEN state = '{PARKED}' THEN 1 ELSE 0 END) AS parked,
                MAX(updated_at) AS updated
             FROM rebuild_jobs WHERE build_id IN ({SUITE_BUILD_IDS}) GROUP BY build_id) j ON j.build_id = bu.id
         LEFT JOIN (SELECT jj.build_id,
                SUM(CASE WHEN t.outcome = '{REPRODUCIBLE}' THEN 1 ELSE 0 END) AS repro,
                SUM(CASE WHEN t.outcome = '{UNREPRODUCIBLE}' THEN 1 ELSE 0 END) AS unrepro,
                SUM(CASE WHEN t.outcome IN ('{FAILED}', '{ENVIRONMENT_MISMATCH}') THEN 1 ELSE 0 END) AS failed,
                MAX(COALESCE(t.finished_at, t.started_at)) AS last_at
             FROM rebuild_attempts t JOIN rebuild_jobs jj ON jj.id = t.job_id
             WHERE jj.build_id IN ({SUITE_BUILD_IDS}) GROUP BY jj.build_id) a ON a.build_id = bu.id
         WHERE bu.id IN ({SUITE_BUILD_IDS})
         ORDER BY bu.source, bu.version, bu.host_arch, bu.id"
    )
}

/// [`ViewStore::suite_build_page`]: the columns of [`suite_builds_sql`] for one page
/// (`LIMIT $2 OFFSET $3`), the jobs and attempts joined for the page's builds only. SQLite walks
/// `builds_source` (already in page order), tests each build with [`in_suite`]'s two probes and
/// stops at the page's end: the first page reads a hundred builds, the last all of them.
pub(super) fn suite_build_page_sql() -> String {
    format!(
        "SELECT p.id AS id, p.source AS source, p.version AS version, p.host_arch AS host_arch, p.sha256 AS sha256,
            p.ingested_at AS ingested_at,
            CAST(COALESCE(MAX(CASE WHEN j.state = '{VERIFIED}' THEN 1 ELSE 0 END), 0) AS BIGINT) AS verified,
            CAST(COALESCE(MAX(CASE WHEN j.state = '{PARKED}' THEN 1 ELSE 0 END), 0) AS BIGINT) AS parked,
            CAST(COALESCE(MAX(j.updated_at), 0) AS BIGINT) AS job_change,
            CAST(COALESCE(SUM(CASE WHEN t.outcome = '{REPRODUCIBLE}' THEN 1 ELSE 0 END), 0) AS BIGINT) AS reproducible,
            CAST(COALESCE(SUM(CASE WHEN t.outcome = '{UNREPRODUCIBLE}' THEN 1 ELSE 0 END), 0) AS BIGINT) AS unreproducible,
            CAST(COALESCE(SUM(CASE WHEN t.outcome IN ('{FAILED}', '{ENVIRONMENT_MISMATCH}') THEN 1 ELSE 0 END), 0) AS BIGINT)
                AS failed,
            CAST(COALESCE(MAX(COALESCE(t.finished_at, t.started_at)), 0) AS BIGINT) AS attempt_change
         FROM (SELECT bu.id, bu.source, bu.version, bu.host_arch, bu.sha256, bu.ingested_at FROM builds bu
             WHERE {in_suite} ORDER BY bu.source, bu.version, bu.host_arch, bu.id LIMIT $2 OFFSET $3) p
         LEFT JOIN rebuild_jobs j ON j.build_id = p.id
         LEFT JOIN rebuild_attempts t ON t.job_id = j.id
         GROUP BY p.id, p.source, p.version, p.host_arch, p.sha256, p.ingested_at
         ORDER BY p.source, p.version, p.host_arch, p.id",
        in_suite = in_suite("bu.id")
    )
}

/// [`ViewStore::suite_status_counts`], as rows `kind, arch, verified, parked, reproduced,
/// differed, failed, count` for [`status_groups`]: kind 1 is the number of the suite's builds
/// of an architecture; kind 0 counts, per architecture and facts, the builds that have at
/// least one fact, found from the jobs that are verified or parked and the attempts that
/// ended with a verdict or a failure (indexes `rebuild_jobs_state` and
/// `rebuild_attempts_outcome`, migration 0011). Builds are tested with [`in_suite`]: on SQLite
/// two index probes per build cost less than collecting the suite's build ids first.
pub(super) fn suite_status_counts_sql() -> String {
    format!(
        "SELECT CAST(1 AS BIGINT) AS kind, bu.host_arch AS arch, CAST(0 AS BIGINT) AS verified,
            CAST(0 AS BIGINT) AS parked, CAST(0 AS BIGINT) AS reproduced, CAST(0 AS BIGINT) AS differed,
            CAST(0 AS BIGINT) AS failed, CAST(COUNT(*) AS BIGINT) AS count
         FROM builds bu WHERE {builds_in_suite} GROUP BY bu.host_arch
         UNION ALL
         SELECT CAST(0 AS BIGINT), bu.host_arch, f.verified, f.parked, f.reproduced, f.differed, f.failed,
            CAST(COUNT(*) AS BIGINT)
         FROM (SELECT x.build_id, CAST(MAX(x.verified) AS BIGINT) AS verified, CAST(MAX(x.parked) AS BIGINT) AS parked,
                CAST(MAX(x.reproduced) AS BIGINT) AS reproduced, CAST(MAX(x.differed) AS BIGINT) AS differed,
                CAST(MAX(x.failed) AS BIGINT) AS failed
             FROM (SELECT build_id, CASE WHEN state = '{VERIFIED}' THEN 1 ELSE 0 END AS verified,
                    CASE WHEN state = '{PARKED}' THEN 1 ELSE 0 END AS parked,
                    0 AS reproduced, 0 AS differed, 0 AS failed
                 FROM rebuild_jobs WHERE state IN ('{VERIFIED}', '{PARKED}')
                 UNION ALL
                 SELECT j.build_id, 0, 0, CASE WHEN t.outcome = '{REPRODUCIBLE}' THEN 1 ELSE 0 END,
                    CASE WHEN t.outcome = '{UNREPRODUCIBLE}' THEN 1 ELSE 0 END,
                    CASE WHEN t.outcome IN ('{FAILED}', '{ENVIRONMENT_MISMATCH}') THEN 1 ELSE 0 END
                 FROM rebuild_attempts t JOIN rebuild_jobs j ON j.id = t.job_id
                 WHERE t.outcome IN ('{REPRODUCIBLE}', '{UNREPRODUCIBLE}', '{FAILED}', '{ENVIRONMENT_MISMATCH}')) x
             GROUP BY x.build_id) f
         JOIN builds bu ON bu.id = f.build_id
         WHERE {facts_in_suite}
         GROUP BY bu.host_arch, f.verified, f.parked, f.reproduced, f.differed, f.failed",
        builds_in_suite = in_suite("bu.id"),
        facts_in_suite = in_suite("f.build_id"),
    )
}

/// One row of [`suite_status_counts_sql`].
pub(super) struct CountRow {
    /// 1: the architecture's total; 0: builds with these facts.
    pub kind: i64,
    /// Host architecture.
    pub arch: String,
    /// The facts (all false in a total).
    pub facts: StatusFacts,
    /// Builds.
    pub count: u64,
}

/// The groups of [`ViewStore::suite_status_counts`] from the rows of
/// [`suite_status_counts_sql`]: the builds of an architecture that have no fact are its total
/// less those that have some.
pub(super) fn status_groups(rows: Vec<CountRow>) -> Vec<StatusGroup> {
    let mut groups: Vec<StatusGroup> = Vec::new();
    let mut rest: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for r in &rows {
        if r.kind == 1 {
            *rest.entry(r.arch.clone()).or_default() += r.count;
        }
    }
    for r in rows {
        if r.kind != 1 && r.count > 0 {
            let left = rest.entry(r.arch.clone()).or_default();
            *left = left.saturating_sub(r.count);
            groups.push(StatusGroup { arch: r.arch, facts: r.facts, count: r.count });
        }
    }
    for (arch, count) in rest {
        if count > 0 {
            groups.push(StatusGroup { arch, facts: StatusFacts::default(), count });
        }
    }
    groups.sort_by(|a, b| (&a.arch, a.facts).cmp(&(&b.arch, b.facts)));
    groups
}

/// Whether the build `{build}` is behind a binary shipped in suite `$1`: index probes,
/// `binaries_build` then `suite_binaries_binary`. `CROSS JOIN` fixes that order for SQLite
/// (PostgreSQL reads it as an inner join): without it SQLite 3.51 may scan the suite's
/// membership for every build, which turns a page of 50 ms into minutes.
fn in_suite(build: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM binaries b CROSS JOIN suite_binaries s
             WHERE b.build_id = {build} AND s.binary_id = b.id AND s.suite = $1)"
    )
}

/// [`ViewStore::suite_last_change`]: four times (0: none) to take the latest of. Each walks an
/// index from its latest entry (migration 0011: `builds_ingested`, `rebuild_jobs_updated`;
/// 0009: `rebuild_attempts_finished`, whose NULLs are the running attempts) and stops at the
/// first that belongs to the suite.
pub(super) fn suite_last_change_sql() -> String {
    format!(
        "SELECT
            CAST(COALESCE((SELECT bu.ingested_at FROM builds bu WHERE {}
                ORDER BY bu.ingested_at DESC LIMIT 1), 0) AS BIGINT) AS ingested,
            CAST(COALESCE((SELECT j.updated_at FROM rebuild_jobs j WHERE {}
                ORDER BY j.updated_at DESC LIMIT 1), 0) AS BIGINT) AS job,
            CAST(COALESCE((SELECT t.finished_at FROM rebuild_attempts t JOIN rebuild_jobs j ON j.id = t.job_id
                WHERE t.finished_at IS NOT NULL AND {} ORDER BY t.finished_at DESC LIMIT 1), 0) AS BIGINT) AS finished,
            CAST(COALESCE((SELECT MAX(t.started_at) FROM rebuild_attempts t JOIN rebuild_jobs j ON j.id = t.job_id
                WHERE t.finished_at IS NULL AND {}), 0) AS BIGINT) AS running",
        in_suite("bu.id"),
        in_suite("j.build_id"),
        in_suite("j.build_id"),
        in_suite("j.build_id"),
    )
}

/// [`ViewStore::suite_history`]: every ended attempt, tested with [`in_suite`] (collecting the
/// suite's build ids first would cost the same with no attempt at all).
pub(super) fn suite_history_sql() -> String {
    format!(
        "SELECT CAST(t.finished_at / 86400 AS BIGINT) AS day, jj.arch AS arch, t.outcome AS outcome,
            CAST(COUNT(*) AS BIGINT) AS count
         FROM rebuild_attempts t JOIN rebuild_jobs jj ON jj.id = t.job_id
         WHERE t.finished_at IS NOT NULL AND t.outcome IS NOT NULL AND {}
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        in_suite("jj.build_id")
    )
}

/// [`ViewStore::suites`].
pub(super) const SUITES: &str = "SELECT DISTINCT suite FROM archive_imports ORDER BY suite";

/// [`ViewStore::suite_imported_at`].
pub(super) const SUITE_IMPORTED_AT: &str =
    "SELECT CAST(COALESCE(MAX(imported_at), 0) AS BIGINT) AS imported_at FROM archive_imports WHERE suite = $1";

/// [`ViewStore::node_activity`].
pub(super) fn node_activity_sql() -> String {
    format!(
        "SELECT node_id, CAST(COUNT(*) AS BIGINT) AS count FROM rebuild_attempts
         WHERE finished_at >= $1 AND outcome IS NOT NULL AND outcome <> '{HANDED_BACK}' GROUP BY node_id"
    )
}

/// [`ViewStore::queue_depth`].
pub(super) fn queue_depth_sql() -> String {
    format!(
        "SELECT arch, priority, CAST(COUNT(*) AS BIGINT) AS count FROM rebuild_jobs
         WHERE state = '{QUEUED}' GROUP BY arch, priority ORDER BY arch, priority"
    )
}

/// [`ViewStore::campaign_progress`].
pub(super) const CAMPAIGN_PROGRESS: &str = "SELECT CAST(wave AS BIGINT) AS wave, arch, state, CAST(COUNT(*) AS BIGINT) AS count
     FROM campaign_items WHERE campaign_id = $1 GROUP BY wave, arch, state ORDER BY 1, 2, 3";

/// [`ViewStore::campaign_item_page`].
pub(super) fn campaign_item_page_sql() -> String {
    format!(
        "SELECT {} FROM campaign_items WHERE campaign_id = $1
         ORDER BY wave, suite, source, arch, id LIMIT $2 OFFSET $3",
        crate::rows::ITEM_COLUMNS
    )
}

/// [`ViewStore::index_builds`].
pub(super) const INDEX_BUILDS: &str = "SELECT DISTINCT bu.id AS id, bu.source AS source, bu.version AS version, bu.sha256 AS sha256
     FROM suite_binaries s JOIN binaries b ON b.id = s.binary_id JOIN builds bu ON bu.id = b.build_id
     WHERE s.suite = $1 AND b.architecture = $2";

/// A row of [`suite_builds_sql`] or [`suite_build_page_sql`].
pub(super) fn suite_build(r: &impl Get) -> Result<SuiteBuild, StoreError> {
    Ok(SuiteBuild {
        build_id: r.int("id")?,
        source: r.text("source")?,
        version: r.text("version")?,
        arch: r.text("host_arch")?,
        sha256: r.text("sha256")?,
        ingested_at: r.int("ingested_at")?,
        verified: r.int("verified")? != 0,
        parked: r.int("parked")? != 0,
        reproducible: count(r.int("reproducible")?),
        unreproducible: count(r.int("unreproducible")?),
        failed: count(r.int("failed")?),
        last_change: r.int("job_change")?.max(r.int("attempt_change")?),
    })
}

/// A row of [`suite_status_counts_sql`].
pub(super) fn count_row(r: &impl Get) -> Result<CountRow, StoreError> {
    Ok(CountRow {
        kind: r.int("kind")?,
        arch: r.text("arch")?,
        facts: StatusFacts {
            verified: r.int("verified")? != 0,
            parked: r.int("parked")? != 0,
            reproduced: r.int("reproduced")? != 0,
            differed: r.int("differed")? != 0,
            failed: r.int("failed")? != 0,
        },
        count: count(r.int("count")?),
    })
}

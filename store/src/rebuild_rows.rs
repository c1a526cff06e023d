//! Row → domain conversions for the rebuilder tables, shared by both backends so that lists,
//! states and priorities are read one way.

use std::str::FromStr;

use sqlx::{ColumnIndex, Decode, Row, Type};

use super::{SqlResult, StoreError, tokens};
use debcover_core::rebuild::corroborate::{AttemptCorroboration, Corroboration, verdict_from_name};
use debcover_core::rebuild::{ArchiveBinary, AttemptRecord, JobRecord, JobState, LeaseView, NodeCaps, NodeRecord, Priority};
use debcover_formats::corroborate::Finding;

/// `SELECT` of a job row as [`job`] reads it; `tags_agg` is the backend's aggregate of the
/// job's tags into one space-separated text (`group_concat(tag, ' ')` / `string_agg(tag, ' ')`).
pub fn job_select(tags_agg: &str) -> String {
    format!(
        "SELECT j.id, j.build_id, b.sha256, j.source, j.version, j.arch, j.backend, j.priority, j.origin, j.state,
                j.not_before, j.fence, o.name, n.name, j.lease_expires, j.failures, j.unreproducible, j.verified,
                j.parked_reason, j.queued_at,
                (SELECT {tags_agg} FROM rebuild_job_tags t WHERE t.job_id = j.id)
         FROM rebuild_jobs j JOIN builds b ON b.id = j.build_id
         LEFT JOIN rebuild_nodes n ON n.id = j.lease_node
         LEFT JOIN rebuild_operators o ON o.id = n.operator_id"
    )
}

/// `SELECT` of a node row as [`node`] reads it.
pub const NODE_SELECT: &str = "SELECT n.id, n.operator_id, o.name, n.name, n.created_at, n.revoked_at, n.public_key,
        n.arches, n.backends, n.tags, n.slots, n.registered_at, n.last_seen,
        (SELECT count(*) FROM rebuild_jobs j WHERE j.state = 'leased' AND j.lease_node = n.id), n.software
     FROM rebuild_nodes n JOIN rebuild_operators o ON o.id = n.operator_id";

/// `SELECT` of an attempt row as [`attempt`] reads it (artifacts are attached afterwards).
pub const ATTEMPT_SELECT: &str = "SELECT a.id, a.job_id, a.fence, o.name, n.name, a.started_at, a.finished_at,
        a.outcome, a.failure_code, a.message, a.buildinfo_sha256, a.log_sha256, a.diffoscope_sha256, a.differences,
        a.attestation_sha256
     FROM rebuild_attempts a JOIN rebuild_nodes n ON n.id = a.node_id
     JOIN rebuild_operators o ON o.id = a.operator_id";

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A job row.
pub fn job<'r, R>(r: &'r R) -> Result<JobRecord, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let priority: i64 = r.try_get(7).db()?;
    let state: String = r.try_get(9).db()?;
    let operator: Option<String> = r.try_get(12).db()?;
    let node: Option<String> = r.try_get(13).db()?;
    let tags: Option<String> = r.try_get(20).db()?;
    Ok(JobRecord {
        id: r.try_get(0).db()?,
        build_id: r.try_get(1).db()?,
        build_sha256: r.try_get(2).db()?,
        source: r.try_get(3).db()?,
        version: r.try_get(4).db()?,
        arch: r.try_get(5).db()?,
        backend: r.try_get(6).db()?,
        priority: Priority::from_rank(priority)
            .ok_or_else(|| StoreError::Corrupt(format!("rebuild_jobs.priority {priority}")))?,
        origin: r.try_get(8).db()?,
        state: JobState::from_str(&state).map_err(StoreError::Corrupt)?,
        not_before: r.try_get(10).db()?,
        fence: r.try_get(11).db()?,
        lease_node: operator.zip(node).map(|(o, n)| format!("{o}/{n}")),
        lease_expires: r.try_get(14).db()?,
        failures: u32_of(r.try_get(15).db()?),
        unreproducible: u32_of(r.try_get(16).db()?),
        verified: u32_of(r.try_get(17).db()?),
        parked_reason: r.try_get(18).db()?,
        queued_at: r.try_get(19).db()?,
        tags: tokens(tags.as_deref().unwrap_or_default()),
    })
}

/// A node row.
pub fn node<'r, R>(r: &'r R) -> Result<NodeRecord, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let arches: String = r.try_get(7).db()?;
    let backends: String = r.try_get(8).db()?;
    let tags: String = r.try_get(9).db()?;
    let slots: i64 = r.try_get(10).db()?;
    let active: i64 = r.try_get(13).db()?;
    Ok(NodeRecord {
        id: r.try_get(0).db()?,
        operator_id: r.try_get(1).db()?,
        operator: r.try_get(2).db()?,
        name: r.try_get(3).db()?,
        created_at: r.try_get(4).db()?,
        revoked_at: r.try_get(5).db()?,
        caps: NodeCaps {
            public_key: r.try_get(6).db()?,
            arches: tokens(&arches),
            backends: tokens(&backends),
            tags: tokens(&tags),
            slots: u32_of(slots).max(1),
            software: r.try_get(14).db()?,
        },
        registered_at: r.try_get(11).db()?,
        last_seen: r.try_get(12).db()?,
        active_leases: u64::try_from(active).unwrap_or(0),
    })
}

/// An attempt row and its id.
pub fn attempt<'r, R>(r: &'r R) -> Result<(i64, AttemptRecord), StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok((
        r.try_get(0).db()?,
        AttemptRecord {
            job_id: r.try_get(1).db()?,
            fence: r.try_get(2).db()?,
            operator: r.try_get(3).db()?,
            node: r.try_get(4).db()?,
            started_at: r.try_get(5).db()?,
            finished_at: r.try_get(6).db()?,
            outcome: r.try_get(7).db()?,
            failure_code: r.try_get(8).db()?,
            message: r.try_get(9).db()?,
            buildinfo_sha256: r.try_get(10).db()?,
            log_sha256: r.try_get(11).db()?,
            artifacts: Vec::new(),
            diffoscope_sha256: r.try_get(12).db()?,
            differences: lines(&r.try_get::<String, _>(13).db()?),
            attestation_sha256: r.try_get(14).db()?,
        },
    ))
}

/// The stored form of a list of differences: one per line (entries never hold a newline:
/// the service refuses them).
pub fn differences_column(d: &[String]) -> String {
    d.join("\n")
}

fn lines(s: &str) -> Vec<String> {
    s.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// How a backend aggregates rows into one text, for [`archive_column`] and [`lease_view_sql`]:
/// `(aggregate, unit separator, record separator)`. Records are joined by U+001E, fields by
/// U+001F (characters no package name, version, hash or pool path holds), so that a lease's
/// facts come in the one statement (one round trip) that reads the lease.
pub type Dialect = (&'static str, &'static str, &'static str);
/// SQLite's [`Dialect`].
pub const SQLITE: Dialect = ("group_concat", "char(31)", "char(30)");
/// PostgreSQL's [`Dialect`].
pub const POSTGRES: Dialect = ("string_agg", "chr(31)", "chr(30)");

fn agg((func, us, rs): Dialect, fields: &[&str]) -> String {
    format!("{func}({}, {rs})", fields.join(&format!(" || {us} || ")))
}

/// A scalar subquery: the shipped binaries the build `build` (an SQL expression) may have
/// produced, aggregated as [`archive_column`] reads them: same source and version, of its host
/// architecture or (when it built architecture-independent packages) `all`, and in some suite.
pub fn archive_subquery(d: Dialect, build: &str) -> String {
    format!(
        "(SELECT {} FROM builds ab JOIN binaries x ON x.source = ab.source AND x.version = ab.version
          WHERE ab.id = {build}
            AND (x.architecture = ab.host_arch
                 OR (x.architecture = 'all' AND (' ' || ab.architectures || ' ') LIKE '% all %'))
            AND EXISTS (SELECT 1 FROM suite_binaries s WHERE s.binary_id = x.id))",
        agg(d, &["x.package", "x.version", "x.architecture", "x.sha256", "x.filename"])
    )
}

/// A scalar subquery: the produced files of the build `build` (an SQL expression) with their
/// Checksums-Sha256, aggregated as [`files_column`] reads them.
pub fn files_subquery(d: Dialect, build: &str) -> String {
    format!(
        "(SELECT {} FROM build_files f WHERE f.build_id = {build})",
        agg(d, &["f.name", "coalesce(f.sha256, '')"])
    )
}

/// `(file name, SHA-256)` pairs, sorted, from the column of [`files_subquery`].
pub fn files_column(s: Option<&str>) -> Result<Vec<(String, Option<String>)>, StoreError> {
    let mut checksums = Vec::new();
    for f in records(s.unwrap_or_default()) {
        let [name, sha] = f[..] else {
            return Err(StoreError::Corrupt(format!("build file record with {} fields", f.len())));
        };
        checksums.push((name.to_owned(), (!sha.is_empty()).then(|| sha.to_owned())));
    }
    checksums.sort();
    Ok(checksums)
}

fn records(s: &str) -> impl Iterator<Item = Vec<&str>> {
    s.split('\u{1e}').filter(|r| !r.is_empty()).map(|r| r.split('\u{1f}').collect())
}

/// The shipped binaries of an [`archive_subquery`] column (NULL: none).
pub fn archive_column(s: Option<&str>) -> Result<Vec<ArchiveBinary>, StoreError> {
    let mut out = Vec::new();
    for r in records(s.unwrap_or_default()) {
        let [package, version, architecture, sha256, filename] = r[..] else {
            return Err(StoreError::Corrupt(format!("archive binary record with {} fields", r.len())));
        };
        out.push(ArchiveBinary {
            package: package.to_owned(),
            version: version.to_owned(),
            architecture: architecture.to_owned(),
            sha256: sha256.to_owned(),
            filename: filename.to_owned(),
        });
    }
    Ok(out)
}

/// The one statement of `lease_view`: `(build_id, state, fence, lease_node, source, version,
/// files, archive)` of job `param`, the files aggregated as `name US sha256`.
pub fn lease_view_sql(d: Dialect, param: &str) -> String {
    format!(
        "SELECT j.build_id, j.state, j.fence, j.lease_node, j.source, j.version, {}, {}
         FROM rebuild_jobs j WHERE j.id = {param}",
        files_subquery(d, "j.build_id"),
        archive_subquery(d, "j.build_id")
    )
}

/// The stored failure code and message of an outcome.
pub fn outcome_columns(o: &debcover_core::rebuild::AttemptOutcome) -> (Option<&'static str>, String) {
    use debcover_core::rebuild::AttemptOutcome;
    match o {
        AttemptOutcome::Failed { code, message } => (Some(code.as_str()), message.clone()),
        AttemptOutcome::Unreproducible { differing } => (None, format!("differing: {}", differing.join(" "))),
        AttemptOutcome::EnvironmentMismatch { differences } => {
            (None, format!("environment differs from the buildinfo in {} packages", differences.len()))
        }
        AttemptOutcome::Reproducible | AttemptOutcome::HandedBack => (None, String::new()),
    }
}

/// A [`LeaseView`] from the row of [`lease_view_sql`].
pub fn lease_view<'r, R>(r: &'r R) -> Result<LeaseView, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let state: String = r.try_get(1).db()?;
    let checksums = files_column(r.try_get::<Option<String>, _>(6).db()?.as_deref())?;
    let archive: Option<String> = r.try_get(7).db()?;
    Ok(LeaseView {
        build_id: r.try_get(0).db()?,
        state: JobState::from_str(&state).map_err(StoreError::Corrupt)?,
        fence: r.try_get(2).db()?,
        lease_node: r.try_get(3).db()?,
        checksums,
        archive: debcover_core::rebuild::archive_files(&archive_column(archive.as_deref())?),
        source: r.try_get(4).db()?,
        version: r.try_get(5).db()?,
    })
}

/// `SELECT` of a stored corroboration finding as [`corroboration`] reads it; the caller adds
/// the condition on `a.job_id` and `ORDER BY a.job_id, a.fence, f.seq`.
pub const FINDING_SELECT: &str = "SELECT a.job_id, a.fence, f.deb, f.binary_path, f.subject, f.embedded, f.declared, f.verdict
     FROM rebuild_findings f JOIN rebuild_attempts a ON a.id = f.attempt_id";

/// The `declared` column: one declaration per line.
pub fn declared_column(declared: &[String]) -> String {
    declared.join("\n")
}

/// An [`AttemptCorroboration`] from a row of [`FINDING_SELECT`].
pub fn corroboration<'r, R>(r: &'r R) -> Result<AttemptCorroboration, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let verdict: String = r.try_get(7).db()?;
    let declared: String = r.try_get(6).db()?;
    Ok(AttemptCorroboration {
        job_id: r.try_get(0).db()?,
        fence: r.try_get(1).db()?,
        corroboration: Corroboration {
            deb: r.try_get(2).db()?,
            finding: Finding {
                binary: r.try_get(3).db()?,
                subject: r.try_get(4).db()?,
                embedded: r.try_get(5).db()?,
                declared: lines(&declared),
                verdict: verdict_from_name(&verdict)
                    .ok_or_else(|| StoreError::Corrupt(format!("rebuild_findings.verdict {verdict:?}")))?,
            },
        },
    })
}

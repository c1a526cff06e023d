//! Rows ↔ domain values, shared by both backends: every row is read by column name (the
//! statements name their columns with `AS`), and lists, JSON columns, states and priorities are
//! read and written one way.

use std::collections::HashMap;
use std::str::FromStr;

use debcover_core::attestation::{KeyRole, PublishedKey};
use debcover_core::campaign::{CampaignRecord, Coverage, Evidence, ItemEvent, ItemRecord, ItemState, Mode, PlannedItem};
use debcover_core::model::{BuildRecord, PkgVer, ProducedFile, ShippedBinary};
use debcover_core::rebuild::corroborate::{AttemptCorroboration, Corroboration, verdict_from_name};
use debcover_core::rebuild::{
    ArchiveBinary, AttemptOutcome, AttemptRecord, JobFacts, JobRecord, JobState, LeaseView, NodeCaps, NodeRecord, Priority,
};
use debcover_formats::corroborate::Finding;

use crate::{StoreError, tokens};

/// Reading a column of a row by name; an error names the column.
pub(crate) trait Get {
    /// An integer column.
    fn int(&self, col: &str) -> Result<i64, StoreError>;
    /// A nullable integer column.
    fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError>;
    /// A text column.
    fn text(&self, col: &str) -> Result<String, StoreError>;
    /// A nullable text column.
    fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError>;
    /// A blob column.
    fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError>;
    /// A boolean column (PostgreSQL `BOOLEAN`, SQLite `INTEGER` 0 or 1).
    fn flag(&self, col: &str) -> Result<bool, StoreError>;
}

/// A column that cannot be read as what the schema says it holds.
fn column(col: &str, e: sqlx::Error) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {e}"))
}

macro_rules! impl_get {
    ($row:ty) => {
        impl Get for $row {
            fn int(&self, col: &str) -> Result<i64, StoreError> {
                sqlx::Row::try_get(self, col).map_err(|e| column(col, e))
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
                sqlx::Row::try_get(self, col).map_err(|e| column(col, e))
            }
            fn text(&self, col: &str) -> Result<String, StoreError> {
                sqlx::Row::try_get(self, col).map_err(|e| column(col, e))
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
                sqlx::Row::try_get(self, col).map_err(|e| column(col, e))
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>, StoreError> {
                sqlx::Row::try_get(self, col).map_err(|e| column(col, e))
            }
            fn flag(&self, col: &str) -> Result<bool, StoreError> {
                sqlx::Row::try_get(self, col).map_err(|e| column(col, e))
            }
        }
    };
}
impl_get!(sqlx::sqlite::SqliteRow);
impl_get!(sqlx::postgres::PgRow);

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Counts are never negative; a negative one is clamped to 0.
pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

// ---------------------------------------------------------------------------- access

fn role_of(text: &str) -> Result<debcover_core::access::Role, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(format!("unknown role {text:?}")))
}

/// An `api_tokens` row.
pub(crate) fn api_token<R: Get>(r: &R) -> Result<debcover_core::access::ApiToken, StoreError> {
    Ok(debcover_core::access::ApiToken {
        id: r.int("id")?,
        name: r.text("name")?,
        role: role_of(&r.text("role")?)?,
        created_at: r.int("created_at")?,
        last_used_at: r.opt_int("last_used_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

/// An `audit_log` row.
pub(crate) fn audit_entry<R: Get>(r: &R) -> Result<debcover_core::access::AuditEntry, StoreError> {
    Ok(debcover_core::access::AuditEntry {
        at: r.int("at")?,
        actor: r.text("actor")?,
        role: role_of(&r.text("role")?)?,
        action: r.text("action")?,
        subject: r.text("subject")?,
    })
}

// ---------------------------------------------------------------------------- builds

/// The columns of `builds` as [`build_record`] reads them.
pub const BUILD_COLUMNS: &str =
    "id, sha256, source, source_version, version, architectures, host_arch, build_date, build_origin, ibd_count, signed, origin, signer";

/// A `builds` row.
pub fn build_record(r: &impl Get) -> Result<BuildRecord, StoreError> {
    Ok(BuildRecord {
        id: r.int("id")?,
        sha256: r.text("sha256")?,
        source: r.text("source")?,
        source_version: r.text("source_version")?,
        version: r.text("version")?,
        architectures: tokens(&r.text("architectures")?),
        host_arch: r.text("host_arch")?,
        build_date: r.opt_text("build_date")?,
        build_origin: r.opt_text("build_origin")?,
        ibd_count: u32_of(r.int("ibd_count")?),
        signed: r.flag("signed")?,
        signer: r.opt_text("signer")?,
        origin: r.text("origin")?,
    })
}

/// A `pkgvers` row (`id, name, arch, version`).
pub fn pkgver(r: &impl Get) -> Result<PkgVer, StoreError> {
    Ok(PkgVer { id: r.int("id")?, name: r.text("name")?, arch: r.text("arch")?, version: r.text("version")? })
}

/// A `build_files` row (`build_id, name, size, sha256`), without shipping places.
pub fn produced_file(r: &impl Get) -> Result<ProducedFile, StoreError> {
    Ok(ProducedFile {
        build_id: r.int("build_id")?,
        name: r.text("name")?,
        size: count(r.int("size")?),
        sha256: r.opt_text("sha256")?,
        shipped_in: Vec::new(),
    })
}

// ---------------------------------------------------------------------------- campaigns

/// The columns of `campaigns` as [`campaign`] reads them.
pub const CAMPAIGN_COLUMNS: &str =
    "id, title, library, fixed_version, suites, arches, mode, advisories, max_depth, notes, created_at";

/// The columns of `campaign_items` as [`item`] reads them.
pub const ITEM_COLUMNS: &str = "id, campaign_id, state, reason, current_version, planned, updated_at, coverage";

/// A `campaigns` row.
pub fn campaign(r: &impl Get) -> Result<CampaignRecord, StoreError> {
    Ok(CampaignRecord {
        id: r.int("id")?,
        title: r.text("title")?,
        library: r.text("library")?,
        fixed_version: r.text("fixed_version")?,
        suites: tokens(&r.text("suites")?),
        arches: tokens(&r.text("arches")?),
        mode: Mode::from_str(&r.text("mode")?).map_err(StoreError::Corrupt)?,
        advisories: tokens(&r.text("advisories")?),
        max_depth: u32_of(r.int("max_depth")?),
        notes: from_json(&r.text("notes")?, "campaigns.notes")?,
        created_at: r.int("created_at")?,
    })
}

/// A `campaign_items` row (`coverage` '' for items saved before migration 0008: implied by the
/// state).
pub fn item(r: &impl Get) -> Result<ItemRecord, StoreError> {
    let id = r.int("id")?;
    let state = ItemState::from_str(&r.text("state")?).map_err(StoreError::Corrupt)?;
    let coverage = r.text("coverage")?;
    let coverage = if coverage.is_empty() {
        Coverage::of_state(state)
    } else {
        Coverage::from_str(&coverage).map_err(|e| StoreError::Corrupt(format!("campaign_items.coverage of item {id}: {e}")))?
    };
    Ok(ItemRecord {
        id,
        campaign_id: r.int("campaign_id")?,
        planned: from_json(&r.text("planned")?, "campaign_items.planned")?,
        state,
        coverage,
        reason: r.text("reason")?,
        current_version: r.text("current_version")?,
        updated_at: r.int("updated_at")?,
    })
}

/// The statement of [`event`]: a campaign's events (`$1`) with their items' suite, source and
/// architecture, oldest first.
pub const EVENT_SELECT: &str = "SELECT e.item_id AS item_id, i.suite AS suite, i.source AS source, i.arch AS arch,
        e.at AS at, e.from_state AS from_state, e.to_state AS to_state, e.version AS version, e.reason AS reason,
        e.evidence AS evidence
     FROM campaign_events e JOIN campaign_items i ON i.id = e.item_id
     WHERE i.campaign_id = $1 ORDER BY e.id";

/// A row of [`EVENT_SELECT`].
pub fn event(r: &impl Get) -> Result<ItemEvent, StoreError> {
    Ok(ItemEvent {
        item_id: r.int("item_id")?,
        item: format!("{}/{}", r.text("source")?, r.text("arch")?),
        suite: r.text("suite")?,
        at: r.int("at")?,
        from: r.opt_text("from_state")?.as_deref().map(ItemState::from_str).transpose().map_err(StoreError::Corrupt)?,
        to: ItemState::from_str(&r.text("to_state")?).map_err(StoreError::Corrupt)?,
        version: r.text("version")?,
        reason: r.text("reason")?,
        evidence: from_json(&r.text("evidence")?, "campaign_events.evidence")?,
    })
}

/// The columns of a shipped binary as [`shipped`] reads them (`x` binaries, `s` their suite
/// membership, `b` the linked build).
pub const SHIPPED_COLUMNS: &str = "x.id AS id, s.suite AS suite, s.arch AS index_arch, x.package AS package,
        x.version AS version, x.architecture AS architecture, x.source AS source,
        x.source_version AS source_version, x.sha256 AS sha256, x.build_id AS build_id, b.sha256 AS build_sha256,
        x.link AS link";

/// A shipped binary (declarations attached afterwards by [`attach_embeds`]).
pub fn shipped(r: &impl Get) -> Result<ShippedBinary, StoreError> {
    let build_id = r.opt_int("build_id")?;
    let build_sha = r.opt_text("build_sha256")?;
    let link = r.opt_text("link")?;
    Ok(ShippedBinary {
        id: r.int("id")?,
        suite: r.text("suite")?,
        index_arch: r.text("index_arch")?,
        package: r.text("package")?,
        version: r.text("version")?,
        architecture: r.text("architecture")?,
        source: r.text("source")?,
        source_version: r.text("source_version")?,
        sha256: r.text("sha256")?,
        build: build_id.zip(build_sha).map(|(id, sha)| (id, sha, link.as_deref() == Some("sha256"))),
        embeds: Vec::new(),
    })
}

/// Serialize a value for a JSON column.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode JSON column: {e}")))
}

/// The JSON text of an evidence list.
pub fn evidence_json(evidence: &[Evidence]) -> Result<String, StoreError> {
    to_json(&evidence)
}

/// The JSON text of a planned item.
pub fn planned_json(item: &PlannedItem) -> Result<String, StoreError> {
    to_json(item)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Attach `(binary_id, field, source, version)` declaration rows to their binaries.
pub fn attach_embeds(binaries: &mut [ShippedBinary], rows: Vec<(i64, String, String, String)>) {
    let mut by_id: HashMap<i64, Vec<(String, String, String)>> = HashMap::new();
    for (id, field, source, version) in rows {
        by_id.entry(id).or_default().push((field, source, version));
    }
    for b in binaries {
        if let Some(mut e) = by_id.get(&b.id).cloned() {
            e.sort();
            b.embeds = e;
        }
    }
}

/// A `binary_embeds` row: `(binary_id, field, source, version)`.
pub fn embed(r: &impl Get) -> Result<(i64, String, String, String), StoreError> {
    Ok((r.int("binary_id")?, r.text("field")?, r.text("source")?, r.text("version")?))
}

// ---------------------------------------------------------------------------- keys

/// A published key: a node's (`operator`, `node` set) or a coordinator's.
pub fn published_key(r: &impl Get, role: KeyRole) -> Result<PublishedKey, StoreError> {
    let (operator, node) = match role {
        KeyRole::Node => (r.text("operator")?, r.text("node")?),
        KeyRole::Coordinator => (String::new(), String::new()),
    };
    Ok(PublishedKey {
        role,
        operator,
        node,
        public_key: r.text("public_key")?,
        valid_from: r.int("valid_from")?,
        valid_until: r.opt_int("valid_until")?,
    })
}

// ---------------------------------------------------------------------------- rebuilds

/// The job states as stored, for the statements that test them. They are written into the SQL
/// text, not bound: the claim's partial indexes apply only to a statement whose condition
/// names their constant.
pub const QUEUED: &str = JobState::Queued.as_str();
/// See [`QUEUED`].
pub const LEASED: &str = JobState::Leased.as_str();
/// See [`QUEUED`].
pub const VERIFIED: &str = JobState::Verified.as_str();
/// See [`QUEUED`].
pub const PARKED: &str = JobState::Parked.as_str();

/// Attempt outcomes as stored, for the views that count them.
pub const REPRODUCIBLE: &str = AttemptOutcome::REPRODUCIBLE;
/// See [`REPRODUCIBLE`].
pub const UNREPRODUCIBLE: &str = AttemptOutcome::UNREPRODUCIBLE;
/// See [`REPRODUCIBLE`].
pub const FAILED: &str = AttemptOutcome::FAILED;
/// See [`REPRODUCIBLE`].
pub const ENVIRONMENT_MISMATCH: &str = AttemptOutcome::ENVIRONMENT_MISMATCH;
/// See [`REPRODUCIBLE`].
pub const HANDED_BACK: &str = AttemptOutcome::HANDED_BACK;

/// `SELECT` of a job row as [`job`] reads it; `tags_agg` is the backend's aggregate of the job's
/// tags into one space-separated text (`group_concat(tag, ' ')` / `string_agg(tag, ' ')`).
pub fn job_select(tags_agg: &str) -> String {
    format!(
        "SELECT j.id AS id, j.build_id AS build_id, b.sha256 AS build_sha256, j.source AS source,
                j.version AS version, j.arch AS arch, j.backend AS backend, j.priority AS priority,
                j.origin AS origin, j.state AS state, j.not_before AS not_before, j.fence AS fence,
                o.name AS lease_operator, n.name AS lease_node, j.lease_expires AS lease_expires,
                j.failures AS failures, j.unreproducible AS unreproducible, j.verified AS verified,
                j.parked_reason AS parked_reason, j.queued_at AS queued_at,
                (SELECT {tags_agg} FROM rebuild_job_tags t WHERE t.job_id = j.id) AS tags
         FROM rebuild_jobs j JOIN builds b ON b.id = j.build_id
         LEFT JOIN rebuild_nodes n ON n.id = j.lease_node
         LEFT JOIN rebuild_operators o ON o.id = n.operator_id"
    )
}

/// A row of [`job_select`].
pub fn job(r: &impl Get) -> Result<JobRecord, StoreError> {
    let priority = r.int("priority")?;
    let state = r.text("state")?;
    Ok(JobRecord {
        id: r.int("id")?,
        build_id: r.int("build_id")?,
        build_sha256: r.text("build_sha256")?,
        source: r.text("source")?,
        version: r.text("version")?,
        arch: r.text("arch")?,
        backend: r.text("backend")?,
        priority: Priority::from_rank(priority)
            .ok_or_else(|| StoreError::Corrupt(format!("rebuild_jobs.priority {priority}")))?,
        origin: r.text("origin")?,
        state: JobState::from_str(&state).map_err(StoreError::Corrupt)?,
        not_before: r.int("not_before")?,
        fence: r.int("fence")?,
        lease_node: r.opt_text("lease_operator")?.zip(r.opt_text("lease_node")?).map(|(o, n)| format!("{o}/{n}")),
        lease_expires: r.opt_int("lease_expires")?,
        failures: u32_of(r.int("failures")?),
        unreproducible: u32_of(r.int("unreproducible")?),
        verified: u32_of(r.int("verified")?),
        parked_reason: r.opt_text("parked_reason")?,
        queued_at: r.int("queued_at")?,
        tags: tokens(r.opt_text("tags")?.as_deref().unwrap_or_default()),
    })
}

/// `SELECT` of a node row as [`node`] reads it.
pub fn node_select() -> String {
    format!(
        "SELECT n.id AS id, n.operator_id AS operator_id, o.name AS operator, n.name AS name,
            n.created_at AS created_at, n.revoked_at AS revoked_at, n.public_key AS public_key,
            n.arches AS arches, n.backends AS backends, n.tags AS tags, n.slots AS slots,
            n.registered_at AS registered_at, n.last_seen AS last_seen,
            (SELECT count(*) FROM rebuild_jobs j WHERE j.state = '{leased}' AND j.lease_node = n.id) AS active_leases,
            n.software AS software, n.strikes AS strikes, n.quarantines AS quarantines,
            n.quarantined_until AS quarantined_until
         FROM rebuild_nodes n JOIN rebuild_operators o ON o.id = n.operator_id",
        leased = JobState::Leased.as_str()
    )
}

/// A row of [`node_select`].
pub fn node(r: &impl Get) -> Result<NodeRecord, StoreError> {
    Ok(NodeRecord {
        id: r.int("id")?,
        operator_id: r.int("operator_id")?,
        operator: r.text("operator")?,
        name: r.text("name")?,
        created_at: r.int("created_at")?,
        revoked_at: r.opt_int("revoked_at")?,
        caps: NodeCaps {
            public_key: r.text("public_key")?,
            arches: tokens(&r.text("arches")?),
            backends: tokens(&r.text("backends")?),
            tags: tokens(&r.text("tags")?),
            slots: u32_of(r.int("slots")?).max(1),
            software: r.text("software")?,
        },
        registered_at: r.opt_int("registered_at")?,
        last_seen: r.opt_int("last_seen")?,
        active_leases: count(r.int("active_leases")?),
        standing: debcover_core::rebuild::NodeStanding {
            strikes: u32_of(r.int("strikes")?),
            quarantines: u32_of(r.int("quarantines")?),
            quarantined_until: r.opt_int("quarantined_until")?,
        },
    })
}

/// `SELECT` of an attempt row as [`attempt`] reads it (artifacts are attached afterwards).
pub const ATTEMPT_SELECT: &str = "SELECT a.id AS id, a.job_id AS job_id, a.fence AS fence, o.name AS operator,
        n.name AS node, a.started_at AS started_at, a.finished_at AS finished_at, a.outcome AS outcome,
        a.failure_code AS failure_code, a.message AS message, a.buildinfo_sha256 AS buildinfo_sha256,
        a.log_sha256 AS log_sha256, a.diffoscope_sha256 AS diffoscope_sha256, a.differences AS differences,
        a.attestation_sha256 AS attestation_sha256
     FROM rebuild_attempts a JOIN rebuild_nodes n ON n.id = a.node_id
     JOIN rebuild_operators o ON o.id = a.operator_id";

/// An attempt row and its id.
pub fn attempt(r: &impl Get) -> Result<(i64, AttemptRecord), StoreError> {
    Ok((
        r.int("id")?,
        AttemptRecord {
            job_id: r.int("job_id")?,
            fence: r.int("fence")?,
            operator: r.text("operator")?,
            node: r.text("node")?,
            started_at: r.int("started_at")?,
            finished_at: r.opt_int("finished_at")?,
            outcome: r.opt_text("outcome")?,
            failure_code: r.opt_text("failure_code")?,
            message: r.text("message")?,
            buildinfo_sha256: r.opt_text("buildinfo_sha256")?,
            log_sha256: r.opt_text("log_sha256")?,
            artifacts: Vec::new(),
            diffoscope_sha256: r.opt_text("diffoscope_sha256")?,
            differences: lines(&r.text("differences")?),
            attestation_sha256: r.opt_text("attestation_sha256")?,
        },
    ))
}

/// A `rebuild_artifacts` row (`attempt_id, name, size, sha256`).
pub fn artifact(r: &impl Get) -> Result<(i64, debcover_core::rebuild::Artifact), StoreError> {
    Ok((
        r.int("attempt_id")?,
        debcover_core::rebuild::Artifact { name: r.text("name")?, size: count(r.int("size")?), sha256: r.text("sha256")? },
    ))
}

/// The stored form of a list of differences: one per line (entries never hold a newline: the
/// service refuses them).
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
pub type Aggregate = (&'static str, &'static str, &'static str);
/// SQLite's [`Aggregate`].
pub const SQLITE: Aggregate = ("group_concat", "char(31)", "char(30)");
/// PostgreSQL's [`Aggregate`].
pub const POSTGRES: Aggregate = ("string_agg", "chr(31)", "chr(30)");

fn agg((func, us, rs): Aggregate, fields: &[&str]) -> String {
    format!("{func}({}, {rs})", fields.join(&format!(" || {us} || ")))
}

/// A scalar subquery: the shipped binaries the build `build` (an SQL expression) may have
/// produced, aggregated as [`archive_column`] reads them: same source and version, of its host
/// architecture or (when it built architecture-independent packages) `all`, and in some suite.
pub fn archive_subquery(d: Aggregate, build: &str) -> String {
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
pub fn files_subquery(d: Aggregate, build: &str) -> String {
    format!("(SELECT {} FROM build_files f WHERE f.build_id = {build})", agg(d, &["f.name", "coalesce(f.sha256, '')"]))
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

/// The one statement of `lease_view`: the lease facts of job `param` as [`lease_view`] reads
/// them, the files aggregated as `name US sha256`.
pub fn lease_view_sql(d: Aggregate, param: &str) -> String {
    format!(
        "SELECT j.build_id AS build_id, j.state AS state, j.fence AS fence, j.lease_node AS lease_node,
                j.source AS source, j.version AS version, {} AS files, {} AS archive
         FROM rebuild_jobs j WHERE j.id = {param}",
        files_subquery(d, "j.build_id"),
        archive_subquery(d, "j.build_id")
    )
}

/// What an ended attempt's row records: its id (every leased job has an attempt for its
/// token), the failure code and the message (the transition's note, else the outcome's).
pub fn ended_attempt(
    facts: &LeaseFacts,
    next: &debcover_core::rebuild::JobAfter,
    report: &debcover_core::rebuild::AttemptReport,
) -> Result<(i64, Option<&'static str>, String), StoreError> {
    let attempt_id = facts.attempt_id.ok_or_else(|| {
        StoreError::Corrupt(format!("job {} is leased with token {} but has no attempt", facts.job_id, facts.job.fence))
    })?;
    let (code, message) = outcome_columns(&report.outcome);
    Ok((attempt_id, code, next.note.clone().unwrap_or(message)))
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
pub fn lease_view(r: &impl Get) -> Result<LeaseView, StoreError> {
    let state = r.text("state")?;
    Ok(LeaseView {
        build_id: r.int("build_id")?,
        state: JobState::from_str(&state).map_err(StoreError::Corrupt)?,
        fence: r.int("fence")?,
        lease_node: r.opt_int("lease_node")?,
        checksums: files_column(r.opt_text("files")?.as_deref())?,
        archive: debcover_core::rebuild::archive_files(&archive_column(r.opt_text("archive")?.as_deref())?),
        source: r.text("source")?,
        version: r.text("version")?,
    })
}

/// `SELECT` of a stored corroboration finding as [`corroboration`] reads it; the caller adds
/// the condition on `a.job_id` and `ORDER BY a.job_id, a.fence, f.seq`.
pub const FINDING_SELECT: &str = "SELECT a.job_id AS job_id, a.fence AS fence, f.deb AS deb, f.binary_path AS binary_path,
        f.subject AS subject, f.embedded AS embedded, f.declared AS declared, f.verdict AS verdict
     FROM rebuild_findings f JOIN rebuild_attempts a ON a.id = f.attempt_id";

/// The `declared` column: one declaration per line.
pub fn declared_column(declared: &[String]) -> String {
    declared.join("\n")
}

/// An [`AttemptCorroboration`] from a row of [`FINDING_SELECT`].
pub fn corroboration(r: &impl Get) -> Result<AttemptCorroboration, StoreError> {
    let verdict = r.text("verdict")?;
    Ok(AttemptCorroboration {
        job_id: r.int("job_id")?,
        fence: r.int("fence")?,
        corroboration: Corroboration {
            deb: r.text("deb")?,
            finding: Finding {
                binary: r.text("binary_path")?,
                subject: r.text("subject")?,
                embedded: r.text("embedded")?,
                declared: lines(&r.text("declared")?),
                verdict: verdict_from_name(&verdict)
                    .ok_or_else(|| StoreError::Corrupt(format!("rebuild_findings.verdict {verdict:?}")))?,
            },
        },
    })
}

/// The columns of a job's lease facts as [`lease_facts`] reads them (`j` the job, `a` its
/// current attempt): the lease (state, token, holder, expiry), the budgets used, the attempt,
/// whether its operator reproduced the job before with an accepted attestation, whether a
/// campaign has items for the job's source, and the job's id.
pub fn lease_facts_columns() -> String {
    format!(
        "SELECT j.state AS state, j.fence AS fence, j.lease_node AS holder,
        j.lease_expires AS expires, j.failures AS failures, j.unreproducible AS unreproducible,
        j.verified AS verified, a.id AS attempt_id,
        CAST(CASE WHEN EXISTS (SELECT 1 FROM rebuild_attempts p
                WHERE p.job_id = j.id AND p.operator_id = a.operator_id AND p.outcome = '{REPRODUCIBLE}'
                  AND p.attestation_sha256 IS NOT NULL) THEN 1 ELSE 0 END AS BIGINT) AS already,
        CAST(CASE WHEN EXISTS (SELECT 1 FROM campaign_items c WHERE c.source = j.source) THEN 1 ELSE 0 END AS BIGINT)
            AS campaign_items,
        (SELECT count(*) FROM rebuild_attempts f
            WHERE f.job_id = j.id AND f.operator_id = a.operator_id AND f.charged = 'job') AS operator_failures,
        (SELECT n.strikes FROM rebuild_nodes n WHERE n.id = a.node_id) AS node_strikes,
        j.id AS job_id"
    )
}

/// What ending an attempt needs to know about its job.
#[derive(Debug, Clone)]
pub struct LeaseFacts {
    /// The job's id.
    pub job_id: i64,
    /// The job as its transitions see it.
    pub job: JobFacts,
    /// The current attempt (every leased job has one for its token).
    pub attempt_id: Option<i64>,
    /// The attempt's operator reproduced the job before, with an accepted attestation.
    pub already: bool,
    /// A campaign has items for the job's source.
    pub campaign_items: bool,
    /// The attempt's node's strikes (failures charged to it in a row).
    pub node_strikes: u32,
}

/// A row of [`lease_facts_columns`].
pub fn lease_facts(r: &impl Get) -> Result<LeaseFacts, StoreError> {
    let state = r.text("state")?;
    Ok(LeaseFacts {
        job_id: r.int("job_id")?,
        job: JobFacts {
            state: JobState::from_str(&state).map_err(StoreError::Corrupt)?,
            fence: r.int("fence")?,
            holder: r.opt_int("holder")?,
            expires: r.opt_int("expires")?,
            failures: u32_of(r.int("failures")?),
            unreproducible: u32_of(r.int("unreproducible")?),
            verified: u32_of(r.int("verified")?),
            operator_failures: u32_of(r.int("operator_failures")?),
        },
        attempt_id: r.opt_int("attempt_id")?,
        already: r.int("already")? != 0,
        campaign_items: r.int("campaign_items")? != 0,
        node_strikes: u32_of(r.opt_int("node_strikes")?.unwrap_or(0)),
    })
}

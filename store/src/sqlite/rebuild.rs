//! [`RebuildStore`] for SQLite. Every write is one `BEGIN IMMEDIATE` transaction on the single
//! writer connection, so claims are serialised: two claims can never lease the same job, even
//! from two coordinators on one file.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::{IN_CHUNK, SqliteStore};
use crate::rows::{self, ATTEMPT_SELECT, Get, LEASED, LeaseFacts, QUEUED, REPRODUCIBLE, UNREPRODUCIBLE, to_json};
use crate::{SqlResult, StoreError, unzstd};
use debcover_core::rebuild::corroborate::{AttemptCorroboration, verdict_name};
use debcover_core::rebuild::{
    Attestation, AttemptOutcome, AttemptRecord, AttemptReport, BuildTarget, Fenced, Finished, JobAfter,
    JobEvent, JobFacts, JobFilter, JobRecord, JobState, Lease, NodeRecord, Policy, Refusal,
};

/// Artifact rows per INSERT statement.
const ARTIFACT_ROWS: usize = 1000;

/// The lease facts of one job ([`rows::lease_facts_columns`]).
static LEASE_FACTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} FROM rebuild_jobs j LEFT JOIN rebuild_attempts a ON a.job_id = j.id AND a.fence = j.fence WHERE j.id = ?",
        rows::lease_facts_columns()
    )
});

/// The facts of the jobs in a JSON array of ids (one bound parameter: one prepared statement
/// for every batch size; `CROSS JOIN` keeps the ids as the outer loop).
static LEASE_FACTS_OF: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} FROM json_each(?) k CROSS JOIN rebuild_jobs j ON j.id = k.value
         LEFT JOIN rebuild_attempts a ON a.job_id = j.id AND a.fence = j.fence",
        rows::lease_facts_columns()
    )
});

/// The facts of every job the batch reports on, read in one statement before its first
/// operation (one round trip instead of one per result). Keyed by job id; a job unknown to the
/// store has no entry.
async fn lease_facts_of(tx: &mut SqliteConnection, batch: &[(Work, Reply)]) -> Result<HashMap<i64, LeaseFacts>, StoreError> {
    let mut ids: Vec<i64> = batch
        .iter()
        .filter_map(|(w, _)| match w {
            Work::Finish { job_id, .. } => Some(*job_id),
            Work::Claim { .. } => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut facts = HashMap::with_capacity(ids.len());
    if !ids.is_empty() {
        for r in sqlx::query(LEASE_FACTS_OF.as_str()).bind(to_json(&ids)?).fetch_all(&mut *tx).await.db()? {
            let f = rows::lease_facts(&r)?;
            facts.insert(f.job_id, f);
        }
    }
    Ok(facts)
}

impl SqliteStore {
    async fn lease_facts(tx: &mut SqliteConnection, job_id: i64) -> Result<Option<LeaseFacts>, StoreError> {
        sqlx::query(LEASE_FACTS.as_str()).bind(job_id).fetch_optional(&mut *tx).await.db()?.as_ref().map(rows::lease_facts).transpose()
    }

    /// End one attempt and move its job to `next` (decided by `Policy::transition` on `facts`),
    /// inside `tx`.
    async fn end_attempt(
        tx: &mut SqliteConnection,
        facts: &LeaseFacts,
        next: &JobAfter,
        report: &AttemptReport,
        now: i64,
    ) -> Result<JobState, StoreError> {
        let job_id = facts.job_id;
        let (attempt_id, code, message) = rows::ended_attempt(facts, next, report)?;
        // The job, the attempt, its attestation and its artifacts in one multi-statement query: one
        // round trip to SQLite's thread instead of three or more (each statement would be a
        // hand-off between a tokio worker and the connection's thread; at thousands of results a
        // second those hand-offs were a third of the coordinator's CPU). Anonymous `?` parameters
        // only: sqlx binds them across the statements in order.
        let mut sql = String::from(
            "UPDATE rebuild_jobs SET state = ?, not_before = ?, failures = ?, unreproducible = ?, verified = ?,
                 parked_reason = ?, lease_node = NULL, lease_expires = NULL, updated_at = ?
             WHERE id = ?;
             UPDATE rebuild_attempts SET finished_at = ?, outcome = ?, failure_code = ?, message = ?,
                 buildinfo_sha256 = ?, log_sha256 = ?, diffoscope_sha256 = ?, differences = ?,
                 attestation_sha256 = ?
             WHERE id = ?;",
        );
        if report.attestation.is_some() {
            // Keyed by content: a row already there holds these very bytes.
            sql.push_str("INSERT INTO attestations (sha256, body) VALUES (?, ?) ON CONFLICT DO NOTHING;");
        }
        for chunk in report.artifacts.chunks(ARTIFACT_ROWS) {
            sql.push_str("INSERT INTO rebuild_artifacts (attempt_id, name, size, sha256) VALUES ");
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 { "(?, ?, ?, ?)" } else { ", (?, ?, ?, ?)" });
            }
            sql.push_str(" ON CONFLICT DO NOTHING;");
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(next.state.as_str())
            .bind(next.not_before)
            .bind(i64::from(next.failures))
            .bind(i64::from(next.unreproducible))
            .bind(i64::from(next.verified))
            .bind(&next.parked_reason)
            .bind(now)
            .bind(job_id)
            .bind(now)
            .bind(report.outcome.as_str())
            .bind(code)
            .bind(message)
            .bind(&report.buildinfo_sha256)
            .bind(&report.log_sha256)
            .bind(&report.diffoscope_sha256)
            .bind(rows::differences_column(report.outcome.differences()))
            .bind(report.attestation.as_ref().map(Attestation::sha256))
            .bind(attempt_id);
        if let Some(a) = &report.attestation {
            q = q.bind(a.sha256()).bind(a.body());
        }
        for f in &report.artifacts {
            q = q.bind(attempt_id).bind(&f.name).bind(i64::try_from(f.size).unwrap_or(i64::MAX)).bind(&f.sha256);
        }
        // Keep the prepared statements of the usual shapes (a few artifacts), not of every size.
        q.persistent(report.artifacts.len() <= 32).execute(&mut *tx).await.db()?;
        let numbered: Vec<(i64, &debcover_core::rebuild::corroborate::Corroboration)> =
            report.corroboration.iter().enumerate().map(|(i, c)| (i64::try_from(i).unwrap_or(i64::MAX), c)).collect();
        for chunk in numbered.chunks(500) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO rebuild_findings (attempt_id, seq, deb, binary_path, subject, embedded, declared, verdict) ",
            );
            qb.push_values(chunk, |mut b, (seq, c)| {
                b.push_bind(attempt_id)
                    .push_bind(*seq)
                    .push_bind(&c.deb)
                    .push_bind(&c.finding.binary)
                    .push_bind(&c.finding.subject)
                    .push_bind(&c.finding.embedded)
                    .push_bind(rows::declared_column(&c.finding.declared))
                    .push_bind(verdict_name(c.finding.verdict));
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *tx).await.db()?;
        }
        Self::charge(tx, facts, attempt_id, next, now).await?;
        Ok(next.state)
    }

    /// Nothing to do: SQLite's single writer already runs enqueues one at a time.
    async fn serialise_enqueue(_tx: &mut SqliteConnection) -> Result<(), StoreError> {
        Ok(())
    }

    /// A new job's tags.
    async fn insert_job_tags(tx: &mut SqliteConnection, job_id: i64, tags: &[String]) -> Result<(), StoreError> {
        for t in tags {
            sqlx::query("INSERT INTO rebuild_job_tags (job_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(job_id)
                .bind(t)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        Ok(())
    }
}

crate::shared::rebuild_store!(SqliteStore, crate::rows::SQLITE, {

    async fn shipped_builds(&self, suite: &str, arches: &[String]) -> Result<Vec<BuildTarget>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT DISTINCT b.id AS id, b.source AS source, b.version AS version, b.host_arch AS host_arch
             FROM suite_binaries s JOIN binaries x ON x.id = s.binary_id JOIN builds b ON b.id = x.build_id
             WHERE s.suite = ",
        );
        qb.push_bind(suite);
        if !arches.is_empty() {
            qb.push(" AND b.host_arch IN ").push_tuples(arches, |mut b, a| {
                b.push_bind(a);
            });
        }
        qb.push(" ORDER BY b.id");
        Ok(qb
            .build()
            .fetch_all(&self.reader)
            .await.db()?
            .iter()
            .map(|r| Ok(BuildTarget { build_id: r.int("id")?, source: r.text("source")?, version: r.text("version")?, arch: r.text("host_arch")? }))
            .collect::<Result<_, StoreError>>()?)
    }


    async fn claim(&self, node: &NodeRecord, now: i64, policy: &Policy) -> Result<Option<Lease>, StoreError> {
        let leased = policy.transition(&JobFacts::new(), JobEvent::Claim { node_id: node.id, now }).map_err(|r| StoreError::Corrupt(r.to_string()))?;
        // A node does not get back a job it failed within the first retry delay.
        let failed_since = now - i64::try_from(policy.retry_delay(1).as_secs()).unwrap_or(i64::MAX / 2);
        let work = Work::Claim { node: node.clone(), now, expires: leased.expires.unwrap_or(now), failed_since };
        let Done::Claim(claimed) = self.batch.run(&self.writer, work).await? else {
            return Err(StoreError::Corrupt("claim answered with another operation's result".into()));
        };
        let Some(c) = claimed else { return Ok(None) };
        let t = c.text.ok_or_else(|| StoreError::Corrupt(format!("leased build {} has no stored text", c.build_id)))?;
        Ok(Some(Lease {
            source_version: t.source_version,
            dsc: t.directory.map(|directory| debcover_core::rebuild::SourceDsc { directory, sha256: t.dsc_sha256 }),
            originals: debcover_core::rebuild::archive_files(&rows::archive_column(t.archive.as_deref())?),
            checksums: rows::files_column(t.files.as_deref())?,
            job_id: c.job_id,
            fence: c.fence,
            expires_at: c.expires,
            build_id: c.build_id,
            build_sha256: t.sha256,
            source: c.source,
            version: c.version,
            arch: c.arch,
            backend: c.backend,
            buildinfo: unzstd(&t.raw_zstd)?,
        }))
    }


    async fn finish_report(
        &self,
        node_id: i64,
        job_id: i64,
        fence: i64,
        report: &AttemptReport,
        now: i64,
        policy: &Policy,
    ) -> Result<Fenced<Finished>, StoreError> {
        let work = Work::Finish { node_id, job_id, fence, report: report.clone(), now, policy: policy.clone() };
        match self.batch.run(&self.writer, work).await? {
            Done::Finish(f) => Ok(f),
            Done::Claim(_) => Err(StoreError::Corrupt("finish answered with another operation's result".into())),
        }
    }

    async fn reclaim_expired(&self, now: i64, policy: &Policy) -> Result<u64, StoreError> {
        // A cheap read first: the common case (nothing expired) takes no write lock.
        let sql = crate::shared::sql!(SqliteStore, format!("SELECT id FROM rebuild_jobs WHERE state = '{LEASED}' AND lease_expires < $1"));
        let any: Option<i64> = sqlx::query_scalar(sql).bind(now).fetch_optional(&self.reader).await.db()?;
        if any.is_none() {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let expired: Vec<i64> = sqlx::query_scalar(sql).bind(now).fetch_all(&mut *tx).await.db()?;
        let mut reclaimed = 0;
        for job_id in expired {
            if let Some(facts) = SqliteStore::lease_facts(&mut tx, job_id).await?
                && let Ok(next) = policy.transition(&facts.job, JobEvent::Expire { now })
            {
                let lost = AttemptReport::bare(next.ended.clone().unwrap_or(AttemptOutcome::HandedBack));
                SqliteStore::end_attempt(&mut tx, &facts, &next, &lost, now).await?;
                reclaimed += 1;
            }
        }
        tx.commit().await.db()?;
        Ok(reclaimed)
    }

    async fn jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(rows::job_select("group_concat(tag, ' ')"));
        qb.push(" WHERE 1 = 1");
        if !filter.states.is_empty() {
            qb.push(" AND j.state IN ").push_tuples(&filter.states, |mut b, s| {
                b.push_bind(s.as_str());
            });
        }
        if let Some(s) = &filter.source {
            qb.push(" AND j.source = ").push_bind(s);
        }
        if let Some(v) = &filter.version {
            qb.push(" AND (j.version = ").push_bind(v).push(" OR b.source_version = ").push_bind(v).push(")");
        }
        if let Some(id) = filter.id {
            qb.push(" AND j.id = ").push_bind(id);
        }
        qb.push(" ORDER BY j.priority, j.id");
        if filter.limit > 0 {
            qb.push(" LIMIT ").push_bind(i64::from(filter.limit));
        }
        qb.build().fetch_all(&self.reader).await.db()?.iter().map(rows::job).collect()
    }

    async fn attempts(&self, job_ids: &[i64]) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut out: Vec<(i64, AttemptRecord)> = Vec::new();
        for chunk in job_ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(ATTEMPT_SELECT);
            qb.push(" WHERE a.job_id IN ").push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            qb.push(" ORDER BY a.job_id, a.fence");
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                out.push(rows::attempt(&r)?);
            }
        }
        let ids: Vec<i64> = out.iter().map(|(id, _)| *id).collect();
        let mut arts: HashMap<i64, Vec<debcover_core::rebuild::Artifact>> = Default::default();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("SELECT attempt_id, name, size, sha256 FROM rebuild_artifacts WHERE attempt_id IN ");
            qb.push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            qb.push(" ORDER BY attempt_id, name");
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                let (attempt, artifact) = rows::artifact(&r)?;
                arts.entry(attempt).or_default().push(artifact);
            }
        }
        Ok(out
            .into_iter()
            .map(|(id, mut a)| {
                a.artifacts = arts.remove(&id).unwrap_or_default();
                a
            })
            .collect())
    }

    async fn corroboration(&self, job_ids: &[i64]) -> Result<Vec<AttemptCorroboration>, StoreError> {
        let mut out = Vec::new();
        for chunk in job_ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(rows::FINDING_SELECT);
            qb.push(" WHERE a.job_id IN ").push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            qb.push(" ORDER BY a.job_id, a.fence, f.seq");
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                out.push(rows::corroboration(&r)?);
            }
        }
        Ok(out)
    }
});

// ---------------------------------------------------------------- group commit

/// A claimed job as the write transaction returns it.
struct Claimed {
    job_id: i64,
    fence: i64,
    expires: i64,
    build_id: i64,
    source: String,
    version: String,
    arch: String,
    backend: String,
    /// Filled by the batch's one read of the claimed builds ([`read_claimed`]).
    text: Option<ClaimedText>,
}

/// What a lease carries about its build, as stored (decompressed by the caller, outside the
/// writer).
struct ClaimedText {
    sha256: String,
    raw_zstd: Vec<u8>,
    source_version: String,
    directory: Option<String>,
    dsc_sha256: Option<String>,
    /// [`rows::archive_subquery`]'s column.
    archive: Option<String>,
    /// [`rows::files_subquery`]'s column.
    files: Option<String>,
}

/// A scheduler write waiting for the writer.
enum Work {
    Claim { node: NodeRecord, now: i64, expires: i64, failed_since: i64 },
    Finish { node_id: i64, job_id: i64, fence: i64, report: AttemptReport, now: i64, policy: Policy },
}

/// Its result.
enum Done {
    Claim(Option<Claimed>),
    Finish(Fenced<Finished>),
}

type Reply = tokio::sync::oneshot::Sender<Result<Done, String>>;

/// Group commit for the scheduler's hot writes (claims and results). SQLite has one writer, and
/// every statement is a round trip to its thread, so under many nodes the writer's latency is
/// the throughput. Concurrent claims and results are queued; whoever gets the writer runs
/// everything queued so far in one `BEGIN IMMEDIATE` transaction, in arrival order (each
/// operation sees the ones before it), reads the texts of every build it leased in one
/// statement, and answers each after the commit. A failed transaction fails every operation in
/// it; none is half-applied.
#[derive(Default)]
pub(super) struct Batcher {
    pending: std::sync::Mutex<Vec<(Work, Reply)>>,
    leader: tokio::sync::Mutex<()>,
}

/// Most operations per transaction.
const MAX_BATCH: usize = 256;

impl Batcher {
    async fn run(&self, writer: &sqlx::SqlitePool, work: Work) -> Result<Done, StoreError> {
        use tokio::sync::oneshot::error::TryRecvError;
        let poisoned = || StoreError::Corrupt("scheduler queue poisoned".into());
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.pending.lock().map_err(|_| poisoned())?.push((work, tx));
        loop {
            {
                // Batches run one at a time: once we hold this, every earlier batch (possibly
                // holding our operation) has answered.
                let _leader = self.leader.lock().await;
                if let Ok(r) = rx.try_recv() {
                    return r.map_err(|e| StoreError::Database(Box::new(sqlx::Error::Protocol(e))));
                }
                let batch: Vec<(Work, Reply)> = {
                    let mut p = self.pending.lock().map_err(|_| poisoned())?;
                    let n = p.len().min(MAX_BATCH);
                    p.drain(..n).collect()
                };
                if !batch.is_empty() {
                    // Spawned: the batch completes (and answers everyone in it) even if this
                    // caller goes away.
                    let _ = tokio::spawn(run_batch(writer.clone(), batch)).await;
                }
            }
            match rx.try_recv() {
                Ok(r) => {
                    return r.map_err(|e| StoreError::Database(Box::new(sqlx::Error::Protocol(e))));
                }
                // Not in this batch (more than MAX_BATCH were ahead of it): run the next one.
                Err(TryRecvError::Empty) => continue,
                Err(TryRecvError::Closed) => {
                    return Err(StoreError::Database(Box::new(sqlx::Error::Protocol(
                        "scheduler write transaction failed (see the coordinator log)".into(),
                    ))));
                }
            }
        }
    }
}

async fn run_batch(writer: sqlx::SqlitePool, batch: Vec<(Work, Reply)>) {
    let started = std::time::Instant::now();
    let ops = batch.len();
    let mut done = Vec::with_capacity(batch.len());
    let result: Result<(), StoreError> = async {
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.db()?;
        let mut prefetched = lease_facts_of(&mut tx, &batch).await?;
        // Jobs an earlier operation of this batch leased or reported on: their prefetched facts
        // are stale, so they are read again (each operation sees the ones before it).
        let mut touched: HashSet<i64> = HashSet::new();
        for (work, reply) in batch {
            let d = match work {
                Work::Claim { node, now, expires, failed_since } => {
                    let claimed = claim_in(&mut tx, &node, now, expires, failed_since).await?;
                    if let Some(c) = &claimed {
                        touched.insert(c.job_id);
                    }
                    Done::Claim(claimed)
                }
                Work::Finish { node_id, job_id, fence, report, now, policy } => {
                    let current = if touched.insert(job_id) {
                        prefetched.remove(&job_id)
                    } else {
                        SqliteStore::lease_facts(&mut tx, job_id).await?
                    };
                    let decided = match current {
                        None => Err(Refusal::NoSuchJob),
                        Some(f) => policy
                            .transition(&f.job, JobEvent::Report { node_id, fence, now, report: &report, operator_already_verified: f.already })
                            .map(|next| (f, next)),
                    };
                    Done::Finish(match decided {
                        Ok((f, next)) => Ok(Finished {
                            state: SqliteStore::end_attempt(&mut tx, &f, &next, &report, now).await?,
                            campaign_items: f.campaign_items,
                        }),
                        Err(r) => Err(r),
                    })
                }
            };
            done.push((reply, d));
        }
        read_claimed(&mut tx, &mut done).await?;
        tx.commit().await.db()?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            tracing::debug!(ops, elapsed_us = started.elapsed().as_micros() as u64, "scheduler batch committed");
            for (reply, d) in done {
                let _ = reply.send(Ok(d));
            }
        }
        Err(e) => {
            let msg = format!("scheduler write transaction failed: {e}");
            tracing::error!(error = %msg);
            for (reply, _) in done {
                let _ = reply.send(Err(msg.clone()));
            }
        }
    }
}

/// Read what every lease of the batch carries about its build (text, pool directory, .dsc,
/// the archive's copies, the original Checksums-Sha256), in one statement, on the writer
/// inside the batch's transaction: its page cache is warm, where a reader connection's cache is
/// dropped after every write.
async fn read_claimed(tx: &mut SqliteConnection, done: &mut [(Reply, Done)]) -> Result<(), StoreError> {
    let mut wanted: Vec<i64> = done
        .iter()
        .filter_map(|(_, d)| match d {
            Done::Claim(Some(c)) => Some(c.build_id),
            _ => None,
        })
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut texts: HashMap<i64, ClaimedText> = HashMap::with_capacity(wanted.len());
    if !wanted.is_empty() {
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let sql = SQL.get_or_init(|| {
            // The ids as one JSON array: one prepared statement for every batch size.
            format!(
                "SELECT b.id AS id, b.sha256 AS sha256, t.raw_zstd AS raw_zstd, b.source_version AS source_version,
                        s.directory AS directory, s.dsc_sha256 AS dsc_sha256, {} AS archive, {} AS files
                 FROM json_each(?) k CROSS JOIN builds b ON b.id = k.value
                 JOIN build_texts t ON t.build_id = b.id
                 LEFT JOIN sources s ON s.package = b.source AND s.version = b.source_version",
                rows::archive_subquery(rows::SQLITE, "b.id"),
                rows::files_subquery(rows::SQLITE, "b.id")
            )
        });
        for r in sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(to_json(&wanted)?).fetch_all(&mut *tx).await.db()? {
            texts.insert(
                r.int("id")?,
                ClaimedText {
                    sha256: r.text("sha256")?,
                    raw_zstd: r.bytes("raw_zstd")?,
                    source_version: r.text("source_version")?,
                    directory: r.opt_text("directory")?,
                    dsc_sha256: r.opt_text("dsc_sha256")?,
                    archive: r.opt_text("archive")?,
                    files: r.opt_text("files")?,
                },
            );
        }
    }
    for (_, d) in done.iter_mut() {
        if let Done::Claim(Some(c)) = d {
            // One job per build while queued or leased: no two leases of a batch share a text.
            c.text = texts.remove(&c.build_id);
        }
    }
    Ok(())
}

/// Lease the first job `node` may take, inside `tx`: one UPDATE choosing the row by subquery,
/// and the attempt row, sent together as one multi-statement query (one round trip).
async fn claim_in(
    tx: &mut SqliteConnection,
    node: &NodeRecord,
    now: i64,
    expires: i64,
    failed_since: i64,
) -> Result<Option<Claimed>, StoreError> {
    let arches = node.caps.claimable_arches();
    let mut qb = QueryBuilder::<Sqlite>::new(format!("UPDATE rebuild_jobs SET state = '{LEASED}', fence = fence + 1, lease_node = "));
    qb.push_bind(node.id);
    qb.push(", lease_expires = ").push_bind(expires);
    qb.push(", updated_at = ").push_bind(now);
    qb.push(format!(" WHERE id = (SELECT j.id FROM rebuild_jobs j WHERE j.state = '{QUEUED}' AND j.not_before <= "));
    qb.push_bind(now);
    // The node's credential is still valid in this transaction: a revoke committed before it
    // (the one writer serialises them) leaves nothing to claim, even for a claim that was
    // already waiting when the revoke came. An uncorrelated subquery: evaluated once.
    // Not quarantined either (repeated infrastructure failures).
    qb.push(" AND EXISTS (SELECT 1 FROM rebuild_nodes me WHERE me.revoked_at IS NULL AND me.id = ");
    qb.push_bind(node.id);
    qb.push(" AND (me.quarantined_until IS NULL OR me.quarantined_until <= ");
    qb.push_bind(now);
    qb.push("))");
    // Not a job this node failed lately: another node retries it first.
    qb.push(" AND NOT EXISTS (SELECT 1 FROM rebuild_attempts f WHERE f.job_id = j.id AND f.node_id = ");
    qb.push_bind(node.id);
    qb.push(format!(" AND f.outcome IN ('{}', '{}') AND f.finished_at > ", rows::FAILED, rows::ENVIRONMENT_MISMATCH));
    qb.push_bind(failed_since);
    qb.push(")");
    // The node's free slots (an uncorrelated subquery: evaluated once).
    qb.push(format!(" AND (SELECT count(*) FROM rebuild_jobs h WHERE h.state = '{LEASED}' AND h.lease_node = "));
    qb.push_bind(node.id);
    qb.push(") < ");
    qb.push_bind(i64::from(node.caps.slots.max(1)));
    qb.push(" AND j.arch IN ").push_tuples(&arches, |mut b, a| {
        b.push_bind(a);
    });
    qb.push(" AND (j.backend = ''");
    if !node.caps.backends.is_empty() {
        qb.push(" OR j.backend IN ").push_tuples(&node.caps.backends, |mut b, a| {
            b.push_bind(a);
        });
    }
    qb.push(") AND NOT EXISTS (SELECT 1 FROM rebuild_job_tags t WHERE t.job_id = j.id");
    if !node.caps.tags.is_empty() {
        qb.push(" AND t.tag NOT IN ").push_tuples(&node.caps.tags, |mut b, a| {
            b.push_bind(a);
        });
    }
    qb.push(") AND NOT EXISTS (SELECT 1 FROM rebuild_attempts a WHERE a.job_id = j.id AND a.operator_id = ");
    qb.push_bind(node.operator_id);
    qb.push(" AND (a.node_id <> ");
    qb.push_bind(node.id);
    qb.push(format!(" OR a.outcome IN ('{REPRODUCIBLE}', '{UNREPRODUCIBLE}'))) ORDER BY j.priority, j.id LIMIT 1)"));
    qb.push(" RETURNING id, fence, build_id, source, version, arch, backend;");
    // The attempt row of the lease just taken: every leased job has an attempt for its current
    // token, so the node's only lease without one is the job the UPDATE chose (none when it
    // chose none).
    qb.push(" INSERT INTO rebuild_attempts (job_id, fence, node_id, operator_id, started_at) SELECT j.id, j.fence, ");
    qb.push_bind(node.id);
    qb.push(", ").push_bind(node.operator_id);
    qb.push(", ").push_bind(now);
    qb.push(format!(" FROM rebuild_jobs j WHERE j.state = '{LEASED}' AND j.lease_node = "));
    qb.push_bind(node.id);
    qb.push(" AND NOT EXISTS (SELECT 1 FROM rebuild_attempts a WHERE a.job_id = j.id AND a.fence = j.fence)");
    // fetch_all, not fetch_optional: a row limit would stop before the INSERT runs.
    let rows = qb.build().fetch_all(&mut *tx).await.db()?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(Claimed {
        job_id: r.int("id")?,
        fence: r.int("fence")?,
        expires,
        build_id: r.int("build_id")?,
        source: r.text("source")?,
        version: r.text("version")?,
        arch: r.text("arch")?,
        backend: r.text("backend")?,
        text: None,
    }))
}

crate::shared::charge_fn!(SqliteStore, SqliteConnection);

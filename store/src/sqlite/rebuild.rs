//! [`RebuildStore`] for SQLite. Every write is one `BEGIN IMMEDIATE` transaction on the single
//! writer connection, so claims are serialised: two claims can never lease the same job, even
//! from two coordinators on one file.

use std::collections::{HashMap, HashSet};

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{IN_CHUNK, SqliteStore};
use debcover_core::rebuild::{
    Attestation, AttemptOutcome, AttemptRecord, AttemptReport, BuildTarget, EnqueueSummary, Fenced, Finished, JobFilter,
    JobRecord, JobState, Lease, LeaseView, NewJob, NodeCaps, NodeRecord, Policy, QueueCounts, Refusal, Requeue,
};
use debcover_core::rebuild::corroborate::{AttemptCorroboration, verdict_name};
use crate::rebuild_rows::{self as rows, ATTEMPT_SELECT, NODE_SELECT};
use crate::campaign_rows::to_json;
use crate::{RebuildStore, SqlResult, StoreError, unzstd};

/// Artifact rows per INSERT statement.
const ARTIFACT_ROWS: usize = 1000;

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Everything ending an attempt needs, read in one statement: the lease (state, token, holder,
/// expiry), the budgets used, the attempt, whether its operator reproduced the job before, and
/// whether a campaign has items for the job's source; last, the job's id. `FROM` and `WHERE`
/// follow.
macro_rules! lease_facts_columns {
    () => {
        "SELECT j.state, j.fence, j.lease_node, j.lease_expires, j.failures, j.unreproducible,
        j.verified, a.id,
        EXISTS (SELECT 1 FROM rebuild_attempts p
                WHERE p.job_id = j.id AND p.operator_id = a.operator_id AND p.outcome = 'reproducible'
                  AND p.attestation_sha256 IS NOT NULL),
        EXISTS (SELECT 1 FROM campaign_items c WHERE c.source = j.source),
        j.id"
    };
}

/// The facts of one job.
const LEASE_FACTS: &str = concat!(
    lease_facts_columns!(),
    " FROM rebuild_jobs j LEFT JOIN rebuild_attempts a ON a.job_id = j.id AND a.fence = j.fence
     WHERE j.id = ?"
);

/// The facts of the jobs in a JSON array of ids (one bound parameter: one prepared statement
/// for every batch size; `CROSS JOIN` keeps the ids as the outer loop).
const LEASE_FACTS_OF: &str = concat!(
    lease_facts_columns!(),
    " FROM json_each(?) k CROSS JOIN rebuild_jobs j ON j.id = k.value
     LEFT JOIN rebuild_attempts a ON a.job_id = j.id AND a.fence = j.fence"
);

/// The facts of [`LEASE_FACTS`].
struct Facts {
    state: String,
    fence: i64,
    holder: Option<i64>,
    expires: Option<i64>,
    failures: i64,
    unreproducible: i64,
    verified: i64,
    attempt_id: Option<i64>,
    already: bool,
    campaign_items: bool,
}

impl Facts {
    fn from_row(r: &sqlx::sqlite::SqliteRow) -> Self {
        Facts {
            state: r.get(0),
            fence: r.get(1),
            holder: r.get(2),
            expires: r.get(3),
            failures: r.get(4),
            unreproducible: r.get(5),
            verified: r.get(6),
            attempt_id: r.get(7),
            already: r.get(8),
            campaign_items: r.get(9),
        }
    }
}

async fn lease_facts(tx: &mut SqliteConnection, job_id: i64) -> Result<Option<Facts>, StoreError> {
    Ok(sqlx::query(LEASE_FACTS).bind(job_id).fetch_optional(&mut *tx).await.db()?.as_ref().map(Facts::from_row))
}

/// The facts of every job the batch reports on, read in one statement before its first
/// operation (one round trip instead of one per result). Keyed by job id; a job unknown to the
/// store has no entry.
async fn lease_facts_of(tx: &mut SqliteConnection, batch: &[(Work, Reply)]) -> Result<HashMap<i64, Facts>, StoreError> {
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
        for r in sqlx::query(LEASE_FACTS_OF).bind(to_json(&ids)?).fetch_all(&mut *tx).await.db()? {
            facts.insert(r.get::<i64, _>(10), Facts::from_row(&r));
        }
    }
    Ok(facts)
}

impl Facts {
    /// Does `node_id` hold this lease with `fence` at `now`?
    fn check(&self, node_id: i64, fence: i64, now: i64) -> Fenced<()> {
        if self.state != "leased" || self.fence != fence {
            Err(Refusal::StaleFence { current: self.fence })
        } else if self.holder != Some(node_id) {
            Err(Refusal::NotYours)
        } else if self.expires.is_some_and(|e| e < now) {
            Err(Refusal::Expired)
        } else {
            Ok(())
        }
    }
}

/// End one attempt and move its job, inside `tx`. The lease was checked by the caller.
async fn end_attempt(
    tx: &mut SqliteConnection,
    job_id: i64,
    facts: &Facts,
    report: &AttemptReport,
    now: i64,
    policy: &Policy,
) -> Result<JobState, StoreError> {
    let attempt_id = facts
        .attempt_id
        .ok_or_else(|| StoreError::Corrupt(format!("job {job_id} is leased with token {} but has no attempt", facts.fence)))?;
    let c = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    let next =
        policy.after_report(report, now, c(facts.failures), c(facts.unreproducible), c(facts.verified), facts.already);
    let (code, message) = rows::outcome_columns(&report.outcome);
    let message = next.note.clone().unwrap_or(message);
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
    Ok(next.state)
}

impl RebuildStore for SqliteStore {
    async fn add_node(&self, operator: &str, name: &str, token_sha256: &str, now: i64) -> Result<Option<NodeRecord>, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO rebuild_operators (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(operator)
            .bind(now)
            .execute(&mut *tx)
            .await.db()?;
        let op: i64 = sqlx::query_scalar("SELECT id FROM rebuild_operators WHERE name = ?")
            .bind(operator)
            .fetch_one(&mut *tx)
            .await.db()?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO rebuild_nodes (operator_id, name, token_sha256, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (operator_id, name) DO NOTHING RETURNING id",
        )
        .bind(op)
        .bind(name)
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await.db()?;
        let Some(id) = id else { return Ok(None) };
        let node = sqlx::query(sqlx::AssertSqlSafe(format!("{NODE_SELECT} WHERE n.id = ?")))
            .bind(id)
            .fetch_one(&mut *tx)
            .await.db()?;
        let node = rows::node(&node)?;
        tx.commit().await.db()?;
        Ok(Some(node))
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!("{NODE_SELECT} ORDER BY o.name, n.name")))
            .fetch_all(&self.reader)
            .await.db()?
            .iter()
            .map(rows::node)
            .collect()
    }

    async fn revoke_node(&self, operator: &str, name: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE rebuild_nodes SET revoked_at = ?
             WHERE revoked_at IS NULL AND name = ?
               AND operator_id = (SELECT id FROM rebuild_operators WHERE name = ?)
             RETURNING id",
        )
        .bind(now)
        .bind(name)
        .bind(operator)
        .fetch_optional(&mut *tx)
        .await.db()?;
        let Some(id) = id else { return Ok(false) };
        let leases = sqlx::query("SELECT id, fence FROM rebuild_jobs WHERE state = 'leased' AND lease_node = ?")
            .bind(id)
            .fetch_all(&mut *tx)
            .await.db()?;
        let back = AttemptReport::bare(AttemptOutcome::HandedBack);
        for l in leases {
            let job_id: i64 = l.get(0);
            if let Some(facts) = lease_facts(&mut tx, job_id).await? {
                end_attempt(&mut tx, job_id, &facts, &back, now, &Policy::default()).await?;
            }
        }
        tx.commit().await.db()?;
        Ok(true)
    }

    async fn node_by_token(&self, token_sha256: &str) -> Result<Option<NodeRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!("{NODE_SELECT} WHERE n.token_sha256 = ? AND n.revoked_at IS NULL")))
            .bind(token_sha256)
            .fetch_optional(&self.reader)
            .await.db()?
            .as_ref()
            .map(rows::node)
            .transpose()
    }

    async fn register_node(&self, node_id: i64, caps: &NodeCaps, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE rebuild_nodes SET public_key = ?, arches = ?, backends = ?, tags = ?, slots = ?,
                 registered_at = ?, last_seen = ?, software = ?
             WHERE id = ?",
        )
        .bind(&caps.public_key)
        .bind(caps.arches.join(" "))
        .bind(caps.backends.join(" "))
        .bind(caps.tags.join(" "))
        .bind(i64::from(caps.slots.max(1)))
        .bind(now)
        .bind(now)
        .bind(&caps.software)
        .bind(node_id)
        .execute(&mut *tx)
        .await.db()?;
        // Key history (migration 0007): a different key closes the current one.
        sqlx::query("UPDATE rebuild_node_keys SET valid_until = ? WHERE node_id = ? AND valid_until IS NULL AND public_key <> ?")
            .bind(now)
            .bind(node_id)
            .bind(&caps.public_key)
            .execute(&mut *tx)
            .await.db()?;
        if !caps.public_key.is_empty() {
            sqlx::query(
                "INSERT INTO rebuild_node_keys (node_id, public_key, valid_from)
                 SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM rebuild_node_keys WHERE node_id = ? AND valid_until IS NULL)",
            )
            .bind(node_id)
            .bind(&caps.public_key)
            .bind(now)
            .bind(node_id)
            .execute(&mut *tx)
            .await.db()?;
        }
        tx.commit().await.db()?;
        Ok(())
    }

    async fn shipped_builds(&self, suite: &str, arches: &[String]) -> Result<Vec<BuildTarget>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT DISTINCT b.id, b.source, b.version, b.host_arch
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
            .map(|r| BuildTarget { build_id: r.get(0), source: r.get(1), version: r.get(2), arch: r.get(3) })
            .collect())
    }

    async fn enqueue(&self, jobs: &[NewJob], mode: Requeue, now: i64) -> Result<EnqueueSummary, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut s = EnqueueSummary::default();
        for j in jobs {
            // Builds ingested from a rebuild are verification results, never verified themselves.
            let (rebuilt, ended): (bool, bool) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM builds WHERE id = ?1 AND rebuild_of IS NOT NULL),
                        EXISTS (SELECT 1 FROM rebuild_jobs WHERE build_id = ?1 AND state IN ('verified', 'parked'))",
            )
            .bind(j.build_id)
            .fetch_one(&mut *tx)
            .await.db()?;
            if rebuilt {
                s.already_done += 1;
                continue;
            }
            if mode == Requeue::OnlyNew && ended {
                s.already_done += 1;
                continue;
            }
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO rebuild_jobs (build_id, source, version, arch, backend, priority, origin, state,
                     not_before, queued_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)
                 ON CONFLICT (build_id) WHERE state IN ('queued', 'leased') DO NOTHING RETURNING id",
            )
            .bind(j.build_id)
            .bind(&j.source)
            .bind(&j.version)
            .bind(&j.arch)
            .bind(&j.backend)
            .bind(j.priority.rank())
            .bind(&j.origin)
            .bind(now)
            .bind(now)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await.db()?;
            match id {
                Some(id) => {
                    s.queued += 1;
                    for t in &j.tags {
                        sqlx::query("INSERT INTO rebuild_job_tags (job_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING")
                            .bind(id)
                            .bind(t)
                            .execute(&mut *tx)
                            .await.db()?;
                    }
                }
                None => {
                    s.already_queued += 1;
                    sqlx::query(
                        "UPDATE rebuild_jobs SET priority = ?, updated_at = ?
                         WHERE build_id = ? AND state IN ('queued', 'leased') AND priority > ?",
                    )
                    .bind(j.priority.rank())
                    .bind(now)
                    .bind(j.build_id)
                    .bind(j.priority.rank())
                    .execute(&mut *tx)
                    .await.db()?;
                }
            }
        }
        tx.commit().await.db()?;
        Ok(s)
    }

    async fn claim(&self, node: &NodeRecord, now: i64, policy: &Policy) -> Result<Option<Lease>, StoreError> {
        let work = Work::Claim { node: node.clone(), now, expires: now + secs(policy.lease_ttl) };
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

    async fn heartbeat(&self, node_id: i64, job_id: i64, fence: i64, now: i64, policy: &Policy) -> Result<Fenced<i64>, StoreError> {
        let expires = now + secs(policy.lease_ttl);
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE rebuild_jobs SET lease_expires = ?
             WHERE id = ? AND state = 'leased' AND fence = ? AND lease_node = ? AND lease_expires >= ?",
        )
        .bind(expires)
        .bind(job_id)
        .bind(fence)
        .bind(node_id)
        .bind(now)
        .execute(&mut *tx)
        .await.db()?
        .rows_affected();
        if n == 0 {
            let r = match lease_facts(&mut tx, job_id).await? {
                None => Refusal::NoSuchJob,
                Some(f) => f.check(node_id, fence, now).err().unwrap_or(Refusal::StaleFence { current: f.fence }),
            };
            tx.rollback().await.db()?;
            return Ok(Err(r));
        }
        sqlx::query("UPDATE rebuild_nodes SET last_seen = ? WHERE id = ?").bind(now).bind(node_id).execute(&mut *tx).await.db()?;
        tx.commit().await.db()?;
        Ok(Ok(expires))
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
        let any: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM rebuild_jobs WHERE state = 'leased' AND lease_expires < ?)",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await.db()?;
        if !any {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let expired = sqlx::query("SELECT id, fence FROM rebuild_jobs WHERE state = 'leased' AND lease_expires < ?")
            .bind(now)
            .fetch_all(&mut *tx)
            .await.db()?;
        let lost = AttemptReport::bare(AttemptOutcome::Failed {
            code: debcover_core::rebuild::FailureCode::NodeLost,
            message: "lease expired without a heartbeat".to_owned(),
        });
        for r in &expired {
            let job_id: i64 = r.get(0);
            if let Some(facts) = lease_facts(&mut tx, job_id).await? {
                end_attempt(&mut tx, job_id, &facts, &lost, now, policy).await?;
            }
        }
        tx.commit().await.db()?;
        Ok(expired.len() as u64)
    }

    async fn lease_view(&self, job_id: i64) -> Result<Option<LeaseView>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(rows::lease_view_sql(rows::SQLITE, "?")))
            .bind(job_id)
            .fetch_optional(&self.reader)
            .await.db()?
            .as_ref()
            .map(rows::lease_view)
            .transpose()
    }

    async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        let rows = sqlx::query("SELECT state, priority, count(*) FROM rebuild_jobs GROUP BY state, priority ORDER BY state, priority")
            .fetch_all(&self.reader)
            .await.db()?;
        let mut by_state = Vec::new();
        for r in rows {
            let p: i64 = r.get(1);
            let p = debcover_core::rebuild::Priority::from_rank(p)
                .ok_or_else(|| StoreError::Corrupt(format!("rebuild_jobs.priority {p}")))?;
            by_state.push((r.get::<String, _>(0), p.as_str().to_owned(), u64::try_from(r.get::<i64, _>(2)).unwrap_or(0)));
        }
        Ok(QueueCounts { by_state })
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
                arts.entry(r.get(0)).or_default().push(debcover_core::rebuild::Artifact {
                    name: r.get(1),
                    size: u64::try_from(r.get::<i64, _>(2)).unwrap_or(0),
                    sha256: r.get(3),
                });
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

    async fn attestation(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT body FROM attestations WHERE sha256 = ?")
            .bind(sha256)
            .fetch_optional(&self.reader)
            .await.db()?)
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
}

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
    Claim { node: NodeRecord, now: i64, expires: i64 },
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
                Ok(r) => return r.map_err(|e| StoreError::Database(Box::new(sqlx::Error::Protocol(e)))),
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
                Work::Claim { node, now, expires } => {
                    let claimed = claim_in(&mut tx, &node, now, expires).await?;
                    if let Some(c) = &claimed {
                        touched.insert(c.job_id);
                    }
                    Done::Claim(claimed)
                }
                Work::Finish { node_id, job_id, fence, report, now, policy } => {
                    let current = if touched.insert(job_id) {
                        prefetched.remove(&job_id)
                    } else {
                        lease_facts(&mut tx, job_id).await?
                    };
                    let facts = match current {
                        None => Err(Refusal::NoSuchJob),
                        Some(f) => f.check(node_id, fence, now).map(|()| f),
                    };
                    Done::Finish(match facts {
                        Ok(f) => Ok(Finished {
                            state: end_attempt(&mut tx, job_id, &f, &report, now, &policy).await?,
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
                "SELECT b.id, b.sha256, t.raw_zstd, b.source_version, s.directory, s.dsc_sha256, {}, {}
                 FROM json_each(?) k CROSS JOIN builds b ON b.id = k.value
                 JOIN build_texts t ON t.build_id = b.id
                 LEFT JOIN sources s ON s.package = b.source AND s.version = b.source_version",
                rows::archive_subquery(rows::SQLITE, "b.id"),
                rows::files_subquery(rows::SQLITE, "b.id")
            )
        });
        for r in sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(to_json(&wanted)?).fetch_all(&mut *tx).await.db()? {
            texts.insert(
                r.get(0),
                ClaimedText {
                    sha256: r.get(1),
                    raw_zstd: r.get(2),
                    source_version: r.get(3),
                    directory: r.get(4),
                    dsc_sha256: r.get(5),
                    archive: r.get(6),
                    files: r.get(7),
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
async fn claim_in(tx: &mut SqliteConnection, node: &NodeRecord, now: i64, expires: i64) -> Result<Option<Claimed>, StoreError> {
    let arches = node.caps.claimable_arches();
    let mut qb = QueryBuilder::<Sqlite>::new("UPDATE rebuild_jobs SET state = 'leased', fence = fence + 1, lease_node = ");
    qb.push_bind(node.id);
    qb.push(", lease_expires = ").push_bind(expires);
    qb.push(", updated_at = ").push_bind(now);
    qb.push(" WHERE id = (SELECT j.id FROM rebuild_jobs j WHERE j.state = 'queued' AND j.not_before <= ");
    qb.push_bind(now);
    // The node's free slots (an uncorrelated subquery: evaluated once).
    qb.push(" AND (SELECT count(*) FROM rebuild_jobs h WHERE h.state = 'leased' AND h.lease_node = ");
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
    qb.push(" OR a.outcome IN ('reproducible', 'unreproducible'))) ORDER BY j.priority, j.id LIMIT 1)");
    qb.push(" RETURNING id, fence, build_id, source, version, arch, backend;");
    // The attempt row of the lease just taken: every leased job has an attempt for its current
    // token, so the node's only lease without one is the job the UPDATE chose (none when it
    // chose none).
    qb.push(" INSERT INTO rebuild_attempts (job_id, fence, node_id, operator_id, started_at) SELECT j.id, j.fence, ");
    qb.push_bind(node.id);
    qb.push(", ").push_bind(node.operator_id);
    qb.push(", ").push_bind(now);
    qb.push(" FROM rebuild_jobs j WHERE j.state = 'leased' AND j.lease_node = ");
    qb.push_bind(node.id);
    qb.push(" AND NOT EXISTS (SELECT 1 FROM rebuild_attempts a WHERE a.job_id = j.id AND a.fence = j.fence)");
    // fetch_all, not fetch_optional: a row limit would stop before the INSERT runs.
    let rows = qb.build().fetch_all(&mut *tx).await.db()?;
    let Some(r) = rows.first() else { return Ok(None) };
    Ok(Some(Claimed {
        job_id: r.get(0),
        fence: r.get(1),
        expires,
        build_id: r.get(2),
        source: r.get(3),
        version: r.get(4),
        arch: r.get(5),
        backend: r.get(6),
        text: None,
    }))
}

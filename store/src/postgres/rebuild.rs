//! [`RebuildStore`] for PostgreSQL, shared by several coordinators. Claims pick their job with
//! `FOR UPDATE SKIP LOCKED` (concurrent claimers skip each other's rows instead of waiting or
//! double-leasing) after locking the claiming node's row (so its slot count holds across
//! coordinators); every lease-carrying call locks the job row and checks the fencing token.

use sqlx::postgres::PgConnection;
use sqlx::Row;

use super::PgStore;
use debcover_core::rebuild::{
    Attestation, AttemptOutcome, AttemptRecord, AttemptReport, BuildTarget, EnqueueSummary, Fenced, Finished, JobFilter,
    JobRecord, JobState, Lease, LeaseView, NewJob, NodeCaps, NodeRecord, Policy, QueueCounts, Refusal, Requeue,
};
use debcover_core::rebuild::corroborate::{AttemptCorroboration, verdict_name};
use crate::rebuild_rows::{self as rows, ATTEMPT_SELECT, NODE_SELECT};
use crate::{RebuildStore, SqlResult, StoreError, unzstd};

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Everything ending an attempt needs, read in one statement with the job row locked: the
/// lease (state, token, holder, expiry), the budgets used, the attempt, whether its operator
/// reproduced the job before, and whether a campaign has items for the job's source.
const LEASE_FACTS: &str = "SELECT j.state, j.fence, j.lease_node, j.lease_expires, j.failures, j.unreproducible,
        j.verified, a.id,
        EXISTS (SELECT 1 FROM rebuild_attempts p
                WHERE p.job_id = j.id AND p.operator_id = a.operator_id AND p.outcome = 'reproducible'
                  AND p.attestation_sha256 IS NOT NULL),
        EXISTS (SELECT 1 FROM campaign_items c WHERE c.source = j.source)
     FROM rebuild_jobs j LEFT JOIN rebuild_attempts a ON a.job_id = j.id AND a.fence = j.fence
     WHERE j.id = $1
     FOR UPDATE OF j";

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

async fn lease_facts(tx: &mut PgConnection, job_id: i64) -> Result<Option<Facts>, StoreError> {
    Ok(sqlx::query(LEASE_FACTS).bind(job_id).fetch_optional(&mut *tx).await.db()?.map(|r| Facts {
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
    }))
}

/// Lock the job row and check that `node_id` holds its lease with `fence` at `now`.
async fn checked_facts(tx: &mut PgConnection, node_id: i64, job_id: i64, fence: i64, now: i64) -> Result<Fenced<Facts>, StoreError> {
    let Some(f) = lease_facts(tx, job_id).await? else { return Ok(Err(Refusal::NoSuchJob)) };
    Ok(if f.state != "leased" || f.fence != fence {
        Err(Refusal::StaleFence { current: f.fence })
    } else if f.holder != Some(node_id) {
        Err(Refusal::NotYours)
    } else if f.expires.is_some_and(|e| e < now) {
        Err(Refusal::Expired)
    } else {
        Ok(f)
    })
}

/// End one attempt and move its job, inside `tx` (job row locked and checked by the caller).
async fn end_attempt(
    tx: &mut PgConnection,
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
    sqlx::query(
        "UPDATE rebuild_jobs SET state = $1, not_before = $2, failures = $3, unreproducible = $4, verified = $5,
             parked_reason = $6, lease_node = NULL, lease_expires = NULL, updated_at = $7
         WHERE id = $8",
    )
    .bind(next.state.as_str())
    .bind(next.not_before)
    .bind(i64::from(next.failures))
    .bind(i64::from(next.unreproducible))
    .bind(i64::from(next.verified))
    .bind(&next.parked_reason)
    .bind(now)
    .bind(job_id)
    .execute(&mut *tx)
    .await.db()?;
    let (code, message) = rows::outcome_columns(&report.outcome);
    let message = next.note.clone().unwrap_or(message);
    sqlx::query(
        "UPDATE rebuild_attempts SET finished_at = $1, outcome = $2, failure_code = $3, message = $4,
             buildinfo_sha256 = $5, log_sha256 = $6, diffoscope_sha256 = $7, differences = $8,
             attestation_sha256 = $9
         WHERE id = $10",
    )
    .bind(now)
    .bind(report.outcome.as_str())
    .bind(code)
    .bind(message)
    .bind(&report.buildinfo_sha256)
    .bind(&report.log_sha256)
    .bind(&report.diffoscope_sha256)
    .bind(rows::differences_column(report.outcome.differences()))
    .bind(report.attestation.as_ref().map(Attestation::sha256))
    .bind(attempt_id)
    .execute(&mut *tx)
    .await.db()?;
    if let Some(a) = &report.attestation {
        // Keyed by content: a row already there holds these very bytes.
        sqlx::query("INSERT INTO attestations (sha256, body) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(a.sha256())
            .bind(a.body())
            .execute(&mut *tx)
            .await.db()?;
    }
    if !report.artifacts.is_empty() {
        let names: Vec<&str> = report.artifacts.iter().map(|f| f.name.as_str()).collect();
        let sizes: Vec<i64> = report.artifacts.iter().map(|f| i64::try_from(f.size).unwrap_or(i64::MAX)).collect();
        let shas: Vec<&str> = report.artifacts.iter().map(|f| f.sha256.as_str()).collect();
        sqlx::query(
            "INSERT INTO rebuild_artifacts (attempt_id, name, size, sha256)
             SELECT $1, * FROM UNNEST($2::text[], $3::bigint[], $4::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(attempt_id)
        .bind(&names)
        .bind(&sizes)
        .bind(&shas)
        .execute(&mut *tx)
        .await.db()?;
    }
    if !report.corroboration.is_empty() {
        let c = &report.corroboration;
        let seqs: Vec<i64> = (0..c.len()).map(|i| i64::try_from(i).unwrap_or(i64::MAX)).collect();
        let debs: Vec<&str> = c.iter().map(|c| c.deb.as_str()).collect();
        let binaries: Vec<&str> = c.iter().map(|c| c.finding.binary.as_str()).collect();
        let subjects: Vec<&str> = c.iter().map(|c| c.finding.subject.as_str()).collect();
        let embedded: Vec<&str> = c.iter().map(|c| c.finding.embedded.as_str()).collect();
        let declared: Vec<String> = c.iter().map(|c| rows::declared_column(&c.finding.declared)).collect();
        let verdicts: Vec<&str> = c.iter().map(|c| verdict_name(c.finding.verdict)).collect();
        sqlx::query(
            "INSERT INTO rebuild_findings (attempt_id, seq, deb, binary_path, subject, embedded, declared, verdict)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(attempt_id)
        .bind(&seqs)
        .bind(&debs)
        .bind(&binaries)
        .bind(&subjects)
        .bind(&embedded)
        .bind(&declared)
        .bind(&verdicts)
        .execute(&mut *tx)
        .await.db()?;
    }
    Ok(next.state)
}

impl RebuildStore for PgStore {
    async fn add_node(&self, operator: &str, name: &str, token_sha256: &str, now: i64) -> Result<Option<NodeRecord>, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        sqlx::query("INSERT INTO rebuild_operators (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(operator)
            .bind(now)
            .execute(&mut *tx)
            .await.db()?;
        let op: i64 = sqlx::query_scalar("SELECT id FROM rebuild_operators WHERE name = $1")
            .bind(operator)
            .fetch_one(&mut *tx)
            .await.db()?;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO rebuild_nodes (operator_id, name, token_sha256, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (operator_id, name) DO NOTHING RETURNING id",
        )
        .bind(op)
        .bind(name)
        .bind(token_sha256)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await.db()?;
        let Some(id) = id else {
            tx.rollback().await.db()?;
            return Ok(None);
        };
        let node = sqlx::query(sqlx::AssertSqlSafe(format!("{NODE_SELECT} WHERE n.id = $1")))
            .bind(id)
            .fetch_one(&mut *tx)
            .await.db()?;
        let node = rows::node(&node)?;
        tx.commit().await.db()?;
        Ok(Some(node))
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!("{NODE_SELECT} ORDER BY o.name, n.name")))
            .fetch_all(&self.pool)
            .await.db()?
            .iter()
            .map(rows::node)
            .collect()
    }

    async fn revoke_node(&self, operator: &str, name: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE rebuild_nodes SET revoked_at = $1
             WHERE revoked_at IS NULL AND name = $2
               AND operator_id = (SELECT id FROM rebuild_operators WHERE name = $3)
             RETURNING id",
        )
        .bind(now)
        .bind(name)
        .bind(operator)
        .fetch_optional(&mut *tx)
        .await.db()?;
        let Some(id) = id else {
            tx.rollback().await.db()?;
            return Ok(false);
        };
        let leases =
            sqlx::query("SELECT id, fence FROM rebuild_jobs WHERE state = 'leased' AND lease_node = $1 ORDER BY id FOR UPDATE")
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
        sqlx::query(sqlx::AssertSqlSafe(format!("{NODE_SELECT} WHERE n.token_sha256 = $1 AND n.revoked_at IS NULL")))
            .bind(token_sha256)
            .fetch_optional(&self.pool)
            .await.db()?
            .as_ref()
            .map(rows::node)
            .transpose()
    }

    async fn register_node(&self, node_id: i64, caps: &NodeCaps, now: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        sqlx::query(
            "UPDATE rebuild_nodes SET public_key = $1, arches = $2, backends = $3, tags = $4, slots = $5,
                 registered_at = $6, last_seen = $6, software = $8
             WHERE id = $7",
        )
        .bind(&caps.public_key)
        .bind(caps.arches.join(" "))
        .bind(caps.backends.join(" "))
        .bind(caps.tags.join(" "))
        .bind(i64::from(caps.slots.max(1)))
        .bind(now)
        .bind(node_id)
        .bind(&caps.software)
        .execute(&mut *tx)
        .await.db()?;
        // Key history (migration 0007): a different key closes the current one. The node row
        // updated above is locked, so concurrent registrations of one node take turns.
        sqlx::query(
            "UPDATE rebuild_node_keys SET valid_until = $1 WHERE node_id = $2 AND valid_until IS NULL AND public_key <> $3",
        )
        .bind(now)
        .bind(node_id)
        .bind(&caps.public_key)
        .execute(&mut *tx)
        .await.db()?;
        if !caps.public_key.is_empty() {
            sqlx::query(
                "INSERT INTO rebuild_node_keys (node_id, public_key, valid_from)
                 SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM rebuild_node_keys WHERE node_id = $1 AND valid_until IS NULL)",
            )
            .bind(node_id)
            .bind(&caps.public_key)
            .bind(now)
            .execute(&mut *tx)
            .await.db()?;
        }
        tx.commit().await.db()?;
        Ok(())
    }

    async fn shipped_builds(&self, suite: &str, arches: &[String]) -> Result<Vec<BuildTarget>, StoreError> {
        Ok(sqlx::query(
            "SELECT DISTINCT b.id, b.source, b.version, b.host_arch
             FROM suite_binaries s JOIN binaries x ON x.id = s.binary_id JOIN builds b ON b.id = x.build_id
             WHERE s.suite = $1 AND (cardinality($2::text[]) = 0 OR b.host_arch = ANY($2))
             ORDER BY b.id",
        )
        .bind(suite)
        .bind(arches)
        .fetch_all(&self.pool)
        .await.db()?
        .iter()
        .map(|r| BuildTarget { build_id: r.get(0), source: r.get(1), version: r.get(2), arch: r.get(3) })
        .collect())
    }

    async fn enqueue(&self, jobs: &[NewJob], mode: Requeue, now: i64) -> Result<EnqueueSummary, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        let mut s = EnqueueSummary::default();
        // Queue order is the order asked for, so concurrent enqueues from several coordinators
        // (rare: operator commands) take turns rather than risk a deadlock on the unique index.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('debcover enqueue'))").execute(&mut *tx).await.db()?;
        for j in jobs {
            // Builds ingested from a rebuild are verification results, never verified themselves.
            let (rebuilt, ended): (bool, bool) = sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM builds WHERE id = $1 AND rebuild_of IS NOT NULL),
                        EXISTS (SELECT 1 FROM rebuild_jobs WHERE build_id = $1 AND state IN ('verified', 'parked'))",
            )
            .bind(j.build_id)
            .fetch_one(&mut *tx)
            .await.db()?;
            if rebuilt || (mode == Requeue::OnlyNew && ended) {
                s.already_done += 1;
                continue;
            }
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO rebuild_jobs (build_id, source, version, arch, backend, priority, origin, state,
                     not_before, queued_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $8, $8)
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
            .fetch_optional(&mut *tx)
            .await.db()?;
            match id {
                Some(id) => {
                    s.queued += 1;
                    if !j.tags.is_empty() {
                        sqlx::query(
                            "INSERT INTO rebuild_job_tags (job_id, tag) SELECT $1, * FROM UNNEST($2::text[])
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(&j.tags)
                        .execute(&mut *tx)
                        .await.db()?;
                    }
                }
                None => {
                    s.already_queued += 1;
                    sqlx::query(
                        "UPDATE rebuild_jobs SET priority = $1, updated_at = $2
                         WHERE build_id = $3 AND state IN ('queued', 'leased') AND priority > $1",
                    )
                    .bind(j.priority.rank())
                    .bind(now)
                    .bind(j.build_id)
                    .execute(&mut *tx)
                    .await.db()?;
                }
            }
        }
        tx.commit().await.db()?;
        Ok(s)
    }

    async fn claim(&self, node: &NodeRecord, now: i64, policy: &Policy) -> Result<Option<Lease>, StoreError> {
        let arches = node.caps.claimable_arches();
        let mut tx = self.pool.begin().await.db()?;
        // Serialise this node's claims (its slot count) across coordinators.
        sqlx::query("SELECT id FROM rebuild_nodes WHERE id = $1 FOR UPDATE")
            .bind(node.id)
            .execute(&mut *tx)
            .await.db()?;
        let held: i64 = sqlx::query_scalar("SELECT count(*) FROM rebuild_jobs WHERE state = 'leased' AND lease_node = $1")
            .bind(node.id)
            .fetch_one(&mut *tx)
            .await.db()?;
        if held >= i64::from(node.caps.slots.max(1)) {
            tx.rollback().await.db()?;
            return Ok(None);
        }
        // The right plan walks the claim index in queue order and probes the tag and attempt
        // indexes per row, stopping at the first match. The planner cannot know that from
        // statistics of a queue that changes by the second (after a bulk enqueue it chose a
        // bitmap scan, a sort and a sequential scan of the attempts per row: 1.4 s per claim
        // instead of 0.3 ms), so this transaction rules the alternatives out.
        sqlx::raw_sql("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off")
            .execute(&mut *tx)
            .await.db()?;
        let expires = now + secs(policy.lease_ttl);
        // One statement leases the job, opens its attempt and reads what the lease carries:
        // the transaction (and the row locks it holds, which results for other jobs can wait
        // on) lasts as few round trips as possible.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH c AS (
                 SELECT j.id FROM rebuild_jobs j
                 WHERE j.state = 'queued' AND j.not_before <= $1 AND j.arch = ANY($2)
                   AND (j.backend = '' OR j.backend = ANY($3))
                   AND NOT EXISTS (SELECT 1 FROM rebuild_job_tags t WHERE t.job_id = j.id AND t.tag <> ALL($4))
                   AND NOT EXISTS (SELECT 1 FROM rebuild_attempts a WHERE a.job_id = j.id AND a.operator_id = $5
                                   AND (a.node_id <> $6 OR a.outcome IN ('reproducible', 'unreproducible')))
                 ORDER BY j.priority, j.id
                 LIMIT 1
                 FOR UPDATE OF j SKIP LOCKED),
             u AS (
                 UPDATE rebuild_jobs j SET state = 'leased', fence = j.fence + 1, lease_node = $6, lease_expires = $7,
                     updated_at = $1
                 FROM c WHERE j.id = c.id AND j.state = 'queued'
                 RETURNING j.id, j.fence, j.build_id, j.source, j.version, j.arch, j.backend),
             ins AS (
                 INSERT INTO rebuild_attempts (job_id, fence, node_id, operator_id, started_at)
                 SELECT u.id, u.fence, $6, $5, $1 FROM u)
             SELECT u.id, u.fence, u.build_id, u.source, u.version, u.arch, u.backend,
                 b.sha256, t.raw_zstd, b.source_version, s.directory, s.dsc_sha256, {}, {}
             FROM u LEFT JOIN builds b ON b.id = u.build_id LEFT JOIN build_texts t ON t.build_id = b.id
             LEFT JOIN sources s ON s.package = b.source AND s.version = b.source_version",
            rows::archive_subquery(rows::POSTGRES, "b.id"),
            rows::files_subquery(rows::POSTGRES, "b.id")
        )))
        .bind(now)
        .bind(&arches)
        .bind(&node.caps.backends)
        .bind(&node.caps.tags)
        .bind(node.operator_id)
        .bind(node.id)
        .bind(expires)
        .fetch_optional(&mut *tx)
        .await.db()?;
        let Some(r) = row else {
            tx.rollback().await.db()?;
            return Ok(None);
        };
        let (job_id, fence, build_id): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
        // Left joins: a lease is never taken silently for a build whose text is missing.
        let (Some(sha), Some(raw)) = (r.get::<Option<String>, _>(7), r.get::<Option<&[u8]>, _>(8)) else {
            return Err(StoreError::Corrupt(format!("job {job_id}: build {build_id} has no stored buildinfo")));
        };
        let buildinfo = unzstd(raw)?;
        let directory: Option<String> = r.get(10);
        let dsc = directory.map(|directory| debcover_core::rebuild::SourceDsc { directory, sha256: r.get(11) });
        let source_version: String = r.get(9);
        let archive = rows::archive_column(r.get::<Option<&str>, _>(12))?;
        let checksums = rows::files_column(r.get::<Option<&str>, _>(13))?;
        tx.commit().await.db()?;
        Ok(Some(Lease {
            source_version,
            dsc,
            originals: debcover_core::rebuild::archive_files(&archive),
            checksums,
            job_id,
            fence,
            expires_at: expires,
            build_id,
            build_sha256: sha,
            source: r.get(3),
            version: r.get(4),
            arch: r.get(5),
            backend: r.get(6),
            buildinfo,
        }))
    }

    async fn heartbeat(&self, node_id: i64, job_id: i64, fence: i64, now: i64, policy: &Policy) -> Result<Fenced<i64>, StoreError> {
        let expires = now + secs(policy.lease_ttl);
        let mut tx = self.pool.begin().await.db()?;
        if let Err(r) = checked_facts(&mut tx, node_id, job_id, fence, now).await? {
            // Release the row lock now, not whenever the pool gets round to it.
            tx.rollback().await.db()?;
            return Ok(Err(r));
        }
        sqlx::query("UPDATE rebuild_jobs SET lease_expires = $1 WHERE id = $2")
            .bind(expires)
            .bind(job_id)
            .execute(&mut *tx)
            .await.db()?;
        sqlx::query("UPDATE rebuild_nodes SET last_seen = $1 WHERE id = $2").bind(now).bind(node_id).execute(&mut *tx).await.db()?;
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
        let mut tx = self.pool.begin().await.db()?;
        let facts = match checked_facts(&mut tx, node_id, job_id, fence, now).await? {
            Ok(f) => f,
            Err(r) => {
                tx.rollback().await.db()?;
                return Ok(Err(r));
            }
        };
        let state = end_attempt(&mut tx, job_id, &facts, report, now, policy).await?;
        tx.commit().await.db()?;
        Ok(Ok(Finished { state, campaign_items: facts.campaign_items }))
    }

    async fn reclaim_expired(&self, now: i64, policy: &Policy) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        let expired = sqlx::query(
            "SELECT id, fence FROM rebuild_jobs WHERE state = 'leased' AND lease_expires < $1
             ORDER BY id FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .fetch_all(&mut *tx)
        .await.db()?;
        if expired.is_empty() {
            tx.rollback().await.db()?;
            return Ok(0);
        }
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
        sqlx::query(sqlx::AssertSqlSafe(rows::lease_view_sql(rows::POSTGRES, "$1")))
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await.db()?
            .as_ref()
            .map(rows::lease_view)
            .transpose()
    }

    async fn queue_counts(&self) -> Result<QueueCounts, StoreError> {
        let rows = sqlx::query("SELECT state, priority, count(*) FROM rebuild_jobs GROUP BY state, priority ORDER BY state, priority")
            .fetch_all(&self.pool)
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
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let limit = if filter.limit == 0 { i64::MAX } else { i64::from(filter.limit) };
        let sql = format!(
            "{} WHERE (cardinality($1::text[]) = 0 OR j.state = ANY($1))
               AND ($2::text IS NULL OR j.source = $2)
               AND ($3::text IS NULL OR j.version = $3 OR b.source_version = $3)
               AND ($4::bigint IS NULL OR j.id = $4)
             ORDER BY j.priority, j.id LIMIT $5",
            rows::job_select("string_agg(tag, ' ')")
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&states)
            .bind(&filter.source)
            .bind(&filter.version)
            .bind(filter.id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await.db()?
            .iter()
            .map(rows::job)
            .collect()
    }

    async fn attempts(&self, job_ids: &[i64]) -> Result<Vec<AttemptRecord>, StoreError> {
        let list = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{ATTEMPT_SELECT} WHERE a.job_id = ANY($1) ORDER BY a.job_id, a.fence"
        )))
        .bind(job_ids)
        .fetch_all(&self.pool)
        .await.db()?;
        let mut out = Vec::with_capacity(list.len());
        for r in &list {
            out.push(rows::attempt(r)?);
        }
        let ids: Vec<i64> = out.iter().map(|(id, _)| *id).collect();
        let mut arts: std::collections::HashMap<i64, Vec<debcover_core::rebuild::Artifact>> = Default::default();
        for r in sqlx::query(
            "SELECT attempt_id, name, size, sha256 FROM rebuild_artifacts WHERE attempt_id = ANY($1) ORDER BY attempt_id, name",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await.db()?
        {
            arts.entry(r.get(0)).or_default().push(debcover_core::rebuild::Artifact {
                name: r.get(1),
                size: u64::try_from(r.get::<i64, _>(2)).unwrap_or(0),
                sha256: r.get(3),
            });
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
        Ok(sqlx::query_scalar("SELECT body FROM attestations WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&self.pool)
            .await.db()?)
    }

    async fn corroboration(&self, job_ids: &[i64]) -> Result<Vec<AttemptCorroboration>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "{} WHERE a.job_id = ANY($1) ORDER BY a.job_id, a.fence, f.seq",
            rows::FINDING_SELECT
        )))
        .bind(job_ids)
        .fetch_all(&self.pool)
        .await.db()?
        .iter()
        .map(rows::corroboration)
        .collect()
    }
}

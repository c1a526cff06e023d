//! [`RebuildStore`] for PostgreSQL, shared by several coordinators. Claims pick their job with
//! `FOR UPDATE SKIP LOCKED` (concurrent claimers skip each other's rows instead of waiting or
//! double-leasing) after locking the claiming node's row (so its slot count holds across
//! coordinators); every lease-carrying call locks the job row and checks the fencing token.

use std::sync::LazyLock;

use sqlx::postgres::PgConnection;

use super::PgStore;
use crate::rows::{self, ATTEMPT_SELECT, Get, LEASED, LeaseFacts, QUEUED, REPRODUCIBLE, UNREPRODUCIBLE};
use crate::{SqlResult, StoreError, unzstd};
use debcover_core::rebuild::corroborate::{AttemptCorroboration, verdict_name};
use debcover_core::rebuild::{
    AttemptOutcome, AttemptRecord, AttemptReport, Attestation, BuildTarget, Fenced, Finished, JobAfter, JobEvent, JobFacts,
    JobFilter, JobRecord, JobState, Lease, NodeRecord, Policy, Refusal,
};

/// The lease facts of one job ([`rows::lease_facts_columns`]), its row locked.
static LEASE_FACTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} FROM rebuild_jobs j LEFT JOIN rebuild_attempts a ON a.job_id = j.id AND a.fence = j.fence
         WHERE j.id = $1 FOR UPDATE OF j",
        rows::lease_facts_columns()
    )
});

impl PgStore {
    /// Lock the job row and read its lease facts.
    async fn lease_facts(tx: &mut PgConnection, job_id: i64) -> Result<Option<LeaseFacts>, StoreError> {
        sqlx::query(LEASE_FACTS.as_str()).bind(job_id).fetch_optional(&mut *tx).await.db()?.as_ref().map(rows::lease_facts).transpose()
    }

    /// End one attempt and move its job to `next` (decided by `Policy::transition` on `facts`),
    /// inside `tx` (job row locked by the caller).
    async fn end_attempt(
        tx: &mut PgConnection,
        facts: &LeaseFacts,
        next: &JobAfter,
        report: &AttemptReport,
        now: i64,
    ) -> Result<JobState, StoreError> {
        let job_id = facts.job_id;
        let (attempt_id, code, message) = rows::ended_attempt(facts, next, report)?;
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
        Self::charge(tx, facts, attempt_id, next, now).await?;
        Ok(next.state)
    }

    /// Queue order is the order asked for, so concurrent enqueues from several coordinators
    /// (rare: operator commands) take turns rather than risk a deadlock on the unique index.
    async fn serialise_enqueue(tx: &mut PgConnection) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('debcover enqueue'))").execute(&mut *tx).await.db()?;
        Ok(())
    }

    /// A new job's tags, in one statement.
    async fn insert_job_tags(tx: &mut PgConnection, job_id: i64, tags: &[String]) -> Result<(), StoreError> {
        if !tags.is_empty() {
            sqlx::query("INSERT INTO rebuild_job_tags (job_id, tag) SELECT $1, * FROM UNNEST($2::text[]) ON CONFLICT DO NOTHING")
                .bind(job_id)
                .bind(tags)
                .execute(&mut *tx)
                .await
                .db()?;
        }
        Ok(())
    }
}

crate::shared::rebuild_store!(PgStore, crate::rows::POSTGRES, {

    async fn shipped_builds(&self, suite: &str, arches: &[String]) -> Result<Vec<BuildTarget>, StoreError> {
        sqlx::query(
            "SELECT DISTINCT b.id AS id, b.source AS source, b.version AS version, b.host_arch AS host_arch
             FROM suite_binaries s JOIN binaries x ON x.id = s.binary_id JOIN builds b ON b.id = x.build_id
             WHERE s.suite = $1 AND (cardinality($2::text[]) = 0 OR b.host_arch = ANY($2))
             ORDER BY b.id",
        )
        .bind(suite)
        .bind(arches)
        .fetch_all(&self.pool)
        .await.db()?
        .iter()
        .map(|r| {
            Ok(BuildTarget {
                build_id: r.int("id")?,
                source: r.text("source")?,
                version: r.text("version")?,
                arch: r.text("host_arch")?,
            })
        })
        .collect()
    }


    async fn claim(&self, node: &NodeRecord, now: i64, policy: &Policy) -> Result<Option<Lease>, StoreError> {
        let arches = node.caps.claimable_arches();
        let mut tx = self.pool.begin().await.db()?;
        // Serialise this node's claims (its slot count) across coordinators.
        // Locked for the transaction, the node must also be unrevoked and out of quarantine: a
        // revoke (which updates this row, then hands the node's leases back) either committed
        // before (its new row fails this test: nothing is claimed, even by a claim that was
        // waiting when it came) or waits for this claim and then hands its lease back.
        let usable = sqlx::query(
            "SELECT id FROM rebuild_nodes WHERE id = $1 AND revoked_at IS NULL
               AND (quarantined_until IS NULL OR quarantined_until <= $2) FOR UPDATE",
        )
        .bind(node.id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .db()?;
        if usable.is_none() {
            tx.rollback().await.db()?;
            return Ok(None);
        }
        let sql = crate::shared::sql!(
            PgStore,
            format!("SELECT count(*) FROM rebuild_jobs WHERE state = '{LEASED}' AND lease_node = $1")
        );
        let held: i64 = sqlx::query_scalar(sql).bind(node.id).fetch_one(&mut *tx).await.db()?;
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
        let leased = policy.transition(&JobFacts::new(), JobEvent::Claim { node_id: node.id, now }).map_err(|r| StoreError::Corrupt(r.to_string()))?;
        let expires = leased.expires.unwrap_or(now);
        // One statement leases the job, opens its attempt and reads what the lease carries:
        // the transaction (and the row locks it holds, which results for other jobs can wait
        // on) lasts as few round trips as possible.
        let sql = crate::shared::sql!(PgStore, format!(
            "WITH c AS (
                 SELECT j.id FROM rebuild_jobs j
                 WHERE j.state = '{QUEUED}' AND j.not_before <= $1 AND j.arch = ANY($2)
                   -- Not a job this node failed lately: another node retries it first.
                   AND NOT EXISTS (SELECT 1 FROM rebuild_attempts f WHERE f.job_id = j.id AND f.node_id = $6
                                   AND f.outcome IN ('{failed}', '{mismatch}') AND f.finished_at > $9)
                   AND (j.backend = '' OR j.backend = ANY($3))
                   AND NOT EXISTS (SELECT 1 FROM rebuild_job_tags t WHERE t.job_id = j.id AND t.tag <> ALL($4))
                   AND NOT EXISTS (SELECT 1 FROM rebuild_attempts a WHERE a.job_id = j.id AND a.operator_id = $5
                                   AND (a.node_id <> $6 OR a.outcome IN ('{REPRODUCIBLE}', '{UNREPRODUCIBLE}')))
                 ORDER BY j.priority, j.id
                 LIMIT 1
                 FOR UPDATE OF j SKIP LOCKED),
             u AS (
                 UPDATE rebuild_jobs j SET state = $8, fence = j.fence + 1, lease_node = $6, lease_expires = $7,
                     updated_at = $1
                 FROM c WHERE j.id = c.id AND j.state = '{QUEUED}'
                 RETURNING j.id, j.fence, j.build_id, j.source, j.version, j.arch, j.backend),
             ins AS (
                 INSERT INTO rebuild_attempts (job_id, fence, node_id, operator_id, started_at)
                 SELECT u.id, u.fence, $6, $5, $1 FROM u)
             SELECT u.id AS id, u.fence AS fence, u.build_id AS build_id, u.source AS source, u.version AS version,
                 u.arch AS arch, u.backend AS backend, b.sha256 AS sha256, t.raw_zstd AS raw_zstd,
                 b.source_version AS source_version, s.directory AS directory, s.dsc_sha256 AS dsc_sha256,
                 {} AS archive, {} AS files
             FROM u LEFT JOIN builds b ON b.id = u.build_id LEFT JOIN build_texts t ON t.build_id = b.id
             LEFT JOIN sources s ON s.package = b.source AND s.version = b.source_version",
                rows::archive_subquery(rows::POSTGRES, "b.id"),
                rows::files_subquery(rows::POSTGRES, "b.id"),
                failed = rows::FAILED,
                mismatch = rows::ENVIRONMENT_MISMATCH,
            )
        );
        let failed_since = now - i64::try_from(policy.retry_delay(1).as_secs()).unwrap_or(i64::MAX / 2);
        let row = sqlx::query(sql)
            .bind(now)
            .bind(&arches)
            .bind(&node.caps.backends)
            .bind(&node.caps.tags)
            .bind(node.operator_id)
            .bind(node.id)
            .bind(expires)
            .bind(leased.state.as_str())
            .bind(failed_since)
            .fetch_optional(&mut *tx)
            .await
            .db()?;
        let Some(r) = row else {
            tx.rollback().await.db()?;
            return Ok(None);
        };
        let (job_id, fence, build_id) = (r.int("id")?, r.int("fence")?, r.int("build_id")?);
        // Left joins: a lease is never taken silently for a build whose text is missing.
        let (Some(sha), Ok(raw)) = (r.opt_text("sha256")?, r.bytes("raw_zstd")) else {
            return Err(StoreError::Corrupt(format!("job {job_id}: build {build_id} has no stored buildinfo")));
        };
        let buildinfo = unzstd(&raw)?;
        let dsc = r.opt_text("directory")?.map(|directory| debcover_core::rebuild::SourceDsc { directory, sha256: r.opt_text("dsc_sha256").ok().flatten() });
        let source_version = r.text("source_version")?;
        let archive = rows::archive_column(r.opt_text("archive")?.as_deref())?;
        let checksums = rows::files_column(r.opt_text("files")?.as_deref())?;
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
            source: r.text("source")?,
            version: r.text("version")?,
            arch: r.text("arch")?,
            backend: r.text("backend")?,
            buildinfo,
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
        let mut tx = self.pool.begin().await.db()?;
        let decided = match PgStore::lease_facts(&mut tx, job_id).await? {
            None => Err(Refusal::NoSuchJob),
            Some(f) => policy
                .transition(&f.job, JobEvent::Report { node_id, fence, now, report, operator_already_verified: f.already })
                .map(|next| (f, next)),
        };
        let (facts, next) = match decided {
            Ok(d) => d,
            Err(r) => {
                tx.rollback().await.db()?;
                return Ok(Err(r));
            }
        };
        let state = PgStore::end_attempt(&mut tx, &facts, &next, report, now).await?;
        tx.commit().await.db()?;
        Ok(Ok(Finished { state, campaign_items: facts.campaign_items }))
    }

    async fn reclaim_expired(&self, now: i64, policy: &Policy) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        let sql = crate::shared::sql!(
            PgStore,
            format!("SELECT id FROM rebuild_jobs WHERE state = '{LEASED}' AND lease_expires < $1 ORDER BY id FOR UPDATE SKIP LOCKED")
        );
        let expired: Vec<i64> = sqlx::query_scalar(sql).bind(now).fetch_all(&mut *tx).await.db()?;
        if expired.is_empty() {
            tx.rollback().await.db()?;
            return Ok(0);
        }
        let mut reclaimed = 0;
        for job_id in expired {
            if let Some(facts) = PgStore::lease_facts(&mut tx, job_id).await?
                && let Ok(next) = policy.transition(&facts.job, JobEvent::Expire { now })
            {
                let lost = AttemptReport::bare(next.ended.clone().unwrap_or(AttemptOutcome::HandedBack));
                PgStore::end_attempt(&mut tx, &facts, &next, &lost, now).await?;
                reclaimed += 1;
            }
        }
        tx.commit().await.db()?;
        Ok(reclaimed)
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
            let (attempt, artifact) = rows::artifact(&r)?;
            arts.entry(attempt).or_default().push(artifact);
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
});

crate::shared::charge_fn!(PgStore, PgConnection);

//! The statements SQLite and PostgreSQL agree on, written once.
//!
//! Each macro here expands to a trait implementation for one backend: the methods both
//! backends run the same way are written below; the methods each runs its own way (SQLite's
//! `IN` lists and group commit, PostgreSQL's arrays, `UNNEST` and row locks) are passed in by
//! the backend and spliced into the same `impl`. Statements use `$N` placeholders, which
//! SQLite runs as `?N` ([`sql!`]); rows are read by column name ([`crate::rows::Get`]). What a
//! backend provides: `reader()` (the pool reads run on) and `write_tx()` (a write transaction:
//! SQLite's single writer with `BEGIN IMMEDIATE`, a pooled PostgreSQL transaction).

/// A statement written with `$N` placeholders, in the backend's spelling, made once per process.
macro_rules! sql {
    ($store:ty, $text:expr) => {{
        static SQL: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| <$store as $crate::shared::Dialect>::spell(&$text));
        SQL.as_str()
    }};
}
pub(crate) use sql;

/// How a backend spells a statement written with PostgreSQL's `$N` placeholders.
pub(crate) trait Dialect {
    /// What a read of rows a transaction will update appends to lock them (PostgreSQL; SQLite
    /// has one writer).
    const FOR_UPDATE: &'static str;
    /// The same, locking only the rows of the table aliased `j` (PostgreSQL refuses `FOR
    /// UPDATE` on the nullable side of joins and on aggregates).
    const FOR_UPDATE_OF_J: &'static str;
    /// The statement as this backend runs it.
    fn spell(sql: &str) -> String;
}

impl Dialect for crate::SqliteStore {
    const FOR_UPDATE: &'static str = "";
    const FOR_UPDATE_OF_J: &'static str = "";
    /// `$N` → `?N`, SQLite's numbered parameters (no `$` appears otherwise in our statements).
    fn spell(sql: &str) -> String {
        sql.replace('$', "?")
    }
}

impl Dialect for crate::PgStore {
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    const FOR_UPDATE_OF_J: &'static str = " FOR UPDATE OF j";
    fn spell(sql: &str) -> String {
        sql.to_owned()
    }
}

/// `impl KeyStore` (every method shared).
macro_rules! key_store {
    ($store:ty) => {
        impl $crate::KeyStore for $store {
            async fn node_keys(&self) -> Result<Vec<debcover_core::attestation::PublishedKey>, $crate::StoreError> {
                let sql = $crate::shared::sql!(
                    $store,
                    "SELECT o.name AS operator, n.name AS node, k.public_key AS public_key, k.valid_from AS valid_from,
                        COALESCE(k.valid_until, n.revoked_at) AS valid_until
                     FROM rebuild_node_keys k JOIN rebuild_nodes n ON n.id = k.node_id
                     JOIN rebuild_operators o ON o.id = n.operator_id
                     ORDER BY o.name, n.name, k.valid_from, k.id"
                );
                let rows = sqlx::query(sql).fetch_all(self.reader()).await.db()?;
                rows.iter().map(|r| $crate::rows::published_key(r, debcover_core::attestation::KeyRole::Node)).collect()
            }

            async fn record_coordinator_key(&self, public_key: &str, now: i64) -> Result<(), $crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO coordinator_keys (public_key, valid_from) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                );
                sqlx::query(sql).bind(public_key).bind(now).execute(&mut *tx).await.db()?;
                tx.commit().await.db()?;
                Ok(())
            }

            async fn coordinator_keys(&self) -> Result<Vec<debcover_core::attestation::PublishedKey>, $crate::StoreError> {
                let sql = "SELECT public_key, valid_from, valid_until FROM coordinator_keys ORDER BY valid_from, public_key";
                let rows = sqlx::query(sql).fetch_all(self.reader()).await.db()?;
                rows.iter()
                    .map(|r| $crate::rows::published_key(r, debcover_core::attestation::KeyRole::Coordinator))
                    .collect()
            }
        }
    };
}
pub(crate) use key_store;

/// `$store::charge`: whom an ended attempt is charged to (`rebuild_attempts.charged`) and the
/// node's standing after it ([`debcover_core::rebuild::NodeStanding::after`]), inside the
/// transaction that ended it. The common case (a result from a node without strikes) is one
/// statement that changes nothing.
macro_rules! charge_fn {
    ($store:ty, $conn:ty) => {
        impl $store {
            async fn charge(
                tx: &mut $conn,
                facts: &$crate::rows::LeaseFacts,
                attempt_id: i64,
                next: &debcover_core::rebuild::JobAfter,
                now: i64,
            ) -> Result<(), $crate::StoreError> {
                use debcover_core::rebuild::{Charge, NodeStanding};
                if let Some(charged) = next.charge.as_str() {
                    let sql = $crate::shared::sql!($store, "UPDATE rebuild_attempts SET charged = $1 WHERE id = $2");
                    sqlx::query(sql).bind(charged).bind(attempt_id).execute(&mut *tx).await.db()?;
                }
                let Some(node) = facts.job.holder else { return Ok(()) };
                if next.charge != Charge::Node {
                    // Clearing strikes the node does not have would cost a round trip per result.
                    let before = NodeStanding { strikes: facts.node_strikes, ..NodeStanding::default() };
                    if facts.node_strikes > 0 && before.after(next, now).strikes == 0 {
                        let sql = $crate::shared::sql!($store, "UPDATE rebuild_nodes SET strikes = 0 WHERE id = $1 AND strikes > 0");
                        sqlx::query(sql).bind(node).execute(&mut *tx).await.db()?;
                    }
                    return Ok(());
                }
                let sql = $crate::shared::sql!(
                    $store,
                    "SELECT strikes, quarantines, quarantined_until FROM rebuild_nodes WHERE id = $1"
                );
                let Some(r) = sqlx::query(sql).bind(node).fetch_optional(&mut *tx).await.db()? else { return Ok(()) };
                let before = NodeStanding {
                    strikes: u32::try_from($crate::rows::Get::int(&r, "strikes")?).unwrap_or(0),
                    quarantines: u32::try_from($crate::rows::Get::int(&r, "quarantines")?).unwrap_or(0),
                    quarantined_until: $crate::rows::Get::opt_int(&r, "quarantined_until")?,
                };
                let after = before.after(next, now);
                if after.quarantined_until != before.quarantined_until {
                    tracing::warn!(node, until = ?after.quarantined_until, quarantines = after.quarantines,
                        "node quarantined after repeated infrastructure failures");
                }
                let sql = $crate::shared::sql!(
                    $store,
                    "UPDATE rebuild_nodes SET strikes = $1, quarantines = $2, quarantined_until = $3 WHERE id = $4"
                );
                sqlx::query(sql)
                    .bind(i64::from(after.strikes))
                    .bind(i64::from(after.quarantines))
                    .bind(after.quarantined_until)
                    .bind(node)
                    .execute(&mut *tx)
                    .await
                    .db()?;
                Ok(())
            }
        }
    };
}
pub(crate) use charge_fn;

/// `impl AccessStore` (every method shared).
macro_rules! access_store {
    ($store:ty) => {
        impl debcover_core::store::AccessStore for $store {
            async fn add_token(
                &self,
                name: &str,
                role: debcover_core::access::Role,
                token_sha256: &str,
                now: i64,
            ) -> Result<Option<debcover_core::access::ApiToken>, $crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let taken = $crate::shared::sql!($store, "SELECT id FROM api_tokens WHERE name = $1 AND revoked_at IS NULL");
                if sqlx::query(taken).bind(name).fetch_optional(&mut *tx).await.db()?.is_some() {
                    return Ok(None);
                }
                let sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO api_tokens (name, role, token_sha256, created_at) VALUES ($1, $2, $3, $4) RETURNING id"
                );
                let row = sqlx::query(sql)
                    .bind(name)
                    .bind(role.as_str())
                    .bind(token_sha256)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .db()?;
                let id = $crate::rows::Get::int(&row, "id")?;
                tx.commit().await.db()?;
                Ok(Some(debcover_core::access::ApiToken {
                    id,
                    name: name.to_owned(),
                    role,
                    created_at: now,
                    last_used_at: None,
                    revoked_at: None,
                }))
            }

            async fn token_by_digest(
                &self,
                token_sha256: &str,
            ) -> Result<Option<debcover_core::access::ApiToken>, $crate::StoreError> {
                let sql = $crate::shared::sql!(
                    $store,
                    "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens
                     WHERE token_sha256 = $1 AND revoked_at IS NULL"
                );
                let row = sqlx::query(sql).bind(token_sha256).fetch_optional(self.reader()).await.db()?;
                row.as_ref().map($crate::rows::api_token).transpose()
            }

            async fn tokens(&self) -> Result<Vec<debcover_core::access::ApiToken>, $crate::StoreError> {
                let sql = "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id";
                let rows = sqlx::query(sql).fetch_all(self.reader()).await.db()?;
                rows.iter().map($crate::rows::api_token).collect()
            }

            async fn revoke_token(&self, name: &str, now: i64) -> Result<bool, $crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let sql =
                    $crate::shared::sql!($store, "UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL");
                let done = sqlx::query(sql).bind(now).bind(name).execute(&mut *tx).await.db()?.rows_affected() > 0;
                tx.commit().await.db()?;
                Ok(done)
            }

            async fn touch_token(&self, id: i64, now: i64) -> Result<(), $crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let sql = $crate::shared::sql!($store, "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2");
                sqlx::query(sql).bind(now).bind(id).execute(&mut *tx).await.db()?;
                tx.commit().await.db()?;
                Ok(())
            }

            async fn audit(&self, e: &debcover_core::access::AuditEntry) -> Result<(), $crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO audit_log (at, actor, role, action, subject) VALUES ($1, $2, $3, $4, $5)"
                );
                sqlx::query(sql)
                    .bind(e.at)
                    .bind(&e.actor)
                    .bind(e.role.as_str())
                    .bind(&e.action)
                    .bind(&e.subject)
                    .execute(&mut *tx)
                    .await
                    .db()?;
                tx.commit().await.db()?;
                Ok(())
            }

            async fn audit_log(&self, limit: u32) -> Result<Vec<debcover_core::access::AuditEntry>, $crate::StoreError> {
                let sql = $crate::shared::sql!(
                    $store,
                    "SELECT at, actor, role, action, subject FROM audit_log ORDER BY id DESC LIMIT $1"
                );
                let rows = sqlx::query(sql).bind(i64::from(limit)).fetch_all(self.reader()).await.db()?;
                rows.iter().map($crate::rows::audit_entry).collect()
            }
        }
    };
}
pub(crate) use access_store;

/// `impl ViewStore` (every method shared; the statements are in [`crate::views`]).
macro_rules! view_store {
    ($store:ty) => {
        impl $crate::ViewStore for $store {
            async fn suites(&self) -> Result<Vec<String>, $crate::StoreError> {
                Ok(sqlx::query_scalar($crate::views::SUITES).fetch_all(self.reader()).await.db()?)
            }

            async fn suite_builds(&self, suite: &str) -> Result<Vec<debcover_core::store::views::SuiteBuild>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, $crate::views::suite_builds_sql());
                let rows = sqlx::query(sql).bind(suite).fetch_all(self.reader()).await.db()?;
                rows.iter().map($crate::views::suite_build).collect()
            }

            async fn suite_status_counts(&self, suite: &str) -> Result<Vec<debcover_core::store::views::StatusGroup>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, $crate::views::suite_status_counts_sql());
                let rows = sqlx::query(sql).bind(suite).fetch_all(self.reader()).await.db()?;
                Ok($crate::views::status_groups(rows.iter().map($crate::views::count_row).collect::<Result<_, _>>()?))
            }

            async fn suite_build_page(
                &self,
                suite: &str,
                offset: u64,
                limit: u64,
            ) -> Result<Vec<debcover_core::store::views::SuiteBuild>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, $crate::views::suite_build_page_sql());
                let rows = sqlx::query(sql)
                    .bind(suite)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                    .fetch_all(self.reader())
                    .await
                    .db()?;
                rows.iter().map($crate::views::suite_build).collect()
            }

            async fn suite_last_change(&self, suite: &str) -> Result<i64, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = $crate::shared::sql!($store, $crate::views::suite_last_change_sql());
                let r = sqlx::query(sql).bind(suite).fetch_one(self.reader()).await.db()?;
                Ok(r.int("ingested")?.max(r.int("job")?).max(r.int("finished")?).max(r.int("running")?))
            }

            async fn suite_history(&self, suite: &str) -> Result<Vec<debcover_core::store::views::DayCount>, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = $crate::shared::sql!($store, $crate::views::suite_history_sql());
                let rows = sqlx::query(sql).bind(suite).fetch_all(self.reader()).await.db()?;
                rows.iter()
                    .map(|r| {
                        Ok(debcover_core::store::views::DayCount {
                            day: r.int("day")?,
                            arch: r.text("arch")?,
                            outcome: r.text("outcome")?,
                            count: $crate::rows::count(r.int("count")?),
                        })
                    })
                    .collect()
            }

            async fn suite_imported_at(&self, suite: &str) -> Result<i64, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, $crate::views::SUITE_IMPORTED_AT);
                Ok(sqlx::query_scalar(sql).bind(suite).fetch_one(self.reader()).await.db()?)
            }

            async fn node_activity(&self, since: i64) -> Result<Vec<(i64, u64)>, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = $crate::shared::sql!($store, $crate::views::node_activity_sql());
                let rows = sqlx::query(sql).bind(since).fetch_all(self.reader()).await.db()?;
                rows.iter().map(|r| Ok((r.int("node_id")?, $crate::rows::count(r.int("count")?)))).collect()
            }

            async fn queue_depth(&self) -> Result<Vec<debcover_core::store::views::QueueDepth>, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = $crate::shared::sql!($store, $crate::views::queue_depth_sql());
                let rows = sqlx::query(sql).fetch_all(self.reader()).await.db()?;
                rows.iter()
                    .map(|r| {
                        Ok(debcover_core::store::views::QueueDepth {
                            arch: r.text("arch")?,
                            priority: r.int("priority")?,
                            count: $crate::rows::count(r.int("count")?),
                        })
                    })
                    .collect()
            }

            async fn campaign_progress(&self, campaign: i64) -> Result<Vec<debcover_core::store::views::WaveCount>, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = $crate::shared::sql!($store, $crate::views::CAMPAIGN_PROGRESS);
                let rows = sqlx::query(sql).bind(campaign).fetch_all(self.reader()).await.db()?;
                rows.iter()
                    .map(|r| {
                        Ok(debcover_core::store::views::WaveCount {
                            wave: u32::try_from(r.int("wave")?).unwrap_or(0),
                            arch: r.text("arch")?,
                            state: r.text("state")?,
                            count: $crate::rows::count(r.int("count")?),
                        })
                    })
                    .collect()
            }

            async fn campaign_item_page(
                &self,
                campaign: i64,
                offset: u64,
                limit: u64,
            ) -> Result<Vec<debcover_core::campaign::ItemRecord>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, $crate::views::campaign_item_page_sql());
                let rows = sqlx::query(sql)
                    .bind(campaign)
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                    .fetch_all(self.reader())
                    .await
                    .db()?;
                rows.iter().map($crate::rows::item).collect()
            }

            async fn index_builds(&self, suite: &str, arch: &str) -> Result<Vec<debcover_core::store::views::IndexBuild>, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = $crate::shared::sql!($store, $crate::views::INDEX_BUILDS);
                let rows = sqlx::query(sql).bind(suite).bind(arch).fetch_all(self.reader()).await.db()?;
                rows.iter()
                    .map(|r| {
                        Ok(debcover_core::store::views::IndexBuild {
                            build_id: r.int("id")?,
                            source: r.text("source")?,
                            version: r.text("version")?,
                            sha256: r.text("sha256")?,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use view_store;

/// `impl CampaignStore`: `campaign_items` and `jobs_of_builds` (lists of sources and builds)
/// are the backend's; the rest is shared.
macro_rules! campaign_store {
    ($store:ty, { $($own:tt)* }) => {
        impl $crate::CampaignStore for $store {
            $($own)*

            async fn create_campaign(
                &self,
                c: &debcover_core::campaign::CampaignRecord,
                items: &[debcover_core::campaign::PlannedItem],
            ) -> Result<i64, $crate::StoreError> {
                use debcover_core::campaign::ItemState;
                let now = $crate::now_unix();
                let mut tx = self.write_tx().await?;
                let sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO campaigns (title, library, fixed_version, suites, arches, mode, advisories,
                         max_depth, notes, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id"
                );
                let id: i64 = sqlx::query_scalar(sql)
                    .bind(&c.title)
                    .bind(&c.library)
                    .bind(&c.fixed_version)
                    .bind(c.suites.join(" "))
                    .bind(c.arches.join(" "))
                    .bind(c.mode.as_str())
                    .bind(c.advisories.join(" "))
                    .bind(i64::from(c.max_depth))
                    .bind($crate::rows::to_json(&c.notes)?)
                    .bind(c.created_at)
                    .fetch_one(&mut *tx)
                    .await
                    .db()?;
                let item_sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO campaign_items (campaign_id, suite, source, arch, wave, state, reason,
                         current_version, planned, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id"
                );
                let event_sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO campaign_events (item_id, at, from_state, to_state, version, reason, evidence)
                     VALUES ($1, $2, NULL, $3, $4, $5, $6)"
                );
                for item in items {
                    let reason = item.planning_reason();
                    let item_id: i64 = sqlx::query_scalar(item_sql)
                        .bind(id)
                        .bind(&item.suite)
                        .bind(&item.source)
                        .bind(&item.arch)
                        .bind(i64::from(item.wave))
                        .bind(ItemState::Affected.as_str())
                        .bind(&reason)
                        .bind(&item.version)
                        .bind($crate::rows::planned_json(item)?)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await
                        .db()?;
                    sqlx::query(event_sql)
                        .bind(item_id)
                        .bind(now)
                        .bind(ItemState::Affected.as_str())
                        .bind(&item.version)
                        .bind(&reason)
                        .bind($crate::rows::evidence_json(&item.evidence)?)
                        .execute(&mut *tx)
                        .await
                        .db()?;
                }
                tx.commit().await.db()?;
                Ok(id)
            }

            async fn campaigns(&self) -> Result<Vec<(debcover_core::campaign::CampaignRecord, $crate::StateCounts)>, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = $crate::shared::sql!($store, format!("SELECT {} FROM campaigns ORDER BY id DESC", $crate::rows::CAMPAIGN_COLUMNS));
                let list = sqlx::query(sql).fetch_all(self.reader()).await.db()?;
                let counts = sqlx::query(
                    "SELECT campaign_id, state, CAST(count(*) AS BIGINT) AS count FROM campaign_items GROUP BY campaign_id, state",
                )
                .fetch_all(self.reader())
                .await
                .db()?;
                let mut counted: std::collections::HashMap<i64, Vec<(String, u64)>> = Default::default();
                for k in &counts {
                    counted.entry(k.int("campaign_id")?).or_default().push((k.text("state")?, $crate::rows::count(k.int("count")?)));
                }
                list.iter()
                    .map(|r| {
                        let c = $crate::rows::campaign(r)?;
                        let mine = counted.remove(&c.id).unwrap_or_default();
                        Ok((c, mine))
                    })
                    .collect()
            }

            async fn campaign(&self, id: i64) -> Result<Option<debcover_core::campaign::CampaignRecord>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, format!("SELECT {} FROM campaigns WHERE id = $1", $crate::rows::CAMPAIGN_COLUMNS));
                sqlx::query(sql).bind(id).fetch_optional(self.reader()).await.db()?.as_ref().map($crate::rows::campaign).transpose()
            }

            async fn record_transitions(&self, changes: &[debcover_core::campaign::Transition]) -> Result<usize, $crate::StoreError> {
                if changes.is_empty() {
                    return Ok(0);
                }
                let now = $crate::now_unix();
                let mut tx = self.write_tx().await?;
                let update = $crate::shared::sql!(
                    $store,
                    "UPDATE campaign_items SET state = $1, reason = $2, current_version = $3, updated_at = $4, coverage = $7
                     WHERE id = $5 AND state = $6"
                );
                let event = $crate::shared::sql!(
                    $store,
                    "INSERT INTO campaign_events (item_id, at, from_state, to_state, version, reason, evidence)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)"
                );
                let mut applied = 0;
                for t in changes {
                    let done = sqlx::query(update)
                        .bind(t.to.as_str())
                        .bind(&t.reason)
                        .bind(&t.version)
                        .bind(now)
                        .bind(t.item_id)
                        .bind(t.from.as_str())
                        .bind(t.coverage.as_str())
                        .execute(&mut *tx)
                        .await
                        .db()?
                        .rows_affected();
                    if done == 1 {
                        sqlx::query(event)
                            .bind(t.item_id)
                            .bind(now)
                            .bind(t.from.as_str())
                            .bind(t.to.as_str())
                            .bind(&t.version)
                            .bind(&t.reason)
                            .bind($crate::rows::evidence_json(&t.evidence)?)
                            .execute(&mut *tx)
                            .await
                            .db()?;
                        applied += 1;
                    }
                }
                tx.commit().await.db()?;
                Ok(applied)
            }

            async fn campaign_events(&self, campaign: i64) -> Result<Vec<debcover_core::campaign::ItemEvent>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, $crate::rows::EVENT_SELECT);
                let list = sqlx::query(sql).bind(campaign).fetch_all(self.reader()).await.db()?;
                list.iter().map($crate::rows::event).collect()
            }
        }
    };
}
pub(crate) use campaign_store;

/// `impl RebuildStore`: credentials, registration and the reads of single rows are shared;
/// claims, results, queuing, reclaiming, revocation and the list reads are the backend's.
macro_rules! rebuild_store {
    ($store:ty, $agg:expr, { $($own:tt)* }) => {
        impl $crate::RebuildStore for $store {
            $($own)*

            async fn add_node(
                &self,
                operator: &str,
                name: &str,
                token_sha256: &str,
                now: i64,
            ) -> Result<Option<debcover_core::rebuild::NodeRecord>, $crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO rebuild_operators (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
                );
                sqlx::query(sql).bind(operator).bind(now).execute(&mut *tx).await.db()?;
                let sql = $crate::shared::sql!($store, "SELECT id FROM rebuild_operators WHERE name = $1");
                let op: i64 = sqlx::query_scalar(sql).bind(operator).fetch_one(&mut *tx).await.db()?;
                let sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO rebuild_nodes (operator_id, name, token_sha256, created_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (operator_id, name) DO NOTHING RETURNING id"
                );
                let id: Option<i64> =
                    sqlx::query_scalar(sql).bind(op).bind(name).bind(token_sha256).bind(now).fetch_optional(&mut *tx).await.db()?;
                let Some(id) = id else {
                    tx.rollback().await.db()?;
                    return Ok(None);
                };
                let sql = $crate::shared::sql!($store, format!("{} WHERE n.id = $1", $crate::rows::node_select()));
                let node = sqlx::query(sql).bind(id).fetch_one(&mut *tx).await.db()?;
                let node = $crate::rows::node(&node)?;
                tx.commit().await.db()?;
                Ok(Some(node))
            }

            async fn nodes(&self) -> Result<Vec<debcover_core::rebuild::NodeRecord>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, format!("{} ORDER BY o.name, n.name", $crate::rows::node_select()));
                sqlx::query(sql).fetch_all(self.reader()).await.db()?.iter().map($crate::rows::node).collect()
            }

            async fn node_by_token(&self, token_sha256: &str) -> Result<Option<debcover_core::rebuild::NodeRecord>, $crate::StoreError> {
                let sql = $crate::shared::sql!(
                    $store,
                    format!("{} WHERE n.token_sha256 = $1 AND n.revoked_at IS NULL", $crate::rows::node_select())
                );
                sqlx::query(sql).bind(token_sha256).fetch_optional(self.reader()).await.db()?.as_ref().map($crate::rows::node).transpose()
            }

            async fn register_node(&self, node_id: i64, caps: &debcover_core::rebuild::NodeCaps, now: i64) -> Result<(), $crate::StoreError> {
                let mut tx = self.write_tx().await?;
                let sql = $crate::shared::sql!(
                    $store,
                    "UPDATE rebuild_nodes SET public_key = $1, arches = $2, backends = $3, tags = $4, slots = $5,
                         registered_at = $6, last_seen = $6, software = $8
                     WHERE id = $7"
                );
                sqlx::query(sql)
                    .bind(&caps.public_key)
                    .bind(caps.arches.join(" "))
                    .bind(caps.backends.join(" "))
                    .bind(caps.tags.join(" "))
                    .bind(i64::from(caps.slots.max(1)))
                    .bind(now)
                    .bind(node_id)
                    .bind(&caps.software)
                    .execute(&mut *tx)
                    .await
                    .db()?;
                // Key history (migration 0007): a different key closes the current one. The node
                // row updated above is locked (PostgreSQL; SQLite has one writer), so concurrent
                // registrations of one node take turns.
                let sql = $crate::shared::sql!(
                    $store,
                    "UPDATE rebuild_node_keys SET valid_until = $1 WHERE node_id = $2 AND valid_until IS NULL AND public_key <> $3"
                );
                sqlx::query(sql).bind(now).bind(node_id).bind(&caps.public_key).execute(&mut *tx).await.db()?;
                if !caps.public_key.is_empty() {
                    let sql = $crate::shared::sql!(
                        $store,
                        "INSERT INTO rebuild_node_keys (node_id, public_key, valid_from)
                         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM rebuild_node_keys WHERE node_id = $1 AND valid_until IS NULL)"
                    );
                    sqlx::query(sql).bind(node_id).bind(&caps.public_key).bind(now).execute(&mut *tx).await.db()?;
                }
                tx.commit().await.db()?;
                Ok(())
            }

            async fn queue_counts(&self) -> Result<debcover_core::rebuild::QueueCounts, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = "SELECT state, priority, CAST(count(*) AS BIGINT) AS count FROM rebuild_jobs
                           GROUP BY state, priority ORDER BY state, priority";
                let rows = sqlx::query(sql).fetch_all(self.reader()).await.db()?;
                let mut by_state = Vec::new();
                for r in rows {
                    let p = r.int("priority")?;
                    let p = debcover_core::rebuild::Priority::from_rank(p)
                        .ok_or_else(|| $crate::StoreError::Corrupt(format!("rebuild_jobs.priority {p}")))?;
                    by_state.push((r.text("state")?, p.as_str().to_owned(), $crate::rows::count(r.int("count")?)));
                }
                Ok(debcover_core::rebuild::QueueCounts { by_state })
            }

            async fn lease_view(&self, job_id: i64) -> Result<Option<debcover_core::rebuild::LeaseView>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, $crate::rows::lease_view_sql($agg, "$1"));
                sqlx::query(sql).bind(job_id).fetch_optional(self.reader()).await.db()?.as_ref().map($crate::rows::lease_view).transpose()
            }

            async fn attestation(&self, sha256: &str) -> Result<Option<Vec<u8>>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, "SELECT body FROM attestations WHERE sha256 = $1");
                Ok(sqlx::query_scalar(sql).bind(sha256).fetch_optional(self.reader()).await.db()?)
            }

            async fn heartbeat(
                &self,
                node_id: i64,
                job_id: i64,
                fence: i64,
                now: i64,
                policy: &debcover_core::rebuild::Policy,
            ) -> Result<debcover_core::rebuild::Fenced<i64>, $crate::StoreError> {
                use debcover_core::rebuild::{JobEvent, Refusal};
                let mut tx = self.write_tx().await?;
                let next = match <$store>::lease_facts(&mut tx, job_id).await? {
                    None => Err(Refusal::NoSuchJob),
                    Some(f) => policy.transition(&f.job, JobEvent::Heartbeat { node_id, fence, now }),
                };
                let next = match next {
                    Ok(next) => next,
                    Err(r) => {
                        // Release the row lock now, not whenever the pool gets round to it.
                        tx.rollback().await.db()?;
                        return Ok(Err(r));
                    }
                };
                let sql = $crate::shared::sql!($store, "UPDATE rebuild_jobs SET lease_expires = $1 WHERE id = $2");
                sqlx::query(sql).bind(next.expires).bind(job_id).execute(&mut *tx).await.db()?;
                let sql = $crate::shared::sql!($store, "UPDATE rebuild_nodes SET last_seen = $1 WHERE id = $2");
                sqlx::query(sql).bind(now).bind(node_id).execute(&mut *tx).await.db()?;
                tx.commit().await.db()?;
                Ok(Ok(next.expires.unwrap_or(now)))
            }

            async fn produced_not_ingested(
                &self,
                limit: u32,
            ) -> Result<Vec<debcover_core::rebuild::ProducedBuildinfo>, $crate::StoreError> {
                use $crate::rows::Get;
                let sql = $crate::shared::sql!(
                    $store,
                    "SELECT a.job_id AS job_id, a.fence AS fence, a.buildinfo_sha256 AS sha256,
                        o.name AS operator, n.name AS node, j.build_id AS build_id
                     FROM rebuild_attempts a
                     JOIN rebuild_jobs j ON j.id = a.job_id
                     JOIN rebuild_nodes n ON n.id = a.node_id
                     JOIN rebuild_operators o ON o.id = a.operator_id
                     WHERE a.buildinfo_sha256 IS NOT NULL AND a.outcome IN ('reproducible', 'unreproducible')
                       AND NOT EXISTS (SELECT 1 FROM builds b WHERE b.sha256 = a.buildinfo_sha256)
                     ORDER BY a.id LIMIT $1"
                );
                let rows = sqlx::query(sql).bind(i64::from(limit)).fetch_all(self.reader()).await.db()?;
                rows.iter()
                    .map(|r| {
                        Ok(debcover_core::rebuild::ProducedBuildinfo {
                            job_id: r.int("job_id")?,
                            fence: r.int("fence")?,
                            sha256: r.text("sha256")?,
                            operator: r.text("operator")?,
                            node: r.text("node")?,
                            build_id: r.int("build_id")?,
                        })
                    })
                    .collect()
            }

            async fn release_parked(
                &self,
                source: &str,
                version: Option<&str>,
                job_id: Option<i64>,
                now: i64,
            ) -> Result<Vec<i64>, $crate::StoreError> {
                use debcover_core::rebuild::{JobEvent, JobFacts, JobState, Policy};
                let mut tx = self.write_tx().await?;
                let sql = $crate::shared::sql!(
                    $store,
                    format!(
                        "SELECT j.id AS id, j.build_id AS build_id, j.fence AS fence, j.failures AS failures,
                            j.unreproducible AS unreproducible, j.verified AS verified
                         FROM rebuild_jobs j JOIN builds b ON b.id = j.build_id
                         WHERE j.state = '{parked}' AND (j.id = $1 OR ($1 = 0 AND j.source = $2
                           AND ($3 = '' OR j.version = $3 OR b.source_version = $3)))
                         ORDER BY j.id DESC{lock}",
                        parked = $crate::rows::PARKED,
                        lock = <$store as $crate::shared::Dialect>::FOR_UPDATE_OF_J
                    )
                );
                let rows = sqlx::query(sql)
                    .bind(job_id.unwrap_or(0))
                    .bind(source)
                    .bind(version.unwrap_or(""))
                    .fetch_all(&mut *tx)
                    .await
                    .db()?;
                let active = $crate::shared::sql!(
                    $store,
                    format!(
                        "SELECT EXISTS (SELECT 1 FROM rebuild_jobs WHERE build_id = $1 AND state IN ('{}', '{}'))",
                        $crate::rows::QUEUED,
                        $crate::rows::LEASED
                    )
                );
                let update = $crate::shared::sql!(
                    $store,
                    "UPDATE rebuild_jobs SET state = $1, failures = $2, unreproducible = $3, not_before = $4,
                         parked_reason = NULL, updated_at = $4
                     WHERE id = $5"
                );
                let mut released = Vec::new();
                for r in &rows {
                    use $crate::rows::Get;
                    let (id, build_id) = (r.int("id")?, r.int("build_id")?);
                    let busy: bool = sqlx::query_scalar(active).bind(build_id).fetch_one(&mut *tx).await.db()?;
                    if busy {
                        continue;
                    }
                    let facts = JobFacts {
                        state: JobState::Parked,
                        fence: r.int("fence")?,
                        failures: u32::try_from(r.int("failures")?).unwrap_or(0),
                        unreproducible: u32::try_from(r.int("unreproducible")?).unwrap_or(0),
                        verified: u32::try_from(r.int("verified")?).unwrap_or(0),
                        ..JobFacts::new()
                    };
                    let next = Policy::default()
                        .transition(&facts, JobEvent::Release { now })
                        .map_err(|e| $crate::StoreError::Corrupt(e.to_string()))?;
                    sqlx::query(update)
                        .bind(next.state.as_str())
                        .bind(i64::from(next.failures))
                        .bind(i64::from(next.unreproducible))
                        .bind(next.not_before)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .db()?;
                    released.push(id);
                }
                tx.commit().await.db()?;
                released.sort_unstable();
                Ok(released)
            }

            async fn revoke_node(&self, operator: &str, name: &str, now: i64) -> Result<bool, $crate::StoreError> {
                use debcover_core::rebuild::{AttemptOutcome, AttemptReport, JobEvent, Policy};
                let mut tx = self.write_tx().await?;
                let sql = $crate::shared::sql!(
                    $store,
                    "UPDATE rebuild_nodes SET revoked_at = $1
                     WHERE revoked_at IS NULL AND name = $2
                       AND operator_id = (SELECT id FROM rebuild_operators WHERE name = $3)
                     RETURNING id"
                );
                let id: Option<i64> = sqlx::query_scalar(sql).bind(now).bind(name).bind(operator).fetch_optional(&mut *tx).await.db()?;
                let Some(id) = id else {
                    tx.rollback().await.db()?;
                    return Ok(false);
                };
                let sql = $crate::shared::sql!(
                    $store,
                    format!(
                        "SELECT id FROM rebuild_jobs WHERE state = '{}' AND lease_node = $1 ORDER BY id{}",
                        $crate::rows::LEASED,
                        <$store as $crate::shared::Dialect>::FOR_UPDATE
                    )
                );
                let leases: Vec<i64> = sqlx::query_scalar(sql).bind(id).fetch_all(&mut *tx).await.db()?;
                let back = AttemptReport::bare(AttemptOutcome::HandedBack);
                for job_id in leases {
                    if let Some(facts) = <$store>::lease_facts(&mut tx, job_id).await?
                        && let Ok(next) = Policy::default().transition(&facts.job, JobEvent::Revoke { now })
                    {
                        <$store>::end_attempt(&mut tx, &facts, &next, &back, now).await?;
                    }
                }
                tx.commit().await.db()?;
                Ok(true)
            }

            async fn enqueue(
                &self,
                jobs: &[debcover_core::rebuild::NewJob],
                mode: debcover_core::rebuild::Requeue,
                now: i64,
            ) -> Result<debcover_core::rebuild::EnqueueSummary, $crate::StoreError> {
                use debcover_core::rebuild::{JobEvent, JobFacts, Policy, Requeue};
                let mut tx = self.write_tx().await?;
                let mut s = debcover_core::rebuild::EnqueueSummary::default();
                <$store>::serialise_enqueue(&mut tx).await?;
                let new = Policy::default()
                    .transition(&JobFacts::new(), JobEvent::Enqueue { now })
                    .map_err(|r| $crate::StoreError::Corrupt(r.to_string()))?;
                let done_sql = $crate::shared::sql!(
                    $store,
                    format!(
                        // A parked build counts as done until new evidence may change its fate: a node
                        // credential issued after it was parked (another machine, perhaps another
                        // operator); then background and campaign queueing try it again.
                        "SELECT EXISTS (SELECT 1 FROM builds WHERE id = $1 AND rebuild_of IS NOT NULL),
                                EXISTS (SELECT 1 FROM rebuild_jobs WHERE build_id = $1 AND (state = '{}'
                                    OR (state = '{}' AND updated_at >= (SELECT COALESCE(max(created_at), 0)
                                        FROM rebuild_nodes WHERE revoked_at IS NULL))))",
                        $crate::rows::VERIFIED,
                        $crate::rows::PARKED
                    )
                );
                let insert_sql = $crate::shared::sql!(
                    $store,
                    format!(
                        "INSERT INTO rebuild_jobs (build_id, source, version, arch, backend, priority, origin, state,
                             not_before, queued_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                         ON CONFLICT (build_id) WHERE state IN ('{q}', '{l}') DO NOTHING RETURNING id",
                        q = $crate::rows::QUEUED,
                        l = $crate::rows::LEASED
                    )
                );
                let raise_sql = $crate::shared::sql!(
                    $store,
                    format!(
                        "UPDATE rebuild_jobs SET priority = $1, updated_at = $2
                         WHERE build_id = $3 AND state IN ('{}', '{}') AND priority > $1",
                        $crate::rows::QUEUED,
                        $crate::rows::LEASED
                    )
                );
                for j in jobs {
                    // Builds ingested from a rebuild are verification results, never verified
                    // themselves.
                    let (rebuilt, ended): (bool, bool) = sqlx::query_as(done_sql).bind(j.build_id).fetch_one(&mut *tx).await.db()?;
                    if rebuilt || (mode == Requeue::OnlyNew && ended) {
                        s.already_done += 1;
                        continue;
                    }
                    let id: Option<i64> = sqlx::query_scalar(insert_sql)
                        .bind(j.build_id)
                        .bind(&j.source)
                        .bind(&j.version)
                        .bind(&j.arch)
                        .bind(&j.backend)
                        .bind(j.priority.rank())
                        .bind(&j.origin)
                        .bind(new.state.as_str())
                        .bind(new.not_before)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await
                        .db()?;
                    match id {
                        Some(id) => {
                            s.queued += 1;
                            <$store>::insert_job_tags(&mut tx, id, &j.tags).await?;
                        }
                        None => {
                            s.already_queued += 1;
                            sqlx::query(raise_sql).bind(j.priority.rank()).bind(now).bind(j.build_id).execute(&mut *tx).await.db()?;
                        }
                    }
                }
                tx.commit().await.db()?;
                Ok(s)
            }
        }
    };
}
pub(crate) use rebuild_store;

/// `record_import` for a backend's connection type: the audit row of an applied index.
macro_rules! import_record {
    ($store:ty, $conn:ty) => {
        impl $store {
            /// Record an applied index (`archive_imports`), inside the import's transaction.
            async fn record_import(
                tx: &mut $conn,
                suite: &str,
                kind: &str,
                arch: &str,
                origin: &str,
                sha256: &str,
                s: &debcover_core::model::ImportSummary,
            ) -> Result<(), $crate::StoreError> {
                let sql = $crate::shared::sql!(
                    $store,
                    "INSERT INTO archive_imports (suite, kind, arch, origin, sha256, entries, added, removed, imported_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                );
                sqlx::query(sql)
                    .bind(suite)
                    .bind(kind)
                    .bind(arch)
                    .bind(origin)
                    .bind(sha256)
                    .bind(i64::try_from(s.entries).unwrap_or(i64::MAX))
                    .bind(i64::try_from(s.added).unwrap_or(i64::MAX))
                    .bind(i64::try_from(s.removed).unwrap_or(i64::MAX))
                    .bind($crate::now_unix())
                    .execute(&mut *tx)
                    .await
                    .db()?;
                Ok(())
            }
        }
    };
}
pub(crate) use import_record;

/// `impl BuildStore`: `stats` and `raw_buildinfo` are shared.
macro_rules! build_store {
    ($store:ty, { $($own:tt)* }) => {
        impl $crate::BuildStore for $store {
            $($own)*

            async fn raw_buildinfo(&self, sha256: &str) -> Result<Option<Vec<u8>>, $crate::StoreError> {
                let sql = $crate::shared::sql!(
                    $store,
                    "SELECT t.raw_zstd FROM builds b JOIN build_texts t ON t.build_id = b.id WHERE b.sha256 = $1"
                );
                let raw: Option<Vec<u8>> = sqlx::query_scalar(sql).bind(sha256).fetch_optional(self.reader()).await.db()?;
                raw.map(|r| $crate::unzstd(&r)).transpose()
            }

            async fn stats(&self) -> Result<debcover_core::model::StoreStats, $crate::StoreError> {
                use $crate::rows::Get;
                let r = sqlx::query(
                    "SELECT (SELECT CAST(count(*) AS BIGINT) FROM builds) AS builds,
                            (SELECT CAST(coalesce(sum(ibd_count), 0) AS BIGINT) FROM builds) AS entries,
                            (SELECT CAST(count(*) AS BIGINT) FROM pkgvers) AS pkgvers,
                            (SELECT CAST(count(*) AS BIGINT) FROM binaries) AS binaries",
                )
                .fetch_one(self.reader())
                .await
                .db()?;
                Ok(debcover_core::model::StoreStats {
                    builds: $crate::rows::count(r.int("builds")?),
                    dependency_entries: $crate::rows::count(r.int("entries")?),
                    interned_packages: $crate::rows::count(r.int("pkgvers")?),
                    binaries: $crate::rows::count(r.int("binaries")?),
                    suites: sqlx::query_scalar("SELECT suite FROM suite_binaries UNION SELECT suite FROM suite_sources ORDER BY 1")
                        .fetch_all(self.reader())
                        .await
                        .db()?,
                })
            }
        }
    };
}
pub(crate) use build_store;

/// `impl IndexStore`: `binaries_of_source`, `query_generation` and the rows of `shipping` are
/// shared (the snapshot it reads them in is the backend's).
macro_rules! index_store {
    ($store:ty, { $($own:tt)* }) => {
        impl $crate::IndexStore for $store {
            $($own)*

            async fn binaries_of_source(&self, source: &str) -> Result<Vec<String>, $crate::StoreError> {
                let sql = $crate::shared::sql!($store, "SELECT package FROM binary_sources WHERE source = $1 ORDER BY package");
                Ok(sqlx::query_scalar(sql).bind(source).fetch_all(self.reader()).await.db()?)
            }

            async fn query_generation(&self) -> Result<i64, $crate::StoreError> {
                Ok(sqlx::query_scalar("SELECT gen FROM query_generation WHERE id = 1").fetch_one(self.reader()).await.db()?)
            }
        }
    };
}
pub(crate) use index_store;

/// `impl ArchiveStore`: `suite_arches` is shared.
macro_rules! archive_store {
    ($store:ty, { $($own:tt)* }) => {
        impl $crate::ArchiveStore for $store {
            $($own)*

            async fn suite_arches(&self, suite: &str) -> Result<Vec<String>, $crate::StoreError> {
                let sql = $crate::shared::sql!(
                    $store,
                    "SELECT DISTINCT arch FROM archive_imports WHERE suite = $1 AND kind = 'packages' ORDER BY arch"
                );
                Ok(sqlx::query_scalar(sql).bind(suite).fetch_all(self.reader()).await.db()?)
            }
        }
    };
}
pub(crate) use archive_store;

/// The statement of a shipping snapshot's rows, as [`shipping_row`] reads them.
pub(crate) const SHIPPING_SELECT: &str = "SELECT x.sha256 AS sha256, x.package AS package, x.build_id AS build_id,
        CAST(CASE WHEN x.link = 'name' THEN 1 ELSE 0 END AS BIGINT) AS by_name, s.suite || '/' || s.arch AS place
     FROM suite_binaries s JOIN binaries x ON x.id = s.binary_id";

/// A row of [`SHIPPING_SELECT`].
pub(crate) fn shipping_row(r: &impl crate::rows::Get) -> Result<debcover_core::model::ShippingRow, crate::StoreError> {
    Ok(debcover_core::model::ShippingRow {
        sha256: r.text("sha256")?,
        package: r.text("package")?,
        build_id: r.opt_int("build_id")?,
        by_name: r.int("by_name")? != 0,
        place: r.text("place")?,
    })
}

//! The embedded default backend: one SQLite file, WAL mode.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one connection
//! (no `database is locked` under load: writers queue in the pool, not in SQLite's busy loop),
//! and reads through a separate pool that WAL lets run beside the writer.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::intern::{InternCache, Key};
use crate::rows::{self, Get};
use crate::{BUMP_QUERY_GENERATION, SqlResult, StoreError, batch, now_unix, postings};
use debcover_core::model::{ShippedBinary, ShippedBy, 
    dep_key, split_dep_key,
    BuildRecord, ImportSummary, NewBuild, PackagesImport, PkgVer, ProducedFile, ShippingRow,
    SourcesImport, Stored,
};

mod campaigns;
mod rebuild;

/// Rows per multi-row INSERT: 4 columns × 2,000 rows stays far below SQLite's 32,766 variables.
const ROWS_PER_INSERT: usize = 2000;
/// Values per `IN (...)` list.
const IN_CHUNK: usize = 5000;

/// WAL size (pages) at which the writer checkpoints by itself. Only a backstop: the background
/// checkpointer ([`checkpointer`]) normally keeps the WAL far smaller.
const WRITER_AUTOCHECKPOINT_PAGES: &str = "65536";
/// Least time between two background checkpoints.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    cache: InternCache,
    /// Wakes the background checkpointer after a write (dropped with the store: it then stops).
    checkpoint: tokio::sync::mpsc::Sender<()>,
    /// Group commit of the rebuild scheduler's claims and results.
    batch: rebuild::Batcher,
}

/// Copies committed WAL pages into the database file on its own connection (so on its own
/// thread), off the single writer's path: a checkpoint of tens of MiB takes hundreds of
/// milliseconds, which the writer used to pay inside every few commits. PASSIVE checkpoints
/// never block the writer or readers; SQLite restarts the WAL from its beginning once it has
/// been copied whole, so the file stays small.
async fn checkpointer(mut conn: SqliteConnection, mut wake: tokio::sync::mpsc::Receiver<()>) {
    while wake.recv().await.is_some() {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %e, "background WAL checkpoint failed (the writer's own checkpoints remain)");
        }
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
    }
    let _ = sqlx::Connection::close(conn).await;
}

/// `synchronous=FULL` by default: in WAL mode every commit is on disk before it returns, so an
/// acknowledged result survives a power loss (NORMAL can undo the last commits then; it is
/// still safe against a crash of the process). `DEBCOVER_SQLITE_SYNCHRONOUS=normal` trades
/// that for throughput (BENCHMARKS.md, "Hostile conditions", measures the difference).
fn synchronous() -> Result<SqliteSynchronous, StoreError> {
    match std::env::var("DEBCOVER_SQLITE_SYNCHRONOUS").ok().as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("full") => Ok(SqliteSynchronous::Full),
        Some("normal") => Ok(SqliteSynchronous::Normal),
        Some(other) => Err(StoreError::Setting(format!("DEBCOVER_SQLITE_SYNCHRONOUS={other}: use full (the default) or normal"))),
    }
}

impl SqliteStore {
    /// Open (creating if missing) the database at `url` (`sqlite://PATH` or `sqlite::memory:`),
    /// apply migrations, and load the interning cache.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str(url).db()?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous()?)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            // 32 MiB page cache per connection (negative = KiB).
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "memory")
            // Checkpoints run in the background (`checkpointer`); the writer checkpoints by
            // itself only if the WAL grows past 256 MiB anyway.
            .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await.db()?;
        migrator().run(&writer).await.map_err(|e| StoreError::Migrate(Box::new(e)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.clone().read_only(true))
            .await.db()?;
        let conn = <SqliteConnection as sqlx::Connection>::connect_with(&opts).await.db()?;
        let (checkpoint, wake) = tokio::sync::mpsc::channel(1);
        tokio::spawn(checkpointer(conn, wake));
        let store = SqliteStore {
            writer,
            reader,
            cache: InternCache::default(),
            checkpoint,
            batch: rebuild::Batcher::default(),
        };
        store.load_cache().await?;
        Ok(store)
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front: a deferred
    /// transaction that reads first and upgrades later fails with SQLITE_BUSY (without waiting)
    /// when another process committed in between, e.g. a second coordinator on the same file.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await.db()?)
    }

    /// The pool reads run on (several connections; WAL readers never wait for the writer).
    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    async fn load_cache(&self) -> Result<(), StoreError> {
        let rows = sqlx::query("SELECT id, name, arch, version FROM pkgvers")
            .fetch_all(&self.reader)
            .await.db()?;
        let all = rows.iter().map(rows::pkgver).collect::<Result<Vec<_>, _>>()?;
        self.cache.publish(all.iter().map(|p| (Key::from(dep_key(&p.name, &p.arch, &p.version)), p.id)));
        tracing::debug!(entries = self.cache.len(), "interning cache loaded");
        Ok(())
    }
}

/// The SQLite migrations, embedded in the binary.
fn migrator() -> sqlx::migrate::Migrator {
    crate::migrations!("sqlite")
}

/// Intern every key in `keys` inside `tx`: returns the id of each, in order; `fresh` receives
/// the rows this transaction created (to publish to the cache after commit).
async fn intern(
    tx: &mut SqliteConnection,
    cache: &InternCache,
    keys: &[Key],
    fresh: &mut Vec<(Key, i64)>,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = cache.lookup(keys);
    let missing: Vec<usize> = (0..keys.len()).filter(|i| ids[*i].is_none()).collect();
    if !missing.is_empty() {
        let position: HashMap<&str, usize> = missing.iter().map(|i| (&*keys[*i], *i)).collect();
        for chunk in missing.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO pkgvers (name, arch, version) ");
            qb.push_values(chunk, |mut b, i| {
                let (n, a, v) = split_dep_key(&keys[*i]);
                b.push_bind(n).push_bind(a).push_bind(v);
            });
            qb.push(" ON CONFLICT DO NOTHING RETURNING id, name, arch, version");
            for r in qb.build().fetch_all(&mut *tx).await.db()? {
                let p = rows::pkgver(&r)?;
                let key = dep_key(&p.name, &p.arch, &p.version);
                if let Some(i) = position.get(key.as_str()) {
                    let id = p.id;
                    ids[*i] = Some(id);
                    fresh.push((keys[*i].clone(), id));
                }
            }
        }
        // Rows that existed already but were not cached (written by another process).
        for i in missing {
            if ids[i].is_some() {
                continue;
            }
            let (name, arch, version) = split_dep_key(&keys[i]);
            let id: i64 =
                sqlx::query_scalar("SELECT id FROM pkgvers WHERE name = ? AND arch = ? AND version = ?")
                    .bind(name)
                    .bind(arch)
                    .bind(version)
                    .fetch_one(&mut *tx)
                    .await.db()?;
            ids[i] = Some(id);
            fresh.push((keys[i].clone(), id));
        }
    }
    ids.into_iter()
        .zip(keys)
        .map(|(id, k)| id.ok_or_else(|| StoreError::Corrupt(format!("uninterned {k:?}"))))
        .collect()
}

/// Insert `(binary, source)` name pairs, ignoring duplicates.
async fn insert_binary_sources(
    tx: &mut SqliteConnection,
    pairs: &[(&str, &str)],
) -> Result<(), StoreError> {
    for chunk in pairs.chunks(ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO binary_sources (package, source) ");
        qb.push_values(chunk, |mut b, (bin, src)| {
            b.push_bind(*bin).push_bind(*src);
        });
        qb.push(" ON CONFLICT DO NOTHING");
        qb.build().execute(&mut *tx).await.db()?;
    }
    Ok(())
}

/// Link the binaries among `candidates` to builds: first by SHA-256 of a produced file, then,
/// if still unlinked, by (source, version, architecture), preferring the most recent build.
/// Only candidates are touched, so the cost follows the batch, not the archive's size.
async fn link_binaries(tx: &mut SqliteConnection, candidates: &[i64]) -> Result<(), StoreError> {
    for chunk in candidates.chunks(IN_CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "UPDATE binaries SET link = 'sha256', build_id = (
                 SELECT f.build_id FROM build_files f JOIN builds b ON b.id = f.build_id
                 WHERE f.sha256 = binaries.sha256 AND b.rebuild_of IS NULL
                 ORDER BY f.build_id DESC LIMIT 1)
             WHERE (link IS NULL OR link = 'name')
               AND EXISTS (SELECT 1 FROM build_files f JOIN builds b ON b.id = f.build_id
                           WHERE f.sha256 = binaries.sha256 AND b.rebuild_of IS NULL)
               AND id IN ",
        );
        qb.push_tuples(chunk, |mut b, id| {
            b.push_bind(*id);
        });
        qb.build().execute(&mut *tx).await.db()?;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "UPDATE binaries SET link = 'name', build_id = (
                 SELECT b.id FROM builds b
                 WHERE b.source = binaries.source AND b.version = binaries.version AND b.rebuild_of IS NULL
                   AND (b.host_arch = binaries.architecture
                        OR (binaries.architecture = 'all'
                            AND (' ' || b.architectures || ' ') LIKE '% all %'))
                 ORDER BY b.id DESC LIMIT 1)
             WHERE link IS NULL
               AND EXISTS (SELECT 1 FROM builds b
                 WHERE b.source = binaries.source AND b.version = binaries.version AND b.rebuild_of IS NULL
                   AND (b.host_arch = binaries.architecture
                        OR (binaries.architecture = 'all'
                            AND (' ' || b.architectures || ' ') LIKE '% all %')))
               AND id IN ",
        );
        qb.push_tuples(chunk, |mut b, id| {
            b.push_bind(*id);
        });
        qb.build().execute(&mut *tx).await.db()?;
    }
    Ok(())
}

/// Binaries that new builds may link: those with the SHA-256 of a produced file, and unlinked
/// ones of the same source and version.
async fn binaries_for_builds(tx: &mut SqliteConnection, builds: &[&NewBuild]) -> Result<Vec<i64>, StoreError> {
    let shas: Vec<&str> =
        builds.iter().flat_map(|b| b.info.checksums.iter().filter_map(|c| c.sha256.as_deref())).collect();
    let mut ids = Vec::new();
    for chunk in shas.chunks(IN_CHUNK) {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT id FROM binaries WHERE sha256 IN ");
        qb.push_tuples(chunk, |mut b, sha| {
            b.push_bind(*sha);
        });
        for r in qb.build().fetch_all(&mut *tx).await.db()? {
            ids.push(r.int("id")?);
        }
    }
    let mut names: Vec<(&str, String)> =
        builds.iter().map(|b| (b.info.source.as_str(), b.info.version.to_string())).collect();
    names.sort_unstable();
    names.dedup();
    for chunk in names.chunks(ROWS_PER_INSERT) {
        // The pairs drive the join (CROSS JOIN fixes the loop order): each is one search of the
        // binaries_source index. As `(source, version) IN (VALUES ...)` SQLite scanned every
        // binary of the archive once per batch.
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT b.id AS id FROM (VALUES ");
        let mut sep = qb.separated(", ");
        for (source, version) in chunk {
            sep.push("(").push_bind_unseparated(*source).push_unseparated(", ").push_bind_unseparated(version.as_str()).push_unseparated(")");
        }
        qb.push(
            ") AS v CROSS JOIN binaries b ON b.source = v.column1 AND b.version = v.column2 WHERE b.link IS NULL",
        );
        for r in qb.build().fetch_all(&mut *tx).await.db()? {
            ids.push(r.int("id")?);
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

crate::shared::build_store!(SqliteStore, {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ingest_builds(&self, builds: &[NewBuild]) -> Result<Vec<Stored>, StoreError> {
        let mut tx = self.write_tx().await?;
        let mut known = HashSet::new();
        for chunk in builds.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("SELECT sha256 FROM builds WHERE sha256 IN ");
            qb.push_tuples(chunk, |mut b, nb| {
                b.push_bind(&nb.sha256);
            });
            for r in qb.build().fetch_all(&mut *tx).await.db()? {
                known.insert(r.text("sha256")?);
            }
        }
        let plan = batch::plan(builds, &known);
        if plan.new.is_empty() {
            return Ok(plan.outcomes);
        }
        let mut fresh = Vec::new();
        let pkgver = intern(&mut tx, &self.cache, &plan.keys, &mut fresh).await?;

        let now = now_unix();
        let mut id_of: HashMap<&str, i64> = HashMap::with_capacity(plan.new.len());
        // 100 rows × 16 columns per statement, within SQLite's variable limit.
        for chunk in plan.new.chunks(100) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO builds (sha256, source, source_version, version, architectures,
                     host_arch, build_date, build_origin, layout, signed, ibd_count, origin,
                     ingested_at, raw_size, rebuild_of, signer) ",
            );
            qb.push_values(chunk, |mut b, nb| {
                let i = &nb.info;
                b.push_bind(&nb.sha256)
                    .push_bind(&i.source)
                    .push_bind(i.source_version.to_string())
                    .push_bind(i.version.to_string())
                    .push_bind(i.architectures.join(" "))
                    .push_bind(i.host_architecture())
                    .push_bind(&i.build_date)
                    .push_bind(&i.build_origin)
                    .push_bind(batch::layout_name(i.layout))
                    .push_bind(i.signature.is_some())
                    .push_bind(nb.dep_keys.len() as i64)
                    .push_bind(&nb.origin)
                    .push_bind(now)
                    .push_bind(nb.raw_size as i64)
                    .push_bind(nb.rebuild_of)
                    .push_bind(&nb.signer);
            });
            // RETURNING order is unspecified: map by SHA-256.
            qb.push(" RETURNING id, sha256");
            for r in qb.build().fetch_all(&mut *tx).await.db()? {
                let sha = r.text("sha256")?;
                if let Some(nb) = chunk.iter().find(|nb| nb.sha256 == sha) {
                    id_of.insert(nb.sha256.as_str(), r.int("id")?);
                }
            }
        }
        let mut postings = postings::Lists::new(plan.keys.len());
        let mut names = Vec::new();
        let mut build_ids = Vec::with_capacity(plan.new.len());
        for nb in &plan.new {
            let i = &nb.info;
            let id = *id_of
                .get(nb.sha256.as_str())
                .ok_or_else(|| StoreError::Corrupt(format!("no id returned for build {}", nb.sha256)))?;
            build_ids.push(id);
            for key in &nb.dep_keys {
                postings.add(plan.slot(key)?, id)?;
            }
            for b in &i.binaries {
                names.push((b.as_str(), i.source.as_str()));
            }
        }
        for chunk in plan.new.chunks(500) {
            let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO build_texts (build_id, raw_zstd) ");
            qb.push_values(chunk, |mut b, nb| {
                b.push_bind(id_of.get(nb.sha256.as_str()).copied()).push_bind(&nb.raw_zstd);
            });
            qb.build().execute(&mut *tx).await.db()?;
        }
        for chunk in postings.rows(&pkgver)?.chunks(ROWS_PER_INSERT) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("INSERT INTO build_deps (pkgver_id, first_build_id, build_ids) ");
            qb.push_values(chunk, |mut b, (pv, first, blob)| {
                b.push_bind(*pv).push_bind(*first).push_bind(blob.as_slice());
            });
            qb.build().execute(&mut *tx).await.db()?;
        }
        let files: Vec<_> = plan
            .new
            .iter()
            .zip(&build_ids)
            .flat_map(|(nb, id)| nb.info.checksums.iter().map(move |c| (*id, c)))
            .collect();
        for chunk in files.chunks(ROWS_PER_INSERT / 2) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO build_files (build_id, name, size, sha256, sha1, md5) ",
            );
            qb.push_values(chunk, |mut b, (id, c)| {
                b.push_bind(*id)
                    .push_bind(&c.name)
                    .push_bind(c.size as i64)
                    .push_bind(&c.sha256)
                    .push_bind(&c.sha1)
                    .push_bind(&c.md5);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *tx).await.db()?;
        }
        insert_binary_sources(&mut tx, &names).await?;
        let linking = std::time::Instant::now();
        let candidates = binaries_for_builds(&mut tx, &plan.new).await?;
        link_binaries(&mut tx, &candidates).await?;
        let link_ms = linking.elapsed().as_millis() as u64;
        sqlx::query(BUMP_QUERY_GENERATION).execute(&mut *tx).await.db()?;
        let committing = std::time::Instant::now();
        tx.commit().await.db()?;
        // Full already means a wake-up is pending.
        let _ = self.checkpoint.try_send(());
        tracing::debug!(
            builds = plan.new.len(),
            keys = plan.keys.len(),
            candidates = candidates.len(),
            link_ms,
            commit_ms = committing.elapsed().as_millis() as u64,
            "builds written"
        );
        self.cache.publish(fresh);
        Ok(plan.outcomes)
    }

    async fn builds_by_id(&self, ids: &[i64]) -> Result<Vec<BuildRecord>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {} FROM builds WHERE id IN ", rows::BUILD_COLUMNS));
            qb.push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                out.push(rows::build_record(&r)?);
            }
        }
        Ok(out)
    }

    async fn builds_of_source(
        &self,
        source: &str,
        version: Option<&str>,
        host_arch: Option<&str>,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {} FROM builds WHERE source = ", rows::BUILD_COLUMNS));
        qb.push_bind(source);
        if let Some(v) = version {
            qb.push(" AND (version = ").push_bind(v).push(" OR source_version = ").push_bind(v).push(")");
        }
        if let Some(a) = host_arch {
            qb.push(" AND host_arch = ").push_bind(a);
        }
        qb.push(" ORDER BY id");
        qb.build().fetch_all(&self.reader).await.db()?.iter().map(rows::build_record).collect()
    }

    async fn produced_files(&self, build_ids: &[i64]) -> Result<Vec<ProducedFile>, StoreError> {
        let mut files = self.build_files(build_ids).await?;
        // Where each file ships: by identical bytes, or through a by-name link to its build.
        let shas: Vec<&str> = files.iter().filter_map(|f| f.sha256.as_deref()).collect();
        let mut by_sha: Vec<(String, String)> = Vec::new();
        for chunk in shas.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT x.sha256 AS sha256, s.suite || '/' || s.arch AS place FROM binaries x
                 JOIN suite_binaries s ON s.binary_id = x.id WHERE x.sha256 IN ",
            );
            qb.push_tuples(chunk, |mut b, sha| {
                b.push_bind(*sha);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                by_sha.push((r.text("sha256")?, r.text("place")?));
            }
        }
        let mut by_name: Vec<(i64, String, String)> = Vec::new();
        for chunk in build_ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT x.build_id AS build_id, x.package AS package, s.suite || '/' || s.arch AS place FROM binaries x
                 JOIN suite_binaries s ON s.binary_id = x.id WHERE x.link = 'name' AND x.build_id IN ",
            );
            qb.push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                by_name.push((r.int("build_id")?, r.text("package")?, r.text("place")?));
            }
        }
        batch::attach_shipping(&mut files, by_sha, by_name);
        Ok(files)
    }

    async fn build_files(&self, build_ids: &[i64]) -> Result<Vec<ProducedFile>, StoreError> {
        let mut files = Vec::new();
        for chunk in build_ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT build_id, name, size, sha256 FROM build_files WHERE build_id IN ",
            );
            qb.push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                files.push(rows::produced_file(&r)?);
            }
        }
        Ok(files)
    }
});

crate::shared::archive_store!(SqliteStore, {
    async fn import_packages(&self, import: &PackagesImport) -> Result<ImportSummary, StoreError> {
        let mut tx = self.write_tx().await?;
        for chunk in import.entries.chunks(ROWS_PER_INSERT / 5) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO binaries (sha256, package, version, architecture, source,
                     source_version, filename, size) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(&e.sha256)
                    .push_bind(&e.package)
                    .push_bind(e.version.to_string())
                    .push_bind(&e.architecture)
                    .push_bind(&e.source)
                    .push_bind(e.source_version.to_string())
                    .push_bind(&e.filename)
                    .push_bind(e.size as i64);
            });
            qb.push(" ON CONFLICT (sha256) DO NOTHING");
            qb.build().execute(&mut *tx).await.db()?;
        }
        let mut id_of: HashMap<String, i64> = HashMap::with_capacity(import.entries.len());
        for chunk in import.entries.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("SELECT id, sha256 FROM binaries WHERE sha256 IN ");
            qb.push_tuples(chunk, |mut b, e| {
                b.push_bind(&e.sha256);
            });
            for r in qb.build().fetch_all(&mut *tx).await.db()? {
                id_of.insert(r.text("sha256")?, r.int("id")?);
            }
        }
        let embeds = batch::embeds(&import.entries, &id_of)?;
        for chunk in embeds.chunks(ROWS_PER_INSERT / 2) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("INSERT INTO binary_embeds (binary_id, field, source, version) ");
            qb.push_values(chunk, |mut b, (id, field, src, ver)| {
                b.push_bind(*id).push_bind(*field).push_bind(*src).push_bind(ver.clone());
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *tx).await.db()?;
        }
        let names: Vec<_> =
            import.entries.iter().map(|e| (e.package.as_str(), e.source.as_str())).collect();
        insert_binary_sources(&mut tx, &names).await?;

        let old: HashSet<i64> =
            sqlx::query_scalar("SELECT binary_id FROM suite_binaries WHERE suite = ? AND arch = ?")
                .bind(&import.suite)
                .bind(&import.arch)
                .fetch_all(&mut *tx)
                .await.db()?
                .into_iter()
                .collect();
        let new: HashSet<i64> = id_of.values().copied().collect();
        let removed: Vec<i64> = old.difference(&new).copied().collect();
        let added: Vec<i64> = new.difference(&old).copied().collect();
        for chunk in removed.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("DELETE FROM suite_binaries WHERE suite = ");
            qb.push_bind(&import.suite).push(" AND arch = ").push_bind(&import.arch);
            qb.push(" AND binary_id IN ").push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            qb.build().execute(&mut *tx).await.db()?;
        }
        for chunk in added.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO suite_binaries (suite, arch, binary_id) ");
            qb.push_values(chunk, |mut b, id| {
                b.push_bind(&import.suite).push_bind(&import.arch).push_bind(*id);
            });
            qb.build().execute(&mut *tx).await.db()?;
        }
        let candidates: Vec<i64> = id_of.values().copied().collect();
        link_binaries(&mut tx, &candidates).await?;
        let linked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM suite_binaries s JOIN binaries b ON b.id = s.binary_id
             WHERE s.suite = ? AND s.arch = ? AND b.build_id IS NOT NULL",
        )
        .bind(&import.suite)
        .bind(&import.arch)
        .fetch_one(&mut *tx)
        .await.db()?;
        let summary = ImportSummary {
            entries: import.entries.len() as u64,
            added: added.len() as u64,
            removed: removed.len() as u64,
            linked: linked as u64,
        };
        SqliteStore::record_import(&mut tx, &import.suite, "packages", &import.arch, &import.origin, &import.sha256, &summary)
            .await?;
        sqlx::query(BUMP_QUERY_GENERATION).execute(&mut *tx).await.db()?;
        tx.commit().await.db()?;
        Ok(summary)
    }

    async fn import_sources(&self, import: &SourcesImport) -> Result<ImportSummary, StoreError> {
        let mut tx = self.write_tx().await?;
        for chunk in import.entries.chunks(ROWS_PER_INSERT / 8) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO sources (package, version, binaries, architecture, directory,
                     build_depends, build_depends_indep, build_depends_arch, dsc_sha256) ",
            );
            qb.push_values(chunk, |mut b, e| {
                b.push_bind(&e.package)
                    .push_bind(e.version.to_string())
                    .push_bind(e.binaries.join(" "))
                    .push_bind(e.architecture.join(" "))
                    .push_bind(&e.directory)
                    .push_bind(&e.build_depends)
                    .push_bind(&e.build_depends_indep)
                    .push_bind(&e.build_depends_arch)
                    .push_bind(batch::dsc_sha256(e));
            });
            // Rows from before migration 0005 learn their .dsc hash.
            qb.push(
                " ON CONFLICT (package, version) DO UPDATE SET dsc_sha256 = excluded.dsc_sha256
                  WHERE sources.dsc_sha256 IS NULL AND excluded.dsc_sha256 IS NOT NULL",
            );
            qb.build().execute(&mut *tx).await.db()?;
        }
        let mut new = HashSet::new();
        for e in &import.entries {
            let id: i64 = sqlx::query_scalar("SELECT id FROM sources WHERE package = ? AND version = ?")
                .bind(&e.package)
                .bind(e.version.to_string())
                .fetch_one(&mut *tx)
                .await.db()?;
            new.insert(id);
        }
        let names: Vec<_> = import
            .entries
            .iter()
            .flat_map(|e| e.binaries.iter().map(move |b| (b.as_str(), e.package.as_str())))
            .collect();
        insert_binary_sources(&mut tx, &names).await?;
        let old: HashSet<i64> = sqlx::query_scalar("SELECT source_id FROM suite_sources WHERE suite = ?")
            .bind(&import.suite)
            .fetch_all(&mut *tx)
            .await.db()?
            .into_iter()
            .collect();
        let removed: Vec<i64> = old.difference(&new).copied().collect();
        let added: Vec<i64> = new.difference(&old).copied().collect();
        for id in &removed {
            sqlx::query("DELETE FROM suite_sources WHERE suite = ? AND source_id = ?")
                .bind(&import.suite)
                .bind(id)
                .execute(&mut *tx)
                .await.db()?;
        }
        for chunk in added.chunks(ROWS_PER_INSERT) {
            let mut qb = QueryBuilder::<Sqlite>::new("INSERT INTO suite_sources (suite, source_id) ");
            qb.push_values(chunk, |mut b, id| {
                b.push_bind(&import.suite).push_bind(*id);
            });
            qb.build().execute(&mut *tx).await.db()?;
        }
        let summary = ImportSummary {
            entries: import.entries.len() as u64,
            added: added.len() as u64,
            removed: removed.len() as u64,
            linked: 0,
        };
        SqliteStore::record_import(&mut tx, &import.suite, "sources", "", &import.origin, &import.sha256, &summary).await?;
        sqlx::query(BUMP_QUERY_GENERATION).execute(&mut *tx).await.db()?;
        tx.commit().await.db()?;
        Ok(summary)
    }

    async fn shipped_binaries(&self, suite: &str, by: ShippedBy<'_>) -> Result<Vec<ShippedBinary>, StoreError> {
        static SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {} FROM suite_binaries s JOIN binaries x ON x.id = s.binary_id
                 LEFT JOIN builds b ON b.id = x.build_id
                 WHERE +s.suite = ",
                rows::SHIPPED_COLUMNS
            )
        });
        let mut out = Vec::new();
        match by {
            ShippedBy::All => {
                let mut qb = QueryBuilder::<Sqlite>::new(SELECT.as_str());
                qb.push_bind(suite);
                for r in qb.build().fetch_all(&self.reader).await.db()? {
                    out.push(crate::rows::shipped(&r)?);
                }
                let embeds = sqlx::query(
                    "SELECT e.binary_id AS binary_id, e.field AS field, e.source AS source, e.version AS version FROM binary_embeds e
                     WHERE e.binary_id IN (SELECT binary_id FROM suite_binaries WHERE suite = ?)",
                )
                .bind(suite)
                .fetch_all(&self.reader)
                .await.db()?
                .iter()
                .map(rows::embed)
                .collect::<Result<_, _>>()?;
                crate::rows::attach_embeds(&mut out, embeds);
                return Ok(out);
            }
            ShippedBy::Builds(ids) => {
                for chunk in ids.chunks(IN_CHUNK) {
                    let mut qb = QueryBuilder::<Sqlite>::new(SELECT.as_str());
                    qb.push_bind(suite).push(" AND x.build_id IN ").push_tuples(chunk, |mut b, id| {
                        b.push_bind(*id);
                    });
                    for r in qb.build().fetch_all(&self.reader).await.db()? {
                    out.push(crate::rows::shipped(&r)?);
                }
                }
            }
            ShippedBy::Embedding(names) | ShippedBy::Sources(names) => {
                let embedding = matches!(by, ShippedBy::Embedding(_));
                for chunk in names.chunks(IN_CHUNK) {
                    let mut qb = QueryBuilder::<Sqlite>::new(SELECT.as_str());
                    qb.push_bind(suite);
                    if embedding {
                        qb.push(" AND x.id IN (SELECT binary_id FROM binary_embeds WHERE source IN ");
                    } else {
                        qb.push(" AND x.source IN ");
                    }
                    qb.push_tuples(chunk, |mut b, n| {
                        b.push_bind(n);
                    });
                    if embedding {
                        qb.push(")");
                    }
                    for r in qb.build().fetch_all(&self.reader).await.db()? {
                    out.push(crate::rows::shipped(&r)?);
                }
                }
            }
        }
        let mut ids: Vec<i64> = out.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut embeds = Vec::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "SELECT binary_id, field, source, version FROM binary_embeds WHERE binary_id IN ",
            );
            qb.push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                embeds.push(rows::embed(&r)?);
            }
        }
        crate::rows::attach_embeds(&mut out, embeds);
        Ok(out)
    }
});

crate::shared::index_store!(SqliteStore, {
    async fn pkgvers_named(&self, names: &[String]) -> Result<Vec<PkgVer>, StoreError> {
        let mut out = Vec::new();
        for chunk in names.chunks(IN_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("SELECT id, name, arch, version FROM pkgvers WHERE name IN ");
            qb.push_tuples(chunk, |mut b, n| {
                b.push_bind(n);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                out.push(rows::pkgver(&r)?);
            }
        }
        Ok(out)
    }

    async fn builds_with(
        &self,
        pkgver_ids: &[i64],
        suite: Option<&str>,
        host_arch: Option<&str>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let mut pairs = Vec::new();
        for chunk in pkgver_ids.chunks(IN_CHUNK) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("SELECT pkgver_id, build_ids FROM build_deps WHERE pkgver_id IN ");
            qb.push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                let pv = r.int("pkgver_id")?;
                let blob = r.bytes("build_ids")?;
                pairs.extend(postings::decode(&blob)?.into_iter().map(|b| (b, pv)));
            }
        }
        if suite.is_none() && host_arch.is_none() {
            return Ok(pairs);
        }
        let mut candidates: Vec<i64> = pairs.iter().map(|(b, _)| *b).collect();
        candidates.sort_unstable();
        candidates.dedup();
        let mut keep = HashSet::new();
        for chunk in candidates.chunks(IN_CHUNK) {
            let mut qb = QueryBuilder::<Sqlite>::new("SELECT b.id AS id FROM builds b WHERE b.id IN ");
            qb.push_tuples(chunk, |mut b, id| {
                b.push_bind(*id);
            });
            if let Some(arch) = host_arch {
                qb.push(" AND b.host_arch = ").push_bind(arch);
            }
            if let Some(suite) = suite {
                // `+s.suite`: keeps the planner on the binary_id index. With a bound parameter it
                // otherwise picks the (suite, ...) primary key and scans a whole suite per build.
                qb.push(
                    " AND EXISTS (SELECT 1 FROM binaries x JOIN suite_binaries s ON s.binary_id = x.id
                       WHERE x.build_id = b.id AND +s.suite = ",
                )
                .push_bind(suite)
                .push(")");
            }
            for r in qb.build().fetch_all(&self.reader).await.db()? {
                keep.insert(r.int("id")?);
            }
        }
        pairs.retain(|(b, _)| keep.contains(b));
        Ok(pairs)
    }

    async fn shipping(&self) -> Result<(i64, Vec<ShippingRow>), StoreError> {
        // One read transaction: in WAL mode, one snapshot for the generation and the rows.
        let mut tx = self.reader.begin().await.db()?;
        let generation: i64 =
            sqlx::query_scalar("SELECT gen FROM query_generation WHERE id = 1").fetch_one(&mut *tx).await.db()?;
        let rows = sqlx::query(crate::shared::SHIPPING_SELECT).fetch_all(&mut *tx).await.db()?;
        tx.commit().await.db()?;
        let rows = rows.iter().map(crate::shared::shipping_row).collect::<Result<_, _>>()?;
        Ok((generation, rows))
    }
});

crate::shared::key_store!(SqliteStore);
crate::shared::access_store!(SqliteStore);
crate::shared::view_store!(SqliteStore);
crate::shared::import_record!(SqliteStore, sqlx::SqliteConnection);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every commit of the writer is on disk before it returns (synchronous=FULL, 2): with
    /// NORMAL (1) a power loss could undo a result the node was told was recorded.
    #[tokio::test]
    async fn commits_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&format!("sqlite://{}", dir.path().join("d.sqlite").display())).await.unwrap();
        let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&store.writer).await.unwrap();
        assert_eq!(level, 2, "PRAGMA synchronous of the writer");
    }
}

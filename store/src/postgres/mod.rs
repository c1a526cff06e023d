//! The scale-out backend: PostgreSQL, shared by several coordinators.
//!
//! Bulk writes bind whole columns as arrays and insert with `UNNEST`, so a batch of 250 builds
//! with ~60,000 dependency rows is a handful of statements. Concurrent coordinators are safe:
//! interning and build insertion rely on unique constraints with `ON CONFLICT`, and the
//! membership replacement of one `(suite, arch)` takes a transaction-scoped advisory lock.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::PgPool;

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

/// PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: PgPool,
    cache: InternCache,
}

impl PgStore {
    /// A write transaction.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        Ok(self.pool.begin().await.db()?)
    }

    /// The pool reads run on.
    fn reader(&self) -> &PgPool {
        &self.pool
    }

    /// Connect to `url` (`postgres://...`), apply migrations, and load the interning cache.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await.db()?;
        migrator().run(&pool).await.map_err(|e| StoreError::Migrate(Box::new(e)))?;
        let store = PgStore { pool, cache: InternCache::default() };
        let all = sqlx::query("SELECT id, name, arch, version FROM pkgvers").fetch_all(&store.pool).await.db()?;
        let all = all.iter().map(rows::pkgver).collect::<Result<Vec<_>, _>>()?;
        store.cache.publish(all.iter().map(|p| (Key::from(dep_key(&p.name, &p.arch, &p.version)), p.id)));
        Ok(store)
    }
}

/// The PostgreSQL migrations, embedded in the binary.
fn migrator() -> sqlx::migrate::Migrator {
    crate::migrations!("postgres")
}

/// Intern every key in `keys` inside `tx`: returns the id of each, in order; `fresh` receives
/// the rows not cached before (to publish to the cache after commit).
async fn intern(
    tx: &mut PgConnection,
    cache: &InternCache,
    keys: &[Key],
    fresh: &mut Vec<(Key, i64)>,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = cache.lookup(keys);
    let missing: Vec<usize> = (0..keys.len()).filter(|i| ids[*i].is_none()).collect();
    if !missing.is_empty() {
        let (names, rest): (Vec<&str>, Vec<(&str, &str)>) =
            missing.iter().map(|i| split_dep_key(&keys[*i])).map(|(n, a, v)| (n, (a, v))).unzip();
        let (arches, versions): (Vec<&str>, Vec<&str>) = rest.into_iter().unzip();
        sqlx::query(
            "INSERT INTO pkgvers (name, arch, version)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&names)
        .bind(&arches)
        .bind(&versions)
        .execute(&mut *tx)
        .await.db()?;
        // Read back every missing key: rows we inserted and rows another coordinator inserted.
        let rows = sqlx::query(
            "SELECT p.id AS id, p.name AS name, p.arch AS arch, p.version AS version FROM pkgvers p
             JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS k(name, arch, version)
               ON p.name = k.name AND p.arch = k.arch AND p.version = k.version",
        )
        .bind(&names)
        .bind(&arches)
        .bind(&versions)
        .fetch_all(&mut *tx)
        .await.db()?;
        let position: HashMap<&str, usize> = missing.iter().map(|i| (&*keys[*i], *i)).collect();
        for r in rows {
            let p = rows::pkgver(&r)?;
            let key = dep_key(&p.name, &p.arch, &p.version);
            if let Some(i) = position.get(key.as_str()) {
                let id = p.id;
                ids[*i] = Some(id);
                fresh.push((keys[*i].clone(), id));
            }
        }
    }
    ids.into_iter()
        .zip(keys)
        .map(|(id, k)| id.ok_or_else(|| StoreError::Corrupt(format!("uninterned {k:?}"))))
        .collect()
}

async fn insert_binary_sources(tx: &mut PgConnection, pairs: &[(&str, &str)]) -> Result<(), StoreError> {
    // Sorted and deduplicated: a fixed lock order across concurrent coordinators.
    let mut pairs = pairs.to_vec();
    pairs.sort_unstable();
    pairs.dedup();
    let (bins, srcs): (Vec<&str>, Vec<&str>) = pairs.into_iter().unzip();
    sqlx::query(
        "INSERT INTO binary_sources (package, source)
         SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(&bins)
    .bind(&srcs)
    .execute(&mut *tx)
    .await.db()?;
    Ok(())
}

/// Same rules as the SQLite backend: SHA-256 first, then (source, version, architecture), only
/// for the binaries among `candidates`. Linking updates rows other coordinators may update too;
/// a transaction-scoped advisory lock serialises this step (only this step) across coordinators.
async fn link_binaries(tx: &mut PgConnection, candidates: &[i64]) -> Result<(), StoreError> {
    if candidates.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('debcover link binaries'))")
        .execute(&mut *tx)
        .await.db()?;
    sqlx::query(
        "UPDATE binaries x SET link = 'sha256', build_id = (
             SELECT max(f.build_id) FROM build_files f JOIN builds b ON b.id = f.build_id
             WHERE f.sha256 = x.sha256 AND b.rebuild_of IS NULL)
         WHERE x.id = ANY($1) AND (x.link IS NULL OR x.link = 'name')
           AND EXISTS (SELECT 1 FROM build_files f JOIN builds b ON b.id = f.build_id
                       WHERE f.sha256 = x.sha256 AND b.rebuild_of IS NULL)",
    )
    .bind(candidates)
    .execute(&mut *tx)
    .await.db()?;
    sqlx::query(
        "UPDATE binaries x SET link = 'name', build_id = (
             SELECT b.id FROM builds b
             WHERE b.source = x.source AND b.version = x.version AND b.rebuild_of IS NULL
               AND (b.host_arch = x.architecture
                    OR (x.architecture = 'all' AND ' ' || b.architectures || ' ' LIKE '% all %'))
             ORDER BY b.id DESC LIMIT 1)
         WHERE x.id = ANY($1) AND x.link IS NULL AND EXISTS (
             SELECT 1 FROM builds b
             WHERE b.source = x.source AND b.version = x.version AND b.rebuild_of IS NULL
               AND (b.host_arch = x.architecture
                    OR (x.architecture = 'all' AND ' ' || b.architectures || ' ' LIKE '% all %')))",
    )
    .bind(candidates)
    .execute(&mut *tx)
    .await.db()?;
    Ok(())
}

/// Binaries that new builds may link: those with the SHA-256 of a produced file, and unlinked
/// ones of the same source and version.
async fn binaries_for_builds(tx: &mut PgConnection, builds: &[&NewBuild]) -> Result<Vec<i64>, StoreError> {
    let shas: Vec<&str> =
        builds.iter().flat_map(|b| b.info.checksums.iter().filter_map(|c| c.sha256.as_deref())).collect();
    let sources: Vec<&str> = builds.iter().map(|b| b.info.source.as_str()).collect();
    let versions: Vec<String> = builds.iter().map(|b| b.info.version.to_string()).collect();
    Ok(sqlx::query_scalar(
        "SELECT id FROM binaries WHERE sha256 = ANY($1)
         UNION
         SELECT x.id FROM binaries x JOIN UNNEST($2::text[], $3::text[]) AS k(source, version)
           ON x.source = k.source AND x.version = k.version
         WHERE x.link IS NULL
         ORDER BY 1",
    )
    .bind(&shas)
    .bind(&sources)
    .bind(&versions)
    .fetch_all(&mut *tx)
    .await.db()?)
}

crate::shared::build_store!(PgStore, {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ingest_builds(&self, builds: &[NewBuild]) -> Result<Vec<Stored>, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        let shas: Vec<&str> = builds.iter().map(|b| b.sha256.as_str()).collect();
        let known: HashSet<String> = sqlx::query_scalar("SELECT sha256 FROM builds WHERE sha256 = ANY($1)")
            .bind(&shas)
            .fetch_all(&mut *tx)
            .await.db()?
            .into_iter()
            .collect();
        let mut plan = batch::plan(builds, &known);
        if plan.new.is_empty() {
            return Ok(plan.outcomes);
        }
        let mut fresh = Vec::new();
        let pkgver = intern(&mut tx, &self.cache, &plan.keys, &mut fresh).await?;

        let now = now_unix();
        let mut postings = postings::Lists::new(plan.keys.len());
        let mut names = Vec::new();
        let mut files = FileColumns::default();
        let mut texts: (Vec<i64>, Vec<&[u8]>) = (Vec::new(), Vec::new());
        for (pos, nb) in plan.new.iter().enumerate() {
            let i = &nb.info;
            // ON CONFLICT: another coordinator may have stored the same file since our check.
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO builds (sha256, source, source_version, version, architectures,
                     host_arch, build_date, build_origin, layout, signed, ibd_count, origin,
                     ingested_at, raw_size, rebuild_of, signer)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
                 ON CONFLICT (sha256) DO NOTHING RETURNING id",
            )
            .bind(&nb.sha256)
            .bind(&i.source)
            .bind(i.source_version.to_string())
            .bind(i.version.to_string())
            .bind(i.architectures.join(" "))
            .bind(i.host_architecture())
            .bind(&i.build_date)
            .bind(&i.build_origin)
            .bind(batch::layout_name(i.layout))
            .bind(i.signature.is_some())
            .bind(nb.dep_keys.len() as i64)
            .bind(&nb.origin)
            .bind(now)
            .bind(nb.raw_size as i64)
            .bind(nb.rebuild_of)
            .bind(&nb.signer)
            .fetch_optional(&mut *tx)
            .await.db()?;
            let Some(id) = id else {
                plan.outcomes[plan.positions[pos]] = Stored::AlreadyKnown;
                continue;
            };
            for key in &nb.dep_keys {
                postings.add(plan.slot(key)?, id)?;
            }
            texts.0.push(id);
            texts.1.push(nb.raw_zstd.as_slice());
            for c in &i.checksums {
                files.push(id, c);
            }
            for b in &i.binaries {
                names.push((b.as_str(), i.source.as_str()));
            }
        }
        sqlx::query("INSERT INTO build_texts (build_id, raw_zstd) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])")
            .bind(&texts.0)
            .bind(&texts.1)
            .execute(&mut *tx)
            .await.db()?;
        let rows = postings.rows(&pkgver)?;
        sqlx::query(
            "INSERT INTO build_deps (pkgver_id, first_build_id, build_ids)
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bytea[])",
        )
        .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.as_slice()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await.db()?;
        sqlx::query(
            "INSERT INTO build_files (build_id, name, size, sha256, sha1, md5)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                                  $6::text[]) ON CONFLICT DO NOTHING",
        )
        .bind(&files.build_id)
        .bind(&files.name)
        .bind(&files.size)
        .bind(&files.sha256)
        .bind(&files.sha1)
        .bind(&files.md5)
        .execute(&mut *tx)
        .await.db()?;
        insert_binary_sources(&mut tx, &names).await?;
        let candidates = binaries_for_builds(&mut tx, &plan.new).await?;
        link_binaries(&mut tx, &candidates).await?;
        sqlx::query(BUMP_QUERY_GENERATION).execute(&mut *tx).await.db()?;
        tx.commit().await.db()?;
        self.cache.publish(fresh);
        Ok(plan.outcomes)
    }

    async fn builds_by_id(&self, ids: &[i64]) -> Result<Vec<BuildRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM builds WHERE id = ANY($1)",
            rows::BUILD_COLUMNS
        )))
        .bind(ids)
        .fetch_all(&self.pool)
        .await.db()?;
        rows.iter().map(rows::build_record).collect()
    }

    async fn builds_of_source(
        &self,
        source: &str,
        version: Option<&str>,
        host_arch: Option<&str>,
    ) -> Result<Vec<BuildRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM builds WHERE source = $1
               AND ($2::text IS NULL OR version = $2 OR source_version = $2)
               AND ($3::text IS NULL OR host_arch = $3)
             ORDER BY id",
            rows::BUILD_COLUMNS
        )))
        .bind(source)
        .bind(version)
        .bind(host_arch)
        .fetch_all(&self.pool)
        .await.db()?;
        rows.iter().map(rows::build_record).collect()
    }

    async fn produced_files(&self, build_ids: &[i64]) -> Result<Vec<ProducedFile>, StoreError> {
        let mut files = self.build_files(build_ids).await?;
        let shas: Vec<&str> = files.iter().filter_map(|f| f.sha256.as_deref()).collect();
        let by_sha = sqlx::query(
            "SELECT x.sha256 AS sha256, s.suite || '/' || s.arch AS place FROM binaries x
             JOIN suite_binaries s ON s.binary_id = x.id WHERE x.sha256 = ANY($1)",
        )
        .bind(&shas)
        .fetch_all(&self.pool)
        .await.db()?
        .iter()
        .map(|r| Ok((r.text("sha256")?, r.text("place")?)))
        .collect::<Result<_, StoreError>>()?;
        let by_name = sqlx::query(
            "SELECT x.build_id AS build_id, x.package AS package, s.suite || '/' || s.arch AS place FROM binaries x
             JOIN suite_binaries s ON s.binary_id = x.id WHERE x.link = 'name' AND x.build_id = ANY($1)",
        )
        .bind(build_ids)
        .fetch_all(&self.pool)
        .await.db()?
        .iter()
        .map(|r| Ok((r.int("build_id")?, r.text("package")?, r.text("place")?)))
        .collect::<Result<_, StoreError>>()?;
        batch::attach_shipping(&mut files, by_sha, by_name);
        Ok(files)
    }

    async fn build_files(&self, build_ids: &[i64]) -> Result<Vec<ProducedFile>, StoreError> {
        sqlx::query("SELECT build_id, name, size, sha256 FROM build_files WHERE build_id = ANY($1)")
            .bind(build_ids)
            .fetch_all(&self.pool)
            .await.db()?
            .iter()
            .map(rows::produced_file)
            .collect()
    }
});

crate::shared::archive_store!(PgStore, {
    async fn import_packages(&self, import: &PackagesImport) -> Result<ImportSummary, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        // Serialise membership replacement of one (suite, arch) across coordinators.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("packages {} {}", import.suite, import.arch))
            .execute(&mut *tx)
            .await.db()?;
        let e = &import.entries;
        let col = |f: fn(&debcover_formats::PackagesEntry) -> String| e.iter().map(f).collect::<Vec<_>>();
        let sha = col(|x| x.sha256.clone());
        sqlx::query(
            "INSERT INTO binaries (sha256, package, version, architecture, source, source_version,
                 filename, size)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::bigint[])
             ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&sha)
        .bind(col(|x| x.package.clone()))
        .bind(col(|x| x.version.to_string()))
        .bind(col(|x| x.architecture.clone()))
        .bind(col(|x| x.source.clone()))
        .bind(col(|x| x.source_version.to_string()))
        .bind(col(|x| x.filename.clone()))
        .bind(e.iter().map(|x| x.size as i64).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await.db()?;
        let id_of: HashMap<String, i64> =
            sqlx::query("SELECT id, sha256 FROM binaries WHERE sha256 = ANY($1)")
                .bind(&sha)
                .fetch_all(&mut *tx)
                .await.db()?
                .iter()
                .map(|r| Ok((r.text("sha256")?, r.int("id")?)))
                .collect::<Result<_, StoreError>>()?;
        let embeds = batch::embeds(e, &id_of)?;
        sqlx::query(
            "INSERT INTO binary_embeds (binary_id, field, source, version)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(embeds.iter().map(|x| x.0).collect::<Vec<_>>())
        .bind(embeds.iter().map(|x| x.1).collect::<Vec<_>>())
        .bind(embeds.iter().map(|x| x.2).collect::<Vec<_>>())
        .bind(embeds.iter().map(|x| x.3.as_str()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await.db()?;
        let names: Vec<_> = e.iter().map(|x| (x.package.as_str(), x.source.as_str())).collect();
        insert_binary_sources(&mut tx, &names).await?;

        let new: Vec<i64> = id_of.values().copied().collect();
        let removed = sqlx::query(
            "DELETE FROM suite_binaries WHERE suite = $1 AND arch = $2 AND NOT (binary_id = ANY($3))",
        )
        .bind(&import.suite)
        .bind(&import.arch)
        .bind(&new)
        .execute(&mut *tx)
        .await.db()?
        .rows_affected();
        let added = sqlx::query(
            "INSERT INTO suite_binaries (suite, arch, binary_id)
             SELECT $1, $2, id FROM UNNEST($3::bigint[]) AS t(id) ON CONFLICT DO NOTHING",
        )
        .bind(&import.suite)
        .bind(&import.arch)
        .bind(&new)
        .execute(&mut *tx)
        .await.db()?
        .rows_affected();
        link_binaries(&mut tx, &new).await?;
        let linked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM suite_binaries s JOIN binaries b ON b.id = s.binary_id
             WHERE s.suite = $1 AND s.arch = $2 AND b.build_id IS NOT NULL",
        )
        .bind(&import.suite)
        .bind(&import.arch)
        .fetch_one(&mut *tx)
        .await.db()?;
        let summary =
            ImportSummary { entries: e.len() as u64, added, removed, linked: linked as u64 };
        PgStore::record_import(&mut tx, &import.suite, "packages", &import.arch, &import.origin, &import.sha256, &summary)
            .await?;
        sqlx::query(BUMP_QUERY_GENERATION).execute(&mut *tx).await.db()?;
        tx.commit().await.db()?;
        Ok(summary)
    }

    async fn import_sources(&self, import: &SourcesImport) -> Result<ImportSummary, StoreError> {
        let mut tx = self.pool.begin().await.db()?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("sources {}", import.suite))
            .execute(&mut *tx)
            .await.db()?;
        // One row per (package, version): an upsert may not touch a row twice in one statement.
        let mut seen = HashSet::new();
        let e: Vec<&debcover_formats::SourcesEntry> =
            import.entries.iter().filter(|x| seen.insert((x.package.as_str(), x.version.to_string()))).collect();
        let pkg: Vec<&str> = e.iter().map(|x| x.package.as_str()).collect();
        let ver: Vec<String> = e.iter().map(|x| x.version.to_string()).collect();
        sqlx::query(
            "INSERT INTO sources (package, version, binaries, architecture, directory, build_depends,
                 build_depends_indep, build_depends_arch, dsc_sha256)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::text[], $8::text[], $9::text[])
             ON CONFLICT (package, version) DO UPDATE SET dsc_sha256 = excluded.dsc_sha256
               WHERE sources.dsc_sha256 IS NULL AND excluded.dsc_sha256 IS NOT NULL",
        )
        .bind(&pkg)
        .bind(&ver)
        .bind(e.iter().map(|x| x.binaries.join(" ")).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.architecture.join(" ")).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.directory.clone()).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.build_depends.clone()).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.build_depends_indep.clone()).collect::<Vec<_>>())
        .bind(e.iter().map(|x| x.build_depends_arch.clone()).collect::<Vec<_>>())
        .bind(e.iter().map(|x| batch::dsc_sha256(x)).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await.db()?;
        let new: Vec<i64> = sqlx::query_scalar(
            "SELECT s.id FROM sources s JOIN UNNEST($1::text[], $2::text[]) AS k(package, version)
               ON s.package = k.package AND s.version = k.version",
        )
        .bind(&pkg)
        .bind(&ver)
        .fetch_all(&mut *tx)
        .await.db()?;
        let names: Vec<_> = e
            .iter()
            .flat_map(|x| x.binaries.iter().map(move |b| (b.as_str(), x.package.as_str())))
            .collect();
        insert_binary_sources(&mut tx, &names).await?;
        let removed = sqlx::query("DELETE FROM suite_sources WHERE suite = $1 AND NOT (source_id = ANY($2))")
            .bind(&import.suite)
            .bind(&new)
            .execute(&mut *tx)
            .await.db()?
            .rows_affected();
        let added = sqlx::query(
            "INSERT INTO suite_sources (suite, source_id)
             SELECT $1, id FROM UNNEST($2::bigint[]) AS t(id) ON CONFLICT DO NOTHING",
        )
        .bind(&import.suite)
        .bind(&new)
        .execute(&mut *tx)
        .await.db()?
        .rows_affected();
        let summary = ImportSummary { entries: import.entries.len() as u64, added, removed, linked: 0 };
        PgStore::record_import(&mut tx, &import.suite, "sources", "", &import.origin, &import.sha256, &summary).await?;
        sqlx::query(BUMP_QUERY_GENERATION).execute(&mut *tx).await.db()?;
        tx.commit().await.db()?;
        Ok(summary)
    }

    async fn shipped_binaries(&self, suite: &str, by: ShippedBy<'_>) -> Result<Vec<ShippedBinary>, StoreError> {
        let filter = match by {
            ShippedBy::All => "TRUE",
            ShippedBy::Builds(_) => "x.build_id = ANY($2)",
            ShippedBy::Embedding(_) => "x.id IN (SELECT binary_id FROM binary_embeds WHERE source = ANY($3))",
            ShippedBy::Sources(_) => "x.source = ANY($3)",
        };
        let (ids, names): (&[i64], &[String]) = match by {
            ShippedBy::All => (&[], &[]),
            ShippedBy::Builds(ids) => (ids, &[]),
            ShippedBy::Embedding(n) | ShippedBy::Sources(n) => (&[], n),
        };
        let list = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM suite_binaries s JOIN binaries x ON x.id = s.binary_id
             LEFT JOIN builds b ON b.id = x.build_id
             WHERE s.suite = $1 AND {filter}",
            crate::rows::SHIPPED_COLUMNS
        )))
        .bind(suite)
        .bind(ids)
        .bind(names)
        .fetch_all(&self.pool)
        .await.db()?;
        let mut out: Vec<ShippedBinary> = list.iter().map(crate::rows::shipped).collect::<Result<_, _>>()?;
        let mut ids: Vec<i64> = out.iter().map(|b| b.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let embeds =
            sqlx::query("SELECT binary_id, field, source, version FROM binary_embeds WHERE binary_id = ANY($1)")
                .bind(&ids)
                .fetch_all(&self.pool)
                .await.db()?
                .iter()
                .map(crate::rows::embed)
                .collect::<Result<_, _>>()?;
        crate::rows::attach_embeds(&mut out, embeds);
        Ok(out)
    }
});

crate::shared::index_store!(PgStore, {
    async fn pkgvers_named(&self, names: &[String]) -> Result<Vec<PkgVer>, StoreError> {
        let rows = sqlx::query("SELECT id, name, arch, version FROM pkgvers WHERE name = ANY($1)")
            .bind(names)
            .fetch_all(&self.pool)
            .await.db()?;
        rows.iter().map(rows::pkgver).collect()
    }

    async fn builds_with(
        &self,
        pkgver_ids: &[i64],
        suite: Option<&str>,
        host_arch: Option<&str>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query("SELECT pkgver_id, build_ids FROM build_deps WHERE pkgver_id = ANY($1)")
            .bind(pkgver_ids)
            .fetch_all(&self.pool)
            .await.db()?;
        let mut pairs = Vec::new();
        for r in &rows {
            let pv = r.int("pkgver_id")?;
            let blob = r.bytes("build_ids")?;
            pairs.extend(postings::decode(&blob)?.into_iter().map(|b| (b, pv)));
        }
        if suite.is_none() && host_arch.is_none() {
            return Ok(pairs);
        }
        let mut candidates: Vec<i64> = pairs.iter().map(|(b, _)| *b).collect();
        candidates.sort_unstable();
        candidates.dedup();
        let keep: HashSet<i64> = sqlx::query_scalar(
            "SELECT b.id FROM builds b WHERE b.id = ANY($1)
               AND ($2::text IS NULL OR b.host_arch = $2)
               AND ($3::text IS NULL OR EXISTS (
                   SELECT 1 FROM binaries x JOIN suite_binaries s ON s.binary_id = x.id
                   WHERE x.build_id = b.id AND s.suite = $3))",
        )
        .bind(&candidates)
        .bind(host_arch)
        .bind(suite)
        .fetch_all(&self.pool)
        .await.db()?
        .into_iter()
        .collect();
        pairs.retain(|(b, _)| keep.contains(b));
        Ok(pairs)
    }

    async fn shipping(&self) -> Result<(i64, Vec<ShippingRow>), StoreError> {
        // REPEATABLE READ: the generation and the rows come from one snapshot.
        let mut tx = self.pool.begin().await.db()?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await.db()?;
        let generation: i64 =
            sqlx::query_scalar("SELECT gen FROM query_generation WHERE id = 1").fetch_one(&mut *tx).await.db()?;
        let rows = sqlx::query(crate::shared::SHIPPING_SELECT).fetch_all(&mut *tx).await.db()?;
        tx.commit().await.db()?;
        let rows = rows.iter().map(crate::shared::shipping_row).collect::<Result<_, _>>()?;
        Ok((generation, rows))
    }
});

/// Column arrays for one `UNNEST` insert into `build_files`.
#[derive(Default)]
struct FileColumns {
    build_id: Vec<i64>,
    name: Vec<String>,
    size: Vec<i64>,
    sha256: Vec<Option<String>>,
    sha1: Vec<Option<String>>,
    md5: Vec<Option<String>>,
}

impl FileColumns {
    fn push(&mut self, build_id: i64, c: &debcover_formats::FileChecksum) {
        self.build_id.push(build_id);
        self.name.push(c.name.clone());
        self.size.push(c.size as i64);
        self.sha256.push(c.sha256.clone());
        self.sha1.push(c.sha1.clone());
        self.md5.push(c.md5.clone());
    }
}

crate::shared::key_store!(PgStore);
crate::shared::access_store!(PgStore);
crate::shared::view_store!(PgStore);
crate::shared::import_record!(PgStore, sqlx::PgConnection);

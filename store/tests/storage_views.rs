//! `ViewStore` (the web views' reads) on SQLite and PostgreSQL: one scenario, both backends.
//! PostgreSQL comes from `debcover_tests::pg::TestDatabase` (`DEBCOVER_TEST_PG`), as in
//! `storage.rs`.

use debcover_core::ingest::{self, Limits};
use debcover_core::model::PackagesImport;
use std::collections::{BTreeMap, BTreeSet};

use debcover_core::rebuild::{
    self, Attestation, AttemptOutcome, AttemptReport, FailureCode, NewJob, NodeCaps, Policy, Priority, Requeue,
};
use debcover_core::store::Store;
use debcover_core::store::views::{QueueDepth, StatusFacts, SuiteBuild};
use debcover_server::web::BuildStatus;

/// Day 20,000 since the epoch, 10:00 UTC.
const T0: i64 = 20_000 * 86_400 + 36_000;

fn sha(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// A buildinfo of `source` 1.0-1 on `arch` producing `source_1.0-1_ARCH.deb`.
fn buildinfo(source: &str, arch: &str) -> String {
    let deb = format!("{source}_1.0-1_{arch}.deb");
    format!(
        "Format: 1.0\nSource: {source}\nBinary: {source}\nArchitecture: {arch}\nVersion: 1.0-1\n\
         Checksums-Sha256:\n {} 1000 {deb}\nBuild-Architecture: amd64\n\
         Installed-Build-Depends:\n base-files (= 13),\n gcc (= 4:14.2.0-1)\n",
        sha(&deb)
    )
}

fn packages(shipped: &[(&str, &str)]) -> String {
    shipped
        .iter()
        .map(|(source, arch)| {
            let deb = format!("{source}_1.0-1_{arch}.deb");
            format!(
                "Package: {source}\nVersion: 1.0-1\nArchitecture: {arch}\nFilename: pool/{deb}\nSize: 1000\nSHA256: {}\n\n",
                sha(&deb)
            )
        })
        .collect()
}

async fn scenario<S: Store>(store: S) {
    let builds: Vec<_> = [("repro", "amd64"), ("differs", "amd64"), ("waiting", "amd64"), ("doc", "all"), ("gone", "amd64")]
        .iter()
        .map(|(s, a)| ingest::prepare_build(s, buildinfo(s, a).as_bytes(), &Limits::default()).unwrap())
        .collect();
    store.ingest_builds(&builds).await.unwrap();
    assert_eq!(store.suite_imported_at("sid").await.unwrap(), 0);
    let text = packages(&[("repro", "amd64"), ("differs", "amd64"), ("waiting", "amd64"), ("doc", "all")]);
    let entries = ingest::read_packages("Packages", text.as_bytes(), &Limits::default()).unwrap().0;
    let import = PackagesImport { suite: "sid".into(), arch: "amd64".into(), origin: "t".into(), sha256: sha(&text), entries };
    store.import_packages(&import).await.unwrap();
    assert_eq!(store.suites().await.unwrap(), ["sid"]);
    assert!(store.suite_imported_at("sid").await.unwrap() > 0);

    // Queue all four shipped builds; one node reproduces one, finds another different.
    let mut jobs = Vec::new();
    for b in store.shipped_builds("sid", &[]).await.unwrap() {
        jobs.push(NewJob {
            build_id: b.build_id,
            source: b.source,
            version: b.version,
            arch: b.arch,
            backend: String::new(),
            tags: Vec::new(),
            priority: Priority::Background,
            origin: "test".into(),
        });
    }
    let (first, rest): (Vec<NewJob>, Vec<NewJob>) =
        jobs.into_iter().partition(|j| j.source == "repro" || j.source == "differs");
    store.enqueue(&first, Requeue::UnlessActive, T0).await.unwrap();
    let token = rebuild::new_token();
    let n = store.add_node("op", "n", &rebuild::token_digest(&token), T0).await.unwrap().unwrap();
    let caps = NodeCaps { arches: vec!["amd64".into()], backends: vec!["local".into()], slots: 1, ..Default::default() };
    store.register_node(n.id, &caps, T0).await.unwrap();
    let node = store.node_by_token(&rebuild::token_digest(&token)).await.unwrap().unwrap();
    let policy = Policy { verifiers: 1, max_unreproducible: 1, ..Policy::default() };
    for _ in 0..2 {
        let lease = store.claim(&node, T0, &policy).await.unwrap().expect("a job");
        let outcome = if lease.source == "repro" {
            AttemptOutcome::Reproducible
        } else {
            AttemptOutcome::Unreproducible { differing: vec![format!("{}_1.0-1_amd64.deb", lease.source)] }
        };
        // Signed, as only attested reproductions count towards verification.
        let report = AttemptReport { attestation: Some(Attestation::new(b"{}".to_vec())), ..AttemptReport::bare(outcome) };
        store.finish(node.id, lease.job_id, lease.fence, &report, T0 + 60, &policy).await.unwrap().unwrap();
    }

    store.enqueue(&rest, Requeue::UnlessActive, T0 + 60).await.unwrap();
    assert_eq!(
        store.queue_depth().await.unwrap(),
        [
            QueueDepth { arch: "all".into(), priority: 2, count: 1 },
            QueueDepth { arch: "amd64".into(), priority: 2, count: 1 }
        ]
    );

    let all = store.suite_builds("sid").await.unwrap();
    let by: Vec<(&str, &str, bool, u64, u64, bool)> = all
        .iter()
        .map(|b| (b.source.as_str(), b.arch.as_str(), b.verified, b.reproducible, b.unreproducible, b.last_change >= T0))
        .collect();
    let sources: Vec<&str> = by.iter().map(|b| b.0).collect();
    assert_eq!(sources, ["differs", "doc", "repro", "waiting"], "sorted by source, shipped only: {all:?}");
    let get = |s: &str| *by.iter().find(|b| b.0 == s).unwrap();
    assert_eq!(get("doc"), ("doc", "all", false, 0, 0, true));
    assert_eq!(get("waiting"), ("waiting", "amd64", false, 0, 0, true));
    assert_eq!(get("repro"), ("repro", "amd64", true, 1, 0, true));
    assert_eq!(get("differs"), ("differs", "amd64", false, 0, 1, true));
    let history = store.suite_history("sid").await.unwrap();
    assert!(history.iter().all(|d| d.day == 20_000 && d.arch == "amd64"), "{history:?}");
    assert_eq!(history.iter().map(|d| d.count).sum::<u64>(), 2, "{history:?}");
    assert_eq!(store.node_activity(T0).await.unwrap(), [(node.id, 2)]);
    assert_eq!(store.node_activity(T0 + 61).await.unwrap(), []);

    // The index: amd64 builds and arch:all builds apart.
    let mut amd64: Vec<String> = store.index_builds("sid", "amd64").await.unwrap().into_iter().map(|b| b.source).collect();
    amd64.sort();
    assert_eq!(amd64, ["differs", "repro", "waiting"]);
    let all: Vec<String> = store.index_builds("sid", "all").await.unwrap().into_iter().map(|b| b.source).collect();
    assert_eq!(all, ["doc"]);
    assert!(store.index_builds("nosuch", "amd64").await.unwrap().is_empty());

    // Every status present: a failed attempt, a parked job, a build never queued, a running
    // attempt; times after the ingestion, so that they decide the suite's last change.
    let t1 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 86_400;
    let more: Vec<_> = [("broken", "amd64"), ("stuck", "amd64"), ("idle", "amd64")]
        .iter()
        .map(|(s, a)| ingest::prepare_build(s, buildinfo(s, a).as_bytes(), &Limits::default()).unwrap())
        .collect();
    store.ingest_builds(&more).await.unwrap();
    let text = packages(&[
        ("repro", "amd64"),
        ("differs", "amd64"),
        ("waiting", "amd64"),
        ("doc", "all"),
        ("broken", "amd64"),
        ("stuck", "amd64"),
        ("idle", "amd64"),
    ]);
    let entries = ingest::read_packages("Packages", text.as_bytes(), &Limits::default()).unwrap().0;
    let import = PackagesImport { suite: "sid".into(), arch: "amd64".into(), origin: "t".into(), sha256: sha(&text), entries };
    store.import_packages(&import).await.unwrap();
    let failing: Vec<NewJob> = store
        .shipped_builds("sid", &[])
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.source == "broken" || b.source == "stuck")
        .map(|b| NewJob {
            build_id: b.build_id,
            source: b.source,
            version: b.version,
            arch: b.arch,
            backend: String::new(),
            tags: Vec::new(),
            priority: Priority::Campaign,
            origin: "test".into(),
        })
        .collect();
    assert_eq!(failing.len(), 2);
    store.enqueue(&failing, Requeue::UnlessActive, t1).await.unwrap();
    for i in 0..2 {
        let lease = store.claim(&node, t1 + 10 * i, &policy).await.unwrap().expect("a failing job");
        let failed = AttemptOutcome::Failed { code: FailureCode::BuildFailed, message: "boom".into() };
        // One failure parks "stuck"; "broken" is retried later.
        let budget = Policy { max_failures: if lease.source == "stuck" { 1 } else { 4 }, ..policy.clone() };
        store.finish(node.id, lease.job_id, lease.fence, &AttemptReport::bare(failed), t1 + 10 * i + 5, &budget).await.unwrap().unwrap();
    }
    let running = store.claim(&node, t1 + 100, &policy).await.unwrap().expect("a queued job");
    assert!(running.source == "waiting" || running.source == "doc", "{}", running.source);
    // Activity on a build the suite does not ship moves nothing of the suite's.
    let gone = store.builds_of_source("gone", None, None).await.unwrap();
    let gone_job = NewJob {
        build_id: gone[0].id,
        source: "gone".into(),
        version: "1.0-1".into(),
        arch: "amd64".into(),
        backend: String::new(),
        tags: Vec::new(),
        priority: Priority::Background,
        origin: "test".into(),
    };
    store.enqueue(&[gone_job], Requeue::UnlessActive, t1 + 1_000).await.unwrap();

    let all = store.suite_builds("sid").await.unwrap();
    assert_eq!(all.len(), 7, "{all:?}");
    let statuses: BTreeSet<BuildStatus> = all.iter().map(BuildStatus::of).collect();
    assert_eq!(statuses.len(), BuildStatus::ALL.len(), "every status present: {all:?}");
    let status = |s: &str| BuildStatus::of(all.iter().find(|b| b.source == s).unwrap());
    assert_eq!(status("broken"), BuildStatus::Failed);
    assert_eq!(status("stuck"), BuildStatus::Failed);
    assert_eq!(status("idle"), BuildStatus::Pending);
    assert!(all.iter().find(|b| b.source == "stuck").unwrap().parked);

    // The grouped counts are what the rule gives over the whole list.
    let mut expected: BTreeMap<(String, StatusFacts), u64> = BTreeMap::new();
    for b in &all {
        *expected.entry((b.arch.clone(), b.facts())).or_default() += 1;
    }
    let groups = store.suite_status_counts("sid").await.unwrap();
    let got: BTreeMap<(String, StatusFacts), u64> = groups.iter().map(|g| ((g.arch.clone(), g.facts), g.count)).collect();
    assert_eq!(got.len(), groups.len(), "one group per arch and facts: {groups:?}");
    assert_eq!(got, expected, "{groups:?}");
    let sorted: Vec<(String, StatusFacts)> = groups.iter().map(|g| (g.arch.clone(), g.facts)).collect();
    assert!(sorted.is_sorted(), "{groups:?}");
    let mut per_status: BTreeMap<BuildStatus, u64> = BTreeMap::new();
    for g in &groups {
        *per_status.entry(BuildStatus::judge(g.facts)).or_default() += g.count;
    }
    let mut by_rule: BTreeMap<BuildStatus, u64> = BTreeMap::new();
    for b in &all {
        *by_rule.entry(BuildStatus::of(b)).or_default() += 1;
    }
    assert_eq!(per_status, by_rule);
    assert!(store.suite_status_counts("nosuch").await.unwrap().is_empty());

    // Pages: every size, concatenated, are the whole list in its order; past the end, nothing.
    for limit in 1..=all.len() as u64 + 1 {
        let mut paged: Vec<SuiteBuild> = Vec::new();
        let mut offset = 0;
        loop {
            let page = store.suite_build_page("sid", offset, limit).await.unwrap();
            assert!(page.len() as u64 <= limit);
            if page.is_empty() {
                break;
            }
            paged.extend(page);
            offset += limit;
        }
        assert_eq!(paged, all, "pages of {limit}");
    }
    assert_eq!(store.suite_build_page("sid", 2, 3).await.unwrap(), all[2..5]);
    assert!(store.suite_build_page("sid", all.len() as u64, 10).await.unwrap().is_empty());
    assert!(store.suite_build_page("sid", u64::MAX, u64::MAX).await.unwrap().is_empty());
    assert!(store.suite_build_page("nosuch", 0, 10).await.unwrap().is_empty());

    // The last change, read without the list, is the list's: the running attempt's claim.
    let latest = all.iter().map(|b| b.last_change.max(b.ingested_at)).max().unwrap();
    assert_eq!(latest, t1 + 100);
    assert_eq!(store.suite_last_change("sid").await.unwrap(), latest);
    assert_eq!(store.suite_last_change("nosuch").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_queries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
    scenario(debcover_store::SqliteStore::open(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_queries_on_postgres() {
    let Some(db) = debcover_tests::pg::TestDatabase::create().await else { return };
    scenario(debcover_store::PgStore::open(&db.url).await.unwrap()).await;
}

//! `ViewStore` (the web views' reads) on SQLite and PostgreSQL: one scenario, both backends.
//! PostgreSQL comes from `debcover_tests::pg::TestDatabase` (`DEBCOVER_TEST_PG`), as in
//! `storage.rs`.

use debcover_coordinator::ingest::{self, Limits};
use debcover_coordinator::model::PackagesImport;
use debcover_coordinator::rebuild::{
    self, AttemptOutcome, AttemptReport, NewJob, NodeCaps, Policy, Priority, Requeue,
};
use debcover_coordinator::storage::views::{QueueDepth, ViewStore};

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

async fn scenario<S: ViewStore>(store: S) {
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
        let report = AttemptReport { attestation_sha256: Some("ab".repeat(32)), ..AttemptReport::bare(outcome) };
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_queries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
    scenario(debcover_coordinator::storage::sqlite::SqliteStore::open(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn view_queries_on_postgres() {
    let Some(db) = debcover_tests::pg::TestDatabase::create().await else { return };
    scenario(debcover_coordinator::storage::postgres::PgStore::open(&db.url).await.unwrap()).await;
}

//! The storage conformance suite: every scenario runs against SQLite and PostgreSQL.
//!
//! PostgreSQL databases come from `debcover_tests::pg::TestDatabase` (`DEBCOVER_TEST_PG`): one
//! fresh database per test, dropped afterwards; unreachable PostgreSQL fails under CI and is
//! skipped with a message elsewhere.
//!
//! Expectations are computed independently of the parser: by scanning the real files' lines.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::str::FromStr;

use debcover_core::index::BuiltWithIndex;
use debcover_core::ingest::{self, Limits};
use debcover_core::model::{NewBuild, PackagesImport, SourcesImport, Stored};
use debcover_core::query::{self, BuiltWithQuery, PackageSpec};
use debcover_core::campaign::{
    CampaignRecord, Coverage, Evidence, EvidenceKind, FoundBy, ItemState, Mode, PlannedItem, Transition,
};
use debcover_core::campaign::snapshot::ArchiveCache;
use debcover_core::model::ShippedBy;
use debcover_core::store::Store;
use debcover_store::PgStore;
use debcover_store::SqliteStore;
use debcover_tests::scan_ibd;
use debversion::Version;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata")
}

/// Every real buildinfo that is expected to parse (all but the pre-release layout, which parses
/// too but into a separate layout), as (file name, bytes).
fn real_buildinfos() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(testdata().join("buildinfo"))
        .expect("shared/testdata/buildinfo is missing: tests need ../shared beside the project")
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn prepared() -> Vec<NewBuild> {
    real_buildinfos()
        .iter()
        .map(|(n, b)| ingest::prepare_build(n, b, &Limits::default()).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}


// ---------------------------------------------------------------- backends

/// Run `$body` (an async fn taking a factory that opens a store on the same database) on both
/// backends. The factory lets a scenario open a second "coordinator" on one database.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("t.sqlite").display());
                    super::$name(|| { let url = url.clone(); async move {
                        debcover_store::SqliteStore::open(&url).await.unwrap()
                    }}).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = debcover_tests::pg::TestDatabase::create().await else { return };
                    let url = db.url.clone();
                    super::$name(|| { let url = url.clone(); async move {
                        debcover_store::PgStore::open(&url).await.unwrap()
                    }}).await;
                }
            )*
        }
    };
}

conformance!(
    ingests_every_real_buildinfo_once,
    serves_stored_text_byte_for_byte,
    built_with_follows_debian_version_order,
    source_spec_resolves_to_all_binaries,
    packages_import_replaces_membership_and_links,
    sources_import_maps_binaries_and_replaces_membership,
    builds_of_source_filters_by_version_and_arch,
    two_coordinators_ingest_concurrently,
    builds_ingested_after_packages_get_linked,
    shipped_binaries_by_each_selector,
    campaign_round_trip_and_compare_and_set,
    index_agrees_with_the_store_and_sees_ingest_by_another_coordinator,
    index_follows_archive_reimport,
    compact_answer_equals_built_with,
    sched_dedup_and_priority_order,
    sched_arch_aliases_backends_and_tags,
    sched_lease_expiry_reclaim_and_stale_tokens,
    sched_results_in_one_batch_see_each_other,
    sched_retries_backoff_and_parking,
    sched_node_quarantine,
    sched_operator_independence,
    sched_two_coordinators_claim_concurrently,
    sched_nodes_credentials_and_history,
    sched_jobs_carry_source_and_archive_originals,
    sched_results_store_differences_diffoscope_and_environment_mismatch,
    corroboration_is_stored_with_its_attempt,
    rebuild_builds_are_never_linked_or_queued,
    campaign_fixes_queue_verification_once,
    coverage_rests_on_attested_rebuilds,
    keys_history_and_coordinator_keys,
    sched_finish_stores_every_artifact_and_names_campaign_sources,
    attestations_are_stored_with_their_result_only,
);

// ---------------------------------------------------------------- scenarios

async fn ingests_every_real_buildinfo_once<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    let builds = prepared();
    let first = store.ingest_builds(&builds).await.unwrap();
    assert!(first.iter().all(|s| *s == Stored::Inserted), "{first:?}");
    let again = store.ingest_builds(&builds).await.unwrap();
    assert!(again.iter().all(|s| *s == Stored::AlreadyKnown));
    // The same file twice in one batch is one build.
    let doubled = vec![builds[0].clone(), builds[0].clone()];
    assert_eq!(store.ingest_builds(&doubled).await.unwrap(), vec![Stored::AlreadyKnown; 2]);

    let stats = store.stats().await.unwrap();
    assert_eq!(stats.builds, real_buildinfos().len() as u64);
    let expected_deps: usize =
        real_buildinfos().iter().map(|(_, b)| scan_ibd(&String::from_utf8_lossy(b)).len()).sum();
    assert_eq!(stats.dependency_entries, expected_deps as u64);
    // Interning: builds share (name, arch, version) rows. These 15 files span a decade, so they
    // share little; at suite scale the ratio is ~100:1 (BENCHMARKS.md).
    assert!(stats.interned_packages < stats.dependency_entries, "{stats:?}");

    // A store reopened on the same database sees the same, and reuses interned rows.
    drop(store);
    let store = open().await;
    assert_eq!(store.stats().await.unwrap(), stats);
}

async fn serves_stored_text_byte_for_byte<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    store.ingest_builds(&prepared()).await.unwrap();
    for (name, bytes) in real_buildinfos() {
        let id = debcover_formats::sha256_hex(&bytes);
        let back = store.raw_buildinfo(&id).await.unwrap().unwrap_or_else(|| panic!("{name} not stored"));
        assert!(back == bytes, "{name} differs after storage");
    }
    assert_eq!(store.raw_buildinfo(&"0".repeat(64)).await.unwrap(), None);
}

async fn built_with_follows_debian_version_order<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    store.ingest_builds(&prepared()).await.unwrap();
    for (package, before) in [("libc6", "2.31-0"), ("libc6", "2.31-13"), ("dpkg", "1.19.7"), ("bash", "5.1-2+b3"), ("bash", "5.1-2+b10"), ("tar", "1.30+dfsg-6+b1")] {
        let bound = Version::from_str(before).unwrap();
        let expected: BTreeSet<String> = real_buildinfos()
            .iter()
            .filter(|(_, b)| {
                scan_ibd(&String::from_utf8_lossy(b))
                    .iter()
                    .any(|(n, v)| n == package && Version::from_str(v).unwrap() < bound)
            })
            .map(|(_, b)| debcover_formats::sha256_hex(b))
            .collect();
        let q = BuiltWithQuery {
            package: PackageSpec::Binary(package.into()),
            before: Some(bound.clone()),
            suite: None,
            arch: None,
        };
        let got: BTreeSet<String> =
            query::built_with(&store, &q).await.unwrap().builds.into_iter().map(|m| m.build.sha256).collect();
        assert_eq!(got, expected, "{package} < {before}");
    }
    // Without a bound: every build that had it at all.
    let q = BuiltWithQuery { package: PackageSpec::Binary("dpkg".into()), before: None, suite: None, arch: None };
    let all = query::built_with(&store, &q).await.unwrap();
    let expected = real_buildinfos()
        .iter()
        .filter(|(_, b)| scan_ibd(&String::from_utf8_lossy(b)).iter().any(|(n, _)| n == "dpkg"))
        .count();
    assert_eq!(all.builds.len(), expected);
    assert!(all.builds.iter().all(|m| m.matched.iter().all(|p| p.name == "dpkg")));
}

async fn source_spec_resolves_to_all_binaries<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    store.ingest_builds(&prepared()).await.unwrap();
    // The bash buildinfos' Binary fields name bash's binaries; every build has bash installed.
    let bins = store.binaries_of_source("bash").await.unwrap();
    assert!(bins.contains(&"bash".to_owned()) && bins.contains(&"bash-static".to_owned()), "{bins:?}");
    let q = BuiltWithQuery { package: PackageSpec::Source("bash".into()), before: None, suite: None, arch: None };
    let a = query::built_with(&store, &q).await.unwrap();
    let expected = real_buildinfos()
        .iter()
        .filter(|(_, b)| scan_ibd(&String::from_utf8_lossy(b)).iter().any(|(n, _)| bins.contains(n)))
        .count();
    assert_eq!(a.builds.len(), expected);
    let q = BuiltWithQuery { package: PackageSpec::Source("no-such-source".into()), before: None, suite: None, arch: None };
    let a = query::built_with(&store, &q).await.unwrap();
    assert!(a.resolved.is_empty() && a.builds.is_empty());
}

/// A Packages paragraph shipping the 0xffff .deb of the real buildd buildinfo, with the SHA-256
/// copied from that file's Checksums-Sha256 by a line scan.
fn packages_for_0xffff() -> String {
    let text = std::fs::read_to_string(testdata().join("buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo")).unwrap();
    let (_, size, sha) =
        debcover_tests::checksums(&text).into_iter().find(|(name, _, _)| name == "0xffff_0.8-1+b1_amd64.deb").unwrap();
    format!(
        "Package: 0xffff\nSource: 0xffff (0.8-1)\nVersion: 0.8-1+b1\nArchitecture: amd64\n\
         Filename: pool/main/0/0xffff/0xffff_0.8-1+b1_amd64.deb\nSize: {size}\nSHA256: {sha}\n"
    )
}

fn parse_packages(text: &str) -> Vec<debcover_formats::PackagesEntry> {
    ingest::read_packages("test", text.as_bytes(), &Limits::default()).unwrap().0
}

async fn packages_import_replaces_membership_and_links<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    store.ingest_builds(&prepared()).await.unwrap();
    let real = std::fs::read_to_string(testdata().join("packages/bookworm_amd64_Packages.Built-Using-golang")).unwrap();
    let real_count = real.split("\n\n").filter(|p| p.contains("Package:")).count();
    let full = format!("{real}\n{}", packages_for_0xffff());
    let entries = parse_packages(&full);
    assert_eq!(entries.len(), real_count + 1);
    let import = |entries: Vec<_>| PackagesImport {
        suite: "bookworm".into(),
        arch: "amd64".into(),
        origin: "test".into(),
        sha256: "x".into(),
        entries,
    };
    let s = store.import_packages(&import(entries.clone())).await.unwrap();
    assert_eq!((s.entries, s.added, s.removed, s.linked), (real_count as u64 + 1, real_count as u64 + 1, 0, 1));

    // Re-import unchanged: nothing moves.
    let s = store.import_packages(&import(entries.clone())).await.unwrap();
    assert_eq!((s.added, s.removed), (0, 0));

    // The 0xffff build is now shipped in bookworm: the suite filter finds it, by SHA-256.
    let q = BuiltWithQuery {
        package: PackageSpec::Binary("libusb-dev".into()),
        before: None,
        suite: Some("bookworm".into()),
        arch: None,
    };
    let a = query::built_with(&store, &q).await.unwrap();
    assert_eq!(a.builds.len(), 1, "{:?}", a.builds.iter().map(|b| &b.build.source).collect::<Vec<_>>());
    assert_eq!(a.builds[0].build.source, "0xffff");
    assert_eq!(a.builds[0].build.version, "0.8-1+b1");
    let deb: Vec<_> = a.builds[0].files.iter().map(|f| (f.name.as_str(), f.shipped_in.clone())).collect();
    assert_eq!(deb, vec![("0xffff_0.8-1+b1_amd64.deb", vec!["bookworm/amd64".to_owned()])]);
    // A suite that does not ship it: no match.
    let q2 = BuiltWithQuery { suite: Some("trixie".into()), ..q.clone() };
    assert!(query::built_with(&store, &q2).await.unwrap().builds.is_empty());

    // Re-import without 0xffff and half the rest: those leave the suite.
    let kept: Vec<_> = entries.iter().take(real_count / 2).cloned().collect();
    let s = store.import_packages(&import(kept.clone())).await.unwrap();
    assert_eq!((s.added, s.removed), (0, (entries.len() - kept.len()) as u64));
    assert!(query::built_with(&store, &q).await.unwrap().builds.is_empty());
    // Another architecture's membership is independent.
    let other = PackagesImport { arch: "arm64".into(), ..import(kept) };
    let s = store.import_packages(&other).await.unwrap();
    assert_eq!((s.added, s.removed), ((real_count / 2) as u64, 0));
    assert!(store.stats().await.unwrap().suites == vec!["bookworm".to_owned()]);
}

async fn sources_import_maps_binaries_and_replaces_membership<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    let text = std::fs::read(testdata().join("packages/bookworm_Sources.go-and-rust-subset")).unwrap();
    let (entries, _) = ingest::read_sources("Sources", &text[..], &Limits::default()).unwrap();
    let n = entries.len() as u64;
    let import = |entries| SourcesImport { suite: "bookworm".into(), origin: "t".into(), sha256: "s".into(), entries };
    let s = store.import_sources(&import(entries.clone())).await.unwrap();
    assert_eq!((s.entries, s.added, s.removed), (n, n, 0));
    // Binary lists come from the Sources paragraphs: check one by a line scan.
    let para = String::from_utf8_lossy(&text)
        .split("\n\n")
        .find(|p| p.starts_with("Package: golang-golang-x-tools\n"))
        .map(str::to_owned)
        .expect("golang-golang-x-tools in the Sources subset");
    let bin_line = para.lines().find(|l| l.starts_with("Binary:")).unwrap();
    let expected: BTreeSet<String> =
        bin_line["Binary:".len()..].split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    let got: BTreeSet<String> = store.binaries_of_source("golang-golang-x-tools").await.unwrap().into_iter().collect();
    assert!(expected.is_subset(&got), "{expected:?} vs {got:?}");
    let s = store.import_sources(&import(entries[..10].to_vec())).await.unwrap();
    assert_eq!((s.added, s.removed), (0, n - 10));
}

async fn builds_of_source_filters_by_version_and_arch<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    store.ingest_builds(&prepared()).await.unwrap();
    let bash = store.builds_of_source("bash", None, None).await.unwrap();
    let expected = real_buildinfos()
        .iter()
        .filter(|(_, b)| String::from_utf8_lossy(b).lines().any(|l| l == "Source: bash" || l.starts_with("Source: bash (")))
        .count();
    assert_eq!(bash.len(), expected);
    // binNMU: the source version finds the +bN builds too.
    let by_src = store.builds_of_source("bash", Some("5.1-2"), None).await.unwrap();
    assert!(by_src.iter().all(|b| b.source_version == "5.1-2") && !by_src.is_empty());
    let amd64 = store.builds_of_source("bash", Some("5.1-2+b3"), Some("amd64")).await.unwrap();
    assert_eq!(amd64.len(), 1);
    assert_eq!(amd64[0].architectures, vec!["amd64".to_owned()]);
    let all = store.builds_of_source("bash", Some("5.1-2+b3"), Some("all")).await.unwrap();
    assert_eq!(all.len(), 1);
}

async fn two_coordinators_ingest_concurrently<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let a = std::sync::Arc::new(open().await);
    let b = std::sync::Arc::new(open().await);
    let builds = prepared();
    let (x, y) = (builds.clone(), builds.clone());
    let ta = tokio::spawn({ let a = a.clone(); async move { a.ingest_builds(&x).await } });
    let tb = tokio::spawn({ let b = b.clone(); async move { b.ingest_builds(&y).await } });
    let ra = ta.await.unwrap().unwrap();
    let rb = tb.await.unwrap().unwrap();
    // Each build was inserted by exactly one of them.
    for (i, (p, q)) in ra.iter().zip(&rb).enumerate() {
        assert!(
            (*p == Stored::Inserted) != (*q == Stored::Inserted),
            "build {i}: {p:?} / {q:?}"
        );
    }
    let stats = a.stats().await.unwrap();
    assert_eq!(stats.builds, builds.len() as u64);
    let expected_deps: u64 = builds.iter().map(|b| b.dep_keys.len() as u64).sum();
    assert_eq!(stats.dependency_entries, expected_deps);
    // Interning converged: both coordinators answer identically.
    let q = BuiltWithQuery { package: PackageSpec::Binary("libc6".into()), before: None, suite: None, arch: None };
    let ids = |ans: query::BuiltWithAnswer| ans.builds.into_iter().map(|m| m.build.sha256).collect::<BTreeSet<_>>();
    assert_eq!(ids(query::built_with(&*a, &q).await.unwrap()), ids(query::built_with(&*b, &q).await.unwrap()));
}

#[allow(dead_code)]
fn _types_are_used(_: SqliteStore, _: PgStore) {}

async fn builds_ingested_after_packages_get_linked<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    // The archive first: nothing to link yet.
    let import = PackagesImport {
        suite: "sid".into(),
        arch: "amd64".into(),
        origin: "t".into(),
        sha256: "s".into(),
        entries: parse_packages(&packages_for_0xffff()),
    };
    assert_eq!(store.import_packages(&import).await.unwrap().linked, 0);
    // Then the builds: the 0xffff .deb now links by SHA-256, and the suite filter sees it.
    store.ingest_builds(&prepared()).await.unwrap();
    let q = BuiltWithQuery {
        package: PackageSpec::Binary("libusb-dev".into()),
        before: None,
        suite: Some("sid".into()),
        arch: None,
    };
    let a = query::built_with(&store, &q).await.unwrap();
    let found: Vec<_> = a.builds.iter().map(|m| (m.build.source.as_str(), m.build.version.as_str())).collect();
    assert_eq!(found, vec![("0xffff", "0.8-1+b1")]);
    // Re-importing reports the link.
    assert_eq!(store.import_packages(&import).await.unwrap().linked, 1);
}

// ---------------------------------------------------------------- campaign storage

/// `suite_arches` and each `ShippedBy` selector, on a real bookworm Packages excerpt; the
/// expectations come from a line scan of the same file, not from the Packages parser.
async fn shipped_binaries_by_each_selector<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    let path = testdata().join("packages/bookworm_amd64_Packages.Static-Built-Using");
    let text = std::fs::read_to_string(&path).unwrap();
    let import = PackagesImport {
        suite: "bookworm".into(),
        arch: "amd64".into(),
        origin: "t".into(),
        sha256: "s".into(),
        entries: parse_packages(&text),
    };
    store.import_packages(&import).await.unwrap();
    assert_eq!(store.suite_arches("bookworm").await.unwrap(), vec!["amd64".to_owned()]);
    assert!(store.suite_arches("trixie").await.unwrap().is_empty());

    // Independent scan: which packages name which source in any Built-Using-family field.
    let paras = debcover_tests::paragraphs(&text);
    let field = |p: &[(String, String)], f: &str| p.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone());
    let mut named: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for p in &paras {
        let pkg = field(p, "Package").unwrap();
        for f in ["Built-Using", "Static-Built-Using", "X-Cargo-Built-Using"] {
            for rel in field(p, f).unwrap_or_default().split(',') {
                if let Some(src) = rel.split_whitespace().next() {
                    named.entry(src.to_owned()).or_default().insert(pkg.clone());
                }
            }
        }
    }
    let (lib, expected) = named.iter().max_by_key(|(_, v)| v.len()).unwrap();
    assert!(expected.len() >= 2, "the excerpt should have a library embedded by several packages");
    let got: BTreeSet<String> = store
        .shipped_binaries("bookworm", ShippedBy::Embedding(std::slice::from_ref(lib)))
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.package)
        .collect();
    assert_eq!(&got, expected, "binaries declaring {lib}");
    assert!(store.shipped_binaries("trixie", ShippedBy::Embedding(std::slice::from_ref(lib))).await.unwrap().is_empty());

    // Everything the suite ships, declarations attached.
    let all = store.shipped_binaries("bookworm", ShippedBy::All).await.unwrap();
    assert_eq!(all.len(), paras.len());
    let declaring: BTreeSet<String> =
        all.iter().filter(|b| b.embeds.iter().any(|(_, s, _)| s == lib)).map(|b| b.package.clone()).collect();
    assert_eq!(&declaring, expected, "ShippedBy::All carries the same declarations");

    // The in-memory snapshot selects the same, and follows a re-import (another generation).
    let cache = ArchiveCache::new();
    let snap = cache.suite(&store, "bookworm").await.unwrap();
    let via_snapshot: BTreeSet<String> =
        snap.select(ShippedBy::Embedding(std::slice::from_ref(lib))).into_iter().map(|b| b.package.clone()).collect();
    assert_eq!(&via_snapshot, expected);
    assert!(std::sync::Arc::ptr_eq(&snap, &cache.suite(&store, "bookworm").await.unwrap()), "reused while nothing changed");
    let fewer: String = text.split("\n\n").skip(1).collect::<Vec<_>>().join("\n\n");
    let smaller = PackagesImport { sha256: "s-smaller".into(), entries: parse_packages(&fewer), ..import.clone() };
    store.import_packages(&smaller).await.unwrap();
    let snap = cache.suite(&store, "bookworm").await.unwrap();
    assert_eq!(snap.binaries.len(), paras.len() - 1, "the snapshot follows the new index");
    store.import_packages(&import).await.unwrap();

    // By source: the Source field's first word, or the package name when there is none.
    let src_of = |p: &[(String, String)]| {
        field(p, "Source").and_then(|s| s.split_whitespace().next().map(str::to_owned)).unwrap_or_else(|| field(p, "Package").unwrap())
    };
    let some_source = src_of(&paras[0]);
    let expected: BTreeSet<String> =
        paras.iter().filter(|p| src_of(p) == some_source).map(|p| field(p, "Package").unwrap()).collect();
    let shipped = store.shipped_binaries("bookworm", ShippedBy::Sources(std::slice::from_ref(&some_source))).await.unwrap();
    assert_eq!(shipped.iter().map(|b| b.package.clone()).collect::<BTreeSet<_>>(), expected);
    assert!(shipped.iter().all(|b| b.build.is_none() && b.suite == "bookworm" && b.index_arch == "amd64"));

    // By build: the real 0xffff buildinfo links to its .deb by SHA-256.
    store.ingest_builds(&prepared()).await.unwrap();
    let sid = PackagesImport {
        suite: "sid".into(),
        arch: "amd64".into(),
        origin: "t".into(),
        sha256: "s2".into(),
        entries: parse_packages(&packages_for_0xffff()),
    };
    store.import_packages(&sid).await.unwrap();
    let by_source = store.shipped_binaries("sid", ShippedBy::Sources(&["0xffff".to_owned()])).await.unwrap();
    assert_eq!(by_source.len(), 1);
    let (build, _, by_bytes) = by_source[0].build.clone().expect("0xffff links to its build");
    assert!(by_bytes, "linked by SHA-256");
    let by_build = store.shipped_binaries("sid", ShippedBy::Builds(&[build])).await.unwrap();
    assert_eq!(by_build.iter().map(|b| b.package.as_str()).collect::<Vec<_>>(), vec!["0xffff"]);
    assert!(store.shipped_binaries("bookworm", ShippedBy::Builds(&[build])).await.unwrap().is_empty());
}

/// A bare campaign for libvuln (fixed in 1.1-1) in sid.
fn libvuln_campaign() -> CampaignRecord {
    CampaignRecord {
        id: 0,
        title: "t".into(),
        library: "libvuln".into(),
        fixed_version: "1.1-1".into(),
        suites: vec!["sid".into()],
        arches: vec![],
        mode: Mode::Binnmu,
        advisories: vec![],
        max_depth: 8,
        created_at: 1,
        notes: vec![],
    }
}

fn planned(source: &str, wave: u32) -> PlannedItem {
    PlannedItem {
        suite: "sid".into(),
        source: source.into(),
        arch: "amd64".into(),
        source_version: "1.0-1".into(),
        version: "1.0-1".into(),
        build_sha256: Some("ab".repeat(32)),
        binaries: vec![source.into()],
        wave,
        cycle: None,
        found_by: FoundBy::Both,
        evidence: vec![Evidence {
            kind: EvidenceKind::StaticBuiltUsing,
            binary: source.into(),
            package: "libvuln".into(),
            version: "1.0-1".into(),
            vulnerable: true,
            through: None,
        }],
        notes: vec!["a note".into()],
        after: vec![],
        upstream: vec![],
        planned_version: None,
    }
}

/// A campaign and its items survive the round trip unchanged; a state change is applied by
/// exactly one of two coordinators racing on it, and a change from a stale state is skipped.
async fn campaign_round_trip_and_compare_and_set<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let a = std::sync::Arc::new(open().await);
    let b = std::sync::Arc::new(open().await);
    let record = CampaignRecord {
        id: 0,
        title: "libvuln CVE-2026-0001".into(),
        library: "libvuln".into(),
        fixed_version: "1.1-1".into(),
        suites: vec!["sid".into()],
        arches: vec!["amd64".into()],
        mode: Mode::Binnmu,
        advisories: vec!["CVE-2026-0001".into(), "DSA-0000-1".into()],
        max_depth: 8,
        created_at: 1_795_000_000,
        notes: vec!["plan note".into()],
    };
    let mut second = planned("app-c", 2);
    second.after = vec!["sid/libmid/amd64".into()];
    let items = vec![planned("app-a", 1), second];
    let id = a.create_campaign(&record, &items).await.unwrap();
    assert!(a.campaign(id + 1000).await.unwrap().is_none());

    let back = b.campaign(id).await.unwrap().expect("the campaign is stored");
    assert_eq!(
        (&back.title, &back.library, &back.fixed_version, &back.suites, &back.arches, back.mode, &back.advisories, back.max_depth, &back.notes),
        (&record.title, &record.library, &record.fixed_version, &record.suites, &record.arches, record.mode, &record.advisories, record.max_depth, &record.notes)
    );
    assert_eq!(back.created_at, record.created_at);
    let list = b.campaigns().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].1, vec![("affected".to_owned(), 2)]);

    let stored = b.campaign_items(Some(id), None).await.unwrap();
    let mut planned_back: Vec<PlannedItem> = stored.iter().map(|i| i.planned.clone()).collect();
    planned_back.sort_by(|x, y| x.source.cmp(&y.source));
    assert_eq!(planned_back, items, "planned items round-trip unchanged");
    assert!(stored.iter().all(|i| i.state == ItemState::Affected && i.current_version == "1.0-1"));
    let only_c = b.campaign_items(None, Some(&["app-c".to_owned()])).await.unwrap();
    assert_eq!(only_c.len(), 1);
    assert_eq!(only_c[0].planned.source, "app-c");
    assert!(b.campaign_items(Some(id + 1000), None).await.unwrap().is_empty());

    // Two coordinators race to record the same change: exactly one applies it.
    let item = stored.iter().find(|i| i.planned.source == "app-a").unwrap().id;
    let change = Transition {
        campaign_id: 0,
        builds: Vec::new(),
        coverage: Coverage::NotShippedYet,
        item_id: item,
        from: ItemState::Affected,
        to: ItemState::Rebuilt,
        version: "1.0-1+b1".into(),
        reason: "1.0-1+b1 ships".into(),
        evidence: vec![Evidence {
            kind: EvidenceKind::InstalledBuildDepends,
            binary: "app-a".into(),
            package: "libvuln-dev".into(),
            version: "1.1-1".into(),
            vulnerable: false,
            through: None,
        }],
    };
    let (ca, cb) = (vec![change.clone()], vec![change.clone()]);
    let ta = tokio::spawn({ let a = a.clone(); async move { a.record_transitions(&ca).await } });
    let tb = tokio::spawn({ let b = b.clone(); async move { b.record_transitions(&cb).await } });
    let applied = ta.await.unwrap().unwrap() + tb.await.unwrap().unwrap();
    assert_eq!(applied, 1, "compare-and-set: one of the two coordinators wins");
    // A change judged from a state the item has left is skipped.
    let stale = Transition { to: ItemState::Superseded, ..change.clone() };
    assert_eq!(a.record_transitions(&[stale]).await.unwrap(), 0);

    let now = a.campaign_items(Some(id), Some(&["app-a".to_owned()])).await.unwrap();
    assert_eq!((now[0].state, now[0].current_version.as_str(), now[0].reason.as_str()), (ItemState::Rebuilt, "1.0-1+b1", "1.0-1+b1 ships"));
    let counts = a.campaigns().await.unwrap().remove(0).1;
    assert_eq!(counts.iter().map(|(s, n)| (s.as_str(), *n)).collect::<BTreeSet<_>>(), BTreeSet::from([("affected", 1), ("rebuilt", 1)]));

    let events = b.campaign_events(id).await.unwrap();
    assert_eq!(events.len(), 3, "two creation events and one change: {events:?}");
    assert!(events[..2].iter().all(|e| e.from.is_none() && e.to == ItemState::Affected));
    let last = &events[2];
    assert_eq!((last.from, last.to, last.version.as_str(), last.item.as_str()), (Some(ItemState::Affected), ItemState::Rebuilt, "1.0-1+b1", "app-a/amd64"));
    assert_eq!(last.evidence, change.evidence);
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at), "oldest first");
}

// ---------------------------------------------------------------- the built-with index

/// An answer reduced to comparable values: per build, its id, matched entries and files.
type Flat = (Vec<String>, Vec<(String, Vec<(String, String, String)>, Vec<(String, Option<String>, Vec<String>)>)>);

fn flat(a: query::BuiltWithAnswer) -> Flat {
    (
        a.resolved,
        a.builds
            .into_iter()
            .map(|m| {
                (
                    m.build.sha256,
                    m.matched.into_iter().map(|p| (p.name, p.arch, p.version)).collect(),
                    m.files.into_iter().map(|f| (f.name, f.sha256, f.shipped_in)).collect(),
                )
            })
            .collect(),
    )
}

/// Every page of an answer (default page limits).
fn encode_all(a: &debcover_core::index::IndexedAnswer) -> Vec<debcover_wire::pb::BuiltWithPage> {
    let mut pages = Vec::new();
    debcover_wire::built_with::encode_pages(a, Default::default(), |p| {
        pages.push(p);
        true
    });
    pages
}

/// An answer's pages, decoded (every column checked).
fn decode_all(a: &debcover_core::index::IndexedAnswer) -> debcover_core::model::BuiltWithResult {
    let mut d = debcover_wire::built_with::Pages::new();
    for p in encode_all(a) {
        d.add(&p).unwrap();
    }
    d.finish()
}

/// An indexed answer as domain values, field by field through the per-message conversions
/// (`BuildSummary`, `Dependency`, `Binary`): what the pages must decode to.
fn expected_result(a: &debcover_core::index::IndexedAnswer) -> debcover_core::model::BuiltWithResult {
    use debcover_wire::convert;
    debcover_core::model::BuiltWithResult {
        resolved_packages: a.resolved.clone(),
        builds: a
            .builds
            .iter()
            .map(|m| debcover_core::model::ResultBuild {
                build: convert::build_summary_of(convert::build_summary(&m.resolved.build.record)),
                matched: m.matched.iter().map(|p| convert::dependency_of(convert::dependency(p))).collect(),
                binaries: m.files().iter().map(|f| convert::binary_summary_of(convert::binary(f))).collect(),
            })
            .collect(),
    }
}

/// The index's answer equals the store's (uncached) answer.
async fn same_answer<S: Store>(index: &BuiltWithIndex, store: &S, q: &BuiltWithQuery) -> Flat {
    let indexed = index.built_with(store, q).await.unwrap();
    // The answer's pages (small ones, so that answers span several) decode to the domain values
    // of the answer, field by field.
    let limits = debcover_wire::built_with::PageLimits { builds: 2, binaries: 5 };
    let mut pages = debcover_wire::built_with::Pages::new();
    debcover_wire::built_with::encode_pages(&indexed, limits, |page| {
        pages.add(&page).unwrap_or_else(|e| panic!("{q:?}: {e}"));
        true
    });
    let decoded = pages.finish();
    let full = expected_result(&indexed);
    assert_eq!(decoded.resolved_packages, full.resolved_packages, "{q:?}");
    assert_eq!(decoded.builds.len(), full.builds.len(), "{q:?}");
    for (c, f) in decoded.builds.iter().zip(&full.builds) {
        assert_eq!(c.build, f.build, "{q:?}");
        assert_eq!(c.matched, f.matched, "{q:?} {}", f.build.id);
        assert_eq!(c.binaries.len(), f.binaries.len(), "{q:?} {}", f.build.id);
        for (cb, fb) in c.binaries.iter().zip(&f.binaries) {
            assert_eq!(cb, fb, "{q:?} {}", f.build.id);
        }
    }
    let cached = flat(indexed.into_answer());
    let direct = flat(query::built_with(store, q).await.unwrap());
    assert_eq!(cached, direct, "{q:?}");
    cached
}

async fn index_agrees_with_the_store_and_sees_ingest_by_another_coordinator<
    S: Store,
    F: std::future::Future<Output = S>,
>(
    open: impl Fn() -> F,
) {
    let a = open().await;
    let b = open().await;
    let builds = prepared();
    let (first, second) = builds.split_at(builds.len() / 2);
    a.ingest_builds(first).await.unwrap();
    let index = BuiltWithIndex::new();
    let questions: Vec<BuiltWithQuery> = [("libc6", None), ("libc6", Some("2.31-13")), ("dpkg", Some("1.19.7")), ("bash", None)]
        .into_iter()
        .map(|(p, v)| BuiltWithQuery {
            package: PackageSpec::Binary(p.into()),
            before: v.map(|v| Version::from_str(v).unwrap()),
            suite: None,
            arch: None,
        })
        .chain([
            BuiltWithQuery { package: PackageSpec::Source("bash".into()), before: None, suite: None, arch: None },
            BuiltWithQuery {
                package: PackageSpec::Binary("libc6".into()),
                before: None,
                suite: None,
                arch: Some("amd64".into()),
            },
        ])
        .collect();
    let mut before = Vec::new();
    for q in &questions {
        before.push(same_answer(&index, &a, q).await);
        // Asked twice: answered from the index, still the same.
        assert_eq!(same_answer(&index, &a, q).await, *before.last().unwrap());
    }
    // Another coordinator on the same database stores the rest: the index (held by `a`'s
    // process, which wrote nothing) must see it.
    b.ingest_builds(second).await.unwrap();
    let mut grew = false;
    for (q, old) in questions.iter().zip(&before) {
        let new = same_answer(&index, &a, q).await;
        grew |= new.1.len() > old.1.len();
    }
    assert!(grew, "no answer changed after the second half was ingested");
    let all = flat(index.built_with(&a, &questions[0]).await.unwrap().into_answer());
    let expected = real_buildinfos()
        .iter()
        .filter(|(_, t)| scan_ibd(&String::from_utf8_lossy(t)).iter().any(|(n, _)| n == "libc6"))
        .count();
    assert_eq!(all.1.len(), expected);
}

/// The compact answer against BuiltWith's (in `same_answer`) on many builds, with `--before`,
/// `--suite`, `--arch` and `src:NAME`, and builds whose values are not of the compact form
/// (a file name that is not NAME_VERSION_ARCH.EXT, no Checksums-Sha256, origins without a number).
async fn compact_answer_equals_built_with<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let a = open().await;
    a.ingest_builds(&prepared()).await.unwrap();
    a.ingest_builds(&synthetic_builds(300)).await.unwrap();
    let text = std::fs::read_to_string(testdata().join("buildinfo/aptly__hardlink_0.2.1_amd64.buildinfo")).unwrap();
    let odd = text.replacen("Source: hardlink\n", "Source: oddity\n", 1).replace("hardlink_0.2.1_amd64.deb", "odd_name.deb");
    let sha_line = odd.lines().skip_while(|l| !l.starts_with("Checksums-Sha256:")).take(2).collect::<Vec<_>>().join("\n");
    let no_sha = odd.replacen("Source: oddity\n", "Source: oddity2\n", 1).replacen(&format!("{sha_line}\n"), "", 1);
    let mut odd_builds = vec![ingest::prepare_build("odd/path.buildinfo", odd.as_bytes(), &Limits::default()).unwrap()];
    match ingest::prepare_build("nosha", no_sha.as_bytes(), &Limits::default()) {
        Ok(b) => {
            assert!(b.info.checksums.iter().all(|f| f.sha256.is_none()));
            odd_builds.push(b);
        }
        Err(e) => eprintln!("a buildinfo without Checksums-Sha256 is refused ({e}); that case is not checked"),
    }
    a.ingest_builds(&odd_builds).await.unwrap();
    a.import_packages(&PackagesImport {
        suite: "sid".into(),
        arch: "amd64".into(),
        origin: "t".into(),
        sha256: "s".into(),
        entries: parse_packages(&packages_for_0xffff()),
    })
    .await
    .unwrap();
    let index = BuiltWithIndex::new();
    let bin = |p: &str| PackageSpec::Binary(p.into());
    let q = |package, before: Option<&str>, suite: Option<&str>, arch: Option<&str>| BuiltWithQuery {
        package,
        before: before.map(|v| Version::from_str(v).unwrap()),
        suite: suite.map(str::to_owned),
        arch: arch.map(str::to_owned),
    };
    let questions = [
        q(bin("libc6"), None, None, None),
        q(bin("libc6"), Some("2.28-10"), None, None),
        q(bin("libc6"), None, Some("sid"), None),
        q(bin("libusb-dev"), None, Some("sid"), None),
        q(bin("libc6"), None, None, Some("amd64")),
        q(PackageSpec::Source("bash".into()), None, None, None),
        q(PackageSpec::Source("bash".into()), Some("5"), None, None),
        q(bin("no-such-package"), None, None, None),
    ];
    let mut sizes = Vec::new();
    for question in &questions {
        let got = same_answer(&index, &a, question).await;
        sizes.push(got.1.len());
    }
    assert!(sizes[0] > 300, "libc6 is in every build: {sizes:?}");
    assert!(sizes[1] < sizes[0] && sizes[2] >= 1 && sizes[2] < sizes[0], "{sizes:?}");
    // The odd builds are in the libc6 answer, with their odd values.
    let all = decode_all(&index.built_with(&a, &questions[0]).await.unwrap());
    let odd = all.builds.iter().find(|b| b.build.source == "oddity").expect("the odd build answers");
    assert_eq!((odd.binaries[0].filename.as_str(), odd.binaries[0].package.as_str()), ("odd_name.deb", "odd"));
    assert_eq!(odd.build.origin, "odd/path.buildinfo");
    if let Some(nosha) = all.builds.iter().find(|b| b.build.source == "oddity2") {
        assert!(nosha.binaries.iter().all(|b| b.sha256.is_empty()));
    }
    assert!(all.builds.iter().any(|b| b.build.origin == "synth7"));

    // Two answers of a generation whose interned rows are not made yet, encoded at the same
    // time: each makes or finds its rows, and both come out page for page as from the index
    // that encoded them one by one (each page's string table is in order of first use).
    let fresh = BuiltWithIndex::new();
    let x = fresh.built_with(&a, &questions[0]).await.unwrap();
    let y = fresh.built_with(&a, &questions[2]).await.unwrap();
    let (ex, ey) = std::thread::scope(|s| {
        let hx = s.spawn(|| encode_all(&x));
        let hy = s.spawn(|| encode_all(&y));
        (hx.join().unwrap(), hy.join().unwrap())
    });
    assert_eq!(ex, encode_all(&index.built_with(&a, &questions[0]).await.unwrap()));
    assert_eq!(ey, encode_all(&index.built_with(&a, &questions[2]).await.unwrap()));
}

async fn index_follows_archive_reimport<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let a = open().await;
    let b = open().await;
    a.ingest_builds(&prepared()).await.unwrap();
    let index = BuiltWithIndex::new();
    let q = BuiltWithQuery { package: PackageSpec::Binary("libusb-dev".into()), before: None, suite: None, arch: None };
    let in_sid = BuiltWithQuery { suite: Some("sid".into()), ..q.clone() };
    let shipped = |f: &Flat| f.1.iter().flat_map(|b| b.2.iter().flat_map(|f| f.2.clone())).collect::<Vec<_>>();
    // Nothing shipped yet.
    assert!(shipped(&same_answer(&index, &a, &q).await).is_empty());
    assert!(same_answer(&index, &a, &in_sid).await.1.is_empty());
    // Another coordinator imports sid shipping the 0xffff .deb: both questions change.
    let import = |entries| PackagesImport {
        suite: "sid".into(),
        arch: "amd64".into(),
        origin: "t".into(),
        sha256: "s".into(),
        entries,
    };
    b.import_packages(&import(parse_packages(&packages_for_0xffff()))).await.unwrap();
    assert_eq!(shipped(&same_answer(&index, &a, &q).await), vec!["sid/amd64".to_owned()]);
    let found = same_answer(&index, &a, &in_sid).await;
    assert_eq!(found.1.len(), 1);
    // Re-imported without it: it leaves sid, and the index follows.
    b.import_packages(&import(Vec::new())).await.unwrap();
    assert!(shipped(&same_answer(&index, &a, &q).await).is_empty());
    assert!(same_answer(&index, &a, &in_sid).await.1.is_empty());
    // A Sources import changes what src:NAME resolves to.
    let src = BuiltWithQuery { package: PackageSpec::Source("newsrc".into()), before: None, suite: None, arch: None };
    assert!(same_answer(&index, &a, &src).await.0.is_empty());
    let sources = "Package: newsrc\nBinary: libusb-dev\nVersion: 1.0-1\nArchitecture: any\n\
                   Directory: pool/main/n/newsrc\nFiles:\n 00000000000000000000000000000000 1 newsrc_1.0-1.dsc\n";
    let (entries, _) = ingest::read_sources("Sources", sources.as_bytes(), &Limits::default()).unwrap();
    b.import_sources(&SourcesImport { suite: "sid".into(), origin: "t".into(), sha256: "s".into(), entries })
        .await
        .unwrap();
    let got = same_answer(&index, &a, &src).await;
    assert_eq!(got.0, vec!["libusb-dev".to_owned()]);
    assert!(!got.1.is_empty());
}

// ---------------------------------------------------------------- rebuild scheduler

use debcover_core::rebuild::{
    self, ArchiveFile, Attestation, AttemptOutcome, AttemptReport, FailureCode, JobFilter, JobState, NewJob, NodeCaps,
    NodeRecord, Policy, Priority, Refusal, Requeue, SourceDsc,
};

/// `n` distinct builds of sources `synthN` (the real hardlink buildinfo under other names).
fn synthetic_builds(n: usize) -> Vec<NewBuild> {
    let text = std::fs::read_to_string(testdata().join("buildinfo/aptly__hardlink_0.2.1_amd64.buildinfo")).unwrap();
    (0..n)
        .map(|i| {
            let t = text.replacen("Source: hardlink\n", &format!("Source: synth{i}\n"), 1);
            ingest::prepare_build(&format!("synth{i}"), t.as_bytes(), &Limits::default()).unwrap()
        })
        .collect()
}

/// Jobs for every build of these sources.
/// Builds `synth0` and `synth1` stored, and one operator-requested job for each queued at `T0`.
async fn two_queued_jobs<S: Store>(store: &S) {
    store.ingest_builds(&synthetic_builds(2)).await.unwrap();
    store.enqueue(&jobs_for(store, &["synth0", "synth1"], Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
}

async fn jobs_for<S: Store>(store: &S, sources: &[&str], priority: Priority) -> Vec<NewJob> {
    let mut out = Vec::new();
    for s in sources {
        for b in store.builds_of_source(s, None, None).await.unwrap() {
            out.push(NewJob {
                build_id: b.id,
                source: b.source,
                version: b.version,
                arch: b.host_arch,
                backend: String::new(),
                tags: Vec::new(),
                priority,
                origin: "test".into(),
            });
        }
    }
    out
}

async fn node<S: Store>(store: &S, operator: &str, name: &str, arches: &[&str], tags: &[&str], slots: u32) -> NodeRecord {
    let token = rebuild::new_token();
    let n = store.add_node(operator, name, &rebuild::token_digest(&token), 1).await.unwrap().expect("new node");
    let caps = NodeCaps {
        public_key: String::new(),
        arches: rebuild::normalise(arches.iter().map(|a| rebuild::canonical_arch(a))),
        backends: vec!["local".into()],
        tags: rebuild::normalise(tags.iter().map(|t| t.to_string())),
        slots,
        software: format!("debcover-rebuilder 0.1.0 ({name})"),
    };
    store.register_node(n.id, &caps, 1).await.unwrap();
    store.node_by_token(&rebuild::token_digest(&token)).await.unwrap().expect("node by token")
}

/// A report as the service records it once the node's attestation was checked: reproducible
/// results carry one (only attested results count towards verification).
/// A report as an honest node sends it: built results (reproducible or not) attested.
fn report(outcome: AttemptOutcome) -> AttemptReport {
    let attested = matches!(outcome, AttemptOutcome::Reproducible | AttemptOutcome::Unreproducible { .. });
    AttemptReport { attestation: attested.then(|| Attestation::new(b"{\"signed\": {}}".to_vec())), ..AttemptReport::bare(outcome) }
}

fn policy(verifiers: u32) -> Policy {
    Policy { verifiers, ..Policy::default() }
}

const T0: i64 = 1_000_000;

async fn sched_dedup_and_priority_order<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    store.ingest_builds(&synthetic_builds(6)).await.unwrap();
    let all = jobs_for(&store, &["synth0", "synth1", "synth2", "synth3", "synth4", "synth5"], Priority::Background).await;
    let s = store.enqueue(&all, Requeue::OnlyNew, T0).await.unwrap();
    assert_eq!((s.queued, s.already_queued), (6, 0));
    // The same builds again: nothing new.
    let s = store.enqueue(&all, Requeue::UnlessActive, T0).await.unwrap();
    assert_eq!((s.queued, s.already_queued), (0, 6));
    // A request and a campaign raise the priority of queued builds instead of queuing twice.
    let s = store.enqueue(&jobs_for(&store, &["synth4"], Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
    assert_eq!((s.queued, s.already_queued), (0, 1));
    store.enqueue(&jobs_for(&store, &["synth5"], Priority::Campaign).await, Requeue::UnlessActive, T0).await.unwrap();
    // A lower priority never lowers it.
    store.enqueue(&jobs_for(&store, &["synth5"], Priority::Background).await, Requeue::UnlessActive, T0).await.unwrap();
    let jobs = store.jobs(&JobFilter::default()).await.unwrap();
    assert_eq!(jobs.len(), 6);
    let n = node(&store, "op", "n1", &["amd64"], &[], 10).await;
    let p = policy(1);
    let mut order = Vec::new();
    while let Some(l) = store.claim(&n, T0, &p).await.unwrap() {
        order.push(l.source);
    }
    assert_eq!(order, ["synth5", "synth4", "synth0", "synth1", "synth2", "synth3"]);
    // Leased builds are not queued again either.
    let s = store.enqueue(&all, Requeue::UnlessActive, T0).await.unwrap();
    assert_eq!((s.queued, s.already_queued), (0, 6));
    // Once verified, background verification skips them; an explicit request queues again.
    for j in store.jobs(&JobFilter::default()).await.unwrap() {
        let st = store.finish(n.id, j.id, j.fence, &report(AttemptOutcome::Reproducible), T0 + 1, &p).await.unwrap();
        assert_eq!(st, Ok(JobState::Verified));
    }
    let s = store.enqueue(&all, Requeue::OnlyNew, T0 + 2).await.unwrap();
    assert_eq!((s.queued, s.already_done), (0, 6));
    let s = store.enqueue(&all[..1], Requeue::UnlessActive, T0 + 2).await.unwrap();
    assert_eq!(s.queued, 1);
}

async fn sched_arch_aliases_backends_and_tags<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    store.ingest_builds(&prepared()).await.unwrap();
    store.ingest_builds(&synthetic_builds(2)).await.unwrap();
    let p = policy(1);
    // bar is an i386 build; checksecurity is arch:all; synth0 needs a big machine; synth1 the
    // debrebuild backend.
    let mut jobs = jobs_for(&store, &["bar", "checksecurity", "synth0", "synth1"], Priority::Request).await;
    let rules = vec![
        rebuild::RouteRule { source: "synth0*".into(), tags: vec!["big".into()], backend: None },
        rebuild::RouteRule { source: "synth1".into(), tags: vec![], backend: Some("debrebuild".into()) },
    ];
    for j in &mut jobs {
        rebuild::route(j, &rules);
    }
    store.enqueue(&jobs, Requeue::UnlessActive, T0).await.unwrap();
    // An arm64 node (spelled aarch64) gets nothing.
    let arm = node(&store, "op", "arm", &["aarch64"], &["big"], 4).await;
    assert_eq!(arm.caps.arches, ["arm64"]);
    assert_eq!(store.claim(&arm, T0, &p).await.unwrap(), None);
    // x86_64 is amd64, and amd64 nodes build arch:all; without the tag or the backend it gets
    // only checksecurity.
    let small = node(&store, "op", "small", &["x86_64"], &[], 4).await;
    let got = store.claim(&small, T0, &p).await.unwrap().expect("a job");
    assert_eq!(got.source, "checksecurity");
    assert_eq!(store.claim(&small, T0, &p).await.unwrap(), None);
    // The big node takes the big one.
    let big = node(&store, "op2", "big", &["amd64"], &["big"], 4).await;
    assert_eq!(store.claim(&big, T0, &p).await.unwrap().expect("big job").source, "synth0");
    assert_eq!(store.claim(&big, T0, &p).await.unwrap(), None, "needs debrebuild, which no node has");
    // i386 (spelled i686) with the debrebuild backend: bar, then synth1 needs amd64.
    let i386 = node(&store, "op3", "i386", &["i686"], &[], 4).await;
    assert_eq!(store.claim(&i386, T0, &p).await.unwrap().expect("i386 job").source, "bar");
    let mut caps = big.caps.clone();
    caps.backends.push("debrebuild".into());
    store.register_node(big.id, &caps, T0).await.unwrap();
    let big = store.nodes().await.unwrap().into_iter().find(|n| n.name == "big").unwrap();
    let l = store.claim(&big, T0, &p).await.unwrap().expect("debrebuild job");
    assert_eq!((l.source.as_str(), l.backend.as_str()), ("synth1", "debrebuild"));
    // Slots: a one-slot node holds one lease at a time.
    store.ingest_builds(&synthetic_builds(4)).await.unwrap();
    store.enqueue(&jobs_for(&store, &["synth2", "synth3"], Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
    let one = node(&store, "op4", "one", &["amd64"], &[], 1).await;
    assert!(store.claim(&one, T0, &p).await.unwrap().is_some());
    assert_eq!(store.claim(&one, T0, &p).await.unwrap(), None);
}

async fn sched_lease_expiry_reclaim_and_stale_tokens<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    store.ingest_builds(&synthetic_builds(1)).await.unwrap();
    store.enqueue(&jobs_for(&store, &["synth0"], Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
    let p = Policy { lease_ttl: std::time::Duration::from_secs(60), ..policy(1) };
    let a = node(&store, "opa", "a", &["amd64"], &[], 1).await;
    let b = node(&store, "opb", "b", &["amd64"], &[], 1).await;
    let la = store.claim(&a, T0, &p).await.unwrap().unwrap();
    assert_eq!((la.fence, la.expires_at), (1, T0 + 60));
    assert_eq!(store.claim(&b, T0, &p).await.unwrap(), None, "leased jobs are not claimable");
    // Heartbeats extend; another node's heartbeat on it is refused.
    assert_eq!(store.heartbeat(a.id, la.job_id, 1, T0 + 30, &p).await.unwrap(), Ok(T0 + 90));
    assert_eq!(store.heartbeat(b.id, la.job_id, 1, T0 + 30, &p).await.unwrap(), Err(Refusal::NotYours));
    assert_eq!(store.reclaim_expired(T0 + 89, &p).await.unwrap(), 0);
    // Silence: the lease expires, is refused, and the reclaimer gives the job back.
    assert_eq!(store.heartbeat(a.id, la.job_id, 1, T0 + 91, &p).await.unwrap(), Err(Refusal::Expired));
    assert_eq!(store.reclaim_expired(T0 + 91, &p).await.unwrap(), 1);
    let j = &store.jobs(&JobFilter::default()).await.unwrap()[0];
    assert_eq!((j.state, j.failures, j.not_before), (JobState::Queued, 0, T0 + 91), "node-lost: the node's, retried at once");
    let lost = store.nodes().await.unwrap().into_iter().find(|n| n.id == a.id).unwrap();
    assert_eq!(lost.standing.strikes, 1, "charged to the node");
    let lb = store.claim(&b, T0 + 92, &p).await.unwrap().unwrap();
    assert_eq!((lb.job_id, lb.fence), (la.job_id, 2), "the fencing token grows");
    // The first node comes back late: its heartbeat and its result carry a stale token.
    let late = report(AttemptOutcome::Reproducible);
    assert_eq!(store.heartbeat(a.id, la.job_id, 1, T0 + 93, &p).await.unwrap(), Err(Refusal::StaleFence { current: 2 }));
    assert_eq!(store.finish(a.id, la.job_id, 1, &late, T0 + 93, &p).await.unwrap(), Err(Refusal::StaleFence { current: 2 }));
    // The current token from the wrong node is refused too; unknown jobs are named as such.
    assert_eq!(store.finish(a.id, la.job_id, 2, &late, T0 + 93, &p).await.unwrap(), Err(Refusal::NotYours));
    assert_eq!(store.finish(a.id, 999_999, 1, &late, T0 + 93, &p).await.unwrap(), Err(Refusal::NoSuchJob));
    assert_eq!(store.finish(b.id, lb.job_id, 2, &late, T0 + 94, &p).await.unwrap(), Ok(JobState::Verified));
    // Finishing twice is refused: the lease ended.
    assert!(store.finish(b.id, lb.job_id, 2, &late, T0 + 95, &p).await.unwrap().is_err());
    let history = store.attempts(&[la.job_id]).await.unwrap();
    let outcomes: Vec<_> = history.iter().map(|a| (a.fence, a.outcome.clone(), a.failure_code.clone())).collect();
    assert_eq!(
        outcomes,
        [(1, Some("failed".into()), Some("node-lost".into())), (2, Some("reproducible".into()), None)]
    );
}

/// Results sent at the same moment (on SQLite: queued behind one running batch, then written
/// together in the next) each see the ones before them: of two identical results for one lease,
/// exactly one counts.
async fn sched_results_in_one_batch_see_each_other<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    two_queued_jobs(&store).await;
    let p = policy(1);
    let n = node(&store, "op", "n", &["amd64"], &[], 2).await;
    let l0 = store.claim(&n, T0, &p).await.unwrap().unwrap();
    let l1 = store.claim(&n, T0, &p).await.unwrap().unwrap();
    let ok = report(AttemptOutcome::Reproducible);
    // Polled in order: the first runs alone, the other three wait for it and go together.
    let (unknown, first, again, other) = tokio::join!(
        store.finish(n.id, 999_999, 1, &ok, T0 + 1, &p),
        store.finish(n.id, l0.job_id, l0.fence, &ok, T0 + 1, &p),
        store.finish(n.id, l0.job_id, l0.fence, &ok, T0 + 1, &p),
        store.finish(n.id, l1.job_id, l1.fence, &ok, T0 + 1, &p),
    );
    assert_eq!(unknown.unwrap(), Err(Refusal::NoSuchJob));
    let (first, again) = (first.unwrap(), again.unwrap());
    assert_eq!(
        [&first, &again].iter().filter(|r| r.is_ok()).count(),
        1,
        "one of two identical results counts: {first:?}, {again:?}"
    );
    assert!(
        [&first, &again].iter().any(|r| matches!(r, Err(Refusal::StaleFence { current: 1 }))),
        "the other is refused as a result for an ended lease: {first:?}, {again:?}"
    );
    assert_eq!(other.unwrap(), Ok(JobState::Verified));
    let history = store.attempts(&[l0.job_id]).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome.as_deref(), Some("reproducible"));
    let jobs = store.jobs(&JobFilter::default()).await.unwrap();
    assert!(jobs.iter().all(|j| j.state == JobState::Verified && j.verified == 1), "{jobs:?}");
}

async fn sched_retries_backoff_and_parking<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    two_queued_jobs(&store).await;
    let p = Policy { max_failures: 3, max_unreproducible: 2, verifiers: 1, ..Policy::default() };
    let n = node(&store, "op", "n", &["amd64"], &[], 1).await;
    let m = node(&store, "op2", "m", &["amd64"], &[], 1).await;
    let o = node(&store, "op3", "o", &["amd64"], &[], 1).await;
    let fail = |code| report(AttemptOutcome::Failed { code, message: "see log".into() });
    // synth0 fails: retried after 10 min, then 1 h, then parked with its reason. Each failure
    // comes from another operator: one operator's share of a budget of 3 is 1.
    let mut now = T0;
    for (i, (who, wait)) in [(&n, 600), (&m, 3600)].into_iter().enumerate() {
        let l = store.claim(who, now, &p).await.unwrap().unwrap();
        assert_eq!(l.source, "synth0");
        assert_eq!(store.finish(who.id, l.job_id, l.fence, &fail(FailureCode::BuildFailed), now, &p).await.unwrap(), Ok(JobState::Queued));
        // Not before its retry-after time: the other job comes first, then nothing.
        if i == 0 {
            let other = store.claim(&n, now + 1, &p).await.unwrap().unwrap();
            assert_eq!(other.source, "synth1");
            let differs = report(AttemptOutcome::Unreproducible { differing: vec!["x.deb".into()] });
            assert_eq!(store.finish(n.id, other.job_id, other.fence, &differs, now + 1, &p).await.unwrap(), Ok(JobState::Queued));
        }
        // (A node that neither just failed synth0 nor judged synth1 sees only the delay.)
        let idle = if i == 0 { &m } else { &n };
        assert_eq!(store.claim(idle, now + wait - 1, &p).await.unwrap(), None, "retry {i} too early");
        now += wait;
    }
    let l = store.claim(&o, now, &p).await.unwrap().unwrap();
    assert_eq!(l.source, "synth0");
    let st = store.finish(o.id, l.job_id, l.fence, &fail(FailureCode::DependenciesUnavailable), now, &p).await.unwrap();
    assert_eq!(st, Ok(JobState::Parked));
    let parked = store.jobs(&JobFilter { states: vec![JobState::Parked], ..Default::default() }).await.unwrap();
    assert_eq!(parked.len(), 1);
    let reason = parked[0].parked_reason.clone().unwrap();
    assert!(reason.contains("failed 3 times") && reason.contains("dependencies-unavailable"), "{reason}");
    // synth1: one unreproducible result so far, and its operator already judged it, so this
    // node may not take it again (it waits for another operator).
    assert_eq!(store.claim(&n, now + 100_000, &p).await.unwrap(), None);
    let l = store.claim(&m, now + 100_000, &p).await.unwrap().unwrap();
    assert_eq!(l.source, "synth1");
    let differs = report(AttemptOutcome::Unreproducible { differing: vec!["x.deb".into()] });
    assert_eq!(store.finish(m.id, l.job_id, l.fence, &differs, now + 100_000, &p).await.unwrap(), Ok(JobState::Parked));
    let j = store.jobs(&JobFilter { id: Some(l.job_id), ..Default::default() }).await.unwrap();
    assert_eq!((j[0].failures, j[0].unreproducible), (0, 2), "separate budgets");
    // Infrastructure failures are the node's: retried at once by another node, not by it.
    store.ingest_builds(&synthetic_builds(3)).await.unwrap();
    store.enqueue(&jobs_for(&store, &["synth2"], Priority::Request).await, Requeue::UnlessActive, now).await.unwrap();
    let l = store.claim(&n, now, &p).await.unwrap().unwrap();
    store.finish(n.id, l.job_id, l.fence, &fail(FailureCode::Infrastructure), now, &p).await.unwrap().unwrap();
    assert_eq!(store.claim(&n, now, &p).await.unwrap(), None, "not back to the node that just failed it");
    assert_eq!(store.claim(&o, now, &p).await.unwrap().map(|l| l.source), Some("synth2".into()));
    let j = store.jobs(&JobFilter { source: Some("synth2".into()), ..Default::default() }).await.unwrap();
    assert_eq!(j[0].failures, 0, "not the job's");
    // An admin releases the parked jobs with fresh budgets.
    let released = store.release_parked("synth0", None, None, now + 200_000).await.unwrap();
    assert_eq!(released.len(), 1);
    let j = store.jobs(&JobFilter { id: Some(released[0]), ..Default::default() }).await.unwrap();
    assert_eq!((j[0].state, j[0].failures, j[0].parked_reason.clone()), (JobState::Queued, 0, None));
    assert!(store.release_parked("synth0", None, None, now + 200_000).await.unwrap().is_empty(), "nothing parked left");
}

/// Three infrastructure failures in a row quarantine a node (it claims nothing until the
/// quarantine ends, and `nodes` shows it); a result clears its strikes.
async fn sched_node_quarantine<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    store.ingest_builds(&synthetic_builds(4)).await.unwrap();
    let refs = ["synth0", "synth1", "synth2", "synth3"];
    store.enqueue(&jobs_for(&store, &refs, Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
    let p = policy(1);
    let n = node(&store, "op", "n", &["amd64"], &[], 1).await;
    let infra = report(AttemptOutcome::Failed { code: FailureCode::Infrastructure, message: "mirror down".into() });
    for i in 0..3 {
        let l = store.claim(&n, T0 + i, &p).await.unwrap().unwrap_or_else(|| panic!("claim {i}"));
        store.finish(n.id, l.job_id, l.fence, &infra, T0 + i, &p).await.unwrap().unwrap();
    }
    let standing = store.nodes().await.unwrap()[0].standing;
    assert_eq!((standing.strikes, standing.quarantines, standing.quarantined_until), (0, 1, Some(T0 + 2 + 60)));
    assert_eq!(store.claim(&n, T0 + 61, &p).await.unwrap(), None, "quarantined");
    let jobs = store.jobs(&JobFilter::default()).await.unwrap();
    assert!(jobs.iter().all(|j| j.failures == 0 && j.state == JobState::Queued), "{jobs:?}");
    let l = store.claim(&n, T0 + 62, &p).await.unwrap().expect("out of quarantine");
    assert_eq!(store.finish(n.id, l.job_id, l.fence, &report(AttemptOutcome::Reproducible), T0 + 62, &p).await.unwrap(), Ok(JobState::Verified));
    assert_eq!(store.nodes().await.unwrap()[0].standing.strikes, 0);
}

async fn sched_operator_independence<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    store.ingest_builds(&synthetic_builds(1)).await.unwrap();
    store.enqueue(&jobs_for(&store, &["synth0"], Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
    let p = policy(2);
    let a1 = node(&store, "alice", "a1", &["amd64"], &[], 1).await;
    let a2 = node(&store, "alice", "a2", &["amd64"], &[], 1).await;
    let b1 = node(&store, "bob", "b1", &["amd64"], &[], 1).await;
    // a1 fails for infrastructure reasons: a2 (same operator) never gets it, and a1 gets it back
    // only after the first retry delay (another operator's node would have it at once).
    let l = store.claim(&a1, T0, &p).await.unwrap().unwrap();
    let infra = report(AttemptOutcome::Failed { code: FailureCode::Infrastructure, message: String::new() });
    store.finish(a1.id, l.job_id, l.fence, &infra, T0, &p).await.unwrap().unwrap();
    assert_eq!(store.claim(&a2, T0, &p).await.unwrap(), None);
    assert_eq!(store.claim(&a1, T0 + 599, &p).await.unwrap(), None, "a node does not get back a job it just failed");
    let t = T0 + 601;
    let l = store.claim(&a1, t, &p).await.unwrap().unwrap();
    assert_eq!(store.finish(a1.id, l.job_id, l.fence, &report(AttemptOutcome::Reproducible), t, &p).await.unwrap(), Ok(JobState::Queued));
    // One operator's verdict is not enough, and neither a1 nor a2 may add a second one.
    assert_eq!(store.claim(&a1, t, &p).await.unwrap(), None);
    assert_eq!(store.claim(&a2, t, &p).await.unwrap(), None);
    let l = store.claim(&b1, t, &p).await.unwrap().unwrap();
    assert_eq!(store.finish(b1.id, l.job_id, l.fence, &report(AttemptOutcome::Reproducible), t, &p).await.unwrap(), Ok(JobState::Verified));
    let j = &store.jobs(&JobFilter::default()).await.unwrap()[0];
    assert_eq!((j.state, j.verified), (JobState::Verified, 2));
}

async fn sched_two_coordinators_claim_concurrently<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    const JOBS: usize = 120;
    let first = std::sync::Arc::new(open().await);
    let second = std::sync::Arc::new(open().await);
    first.ingest_builds(&synthetic_builds(JOBS)).await.unwrap();
    let sources: Vec<String> = (0..JOBS).map(|i| format!("synth{i}")).collect();
    let refs: Vec<&str> = sources.iter().map(String::as_str).collect();
    first.enqueue(&jobs_for(&*first, &refs, Priority::Background).await, Requeue::OnlyNew, T0).await.unwrap();
    let p = std::sync::Arc::new(policy(1));
    let mut nodes = Vec::new();
    for i in 0..8 {
        nodes.push(node(&*first, &format!("op{i}"), "n", &["amd64"], &[], 2).await);
    }
    let mut tasks = Vec::new();
    for (i, n) in nodes.into_iter().enumerate() {
        let store = if i % 2 == 0 { first.clone() } else { second.clone() };
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            while let Some(l) = store.claim(&n, T0, &p).await.unwrap() {
                let st = store.finish(n.id, l.job_id, l.fence, &report(AttemptOutcome::Reproducible), T0, &p).await.unwrap();
                assert_eq!(st, Ok(JobState::Verified), "job {} finished twice", l.job_id);
                done.push(l.job_id);
            }
            done
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!((n, all.len()), (JOBS, JOBS), "every job exactly once");
    let attempts = first.attempts(&all).await.unwrap();
    assert_eq!(attempts.len(), JOBS, "one attempt per job, no duplicate leases");
    assert!(second.jobs(&JobFilter::default()).await.unwrap().iter().all(|j| j.state == JobState::Verified));
}

async fn sched_nodes_credentials_and_history<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    let store = open().await;
    store.ingest_builds(&synthetic_builds(1)).await.unwrap();
    let token = rebuild::new_token();
    let digest = rebuild::token_digest(&token);
    let n = store.add_node("alice", "n1", &digest, T0).await.unwrap().unwrap();
    assert_eq!((n.operator.as_str(), n.name.as_str()), ("alice", "n1"));
    assert_eq!(store.add_node("alice", "n1", &rebuild::token_digest("other"), T0).await.unwrap(), None, "name taken");
    assert!(store.add_node("bob", "n1", &rebuild::token_digest("other"), T0).await.unwrap().is_some());
    assert_eq!(store.node_by_token(&digest).await.unwrap().map(|n| n.id), Some(n.id));
    assert_eq!(store.node_by_token(&token).await.unwrap(), None, "the token itself is never stored");
    // Revoking gives its leases back and ends the credential.
    let n = node(&store, "carol", "c1", &["amd64"], &[], 1).await;
    store.enqueue(&jobs_for(&store, &["synth0"], Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
    let l = store.claim(&n, T0, &policy(1)).await.unwrap().unwrap();
    assert!(store.revoke_node("carol", "c1", T0 + 1).await.unwrap());
    assert!(!store.revoke_node("carol", "c1", T0 + 1).await.unwrap());
    let listed = store.nodes().await.unwrap();
    assert_eq!(listed.iter().map(|n| (n.operator.as_str(), n.name.as_str())).collect::<Vec<_>>(),
        [("alice", "n1"), ("bob", "n1"), ("carol", "c1")]);
    assert_eq!(listed[2].revoked_at, Some(T0 + 1));
    // What the node declared about its software is stored with its capabilities.
    assert_eq!(listed[2].caps.software, "debcover-rebuilder 0.1.0 (c1)");
    assert_eq!(listed[0].caps.software, "", "never registered");
    let j = &store.jobs(&JobFilter::default()).await.unwrap()[0];
    assert_eq!((j.state, j.failures), (JobState::Queued, 0));
    let h = store.attempts(&[l.job_id]).await.unwrap();
    assert_eq!(h[0].outcome.as_deref(), Some("handed-back"));
    // Artifacts are stored as data.
    let m = node(&store, "dave", "d1", &["amd64"], &[], 1).await;
    let l = store.claim(&m, T0 + 2, &policy(1)).await.unwrap().unwrap();
    let r = AttemptReport {
        outcome: AttemptOutcome::Reproducible,
        artifacts: vec![rebuild::Artifact { name: "a.deb".into(), size: 3, sha256: "ab".repeat(32) }],
        buildinfo_sha256: Some("cd".repeat(32)),
        log_sha256: Some("ef".repeat(32)),
        diffoscope_sha256: None,
        attestation: Some(Attestation::new(b"{\"signed\": {\"name\": \"d1\"}}".to_vec())),
        corroboration: Vec::new(),
    };
    store.finish(m.id, l.job_id, l.fence, &r, T0 + 3, &policy(1)).await.unwrap().unwrap();
    let h = store.attempts(&[l.job_id]).await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!((h[1].node.as_str(), h[1].operator.as_str()), ("d1", "dave"));
    let link = r.attestation.as_ref().unwrap();
    assert_eq!(h[1].attestation_sha256.as_deref(), Some(link.sha256()), "the attestation key is stored");
    assert_eq!(store.attestation(link.sha256()).await.unwrap().as_deref(), Some(link.body()), "and the attestation");
    assert_eq!(h[1].artifacts, r.artifacts);
    assert_eq!(h[1].log_sha256, r.log_sha256);
    let counts = store.queue_counts().await.unwrap();
    assert_eq!(counts.by_state, [("verified".to_owned(), "request".to_owned(), 1)]);
}

// ---------------------------------------------------------------- rebuild results

/// The SHA-256 the 0xffff Packages paragraph ships (from [`packages_for_0xffff`]).
fn shipped_0xffff_sha() -> String {
    packages_for_0xffff().lines().find_map(|l| l.strip_prefix("SHA256: ")).unwrap().to_owned()
}

const DSC_SHA: &str = "1111111111111111111111111111111111111111111111111111111111111111";

/// A Sources paragraph for 0xffff 0.8-1, with or without its Checksums-Sha256.
fn sources_for_0xffff(with_checksums: bool) -> Vec<debcover_formats::SourcesEntry> {
    let mut text = "Package: 0xffff\nBinary: 0xffff\nVersion: 0.8-1\nArchitecture: any\nDirectory: pool/main/0/0xffff\n".to_owned();
    if with_checksums {
        text.push_str(&format!(
            "Checksums-Sha256:\n {DSC_SHA} 1805 0xffff_0.8-1.dsc\n {} 99 0xffff_0.8.orig.tar.gz\n",
            "2".repeat(64)
        ));
    }
    ingest::read_sources("Sources", text.as_bytes(), &Limits::default()).unwrap().0
}

async fn import_0xffff_archive<S: Store>(store: &S, suite: &str, with_checksums: bool) {
    let import = PackagesImport {
        suite: suite.into(),
        arch: "amd64".into(),
        origin: "t".into(),
        sha256: "x".into(),
        entries: parse_packages(&packages_for_0xffff()),
    };
    store.import_packages(&import).await.unwrap();
    let sources = SourcesImport { suite: suite.into(), origin: "t".into(), sha256: "s".into(), entries: sources_for_0xffff(with_checksums) };
    store.import_sources(&sources).await.unwrap();
}

async fn sched_jobs_carry_source_and_archive_originals<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    store.ingest_builds(&prepared()).await.unwrap();
    // Sources first without checksums (as ingested before migration 0005), then with: the row
    // learns its .dsc hash.
    import_0xffff_archive(&store, "bookworm", false).await;
    import_0xffff_archive(&store, "bookworm", true).await;
    let mut jobs = Vec::new();
    for b in store.builds_of_source("0xffff", Some("0.8-1+b1"), Some("amd64")).await.unwrap() {
        jobs.push(NewJob {
            build_id: b.id,
            source: b.source,
            version: b.version,
            arch: b.host_arch,
            backend: String::new(),
            tags: Vec::new(),
            priority: Priority::Campaign,
            origin: "test".into(),
        });
    }
    assert!(!jobs.is_empty());
    jobs.extend(jobs_for(&store, &["bash"], Priority::Request).await);
    store.enqueue(&jobs, Requeue::UnlessActive, T0).await.unwrap();
    let n = node(&store, "op", "n", &["amd64", "i386"], &[], 100).await;
    let expected = vec![ArchiveFile {
        name: "0xffff_0.8-1+b1_amd64.deb".into(),
        sha256: shipped_0xffff_sha(),
        filename: "pool/main/0/0xffff/0xffff_0.8-1+b1_amd64.deb".into(),
    }];
    let mut seen = (0, 0);
    while let Some(l) = store.claim(&n, T0, &policy(1)).await.unwrap() {
        if l.source == "0xffff" {
            seen.0 += 1;
            assert_eq!(l.source_version, "0.8-1");
            assert_eq!(l.dsc, Some(SourceDsc { directory: "pool/main/0/0xffff".into(), sha256: Some(DSC_SHA.into()) }));
            assert_eq!(l.originals, expected);
            // The report's view has the same archive hashes to judge against.
            let v = store.lease_view(l.job_id).await.unwrap().unwrap();
            assert_eq!((v.source.as_str(), v.version.as_str(), &v.archive), ("0xffff", "0.8-1+b1", &expected));
            assert!(v.checksums.iter().any(|(name, _)| name == "0xffff_0.8-1+b1_amd64.deb"));
            // The lease carries the same view, so the coordinator can judge without reading it.
            assert_eq!(l.view(n.id), v);
        } else {
            seen.1 += 1;
            assert_eq!(l.source, "bash");
            assert_eq!((l.dsc, l.originals.len()), (None, 0), "no Sources or Packages entry for bash");
            assert!(!l.source_version.is_empty());
        }
    }
    assert!(seen.0 >= 1 && seen.1 >= 1, "{seen:?}");
    // Once the suite no longer ships the binary, it is no original any more.
    let empty = PackagesImport { suite: "bookworm".into(), arch: "amd64".into(), origin: "t".into(), sha256: "y".into(), entries: vec![] };
    store.import_packages(&empty).await.unwrap();
    let j = store.jobs(&JobFilter { source: Some("0xffff".into()), ..Default::default() }).await.unwrap();
    assert!(store.lease_view(j[0].id).await.unwrap().unwrap().archive.is_empty());
}

async fn sched_results_store_differences_diffoscope_and_environment_mismatch<
    S: Store,
    F: std::future::Future<Output = S>,
>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    two_queued_jobs(&store).await;
    let p = Policy { max_failures: 2, max_unreproducible: 2, verifiers: 1, ..Policy::default() };
    let n = node(&store, "op", "n", &["amd64"], &[], 1).await;
    let diffs = vec!["libc6: 2.36-9 installed, 2.36-8 recorded".to_owned(), "libfoo-dev (= 1.0-1): not installed".to_owned()];
    let mismatch = report(AttemptOutcome::EnvironmentMismatch { differences: diffs.clone() });
    // An environment mismatch is no verdict: it uses the failure budget, with the normal delay.
    let l0 = store.claim(&n, T0, &p).await.unwrap().unwrap();
    assert_eq!(l0.source, "synth0");
    assert_eq!(store.finish(n.id, l0.job_id, l0.fence, &mismatch, T0, &p).await.unwrap(), Ok(JobState::Queued));
    let j = &store.jobs(&JobFilter { id: Some(l0.job_id), ..Default::default() }).await.unwrap()[0];
    assert_eq!((j.state, j.failures, j.unreproducible, j.not_before), (JobState::Queued, 1, 0, T0 + 600));
    // An unreproducible result keeps its differing files and its diffoscope report.
    let l1 = store.claim(&n, T0, &p).await.unwrap().unwrap();
    assert_eq!(l1.source, "synth1");
    let differs = AttemptReport {
        diffoscope_sha256: Some("ab".repeat(32)),
        ..report(AttemptOutcome::Unreproducible { differing: vec!["x_1_amd64.deb".into(), "y_1_all.deb".into()] })
    };
    assert_eq!(store.finish(n.id, l1.job_id, l1.fence, &differs, T0, &p).await.unwrap(), Ok(JobState::Queued));
    // The same node may try the mismatch again (it is not a verdict), after the delay.
    assert_eq!(store.claim(&n, T0 + 599, &p).await.unwrap(), None);
    let l0b = store.claim(&n, T0 + 600, &p).await.unwrap().unwrap();
    assert_eq!((l0b.job_id, l0b.fence), (l0.job_id, 2));
    // Its second mismatch is beyond its operator's share (one of a budget of two): not charged.
    assert_eq!(store.finish(n.id, l0b.job_id, l0b.fence, &mismatch, T0 + 600, &p).await.unwrap(), Ok(JobState::Queued));
    let j = &store.jobs(&JobFilter { id: Some(l0.job_id), ..Default::default() }).await.unwrap()[0];
    assert_eq!((j.state, j.failures), (JobState::Queued, 1), "one operator cannot park a job alone");
    // Another operator's mismatch parks it.
    let m = node(&store, "op2", "m", &["amd64"], &[], 1).await;
    let l0c = store.claim(&m, T0 + 100_000, &p).await.unwrap().unwrap();
    assert_eq!(l0c.job_id, l0.job_id);
    assert_eq!(store.finish(m.id, l0c.job_id, l0c.fence, &mismatch, T0 + 100_000, &p).await.unwrap(), Ok(JobState::Parked));
    let j = &store.jobs(&JobFilter { id: Some(l0.job_id), ..Default::default() }).await.unwrap()[0];
    let reason = j.parked_reason.clone().unwrap();
    assert!(reason.contains("environment-mismatch") && reason.contains("libfoo-dev (= 1.0-1): not installed"), "{reason}");
    let h = store.attempts(&[l0.job_id, l1.job_id]).await.unwrap();
    let of = |job: i64| h.iter().filter(|a| a.job_id == job).collect::<Vec<_>>();
    for a in of(l0.job_id) {
        assert_eq!(a.outcome.as_deref(), Some("environment-mismatch"));
        assert_eq!((a.failure_code.as_deref(), &a.differences, &a.diffoscope_sha256), (None, &diffs, &None));
    }
    let u = of(l1.job_id);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].outcome.as_deref(), Some("unreproducible"));
    assert_eq!(u[0].differences, ["x_1_amd64.deb", "y_1_all.deb"]);
    assert_eq!(u[0].diffoscope_sha256, Some("ab".repeat(32)));
}

/// What rebuilt binaries say against the original buildinfo is stored with the attempt, in the
/// result's transaction, in the order computed, and read back by job and fencing token; it
/// changes nothing of the job's fate.
async fn corroboration_is_stored_with_its_attempt<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    use debcover_core::rebuild::corroborate::{AttemptCorroboration, Corroboration};
    use debcover_formats::corroborate::{Finding, Verdict};
    let store = open().await;
    two_queued_jobs(&store).await;
    let p = policy(1);
    let n = node(&store, "op", "n", &["amd64"], &[], 2).await;
    let finding = |binary: &str, subject: &str, embedded: &str, declared: &[&str], verdict| Corroboration {
        deb: "lego_4.9.1-1_amd64.deb".into(),
        finding: Finding {
            binary: binary.into(),
            subject: subject.into(),
            embedded: embedded.into(),
            declared: declared.iter().map(|d| d.to_string()).collect(),
            verdict,
        },
    };
    let disagreeing = vec![
        finding("usr/bin/lego", "go toolchain", "go1.19.5", &["Installed-Build-Depends: golang-1.19 1.19.4-1"], Verdict::Disagrees),
        finding("usr/bin/lego", "go module github.com/miekg/dns", "v1.1.50", &[
            "Installed-Build-Depends: golang-github-miekg-dns 1.1.50-1",
            "Installed-Build-Depends: golang-github-miekg-dns 1.1.49-1",
        ], Verdict::Agrees),
        finding("usr/bin/lego", "crate libc", "0.2.140", &[], Verdict::Undeclared),
    ];
    let l0 = store.claim(&n, T0, &p).await.unwrap().unwrap();
    let l1 = store.claim(&n, T0, &p).await.unwrap().unwrap();
    let r0 = AttemptReport {
        artifacts: vec![rebuild::Artifact { name: "lego_4.9.1-1_amd64.deb".into(), size: 3, sha256: "5a".repeat(32) }],
        corroboration: disagreeing.clone(),
        ..report(AttemptOutcome::Reproducible)
    };
    // A disagreement is a report: the attested reproduction verifies the job all the same.
    assert_eq!(store.finish(n.id, l0.job_id, l0.fence, &r0, T0 + 1, &p).await.unwrap(), Ok(JobState::Verified));
    // A result refused for its stale token stores nothing.
    assert!(store.finish(n.id, l0.job_id, l0.fence, &r0, T0 + 2, &p).await.unwrap().is_err());
    // A hand-back (no findings), then another operator's attempt with many findings (more
    // than one insert statement's worth), kept in order.
    store.finish(n.id, l1.job_id, l1.fence, &AttemptReport::bare(AttemptOutcome::HandedBack), T0 + 1, &p).await.unwrap().unwrap();
    let m = node(&store, "op2", "m", &["amd64"], &[], 1).await;
    let l1b = store.claim(&m, T0 + 2, &p).await.unwrap().unwrap();
    assert_eq!((l1b.job_id, l1b.fence), (l1.job_id, l1.fence + 1));
    let many: Vec<Corroboration> = (0..1_200)
        .map(|i| finding(&format!("usr/bin/t{i}"), "rustc", "1.63.0", &["Installed-Build-Depends: rustc 1.63.0+dfsg1-2"], Verdict::Agrees))
        .collect();
    let r1 = AttemptReport {
        corroboration: many.clone(),
        ..report(AttemptOutcome::Unreproducible { differing: vec!["x.deb".into()] })
    };
    store.finish(m.id, l1b.job_id, l1b.fence, &r1, T0 + 3, &p).await.unwrap().unwrap();
    let tag = |l: &debcover_core::rebuild::Lease, list: &[Corroboration]| {
        list.iter().map(|c| AttemptCorroboration { job_id: l.job_id, fence: l.fence, corroboration: c.clone() }).collect::<Vec<_>>()
    };
    let expect = if l0.job_id < l1.job_id {
        [tag(&l0, &disagreeing), tag(&l1b, &many)].concat()
    } else {
        [tag(&l1b, &many), tag(&l0, &disagreeing)].concat()
    };
    let got = store.corroboration(&[l1.job_id, l0.job_id]).await.unwrap();
    assert_eq!(got.len(), 1_203);
    assert_eq!(got, expect);
    assert_eq!(store.corroboration(&[l0.job_id]).await.unwrap(), tag(&l0, &disagreeing));
    assert!(store.corroboration(&[]).await.unwrap().is_empty());
    // The attempts themselves are as without findings.
    let h = store.attempts(&[l0.job_id]).await.unwrap();
    assert_eq!((h.len(), h[0].outcome.as_deref()), (1, Some("reproducible")));
}

async fn rebuild_builds_are_never_linked_or_queued<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    store.ingest_builds(&prepared()).await.unwrap();
    import_0xffff_archive(&store, "bookworm", true).await;
    let linked = |shipped: Vec<debcover_core::model::ShippedBinary>| -> Vec<(String, i64, bool)> {
        let mut v: Vec<_> =
            shipped.into_iter().filter_map(|b| b.build.map(|(id, _, by_sha)| (b.package, id, by_sha))).collect();
        v.sort();
        v
    };
    let before = linked(store.shipped_binaries("bookworm", ShippedBy::Sources(&["0xffff".into()])).await.unwrap());
    assert_eq!(before.len(), 1);
    assert!(before[0].2, "linked by SHA-256");
    let original = before[0].1;
    // A rebuild reproduces the original: other bytes (its own date), the same files.
    let text = std::fs::read_to_string(testdata().join("buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo")).unwrap();
    let date = text.lines().find(|l| l.starts_with("Build-Date:")).unwrap();
    let rebuilt_text = text.replacen(date, "Build-Date: Mon, 23 Nov 2026 07:00:00 +0000", 1);
    assert_ne!(rebuilt_text, text);
    let mut rebuilt = ingest::prepare_build("rebuild:op/n:job-1:fence-1", rebuilt_text.as_bytes(), &Limits::default()).unwrap();
    rebuilt.rebuild_of = Some(original);
    assert_eq!(store.ingest_builds(std::slice::from_ref(&rebuilt)).await.unwrap(), [Stored::Inserted]);
    let ids: Vec<i64> = store.builds_of_source("0xffff", None, None).await.unwrap().iter().map(|b| b.id).collect();
    let rebuild_id = *ids.iter().max().unwrap();
    assert!(rebuild_id > original);
    // Visible as a build, never as the one behind the archive's bytes, even after a re-import
    // and in a new suite.
    let rec = store.builds_by_id(&[rebuild_id]).await.unwrap();
    assert_eq!((rec[0].sha256.as_str(), rec[0].origin.as_str()), (rebuilt.sha256.as_str(), "rebuild:op/n:job-1:fence-1"));
    import_0xffff_archive(&store, "bookworm", true).await;
    import_0xffff_archive(&store, "trixie", true).await;
    assert_eq!(linked(store.shipped_binaries("bookworm", ShippedBy::Sources(&["0xffff".into()])).await.unwrap()), before);
    assert_eq!(linked(store.shipped_binaries("trixie", ShippedBy::Sources(&["0xffff".into()])).await.unwrap()), before);
    // A binary only linkable by name goes to the newest original build, not to the rebuild.
    let by_name = format!(
        "Package: 0xffff-extra\nSource: 0xffff (0.8-1)\nVersion: 0.8-1+b1\nArchitecture: amd64\n\
         Filename: pool/main/0/0xffff/0xffff-extra_0.8-1+b1_amd64.deb\nSize: 10\nSHA256: {}\n",
        "e".repeat(64)
    );
    let import = PackagesImport {
        suite: "sid".into(),
        arch: "amd64".into(),
        origin: "t".into(),
        sha256: "z".into(),
        entries: parse_packages(&format!("{}\n{by_name}", packages_for_0xffff())),
    };
    store.import_packages(&import).await.unwrap();
    let sid = linked(store.shipped_binaries("sid", ShippedBy::Sources(&["0xffff".into()])).await.unwrap());
    let newest_original = store
        .builds_of_source("0xffff", Some("0.8-1+b1"), Some("amd64"))
        .await
        .unwrap()
        .iter()
        .map(|b| b.id)
        .filter(|id| *id != rebuild_id)
        .max()
        .unwrap();
    assert_eq!(sid, [("0xffff".to_owned(), original, true), ("0xffff-extra".to_owned(), newest_original, false)]);
    // Built-with answers include it (it is a build), campaign facts do not (above).
    let q = BuiltWithQuery { package: PackageSpec::Binary("libusb-dev".into()), before: None, suite: None, arch: None };
    let a = query::built_with(&store, &q).await.unwrap();
    assert!(a.builds.iter().any(|b| b.build.sha256 == rebuilt.sha256));
    // A verification result is never verified itself.
    let job = NewJob {
        build_id: rebuild_id,
        source: "0xffff".into(),
        version: "0.8-1+b1".into(),
        arch: "amd64".into(),
        backend: String::new(),
        tags: Vec::new(),
        priority: Priority::Request,
        origin: "test".into(),
    };
    let s = store.enqueue(&[job], Requeue::UnlessActive, T0).await.unwrap();
    assert_eq!((s.queued, s.already_done), (0, 1));
    assert!(store.jobs(&JobFilter::default()).await.unwrap().is_empty());
}

async fn campaign_fixes_queue_verification_once<S: Store, F: std::future::Future<Output = S>>(open: impl Fn() -> F) {
    use debcover_server::ops::scheduler::queue_fixed;
    use debcover_server::{Coordinator, Settings};
    let dir = tempfile::tempdir().unwrap();
    let rules = vec![rebuild::RouteRule { source: "synth1".into(), tags: vec!["big".into()], backend: None }];
    let c = Coordinator::new(std::sync::Arc::new(open().await), Settings::new(Policy::default(), rules, "admin", dir.path().to_path_buf()));
    let store = &*c.store;
    store.ingest_builds(&synthetic_builds(3)).await.unwrap();
    let r = store;
    let id = |i: usize| async move { r.builds_of_source(&format!("synth{i}"), None, None).await.unwrap()[0].id };
    let (b0, b1, b2) = (id(0).await, id(1).await, id(2).await);
    let t = |campaign: i64, to: ItemState, builds: Vec<i64>| Transition {
        item_id: 1,
        from: ItemState::Rebuilt,
        to,
        version: "1".into(),
        reason: String::new(),
        evidence: Vec::new(),
        campaign_id: campaign,
        builds,
        coverage: Coverage::of_state(to),
    };
    // synth2 waits in the background queue already.
    store.enqueue(&jobs_for(store, &["synth2"], Priority::Background).await, Requeue::OnlyNew, T0).await.unwrap();
    // Two items fixed by synth0 (two campaigns), one by synth1, one by synth2; one still
    // vulnerable (not queued).
    let changes = [
        t(7, ItemState::FixedUnverified, vec![b0, b1]),
        t(8, ItemState::FixedUnverified, vec![b0]),
        t(8, ItemState::FixedUnverified, vec![b2]),
        t(7, ItemState::StillVulnerable, vec![b1]),
    ];
    let s = queue_fixed(&c, &changes).await.unwrap();
    assert_eq!((s.queued, s.already_queued), (2, 1));
    let mut jobs: Vec<_> = store
        .jobs(&JobFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.build_id, j.priority, j.origin, j.tags))
        .collect();
    jobs.sort();
    let mut want = vec![
        (b0, Priority::Campaign, "campaign 7".to_owned(), vec![]),
        (b1, Priority::Campaign, "campaign 7".to_owned(), vec!["big".to_owned()]),
        (b2, Priority::Campaign, "test".to_owned(), vec![]),
    ];
    want.sort();
    assert_eq!(
        jobs,
        want,
        "synth2's background job was raised to campaign priority, not queued twice"
    );
    // The same evidence judged again (another coordinator, a status call): nothing new.
    let s = queue_fixed(&c, &changes).await.unwrap();
    assert_eq!((s.queued, s.already_queued), (0, 3));
    // Once verified, a build is not queued again for the same fix.
    let n = node(store, "op", "n", &["amd64"], &["big"], 10).await;
    // queue_fixed queues at the wall clock's time.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 + 1;
    let mut verified = 0;
    while let Some(l) = store.claim(&n, now, &policy(1)).await.unwrap() {
        store.finish(n.id, l.job_id, l.fence, &report(AttemptOutcome::Reproducible), now, &policy(1)).await.unwrap().unwrap();
        verified += 1;
    }
    assert_eq!(verified, 3);
    let s = queue_fixed(&c, &changes).await.unwrap();
    assert_eq!((s.queued, s.already_done), (0, 3));
    // Only fixed-unverified asks for verification.
    assert!(t(7, ItemState::StillVulnerable, vec![b1]).builds_to_verify().is_empty());
}

/// Coverage reads a build's jobs and attempts back: an unattested reproduction is recorded
/// with its note but not counted, k attested operators with the shipped bytes verify it, a
/// third operator with other bytes is a disagreement; an item's coverage is stored with its
/// state change and read back.
async fn coverage_rests_on_attested_rebuilds<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    use debcover_core::rebuild::Artifact;
    use debcover_core::rebuild::coverage::{BuildCheck, check_build};
    let store = open().await;
    store.ingest_builds(&synthetic_builds(2)).await.unwrap();
    store.enqueue(&jobs_for(&store, &["synth0"], Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
    let build = store.builds_of_source("synth0", None, None).await.unwrap()[0].id;
    let other = store.builds_of_source("synth1", None, None).await.unwrap()[0].id;
    let p = policy(2);
    let deb = |sha: &str| vec![Artifact { name: "synth0_1_amd64.deb".into(), size: 3, sha256: sha.into() }];
    let (good, bad) = ("5a".repeat(32), "ba".repeat(32));
    let built = |sha: &str, attested: bool| AttemptReport {
        artifacts: deb(sha),
        attestation: attested.then(|| Attestation::new(sha.as_bytes().to_vec())),
        ..AttemptReport::bare(if sha == good { AttemptOutcome::Reproducible } else {
            AttemptOutcome::Unreproducible { differing: vec!["synth0_1_amd64.deb".into()] }
        })
    };
    let finish = |op: &'static str, report: AttemptReport| {
        let store = &store;
        let p = &p;
        async move {
            let n = node(store, op, &format!("{op}1"), &["amd64"], &[], 1).await;
            let l = store.claim(&n, T0, p).await.unwrap().expect("a job");
            store.finish(n.id, l.job_id, l.fence, &report, T0, p).await.unwrap().unwrap()
        }
    };
    // alice reproduces it without an attestation: recorded, not counted, and said so.
    assert_eq!(finish("alice", built(&good, false)).await, JobState::Queued);
    let jobs = store.jobs_of_builds(&[build, other]).await.unwrap();
    assert_eq!(jobs.iter().map(|j| (j.build_id, j.verified)).collect::<Vec<_>>(), [(build, 0)], "only synth0 has a job");
    let attempts = store.attempts(&[jobs[0].id]).await.unwrap();
    assert_eq!(attempts[0].message, rebuild::UNATTESTED_NOTE);
    let states = |jobs: &[rebuild::JobRecord]| jobs.iter().map(|j| (j.id, j.state)).collect::<Vec<_>>();
    let BuildCheck::Unverified { why } = check_build(&states(&jobs), &attempts, std::slice::from_ref(&good), 2) else { panic!() };
    assert!(why.starts_with("0 attested reproduction(s)"), "{why}");
    // bob and carol reproduce it with attestations: verified on their two.
    assert_eq!(finish("bob", built(&good, true)).await, JobState::Queued);
    assert_eq!(finish("carol", built(&good, true)).await, JobState::Verified);
    let jobs = store.jobs_of_builds(&[build]).await.unwrap();
    let attempts = store.attempts(&[jobs[0].id]).await.unwrap();
    let BuildCheck::Verified { attestors } = check_build(&states(&jobs), &attempts, std::slice::from_ref(&good), jobs[0].verified)
    else {
        panic!("{attempts:?}")
    };
    assert_eq!(attestors.iter().map(|a| a.node.as_str()).collect::<Vec<_>>(), ["bob/bob1", "carol/carol1"]);
    assert_eq!(attestors[0].attestation_sha256, sha256_hex_of(&good));
    // Verified, but the archive ships other bytes than were reproduced: not enough.
    assert!(matches!(check_build(&states(&jobs), &attempts, std::slice::from_ref(&bad), 2), BuildCheck::Unverified { .. }));
    // dave, queued again by request, gets other bytes: the operators disagree, both sides named.
    store.enqueue(&jobs_for(&store, &["synth0"], Priority::Request).await, Requeue::UnlessActive, T0).await.unwrap();
    finish("dave", built(&bad, true)).await;
    let jobs = store.jobs_of_builds(&[build]).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let attempts = store.attempts(&jobs.iter().map(|j| j.id).collect::<Vec<_>>()).await.unwrap();
    let BuildCheck::Disagreement { disagreements } = check_build(&states(&jobs), &attempts, std::slice::from_ref(&good), 2) else {
        panic!()
    };
    let text = disagreements[0].to_string();
    assert!(text.contains("dave/dave1") && text.contains("bob/bob1") && text.contains(&bad[..16]), "{text}");

    // The coverage column: stored with the change, read back, and '' read as the state implies.
    let record = libvuln_campaign();
    let id = store.create_campaign(&record, &[planned("app-a", 1)]).await.unwrap();
    let item = store.campaign_items(Some(id), None).await.unwrap().remove(0);
    assert_eq!(item.coverage, Coverage::NotShippedYet);
    let change = |from, to, coverage| Transition {
        item_id: item.id,
        from,
        to,
        version: "1.0-1+b1".into(),
        reason: "r".into(),
        evidence: vec![],
        campaign_id: id,
        builds: vec![],
        coverage,
    };
    let changes = [
        change(ItemState::Affected, ItemState::FixedUnverified, Coverage::Disagreement),
    ];
    assert_eq!(store.record_transitions(&changes).await.unwrap(), 1);
    let item = store.campaign_items(Some(id), None).await.unwrap().remove(0);
    assert_eq!((item.state, item.coverage), (ItemState::FixedUnverified, Coverage::Disagreement));
    assert_eq!(store.record_transitions(&[change(ItemState::FixedUnverified, ItemState::Covered, Coverage::Covered)]).await.unwrap(), 1);
    let item = store.campaign_items(Some(id), None).await.unwrap().remove(0);
    assert_eq!((item.state, item.coverage), (ItemState::Covered, Coverage::Covered));
}

fn sha256_hex_of(s: &str) -> String {
    debcover_formats::sha256_hex(s.as_bytes())
}

/// Key history (migration 0007): a node's keys with their validity periods, closed by a new key
/// or by revocation, never dropped; coordinator keys recorded once.
async fn keys_history_and_coordinator_keys<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    use debcover_core::attestation::KeyRole;
    use debcover_core::rebuild::{self, NodeCaps};
    let store = open().await;
    let token = rebuild::new_token();
    let n = store.add_node("alice", "a1", &rebuild::token_digest(&token), 1).await.unwrap().expect("new node");
    let caps = |key: &str| NodeCaps {
        public_key: key.to_owned(),
        arches: vec!["amd64".into()],
        backends: vec!["local".into()],
        tags: vec![],
        slots: 1,
        software: String::new(),
    };
    assert!(store.node_keys().await.unwrap().is_empty());
    store.register_node(n.id, &caps("ssh-ed25519 KEY1"), 10).await.unwrap();
    store.register_node(n.id, &caps("ssh-ed25519 KEY1"), 20).await.unwrap();
    store.register_node(n.id, &caps("ssh-ed25519 KEY2"), 30).await.unwrap();
    let keys = store.node_keys().await.unwrap();
    let got: Vec<(&str, i64, Option<i64>)> = keys.iter().map(|k| (k.public_key.as_str(), k.valid_from, k.valid_until)).collect();
    assert_eq!(got, [("ssh-ed25519 KEY1", 10, Some(30)), ("ssh-ed25519 KEY2", 30, None)]);
    assert!(keys.iter().all(|k| k.role == KeyRole::Node && k.operator == "alice" && k.node == "a1"));
    assert!(keys[0].valid_at(30) && !keys[0].valid_at(31) && keys[1].valid_at(1_000));
    // Back to the first key: a new period, the old ones kept.
    store.register_node(n.id, &caps("ssh-ed25519 KEY1"), 40).await.unwrap();
    assert_eq!(store.node_keys().await.unwrap().len(), 3);
    // Revocation ends the current key.
    assert!(store.revoke_node("alice", "a1", 50).await.unwrap());
    let keys = store.node_keys().await.unwrap();
    assert_eq!(keys[2].valid_until, Some(50), "{keys:?}");
    // Coordinator keys: recorded once, at their first start.
    store.record_coordinator_key("ssh-ed25519 C1", 5).await.unwrap();
    store.record_coordinator_key("ssh-ed25519 C1", 60).await.unwrap();
    let c = store.coordinator_keys().await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].role, c[0].valid_from, c[0].valid_until), (KeyRole::Coordinator, 5, None));
}

/// Ending an attempt writes the job, the attempt and every artifact (here more than one
/// INSERT's worth), and says whether a campaign has items for the job's source.
async fn sched_finish_stores_every_artifact_and_names_campaign_sources<
    S: Store,
    F: std::future::Future<Output = S>,
>(
    open: impl Fn() -> F,
) {
    use debcover_core::rebuild::{Artifact, Finished};
    let store = open().await;
    store.ingest_builds(&synthetic_builds(3)).await.unwrap();
    store.enqueue(&jobs_for(&store, &["synth0", "synth1", "synth2"], Priority::Request).await, Requeue::UnlessActive, T0)
        .await
        .unwrap();
    let p = policy(1);
    let n = node(&store, "op", "n", &["amd64"], &[], 3).await;
    let mut leases = Vec::new();
    while let Some(l) = store.claim(&n, T0, &p).await.unwrap() {
        leases.push(l);
    }
    assert_eq!(leases.len(), 3);
    let (a, b, c) = (&leases[0], &leases[1], &leases[2]);
    // 2,345 artifacts: three INSERT statements in the one round trip.
    let many: Vec<Artifact> = (0..2345)
        .map(|i| Artifact { name: format!("f{i:05}.deb"), size: i, sha256: format!("{:064x}", i) })
        .collect();
    let attestation = Some(Attestation::new(b"link".to_vec()));
    let report = AttemptReport {
        artifacts: many.clone(),
        attestation: attestation.clone(),
        ..AttemptReport::bare(AttemptOutcome::Reproducible)
    };
    assert_eq!(
        store.finish_report(n.id, a.job_id, a.fence, &report, T0 + 1, &p).await.unwrap(),
        Ok(Finished { state: JobState::Verified, campaign_items: false })
    );
    let attempts = store.attempts(&[a.job_id]).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].artifacts, many, "every artifact stored, in name order");
    assert_eq!(attempts[0].outcome.as_deref(), Some("reproducible"));
    // The same report again: the lease is gone, nothing more is written.
    assert_eq!(
        store.finish_report(n.id, a.job_id, a.fence, &report, T0 + 2, &p).await.unwrap(),
        Err(Refusal::StaleFence { current: a.fence })
    );
    assert_eq!(store.attempts(&[a.job_id]).await.unwrap()[0].artifacts.len(), 2345);
    // A campaign with an item for the second job's source: the flag says so, for that source only.
    let record = libvuln_campaign();
    store.create_campaign(&record, &[planned(&b.source, 1)]).await.unwrap();
    let bare = AttemptReport { attestation, ..AttemptReport::bare(AttemptOutcome::Reproducible) };
    assert_eq!(
        store.finish_report(n.id, b.job_id, b.fence, &bare, T0 + 3, &p).await.unwrap(),
        Ok(Finished { state: JobState::Verified, campaign_items: true })
    );
    assert_eq!(
        store.finish_report(n.id, c.job_id, c.fence, &bare, T0 + 3, &p).await.unwrap(),
        Ok(Finished { state: JobState::Verified, campaign_items: false })
    );
}

/// A result's signed attestation is stored in the result's transaction and read back by its
/// SHA-256, byte for byte (any bytes, up to the accepted size); a refused result stores none;
/// the same bytes accepted twice are one attestation, readable as before.
async fn attestations_are_stored_with_their_result_only<S: Store, F: std::future::Future<Output = S>>(
    open: impl Fn() -> F,
) {
    let store = open().await;
    two_queued_jobs(&store).await;
    let p = policy(2);
    let n = node(&store, "alice", "a1", &["amd64"], &[], 2).await;
    let m = node(&store, "bob", "b1", &["amd64"], &[], 1).await;
    let (l0, l1) = (store.claim(&n, T0, &p).await.unwrap().unwrap(), store.claim(&n, T0, &p).await.unwrap().unwrap());
    let attested = |body: Vec<u8>| AttemptReport {
        attestation: Some(Attestation::new(body)),
        ..AttemptReport::bare(AttemptOutcome::Reproducible)
    };
    let read = |sha: String| {
        let store = &store;
        async move { store.attestation(&sha).await.unwrap() }
    };
    // Every byte value, at the largest size a report may carry.
    let cap = usize::try_from(rebuild::attest::MAX_ATTESTATION_BYTES).unwrap();
    let big: Vec<u8> = (0..=255u8).cycle().take(cap).collect();
    let accepted = attested(big.clone());
    let sha = accepted.attestation.as_ref().unwrap().sha256().to_owned();
    assert_eq!(sha, debcover_formats::sha256_hex(&big));
    assert_eq!(read(sha.clone()).await, None, "nothing before the result");
    assert_eq!(store.finish(n.id, l0.job_id, l0.fence, &accepted, T0 + 1, &p).await.unwrap(), Ok(JobState::Queued));
    assert_eq!(read(sha.clone()).await, Some(big.clone()), "stored with the result, byte for byte");
    assert_eq!(store.attempts(&[l0.job_id]).await.unwrap()[0].attestation_sha256.as_deref(), Some(sha.as_str()));
    // Refused: a stale token (the same lease again), another node's lease, an expired lease.
    let stale = attested(b"{\"signed\": \"stale\"}".to_vec());
    assert_eq!(
        store.finish(n.id, l0.job_id, l0.fence, &stale, T0 + 2, &p).await.unwrap(),
        Err(Refusal::StaleFence { current: l0.fence })
    );
    let not_yours = attested(b"{\"signed\": \"not yours\"}".to_vec());
    assert_eq!(store.finish(m.id, l1.job_id, l1.fence, &not_yours, T0 + 2, &p).await.unwrap(), Err(Refusal::NotYours));
    let late = attested(b"{\"signed\": \"late\"}".to_vec());
    let after_expiry = T0 + i64::try_from(p.lease_ttl.as_secs()).unwrap() + 1;
    assert_eq!(store.finish(n.id, l1.job_id, l1.fence, &late, after_expiry, &p).await.unwrap(), Err(Refusal::Expired));
    for refused in [&stale, &not_yours, &late] {
        assert_eq!(read(refused.attestation.as_ref().unwrap().sha256().to_owned()).await, None, "a refused result stores none");
    }
    // The same bytes with another result: accepted, one attestation, the same bytes.
    assert_eq!(store.finish(n.id, l1.job_id, l1.fence, &accepted, T0 + 3, &p).await.unwrap(), Ok(JobState::Queued));
    assert_eq!(store.attempts(&[l1.job_id]).await.unwrap()[0].attestation_sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(read(sha).await, Some(big));
    assert_eq!(read("0".repeat(64)).await, None);
}

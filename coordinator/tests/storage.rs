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

use debcover_coordinator::index::BuiltWithIndex;
use debcover_coordinator::ingest::{self, Limits};
use debcover_coordinator::model::{NewBuild, PackagesImport, SourcesImport, Stored};
use debcover_coordinator::query::{self, BuiltWithQuery, PackageSpec};
use debcover_coordinator::campaign::{
    CampaignRecord, Evidence, EvidenceKind, FoundBy, ItemState, Mode, PlannedItem, Transition,
};
use debcover_coordinator::campaign::snapshot::ArchiveCache;
use debcover_coordinator::model::ShippedBy;
use debcover_coordinator::storage::{CampaignStore, Store};
use debcover_coordinator::storage::postgres::PgStore;
use debcover_coordinator::storage::sqlite::SqliteStore;
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
                        debcover_coordinator::storage::sqlite::SqliteStore::open(&url).await.unwrap()
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
                        debcover_coordinator::storage::postgres::PgStore::open(&url).await.unwrap()
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
    let mut in_sha = false;
    let mut line_for_deb = None;
    for l in text.lines() {
        if l.starts_with("Checksums-Sha256:") {
            in_sha = true;
            continue;
        }
        if in_sha && !l.starts_with(' ') {
            in_sha = false;
        }
        if in_sha && l.ends_with(" 0xffff_0.8-1+b1_amd64.deb") {
            line_for_deb = Some(l.trim().to_owned());
        }
    }
    let l = line_for_deb.unwrap();
    let mut parts = l.split(' ');
    let (sha, size) = (parts.next().unwrap(), parts.next().unwrap());
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
async fn shipped_binaries_by_each_selector<S: CampaignStore, F: std::future::Future<Output = S>>(
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
async fn campaign_round_trip_and_compare_and_set<S: CampaignStore, F: std::future::Future<Output = S>>(
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

/// The index's answer equals the store's (uncached) answer.
async fn same_answer<S: Store>(index: &BuiltWithIndex, store: &S, q: &BuiltWithQuery) -> Flat {
    let indexed = index.built_with(store, q).await.unwrap();
    // BuiltWithEncoded's bytes are exactly prost's encoding of BuiltWith's message.
    let encoded = debcover_coordinator::service::convert::encode_built_with(&indexed);
    let message = debcover_coordinator::service::convert::built_with_response(&indexed);
    assert!(encoded == prost::Message::encode_to_vec(&message), "encodings differ for {q:?}");
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

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

use debcover_coordinator::ingest::{self, Limits};
use debcover_coordinator::model::{NewBuild, PackagesImport, SourcesImport, Stored};
use debcover_coordinator::query::{self, BuiltWithQuery, PackageSpec};
use debcover_coordinator::storage::Store;
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

//! Real Debian data produced or served on this machine: a source package built here with
//! dpkg-buildpackage, a Packages index written by the stock `dpkg-scanpackages`, and the full
//! bookworm amd64 Packages file from apt's lists.
//!
//! Needs `tests/fixtures/setup-debian-build.sh hello` to have run as root (.ci/run does it).
//! Outside CI, a machine without that setup skips these tests with a message; under CI they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use debcover_tests::{Server, describe, in_ci, pg::TestDatabase, workspace};
use serde_json::Value;

fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("{why}");
    }
    eprintln!("SKIPPING: {why} (run tests/fixtures/setup-debian-build.sh hello as root)");
}

/// Build `hello` from the archive once; cached under target/ between runs.
fn built_hello() -> Option<PathBuf> {
    let out = workspace().join("target/debcover-fixtures/hello");
    let status = Command::new("sh")
        .arg(workspace().join("tests/fixtures/build-real-package.sh"))
        .arg("hello")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => Some(out),
        other => {
            skip_or_fail(&format!("building hello with dpkg-buildpackage failed: {other:?}"));
            None
        }
    }
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn servers() -> Vec<(Server, Option<TestDatabase>)> {
    let mut v = vec![(Server::start(None), None)];
    if let Some(db) = TestDatabase::create_blocking() {
        v.push((Server::start(Some(&db.url)), Some(db)));
    }
    v
}

#[test]
fn package_built_here_is_ingested_linked_and_queried() {
    let Some(dir) = built_hello() else { return };
    let buildinfo = files_with_suffix(&dir, ".buildinfo").pop().expect("a .buildinfo");
    let debs = files_with_suffix(&dir, ".deb");
    let text = std::fs::read_to_string(&buildinfo).unwrap();
    // Independent figures from the file itself.
    let ibd_lines = text
        .split("\nInstalled-Build-Depends:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with(' '))
        .count();
    let version = text.lines().find_map(|l| l.strip_prefix("Version: ")).unwrap().to_owned();
    let libc6 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("libc6 (= ").map(|v| v.trim_end_matches([')', ',']).to_owned()))
        .unwrap();

    // The stock dpkg-scanpackages writes the Packages index for what was built here.
    let packages = dir.join("Packages");
    let scan = Command::new("dpkg-scanpackages").arg(".").current_dir(&dir).output().expect("dpkg-scanpackages");
    assert!(scan.status.success(), "{}", describe(&scan));
    std::fs::write(&packages, &scan.stdout).unwrap();

    for (s, _db) in servers() {
        let r = s.json(&["ingest", "buildinfo", "--json", buildinfo.to_str().unwrap()], 0);
        assert_eq!(r["ingested"], 1, "{r}");

        let shown = s.json(&["build", "show", "hello", "--json"], 0);
        let b = &shown[0];
        assert_eq!(b["build"]["version"], Value::String(version.clone()));
        assert_eq!(b["installed_build_depends"].as_array().unwrap().len(), ibd_lines);
        // Every .deb dpkg produced, with the SHA-256 of the actual file.
        let mut bins: Vec<(String, String)> = b["binaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| (x["filename"].as_str().unwrap().to_owned(), x["sha256"].as_str().unwrap().to_owned()))
            .collect();
        bins.sort();
        let mut expected: Vec<(String, String)> = debs
            .iter()
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), sha256_hex(&std::fs::read(p).unwrap())))
            .collect();
        expected.sort();
        assert_eq!(bins, expected);

        // The index links every shipped .deb to this build by SHA-256.
        let r = s.json(
            &["ingest", "archive", "--suite", "local", "--arch", "amd64", "--json", packages.to_str().unwrap()],
            0,
        );
        assert_eq!(r[0]["entries"].as_u64(), Some(debs.len() as u64), "{r}");
        assert_eq!(r[0]["linked"].as_u64(), Some(debs.len() as u64), "{r}");

        // Built with libc6 below a version just above the one installed: found, shipped in local.
        let above = format!("{libc6}+z");
        let w = s.json(&["built-with", "libc6", "--before", &above, "--suite", "local", "--json"], 0);
        assert_eq!(w["count"], 1, "{w}");
        assert_eq!(w["builds"][0]["matched"][0]["version"], Value::String(libc6.clone()));
        for bin in w["builds"][0]["binaries"].as_array().unwrap() {
            assert_eq!(bin["shipped_in"], serde_json::json!(["local/amd64"]));
        }
        // ... and not below the installed version itself.
        let w = s.json(&["built-with", "libc6", "--before", &libc6, "--json"], 0);
        assert_eq!(w["count"], 0, "{w}");
        assert_eq!(s.terminate(), Some(0));
    }
}

/// apt's list of the full bookworm amd64 Packages index, decompressed.
fn bookworm_packages() -> Option<(tempfile::TempDir, PathBuf)> {
    let lists = Path::new("/var/lib/apt/lists");
    let list = std::fs::read_dir(lists).ok()?.map(|e| e.ok().map(|e| e.path())).find_map(|p| {
        p.filter(|p| p.to_string_lossy().ends_with("_dists_bookworm_main_binary-amd64_Packages.lz4"))
    });
    let Some(list) = list else {
        skip_or_fail("no bookworm amd64 Packages list under /var/lib/apt/lists (run apt-get update)");
        return None;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bookworm_amd64_Packages");
    let cat = Command::new("/usr/lib/apt/apt-helper").arg("cat-file").arg(&list).output().expect("apt-helper");
    assert!(cat.status.success(), "{}", describe(&cat));
    std::fs::write(&out, &cat.stdout).unwrap();
    Some((tmp, out))
}

#[test]
fn full_bookworm_packages_index_ingests_completely() {
    let Some((_tmp, path)) = bookworm_packages() else { return };
    let text = std::fs::read_to_string(&path).unwrap();
    let paragraphs = text.lines().filter(|l| l.starts_with("Package: ")).count() as u64;
    let distinct_sha = text
        .lines()
        .filter_map(|l| l.strip_prefix("SHA256: "))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert!(paragraphs > 60_000);
    for (s, _db) in servers() {
        let r = s.json(&["ingest", "archive", "--suite", "bookworm", "--json", path.to_str().unwrap()], 0);
        assert_eq!(r[0]["entries"].as_u64(), Some(paragraphs), "{r}");
        assert_eq!(r[0]["architecture"], "amd64");
        assert_eq!(r[0]["added"].as_u64(), Some(distinct_sha), "{r}");
        let status = s.json(&["status", "--json"], 0);
        assert_eq!(status["binaries"].as_u64(), Some(distinct_sha));
        // A campaign over the whole suite finds exactly the binaries whose Built-Using family
        // names the library below the fix, by an independent scan of the file.
        let want = debcover_tests::embedding_scan(&text, "golang-golang-x-net", "1:0.17.0-1");
        assert!(want.len() > 50, "{}", want.len());
        let plan = s.json(
            &["campaign", "plan", "--library", "golang-golang-x-net", "--fixed", "1:0.17.0-1", "--suite", "bookworm", "--json"],
            0,
        );
        let got: std::collections::BTreeSet<(String, String)> = plan["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["evidence"].as_array().unwrap().iter().any(|e| e["through"].is_null()))
            .map(|i| (i["source"].as_str().unwrap().to_owned(), i["arch"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(s.terminate(), Some(0));
    }
}

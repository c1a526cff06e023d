//! The README's end-to-end story, run the way a new user runs it: `sh story.sh` with the
//! binaries of this build. One real `debcover serve` on SQLite (the embedded default), two
//! real `debcover-rebuilder` nodes of two operators, the campaign fixture's real packages: the
//! libstat fix, app-b's binNMU rebuilt by both nodes with dpkg-buildpackage, the item covered,
//! the attestations exported and verified offline (by `debcover verify` and by the stock
//! in-toto-verify).
//!
//! The test then checks every final state from what the story left behind: the campaign's
//! status, the rebuild history, the export (verified again here, at thresholds 2 and 3), and
//! that the story cleaned up the package it installed for the nodes.
//!
//! Needs root and `tests/fixtures/setup-debian-build.sh hello` (.ci/run does both); outside CI,
//! a machine without them skips with a message.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use debcover_tests::{binary, in_ci, which, workspace};
use serde_json::Value;

fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("{why}");
    }
    eprintln!("SKIPPING: {why} (run tests/fixtures/setup-debian-build.sh hello as root)");
}

/// A port `p` with `p` and `p + 1` free on loopback (gRPC and web pages).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let Ok(a) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = a.local_addr() else { continue };
        let p = addr.port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no two consecutive free ports on 127.0.0.1");
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// The tail of a log the story kept, for failure messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!("--- {}\n{}", path.display(), lines[lines.len().saturating_sub(40)..].join("\n"))
}

#[test]
fn the_readme_story_ends_with_app_b_covered_and_verified_offline() {
    if !Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false) {
        return skip_or_fail("story.sh must run as root (it installs the fixed libstat-dev for the nodes)");
    }
    for tool in ["dpkg-buildpackage", "dh", "python3"] {
        if which(tool).is_none() {
            return skip_or_fail(&format!("{tool} is not installed"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    // The nodes build as nobody (the tests run as root), who must pass through.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let work = dir.path().join("story");
    let bin_dir = binary("debcover").parent().unwrap().to_path_buf();
    assert!(binary("debcover-rebuilder").exists());
    let port = free_port_pair();
    let out_path = dir.path().join("story.out");
    let err_path = dir.path().join("story.err");
    let mut child = Command::new("sh")
        .arg(workspace().join("story.sh"))
        .env("DEBCOVER_BIN", &bin_dir)
        .env("DEBCOVER_STORY_DIR", &work)
        .env("DEBCOVER_STORY_PORT", port.to_string())
        .env("DEBCOVER_STORY_TIMEOUT", "900")
        .env("DEBCOVER_FIXTURE", workspace().join("target/debcover-fixtures/campaign"))
        .env_remove("DEBCOVER_SERVER")
        .env_remove("DEBCOVER_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("sh story.sh");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(1500) {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            panic!("story.sh ran for 25 minutes:\n{}\n{}", tail(&out_path), tail(&err_path));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let context = format!(
        "{}\n{}\n{}\n{}\n{}",
        tail(&out_path),
        tail(&err_path),
        tail(&work.join("coordinator.log")),
        tail(&work.join("nodes/a1.log")),
        tail(&work.join("nodes/b1.log"))
    );
    assert!(status.success(), "story.sh failed ({status}):\n{context}");

    // The story told its steps in order, and ended with the verdict.
    let mut at = 0;
    for step in ["== 1. ", "== 2. ", "== 3. ", "== 4. ", "== 5. ", "== 6. ", "== done: app-b is covered"] {
        let found = stdout[at..].find(step).unwrap_or_else(|| panic!("{step:?} missing or out of order:\n{stdout}"));
        at += found + step.len();
    }
    assert!(stdout.contains("verified: 2 of 2"), "debcover verify at threshold 2:\n{stdout}");
    if in_ci() || which("in-toto-verify").is_some() {
        assert!(stdout.contains("in-toto-verify: the coordinator-signed layout passes"), "{stdout}");
    }

    // The campaign: one item, app-b on amd64, covered, the only coverage value.
    let st = read_json(&work.join("status.json"));
    let items = st["items"].as_array().unwrap_or_else(|| panic!("no items: {st:#}"));
    assert_eq!(items.len(), 1, "{st:#}");
    let item = &items[0];
    assert_eq!(item["source"], "app-b", "{st:#}");
    assert_eq!((item["state"].as_str(), item["coverage"].as_str()), (Some("covered"), Some("covered")), "{st:#}");
    assert_eq!(st["coverage"]["covered"], 1, "{st:#}");

    // The Prometheus metrics scraped at that moment: the time from the campaign's creation to
    // its last item covered, and the two reproducible results.
    if which("curl").is_some() {
        let metrics = std::fs::read_to_string(work.join("metrics.txt")).unwrap();
        let id = st["campaign"]["id"].as_i64().unwrap_or_else(|| panic!("no campaign id: {st:#}"));
        let covered = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("debcover_campaign_covered_seconds{{campaign=\"{id}\"}} ")))
            .unwrap_or_else(|| panic!("no debcover_campaign_covered_seconds for campaign {id}:\n{metrics}"));
        assert!(covered.trim().parse::<i64>().is_ok_and(|s| (0..1800).contains(&s)), "{covered}\n{metrics}");
        assert!(metrics.lines().any(|l| l == "debcover_rebuild_results_total{outcome=\"reproducible\"} 2"), "{metrics}");
    }

    // The rebuild history: the binNMU's job verified by alice and bob, each attempt reproducible
    // and attested, their .deb hashes equal to the archive's (the shipped bytes).
    let history = read_json(&work.join("history.json"));
    let job = history
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["version"] == "1.0-1+b1"))
        .unwrap_or_else(|| panic!("no job for app-b 1.0-1+b1: {history:#}"));
    assert_eq!(job["state"], "verified", "{job:#}");
    let attempts = job["attempts"].as_array().unwrap();
    let reproducible: Vec<&Value> = attempts.iter().filter(|a| a["outcome"] == "reproducible").collect();
    // The fixed library was in place before the job was queued: no attempt met another build
    // environment than the buildinfo's.
    assert_eq!(reproducible.len(), attempts.len(), "{job:#}");
    let mut operators: Vec<&str> = reproducible.iter().filter_map(|a| a["operator"].as_str()).collect();
    operators.sort();
    assert_eq!(operators, ["alice", "bob"], "{job:#}");
    let packages = std::fs::read_to_string(workspace().join("target/debcover-fixtures/campaign/stage2/Packages")).unwrap();
    let shipped = debcover_tests::paragraphs(&packages)
        .into_iter()
        .find(|p| p.iter().any(|(k, v)| k == "Package" && v == "app-b"))
        .and_then(|p| p.into_iter().find(|(k, _)| k == "SHA256").map(|(_, v)| v))
        .expect("app-b in stage2/Packages");
    for a in &reproducible {
        assert!(a["attestation_sha256"].is_string(), "unattested: {a:#}");
        let deb = a["artifacts"].as_array().unwrap().iter().find(|f| f["name"].as_str().is_some_and(|n| n.starts_with("app-b_")));
        assert_eq!(deb.map(|f| f["sha256"].as_str()), Some(Some(shipped.as_str())), "{a:#}");
    }
    assert_eq!(job["disagreements"].as_array().map(Vec::len), Some(0), "{job:#}");

    // The export, checked again offline: two links, the keys, the signed layout; threshold 2
    // passes with both operators, 3 does not.
    let export = work.join("export");
    let names: Vec<String> =
        std::fs::read_dir(&export).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let count = |p: &str, s: &str| names.iter().filter(|n| n.starts_with(p) && n.ends_with(s)).count();
    assert_eq!(count("rebuild.", ".link"), 2, "{names:?}");
    assert_eq!(count("node.", ".pub"), 2, "{names:?}");
    assert_eq!(count("coordinator.", ".pub"), 1, "{names:?}");
    assert!(names.contains(&"root.layout".to_owned()) && names.contains(&"debcover-export.json".to_owned()), "{names:?}");
    let verify = |k: &str| {
        Command::new(binary("debcover"))
            .arg("verify")
            .arg(&export)
            .arg("--trust-key")
            .arg(work.join("coordinator.pem"))
            .args(["--threshold", k, "--json"])
            .env_remove("DEBCOVER_SERVER")
            .output()
            .unwrap()
    };
    let out = verify("2");
    assert_eq!(out.status.code(), Some(0), "{}", debcover_tests::describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["report"]["agreeing_operators"], serde_json::json!(["alice", "bob"]), "{report:#}");
    assert_eq!(verify("3").status.code(), Some(1), "threshold 3 with two operators passed");

    // The story removed what it installed for the nodes.
    let state = Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", "libstat-dev"]).output().unwrap();
    let state = String::from_utf8_lossy(&state.stdout);
    assert!(state.is_empty() || state == "not-installed", "libstat-dev left installed: {state:?}");
}

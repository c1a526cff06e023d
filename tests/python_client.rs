//! The proto is the contract: a rebuilder node written in Python (`tests/python/node_client.py`,
//! stubs generated from `proto/` at run time with `grpc_tools.protoc`) registers, long-polls a
//! claim for the job queued here while it waits, heartbeats, streams a report, and is refused
//! with the documented gRPC status for a forged token and a stale fencing token, against a real
//! `debcover serve` on SQLite and on PostgreSQL. The job's state afterwards is checked with the
//! real `debcover queue` and `debcover build history` commands.
//!
//! A second Python client (`tests/python/built_with_client.py`) reads both `built-with` answers,
//! which the coordinator serves by hand rather than through tonic.
//!
//! Needs `python3` with `grpcio` and `grpcio-tools` (`.ci/run` installs them): outside CI a
//! missing module skips with a message; under CI it fails.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use debcover_tests::{Server, in_ci, pg::TestDatabase, testdata, workspace};
use serde_json::Value;

/// The buildinfo the job is made from (two .deb files in its Checksums-Sha256).
const BUILDINFO: &str = "buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo";

/// Is `python3` there with grpcio and grpcio-tools? Outside CI, false means "skip" (after
/// saying why); under CI a missing module fails the test.
fn python_ready() -> bool {
    let probe = Command::new("python3").args(["-c", "import grpc, grpc_tools.protoc"]).output();
    let why = match probe {
        Ok(out) if out.status.success() => return true,
        // The last line of the traceback: "ModuleNotFoundError: No module named 'grpc'".
        Ok(out) => String::from_utf8_lossy(&out.stderr).lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_owned(),
        Err(e) => format!("cannot run python3: {e}"),
    };
    assert!(!in_ci(), "python3 with grpcio and grpcio-tools is required under CI: {why}");
    eprintln!("SKIPPING the Python client test: {why} (python3 -m pip install grpcio grpcio-tools)");
    false
}

fn scenario(s: &Server) {
    let admin = s.data_dir.path().join("admin.token");
    let admin = admin.to_str().expect("UTF-8 path");
    let buildinfo = testdata().join(BUILDINFO);
    let text = std::fs::read_to_string(&buildinfo).expect("read the test buildinfo");
    let ingest = s.json(&["ingest", "buildinfo", "--json", buildinfo.to_str().expect("UTF-8 path")], 0);
    assert_eq!(ingest["ingested"].as_u64(), Some(1), "{ingest}");
    let node = s.json(&["node", "add", "--operator", "pyop", "--name", "py1", "--admin-token-file", admin, "--json"], 0);
    let token_file = s.data_dir.path().join("py1.token");
    std::fs::write(&token_file, node["token"].as_str().expect("a token")).expect("write the token file");

    // The client starts claiming (long-poll) before there is any job; the job is queued while
    // it waits.
    let mut child = Command::new("python3")
        .arg(workspace().join("tests/python/node_client.py"))
        .args(["--server", &s.url, "--wait", "25", "--token-file"])
        .arg(&token_file)
        .arg("--proto-dir")
        .arg(workspace().join("proto/proto"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 tests/python/node_client.py");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let out = std::thread::spawn(move || {
        let mut buf = String::new();
        let _ = stdout.read_to_string(&mut buf);
        buf
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    let err = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("claiming") {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let claiming = rx.recv_timeout(Duration::from_secs(120));
    if claiming.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("node_client.py never started claiming:\n{}\n{}", out.join().unwrap_or_default(), err.join().unwrap_or_default());
    }
    std::thread::sleep(Duration::from_millis(1000));
    let q = s.json(&["rebuild", "request", "0xffff", "--admin-token-file", admin, "--json"], 0);
    assert_eq!(q["queued"].as_u64(), Some(1), "{q}");

    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node_client.py") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node_client.py did not finish within 120 s; server log:\n{}", s.log().join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    assert!(status.success(), "node_client.py: {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("node_client.py printed no JSON ({e}):\n{stdout}"));

    // What the Python node saw.
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(r["bad_token"]["code"], "UNAUTHENTICATED", "{r:#}");
    assert_eq!((r["register"]["operator"].as_str(), r["register"]["node"].as_str()), (Some("pyop"), Some("py1")), "{r:#}");
    assert_eq!(r["register"]["architectures"], serde_json::json!(["amd64"]), "{r:#}");
    let claim = &r["claim"];
    assert_eq!((claim["source"].as_str(), claim["architecture"].as_str()), (Some("0xffff"), Some("amd64")), "{r:#}");
    assert_eq!(claim["fence"].as_i64(), Some(1), "{r:#}");
    assert_eq!(claim["buildinfo_sha256"], claim["build_id"], "{r:#}");
    assert!(claim["waited_seconds"].as_f64().expect("waited") >= 0.5, "the claim long-polled: {r:#}");
    assert!(r["heartbeat"]["lease_expires_at"].as_i64() >= claim["lease_expires_at"].as_i64(), "{r:#}");
    assert_eq!(r["stale_fence"]["code"], "FAILED_PRECONDITION", "{r:#}");
    assert!(r["stale_fence"]["details"].as_str().expect("details").contains("stale fencing token"), "{r:#}");
    assert_eq!(r["after_report"]["code"], "FAILED_PRECONDITION", "{r:#}");
    let report = &r["report"];
    assert_eq!((report["outcome"].as_str(), report["job_state"].as_str()), (Some("reproducible"), Some("verified")), "{r:#}");
    assert_eq!(report["differing"], serde_json::json!([]), "{r:#}");
    assert_eq!(report["log_sha256"], report["log_sent_sha256"], "{r:#}");
    let sent: Vec<(String, u64, String)> = report["artifacts_sent"]
        .as_array()
        .expect("artifacts_sent")
        .iter()
        .map(|a| (a["name"].as_str().unwrap_or_default().to_owned(), a["size"].as_u64().unwrap_or_default(), a["sha256"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(sent, debcover_tests::checksums(&text), "the artifacts are the buildinfo's Checksums-Sha256");
    assert_eq!(sent.len(), 2);

    // What the coordinator recorded, through the real client.
    let job_id = claim["job_id"].as_i64().expect("job_id");
    let q = s.json(&["queue", "--json", "--state", "verified"], 0);
    let job = q["jobs"].as_array().expect("jobs").iter().find(|j| j["id"].as_i64() == Some(job_id));
    let job = job.unwrap_or_else(|| panic!("job {job_id} is not listed as verified: {q:#}"));
    assert_eq!(job["source"], "0xffff", "{q:#}");
    let q = s.json(&["queue", "--json", "--state", "queued", "--state", "leased"], 0);
    assert!(q["jobs"].as_array().expect("jobs").is_empty(), "nothing left queued or leased: {q:#}");
    let h = s.json(&["build", "history", "0xffff", "--json"], 0);
    let job = h.as_array().expect("history").iter().find(|j| j["id"].as_i64() == Some(job_id));
    let job = job.unwrap_or_else(|| panic!("job {job_id} not in the history: {h:#}"));
    let attempts = job["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 1, "{h:#}");
    assert_eq!((attempts[0]["node"].as_str(), attempts[0]["outcome"].as_str()), (Some("py1"), Some("reproducible")), "{h:#}");
    assert_eq!(attempts[0]["log_sha256"], report["log_sent_sha256"], "{h:#}");
    // The Python node signed its result (cryptography + securesystemslib's canonical JSON):
    // the coordinator checked the link with its registered key, so the result counted.
    let attestation = report["attestation_sha256"].as_str().expect("attestation_sha256");
    assert_eq!(attestation.len(), 64, "{r:#}");
    assert_eq!(attempts[0]["attestation_sha256"].as_str(), Some(attestation), "{h:#}");
    let mut recorded: Vec<String> =
        attempts[0]["artifacts"].as_array().expect("artifacts").iter().filter_map(|a| a["name"].as_str().map(str::to_owned)).collect();
    recorded.sort();
    let mut want: Vec<String> = sent.iter().map(|(n, _, _)| n.clone()).collect();
    want.sort();
    assert_eq!(recorded, want, "{h:#}");
}

/// One verifier: a single reproducible report verifies the build.
const ENV: [(&str, &str); 1] = [("DEBCOVER_VERIFIERS", "1")];

/// Run `scenario` against a fresh coordinator on SQLite, or on a fresh PostgreSQL database when
/// `postgres` (skipped like every PostgreSQL test when there is none outside CI); it must stop
/// cleanly afterwards.
fn on_backend(postgres: bool, env: &[(&str, &str)], scenario: fn(&Server)) {
    if !python_ready() {
        return;
    }
    let db = if postgres {
        let Some(db) = TestDatabase::create_blocking() else { return };
        Some(db)
    } else {
        None
    };
    let s = Server::start_with(db.as_ref().map(|d| d.url.as_str()), env);
    scenario(&s);
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

#[test]
fn python_node_client_on_sqlite() {
    on_backend(false, &ENV, scenario);
}

#[test]
fn python_node_client_on_postgres() {
    on_backend(true, &ENV, scenario);
}

/// A stock gRPC client (grpcio) asks `built-with`, answered as a stream of column pages: the
/// Python protobuf decoder must read every page, rebuild from the columns the builds (ids,
/// sources, binaries and their SHA-256s) that the `debcover built-with` command lists, and get
/// INVALID_ARGUMENT for a bad request.
fn built_with_scenario(s: &Server) {
    let files = [
        "buildinfo/package-rebuilder__bash_5.1-2+b3_amd64.buildinfo",
        "buildinfo/package-rebuilder__bash_5.1-3+b1_amd64.buildinfo",
        BUILDINFO,
    ];
    let paths: Vec<String> = files.iter().map(|f| testdata().join(f).to_str().expect("UTF-8 path").to_owned()).collect();
    let mut args = vec!["ingest", "buildinfo", "--json"];
    args.extend(paths.iter().map(String::as_str));
    let ingest = s.json(&args, 0);
    assert_eq!(ingest["ingested"].as_u64(), Some(3), "{ingest}");
    let ours = s.json(&["built-with", "libc6-dev", "--json"], 0);

    let out = Command::new("python3")
        .arg(workspace().join("tests/python/built_with_client.py"))
        .args(["--server", &s.url, "--package", "libc6-dev", "--proto-dir"])
        .arg(workspace().join("proto/proto"))
        .output()
        .expect("run python3 tests/python/built_with_client.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "built_with_client.py: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("built_with_client.py printed no JSON ({e}):\n{stdout}"));
    assert_eq!(r["empty"]["code"], "INVALID_ARGUMENT", "{r:#}");
    assert_eq!(r["strings_first"], "", "{r:#}");
    assert_eq!(r["resolved"], serde_json::json!(["libc6-dev"]), "{r:#}");
    let builds = |v: &Value, at: &dyn Fn(&Value) -> &Value| -> Vec<(String, String, Vec<(String, String)>)> {
        v.as_array()
            .expect("builds")
            .iter()
            .map(|b| {
                let s = |k: &str| at(b)[k].as_str().unwrap_or_default().to_owned();
                let bins = b["binaries"]
                    .as_array()
                    .expect("binaries")
                    .iter()
                    .map(|x| (x["package"].as_str().unwrap_or_default().to_owned(), x["sha256"].as_str().unwrap_or_default().to_owned()))
                    .collect();
                (s("id"), s("source"), bins)
            })
            .collect()
    };
    let theirs = builds(&r["builds"], &|b| b);
    let ours = builds(&ours["builds"], &|b| &b["build"]);
    assert_eq!(theirs.len(), 3, "{r:#}");
    assert_eq!(theirs, ours);
    let binaries: usize = theirs.iter().map(|b| b.2.len()).sum();
    assert!(binaries >= 3, "every build produced binaries: {r:#}");
}

#[test]
fn python_client_reads_built_with_on_sqlite() {
    on_backend(false, &[], built_with_scenario);
}

#[test]
fn python_client_reads_built_with_on_postgres() {
    on_backend(true, &[], built_with_scenario);
}

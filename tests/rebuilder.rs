//! The rebuilder network end to end: one real `debcover serve` process and real
//! `debcover-rebuilder` processes of two operators over loopback gRPC, on SQLite and on
//! PostgreSQL, rebuilding real Debian source packages with dpkg-buildpackage:
//!
//! - from the campaign fixture (sources fetched from its `pool/` through the coordinator's
//!   `--archive-mirror`, checked against the Sources index and the .dsc): libstat 2.0-1 and
//!   libvuln 1.0-1 are reproducible; unrepro 1.0-1 (random bytes in every build) is
//!   unreproducible, naming its .deb; app-a 1.0-1 recorded libvuln-dev 1.0-1, which this
//!   machine no longer has installed, so it is an environment mismatch and never a verdict;
//! - hello from the Debian archive (source by `apt-get source`), built here first: reproducible.
//!
//! And the faults: a node killed with SIGKILL mid-build (its job is reclaimed and finished by
//! another node), a node frozen past its lease (its late result is refused), and a coordinator
//! restarted while nodes build (nothing lost, nothing counted twice).
//!
//! Needs `tests/fixtures/setup-debian-build.sh hello` to have run as root (.ci/run does it);
//! outside CI, a machine without it skips with a message.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use debcover_tests::{Server, binary, in_ci, pg::TestDatabase, workspace};
use serde_json::Value;

fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("{why}");
    }
    eprintln!("SKIPPING: {why} (run tests/fixtures/setup-debian-build.sh hello as root)");
}

fn campaign_fixture() -> Option<PathBuf> {
    let out = workspace().join("target/debcover-fixtures/campaign");
    match Command::new("sh").arg(workspace().join("tests/fixtures/campaign/build.sh")).arg(&out).status() {
        Ok(s) if s.success() => Some(out),
        other => {
            skip_or_fail(&format!("building the campaign fixture failed: {other:?}"));
            None
        }
    }
}

fn built_hello() -> Option<PathBuf> {
    let out = workspace().join("target/debcover-fixtures/hello");
    match Command::new("sh").arg(workspace().join("tests/fixtures/build-real-package.sh")).arg("hello").arg(&out).status() {
        Ok(s) if s.success() => Some(out),
        other => {
            skip_or_fail(&format!("building hello with dpkg-buildpackage failed: {other:?}"));
            None
        }
    }
}

fn one(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
        .unwrap_or_else(|| panic!("no {prefix}*{suffix} in {}", dir.display()))
}

/// A running `debcover-rebuilder` process with its log.
struct Node {
    child: Option<Child>,
    name: String,
    log: Arc<Mutex<Vec<String>>>,
    args: Vec<String>,
    /// A command the node runs under (e.g. `ip netns exec NS`).
    wrap: Vec<String>,
}

impl Node {
    fn start(server: &Server, token_file: &Path, name: &str, work: &Path, extra: &[&str]) -> Node {
        let mut n = Node::prepare(server, token_file, name, work, extra);
        n.spawn();
        n
    }

    fn prepare(server: &Server, token_file: &Path, name: &str, work: &Path, extra: &[&str]) -> Node {
        // Builds run as an unprivileged user (nobody) when the tests run as root: it must pass
        // through the private temporary directory above the work directory.
        if let Some(parent) = work.parent() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o711));
        }
        let mut args: Vec<String> = vec![
            "run".into(),
            "--server".into(),
            server.url.clone(),
            "--token-file".into(),
            token_file.to_string_lossy().into_owned(),
            "--work-dir".into(),
            work.to_string_lossy().into_owned(),
            "--slots".into(),
            "1".into(),
            "--build-timeout".into(),
            "20m".into(),
        ];
        if !extra.contains(&"--shutdown-grace") {
            args.extend(["--shutdown-grace".to_owned(), "5s".to_owned()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Node { child: None, name: name.to_owned(), log: Arc::new(Mutex::new(Vec::new())), args, wrap: Vec::new() }
    }

    /// [`Node::start`] under `wrap` (the node's program and arguments follow it), reaching the
    /// coordinator at `url`.
    fn start_wrapped(server: &Server, url: &str, token_file: &Path, name: &str, work: &Path, extra: &[&str], wrap: &[&str]) -> Node {
        let mut n = Node::prepare(server, token_file, name, work, extra);
        if let Some(i) = n.args.iter().position(|a| a == "--server") {
            n.args[i + 1] = url.to_owned();
        }
        n.wrap = wrap.iter().map(|s| s.to_string()).collect();
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let mut cmd = match self.wrap.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(binary("debcover-rebuilder"));
                c
            }
            None => Command::new(binary("debcover-rebuilder")),
        };
        let mut child = cmd
            .args(&self.args)
            .env("DEBCOVER_LOG", "info,debcover_rebuilder=debug")
            .env_remove("DEBCOVER_SERVER")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn debcover-rebuilder");
        let stderr = child.stderr.take().unwrap();
        let sink = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status();
    }

    /// SIGTERM and the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return s.code();
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Lines of the log that contain every one of `needles`; fails the test if the node has
    /// exited.
    fn count(&self, needles: &[&str]) -> usize {
        if let Some(c) = &self.child {
            // /proc, not try_wait: the child stays unreaped for terminate() to collect.
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", c.id())).unwrap_or_default();
            let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
            assert!(!matches!(state, None | Some('Z')), "node {} exited:\n{}", self.name, self.log_text());
        }
        self.log.lock().unwrap().iter().filter(|l| needles.iter().all(|n| l.contains(n))).count()
    }

    fn wait_for(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while self.count(&[needle]) == 0 {
            assert!(start.elapsed() < limit, "node {} never logged {needle:?}:\n{}", self.name, self.log_text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Net {
    server: Server,
    admin: String,
    tokens: tempfile::TempDir,
    _db: Option<TestDatabase>,
}

impl Net {
    fn start(db: Option<TestDatabase>, fixture: &Path, extra_env: &[(&str, &str)]) -> Net {
        Net::start_listening(db, fixture, extra_env, "127.0.0.1:0")
    }

    fn start_listening(db: Option<TestDatabase>, fixture: &Path, extra_env: &[(&str, &str)], listen: &str) -> Net {
        let mirror = format!("file://{}", fixture.display());
        let mut env = vec![
            ("DEBCOVER_ARCHIVE_MIRROR", mirror.as_str()),
            ("DEBCOVER_LEASE_TTL", "30s"),
            ("DEBCOVER_RETRY_DELAYS", "1s"),
            ("DEBCOVER_MAX_FAILURES", "2"),
            ("DEBCOVER_MAX_UNREPRODUCIBLE", "2"),
        ];
        env.extend_from_slice(extra_env);
        let server = Server::start_listening(db.as_ref().map(|d| d.url.as_str()), &env, listen);
        let admin = server.data_dir.path().join("admin.token").to_string_lossy().into_owned();
        Net { server, admin, tokens: tempfile::tempdir().unwrap(), _db: db }
    }

    /// A node credential in a file.
    fn token(&self, operator: &str, name: &str) -> PathBuf {
        let v = self.server.json(&["node", "add", "--operator", operator, "--name", name, "--admin-token-file", &self.admin, "--json"], 0);
        let path = self.tokens.path().join(format!("{operator}-{name}.token"));
        std::fs::write(&path, v["token"].as_str().expect("token")).unwrap();
        path
    }

    fn ingest(&self, args: &[&str]) -> Value {
        let mut a = vec!["ingest"];
        a.extend_from_slice(args);
        a.push("--json");
        self.server.json(&a, 0)
    }

    fn request(&self, source: &str) -> Value {
        self.server.json(&["rebuild", "request", source, "--admin-token-file", &self.admin, "--json"], 0)
    }

    fn history(&self, source: &str) -> Vec<Value> {
        self.server.json(&["build", "history", source, "--json"], 0).as_array().cloned().unwrap_or_default()
    }

    /// Wait until every job of every source is verified or parked.
    fn settle(&self, sources: &[&str], limit: Duration, nodes: &[&Node]) -> Vec<(String, Vec<Value>)> {
        let start = Instant::now();
        loop {
            let all: Vec<(String, Vec<Value>)> = sources.iter().map(|s| (s.to_string(), self.history(s))).collect();
            let done = all.iter().all(|(_, jobs)| {
                !jobs.is_empty() && jobs.iter().all(|j| matches!(j["state"].as_str(), Some("verified" | "parked")))
            });
            if done {
                return all;
            }
            if start.elapsed() > limit {
                let logs: Vec<String> = nodes.iter().map(|n| format!("--- node {}\n{}", n.name, n.log_text())).collect();
                panic!(
                    "jobs did not settle within {limit:?}:\n{}\n{}\n--- server\n{}",
                    serde_json::to_string_pretty(&all.iter().map(|(s, j)| (s, j)).collect::<Vec<_>>()).unwrap(),
                    logs.join("\n"),
                    self.server.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn attempts(job: &Value) -> Vec<&Value> {
    job["attempts"].as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn outcomes(job: &Value) -> Vec<String> {
    attempts(job).iter().map(|a| a["outcome"].as_str().unwrap_or("running").to_owned()).collect()
}

/// The static-library scenario and hello, rebuilt by two operators' nodes.
fn network_rebuilds_real_packages(db: Option<TestDatabase>) {
    let (Some(fixture), Some(hello)) = (campaign_fixture(), built_hello()) else {
        return;
    };
    let backend = if db.is_some() { "postgres" } else { "sqlite" };
    let net = Net::start(db, &fixture, &[]);
    // What the coordinator knows: the builds, the archive that ships them, the sources.
    for f in [
        one(&fixture.join("stage1"), "libstat_", ".buildinfo"),
        one(&fixture.join("stage1"), "libvuln_", ".buildinfo"),
        one(&fixture.join("stage1"), "app-a_", ".buildinfo"),
        one(&fixture.join("unrepro"), "unrepro_", ".buildinfo"),
        one(&hello, "hello_", ".buildinfo"),
    ] {
        net.ingest(&["buildinfo", f.to_str().unwrap()]);
    }
    for (suite, index) in [("fixture", "stage1/Packages"), ("fixture", "unrepro/Packages")] {
        net.ingest(&["archive", "--suite", suite, fixture.join(index).to_str().unwrap()]);
    }
    net.ingest(&["archive", "--suite", "fixture", fixture.join("pool/Sources").to_str().unwrap()]);

    let work = tempfile::tempdir().unwrap();
    let a = Node::start(&net.server, &net.token("alice", "a1"), "a1", &work.path().join("a1"), &[]);
    let b = Node::start(&net.server, &net.token("bob", "b1"), "b1", &work.path().join("b1"), &[]);
    a.wait_for("registered", Duration::from_secs(60));
    b.wait_for("registered", Duration::from_secs(60));
    // The node made its ed25519 key on first start and registered its public half.
    let key = std::fs::read_to_string(work.path().join("a1/node-key.pem")).unwrap();
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let nodes = net.server.json(&["node", "list", "--admin-token-file", &net.admin, "--json"], 0);
    let listed = nodes.as_array().unwrap().iter().find(|n| n["name"] == "a1").cloned().unwrap();
    assert!(listed["public_key"].as_str().unwrap_or("").starts_with("ssh-ed25519 "), "{listed}");

    let sources = ["libstat", "libvuln", "unrepro", "app-a", "hello"];
    for s in sources {
        assert_eq!(net.request(s)["queued"].as_u64(), Some(1), "{s}");
    }
    let all = net.settle(&sources, Duration::from_secs(1500), &[&a, &b]);
    let job = |s: &str| all.iter().find(|(n, _)| n == s).map(|(_, j)| j[0].clone()).unwrap();
    let context = |s: &str| {
        format!("{backend} {s}: {}\n--- a1\n{}\n--- b1\n{}", serde_json::to_string_pretty(&job(s)).unwrap(), a.log_text(), b.log_text())
    };

    // Reproducible, by both operators, every produced .deb hashed as the original build did.
    for s in ["libstat", "libvuln", "hello"] {
        let j = job(s);
        assert_eq!(j["state"], "verified", "{}", context(s));
        assert_eq!(outcomes(&j), ["reproducible", "reproducible"], "{}", context(s));
        let ops: std::collections::BTreeSet<&str> = attempts(&j).iter().map(|a| a["operator"].as_str().unwrap()).collect();
        assert_eq!(ops.len(), 2, "two independent operators: {}", context(s));
        for a in attempts(&j) {
            assert!(a["artifacts"].as_array().unwrap().iter().any(|f| f["name"].as_str().unwrap().ends_with(".deb")), "{}", context(s));
            assert!(a["log_sha256"].is_string(), "log kept: {}", context(s));
            assert!(a["buildinfo_sha256"].is_string(), "produced buildinfo kept: {}", context(s));
        }
    }
    // Every result came with a signed attestation, checked by the coordinator and kept as
    // signed; the stock in-toto verifier accepts libstat's two at threshold 2 against the
    // archive's .deb, and refuses a .deb with other bytes.
    check_attestations_with_in_toto(&net, &job("libstat"), &fixture, &context("libstat"));
    // The same, through the coordinator: `debcover attestations --export`, checked offline by
    // `debcover verify` and by the stock in-toto-verify against the coordinator-signed layout.
    check_export(&net, &job("libstat"), &fixture, &context("libstat"));

    // The produced buildinfo was ingested as a build of its own: hello has two more builds.
    let builds = net.server.json(&["build", "show", "hello", "--json"], 0);
    assert!(builds.as_array().map(|b| b.len()).unwrap_or(0) >= 3, "hello builds: {builds}");

    // Unreproducible: both attempts name the .deb whose stamp differs; parked after two.
    let j = job("unrepro");
    assert_eq!(outcomes(&j), ["unreproducible", "unreproducible"], "{}", context("unrepro"));
    assert_eq!(j["state"], "parked", "{}", context("unrepro"));
    for a in attempts(&j) {
        let diff: Vec<&str> = a["differences"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
        assert_eq!(diff.len(), 1, "{}", context("unrepro"));
        assert!(diff[0].starts_with("unrepro_1.0-1_") && diff[0].ends_with(".deb"), "{}", context("unrepro"));
        // diffoscope (installed by the setup script) compared it with the archive's copy.
        if debcover_tests::which("diffoscope").is_some() {
            assert!(a["diffoscope_sha256"].is_string(), "a diffoscope report: {}", context("unrepro"));
        }
    }

    // Environment mismatch: app-a was built with libvuln-dev 1.0-1, which is not installed
    // here; nothing is built, nothing is judged, and the job is parked after its budget. One
    // operator's failures count once (fair budgets): a node that fails again while the other
    // operator's node is busy adds attempts that are not charged, so their number depends on
    // timing; the job parks once both operators have failed it.
    let j = job("app-a");
    let got = outcomes(&j);
    assert!(got.len() >= 2 && got.iter().all(|o| o == "environment-mismatch"), "{}", context("app-a"));
    let operators: std::collections::BTreeSet<&str> = attempts(&j).iter().filter_map(|a| a["operator"].as_str()).collect();
    assert_eq!(operators.into_iter().collect::<Vec<_>>(), ["alice", "bob"], "{}", context("app-a"));
    assert_eq!(j["state"], "parked", "{}", context("app-a"));
    for a in attempts(&j) {
        let diff: Vec<&str> = a["differences"].as_array().unwrap().iter().map(|d| d.as_str().unwrap()).collect();
        assert!(diff.contains(&"libvuln-dev (= 1.0-1): not installed"), "{}", context("app-a"));
        assert!(a["artifacts"].as_array().unwrap().is_empty(), "{}", context("app-a"));
    }

    // The nodes clean up after themselves, and stop cleanly on SIGTERM.
    let mut a = a;
    let mut b = b;
    assert_eq!(a.terminate(), Some(0), "{}", a.log_text());
    assert_eq!(b.terminate(), Some(0), "{}", b.log_text());
    for n in ["a1", "b1"] {
        let left: Vec<_> = std::fs::read_dir(work.path().join(n).join("jobs")).unwrap().collect();
        assert!(left.is_empty(), "job directories left in {n}: {left:?}");
    }
}

/// Fetch a job's stored attestations (the web views' `/cas/attestations/SHA256`) as in-toto
/// links and run `in-toto-verify` on them (through tests/python/intoto_threshold.py) with a
/// threshold of 2.
fn check_attestations_with_in_toto(net: &Net, job: &Value, fixture: &Path, context: &str) {
    let links = tempfile::tempdir().unwrap();
    for a in attempts(job) {
        let sha = a["attestation_sha256"].as_str().unwrap_or_else(|| panic!("no attestation: {context}"));
        let bytes = net.server.web_get(&format!("/cas/attestations/{sha}"));
        use sha2::Digest;
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), sha, "kept byte for byte");
        let link: Value = serde_json::from_slice(&bytes).unwrap();
        let keyid = link["signatures"][0]["keyid"].as_str().unwrap().to_owned();
        std::fs::write(links.path().join(format!("rebuild.{}.link", &keyid[..8])), &bytes).unwrap();
        assert_eq!(link["signed"]["environment"]["debcover_node"], a["node"], "{context}");
    }
    let files = net.server.data_dir.path().join("cas/attestations");
    assert!(!files.exists(), "attestations are stored in the database, not as files: {context}");
    let nodes = net.server.json(&["node", "list", "--admin-token-file", &net.admin, "--json"], 0);
    let keys: Vec<String> = nodes.as_array().unwrap().iter().filter_map(|n| n["public_key"].as_str().map(str::to_owned)).collect();
    let have_in_toto = Command::new("python3").args(["-c", "import in_toto"]).status().map(|s| s.success()).unwrap_or(false);
    if !have_in_toto {
        skip_or_fail("the in-toto Python package is not installed (python3 -m pip install in-toto)");
        return;
    }
    let debs = tempfile::tempdir().unwrap();
    let deb = one(&fixture.join("stage1"), "libstat-dev_", ".deb");
    std::fs::copy(&deb, debs.path().join(deb.file_name().unwrap())).unwrap();
    let verify = |threshold: &str| {
        let mut cmd = Command::new("python3");
        cmd.arg(workspace().join("tests/python/intoto_threshold.py")).arg(links.path()).arg(debs.path()).arg(threshold);
        cmd.args(&keys);
        cmd.output().unwrap()
    };
    let out = verify("2");
    assert!(out.status.success(), "in-toto-verify refused: {}\n{}\n{context}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // Not enough independent links for a threshold of 3.
    let out = verify("3");
    assert!(!out.status.success(), "threshold 3 with two links passed");
    // Other bytes under the same name do not match what was attested.
    std::fs::write(debs.path().join(deb.file_name().unwrap()), b"not the rebuilt package").unwrap();
    let out = verify("2");
    assert!(!out.status.success(), "a tampered .deb passed in-toto-verify");
}

/// `debcover attestations libstat VERSION --export DIR`, then `debcover verify DIR`: passes at
/// threshold 2 (two operators agree with the buildinfo), fails at 3 and with a tampered link;
/// stock `in-toto-verify` accepts the export with the layout the coordinator signed, the
/// coordinator's public key, and the archive's .deb files.
fn check_export(net: &Net, job: &Value, fixture: &Path, context: &str) {
    let version = job["job"]["version"].as_str().or(job["version"].as_str()).unwrap_or_else(|| panic!("no version: {context}"));
    let listed = net.server.json(&["attestations", "libstat", version, "--json"], 0);
    let listed = &listed[0];
    assert_eq!(listed["attestations"].as_array().map(Vec::len), Some(2), "{listed:#}\n{context}");
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let export_s = export.to_str().unwrap();
    let manifest = net.server.json(&["attestations", "libstat", version, "--export", export_s, "--json"], 0);
    assert_eq!(manifest["links"].as_array().map(Vec::len), Some(2), "{manifest:#}");
    assert_eq!(manifest["layout_threshold"], 2, "{manifest:#}");
    let artifacts: Vec<String> = manifest["artifacts"].as_object().unwrap().keys().cloned().collect();
    assert!(!artifacts.is_empty() && artifacts.iter().all(|a| a.ends_with(".deb")), "{manifest:#}");
    // The links are the stored bytes.
    for l in manifest["links"].as_array().unwrap() {
        let bytes = std::fs::read(export.join(l["file"].as_str().unwrap())).unwrap();
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        assert!(attempts(job).iter().any(|a| a["attestation_sha256"] == sha.as_str()), "{sha} not stored: {context}");
    }
    // The trust root, fetched from the coordinator (out of band for the export).
    let pem = net.server.cli(&["keys", "--coordinator-pem"]);
    assert!(pem.status.success(), "{}", debcover_tests::describe(&pem));
    let trusted = dir.path().join("coordinator.pem");
    std::fs::write(&trusted, &pem.stdout).unwrap();
    let trusted = trusted.to_str().unwrap();
    let verify = |dir: &str, k: &str| net.server.cli(&["verify", dir, "--trust-key", trusted, "--threshold", k, "--json"]);
    let out = verify(export_s, "2");
    assert_eq!(out.status.code(), Some(0), "{}\n{context}", debcover_tests::describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["report"]["agreeing_operators"], serde_json::json!(["alice", "bob"]), "{report:#}");
    let out = verify(export_s, "3");
    assert_eq!(out.status.code(), Some(1), "threshold 3 with two operators: {}", debcover_tests::describe(&out));
    let text = net.server.cli(&["verify", export_s, "--trust-key", trusted, "--threshold", "2"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("verified: 2 of 2"), "{}", debcover_tests::describe(&text));

    // Stock in-toto-verify: the coordinator's layout and key, the links, the archive's .debs.
    let coordinator = manifest["keys"].as_array().unwrap().iter().find(|k| k["role"] == "coordinator").unwrap();
    let debs = tempfile::tempdir().unwrap();
    for name in &artifacts {
        let deb = one(&fixture.join("stage1"), name, "");
        std::fs::copy(&deb, debs.path().join(name)).unwrap();
    }
    let in_toto = |debs: &Path| {
        Command::new("in-toto-verify")
            .arg("--layout")
            .arg(export.join("root.layout"))
            .arg("--verification-keys")
            .arg(export.join(coordinator["file"].as_str().unwrap()))
            .arg("--link-dir")
            .arg(&export)
            .current_dir(debs)
            .output()
    };
    match in_toto(debs.path()) {
        Ok(out) => {
            assert!(out.status.success(), "in-toto-verify refused the export: {}\n{context}", debcover_tests::describe(&out));
            std::fs::write(debs.path().join(&artifacts[0]), b"other bytes").unwrap();
            let out = in_toto(debs.path()).unwrap();
            assert!(!out.status.success(), "in-toto-verify passed a tampered .deb");
        }
        Err(e) => skip_or_fail(&format!("in-toto-verify (PyPI in-toto 3.1.0) cannot run: {e}")),
    }

    // A tampered product in one link: its signature no longer holds, one operator is left.
    let tampered = dir.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    for e in std::fs::read_dir(&export).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tampered.join(e.file_name())).unwrap();
    }
    let first = manifest["links"][0]["file"].as_str().unwrap();
    let mut link: Value = serde_json::from_slice(&std::fs::read(tampered.join(first)).unwrap()).unwrap();
    link["signed"]["products"][&artifacts[0]]["sha256"] = Value::String("0".repeat(64));
    std::fs::write(tampered.join(first), serde_json::to_vec_pretty(&link).unwrap()).unwrap();
    let out = verify(tampered.to_str().unwrap(), "2");
    assert_eq!(out.status.code(), Some(1), "a tampered link passed: {}", debcover_tests::describe(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["report"]["links"].as_array().unwrap().iter().any(|l| l["status"] == "invalid"), "{report:#}");
}

#[test]
fn network_rebuilds_real_packages_sqlite() {
    network_rebuilds_real_packages(None);
}

#[test]
fn network_rebuilds_real_packages_postgres() {
    let Some(db) = TestDatabase::create_blocking() else {
        return;
    };
    network_rebuilds_real_packages(Some(db));
}

/// SIGKILL mid-build: the lease expires, the job goes to the other node, which finishes it.
/// A node frozen (SIGSTOP) past its lease comes back to a refusal: its late result is not
/// counted. A coordinator restart while a node builds loses nothing and counts nothing twice.
fn faults(db: Option<TestDatabase>) {
    let Some(fixture) = campaign_fixture() else {
        return;
    };
    let Some(hello) = built_hello() else { return };
    let backend = if db.is_some() { "postgres" } else { "sqlite" };
    // One verifier, so that a single node can finish a job; short leases.
    let net = Net::start(db, &fixture, &[("DEBCOVER_VERIFIERS", "1"), ("DEBCOVER_LEASE_TTL", "6s")]);
    net.ingest(&["buildinfo", one(&hello, "hello_", ".buildinfo").to_str().unwrap()]);
    net.ingest(&["buildinfo", one(&fixture.join("stage1"), "libstat_", ".buildinfo").to_str().unwrap()]);
    net.ingest(&["archive", "--suite", "fixture", fixture.join("pool/Sources").to_str().unwrap()]);
    let work = tempfile::tempdir().unwrap();

    // 1. kill -9 mid-build.
    let mut a = Node::start(&net.server, &net.token("alice", "a1"), "a1", &work.path().join("a1"), &[]);
    a.wait_for("registered", Duration::from_secs(60));
    net.request("hello");
    let t = Instant::now();
    while a.count(&["hello", "running dpkg-buildpackage"]) == 0 {
        assert!(t.elapsed() < Duration::from_secs(300), "a1 never started building hello:\n{}", a.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(mut c) = a.child.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    // The killed node's build does not live on (its watchdog ends the process group): no
    // process is left working in a1's directory.
    let t = Instant::now();
    while !processes_in(&work.path().join("a1")).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(15), "{backend}: processes of the killed node's build live on");
        std::thread::sleep(Duration::from_millis(100));
    }
    let b = Node::start(&net.server, &net.token("bob", "b1"), "b1", &work.path().join("b1"), &[]);
    let all = net.settle(&["hello"], Duration::from_secs(900), &[&a, &b]);
    let j = &all[0].1[0];
    assert_eq!(j["state"], "verified", "{backend}: {j}");
    let got: Vec<(String, String, String)> = attempts(j)
        .iter()
        .map(|a| {
            (
                a["node"].as_str().unwrap().to_owned(),
                a["outcome"].as_str().unwrap_or("running").to_owned(),
                a["failure_code"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("a1".into(), "failed".into(), "node-lost".into()), ("b1".into(), "reproducible".into(), String::new())],
        "{backend}: {j}"
    );
    // The killed node comes back: it clears its stale work directory and serves again.
    a.spawn();
    a.wait_for("removing a job directory left by an earlier run", Duration::from_secs(60));
    a.wait_for("registered", Duration::from_secs(60));
    let mut b = b;
    assert_eq!(b.terminate(), Some(0), "{}", b.log_text());

    // 2. Frozen past the lease: the job is reclaimed and finished by the other node, and the
    // frozen node's late heartbeat or result is refused.
    let mut c = Node::start(&net.server, &net.token("carol", "c1"), "c1", &work.path().join("c1"), &[]);
    c.wait_for("registered", Duration::from_secs(60));
    // Both nodes wait in Claim; whichever takes the job is frozen.
    net.request("libstat");
    let start = Instant::now();
    let holder = loop {
        if a.count(&["libstat", "build started"]) > 0 {
            break &a;
        }
        if c.count(&["libstat", "build started"]) > 0 {
            break &c;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "nobody claimed libstat");
        std::thread::sleep(Duration::from_millis(50));
    };
    holder.signal("STOP");
    let other = if std::ptr::eq(holder, &a) { &c } else { &a };
    let all = net.settle(&["libstat"], Duration::from_secs(600), &[&a, &c]);
    holder.signal("CONT");
    let j = &all[0].1[0];
    assert_eq!(j["state"], "verified", "{backend}: {j}");
    let by: Vec<(&str, &str)> =
        attempts(j).iter().map(|x| (x["node"].as_str().unwrap(), x["outcome"].as_str().unwrap_or("running"))).collect();
    assert_eq!(by, [(holder.name.as_str(), "failed"), (other.name.as_str(), "reproducible")], "{backend}: {j}");
    // Back from the freeze: its next call about the job is refused and nothing more is counted.
    let t = Instant::now();
    while !(holder.log_text().contains("lease lost") || holder.log_text().contains("refused the report")) {
        assert!(t.elapsed() < Duration::from_secs(120), "the frozen node never learnt it lost the lease:\n{}", holder.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = net.history("libstat");
    assert_eq!(attempts(&after[0]).len(), 2, "the late result added nothing: {}", after[0]);

    // 3. Restart the coordinator while a node builds: the node's report arrives after the
    // restart and is counted once.
    let mut net = net;
    net.request("hello");
    let t = Instant::now();
    while a.count(&["hello", "running dpkg-buildpackage"]) + c.count(&["hello", "running dpkg-buildpackage"]) < 2 {
        assert!(t.elapsed() < Duration::from_secs(300), "nobody started the second hello build");
        std::thread::sleep(Duration::from_millis(100));
    }
    net.server.restart();
    let all = net.settle(&["hello"], Duration::from_secs(900), &[&a, &c]);
    let jobs = &all[0].1;
    assert_eq!(jobs.len(), 2, "{backend}: {jobs:?}");
    let second = &jobs[1];
    assert_eq!(second["state"], "verified", "{backend}: {second}");
    assert_eq!(outcomes(second), ["reproducible"], "one attempt, counted once: {second}");
    assert_eq!(second["verified"].as_u64(), Some(1), "{second}");
    assert_eq!(a.terminate(), Some(0), "{}", a.log_text());
    assert_eq!(c.terminate(), Some(0), "{}", c.log_text());
}

#[test]
fn faults_sqlite() {
    faults(None);
}

#[test]
fn faults_postgres() {
    let Some(db) = TestDatabase::create_blocking() else {
        return;
    };
    faults(Some(db));
}

/// The node's own command line: help, the configuration check, its key, and clear errors.
#[test]
fn node_command_line() {
    let work = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(binary("debcover-rebuilder"))
            .args(args)
            .env_remove("DEBCOVER_SERVER")
            .env_remove("DEBCOVER_NODE_TOKEN")
            .output()
            .unwrap()
    };
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in ["--server", "--token-file", "--work-dir", "--slots", "--backends", "--build-timeout", "--log-cap", "--config"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let w = work.path().to_str().unwrap();
    // The key is made once and stays.
    let k1 = run(&["key", "--work-dir", w]);
    let k2 = run(&["key", "--work-dir", w]);
    assert!(k1.status.success(), "{}", String::from_utf8_lossy(&k1.stderr));
    assert_eq!(k1.stdout, k2.stdout);
    assert!(String::from_utf8_lossy(&k1.stdout).starts_with("ssh-ed25519 "));
    let pem = run(&["key", "--pem", "--work-dir", w]);
    assert!(String::from_utf8_lossy(&pem.stdout).starts_with("-----BEGIN PUBLIC KEY-----"));
    // The check names what is missing, as JSON too.
    let out = run(&["check", "--json", "--work-dir", w, "--backends", "local,command"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["token"], "missing");
    let command = v["backends"].as_array().unwrap().iter().find(|b| b["backend"] == "command").unwrap();
    assert_eq!(command["available"], false);
    assert!(command["problem"].as_str().unwrap().contains("command"), "{command}");
    let tok = work.path().join("t");
    std::fs::write(&tok, "dcn_x\n").unwrap();
    let out = run(&["check", "--json", "--work-dir", w, "--token-file", tok.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token"], "set", "{v}");
    // Under root, builds run as nobody, who cannot pass through a private temporary
    // directory: the check says which directory is in the way and how to fix it.
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        let inner = work.path().join("node");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let out = run(&["check", "--json", "--work-dir", inner.to_str().unwrap(), "--token-file", tok.to_str().unwrap()]);
        assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["build_user"], "nobody", "{v}");
        let problem = v["build_user_problem"].as_str().unwrap_or_default();
        assert!(problem.contains("chmod o+x") && problem.contains(w), "{v}");
        let out = run(&["check", "--json", "--work-dir", w, "--token-file", tok.to_str().unwrap(), "--build-user", "self"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["build_user"].is_null() && v["build_user_problem"].is_null(), "{v}");
    }
    // Errors name what is at fault.
    let out = run(&["run", "--work-dir", w]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("debcover node add"), "{err}");
    let cfg = work.path().join("node.toml");
    std::fs::write(&cfg, "server = \"http://127.0.0.1:1\"\nslot = 2\n").unwrap();
    let out = run(&["check", "--config", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("node.toml") && err.contains("slot"), "{err}");
    let out = run(&["check", "--backends", "sbuild"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown backend \"sbuild\""), "{err}");
    let out = run(&["run", "--work-dir", w, "--token-file", tok.to_str().unwrap(), "--build-timeout", "soon"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("build_timeout"), "{err}");
}

/// The command backend: the operator's program (here the example in rebuilder/contrib, a real
/// dpkg-buildpackage build) rebuilds libstat from the fixture's pool.
#[test]
fn command_backend_rebuilds_a_fixture_package() {
    let Some(fixture) = campaign_fixture() else {
        return;
    };
    let net = Net::start(None, &fixture, &[("DEBCOVER_VERIFIERS", "1")]);
    net.ingest(&["buildinfo", one(&fixture.join("stage1"), "libstat_", ".buildinfo").to_str().unwrap()]);
    net.ingest(&["archive", "--suite", "fixture", fixture.join("pool/Sources").to_str().unwrap()]);
    let work = tempfile::tempdir().unwrap();
    let script = workspace().join("rebuilder/contrib/dpkg-buildpackage.sh");
    let mut n = Node::start(
        &net.server,
        &net.token("carol", "c1"),
        "c1",
        &work.path().join("c1"),
        &["--backends", "command", "--command", script.to_str().unwrap()],
    );
    net.request("libstat");
    let all = net.settle(&["libstat"], Duration::from_secs(600), &[&n]);
    let j = &all[0].1[0];
    assert_eq!(outcomes(j), ["reproducible"], "{j}\n{}", n.log_text());
    assert_eq!(j["state"], "verified");
    assert_eq!(n.terminate(), Some(0));
}

/// SIGTERM during a build: the node stops claiming, waits out its grace period, kills the
/// build's process group, hands the job back (no budget charged) and exits 0.
#[test]
fn sigterm_hands_back_a_running_build() {
    let (Some(fixture), Some(hello)) = (campaign_fixture(), built_hello()) else {
        return;
    };
    let net = Net::start(None, &fixture, &[]);
    net.ingest(&["buildinfo", one(&hello, "hello_", ".buildinfo").to_str().unwrap()]);
    let work = tempfile::tempdir().unwrap();
    let mut n = Node::start(&net.server, &net.token("alice", "a1"), "a1", &work.path().join("a1"), &["--shutdown-grace", "1s"]);
    net.request("hello");
    let t = Instant::now();
    while n.count(&["hello", "running dpkg-buildpackage"]) == 0 {
        assert!(t.elapsed() < Duration::from_secs(300), "no build started:\n{}", n.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let t = Instant::now();
    assert_eq!(n.terminate(), Some(0), "{}", n.log_text());
    assert!(t.elapsed() < Duration::from_secs(30), "shutdown took {:?}", t.elapsed());
    assert!(n.log_text().contains("job handed back"), "{}", n.log_text());
    let h = net.history("hello");
    assert_eq!(outcomes(&h[0]), ["handed-back"], "{}", h[0]);
    assert_eq!(h[0]["state"], "queued", "{}", h[0]);
    assert_eq!(h[0]["failures"].as_u64(), Some(0), "{}", h[0]);
    // No build process survives the node.
    let ps = Command::new("pgrep").args(["-f", &format!("{}/a1/jobs", work.path().display())]).output().unwrap();
    assert!(ps.stdout.is_empty(), "left running: {}", String::from_utf8_lossy(&ps.stdout));
}

/// The debrebuild backend runs the real `debrebuild` (devscripts) on a real buildinfo. This
/// machine cannot reach snapshot.debian.org or metasnap.debian.net, so debrebuild cannot
/// recreate the environment: the node must report that as `dependencies-unavailable` (not as
/// a verdict, not as a build failure). Where the snapshot services are reachable the build runs
/// and the verdict is checked instead.
#[test]
fn debrebuild_backend_runs_the_real_tool() {
    if debcover_tests::which("debrebuild").is_none() {
        skip_or_fail("debrebuild (devscripts) is not installed");
        return;
    }
    let (Some(fixture), Some(hello)) = (campaign_fixture(), built_hello()) else {
        return;
    };
    let net = Net::start(None, &fixture, &[("DEBCOVER_VERIFIERS", "1"), ("DEBCOVER_MAX_FAILURES", "1")]);
    net.ingest(&["buildinfo", one(&hello, "hello_", ".buildinfo").to_str().unwrap()]);
    let work = tempfile::tempdir().unwrap();
    let mut n = Node::start(
        &net.server,
        &net.token("dora", "d1"),
        "d1",
        &work.path().join("d1"),
        &["--backends", "debrebuild", "--debrebuild-builder", "mmdebstrap"],
    );
    net.request("hello");
    let all = net.settle(&["hello"], Duration::from_secs(1200), &[&n]);
    let j = &all[0].1[0];
    let a = attempts(j)[0];
    assert_eq!(n.count(&["hello", "running debrebuild", "--buildresult", "--builder=mmdebstrap", ".buildinfo"]), 1, "{}", n.log_text());
    match a["outcome"].as_str() {
        Some("failed") => {
            assert_eq!(a["failure_code"], "dependencies-unavailable", "{j}");
            assert!(a["message"].as_str().unwrap().contains("could not recreate the recorded environment"), "{j}");
            assert_eq!(j["state"], "parked", "{j}");
        }
        Some("reproducible") => assert_eq!(j["state"], "verified", "{j}"),
        other => panic!("unexpected outcome {other:?}: {j}\n{}", n.log_text()),
    }
    assert_eq!(n.terminate(), Some(0));
}

/// A network namespace joined to this one by a veth pair: the node side is `10.X.Y.2`, this
/// side `10.X.Y.1`. Removed on drop.
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
}

impl Netns {
    fn create() -> Option<Netns> {
        let id = std::process::id() % 60_000;
        let (a, b) = (1 + id / 250, id % 250);
        let name = format!("dcns{id}");
        let (host_if, ns_if) = (format!("dch{id}"), format!("dcn{id}"));
        let (host_ip, ns_ip) = (format!("10.{}.{b}.1", 100 + a % 100), format!("10.{}.{b}.2", 100 + a % 100));
        let ip = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
        let ok = ip(&["netns", "add", &name])
            && ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if])
            && ip(&["link", "set", &ns_if, "netns", &name])
            && ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_if])
            && ip(&["link", "set", &host_if, "up"])
            && ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{ns_ip}/24"), "dev", &ns_if])
            && ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"])
            && ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        let ns = Netns { name, host_if, host_ip };
        ok.then_some(ns)
    }

    /// Cut (or restore) the link: packets are dropped, connections hang, as in a real partition.
    fn link(&self, up: bool) {
        let st = Command::new("ip").args(["link", "set", &self.host_if, if up { "up" } else { "down" }]).status().unwrap();
        assert!(st.success());
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// A node in its own network namespace is cut off from the coordinator in the middle of a build
/// (veth link down: packets dropped, nothing refused): its lease expires, another operator's
/// node finishes the job, the partitioned node's late calls on its old lease are refused when
/// the link comes back (its result is not counted), and it goes on to take new work by itself.
#[test]
fn a_partitioned_node_is_fenced_and_resumes() {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let Some(ns) = root.then(Netns::create).flatten() else {
        skip_or_fail("network namespaces need root and iproute2 (`ip netns`)");
        return;
    };
    let Some(fixture) = campaign_fixture() else {
        return;
    };
    let net = Net::start_listening(None, &fixture, &[("DEBCOVER_VERIFIERS", "1"), ("DEBCOVER_LEASE_TTL", "6s")], "0.0.0.0:0");
    let port = net.server.url.rsplit(':').next().unwrap().to_owned();
    net.ingest(&["buildinfo", one(&fixture.join("stage1"), "libstat_", ".buildinfo").to_str().unwrap()]);
    net.ingest(&["buildinfo", one(&fixture.join("stage1"), "app-a_", ".buildinfo").to_str().unwrap()]);
    net.ingest(&["archive", "--suite", "fixture", fixture.join("pool/Sources").to_str().unwrap()]);
    let work = tempfile::tempdir().unwrap();
    // The "build": the original package copied after a while (a test of the network, not of
    // building). The node in the namespace takes 12 s; the other one is quick.
    let script = |name: &str, secs: u32| {
        let p = work.path().join(name);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\nsleep {secs}\ncp {}/stage1/libstat-dev_2.0-1_amd64.deb \"$DEBCOVER_OUTPUT_DIR/\"\n",
                fixture.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_string_lossy().into_owned()
    };
    let (slow, quick) = (script("slow.sh", 12), script("quick.sh", 0));
    let server_in_ns = format!("http://{}:{port}", ns.host_ip);
    let a = Node::start_wrapped(
        &net.server,
        &server_in_ns,
        &net.token("alice", "a1"),
        "a1",
        &work.path().join("a1"),
        &["--backends", "command", "--command", &slow],
        &["ip", "netns", "exec", &ns.name],
    );
    a.wait_for("registered", Duration::from_secs(60));
    net.request("libstat");
    a.wait_for("build started", Duration::from_secs(60));
    ns.link(false);
    let cut = Instant::now();
    // bob's node, on this side, finishes the job once a1's lease has expired.
    let mut b = Node::start(&net.server, &net.token("bob", "b1"), "b1", &work.path().join("b1"), &["--backends", "command", "--command", &quick]);
    let all = net.settle(&["libstat"], Duration::from_secs(120), &[&a, &b]);
    let j = &all[0].1[0];
    assert_eq!(j["state"], "verified", "{j}");
    assert_eq!(b.terminate(), Some(0), "{}", b.log_text());
    // The link comes back after a1's build ended: its result is refused, not counted.
    while cut.elapsed() < Duration::from_secs(14) {
        std::thread::sleep(Duration::from_millis(200));
    }
    ns.link(true);
    // Its next call about the old lease (the heartbeat held up by the partition, or the report)
    // is refused by the coordinator: the lease was reassigned.
    a.wait_for("stale fencing token", Duration::from_secs(120));
    let h = net.history("libstat");
    let got: Vec<(String, String)> = attempts(&h[0])
        .iter()
        .map(|x| (x["node"].as_str().unwrap_or("").to_owned(), x["outcome"].as_str().unwrap_or("running").to_owned()))
        .collect();
    assert_eq!(got, [("a1".to_owned(), "failed".to_owned()), ("b1".to_owned(), "reproducible".to_owned())], "{h:#?}\n{}", a.log_text());
    assert_eq!(h[0]["verified"], 1, "{h:#?}");
    // a1 goes on by itself: the next job is its.
    net.request("app-a");
    let t = Instant::now();
    loop {
        let h = net.history("app-a");
        if h.first().is_some_and(|j| attempts(j).iter().any(|x| x["node"] == "a1")) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "a1 did not take new work after the partition:\n{}", a.log_text());
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Processes working in `dir` (their current directory is under it), with their command lines.
fn processes_in(dir: &Path) -> Vec<String> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|c| c.is_ascii_digit()))
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir)))
        .map(|e| std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default().replace('\0', " "))
        .filter(|cmd| !cmd.is_empty())
        .collect()
}

/// A node killed with SIGKILL takes its build with it, even a build that writes nothing (and
/// so is never stopped by a broken output pipe): no process is left working in its directory.
/// Before the watchdog, the silent build below ran on for its 300 s.
#[test]
fn a_killed_node_takes_its_build_with_it() {
    let Some(fixture) = campaign_fixture() else {
        return;
    };
    let net = Net::start(None, &fixture, &[("DEBCOVER_VERIFIERS", "1")]);
    net.ingest(&["buildinfo", one(&fixture.join("stage1"), "libstat_", ".buildinfo").to_str().unwrap()]);
    net.ingest(&["archive", "--suite", "fixture", fixture.join("pool/Sources").to_str().unwrap()]);
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("silent.sh");
    std::fs::write(&script, "#!/bin/sh\nsleep 300 &\nwait\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let dir = work.path().join("c1");
    let mut n = Node::start(&net.server, &net.token("carol", "c1"), "c1", &dir, &["--backends", "command", "--command", script.to_str().unwrap()]);
    n.wait_for("registered", Duration::from_secs(60));
    net.request("libstat");
    n.wait_for("build started", Duration::from_secs(60));
    let t = Instant::now();
    while processes_in(&dir).iter().all(|p| !p.contains("sleep 300")) {
        assert!(t.elapsed() < Duration::from_secs(30), "the build never started: {}", n.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(mut c) = n.child.take() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let t = Instant::now();
    loop {
        let left = processes_in(&dir);
        if left.is_empty() {
            break;
        }
        if t.elapsed() > Duration::from_secs(15) {
            // Do not leave them behind for the rest of the suite.
            let _ = Command::new("pkill").args(["-KILL", "-f", "sleep 300"]).status();
            panic!("processes of the killed node's build live on: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

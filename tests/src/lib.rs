//! Harness for debcover's end-to-end tests: start a real coordinator process on a real
//! database, run the real `debcover` client against it, and provide fresh PostgreSQL databases.
//!

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use debcover_store::testing as pg;

/// A real .deb named `NAME_*.deb` from tests/fixtures/download-debs.sh (cached under
/// target/debcover-fixtures/debs). Missing: the test fails in CI and is skipped elsewhere.
pub fn fixture_deb(name: &str) -> Option<PathBuf> {
    let dir = workspace().join("target/debcover-fixtures/debs");
    let prefix = format!("{name}_");
    let found = std::fs::read_dir(&dir).ok().and_then(|d| {
        d.filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&prefix)))
    });
    if found.is_none() {
        let why = format!("{name}_*.deb not in {} (run tests/fixtures/download-debs.sh)", dir.display());
        assert!(!in_ci(), "{why}");
        eprintln!("SKIPPING: {why}");
    }
    found
}

/// Sends `authorization: Bearer TOKEN` on every call of a gRPC test client (a node's
/// credential or the admin token).
#[derive(Clone)]
pub struct BearerAuth(pub String);

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let value = format!("Bearer {}", self.0)
            .parse()
            .map_err(|_| tonic::Status::invalid_argument("the token is not a valid header value"))?;
        req.metadata_mut().insert("authorization", value);
        Ok(req)
    }
}

/// How long one client call may take in a test before it is killed and the test fails.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(300);

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/testdata` beside the project.
pub fn testdata() -> PathBuf {
    workspace().join("../shared/testdata")
}

/// Path of a workspace binary, next to the running test executable's `deps/` directory.
/// Cargo builds a package's binaries before running its integration tests, which is why the
/// end-to-end tests are test targets of `debcover-cli` and `debcover-rebuilder`.
/// `DEBCOVER_TEST_BIN_DIR=DIR` runs the tests against the binaries in DIR instead (another
/// build, e.g. an older release, to show which tests it fails).
pub fn binary(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("DEBCOVER_TEST_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        assert!(path.exists(), "{} does not exist (DEBCOVER_TEST_BIN_DIR)", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/e2e-HASH -> target/<profile>/NAME
    let path = exe.parent().and_then(Path::parent).expect("target/<profile>").join(name);
    assert!(path.exists(), "{} not built: run the tests with `cargo test --workspace`", path.display());
    path
}

/// A running coordinator process.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Its data directory (SQLite file lives here by default).
    pub data_dir: tempfile::TempDir,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    db: Option<String>,
    env: Vec<(String, String)>,
}

impl Server {
    /// Start `debcover serve` on a free port with `db` (None: the zero-configuration default).
    pub fn start(db: Option<&str>) -> Server {
        Self::start_with(db, &[])
    }

    /// Start with extra environment variables.
    pub fn start_with(db: Option<&str>, env: &[(&str, &str)]) -> Server {
        Self::start_listening(db, env, "127.0.0.1:0")
    }

    /// Start with gRPC on `listen` (e.g. `0.0.0.0:0`, for nodes in another network namespace).
    pub fn start_listening(db: Option<&str>, env: &[(&str, &str)], listen: &str) -> Server {
        let data_dir = tempfile::tempdir().expect("tempdir");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (child, addr) = Self::spawn(data_dir.path(), db, &env, listen, &log);
        Server { child: Some(child), url: format!("http://{addr}"), data_dir, log, db: db.map(str::to_owned), env }
    }

    /// Stop the coordinator (SIGTERM, as an operator would) and start it again on the same
    /// address, data directory and database: clients and nodes keep their URL.
    pub fn restart(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child);
        }
        let addr = self.url.trim_start_matches("http://").to_owned();
        let (child, _) = Self::spawn(self.data_dir.path(), self.db.as_deref(), &self.env, &addr, &self.log);
        self.child = Some(child);
    }

    /// Kill the coordinator with SIGKILL, as a power cut or the OOM killer would (no chance to
    /// finish anything), and start it again on the same address, data directory and database.
    pub fn crash_and_restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let addr = self.url.trim_start_matches("http://").to_owned();
        let (child, _) = Self::spawn(self.data_dir.path(), self.db.as_deref(), &self.env, &addr, &self.log);
        self.child = Some(child);
    }

    /// The environment the coordinator is (re)started with.
    pub fn env_mut(&mut self) -> &mut Vec<(String, String)> {
        &mut self.env
    }

    /// The coordinator's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The coordinator's peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn spawn(
        data_dir: &Path,
        db: Option<&str>,
        env: &[(String, String)],
        listen: &str,
        log: &std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) -> (Child, String) {
        let mut cmd = Command::new(binary("debcover"));
        cmd.args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env_remove("DEBCOVER_DB")
            .env("DEBCOVER_LOG", "info")
            // The web views on a free port too (see Server::web_url), so servers run in parallel.
            .env("DEBCOVER_HTTP_LISTEN", "127.0.0.1:0")
            .env("HOME", data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(db) = db {
            cmd.args(["--db", db]);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn debcover serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr = line.split("addr=").nth(1).map(|rest| rest.split_whitespace().next().unwrap_or_default().to_owned());
                // Logged before the address is announced: a test that reads the log right after
                // start must find the line that announced it.
                sink.lock().unwrap().push(line);
                if let Some(addr) = addr {
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("coordinator did not start: {:?}", log.lock().unwrap()));
        (child, addr)
    }

    /// The file `debcover serve` wrote its admin token to.
    pub fn admin_token_file(&self) -> PathBuf {
        self.data_dir.path().join("admin.token")
    }

    /// Run the `debcover` client against this server, as its admin (the admin token file is
    /// named by `DEBCOVER_ADMIN_TOKEN_FILE`). A call that has not finished after [`CLI_TIMEOUT`]
    /// is killed and fails the test (a hung server must not hang the suite).
    pub fn cli(&self, args: &[&str]) -> Output {
        let admin = self.admin_token_file();
        self.cli_env(args, &[("DEBCOVER_ADMIN_TOKEN_FILE", admin.to_str())])
    }

    /// Run the client with no credential at all (no admin token, no API token).
    pub fn cli_anonymous(&self, args: &[&str]) -> Output {
        self.cli_env(args, &[])
    }

    /// Run the client with this environment on top of the server's URL (None: removed). No
    /// credential is inherited: the admin token file is looked for under HOME (the server's data
    /// directory is elsewhere), and DEBCOVER_TOKEN* are removed unless given.
    pub fn cli_env(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
        let mut cmd = Command::new(binary("debcover"));
        cmd.args(args)
            .env("DEBCOVER_SERVER", &self.url)
            .env("DEBCOVER_LOG", "warn")
            .env("HOME", self.data_dir.path().join("client-home"))
            .env_remove("DEBCOVER_ADMIN_TOKEN_FILE")
            .env_remove("DEBCOVER_ADMIN_TOKEN")
            .env_remove("DEBCOVER_TOKEN")
            .env_remove("DEBCOVER_TOKEN_FILE")
            .env_remove("DEBCOVER_DATA_DIR");
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run debcover");
        let drain = |mut r: Box<dyn std::io::Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                buf
            })
        };
        let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
        let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
        let deadline = std::time::Instant::now() + CLI_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for debcover") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("debcover {args:?} did not finish within {CLI_TIMEOUT:?}; server log:\n{}", self.log().join("\n"));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
    }

    /// Run the client, require exit code `code`, and parse stdout as JSON.
    pub fn json(&self, args: &[&str], code: i32) -> serde_json::Value {
        let out = self.cli(args);
        assert_eq!(out.status.code(), Some(code), "debcover {args:?}: {}", describe(&out));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("debcover {args:?}: not JSON ({e}): {}", describe(&out)))
    }

    /// `http://HOST:PORT` of the web views (pages, `/api`, `/metrics`), as the server logged it
    /// (`web=HOST:PORT`, logged before the gRPC address is announced).
    pub fn web_url(&self) -> String {
        let log = self.log();
        let addr = log
            .iter()
            .find_map(|l| l.split(" web=").nth(1).map(|r| r.split_whitespace().next().unwrap_or_default().to_owned()))
            .unwrap_or_else(|| panic!("the server did not log its web address: {log:?}"));
        format!("http://{addr}")
    }

    /// The body of `GET path` on the web views (status 200 required), over a plain HTTP/1.0
    /// connection (so the answer is not chunked).
    pub fn web_get(&self, path: &str) -> Vec<u8> {
        use std::io::{Read, Write};
        let base = self.web_url();
        let addr = base.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to the web views");
        stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read the answer");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
        let head = String::from_utf8_lossy(&raw[..split]);
        assert!(head.lines().next().is_some_and(|l| l.contains(" 200")), "GET {path}: {head}");
        assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
        raw.split_off(split + 4)
    }

    /// The server's log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Send SIGTERM and wait for a clean exit; returns the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        stop(self.child.take()?)
    }
}

/// SIGTERM, then wait up to 30 s for the exit code (SIGKILL after that).
fn stop(mut child: Child) -> Option<i32> {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// stdout and stderr of a finished command, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The path of `tool` on PATH, if it is there.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(tool)).find(|p| p.is_file())
}

/// Is this a CI run (where nothing may be skipped)?
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// `(name, version)` of every `name[:arch] (= version)` line under Installed-Build-Depends (or
/// the pre-release Build-Environment) of a buildinfo's text, found by a plain line scan. Tests
/// use it as an expectation independent of the parser under test. Dash-escaped lines of
/// clearsigned files are unescaped.
pub fn scan_ibd(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.strip_prefix("- ").unwrap_or(line);
        if line.starts_with("Installed-Build-Depends:") || line.starts_with("Build-Environment:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with(' ') {
                inside = false;
                continue;
            }
            if let Some((name, rest)) = line.trim().trim_end_matches(',').split_once(" (= ") {
                let name = name.split(':').next().unwrap_or(name).to_owned();
                out.push((name, rest.trim_end_matches(')').to_owned()));
            }
        }
    }
    out
}


/// Split a Packages file into paragraphs of `(field, value)` with continuation lines joined.
pub fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in para.lines() {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(last) = fields.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
            } else if let Some((k, v)) = line.split_once(':') {
                fields.push((k.to_owned(), v.trim().to_owned()));
            }
        }
        if !fields.is_empty() {
            out.push(fields);
        }
    }
    out
}

/// `(name, size, sha256)` of every file the Checksums-Sha256 field of a buildinfo lists, by a
/// plain line scan (independent of the parsers under test; a clearsigned text's dash-escaped
/// lines are read as they are meant).
pub fn checksums(text: &str) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.strip_prefix("- ").unwrap_or(line);
        if line.starts_with("Checksums-Sha256:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with(' ') {
                break;
            }
            let mut f = line.split_whitespace();
            if let (Some(sha), Some(size), Some(name)) = (f.next(), f.next(), f.next()) {
                out.push((name.to_owned(), size.parse().unwrap_or(0), sha.to_owned()));
            }
        }
    }
    out
}

/// [`checksums`] of a buildinfo's bytes as the artifacts a node reports.
pub fn artifacts(buildinfo: &[u8]) -> Vec<debcover_proto::v1::Artifact> {
    checksums(&String::from_utf8_lossy(buildinfo))
        .into_iter()
        .map(|(name, size, sha256)| debcover_proto::v1::Artifact { name, size, sha256 })
        .collect()
}

/// Is `a` lower than `b`, by `dpkg --compare-versions` (an implementation independent of ours).
pub fn dpkg_lt(a: &str, b: &str) -> bool {
    Command::new("dpkg").args(["--compare-versions", a, "lt", b]).status().expect("dpkg").success()
}

/// `(source, arch)` of arch-any binaries whose Built-Using family names `library` below
/// `fixed`, by a plain scan of the file.
pub fn embedding_scan(text: &str, library: &str, fixed: &str) -> std::collections::BTreeSet<(String, String)> {
    let mut want = std::collections::BTreeSet::new();
    for p in paragraphs(text) {
        let get = |k: &str| p.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        let arch = get("Architecture").unwrap_or_default();
        if arch == "all" {
            continue;
        }
        let source = get("Source")
            .map(|s| s.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| get("Package").unwrap_or_default());
        for field in ["Built-Using", "Static-Built-Using", "X-Cargo-Built-Using"] {
            let Some(v) = get(field) else { continue };
            for rel in v.split(',') {
                let rel = rel.trim();
                let Some(rest) = rel.strip_prefix(library).and_then(|r| r.trim_start().strip_prefix("(=")) else {
                    continue;
                };
                let version = rest.trim_end_matches(')').trim();
                if dpkg_lt(version, fixed) {
                    want.insert((source.clone(), arch.clone()));
                }
            }
        }
    }
    want
}

#[cfg(test)]
mod tidy {
    //! Rules that keep the documentation true to the code.

    /// Every workspace member and every public module of the coordinator's crates appears in
    /// ARCHITECTURE.md's map.
    #[test]
    fn architecture_map_names_every_crate_and_module() {
        let root = super::workspace();
        let arch = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
        for member in members() {
            assert!(arch.contains(&format!("`{member}/`")), "ARCHITECTURE.md does not map `{member}/`");
        }
        for krate in ["core", "store", "wire", "server", "cli"] {
            let lib = std::fs::read_to_string(root.join(krate).join("src/lib.rs")).expect("lib.rs");
            for module in lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';')) {
                assert!(
                    arch.contains(&format!("`{module}.rs`")) || arch.contains(&format!("`{module}/`")),
                    "ARCHITECTURE.md does not map module `{module}` of `{krate}/`"
                );
            }
        }
        assert!(arch.lines().count() <= 200, "ARCHITECTURE.md is a map a newcomer reads in ten minutes: at most 200 lines");
    }

    /// The workspace members, from the root Cargo.toml.
    fn members() -> Vec<String> {
        let manifest = std::fs::read_to_string(super::workspace().join("Cargo.toml")).expect("Cargo.toml");
        let line = manifest.lines().find(|l| l.starts_with("members")).expect("members line").to_owned();
        line.split('"').skip(1).step_by(2).map(str::to_owned).collect()
    }

    /// The direct dependencies of a workspace crate (normal, not dev or build), by name.
    fn dependencies(krate: &str) -> Vec<String> {
        let manifest = std::fs::read_to_string(super::workspace().join(krate).join("Cargo.toml")).expect("Cargo.toml");
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_deps = line == "[dependencies]";
                continue;
            }
            if in_deps && let Some((name, _)) = line.split_once(['=', '.']) {
                if !name.trim().is_empty() && !name.starts_with('#') {
                    deps.push(name.trim().to_owned());
                }
            }
        }
        deps
    }

    /// The crate graph of ARCHITECTURE.md, as the manifests must keep it: what each crate must
    /// not depend on.
    #[test]
    fn crates_depend_only_on_what_they_may_know() {
        let forbidden: &[(&str, &[&str])] = &[
            ("formats", &["sqlx", "tonic", "prost", "axum", "tokio", "debcover-core"]),
            ("core", &["sqlx", "tonic", "prost", "axum", "maud", "debcover-proto", "debcover-store", "debcover-wire"]),
            ("store", &["tonic", "prost", "axum", "debcover-proto", "debcover-wire", "debcover-server"]),
            ("wire", &["sqlx", "axum", "maud", "debcover-store", "debcover-server"]),
            ("server", &["sqlx", "debcover-store", "debcover-cli", "clap"]),
            ("cli", &["sqlx", "axum", "maud"]),
            ("rebuilder", &["sqlx", "axum", "debcover-store", "debcover-server"]),
        ];
        let members = members();
        for (krate, never) in forbidden {
            assert!(members.iter().any(|m| m == krate), "{krate} is not a workspace member");
            let deps = dependencies(krate);
            for d in *never {
                assert!(!deps.iter().any(|x| x == d), "{krate}/Cargo.toml depends on {d}, which ARCHITECTURE.md forbids");
            }
        }
        for m in &members {
            if m != "store" {
                assert!(!dependencies(m).iter().any(|d| d == "sqlx"), "only store/ may depend on sqlx, not {m}/");
            }
        }
        // The client links the server and a storage backend only for `debcover serve`: a
        // `--no-default-features` build is the client alone.
        let cli = std::fs::read_to_string(super::workspace().join("cli/Cargo.toml")).expect("cli/Cargo.toml");
        for d in ["debcover-server", "debcover-store"] {
            let line = cli.lines().find(|l| l.starts_with(d)).unwrap_or_else(|| panic!("cli/Cargo.toml has no {d} line"));
            assert!(line.contains("optional = true"), "cli/ must depend on {d} only under the `serve` feature: {line}");
        }
    }
}

/// The proof of possession a test node sends with its registration: the time and the node
/// key's signature over the `debcover-register-v1` statement for credential `token`.
pub fn registration_proof(token: &str, key: &ed25519_dalek::SigningKey) -> (i64, Vec<u8>) {
    use ed25519_dalek::Signer;
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let statement = debcover_formats::intoto::registration_statement(
        &debcover_formats::sha256_hex(token.as_bytes()),
        &hex::encode(key.verifying_key().to_bytes()),
        time,
    );
    (time, key.sign(&statement).to_bytes().to_vec())
}

/// The in-toto link a node signs for `job`'s lease: step `rebuild`, products = `artifacts`,
/// the lease in its environment, signed by each of `keys` in order (one, as the coordinator
/// requires; more to test that it refuses them).
pub fn rebuild_link(
    job: &debcover_proto::v1::Job,
    artifacts: &[debcover_proto::v1::Artifact],
    keys: &[&ed25519_dalek::SigningKey],
) -> Vec<u8> {
    use debcover_formats::intoto;
    use ed25519_dalek::Signer;
    let products: serde_json::Map<String, serde_json::Value> =
        artifacts.iter().map(|a| (a.name.clone(), serde_json::json!({"sha256": a.sha256}))).collect();
    let signed = serde_json::json!({"_type": "link", "name": "rebuild", "materials": {}, "byproducts": {}, "command": [],
        "products": products,
        "environment": {"debcover_job": job.job_id.to_string(), "debcover_fence": job.fence.to_string(),
            "debcover_build_id": job.build_id}});
    let sigs: Vec<serde_json::Value> = keys
        .iter()
        .map(|k| {
            let id = intoto::keyid(&hex::encode(k.verifying_key().as_bytes()));
            serde_json::json!({"keyid": id, "sig": hex::encode(k.sign(&intoto::canonical(&signed)).to_bytes())})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"signatures": sigs, "signed": signed})).expect("JSON")
}

/// The chunks of a `built` report on `job`'s lease: header, artifacts and the attestation (none
/// when empty).
pub fn built_report(
    job: &debcover_proto::v1::Job,
    artifacts: Vec<debcover_proto::v1::Artifact>,
    attestation: Vec<u8>,
) -> Vec<debcover_proto::v1::ReportChunk> {
    use debcover_proto::v1 as pb;
    use pb::report_chunk::Chunk;
    let header = pb::ReportHeader { job_id: job.job_id, fence: job.fence, result: "built".into(), ..Default::default() };
    let mut v = vec![pb::ReportChunk { chunk: Some(Chunk::Header(header)) }];
    v.extend(artifacts.into_iter().map(|a| pb::ReportChunk { chunk: Some(Chunk::Artifact(a)) }));
    if !attestation.is_empty() {
        v.push(pb::ReportChunk { chunk: Some(Chunk::Attestation(attestation)) });
    }
    v
}

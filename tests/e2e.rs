//! End to end, as users run it: a real `debcover serve` process on SQLite and on PostgreSQL,
//! driven by the real `debcover` client over gRPC, fed with the real files in
//! ../shared/testdata and malformed variants derived from them.

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;

use debcover_tests::{Server, describe, pg::TestDatabase, scan_ibd, testdata};
use serde_json::Value;

/// Run `scenario` on a SQLite-backed and on a PostgreSQL-backed coordinator.
fn on_both_backends(scenario: impl Fn(&Server)) {
    let sqlite = Server::start(None);
    scenario(&sqlite);
    assert_eq!(sqlite.terminate(), Some(0), "SQLite coordinator did not stop cleanly");
    if let Some(db) = TestDatabase::create_blocking() {
        let pg = Server::start(Some(&db.url));
        scenario(&pg);
        assert_eq!(pg.terminate(), Some(0), "PostgreSQL coordinator did not stop cleanly");
    }
}

fn buildinfo_dir() -> std::path::PathBuf {
    testdata().join("buildinfo")
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}


fn real_files() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(buildinfo_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

fn count(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn ingest_query_and_serve_back() {
    on_both_backends(|s| {
        let dir = buildinfo_dir();
        let dir = dir.to_str().unwrap();
        let status = s.json(&["status", "--json"], 0);
        assert_eq!(count(&status, "builds"), 0);

        let n = real_files().len() as u64;
        let first = s.json(&["ingest", "buildinfo", "--json", dir], 0);
        assert_eq!((count(&first, "ingested"), count(&first, "already_known")), (n, 0), "{first}");
        assert_eq!(first["rejected"], Value::Array(vec![]));
        let again = s.json(&["ingest", "buildinfo", "--json", dir], 0);
        assert_eq!((count(&again, "ingested"), count(&again, "already_known")), (0, n));

        // Served back byte for byte.
        for (name, bytes) in real_files() {
            let out = s.cli(&["build", "get", &sha256_hex(&bytes)]);
            assert!(out.status.success(), "{}", describe(&out));
            assert!(out.stdout == bytes, "{name} differs when served back");
        }

        // built-with against an independent scan, in Debian version order.
        for (pkg, before) in [("libc6", "2.31-13"), ("dpkg", "1.20"), ("bash", "5.1-2+b10")] {
            let got = s.json(&["built-with", pkg, "--before", before, "--json"], 0);
            let ids: BTreeSet<String> = got["builds"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["build"]["id"].as_str().unwrap().to_owned())
                .collect();
            let bound = debversion::Version::from_str(before).unwrap();
            let expected: BTreeSet<String> = real_files()
                .iter()
                .filter(|(_, b)| {
                    scan_ibd(&String::from_utf8_lossy(b))
                        .iter()
                        .any(|(n, v)| n == pkg && debversion::Version::from_str(v).unwrap() < bound)
                })
                .map(|(_, b)| sha256_hex(b))
                .collect();
            assert_eq!(ids, expected, "built-with {pkg} --before {before}");
        }

        // build show: the binNMU has an arch-any and an arch-all half; figures match the files.
        let shown = s.json(&["build", "show", "bash", "5.1-2+b3", "--json"], 0);
        let shown = shown.as_array().unwrap();
        assert_eq!(shown.len(), 2);
        for b in shown {
            let arch = b["build"]["host_architecture"].as_str().unwrap();
            let file = buildinfo_dir().join(format!("package-rebuilder__bash_5.1-2+b3_{arch}.buildinfo"));
            let text = std::fs::read_to_string(file).unwrap();
            assert_eq!(b["installed_build_depends"].as_array().unwrap().len(), scan_ibd(&text).len());
            assert_eq!(b["build"]["source_version"], "5.1-2");
            assert!(b["binary_only_changes"].as_str().unwrap().contains("binary-only=yes"));
        }

        // Archive indices: real bookworm excerpts; kinds from the file names.
        let pk = testdata().join("packages/bookworm_amd64_Packages.Built-Using-golang");
        let src = testdata().join("packages/bookworm_Sources.go-and-rust-subset");
        let r = s.json(
            &["ingest", "archive", "--suite", "bookworm", "--json", pk.to_str().unwrap(), src.to_str().unwrap()],
            0,
        );
        assert_eq!(count(&r[0], "entries"), 321);
        assert_eq!(r[0]["architecture"], "amd64");
        assert_eq!(count(&r[0], "added"), 321);
        assert_eq!(count(&r[1], "entries"), 389);
        let status = s.json(&["status", "--json"], 0);
        assert_eq!(count(&status, "binaries"), 321);
        assert_eq!(status["suites"], serde_json::json!(["bookworm"]));

        // A malformed index (one SHA256 corrupted) is rejected whole, naming file, field, line.
        let text = std::fs::read_to_string(&pk).unwrap();
        let (line_no, line) = text.lines().enumerate().filter(|(_, l)| l.starts_with("SHA256: ")).nth(100).unwrap();
        let bad = text.replacen(line, "SHA256: not-a-hash", 1);
        let tmp = tempfile::tempdir().unwrap();
        let bad_path = tmp.path().join("Packages");
        std::fs::write(&bad_path, bad).unwrap();
        // Every other entry dropped but the corrupted one: if it were applied, 320 would leave.
        let out = s.cli(&["ingest", "archive", "--suite", "bookworm", bad_path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{}:{}:", bad_path.display(), line_no + 1)), "{err}");
        assert!(err.contains("SHA256"), "{err}");
        let again = s.json(&["ingest", "archive", "--suite", "bookworm", "--json", pk.to_str().unwrap()], 0);
        assert_eq!((count(&again[0], "added"), count(&again[0], "removed")), (0, 0), "nothing partial was applied");
    });
}

/// Malformed variants of real files, each paired with what its rejection must mention.
fn malformed_variants(dir: &Path) -> Vec<(String, Vec<&'static str>)> {
    let read = |n: &str| std::fs::read_to_string(buildinfo_dir().join(n)).unwrap();
    let mut out = Vec::new();
    let mut put = |name: &str, bytes: Vec<u8>, must: Vec<&'static str>| {
        std::fs::write(dir.join(name), bytes).unwrap();
        out.push((name.to_owned(), must));
    };
    // Armour cut off in the middle of the signature.
    let signed = read("debrebuild__0xffff_0.8-1+b1_amd64.buildinfo");
    let cut = signed.find("-----BEGIN PGP SIGNATURE-----").unwrap() + 40;
    put("truncated-armour.buildinfo", signed.as_bytes()[..cut].to_vec(), vec!["truncated-armour.buildinfo"]);
    // One Installed-Build-Depends entry with an unclosed relation, at a known line.
    let plain = read("devscripts__sphinx_1.7.2-1_amd64.buildinfo");
    let (idx, line) = plain.lines().enumerate().find(|(_, l)| l.starts_with(" debhelper (= ")).unwrap();
    let broken = plain.replacen(line, &line.replace(')', ""), 1);
    let want_line: &'static str = Box::leak(format!("bad-relation.buildinfo:{}:", idx + 1).into_boxed_str());
    put("bad-relation.buildinfo", broken.into_bytes(), vec![want_line, "Installed-Build-Depends"]);
    // Required field removed.
    let no_source: String = plain.lines().filter(|l| !l.starts_with("Source:")).map(|l| format!("{l}\n")).collect();
    put("no-source.buildinfo", no_source.into_bytes(), vec!["no-source.buildinfo", "Source"]);
    // A byte that is not UTF-8.
    let mut latin1 = plain.clone().into_bytes();
    let pos = latin1.iter().position(|b| *b == b'\n').unwrap() + 1;
    latin1.insert(pos, 0xe9);
    put("not-utf8.buildinfo", latin1, vec!["not-utf8.buildinfo"]);
    // Larger than the documented 4 MiB limit.
    let mut huge = plain.clone().into_bytes();
    while huge.len() <= 4 * 1024 * 1024 {
        huge.extend_from_slice(b"X-Padding: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n");
    }
    put("oversize.buildinfo", huge, vec!["oversize.buildinfo", "limit"]);
    // Empty, and a real signed file that is not a buildinfo at all.
    put("empty.buildinfo", Vec::new(), vec!["empty.buildinfo"]);
    let inrelease = std::fs::read(testdata().join("packages/debian-parsers__InRelease")).unwrap();
    put("inrelease.buildinfo", inrelease, vec!["inrelease.buildinfo"]);
    out
}

#[test]
fn malformed_files_are_rejected_alone() {
    on_both_backends(|s| {
        let tmp = tempfile::tempdir().unwrap();
        let variants = malformed_variants(tmp.path());
        std::fs::copy(
            buildinfo_dir().join("devscripts__sphinx_1.7.2-1_amd64.buildinfo"),
            tmp.path().join("good.buildinfo"),
        )
        .unwrap();
        let r = s.json(&["ingest", "buildinfo", "--json", tmp.path().to_str().unwrap()], 1);
        assert_eq!(count(&r, "ingested"), 1, "{r}");
        let rejected = r["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), variants.len(), "{r}");
        for (name, must) in &variants {
            let reason = rejected
                .iter()
                .find(|x| x["name"].as_str().unwrap().ends_with(name.as_str()))
                .unwrap_or_else(|| panic!("{name} not reported: {r}"))["reason"]
                .as_str()
                .unwrap();
            for m in must {
                assert!(reason.contains(m), "{name}: {reason:?} should mention {m:?}");
            }
        }
        // Nothing partial: exactly the good file is stored, and the server still serves.
        let status = s.json(&["status", "--json"], 0);
        assert_eq!(count(&status, "builds"), 1);
        // A query naming no valid package is refused with a clear message, and serving goes on.
        let out = s.cli(&["built-with", "Not A Package"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("not a package name"), "{}", describe(&out));
        let out = s.cli(&["built-with", "dpkg", "--before", "1.0 2"]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        assert_eq!(count(&s.json(&["status", "--json"], 0), "builds"), 1);
    });
}

/// An aggregated buildinfo index (`Buildinfo.xz`): the unsigned real files, concatenated as
/// paragraphs, then compressed. Also served over HTTP to test URL inputs.
#[test]
fn aggregated_index_and_url_inputs() {
    let unsigned: Vec<(String, Vec<u8>)> =
        real_files().into_iter().filter(|(_, b)| !b.starts_with(b"-----BEGIN PGP")).collect();
    assert!(unsigned.len() >= 4);
    let mut index = Vec::new();
    for (_, b) in &unsigned {
        let text = String::from_utf8_lossy(b);
        index.extend_from_slice(text.trim_end().as_bytes());
        index.extend_from_slice(b"\n\n");
    }
    let tmp = tempfile::tempdir().unwrap();
    let xz_path = tmp.path().join("Buildinfo.xz");
    {
        use std::io::Write;
        let mut enc = xz2::write::XzEncoder::new(std::fs::File::create(&xz_path).unwrap(), 6);
        enc.write_all(&index).unwrap();
        enc.finish().unwrap();
    }
    let signed = real_files().into_iter().find(|(_, b)| b.starts_with(b"-----BEGIN PGP")).unwrap();
    std::fs::write(tmp.path().join(&signed.0), &signed.1).unwrap();
    let http = HttpServer::start(tmp.path());
    let signed_sha = sha256_hex(&signed.1);
    on_both_backends(|s| {
        let xz = format!("{}/Buildinfo.xz", http.url);
        let r = s.json(&["ingest", "buildinfo", "--json", &xz], 0);
        assert_eq!(count(&r, "ingested"), unsigned.len() as u64, "{r}");
        let one = format!("{}/{}", http.url, signed.0);
        let r = s.json(&["ingest", "buildinfo", "--json", &one], 0);
        assert_eq!(count(&r, "ingested"), 1, "{r}");
        // The signed file fetched over HTTP keeps its identity: its SHA-256 serves it back.
        let out = s.cli(&["build", "get", &signed_sha]);
        assert!(out.status.success(), "{}", describe(&out));
        let missing = format!("{}/no-such.buildinfo", http.url);
        let out = s.cli(&["ingest", "buildinfo", &missing]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("no-such.buildinfo"));
    });
}

/// A throwaway `python3 -m http.server` (a stock third-party HTTP server) on a free port.
struct HttpServer {
    child: std::process::Child,
    url: String,
}

impl HttpServer {
    fn start(dir: &Path) -> HttpServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "http.server did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        HttpServer { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn zero_configuration_and_config_sources() {
    // No --db: SQLite in the data directory.
    let s = Server::start(None);
    assert!(s.data_dir.path().join("debcover.sqlite").exists());
    assert!(s.log().iter().any(|l| l.contains("backend=\"sqlite\"") || l.contains("backend=sqlite")), "{:?}", s.log());
    // A client config file names the server.
    let cfg = s.data_dir.path().join("client.toml");
    std::fs::write(&cfg, format!("server = \"{}\"\n", s.url)).unwrap();
    let out = std::process::Command::new(debcover_tests::binary("debcover"))
        .args(["status", "--json", "--config", cfg.to_str().unwrap()])
        .env_remove("DEBCOVER_SERVER")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    // A config file with an unknown key is refused, naming file and key.
    std::fs::write(&cfg, "servr = \"x\"\n").unwrap();
    let out = s.cli(&["status", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("client.toml") && err.contains("servr"), "{err}");
    // An unreachable server is explained.
    let out = std::process::Command::new(debcover_tests::binary("debcover"))
        .args(["status", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `debcover serve` running"), "{}", describe(&out));
    // SIGTERM: graceful stop, exit 0.
    assert_eq!(s.terminate(), Some(0));
}

/// A client command whose output pipe is closed (`debcover built-with ... | head`) ends quietly
/// with success, as ripgrep does, not with a panic; the server is unaffected. Every way of
/// printing is covered: `built-with` prints through `outln!`, `--json` through `print_json`,
/// `keys` through `writeln!(..)?`.
#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    let s = Server::start(None);
    let file = testdata().join("buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo");
    let ingest = s.json(&["ingest", "buildinfo", "--json", file.to_str().expect("UTF-8 path")], 0);
    assert_eq!(count(&ingest, "ingested"), 1, "{ingest}");
    for args in [&["built-with", "libc6-dev"][..], &["built-with", "libc6-dev", "--json"], &["keys"]] {
        // The reading end is gone before the command starts: its first write meets a closed pipe.
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = std::process::Command::new(debcover_tests::binary("debcover"))
            .args(args)
            .env("DEBCOVER_SERVER", &s.url)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run debcover");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {:?}: {stderr}", out.status);
        assert_eq!(stderr, "", "{args:?}");
    }
    // The server still answers.
    let again = s.json(&["built-with", "libc6-dev", "--json"], 0);
    assert_eq!(count(&again, "count"), 1, "{again}");
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

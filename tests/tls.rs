//! gRPC over TLS: a CA and a server certificate for 127.0.0.1/localhost made here with the
//! stock `openssl` command, `debcover serve --tls-cert --tls-key` (given through the
//! environment), and the real client: trusting the CA (`--ca-cert`, `DEBCOVER_CA_CERT`) it
//! works, without it or over plain http:// it fails with a message that says what to check.

use std::path::Path;
use std::process::Command;

use debcover_tests::{Server, binary, describe, in_ci};

/// Run `openssl ARGS` in `dir`; false (after saying why) when openssl is missing outside CI.
fn openssl(dir: &Path, args: &[&str]) -> bool {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(out) => {
            assert!(out.status.success(), "openssl {args:?}: {}", describe(&out));
            true
        }
        Err(e) => {
            assert!(!in_ci(), "openssl is required under CI: {e}");
            eprintln!("SKIPPING the TLS test: cannot run openssl: {e}");
            false
        }
    }
}

/// A CA (`ca.pem`, `ca.key`) and a server certificate it signed for 127.0.0.1 and localhost
/// (`server.pem`, `server.key`); also `other-ca.pem`, a CA that signed nothing.
fn make_certificates(dir: &Path) -> bool {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: Vec<Vec<&str>> = vec![
        [&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=debcover test CA"]].concat(),
        [&["req", "-x509"][..], &ec, &["-keyout", "other-ca.key", "-out", "other-ca.pem", "-days", "2", "-subj", "/CN=other CA"]]
            .concat(),
        [&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
        vec![
            "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem",
            "-days", "2", "-extfile", "ext.cnf",
        ],
    ];
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName = IP:127.0.0.1, DNS:localhost\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n",
    )
    .expect("write ext.cnf");
    steps.iter().all(|args| openssl(dir, args))
}

#[test]
fn grpc_over_tls() {
    let certs = tempfile::tempdir().expect("tempdir");
    if !make_certificates(certs.path()) {
        return;
    }
    let path = |name: &str| certs.path().join(name).to_str().expect("UTF-8 path").to_owned();
    let (cert, key, ca, other_ca) = (path("server.pem"), path("server.key"), path("ca.pem"), path("other-ca.pem"));
    let s = Server::start_with(None, &[("DEBCOVER_TLS_CERT", &cert), ("DEBCOVER_TLS_KEY", &key)]);
    assert!(s.log().iter().any(|l| l.contains("scheme=https")), "{:?}", s.log());
    let port = s.url.rsplit(':').next().expect("port");
    let https = format!("https://127.0.0.1:{port}");
    let https_name = format!("https://localhost:{port}");

    // Trusting the CA: by flag, by IP address and by name.
    let v = s.json(&["status", "--server", &https, "--ca-cert", &ca, "--json"], 0);
    assert!(v.is_object(), "{v}");
    s.json(&["status", "--server", &https_name, "--ca-cert", &ca, "--json"], 0);
    // By environment, and for an admin call (bearer token over TLS).
    let admin = s.data_dir.path().join("admin.token");
    let out = Command::new(binary("debcover"))
        .args(["node", "add", "--operator", "o", "--name", "n", "--json", "--admin-token-file"])
        .arg(&admin)
        .env("DEBCOVER_SERVER", &https)
        .env("DEBCOVER_CA_CERT", &ca)
        .env("HOME", s.data_dir.path())
        .output()
        .expect("run debcover");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("dcn_"), "{}", describe(&out));

    // A rebuilder node registers over TLS with the CA file (its key made on first start).
    let token: serde_json::Value = serde_json::from_slice(&out.stdout).expect("node add --json");
    let token_file = certs.path().join("node.token");
    std::fs::write(&token_file, token["token"].as_str().expect("token")).expect("write token");
    let work = tempfile::tempdir().expect("tempdir");
    let mut node = Command::new(binary("debcover-rebuilder"))
        .args(["run", "--server", &https, "--ca-cert", &ca, "--token-file"])
        .arg(&token_file)
        .arg("--work-dir")
        .arg(work.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run debcover-rebuilder");
    let start = std::time::Instant::now();
    let registered = loop {
        let nodes = s.json(&["node", "list", "--server", &https, "--ca-cert", &ca, "--admin-token-file", admin.to_str().unwrap(), "--json"], 0);
        let n = nodes.as_array().and_then(|a| a.iter().find(|n| n["name"] == "n").cloned());
        if let Some(n) = n.filter(|n| n["public_key"].as_str().is_some_and(|k| k.starts_with("ssh-ed25519 "))) {
            break n;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "the node did not register over TLS: {nodes}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(registered["operator"], "o", "{registered}");
    let _ = Command::new("kill").args(["-TERM", &node.id().to_string()]).status();
    assert!(node.wait().expect("node exit").success(), "the node did not stop cleanly on SIGTERM");

    // Without the CA (system roots), with a CA that did not sign it, and over plain http://:
    // each fails, saying what to check.
    let out = s.cli(&["status", "--server", &https]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&https) && err.contains("over TLS") && err.contains("--ca-cert"), "{err}");
    assert!(err.contains("system's root certificates"), "{err}");
    let out = s.cli(&["status", "--server", &https, "--ca-cert", &other_ca]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("other-ca.pem") && err.to_lowercase().contains("certificate"), "{err}");
    let out = s.cli(&["status", "--server", &s.url]);
    assert_eq!(out.status.code(), Some(2), "plain http:// to a TLS server: {}", describe(&out));
    let out = s.cli(&["status", "--server", &s.url, "--ca-cert", &ca]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain http://"), "{}", describe(&out));
    let out = s.cli(&["status", "--server", &https, "--ca-cert", &path("missing.pem")]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pem"), "{}", describe(&out));
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

/// A certificate without its key, or a key file that holds none, stops `serve` with a message
/// naming the setting and the file.
#[test]
fn serve_names_bad_tls_files() {
    let certs = tempfile::tempdir().expect("tempdir");
    if !make_certificates(certs.path()) {
        return;
    }
    let serve = |args: &[&str]| {
        let data = tempfile::tempdir().expect("tempdir");
        Command::new(binary("debcover"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .args(args)
            .env_remove("DEBCOVER_DB")
            .env("HOME", data.path())
            .output()
            .expect("run debcover serve")
    };
    let cert = certs.path().join("server.pem");
    let cert = cert.to_str().expect("UTF-8 path");
    let out = serve(&["--tls-cert", cert]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key"), "{}", describe(&out));
    let out = serve(&["--tls-cert", cert, "--tls-key", cert]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls_key") && err.contains("server.pem") && err.contains("private key"), "{err}");
}

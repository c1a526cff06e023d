//! Corroboration end to end, on bookworm's real `lego` .deb (tests/fixtures/download-debs.sh):
//! a real `debcover serve` (SQLite and PostgreSQL) holds two buildinfos of lego 4.9.1-1 that
//! name the real .deb, one recording the Go toolchain the binary embeds (golang-1.19-go
//! 1.19.5-1), one another (1.19.4-1). A node, driven here over real gRPC with the node's own
//! code (its key, its registration proof, its in-toto signature and its reading of the .deb:
//! `debcover_rebuilder::embedded`), reproduces both and reports what the binary says. The
//! coordinator agrees with the first and reports the second as a disagreement (history,
//! `--json`, web page, log) without changing either verdict: both are reproducible and verified.
//!
//! A test target of `debcover-rebuilder` (see its Cargo.toml) so that it can use the node's
//! library; `cargo test --workspace` builds the `debcover` binary it starts.

use std::path::Path;

use debcover_proto::v1 as pb;
use debcover_proto::v1::rebuild_nodes_client::RebuildNodesClient;
use debcover_rebuilder::attest::{RebuildClaim, sign};
use debcover_rebuilder::backend::Produced;
use debcover_rebuilder::embedded::read_produced;
use debcover_rebuilder::key::NodeKey;
use debcover_tests::{BearerAuth, Server, fixture_deb, pg::TestDatabase};
use serde_json::Value;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Node = RebuildNodesClient<InterceptedService<Channel, BearerAuth>>;

/// A buildinfo of lego 4.9.1-1 producing `deb` (its real size and hash), with `go` as the
/// recorded version of the Go toolchain packages.
fn buildinfo(deb: &Produced, go: &str) -> String {
    format!(
        "Format: 1.0\nSource: lego\nBinary: lego\nArchitecture: amd64\nVersion: 4.9.1-1\n\
         Checksums-Sha256:\n {} {} {}\n\
         Build-Origin: Debian\nBuild-Architecture: amd64\nBuild-Date: Sat, 14 Jan 2023 10:00:00 +0000\n\
         Installed-Build-Depends:\n base-files (= 12.4),\n dh-golang (= 1.62),\n golang-1.19-go (= {go}),\n \
         golang-1.19-src (= {go}),\n golang-go (= 2:1.19~1),\n libc6-dev (= 2.36-8)\n",
        deb.sha256, deb.size, deb.name
    )
}

/// A built result for `job`: the .deb, what it says, signed as the node signs.
fn report(job: &pb::Job, deb: &Produced, key: &NodeKey, embedded: Vec<pb::EmbeddedBinary>) -> Vec<pb::ReportChunk> {
    use pb::report_chunk::Chunk;
    let mut claim = RebuildClaim::default();
    claim.products.insert(deb.name.clone(), deb.sha256.clone());
    claim.environment.insert("debcover_job".into(), job.job_id.to_string());
    claim.environment.insert("debcover_fence".into(), job.fence.to_string());
    let header = pb::ReportHeader { job_id: job.job_id, fence: job.fence, result: "built".into(), embedded, ..Default::default() };
    vec![
        pb::ReportChunk { chunk: Some(Chunk::Header(header)) },
        pb::ReportChunk {
            chunk: Some(Chunk::Artifact(pb::Artifact { name: deb.name.clone(), size: deb.size, sha256: deb.sha256.clone() })),
        },
        pb::ReportChunk { chunk: Some(Chunk::Attestation(sign(key, &claim))) },
    ]
}

async fn scenario(s: &Server, deb_path: &Path) {
    let name = deb_path.file_name().unwrap().to_string_lossy().into_owned();
    let (size, sha256) = debcover_rebuilder::hash::sha256_file(deb_path).unwrap();
    let deb = Produced { name: name.clone(), size, sha256, path: deb_path.to_owned() };

    // What the node reads from the real .deb.
    let read = read_produced(std::slice::from_ref(&deb));
    assert!(!read.truncated && read.notes.is_empty(), "{read:?}");
    assert_eq!(read.binaries.len(), 1, "{read:?}");
    assert_eq!((read.binaries[0].path.as_str(), read.binaries[0].go_version.as_str()), ("usr/bin/lego", "go1.19.5"));

    // Two buildinfos of the same upload: the toolchain the binary embeds, and another.
    let dir = tempfile::tempdir().unwrap();
    let bi = dir.path().join("buildinfo");
    std::fs::create_dir(&bi).unwrap();
    std::fs::write(bi.join("agrees.buildinfo"), buildinfo(&deb, "1.19.5-1")).unwrap();
    std::fs::write(bi.join("disagrees.buildinfo"), buildinfo(&deb, "1.19.4-1")).unwrap();
    let ingested = s.json(&["ingest", "buildinfo", "--json", bi.to_str().unwrap()], 0);
    assert_eq!(ingested["ingested"], 2, "{ingested}");
    let admin = s.data_dir.path().join("admin.token");
    let admin = admin.to_str().unwrap();
    let q = s.json(&["rebuild", "request", "lego", "--admin-token-file", admin, "--json"], 0);
    assert_eq!(q["queued"], 2, "{q}");

    // A node with the node's own key and registration proof.
    let v = s.json(&["node", "add", "--operator", "alice", "--name", "a1", "--admin-token-file", admin, "--json"], 0);
    let token = v["token"].as_str().unwrap().to_owned();
    let key = NodeKey::load_or_create(&dir.path().join("node-key.pem")).unwrap();
    let channel = Channel::from_shared(s.url.clone()).unwrap().connect().await.unwrap();
    let mut node: Node = RebuildNodesClient::with_interceptor(channel, BearerAuth(token.clone()));
    let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    node.register(pb::RegisterRequest {
        public_key: key.openssh_public(),
        registration_time: time,
        registration_signature: key.registration_signature(&token, time),
        architectures: vec!["amd64".into()],
        backends: vec!["local".into()],
        slots: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut jobs = Vec::new();
    while let Some(j) = node.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job {
        jobs.push(j);
    }
    assert_eq!(jobs.len(), 2);
    let recorded = |j: &pb::Job| String::from_utf8_lossy(&j.buildinfo).contains("golang-1.19-go (= 1.19.5-1)");
    let (agreeing, disagreeing) = if recorded(&jobs[0]) { (&jobs[0], &jobs[1]) } else { (&jobs[1], &jobs[0]) };
    assert!(recorded(agreeing) && !recorded(disagreeing));

    // Embedded info must speak of reported files and keep within the bounds; a refused report
    // leaves the lease, so the node can send it again.
    let mut other = read.binaries.clone();
    other[0].deb = "other_1_amd64.deb".into();
    let e = node.report_result(tokio_stream::iter(report(agreeing, &deb, &key, other))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("embedded") && e.message().contains("other_1_amd64.deb"), "{e:?}");
    let mut bad = read.binaries.clone();
    bad[0].go_modules = vec![pb::EmbeddedModule { name: "example.org/m".into(), version: "v1\n".into() }];
    let e = node.report_result(tokio_stream::iter(report(agreeing, &deb, &key, bad))).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("embedded[0].go_modules[0].version: "), "{e:?}");

    for job in [agreeing, disagreeing] {
        let r = node.report_result(tokio_stream::iter(report(job, &deb, &key, read.binaries.clone()))).await.unwrap().into_inner();
        // The verdict is the hashes' alone: a disagreeing toolchain changes nothing.
        assert_eq!((r.outcome.as_str(), r.job_state.as_str()), ("reproducible", "verified"), "{r:?}");
    }

    // The history shows both, per attempt.
    let h = s.json(&["build", "history", "lego", "--json"], 0);
    let jobs_json = h.as_array().unwrap();
    assert_eq!(jobs_json.len(), 2, "{h:#}");
    let by_id = |id: i64| jobs_json.iter().find(|j| j["id"] == id).unwrap_or_else(|| panic!("job {id}: {h:#}"));
    let finding = |id: i64| -> Value {
        let j = by_id(id);
        assert_eq!((j["state"].as_str(), j["attempts"][0]["outcome"].as_str()), (Some("verified"), Some("reproducible")), "{j:#}");
        let c = j["attempts"][0]["corroboration"].as_array().unwrap_or_else(|| panic!("{j:#}"));
        assert_eq!(c.len(), 1, "{j:#}");
        c[0].clone()
    };
    let a = finding(agreeing.job_id);
    assert_eq!(
        a,
        serde_json::json!({"deb": name, "binary": "usr/bin/lego", "subject": "go toolchain", "embedded": "go1.19.5",
            "declared": ["Installed-Build-Depends: golang-1.19 1.19.5-1"], "verdict": "agrees"})
    );
    let d = finding(disagreeing.job_id);
    assert_eq!((d["verdict"].as_str(), d["embedded"].as_str()), (Some("disagrees"), Some("go1.19.5")), "{d:#}");
    assert_eq!(d["declared"], serde_json::json!(["Installed-Build-Depends: golang-1.19 1.19.4-1"]));

    // The text form: a count per attempt, a line per disagreement.
    let out = s.cli(&["build", "history", "lego"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("CORROBORATION:")).collect();
    assert_eq!(
        lines,
        [format!(
            "  CORROBORATION: usr/bin/lego ({name}) says go toolchain go1.19.5, Installed-Build-Depends has golang-1.19 1.19.4-1"
        )],
        "{text}"
    );
    assert!(text.contains("corroboration: 1 agree, 0 disagree, 0 undeclared"), "{text}");
    assert!(text.contains("corroboration: 0 agree, 1 disagree, 0 undeclared"), "{text}");

    // The coordinator's log names build, node, binary and field.
    let log = s.log();
    let warned: Vec<&String> = log.iter().filter(|l| l.contains("disagrees with the original buildinfo")).collect();
    assert_eq!(warned.len(), 1, "{log:#?}");
    for needle in ["WARN", "alice/a1", "usr/bin/lego", "go toolchain", &disagreeing.build_id] {
        assert!(warned[0].contains(needle), "{needle}: {}", warned[0]);
    }

    // The web source page, HTML and JSON.
    let page: Value = serde_json::from_slice(&s.web_get("/api/source/lego")).unwrap();
    let verdicts: Vec<&str> = page["rebuilds"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["attempts"][0]["corroboration"].as_array().unwrap())
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts.iter().filter(|v| **v == "agrees").count(), 1, "{page:#}");
    assert_eq!(verdicts.iter().filter(|v| **v == "disagrees").count(), 1, "{page:#}");
    let html = String::from_utf8_lossy(&s.web_get("/source/lego")).into_owned();
    assert!(html.contains("binaries vs. buildinfo") && html.contains("Installed-Build-Depends has golang-1.19 1.19.4-1"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_go_toolchain_corroborated_over_grpc_sqlite() {
    let Some(deb) = fixture_deb("lego") else { return };
    let s = Server::start_with(None, &[("DEBCOVER_VERIFIERS", "1")]);
    scenario(&s, &deb).await;
    assert_eq!(s.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_go_toolchain_corroborated_over_grpc_postgres() {
    let Some(deb) = fixture_deb("lego") else { return };
    let Some(db) = TestDatabase::create().await else { return };
    let s = Server::start_with(Some(&db.url), &[("DEBCOVER_VERIFIERS", "1")]);
    scenario(&s, &deb).await;
    assert_eq!(s.terminate(), Some(0));
}

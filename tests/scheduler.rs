//! The rebuild scheduler end to end: a real `debcover serve` process on SQLite and on
//! PostgreSQL, node credentials issued with the real `debcover node` commands, builds queued
//! with `debcover rebuild request`, and a node driven from here over real gRPC (the proto is
//! the contract): registration, long-poll claims, heartbeats, streamed reports, hand-backs,
//! lease expiry with prompt reclaim, and every refusal (no or bad token, someone else's lease,
//! a stale fencing token, a revoked credential, an oversized message).

use std::time::{Duration, Instant};

use debcover_proto::v1 as pb;
use debcover_proto::v1::rebuild_nodes_client::RebuildNodesClient;
use debcover_tests::{Server, describe, pg::TestDatabase, testdata};
use serde_json::Value;
use sha2::Digest;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Node = RebuildNodesClient<InterceptedService<Channel, BearerAuth>>;

#[derive(Clone)]
struct BearerAuth(Option<String>);

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        Ok(req)
    }
}

async fn node(url: &str, token: Option<&str>) -> Node {
    let channel = Channel::from_shared(url.to_owned()).unwrap().connect().await.unwrap();
    RebuildNodesClient::with_interceptor(channel, BearerAuth(token.map(str::to_owned)))
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn report(job: &pb::Job, artifacts: Vec<pb::Artifact>, log: &[u8]) -> Vec<pb::ReportChunk> {
    use pb::report_chunk::Chunk;
    let mut v = vec![pb::ReportChunk {
        chunk: Some(Chunk::Header(pb::ReportHeader {
            job_id: job.job_id,
            fence: job.fence,
            result: "built".into(),
            failure_code: String::new(),
            message: String::new(),
            ..Default::default()
        })),
    }];
    v.extend(artifacts.into_iter().map(|a| pb::ReportChunk { chunk: Some(Chunk::Artifact(a)) }));
    v.push(pb::ReportChunk { chunk: Some(Chunk::Buildinfo(job.buildinfo.clone())) });
    for piece in log.chunks(1000) {
        v.push(pb::ReportChunk { chunk: Some(Chunk::Log(piece.to_vec())) });
    }
    v
}

async fn send(n: &mut Node, chunks: Vec<pb::ReportChunk>) -> Result<pb::ReportResponse, tonic::Status> {
    n.report_result(tokio_stream::iter(chunks)).await.map(|r| r.into_inner())
}

/// A registration with the node key of `token` (seeded by the token, so each credential has
/// its own), proof of possession included.
fn register(token: &str, arches: &[&str], slots: u32) -> pb::RegisterRequest {
    let seed: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
    register_with_key(token, &ed25519_dalek::SigningKey::from_bytes(&seed), arches, slots)
}

/// A registration of `key` for `token`, signed as the coordinator requires.
fn register_with_key(token: &str, key: &ed25519_dalek::SigningKey, arches: &[&str], slots: u32) -> pb::RegisterRequest {
    let (time, signature) = debcover_tests::registration_proof(token, key);
    pb::RegisterRequest {
        public_key: debcover_formats::intoto::openssh_public(&key.verifying_key().to_bytes(), "test"),
        architectures: arches.iter().map(|a| a.to_string()).collect(),
        backends: vec!["local".into()],
        tags: vec![],
        slots,
        registration_time: time,
        registration_signature: signature,
        ..Default::default()
    }
}

fn add_node(s: &Server, admin: &str, operator: &str, name: &str) -> String {
    let v = s.json(&["node", "add", "--operator", operator, "--name", name, "--admin-token-file", admin, "--json"], 0);
    v["token"].as_str().expect("token").to_owned()
}

async fn scenario(s: &Server) {
    let admin = s.data_dir.path().join("admin.token");
    let admin = admin.to_str().unwrap();
    let ingest = s.json(&["ingest", "buildinfo", "--json", testdata().join("buildinfo").to_str().unwrap()], 0);
    assert!(ingest["ingested"].as_u64().unwrap() > 10, "{ingest}");

    // Credentials: issued by the CLI, printed once, listed without the token.
    let a1 = add_node(s, admin, "alice", "a1");
    let a2 = add_node(s, admin, "alice", "a2");
    let b1 = add_node(s, admin, "bob", "b1");
    assert!(a1.starts_with("dcn_") && a1 != a2);
    let out = s.cli(&["node", "add", "--operator", "alice", "--name", "a1", "--admin-token-file", admin]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has a node a1"));
    let listed = s.json(&["node", "list", "--admin-token-file", admin, "--json"], 0);
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert!(!listed.to_string().contains(&a1), "tokens are never shown again");
    // Admin calls need the admin token: a node token is not one.
    let bad = s.data_dir.path().join("bad.token");
    std::fs::write(&bad, &a1).unwrap();
    let out = s.cli(&["node", "list", "--admin-token-file", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin token"), "{out:?}");

    // Queue: bash's three builds, then 0xffff's amd64 builds by an alias. Twice is deduplicated.
    let q = s.json(&["rebuild", "request", "bash", "--admin-token-file", admin, "--json"], 0);
    assert_eq!((q["queued"].as_u64(), q["already_queued"].as_u64()), (Some(3), Some(0)), "{q}");
    let q = s.json(&["rebuild", "request", "bash", "--admin-token-file", admin, "--json"], 0);
    assert_eq!((q["queued"].as_u64(), q["already_queued"].as_u64()), (Some(0), Some(3)), "{q}");
    let q = s.json(&["rebuild", "request", "0xffff", "--arch", "x86_64", "--admin-token-file", admin, "--json"], 0);
    assert!(q["queued"].as_u64().unwrap() >= 1, "{q}");
    let out = s.cli(&["rebuild", "request", "no-such-source", "--admin-token-file", admin]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ingested build"));
    let queue = s.json(&["queue", "--json"], 0);
    let queued: u64 = queue["counts"].as_array().unwrap().iter().map(|c| c["jobs"].as_u64().unwrap()).sum();
    let total = queued;
    assert!(total >= 4, "{queue}");

    // Authentication: no token, a made-up token.
    let mut anon = node(&s.url, None).await;
    assert_eq!(anon.register(register("", &["amd64"], 1)).await.unwrap_err().code(), Code::Unauthenticated);
    let mut forged = node(&s.url, Some("dcn_0000")).await;
    assert_eq!(forged.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap_err().code(), Code::Unauthenticated);

    let mut na1 = node(&s.url, Some(&a1)).await;
    let mut na2 = node(&s.url, Some(&a2)).await;
    let mut nb1 = node(&s.url, Some(&b1)).await;
    assert_eq!(na1.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap_err().code(), Code::FailedPrecondition);
    let r = na1.register(register(&a1, &["x86_64", "i686"], 2)).await.unwrap().into_inner();
    assert_eq!(r.architectures, ["amd64", "i386"]);
    assert_eq!((r.operator.as_str(), r.lease_ttl_seconds), ("alice", 3));
    na2.register(register(&a2, &["amd64"], 1)).await.unwrap();
    nb1.register(register(&b1, &["amd64"], 2)).await.unwrap();

    // a1 claims: the job carries the original buildinfo byte for byte.
    let j1 = na1.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job.expect("a job");
    assert_eq!(sha256_hex(&j1.buildinfo), j1.build_id);
    assert_eq!(j1.fence, 1);
    let hb = na1.heartbeat(pb::HeartbeatRequest { job_id: j1.job_id, fence: 1 }).await.unwrap().into_inner();
    assert!(hb.lease_expires_at >= j1.lease_expires_at);
    // Another node may not heartbeat or report on a1's lease.
    let e = nb1.heartbeat(pb::HeartbeatRequest { job_id: j1.job_id, fence: 1 }).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = send(&mut nb1, report(&j1, debcover_tests::artifacts(&j1.buildinfo), b"")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // a1 reports the same hashes: reproducible, but one operator is not enough (k = 2).
    let log = b"dpkg-buildpackage: info: source package bash\n".repeat(50);
    let r = send(&mut na1, report(&j1, debcover_tests::artifacts(&j1.buildinfo), &log)).await.unwrap();
    assert_eq!((r.outcome.as_str(), r.job_state.as_str()), ("reproducible", "queued"), "{r:?}");
    assert_eq!(r.log_sha256, sha256_hex(&log));
    assert_eq!(r.buildinfo_sha256, j1.build_id);
    let stored = s.data_dir.path().join(format!("cas/logs/{}/{}.zst", &r.log_sha256[..2], r.log_sha256));
    assert_eq!(zstd::decode_all(&std::fs::read(&stored).unwrap()[..]).unwrap(), log);
    // Reporting twice: the lease is over.
    let e = send(&mut na1, report(&j1, debcover_tests::artifacts(&j1.buildinfo), b"")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Independence: alice's other node never gets j1; bob's does, and one file differs.
    let j2 = na2.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job.expect("a job");
    assert_ne!(j2.job_id, j1.job_id);
    let jb = nb1.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job.expect("a job");
    assert_eq!((jb.job_id, jb.fence), (j1.job_id, 2));
    let mut arts = debcover_tests::artifacts(&jb.buildinfo);
    let deb = arts.iter().position(|a| a.name.ends_with(".deb")).expect("a .deb");
    arts[deb].sha256 = "0".repeat(64);
    let r = send(&mut nb1, report(&jb, arts.clone(), b"log")).await.unwrap();
    assert_eq!(r.outcome, "unreproducible");
    assert_eq!(r.differing, [arts[deb].name.clone()]);

    // a2 goes silent: its lease expires (TTL 3 s) and is reclaimed promptly, while bob's node
    // is waiting in a long-poll claim; the late heartbeat and report are refused.
    let start = Instant::now();
    let mut reclaimed = None;
    while start.elapsed() < Duration::from_secs(20) {
        let j = nb1.claim(pb::ClaimRequest { wait_seconds: 10, ..Default::default() }).await.unwrap().into_inner().job;
        match j {
            Some(j) if j.job_id == j2.job_id => {
                reclaimed = Some(j);
                break;
            }
            Some(other) => {
                nb1.hand_back(pb::HandBackRequest { job_id: other.job_id, fence: other.fence, reason: "test".into() })
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            None => {}
        }
    }
    let jr = reclaimed.expect("a2's job reclaimed and given to b1");
    assert_eq!(jr.fence, j2.fence + 1);
    assert!(start.elapsed() < Duration::from_secs(15), "reclaim took {:?}", start.elapsed());
    let e = na2.heartbeat(pb::HeartbeatRequest { job_id: j2.job_id, fence: j2.fence }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("stale fencing token"), "{e:?}");
    let e = send(&mut na2, report(&j2, debcover_tests::artifacts(&j2.buildinfo), b"")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // Failure reports carry a sub-code; unknown ones are rejected.
    let mut failed = report(&jr, vec![], b"E: Unable to locate package foo\n");
    if let Some(pb::report_chunk::Chunk::Header(h)) = &mut failed[0].chunk {
        h.result = "failed".into();
        h.failure_code = "no-such-code".into();
    }
    assert_eq!(send(&mut nb1, failed.clone()).await.unwrap_err().code(), Code::InvalidArgument);
    if let Some(pb::report_chunk::Chunk::Header(h)) = &mut failed[0].chunk {
        h.failure_code = "dependencies-unavailable".into();
        h.message = "foo (= 1.0) not in the snapshot".into();
    }
    let r = send(&mut nb1, failed).await.unwrap();
    assert_eq!((r.outcome.as_str(), r.job_state.as_str()), ("failed", "queued"));

    // Message size limits: an 9 MiB log chunk is refused, and the server keeps serving.
    let big = nb1.claim(pb::ClaimRequest { wait_seconds: 2, ..Default::default() }).await.unwrap().into_inner().job;
    if let Some(big) = big {
        let e = send(&mut nb1, report(&big, vec![], &[]).into_iter().chain([pb::ReportChunk {
            chunk: Some(pb::report_chunk::Chunk::Log(vec![b'x'; 9 * 1024 * 1024])),
        }]).collect())
        .await
        .unwrap_err();
        assert!(matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted), "{e:?}");
        nb1.hand_back(pb::HandBackRequest { job_id: big.job_id, fence: big.fence, reason: "test".into() }).await.unwrap();
    }

    // A long-poll claim returns as soon as work arrives: carol's i386 node waits while the
    // i386 build is requested.
    let c1 = add_node(s, admin, "carol", "c1");
    let mut nc1 = node(&s.url, Some(&c1)).await;
    nc1.register(register(&c1, &["i386"], 1)).await.unwrap();
    let waiting = tokio::spawn(async move {
        let start = Instant::now();
        let j = nc1.claim(pb::ClaimRequest { wait_seconds: 20, ..Default::default() }).await.unwrap().into_inner().job;
        (j, start.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let q = s.json(&["rebuild", "request", "bar", "--admin-token-file", admin, "--json"], 0);
    assert_eq!(q["queued"].as_u64(), Some(1), "{q}");
    let (j, waited) = waiting.await.unwrap();
    let j = j.expect("the i386 job");
    assert_eq!(j.architecture, "i386");
    assert!(waited >= Duration::from_millis(1400) && waited < Duration::from_secs(10), "{waited:?}");
    let total = total + 1;

    // Revocation: b1's credential stops working at once.
    s.json(&["node", "revoke", "--operator", "bob", "--name", "b1", "--admin-token-file", admin, "--json"], 0);
    assert_eq!(
        nb1.heartbeat(pb::HeartbeatRequest { job_id: jr.job_id, fence: jr.fence }).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // History: every attempt with its node, operator and outcome.
    let h = s.json(&["build", "history", &j1_source(s, j1.job_id), "--json"], 0);
    let job = h.as_array().unwrap().iter().find(|j| j["id"].as_i64() == Some(j1.job_id)).expect("j1 in history");
    let attempts: Vec<(String, String)> = job["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["node"].as_str().unwrap().to_owned(), a["outcome"].as_str().unwrap_or("running").to_owned()))
        .collect();
    assert_eq!(attempts, [("a1".to_owned(), "reproducible".to_owned()), ("b1".to_owned(), "unreproducible".to_owned())]);
    assert_eq!(job["attempts"][0]["log_sha256"].as_str(), Some(sha256_hex(&log).as_str()));
    // a1 sent no attestation: its reproducible result is recorded but not counted, and says so.
    assert_eq!(job["verified"].as_u64(), Some(0), "{job:#}");
    assert!(job["attempts"][0]["message"].as_str().unwrap().contains("not attested"), "{job:#}");
    // a1 and b1 produced different bytes for the same .deb, but neither signed its result:
    // both are recorded and shown, neither is evidence, so nothing is flagged (a disagreement
    // needs attested sides: tests/corroboration.rs, coverage.rs).
    assert_eq!(job["disagreements"].as_array().map(Vec::len), Some(0), "{job:#}");
    assert!(job["attempts"][1]["message"].as_str().unwrap().contains("not attested"), "{job:#}");
    let _ = &arts[deb];
    assert!(!job["attempts"][0]["artifacts"].as_array().unwrap().is_empty());
    let q = s.json(&["queue", "--json", "--state", "queued", "--state", "leased", "--state", "verified", "--state", "parked"], 0);
    let listed: Vec<&Value> = q["jobs"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len() as u64, total, "no job lost or duplicated: {q}");
    let text = s.cli(&["queue"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("PRIORITY"));
}

/// The source of a job, from the queue listing.
fn j1_source(s: &Server, job: i64) -> String {
    let q = s.json(&["queue", "--json", "--state", "queued", "--state", "leased", "--state", "verified", "--state", "parked"], 0);
    q["jobs"].as_array().unwrap().iter().find(|j| j["id"].as_i64() == Some(job)).unwrap()["source"]
        .as_str()
        .unwrap()
        .to_owned()
}

const ENV: [(&str, &str); 2] = [("DEBCOVER_LEASE_TTL", "3s"), ("DEBCOVER_VERIFIERS", "2")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_over_grpc_on_sqlite() {
    let s = Server::start_with(None, &ENV);
    scenario(&s).await;
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_over_grpc_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let s = Server::start_with(Some(&db.url), &ENV);
    scenario(&s).await;
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

// ---------------------------------------------------------------- results

const DSC_SHA: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const MIRROR: &str = "file:///srv/mirror";

/// The archive's SHA-256 of the 0xffff .deb: the debrebuild buildinfo's (a line scan).
fn shipped_0xffff() -> (String, u64) {
    let text = std::fs::read(testdata().join("buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo")).unwrap();
    let deb = debcover_tests::artifacts(&text).into_iter().find(|a| a.name == "0xffff_0.8-1+b1_amd64.deb").unwrap();
    (deb.sha256, deb.size)
}

/// A Packages and a Sources index of suite sid shipping 0xffff, written into `dir`.
fn archive_files(dir: &std::path::Path) -> (String, String) {
    let (sha, size) = shipped_0xffff();
    let packages = dir.join("Packages");
    std::fs::write(
        &packages,
        format!(
            "Package: 0xffff\nSource: 0xffff (0.8-1)\nVersion: 0.8-1+b1\nArchitecture: amd64\n\
             Filename: pool/main/0/0xffff/0xffff_0.8-1+b1_amd64.deb\nSize: {size}\nSHA256: {sha}\n"
        ),
    )
    .unwrap();
    let sources = dir.join("Sources");
    std::fs::write(
        &sources,
        format!(
            "Package: 0xffff\nBinary: 0xffff\nVersion: 0.8-1\nArchitecture: any\nDirectory: pool/main/0/0xffff\n\
             Checksums-Sha256:\n {DSC_SHA} 1805 0xffff_0.8-1.dsc\n {} 99 0xffff_0.8.orig.tar.gz\n",
            "2".repeat(64)
        ),
    )
    .unwrap();
    (packages.to_str().unwrap().to_owned(), sources.to_str().unwrap().to_owned())
}

fn header(job: &pb::Job, result: &str) -> pb::ReportChunk {
    pb::ReportChunk {
        chunk: Some(pb::report_chunk::Chunk::Header(pb::ReportHeader {
            job_id: job.job_id,
            fence: job.fence,
            result: result.into(),
            ..Default::default()
        })),
    }
}

/// A report made to count: the in-toto link of this lease and these artifacts, signed with
/// `key` (canonical JSON and key id from debcover-formats, as the real node signs).
fn attested(mut chunks: Vec<pb::ReportChunk>, key: &ed25519_dalek::SigningKey) -> Vec<pb::ReportChunk> {
    use debcover_formats::intoto;
    use ed25519_dalek::Signer;
    use pb::report_chunk::Chunk;
    let Some(Chunk::Header(h)) = &chunks[0].chunk else { panic!("a report starts with its header") };
    let products: serde_json::Map<String, Value> = chunks
        .iter()
        .filter_map(|c| match &c.chunk {
            Some(Chunk::Artifact(a)) => Some((a.name.clone(), serde_json::json!({"sha256": a.sha256}))),
            _ => None,
        })
        .collect();
    let signed = serde_json::json!({"_type": "link", "name": "rebuild", "materials": {}, "products": products,
        "byproducts": {}, "command": [],
        "environment": {"debcover_job": h.job_id.to_string(), "debcover_fence": h.fence.to_string()}});
    let keyid = intoto::keyid(&hex::encode(key.verifying_key().as_bytes()));
    let sig = key.sign(&intoto::canonical(&signed));
    let link = serde_json::json!({"signatures": [{"keyid": keyid, "sig": hex::encode(sig.to_bytes())}], "signed": signed});
    chunks.push(pb::ReportChunk { chunk: Some(Chunk::Attestation(serde_json::to_vec(&link).unwrap())) });
    chunks
}

/// A built report with these artifacts, this produced buildinfo and a diffoscope report.
fn built(job: &pb::Job, artifacts: Vec<pb::Artifact>, buildinfo: &[u8], diffoscope: &[u8]) -> Vec<pb::ReportChunk> {
    use pb::report_chunk::Chunk;
    let mut v = vec![header(job, "built")];
    v.extend(artifacts.into_iter().map(|a| pb::ReportChunk { chunk: Some(Chunk::Artifact(a)) }));
    for piece in buildinfo.chunks(700) {
        v.push(pb::ReportChunk { chunk: Some(Chunk::Buildinfo(piece.to_vec())) });
    }
    if !diffoscope.is_empty() {
        v.push(pb::ReportChunk { chunk: Some(Chunk::Diffoscope(diffoscope.to_vec())) });
    }
    v
}

fn mismatch(job: &pb::Job, differences: &[&str]) -> Vec<pb::ReportChunk> {
    let mut h = header(job, "environment-mismatch");
    if let Some(pb::report_chunk::Chunk::Header(h)) = &mut h.chunk {
        h.environment_differences = differences.iter().map(|d| d.to_string()).collect();
        h.message = "the snapshot lacks libc6 2.36-8".into();
    }
    vec![h]
}

/// The produced buildinfo of a rebuild: the original with this build's own date.
fn produced(original: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(original.to_vec()).unwrap();
    let date = text.lines().find(|l| l.starts_with("Build-Date:")).unwrap();
    text.replacen(date, "Build-Date: Mon, 23 Nov 2026 07:00:00 +0000", 1).into_bytes()
}

async fn results_scenario(s: &Server) {
    let admin = s.data_dir.path().join("admin.token");
    let admin = admin.to_str().unwrap();
    s.json(&["ingest", "buildinfo", "--json", testdata().join("buildinfo").to_str().unwrap()], 0);
    let dir = tempfile::tempdir().unwrap();
    let (packages, sources) = archive_files(dir.path());
    s.json(&["ingest", "archive", "--suite", "sid", "--json", &packages], 0);
    s.json(&["ingest", "archive", "--suite", "sid", "--json", &sources], 0);
    let (shipped, _) = shipped_0xffff();

    // The node's software is stored and listed.
    let token = add_node(s, admin, "alice", "a1");
    let mut n = node(&s.url, Some(&token)).await;
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    let mut reg = register_with_key(&token, &key, &["amd64"], 4);
    reg.software = "debcover-rebuilder 0.1.0".into();
    n.register(reg.clone()).await.unwrap();
    let listed = s.json(&["node", "list", "--admin-token-file", admin, "--json"], 0);
    assert_eq!(listed[0]["software"], "debcover-rebuilder 0.1.0", "{listed:#}");
    let text = s.cli(&["node", "list", "--admin-token-file", admin]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("debcover-rebuilder 0.1.0"), "{}", describe(&text));
    reg.software = "x\ny".into();
    let e = n.register(reg).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("software:"), "{e:?}");

    // Both 0xffff builds: their jobs say where the mirror has the source and the binary.
    let q = s.json(&["rebuild", "request", "0xffff", "--arch", "amd64", "--admin-token-file", admin, "--json"], 0);
    assert_eq!(q["queued"].as_u64(), Some(2), "{q}");
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let j = n.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job.expect("a 0xffff job");
        assert_eq!(j.source, "0xffff");
        assert_eq!(j.dsc_url, format!("{MIRROR}/pool/main/0/0xffff/0xffff_0.8-1.dsc"));
        assert_eq!(j.dsc_sha256, DSC_SHA);
        assert_eq!(
            j.originals,
            [pb::OriginalFile {
                name: "0xffff_0.8-1+b1_amd64.deb".into(),
                sha256: shipped.clone(),
                url: format!("{MIRROR}/pool/main/0/0xffff/0xffff_0.8-1+b1_amd64.deb"),
            }]
        );
        jobs.push(j);
    }
    // The debrebuild build is the one the archive ships; the other one lists other bytes.
    let (real, fake): (Vec<_>, Vec<_>) =
        jobs.into_iter().partition(|j| debcover_tests::artifacts(&j.buildinfo).iter().any(|a| a.sha256 == shipped));
    let (real, fake) = (&real[0], &fake[0]);

    // A produced buildinfo that does not parse is refused, naming it; nothing is recorded and
    // the lease stays.
    let e = send(&mut n, built(real, debcover_tests::artifacts(&real.buildinfo), b"Source: 0xffff\nno colon here\n", b"")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().starts_with("buildinfo: the produced .buildinfo does not parse"), "{e:?}");
    // One of another source is refused too.
    let other = std::fs::read(testdata().join("buildinfo/aptly__hardlink_0.2.1_amd64.buildinfo")).unwrap();
    let e = send(&mut n, built(real, debcover_tests::artifacts(&real.buildinfo), &other, b"")).await.unwrap_err();
    assert!(e.message().contains("the job rebuilds \"0xffff\""), "{e:?}");
    n.heartbeat(pb::HeartbeatRequest { job_id: real.job_id, fence: real.fence }).await.expect("the lease stays");
    let h = s.json(&["build", "history", "0xffff", "--json"], 0);
    assert!(h.as_array().unwrap().iter().all(|j| j["attempts"].as_array().unwrap().iter().all(|a| a["outcome"].is_null())), "{h:#}");

    // The real build reproduced: equal to the buildinfo and to the archive, and attested
    // (only signed results count towards verification).
    let rebuilt = produced(&real.buildinfo);
    let chunks = attested(built(real, debcover_tests::artifacts(&real.buildinfo), &rebuilt, b""), &key);
    let link = chunks
        .iter()
        .find_map(|c| match &c.chunk {
            Some(pb::report_chunk::Chunk::Attestation(b)) => Some(b.clone()),
            _ => None,
        })
        .expect("the signed link");
    let r = send(&mut n, chunks).await.unwrap();
    assert_eq!((r.outcome.as_str(), r.job_state.as_str()), ("reproducible", "verified"), "{r:?}");
    // The signed link is stored with the result (not as a file) and served byte for byte, by
    // the web views and the Attestations service.
    assert_eq!(r.attestation_sha256, sha256_hex(&link));
    assert_eq!(s.web_get(&format!("/cas/attestations/{}", r.attestation_sha256)), link);
    assert!(!s.data_dir.path().join("cas/attestations").exists(), "an attestation written as a file");
    let listed = s.json(&["attestations", "0xffff", &real.version, "--arch", "amd64", "--json"], 0);
    let shas: Vec<&Value> = listed.as_array().unwrap().iter().flat_map(|b| b["attestations"].as_array().unwrap()).collect();
    assert_eq!(shas.len(), 1, "{listed:#}");
    assert_eq!(shas[0]["attestation_sha256"], r.attestation_sha256.as_str(), "{listed:#}");
    let deb = r.verdicts.iter().find(|v| v.name == "0xffff_0.8-1+b1_amd64.deb").expect("the .deb judged");
    assert_eq!((deb.rebuilt_sha256.as_str(), deb.buildinfo_sha256.as_str(), deb.archive_sha256.as_str(), deb.matches),
        (shipped.as_str(), shipped.as_str(), shipped.as_str(), true));
    assert!(r.verdicts.iter().all(|v| v.matches), "{r:?}");
    // The produced buildinfo is a build now, byte for byte; the archive still links the original.
    assert_eq!(r.buildinfo_sha256, sha256_hex(&rebuilt));
    let got = s.cli(&["build", "get", &r.buildinfo_sha256]);
    assert_eq!(got.stdout, rebuilt, "{}", describe(&got));
    let shown = s.json(&["build", "show", "0xffff", "--json"], 0);
    assert!(shown.to_string().contains(&r.buildinfo_sha256), "{shown:#}");
    assert!(shown.to_string().contains(&format!("rebuild:alice/a1:job-{}:fence-{}", real.job_id, real.fence)), "{shown:#}");
    let built_with = s.json(&["built-with", "libusb-dev", "--suite", "sid", "--json"], 0);
    assert!(!built_with.to_string().contains(&r.buildinfo_sha256), "a rebuild never ships: {built_with:#}");
    assert!(built_with.to_string().contains(&real.build_id), "{built_with:#}");

    // The other build matches its buildinfo, not the archive: unreproducible, with a diffoscope
    // report kept (compressed) and the differing file in the history.
    let report = b"--- 0xffff_0.8-1+b1_amd64.deb (archive)\n+++ 0xffff_0.8-1+b1_amd64.deb (rebuilt)\n".repeat(40);
    let fake_deb = debcover_tests::artifacts(&fake.buildinfo).into_iter().find(|a| a.name == "0xffff_0.8-1+b1_amd64.deb").unwrap();
    let r = send(&mut n, built(fake, debcover_tests::artifacts(&fake.buildinfo), &produced(&fake.buildinfo), &report)).await.unwrap();
    assert_eq!(r.outcome, "unreproducible", "{r:?}");
    assert_eq!(r.differing, ["0xffff_0.8-1+b1_amd64.deb"]);
    let deb = r.verdicts.iter().find(|v| v.name == "0xffff_0.8-1+b1_amd64.deb").unwrap();
    assert_eq!((deb.rebuilt_sha256.as_str(), deb.buildinfo_sha256.as_str(), deb.archive_sha256.as_str(), deb.matches),
        (fake_deb.sha256.as_str(), fake_deb.sha256.as_str(), shipped.as_str(), false));
    assert_eq!(r.diffoscope_sha256, sha256_hex(&report));
    let stored = s.data_dir.path().join(format!("cas/diffoscope/{}/{}.zst", &r.diffoscope_sha256[..2], r.diffoscope_sha256));
    assert_eq!(zstd::decode_all(&std::fs::read(&stored).unwrap()[..]).unwrap(), report);

    // environment-mismatch: no verdict, the failure budget (2 here) with the retry delay (0s
    // here), parked with the reason in the end.
    let q = s.json(&["rebuild", "request", "hardlink", "--admin-token-file", admin, "--json"], 0);
    assert_eq!(q["queued"].as_u64(), Some(1), "{q}");
    let diffs = ["libc6: 2.36-9 installed, 2.36-8 recorded", "libfoo-dev (= 1.0-1): not installed"];
    let mut j = n.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job.expect("the hardlink job");
    assert_eq!(j.source, "hardlink");
    let e = send(&mut n, mismatch(&j, &[])).await.unwrap_err();
    assert!(e.message().starts_with("environment_differences:"), "{e:?}");
    let mut states = Vec::new();
    loop {
        let r = send(&mut n, mismatch(&j, &diffs)).await.unwrap();
        assert_eq!(r.outcome, "environment-mismatch");
        assert!(r.verdicts.is_empty() && r.differing.is_empty());
        states.push(r.job_state);
        if states.last().map(String::as_str) == Some("parked") || states.len() >= 2 {
            break;
        }
        // The same node may try again: a mismatch is no verdict on the package.
        let again = n.claim(pb::ClaimRequest { wait_seconds: 5, ..Default::default() }).await.unwrap().into_inner().job.expect("the hardlink job again");
        assert_eq!((again.job_id, again.fence), (j.job_id, j.fence + 1));
        j = again;
    }
    // One operator's share of a budget of 2 is 1: its second mismatch is not charged, so it
    // cannot park the job alone; another operator's mismatch does.
    assert_eq!(states, ["queued", "queued"]);
    let other = add_node(s, admin, "bob", "b1");
    let mut o = node(&s.url, Some(&other)).await;
    o.register(register(&other, &["amd64"], 4)).await.unwrap();
    // (bob holds the other queued jobs it is offered: it has the slots.)
    let mut j = o.claim(pb::ClaimRequest { wait_seconds: 5, ..Default::default() }).await.unwrap().into_inner().job.expect("a job for bob");
    for _ in 0..3 {
        if j.source == "hardlink" {
            break;
        }
        j = o.claim(pb::ClaimRequest { wait_seconds: 5, ..Default::default() }).await.unwrap().into_inner().job.expect("a job for bob");
    }
    assert_eq!(j.source, "hardlink");
    assert_eq!(send(&mut o, mismatch(&j, &diffs)).await.unwrap().job_state, "parked");
    let h = s.json(&["build", "history", "hardlink", "--json"], 0);
    let job = &h[0];
    assert_eq!(job["state"], "parked");
    assert!(job["parked_reason"].as_str().unwrap().contains("environment-mismatch"), "{job:#}");
    let attempts = job["attempts"].as_array().unwrap();
    let ended: Vec<&Value> = attempts.iter().filter(|a| a["outcome"] == "environment-mismatch").collect();
    assert_eq!(ended.len(), 3, "{job:#}");
    assert!(ended[1]["message"].as_str().unwrap().contains("not charged to the job"), "{job:#}");
    assert_eq!(ended[0]["differences"], serde_json::json!(diffs));
    let text = s.cli(&["build", "history", "hardlink"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("environment differences:") && text.contains("libfoo-dev (= 1.0-1): not installed"), "{text}");
    let h = s.json(&["build", "history", "0xffff", "--json"], 0);
    let unrepro = h.as_array().unwrap().iter().flat_map(|j| j["attempts"].as_array().unwrap()).find(|a| a["outcome"] == "unreproducible").unwrap();
    assert_eq!(unrepro["differences"], serde_json::json!(["0xffff_0.8-1+b1_amd64.deb"]));
    assert_eq!(unrepro["diffoscope_sha256"].as_str(), Some(sha256_hex(&report).as_str()));
}

const RESULTS_ENV: [(&str, &str); 4] = [
    ("DEBCOVER_ARCHIVE_MIRROR", "file:///srv/mirror/"),
    ("DEBCOVER_VERIFIERS", "1"),
    ("DEBCOVER_MAX_FAILURES", "2"),
    ("DEBCOVER_RETRY_DELAYS", "0s"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_over_grpc_on_sqlite() {
    let s = Server::start_with(None, &RESULTS_ENV);
    results_scenario(&s).await;
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_over_grpc_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let s = Server::start_with(Some(&db.url), &RESULTS_ENV);
    results_scenario(&s).await;
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

/// Registration proves possession of the node key, and every key a node registered stays
/// listed with its validity period (`debcover keys`), beside the coordinator's own key.
async fn keys_scenario(s: &Server) {
    let admin = s.data_dir.path().join("admin.token");
    let admin = admin.to_str().unwrap();
    let token = add_node(s, admin, "alice", "a1");
    let mut n = node(&s.url, Some(&token)).await;

    // Refused: no proof, a proof by another key, a proof for another credential, a stale one.
    let mut reg = register(&token, &["amd64"], 1);
    reg.registration_signature.clear();
    let e = n.register(reg).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("registration_signature: missing"), "{e:?}");
    let mut reg = register(&token, &["amd64"], 1);
    reg.registration_signature = register("dcn_other", &["amd64"], 1).registration_signature;
    let e = n.register(reg).await.unwrap_err();
    assert!(e.message().contains("does not verify"), "{e:?}");
    let mut reg = register(&token, &["amd64"], 1);
    reg.public_key = register("dcn_other", &["amd64"], 1).public_key;
    let e = n.register(reg).await.unwrap_err();
    assert!(e.message().contains("does not verify"), "{e:?}");
    let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let mut reg = register_with_key(&token, &key, &["amd64"], 1);
    reg.registration_time -= 3600;
    let e = n.register(reg).await.unwrap_err();
    assert!(e.message().starts_with("registration_time:"), "{e:?}");
    // Nothing was registered by the refused calls.
    assert_eq!(n.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap_err().code(), Code::FailedPrecondition);
    let keys = s.json(&["keys", "--json"], 0);
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 1, "only the coordinator's key: {keys:#?}");
    assert_eq!(keys[0]["role"], "coordinator");
    assert!(keys[0]["pem"].as_str().unwrap().starts_with("-----BEGIN PUBLIC KEY-----"));
    let pem = std::fs::read_to_string(s.data_dir.path().join("coordinator-key.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));

    // Accepted; registering the same key again changes nothing; a new key closes the old one.
    n.register(register_with_key(&token, &key, &["amd64"], 1)).await.unwrap();
    n.register(register_with_key(&token, &key, &["amd64"], 1)).await.unwrap();
    let keys = s.json(&["keys", "--json"], 0);
    let nodes: Vec<&Value> = keys.as_array().unwrap().iter().filter(|k| k["role"] == "node").collect();
    assert_eq!(nodes.len(), 1, "{keys:#}");
    assert_eq!((nodes[0]["operator"].as_str(), nodes[0]["node"].as_str()), (Some("alice"), Some("a1")));
    assert!(nodes[0]["valid_until"].is_null());
    std::thread::sleep(Duration::from_millis(1100));
    let new = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    n.register(register_with_key(&token, &new, &["amd64"], 1)).await.unwrap();
    let keys = s.json(&["keys", "--json"], 0);
    let nodes: Vec<&Value> = keys.as_array().unwrap().iter().filter(|k| k["role"] == "node").collect();
    assert_eq!(nodes.len(), 2, "{keys:#}");
    let old_id = debcover_formats::intoto::keyid(&hex::encode(key.verifying_key().to_bytes()));
    assert_eq!(nodes[0]["keyid"], old_id.as_str());
    let closed = nodes[0]["valid_until"].as_i64().expect("the old key is closed");
    assert!(closed >= nodes[0]["valid_from"].as_i64().unwrap());
    assert_eq!(nodes[1]["valid_from"].as_i64(), Some(closed));
    assert!(nodes[1]["valid_until"].is_null());
    let text = s.cli(&["keys"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("alice/a1") && text.contains("current") && text.contains(&old_id[..16]), "{text}");

    // Revocation ends the current key; both stay listed.
    s.json(&["node", "revoke", "--operator", "alice", "--name", "a1", "--admin-token-file", admin, "--json"], 0);
    let keys = s.json(&["keys", "--json"], 0);
    let nodes: Vec<&Value> = keys.as_array().unwrap().iter().filter(|k| k["role"] == "node").collect();
    assert_eq!(nodes.len(), 2, "{keys:#}");
    assert!(nodes.iter().all(|k| k["valid_until"].is_i64()), "{keys:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_over_grpc_on_sqlite() {
    let s = Server::start_with(None, &RESULTS_ENV);
    keys_scenario(&s).await;
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_over_grpc_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let s = Server::start_with(Some(&db.url), &RESULTS_ENV);
    keys_scenario(&s).await;
    assert_eq!(s.terminate(), Some(0), "coordinator did not stop cleanly");
}

//! The hostile suite: one test per way a caller or a node could forge the verdict "the fix
//! shipped, and independent rebuilders proved it", each run on SQLite and PostgreSQL where a
//! database is involved. Every test here failed on the code before credentials with roles,
//! signed manifests and immediate revocation (main 07451d3); each says what it defends.

use std::path::Path;
use std::time::{Duration, Instant};

use debcover_proto::v1 as pb;
use debcover_proto::v1::rebuild_nodes_client::RebuildNodesClient;
use debcover_tests::{BearerAuth, Server, describe, pg::TestDatabase, testdata};
use ed25519_dalek::Signer;
use serde_json::{Value, json};
use sha2::Digest;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub(crate) type Node = RebuildNodesClient<InterceptedService<Channel, BearerAuth>>;

fn err(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn buildinfo_dir() -> String {
    testdata().join("buildinfo").to_string_lossy().into_owned()
}

/// One real buildinfo (debrebuild's 0xffff 0.8-1+b1 amd64): one build, one job.
pub(crate) fn one_buildinfo() -> String {
    testdata()
        .join("buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo")
        .to_string_lossy()
        .into_owned()
}

fn builds(s: &Server) -> u64 {
    s.json(&["status", "--json"], 0)["builds"]
        .as_u64()
        .expect("builds")
}

/// A token of `role`, made by the admin, written to a file in the server's data directory.
pub(crate) fn token(s: &Server, name: &str, role: &str) -> String {
    let v = s.json(
        &["token", "add", "--name", name, "--role", role, "--json"],
        0,
    );
    let secret = v["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("dct_"), "{v}");
    let path = s.data_dir.path().join(format!("{name}.token"));
    std::fs::write(&path, &secret).unwrap();
    path.to_string_lossy().into_owned()
}

fn as_token(s: &Server, file: &str, args: &[&str]) -> std::process::Output {
    s.cli_env(args, &[("DEBCOVER_TOKEN_FILE", Some(file))])
}

fn packages_file(dir: &Path) -> String {
    let p = dir.join("Packages");
    std::fs::write(
        &p,
        "Package: evil\nVersion: 1\nArchitecture: amd64\nFilename: pool/e/evil_1_amd64.deb\n",
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

// ------------------------------------------------------------------ 1. unauthenticated writes

/// Defect 1: `IngestBuildinfos`, `IngestArchive` and `CreateCampaign` took no credential.
/// Now each needs its role, the refusal names it, nothing is stored, and the audit trail
/// records who did what.
fn writes_need_a_role(s: &Server) {
    let dir = tempfile::tempdir().unwrap();
    // Anyone who reaches the port: refused, naming the role, and nothing stored.
    let out = s.cli_anonymous(&["ingest", "buildinfo", &buildinfo_dir()]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(err(&out).contains("role ingest"), "{}", describe(&out));
    assert_eq!(builds(s), 0);
    let out = s.cli_anonymous(&[
        "ingest",
        "archive",
        "--suite",
        "sid",
        &packages_file(dir.path()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(err(&out).contains("role ingest"), "{}", describe(&out));
    assert_eq!(s.json(&["status", "--json"], 0)["suites"], json!([]));
    let out = s.cli_anonymous(&[
        "campaign",
        "create",
        "--library",
        "libc6-dev",
        "--fixed",
        "9",
        "--suite",
        "sid",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(err(&out).contains("role campaign"), "{}", describe(&out));
    // A made-up token is unknown.
    let fake = dir.path().join("fake.token");
    std::fs::write(&fake, "dct_0123456789").unwrap();
    let out = as_token(
        s,
        fake.to_str().unwrap(),
        &["ingest", "buildinfo", &buildinfo_dir()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("unknown or revoked credential"),
        "{}",
        describe(&out)
    );

    // Each role does its own job and no other.
    let feeder = token(s, "ci-feeder", "ingest");
    let team = token(s, "security-team", "campaign");
    let out = as_token(s, &team, &["ingest", "buildinfo", &buildinfo_dir()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("needs role ingest")
            && err(&out).contains("token:security-team has role campaign"),
        "{}",
        describe(&out)
    );
    assert_eq!(builds(s), 0);
    let out = as_token(
        s,
        &feeder,
        &["ingest", "buildinfo", "--json", &buildinfo_dir()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stored = builds(s);
    assert!(stored > 10);
    let out = as_token(
        s,
        &feeder,
        &[
            "campaign",
            "create",
            "--library",
            "libc6-dev",
            "--fixed",
            "9",
            "--suite",
            "sid",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("needs role campaign"),
        "{}",
        describe(&out)
    );
    let out = as_token(s, &feeder, &["rebuild", "request", "bash"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("needs role campaign"),
        "{}",
        describe(&out)
    );
    let out = as_token(
        s,
        &feeder,
        &["node", "add", "--operator", "x", "--name", "y"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("needs role admin"), "{}", describe(&out));
    let out = as_token(s, &team, &["rebuild", "request", "bash", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // A node credential is not an ingest credential.
    let node = s.json(
        &[
            "node",
            "add",
            "--operator",
            "alice",
            "--name",
            "a1",
            "--json",
        ],
        0,
    );
    let node_file = dir.path().join("node.token");
    std::fs::write(&node_file, node["token"].as_str().unwrap()).unwrap();
    let out = as_token(
        s,
        node_file.to_str().unwrap(),
        &[
            "ingest",
            "archive",
            "--suite",
            "sid",
            &packages_file(dir.path()),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("has role node"), "{}", describe(&out));

    // Revoked: refused from the next call.
    s.json(&["token", "revoke", "ci-feeder", "--json"], 0);
    let out = as_token(
        s,
        &feeder,
        &[
            "ingest",
            "archive",
            "--suite",
            "sid",
            &packages_file(dir.path()),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(s.json(&["status", "--json"], 0)["suites"], json!([]));
    // Listed with role and last use, never the secret; the audit trail says who did what.
    let listed = s.json(&["token", "list", "--json"], 0);
    let feeder_row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci-feeder")
        .expect("listed");
    assert!(
        feeder_row["revoked_at"].is_i64() && feeder_row["last_used_at"].is_i64(),
        "{listed}"
    );
    assert!(!listed.to_string().contains("dct_"), "{listed}");
    let audit = s.json(&["audit", "--json"], 0);
    let has = |actor: &str, action: &str| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == actor && e["action"] == action)
    };
    assert!(has("token:ci-feeder", "ingest-buildinfos"), "{audit:#}");
    assert!(has("token:security-team", "request-rebuild"), "{audit:#}");
    assert!(
        has("admin", "add-node") && has("admin", "revoke-token") && has("admin", "add-token"),
        "{audit:#}"
    );
    // Only the admin reads the trail.
    let out = as_token(s, &team, &["audit"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn writes_need_a_role_on_sqlite() {
    let s = Server::start(None);
    writes_need_a_role(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_a_role_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let s = Server::start(Some(&db.url));
    tokio::task::block_in_place(|| writes_need_a_role(&s));
}

/// `--closed-reads`: reads need a credential too (any role); the health check stays open.
#[test]
fn closed_reads_need_a_credential() {
    let s = Server::start_with(None, &[("DEBCOVER_CLOSED_READS", "true")]);
    let out = s.cli_anonymous(&["built-with", "libc6-dev"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(err(&out).contains("reads are closed"), "{}", describe(&out));
    assert_eq!(
        s.cli_anonymous(&["campaign", "list"]).status.code(),
        Some(2)
    );
    assert_eq!(s.cli_anonymous(&["status"]).status.code(), Some(0));
    let team = token(&s, "readers", "campaign");
    let out = as_token(&s, &team, &["built-with", "libc6-dev", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // The web views too.
    let url = format!("{}/campaigns", s.web_url());
    let status = |auth: Option<&str>| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url]);
        if let Some(t) = auth {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        String::from_utf8(cmd.output().expect("curl").stdout).unwrap()
    };
    assert_eq!(status(None), "401");
    assert_eq!(
        status(Some(std::fs::read_to_string(&team).unwrap().trim())),
        "200"
    );
}

// ------------------------------------------------------------------ 2. caller-chosen threshold

/// Defect 2: `attestations --export --threshold 1` made the coordinator sign a layout with
/// threshold 1 whatever its k. Now the layout's threshold is at least k.
fn layout_threshold_is_never_below_k(s: &Server) {
    s.json(&["ingest", "buildinfo", "--json", &one_buildinfo()], 0);
    s.json(&["rebuild", "request", "0xffff", "--json"], 0);
    let dir = tempfile::tempdir().unwrap();
    for (asked, signed) in [("1", 2), ("0", 2), ("3", 3)] {
        let export = dir.path().join(format!("export-{asked}"));
        let listed = s.json(
            &[
                "attestations",
                "0xffff",
                "0.8-1+b1",
                "--arch",
                "amd64",
                "--json",
            ],
            0,
        );
        assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
        let m = s.json(
            &[
                "attestations",
                "0xffff",
                "0.8-1+b1",
                "--arch",
                "amd64",
                "--threshold",
                asked,
                "--export",
                export.to_str().unwrap(),
                "--json",
            ],
            0,
        );
        assert_eq!(m["layout_threshold"], signed, "asked {asked}: {m:#}");
        let layout: Value =
            serde_json::from_slice(&std::fs::read(export.join("root.layout")).unwrap()).unwrap();
        assert_eq!(
            layout["signed"]["steps"][0]["threshold"], signed,
            "asked {asked}: {layout:#}"
        );
    }
}

#[test]
fn layout_threshold_is_never_below_k_on_sqlite() {
    let s = Server::start_with(None, &[("DEBCOVER_VERIFIERS", "2")]);
    layout_threshold_is_never_below_k(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_threshold_is_never_below_k_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let s = Server::start_with(Some(&db.url), &[("DEBCOVER_VERIFIERS", "2")]);
    tokio::task::block_in_place(|| layout_threshold_is_never_below_k(&s));
}

// ------------------------------------------------------------------ 3. the verifier's trust root

/// A link for the `rebuild` step signed by `key`, attesting `products`.
fn forged_link(
    key: &ed25519_dalek::SigningKey,
    operator: &str,
    build: &str,
    products: &serde_json::Map<String, Value>,
) -> Vec<u8> {
    use debcover_formats::intoto;
    let products: serde_json::Map<String, Value> = products
        .iter()
        .map(|(n, sha)| (n.clone(), json!({"sha256": sha})))
        .collect();
    let signed = json!({"_type": "link", "name": "rebuild", "materials": {}, "byproducts": {}, "command": [],
        "products": products,
        "environment": {"debcover_operator": operator, "debcover_node": "n", "debcover_build_id": build}});
    let id = intoto::keyid(&hex::encode(key.verifying_key().as_bytes()));
    let sig = key.sign(&intoto::canonical(&signed));
    serde_json::to_vec_pretty(&json!({"signatures": [{"keyid": id, "sig": hex::encode(sig.to_bytes())}], "signed": signed})).unwrap()
}

/// Defect 3: `debcover verify DIR` took keys, artifacts and threshold from the unsigned
/// manifest, and the layout was optional: an export forged from nothing (two made-up
/// operators' keys and links, no layout) verified. Now the user pins the coordinator key and
/// nothing unsigned by it is believed.
#[test]
fn offline_verify_trusts_only_the_pinned_coordinator_key() {
    use debcover_formats::intoto;
    let s = Server::start_with(None, &[("DEBCOVER_VERIFIERS", "2")]);
    s.json(&["ingest", "buildinfo", "--json", &one_buildinfo()], 0);
    s.json(&["rebuild", "request", "0xffff", "--json"], 0);
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("export");
    let m = s.json(
        &[
            "attestations",
            "0xffff",
            "0.8-1+b1",
            "--arch",
            "amd64",
            "--export",
            export.to_str().unwrap(),
            "--json",
        ],
        0,
    );

    // The forgery: two operators' links attesting exactly the expected hashes, their keys, a
    // plain manifest that names them, no layout.
    let build = m["build"].as_str().unwrap().to_owned();
    let artifacts = m["artifacts"].as_object().unwrap().clone();
    assert!(!artifacts.is_empty(), "{m:#}");
    let forged = dir.path().join("forged");
    std::fs::create_dir(&forged).unwrap();
    let (mut keys, mut links) = (vec![], vec![]);
    for (op, seed) in [("mallory", 1u8), ("trudy", 2)] {
        let sk = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        let public = sk.verifying_key().to_bytes();
        let id = intoto::keyid(&hex::encode(public));
        let (kf, lf) = (
            format!("node.{}.pub", &id[..8]),
            format!("rebuild.{}.link", &id[..8]),
        );
        std::fs::write(forged.join(&kf), intoto::public_pem(&public)).unwrap();
        std::fs::write(forged.join(&lf), forged_link(&sk, op, &build, &artifacts)).unwrap();
        keys.push(json!({"file": kf, "keyid": id, "role": "node", "operator": op, "node": "n", "valid_from": 0, "valid_until": null}));
        links.push(json!({"file": lf, "keyid": id, "operator": op, "node": "n", "outcome": "reproducible", "time": 10}));
    }
    let manifest = json!({"format": "debcover-export-v1", "build": build, "source": "0xffff", "version": "0.8-1+b1",
        "architecture": "amd64", "artifacts": artifacts, "layout": null, "layout_threshold": 1, "keys": keys, "links": links});
    std::fs::write(
        forged.join("debcover-export.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let verify = |dir: &Path, extra: &[&str]| {
        let mut args = vec!["verify", dir.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        s.cli_anonymous(&args)
    };
    // Without a trust root: refused, saying what to pin.
    let out = verify(&forged, &["--threshold", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(err(&out).contains("--trust-key"), "{}", describe(&out));
    // The trust root, fetched from the coordinator (out of band for the export).
    let pem = s.cli(&["keys", "--coordinator-pem"]);
    assert!(pem.status.success(), "{}", describe(&pem));
    let trusted = dir.path().join("coordinator.pem");
    std::fs::write(&trusted, &pem.stdout).unwrap();
    // With the real coordinator's key pinned: the forgery is refused (its manifest is unsigned).
    let out = verify(
        &forged,
        &["--threshold", "1", "--trust-key", trusted.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a forged export verified: {}",
        describe(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unsigned"),
        "{}",
        describe(&out)
    );
    // The forgery with the real export's signed manifest and layout copied in: the links'
    // keys are not the layout's functionaries, and the manifest names none of them.
    for f in ["debcover-export.json", "root.layout"] {
        std::fs::copy(export.join(f), forged.join(f)).unwrap();
    }
    let out = verify(
        &forged,
        &["--threshold", "1", "--trust-key", trusted.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // The real export, layout removed from it: refused.
    std::fs::remove_file(export.join("root.layout")).unwrap();
    let out = verify(&export, &["--trust-key", trusted.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // A key that is not the coordinator's, pinned: nothing verifies.
    let other = dir.path().join("other.pem");
    std::fs::write(&other, intoto::public_pem(&[7; 32])).unwrap();
    let out = verify(&forged, &["--trust-key", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}

// ------------------------------------------------------------------ 4. attribution

pub(crate) async fn node_client(url: &str, token: &str) -> Node {
    let channel = Channel::from_shared(url.to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    RebuildNodesClient::with_interceptor(channel, BearerAuth(token.to_owned()))
}

pub(crate) fn key_of(token: &str) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&sha2::Sha256::digest(token.as_bytes()).into())
}

pub(crate) async fn registered(s: &Server, operator: &str, name: &str) -> (Node, ed25519_dalek::SigningKey) {
    registered_with(s, operator, name, 1).await
}

pub(crate) async fn registered_with(s: &Server, operator: &str, name: &str, slots: u32) -> (Node, ed25519_dalek::SigningKey) {
    let v = s.json(
        &[
            "node",
            "add",
            "--operator",
            operator,
            "--name",
            name,
            "--json",
        ],
        0,
    );
    let token = v["token"].as_str().unwrap().to_owned();
    let key = key_of(&token);
    let (time, signature) = debcover_tests::registration_proof(&token, &key);
    let mut n = node_client(&s.url, &token).await;
    n.register(pb::RegisterRequest {
        public_key: debcover_formats::intoto::openssh_public(
            &key.verifying_key().to_bytes(),
            "test",
        ),
        architectures: vec!["amd64".into()],
        backends: vec!["local".into()],
        slots,
        registration_time: time,
        registration_signature: signature,
        ..Default::default()
    })
    .await
    .unwrap();
    (n, key)
}

/// The node's link for `job`: products = the buildinfo's files, signed by `keys` in order.
pub(crate) fn link_for(job: &pb::Job, keys: &[&ed25519_dalek::SigningKey]) -> (Vec<pb::Artifact>, Vec<u8>) {
    let artifacts = debcover_tests::artifacts(&job.buildinfo);
    let link = debcover_tests::rebuild_link(job, &artifacts, keys);
    (artifacts, link)
}

/// A built report with the produced buildinfo (the original's text) too.
pub(crate) fn report(job: &pb::Job, artifacts: Vec<pb::Artifact>, attestation: Vec<u8>) -> Vec<pb::ReportChunk> {
    let mut v = debcover_tests::built_report(job, artifacts, attestation);
    v.insert(1, pb::ReportChunk { chunk: Some(pb::report_chunk::Chunk::Buildinfo(job.buildinfo.clone())) });
    v
}

/// Defect 4: a link carrying a second signature (another node's key id first) was accepted
/// and exported under that other key, shadowing its link. Now a link carries exactly one
/// signature, the reporting node's, and exports name the registered key.
async fn links_are_attributed_to_the_registered_key(s: &Server) {
    s.json(&["ingest", "buildinfo", "--json", &one_buildinfo()], 0);
    s.json(
        &["rebuild", "request", "0xffff", "--arch", "amd64", "--json"],
        0,
    );
    let (mut mallory, mallory_key) = registered(s, "mallory", "m1").await;
    let (_alice, alice_key) = registered(s, "alice", "a1").await;
    let job = mallory
        .claim(pb::ClaimRequest { wait_seconds: 5, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .job
        .expect("a job");
    // Alice's key id first (with a junk signature), mallory's valid one second.
    let (artifacts, mut link) = link_for(&job, &[&mallory_key]);
    let mut block: Value = serde_json::from_slice(&link).unwrap();
    let alice_id =
        debcover_formats::intoto::keyid(&hex::encode(alice_key.verifying_key().as_bytes()));
    let mallory_sig = block["signatures"][0].clone();
    block["signatures"] = json!([{"keyid": alice_id, "sig": "00".repeat(64)}, mallory_sig]);
    link = serde_json::to_vec(&block).unwrap();
    let e = mallory
        .report_result(tokio_stream::iter(report(&job, artifacts.clone(), link)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("exactly one"), "{e:?}");
    // Signed once, by mallory: accepted and exported under mallory's registered key.
    let (artifacts, link) = link_for(&job, &[&mallory_key]);
    let r = mallory
        .report_result(tokio_stream::iter(report(&job, artifacts, link)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.outcome, "reproducible", "{r:?}");
    let listed = s.json(
        &[
            "attestations",
            "0xffff",
            &job.version,
            "--arch",
            "amd64",
            "--json",
        ],
        0,
    );
    let atts = listed[0]["attestations"].as_array().unwrap();
    let mallory_id =
        debcover_formats::intoto::keyid(&hex::encode(mallory_key.verifying_key().as_bytes()));
    assert_eq!(atts.len(), 1, "{listed:#}");
    assert_eq!(
        (atts[0]["operator"].as_str(), atts[0]["keyid"].as_str()),
        (Some("mallory"), Some(mallory_id.as_str())),
        "{listed:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_attributed_to_the_registered_key_on_sqlite() {
    let s = Server::start_with(None, &[("DEBCOVER_VERIFIERS", "2")]);
    links_are_attributed_to_the_registered_key(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_are_attributed_to_the_registered_key_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let s = Server::start_with(Some(&db.url), &[("DEBCOVER_VERIFIERS", "2")]);
    links_are_attributed_to_the_registered_key(&s).await;
}

// ------------------------------------------------------------------ 6. revocation

/// Defect 6: a revoked node waiting in a claim was leased a job queued after the revoke.
/// Now its waiting claim ends empty, and every later call is refused.
async fn revocation_stops_a_waiting_claim(s: &Server) {
    s.json(&["ingest", "buildinfo", "--json", &buildinfo_dir()], 0);
    let (mut n, _) = registered(s, "alice", "a1").await;
    let waiting = tokio::spawn(async move {
        let r = n.claim(pb::ClaimRequest { wait_seconds: 8, ..Default::default() }).await;
        (r.map(|r| r.into_inner().job), n)
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    s.json(
        &[
            "node",
            "revoke",
            "--operator",
            "alice",
            "--name",
            "a1",
            "--json",
        ],
        0,
    );
    let started = Instant::now();
    s.json(
        &["rebuild", "request", "0xffff", "--arch", "amd64", "--json"],
        0,
    );
    let (answer, mut n) = waiting.await.unwrap();
    match answer {
        Ok(None) => {}
        Err(e) => assert_eq!(e.code(), Code::Unauthenticated, "{e:?}"),
        Ok(Some(j)) => panic!(
            "a revoked node was leased job {} ({:?} after the request)",
            j.job_id,
            started.elapsed()
        ),
    }
    let e = n
        .claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // The job is still queued for others.
    let q = s.json(
        &["queue", "--json", "--state", "queued", "--state", "leased"],
        0,
    );
    let jobs = q["jobs"].as_array().unwrap();
    assert!(jobs.iter().all(|j| j["state"] == "queued"), "{q:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_stops_a_waiting_claim_on_sqlite() {
    let s = Server::start(None);
    revocation_stops_a_waiting_claim(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_stops_a_waiting_claim_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let s = Server::start(Some(&db.url));
    revocation_stops_a_waiting_claim(&s).await;
}

// ------------------------------------------------------------------ 7. fair budgets

fn queue(s: &Server) -> Vec<Value> {
    let q = s.json(&["queue", "--json", "--state", "queued", "--state", "leased", "--state", "verified", "--state", "parked"], 0);
    q["jobs"].as_array().unwrap().clone()
}

async fn fail(n: &mut Node, job: &pb::Job, code: &str) -> pb::ReportResponse {
    use pb::report_chunk::Chunk;
    let header = pb::ReportHeader {
        job_id: job.job_id,
        fence: job.fence,
        result: "failed".into(),
        failure_code: code.into(),
        message: format!("{code} on purpose"),
        ..Default::default()
    };
    n.report_result(tokio_stream::iter(vec![pb::ReportChunk { chunk: Some(Chunk::Header(header)) }])).await.unwrap().into_inner()
}

/// Defect 7: every failure counted against the job, infrastructure failures retried at once,
/// and the same node could claim the job straight back: one node (an honest one whose mirror
/// is down) parked everything it touched. Now a node's infrastructure failures are its own
/// (strikes, then quarantine, shown by `node list`), it does not get back a job it just failed,
/// one operator cannot use up a job's budget, and an admin releases parked jobs.
async fn one_node_cannot_park_the_queue(s: &Server) {
    s.json(&["ingest", "buildinfo", "--json", &buildinfo_dir()], 0);
    s.json(&["rebuild", "request", "bash", "--json"], 0);
    s.json(&["rebuild", "request", "0xffff", "--json"], 0);
    let jobs = queue(s).len();
    assert!(jobs >= 4, "{jobs}");
    let (mut broken, _) = registered(s, "mallory", "m1").await;
    // Its mirror is down: every job it takes fails for infrastructure reasons.
    let mut failed = std::collections::BTreeSet::new();
    for i in 0..3 {
        let job = broken.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job;
        let job = job.unwrap_or_else(|| panic!("claim {i}: nothing"));
        assert!(failed.insert(job.job_id), "job {} given back to the node that just failed it", job.job_id);
        let r = fail(&mut broken, &job, "infrastructure").await;
        assert_eq!(r.job_state, "queued", "{r:?}");
    }
    // No job was charged, none parked; the node is quarantined, and says so.
    let q = queue(s);
    assert!(q.iter().all(|j| j["state"] == "queued" && j["failures"] == 0), "{q:#?}");
    assert!(broken.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job.is_none(), "quarantined");
    let nodes = s.json(&["node", "list", "--json"], 0);
    let m1 = nodes.as_array().unwrap().iter().find(|n| n["name"] == "m1").unwrap();
    assert!(m1["quarantined_until"].is_i64() && m1["quarantines"] == 1, "{m1:#}");
    let text = String::from_utf8_lossy(&s.cli(&["node", "list"]).stdout).into_owned();
    assert!(text.contains("quarantined until"), "{text}");
    // Another operator's node takes the failed jobs at once.
    let (mut bob, _) = registered(s, "bob", "b1").await;
    let job = bob.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job.expect("a job for bob");
    assert!(failed.contains(&job.job_id), "the failed jobs come first: {}", job.job_id);

    // A package failure: one operator's share of a budget of 2 is 1; bob's second failure is
    // not charged, so bob alone cannot park it; carol's failure parks it.
    assert_eq!(fail(&mut bob, &job, "build-failed").await.job_state, "queued");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = bob.claim(pb::ClaimRequest { wait_seconds: 5, ..Default::default() }).await.unwrap().into_inner().job.expect("bob again");
    assert_eq!(again.job_id, job.job_id);
    assert_eq!(fail(&mut bob, &again, "build-failed").await.job_state, "queued", "one operator parked a job");
    let (mut carol, _) = registered_with(s, "carol", "c1", 16).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut theirs = None;
    for _ in 0..jobs {
        let j = carol.claim(pb::ClaimRequest { wait_seconds: 2, ..Default::default() }).await.unwrap().into_inner().job.expect("a job for carol");
        // Others are held (carol has slots enough) until the one bob failed comes.
        if j.job_id == job.job_id {
            theirs = Some(j);
            break;
        }
    }
    let theirs = theirs.expect("carol reached the job");
    assert_eq!(fail(&mut carol, &theirs, "build-failed").await.job_state, "parked");
    // Released by the admin: queued again with fresh budgets, and audited.
    let out = s.json(&["rebuild", "release", "--job", &job.job_id.to_string(), "--json"], 0);
    assert_eq!(out["released"], json!([job.job_id]), "{out}");
    let j = queue(s).into_iter().find(|j| j["id"] == job.job_id).unwrap();
    assert_eq!((j["state"].as_str(), j["failures"].as_u64()), (Some("queued"), Some(0)), "{j:#}");
    let audit = s.json(&["audit", "--json"], 0);
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "release-parked"), "{audit:#}");
}

const BUDGET: [(&str, &str); 3] = [("DEBCOVER_MAX_FAILURES", "2"), ("DEBCOVER_RETRY_DELAYS", "1s"), ("DEBCOVER_VERIFIERS", "2")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_cannot_park_the_queue_on_sqlite() {
    let s = Server::start_with(None, &BUDGET);
    one_node_cannot_park_the_queue(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_cannot_park_the_queue_on_postgres() {
    let Some(db) = TestDatabase::create().await else { return };
    let s = Server::start_with(Some(&db.url), &BUDGET);
    one_node_cannot_park_the_queue(&s).await;
}

// ------------------------------------------------------------------ signed buildinfos

/// `gpg` in its own home directory (never the user's).
struct Gpg(tempfile::TempDir);

impl Gpg {
    fn new() -> Option<Gpg> {
        let home = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("gpg").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
        if !ok {
            assert!(!debcover_tests::in_ci(), "gpg is required under CI (apt-get install gnupg)");
            eprintln!("SKIPPING: no gpg");
            return None;
        }
        Some(Gpg(home))
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new("gpg")
            .env("GNUPGHOME", self.0.path())
            .args(["--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .output()
            .expect("gpg");
        assert!(out.status.success(), "gpg {args:?}: {}", describe(&out));
        out
    }
    /// A new signing key; its fingerprint as gpg computes it.
    fn key(&self, uid: &str, algo: &str) -> String {
        self.run(&["--quick-gen-key", uid, algo, "sign", "never"]);
        let out = self.run(&["--with-colons", "--list-keys", uid]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines().find(|l| l.starts_with("fpr:")).and_then(|l| l.split(':').nth(9)).expect("fpr").to_owned()
    }
    fn export(&self, uid: &str, to: &Path) {
        let out = self.run(&["--armor", "--export", uid]);
        std::fs::write(to, out.stdout).unwrap();
    }
    fn clearsign(&self, uid: &str, from: &Path, to: &Path) {
        self.run(&["--local-user", uid, "--output", to.to_str().unwrap(), "--clearsign", from.to_str().unwrap()]);
    }
    /// What gpg says signed `file` ("using RSA key FPR"), with no key to check it.
    fn issuer(&self, file: &Path) -> String {
        let out = std::process::Command::new("gpg").env("GNUPGHOME", self.0.path()).arg("--verify").arg(file).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        err.lines().find_map(|l| l.split(" key ").nth(1).filter(|_| l.contains("using"))).expect("issuer").trim().to_owned()
    }
}

/// Buildinfo signatures checked with the configured keyrings (keys made here with gpg, ed25519
/// and RSA; real third-party signed buildinfos whose keys are unknown): the verified signer is
/// stored and shown; `known` refuses unsigned and unknown signers; a bad signature is refused
/// under every policy. Failed on 07451d3: no `--buildinfo-keyring`, no signer.
fn signed_buildinfos_are_checked(db: Option<&str>) {
    let Some(gpg) = Gpg::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ed = gpg.key("Buildd Ed <buildd-ed@example.org>", "ed25519");
    let rsa = gpg.key("Buildd Rsa <buildd-rsa@example.org>", "rsa3072");
    let ring_ed = dir.path().join("ed.asc");
    let ring_rsa = dir.path().join("rsa.asc");
    gpg.export("buildd-ed@example.org", &ring_ed);
    gpg.export("buildd-rsa@example.org", &ring_rsa);
    // Two real unsigned buildinfos, signed here; one signed, then altered.
    let plain = |name: &str| testdata().join("buildinfo").join(name);
    let by_ed = dir.path().join("hardlink.buildinfo");
    let by_rsa = dir.path().join("sphinx.buildinfo");
    let altered = dir.path().join("pycairo.buildinfo");
    gpg.clearsign("buildd-ed@example.org", &plain("aptly__hardlink_0.2.1_amd64.buildinfo"), &by_ed);
    gpg.clearsign("buildd-rsa@example.org", &plain("devscripts__sphinx_1.7.2-1_amd64.buildinfo"), &by_rsa);
    gpg.clearsign("buildd-ed@example.org", &plain("meld__pycairo_1.26.1-2_amd64.buildinfo"), &altered);
    let text = std::fs::read_to_string(&altered).unwrap().replacen("Source: pycairo", "Source: pycairo-evil", 1);
    std::fs::write(&altered, text).unwrap();
    // A real third-party signed buildinfo: its key is in no keyring here.
    let foreign = testdata().join("buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo");
    let foreign_issuer = gpg.issuer(&foreign);
    let unsigned = plain("riscv32__mmdebstrap_1.3.5-1.1yubos_amd64.buildinfo");

    let keyrings = format!("{}:{}", ring_ed.display(), ring_rsa.display());
    let env = [("DEBCOVER_BUILDINFO_KEYRINGS", keyrings.as_str()), ("DEBCOVER_SIGNATURE_POLICY", "known")];
    let s = Server::start_with(db, &env);
    let ingest = |f: &Path| s.cli(&["ingest", "buildinfo", "--json", f.to_str().unwrap()]);
    for (f, fpr, uid) in [(&by_ed, &ed, "Buildd Ed"), (&by_rsa, &rsa, "Buildd Rsa")] {
        let out = ingest(f);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let source = if f == &by_ed { "hardlink" } else { "sphinx" };
        let shown = s.json(&["build", "show", source, "--json"], 0);
        let signer = shown.to_string();
        assert!(signer.contains(fpr.as_str()) && signer.contains(uid), "signer {fpr} not shown: {shown:#}");
    }
    let refused = |f: &Path, why: &str| {
        let out = ingest(f);
        assert_eq!(out.status.code(), Some(1), "{}: {}", f.display(), describe(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v.to_string().contains(why), "{}: {v:#}", f.display());
    };
    refused(&foreign, &foreign_issuer);
    refused(&foreign, "none of the configured keyrings");
    refused(&unsigned, "not signed");
    refused(&altered, "does not verify");
    assert_eq!(builds(&s), 2, "nothing refused was stored");
    drop(s);

    // Policy any (the default) with the keyrings: unknown and unsigned accepted without a
    // signer, the altered one still refused.
    let s = Server::start_with(db, &[("DEBCOVER_BUILDINFO_KEYRINGS", keyrings.as_str())]);
    for f in [&foreign, &unsigned] {
        let out = s.cli(&["ingest", "buildinfo", "--json", f.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    }
    let shown = s.json(&["build", "show", "0xffff", "--json"], 0);
    assert!(shown.to_string().contains("\"signer\":null"), "{shown:#}");
    let out = s.cli(&["ingest", "buildinfo", "--json", altered.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // A keyring that is not one is named at start.
    let junk = dir.path().join("junk.asc");
    std::fs::write(&junk, "not a key").unwrap();
    let out = std::process::Command::new(debcover_tests::binary("debcover"))
        .args(["serve", "--listen", "127.0.0.1:0", "--http-listen", "off", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--buildinfo-keyring")
        .arg(&junk)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(err(&out).contains("junk.asc"), "{}", describe(&out));
}

#[test]
fn signed_buildinfos_are_checked_on_sqlite() {
    signed_buildinfos_are_checked(None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_buildinfos_are_checked_on_postgres() {
    let Some(db) = TestDatabase::create().await else { return };
    tokio::task::block_in_place(|| signed_buildinfos_are_checked(Some(&db.url)));
}

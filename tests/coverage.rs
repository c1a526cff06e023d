//! Coverage end to end, on the campaign fixture's real packages: a real `debcover serve`
//! (SQLite and PostgreSQL) follows the libvuln campaign from the vulnerable archive to the
//! binNMUs, queues the builds that fixed items, and two operators' nodes, driven here over
//! real gRPC, report results signed with their registered ed25519 keys. libmid's build,
//! reproduced by both with the bytes the archive ships, makes the item `covered` by itself
//! (on the report, no status call in between) with both attestations as evidence; app-c's,
//! where the operators produced different bytes, stays `fixed-unverified` flagged
//! `disagreement` with both sides; app-a, rebuilt against the vulnerable version, says
//! `still-vulnerable`.
//!
//! Corroboration: bookworm's real lego (Go) and hexyl (Rust) binaries, read by the bounded
//! .deb reader, against Installed-Build-Depends as a buildinfo records them.

use std::path::PathBuf;
use std::process::Command;

use debcover_proto::v1 as pb;
use debcover_proto::v1::rebuild_nodes_client::RebuildNodesClient;
use debcover_tests::{BearerAuth, Server, fixture_deb, in_ci, pg::TestDatabase, workspace};
use ed25519_dalek::SigningKey;
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Node = RebuildNodesClient<InterceptedService<Channel, BearerAuth>>;

fn fixture() -> Option<PathBuf> {
    let out = workspace().join("target/debcover-fixtures/campaign");
    match Command::new("sh").arg(workspace().join("tests/fixtures/campaign/build.sh")).arg(&out).status() {
        Ok(s) if s.success() => Some(out),
        other => {
            let why = format!("building the campaign fixture failed: {other:?}");
            if in_ci() {
                panic!("{why}");
            }
            eprintln!("SKIPPING: {why} (run tests/fixtures/setup-debian-build.sh hello as root)");
            None
        }
    }
}

/// The OpenSSH form of an ed25519 public key, as a node registers it.
fn openssh(key: &SigningKey) -> String {
    debcover_formats::intoto::openssh_public(key.verifying_key().as_bytes(), "coverage-test")
}

/// A built result with these artifacts, signed as the in-toto link of this lease.
fn signed_report(job: &pb::Job, artifacts: Vec<pb::Artifact>, key: &SigningKey) -> Vec<pb::ReportChunk> {
    let link = debcover_tests::rebuild_link(job, &artifacts, &[key]);
    debcover_tests::built_report(job, artifacts, link)
}

async fn operator_node(s: &Server, operator: &str, key: &SigningKey) -> Node {
    let admin = s.data_dir.path().join("admin.token");
    let v = s.json(
        &["node", "add", "--operator", operator, "--name", &format!("{operator}1"), "--admin-token-file",
          admin.to_str().unwrap(), "--json"],
        0,
    );
    let token = v["token"].as_str().expect("token").to_owned();
    let channel = Channel::from_shared(s.url.clone()).unwrap().connect().await.unwrap();
    let mut n = RebuildNodesClient::with_interceptor(channel, BearerAuth(token.clone()));
    let (time, signature) = debcover_tests::registration_proof(&token, key);
    n.register(pb::RegisterRequest {
        public_key: openssh(key),
        registration_time: time,
        registration_signature: signature,
        architectures: vec!["amd64".into(), "arm64".into(), "i386".into()],
        backends: vec!["local".into()],
        slots: 4,
        ..Default::default()
    })
    .await
    .unwrap();
    n
}

/// Every job this node can claim now, by source.
async fn claim_all(n: &mut Node) -> Vec<pb::Job> {
    let mut jobs = Vec::new();
    while let Some(j) = n.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job {
        jobs.push(j);
    }
    jobs.sort_by(|a, b| a.source.cmp(&b.source));
    jobs
}

fn item<'a>(st: &'a Value, source: &str) -> &'a Value {
    st["items"].as_array().unwrap().iter().find(|i| i["source"] == source).unwrap_or_else(|| panic!("{source}: {st:#}"))
}

async fn scenario(s: &Server, dir: &std::path::Path) {
    let stage = |n: u32| dir.join(format!("stage{n}"));
    let packages = |n: u32| dir.join(format!("stage{n}/Packages"));
    s.json(&["ingest", "archive", "--suite", "sid", "--json", packages(1).to_str().unwrap()], 0);
    s.json(&["ingest", "buildinfo", "--json", stage(1).to_str().unwrap()], 0);
    let c = s.json(&["campaign", "create", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--json"], 0);
    let id = c["campaign"]["id"].to_string();
    let st = s.json(&["campaign", "status", &id, "--json"], 0);
    assert_eq!(item(&st, "libmid")["coverage"], "not-shipped-yet", "{st:#}");

    // The binNMUs ship with their buildinfos: libmid and app-c fixed, app-a still vulnerable.
    s.json(&["ingest", "archive", "--suite", "sid", "--json", packages(2).to_str().unwrap()], 0);
    s.json(&["ingest", "buildinfo", "--json", stage(2).to_str().unwrap()], 0);
    let st = s.json(&["campaign", "status", &id, "--json"], 0);
    assert_eq!((item(&st, "app-a")["state"].as_str(), item(&st, "app-a")["coverage"].as_str()),
        (Some("still-vulnerable"), Some("still-vulnerable")), "{st:#}");
    for src in ["libmid", "app-c"] {
        let i = item(&st, src);
        assert_eq!((i["state"].as_str(), i["coverage"].as_str()), (Some("fixed-unverified"), Some("unverified")), "{st:#}");
    }

    // Two operators claim the campaign's verification jobs.
    let (ka, kb) = (SigningKey::from_bytes(&[11; 32]), SigningKey::from_bytes(&[12; 32]));
    let mut alice = operator_node(s, "alice", &ka).await;
    let mut bob = operator_node(s, "bob", &kb).await;
    // A job is leased to one node at a time: alice first. She reproduces both with the bytes
    // the archive ships.
    let ja = claim_all(&mut alice).await;
    let names = |js: &[pb::Job]| js.iter().map(|j| j.source.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ja), ["app-c", "libmid"]);
    for j in &ja {
        let r = alice.report_result(tokio_stream::iter(signed_report(j, debcover_tests::artifacts(&j.buildinfo), &ka))).await.unwrap().into_inner();
        assert_eq!((r.outcome.as_str(), r.job_state.as_str()), ("reproducible", "queued"), "{r:?}");
    }
    let st = s.json(&["campaign", "status", &id, "--json"], 0);
    let libmid = item(&st, "libmid");
    assert_eq!(libmid["coverage"], "unverified", "{st:#}");
    assert!(libmid["reason"].as_str().unwrap().contains("1 attested reproduction(s) by distinct operators so far"), "{st:#}");
    // Then bob: other bytes for app-c's .deb, the same bytes for libmid (the k-th attestation).
    let jb = claim_all(&mut bob).await;
    assert_eq!(names(&jb), ["app-c", "libmid"]);
    let mut other = debcover_tests::artifacts(&jb[0].buildinfo);
    let deb = other.iter().position(|a| a.name.ends_with(".deb")).expect("a .deb");
    other[deb].sha256 = "0".repeat(64);
    let r = bob.report_result(tokio_stream::iter(signed_report(&jb[0], other.clone(), &kb))).await.unwrap().into_inner();
    assert_eq!(r.outcome, "unreproducible");
    let r = bob.report_result(tokio_stream::iter(signed_report(&jb[1], debcover_tests::artifacts(&jb[1].buildinfo), &kb))).await.unwrap().into_inner();
    assert_eq!((r.outcome.as_str(), r.job_state.as_str()), ("reproducible", "verified"));

    // The report path moved the items: the events are there before any status call.
    let ev = s.json(&["campaign", "events", &id, "--json"], 0);
    let covered = ev
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "covered")
        .unwrap_or_else(|| panic!("libmid covered on the report: {ev:#}"));
    assert!(covered["item"].as_str().unwrap().starts_with("libmid/"), "{covered:#}");
    let evidence = covered["evidence"].to_string();
    assert!(evidence.contains("alice/alice1") && evidence.contains("bob/bob1"), "both attestations as evidence: {covered:#}");
    assert!(covered["reason"].as_str().unwrap().contains("attested rebuilds by alice/alice1, bob/bob1"), "{covered:#}");

    let st = s.json(&["campaign", "status", &id, "--json"], 0);
    let libmid = item(&st, "libmid");
    assert_eq!((libmid["state"].as_str(), libmid["coverage"].as_str()), (Some("covered"), Some("covered")), "{st:#}");
    let app_c = item(&st, "app-c");
    assert_eq!((app_c["state"].as_str(), app_c["coverage"].as_str()), (Some("fixed-unverified"), Some("disagreement")), "{st:#}");
    let why = app_c["reason"].as_str().unwrap();
    assert!(why.contains("alice/alice1") && why.contains("bob/bob1") && why.contains(&"0".repeat(16)), "both sides: {why}");
    assert_eq!(st["coverage"]["covered"], 1, "{st:#}");
    assert_eq!(st["coverage"]["disagreement"], 1, "{st:#}");
    assert_eq!(st["coverage"]["still-vulnerable"], 1, "{st:#}");
    let text = s.cli(&["campaign", "status", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("COVERAGE") && text.contains("covered 1"), "{text}");
    // The history flags the disagreement with both sides.
    let h = s.json(&["build", "history", "app-c", "--json"], 0);
    let d = h[0]["disagreements"][0].as_str().unwrap_or_else(|| panic!("{h:#}"));
    assert!(d.contains(&other[deb].name) && d.contains("alice/alice1") && d.contains("bob/bob1"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_item_covered_on_attested_rebuilds_sqlite() {
    let Some(dir) = fixture() else { return };
    let s = Server::start_with(None, &[("DEBCOVER_VERIFIERS", "2")]);
    scenario(&s, &dir).await;
    assert_eq!(s.terminate(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_item_covered_on_attested_rebuilds_postgres() {
    let Some(dir) = fixture() else { return };
    let Some(db) = TestDatabase::create().await else { return };
    let s = Server::start_with(Some(&db.url), &[("DEBCOVER_VERIFIERS", "2")]);
    scenario(&s, &dir).await;
    assert_eq!(s.terminate(), Some(0));
}

/// Every ELF file of a .deb with what it says, read within the default limits.
fn elf_infos(deb: &std::path::Path) -> Vec<(String, debcover_formats::embedded::ElfInfo)> {
    use debcover_formats::{deb, embedded};
    let mut out = Vec::new();
    let file = std::io::BufReader::new(std::fs::File::open(deb).unwrap());
    deb::for_each_elf(file, &deb::Limits::default(), |e| out.push((e.path.to_owned(), embedded::inspect_elf(e.bytes).unwrap())))
        .unwrap();
    out
}

fn ibd(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

/// bookworm's lego (Go) and hexyl (Rust), as the archive ships them, against the
/// Installed-Build-Depends their builds would record: the toolchain each embeds agrees with
/// the installed one and disagrees with any other.
#[test]
fn binaries_corroborate_the_buildinfo_on_real_lego_and_hexyl() {
    use debcover_core::rebuild::corroborate::against_buildinfo;
    use debcover_formats::corroborate::Verdict;
    let (Some(lego), Some(hexyl)) = (fixture_deb("lego"), fixture_deb("hexyl")) else { return };
    let infos = elf_infos(&lego);
    let (path, info) = infos.iter().find(|(p, _)| p == "usr/bin/lego").expect("usr/bin/lego");
    let installed = ibd(&[("golang-1.19-go", "1.19.5-1"), ("golang-1.19-src", "1.19.5-1"), ("libc6-dev", "2.36-8")]);
    let f = against_buildinfo(path, info, &installed);
    let go = f.iter().find(|f| f.subject == "go toolchain").expect("a go toolchain finding");
    assert_eq!((go.embedded.as_str(), go.verdict), ("go1.19.5", Verdict::Agrees), "{go}");
    assert_eq!(go.to_string(), "binary usr/bin/lego embeds go toolchain go1.19.5; declaration names Installed-Build-Depends: golang-1.19 1.19.5-1: agrees");
    // A buildinfo that recorded another Go: reported, with both versions.
    let f = against_buildinfo(path, info, &ibd(&[("golang-1.19-go", "1.19.4-1")]));
    let go = f.iter().find(|f| f.subject == "go toolchain").unwrap();
    assert_eq!(go.verdict, Verdict::Disagrees, "{go}");
    assert!(go.to_string().contains("golang-1.19 1.19.4-1: DISAGREES"), "{go}");
    // No Go toolchain recorded at all.
    let f = against_buildinfo(path, info, &ibd(&[("libc6-dev", "2.36-8")]));
    assert_eq!(f.iter().find(|f| f.subject == "go toolchain").unwrap().verdict, Verdict::Undeclared);

    let infos = elf_infos(&hexyl);
    let (path, info) = infos.iter().find(|(p, _)| p == "usr/bin/hexyl").expect("usr/bin/hexyl");
    let f = against_buildinfo(path, info, &ibd(&[("rustc", "1.63.0+dfsg1-2"), ("cargo", "0.66.0+ds1-1")]));
    let rustc = f.iter().find(|f| f.subject == "rustc").expect("a rustc finding");
    assert_eq!((rustc.embedded.as_str(), rustc.verdict), ("1.63.0", Verdict::Agrees), "{rustc}");
    let f = against_buildinfo(path, info, &ibd(&[("rustc", "1.65.0+dfsg1-2")]));
    assert_eq!(f.iter().find(|f| f.subject == "rustc").unwrap().verdict, Verdict::Disagrees);
}

//! Hostile conditions: inputs, load and crashes that must not exhaust the coordinator, lose an
//! acknowledged result or count one twice. Each test failed on the code before bounded
//! resources and durable results (main f2233b5); each says what it defends. The node side
//! (a build's environment and user, downloads, a killed node's builds) is tested in the
//! rebuilder crate and in tests/rebuilder.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use debcover_proto::v1 as pb;
use debcover_proto::v1::coordinator_client::CoordinatorClient;
use debcover_proto::v1::rebuild_nodes_client::RebuildNodesClient;
use debcover_tests::{BearerAuth, Server, describe, pg::TestDatabase};
use tonic::Code;
use tonic::transport::Channel;

use super::hostile::{buildinfo_dir, key_of, link_for, registered, report, token};

// ------------------------------------------------------------------ registration

/// Defect: `Register` accepted any number of architectures, backends and tags; enough of them
/// broke SQLite's variable limit inside the scheduler's shared transaction (failing other
/// nodes' results in the same batch) and bloated every claim. Now each list is bounded, the
/// refusal names the field, and nothing is stored.
async fn registration_fields_are_bounded(s: &Server) {
    let (mut honest, _) = registered(s, "alice", "a1").await;
    let v = s.json(&["node", "add", "--operator", "mallory", "--name", "m1", "--json"], 0);
    let secret = v["token"].as_str().unwrap().to_owned();
    let key = key_of(&secret);
    let channel = Channel::from_shared(s.url.clone()).unwrap().connect().await.unwrap();
    let mut m = RebuildNodesClient::with_interceptor(channel, BearerAuth(secret.clone()))
        .max_encoding_message_size(64 << 20);
    for (field, n) in [("tags", 100_000usize), ("architectures", 40_000), ("backends", 5_000)] {
        let (time, signature) = debcover_tests::registration_proof(&secret, &key);
        let many: Vec<String> = (0..n).map(|i| format!("x{i}")).collect();
        let mut r = pb::RegisterRequest {
            public_key: debcover_formats::intoto::openssh_public(&key.verifying_key().to_bytes(), "test"),
            architectures: vec!["amd64".into()],
            backends: vec!["local".into()],
            slots: 1,
            registration_time: time,
            registration_signature: signature,
            ..Default::default()
        };
        match field {
            "tags" => r.tags = many,
            "architectures" => r.architectures = many,
            _ => r.backends = many,
        }
        let e = m.register(r).await.expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().contains(field) && e.message().contains("at most"), "{field}: {e:?}");
    }
    let nodes = s.json(&["node", "list", "--json"], 0);
    let m1 = nodes.as_array().unwrap().iter().find(|n| n["name"] == "m1").unwrap().clone();
    assert!(m1["tags"].as_array().is_none_or(Vec::is_empty), "{m1:#}");
    // The honest node is served as before.
    honest.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.expect("claim of an honest node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_fields_are_bounded_on_sqlite() {
    registration_fields_are_bounded(&Server::start(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_fields_are_bounded_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    registration_fields_are_bounded(&Server::start(Some(&db.url))).await;
}

// ------------------------------------------------------------------ lost claim answers

/// Defect: a claim whose answer was lost in transit left the job leased to a node that did not
/// know it: the job waited for the lease to expire and the attempt ended as `node-lost`. Now a
/// node retries a claim with the same claim id and gets the same lease back while it lasts; a
/// new claim id gets other work.
async fn a_retried_claim_gets_the_same_lease(s: &Server) {
    s.json(&["ingest", "buildinfo", "--json", &buildinfo_dir()], 0);
    s.json(&["rebuild", "request", "bash", "--json"], 0);
    let (mut n, key) = registered(s, "alice", "a1").await;
    let claim = |id: &str| pb::ClaimRequest { wait_seconds: 0, claim_id: id.into() };
    let first = n.claim(claim("c-1")).await.unwrap().into_inner().job.expect("a job");
    // The answer is "lost": the node retries with the same id.
    let again = n.claim(claim("c-1")).await.unwrap().into_inner().job.expect("the same job again");
    assert_eq!((again.job_id, again.fence), (first.job_id, first.fence));
    // A new claim is new work, never the same lease.
    let other = n.claim(claim("c-2")).await.unwrap().into_inner().job;
    assert!(other.as_ref().is_none_or(|o| o.job_id != first.job_id), "{other:?}");
    // The retried lease is the node's: its result is accepted.
    let (artifacts, link) = link_for(&again, &[&key]);
    let r = n.report_result(tokio_stream::iter(report(&again, artifacts, link))).await.unwrap().into_inner();
    assert_eq!(r.outcome, "reproducible", "{r:?}");
    // Once the lease has ended, the old id does not bring it back.
    let after = n.claim(claim("c-1")).await.unwrap().into_inner().job;
    assert!(after.as_ref().is_none_or(|a| a.job_id != first.job_id || a.fence != first.fence), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_claim_gets_the_same_lease_on_sqlite() {
    a_retried_claim_gets_the_same_lease(&Server::start(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_claim_gets_the_same_lease_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    a_retried_claim_gets_the_same_lease(&Server::start(Some(&db.url))).await;
}

// ------------------------------------------------------------------ the second transaction

/// A result is recorded in one transaction and the buildinfo its node produced is ingested as
/// a build in the next. The coordinator is made to die between the two (a failpoint that
/// aborts the process there); started again, it finds the recorded result whose build is
/// missing and ingests it from the content store: nothing the node was told is lost.
async fn a_crash_between_result_and_build_loses_nothing(db: Option<&str>) {
    let mut s = Server::start_with(db, &[("DEBCOVER_VERIFIERS", "1"), ("DEBCOVER_FAILPOINT", "after-result")]);
    s.json(&["ingest", "buildinfo", "--json", &super::hostile::one_buildinfo()], 0);
    s.json(&["rebuild", "request", "0xffff", "--arch", "amd64", "--json"], 0);
    let (mut n, key) = registered(&s, "alice", "a1").await;
    let job = n.claim(pb::ClaimRequest { wait_seconds: 5, ..Default::default() }).await.unwrap().into_inner().job.expect("a job");
    // The node's own buildinfo: the original with another build date.
    let text = String::from_utf8(job.buildinfo.clone()).unwrap();
    let produced: String = text
        .lines()
        .map(|l| if l.starts_with("Build-Date:") { "Build-Date: Tue, 08 Dec 2026 00:00:00 +0000".to_owned() } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    assert_ne!(produced, text, "the buildinfo has no Build-Date to change");
    let (artifacts, link) = link_for(&job, &[&key]);
    let mut chunks = debcover_tests::built_report(&job, artifacts, link);
    chunks.insert(1, pb::ReportChunk { chunk: Some(pb::report_chunk::Chunk::Buildinfo(produced.into_bytes())) });
    let answer = n.report_result(tokio_stream::iter(chunks)).await;
    assert!(answer.is_err(), "the coordinator answered although it was to abort: {answer:?}");
    // Started again, without the failpoint.
    s.env_mut().retain(|(k, _)| k != "DEBCOVER_FAILPOINT");
    s.crash_and_restart();
    let h = s.json(&["build", "history", "0xffff", "--json"], 0);
    let attempt = h[0]["attempts"][0].clone();
    assert_eq!(attempt["outcome"], "reproducible", "{h:#}");
    let sha = attempt["buildinfo_sha256"].as_str().expect("the produced buildinfo's digest").to_owned();
    let v = s.json(&["status", "--json"], 0);
    assert_eq!(v["builds"], 2, "the produced build is missing after the restart: {v}\n{}", s.log().join("\n"));
    let got = s.cli(&["build", "get", &sha]);
    assert_eq!(got.status.code(), Some(0), "{}", describe(&got));
    assert!(String::from_utf8_lossy(&got.stdout).contains("Build-Date: Tue, 08 Dec 2026 00:00:00 +0000"), "{}", describe(&got));
    assert!(s.log().iter().any(|l| l.contains("produced buildinfo ingested after a restart")), "{}", s.log().join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_result_and_build_loses_nothing_on_sqlite() {
    a_crash_between_result_and_build_loses_nothing(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_result_and_build_loses_nothing_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    a_crash_between_result_and_build_loses_nothing(Some(&db.url)).await;
}

// ------------------------------------------------------------------ reports per lease

/// Defect: any number of report streams could be open for one lease at once, each allowed its
/// own 256 MiB log, buildinfo and diffoscope upload. Now a second stream for a lease whose
/// report is being received is refused at once, and the first one completes.
async fn one_report_at_a_time_per_lease(s: &Server) {
    use pb::report_chunk::Chunk;
    s.json(&["ingest", "buildinfo", "--json", &buildinfo_dir()], 0);
    s.json(&["rebuild", "request", "bash", "--json"], 0);
    let (mut n, key) = registered(s, "alice", "a1").await;
    let job = n.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await.unwrap().into_inner().job.expect("a job");
    let (artifacts, link) = link_for(&job, &[&key]);
    let mut chunks = report(&job, artifacts, link);
    // The first stream: everything but its end, which waits on `release`.
    let (tx, rx) = tokio::sync::mpsc::channel::<pb::ReportChunk>(64);
    let log = pb::ReportChunk { chunk: Some(Chunk::Log(vec![b'x'; 1 << 16])) };
    chunks.insert(1, log);
    for c in chunks.drain(..) {
        tx.send(c).await.unwrap();
    }
    let mut first_client = n.clone();
    let first = tokio::spawn(async move { first_client.report_result(tokio_stream::wrappers::ReceiverStream::new(rx)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (artifacts, link) = link_for(&job, &[&key]);
    let e = n.report_result(tokio_stream::iter(report(&job, artifacts, link))).await.expect_err("a second report stream");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    assert!(e.message().contains("one at a time"), "{e:?}");
    drop(tx);
    let r = first.await.unwrap().expect("the first report").into_inner();
    assert_eq!(r.outcome, "reproducible", "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_report_at_a_time_per_lease_on_sqlite() {
    one_report_at_a_time_per_lease(&Server::start(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_report_at_a_time_per_lease_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    one_report_at_a_time_per_lease(&Server::start(Some(&db.url))).await;
}

// ------------------------------------------------------------------ idle ingestion streams

/// Defect: an ingestion slot was taken before the first message arrived and streams had no
/// idle limit, so four streams that send nothing stopped all ingestion for ever. Now no slot
/// is held before the first message, an idle stream is ended, and a legitimate ingest goes
/// through while six idle streams are open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_ingest_streams_do_not_stop_ingestion() {
    let s = Server::start(None);
    let secret = std::fs::read_to_string(token(&s, "idle", "ingest")).unwrap();
    let channel = Channel::from_shared(s.url.clone()).unwrap().connect().await.unwrap();
    let client = CoordinatorClient::with_interceptor(channel, BearerAuth(secret));
    let mut idle = Vec::new();
    for i in 0..6 {
        let mut c = client.clone();
        idle.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = if i % 2 == 0 {
                c.ingest_archive(futures::stream::pending::<pb::ArchiveChunk>()).await.map(|_| ())
            } else {
                c.ingest_buildinfos(futures::stream::pending::<pb::BuildinfoBatch>()).await.map(|_| ())
            };
            (r, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let packages = dir.path().join("Packages");
    std::fs::write(&packages, "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nFilename: pool/h/hello_2.10-3_amd64.deb\nSize: 1\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\n").unwrap();
    let started = Instant::now();
    let v = s.json(&["ingest", "archive", "--suite", "test", "--json", packages.to_str().unwrap()], 0);
    assert!(started.elapsed() < Duration::from_secs(10), "the ingest waited {:?} behind idle streams", started.elapsed());
    assert_eq!(v[0]["entries"], 1, "{v}");
    let v = s.json(&["ingest", "buildinfo", "--json", &buildinfo_dir()], 0);
    assert!(v["ingested"].as_u64().unwrap_or(0) > 0, "{v}");
    // The idle streams are ended, with a reason.
    for h in idle {
        let (r, took) = tokio::time::timeout(Duration::from_secs(90), h).await.expect("an idle stream lives on").unwrap();
        let e = r.expect_err("an idle stream succeeded");
        assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
        assert!(e.message().contains("no message"), "{e:?}");
        assert!(took < Duration::from_secs(60), "{took:?}");
    }
}

// ------------------------------------------------------------------ index bombs

/// A Packages.xz of tiny valid paragraphs: `mib` MiB expanded, a few hundred KB on the wire.
fn index_bomb(path: &std::path::Path, mib: usize) {
    let f = std::fs::File::create(path).unwrap();
    let mut e = xz2::write::XzEncoder::new(std::io::BufWriter::new(f), 1);
    let mut written = 0usize;
    let mut i = 0u64;
    while written < mib << 20 {
        let p = format!(
            "Package: p{i}\nVersion: 1\nArchitecture: amd64\nFilename: pool/p/p{i}_1_amd64.deb\nSize: 1\nSHA256: {}\n\n",
            "0".repeat(64)
        );
        e.write_all(p.as_bytes()).unwrap();
        written += p.len();
        i += 1;
    }
    e.finish().unwrap().flush().unwrap();
}

/// Defect: an index was parsed whole into memory with no bound but the decompressed size: a
/// 94 KB Packages.xz (600 MiB of tiny valid paragraphs) took the coordinator from 28 MiB to
/// 1,895 MiB and was accepted. Now the paragraphs of one index are bounded, the import is
/// refused with the reason, nothing is stored, and the peak stays small.
#[test]
fn an_index_bomb_is_refused_with_bounded_memory() {
    let s = Server::start(None);
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("Packages.xz");
    index_bomb(&bomb, 200);
    let size = std::fs::metadata(&bomb).unwrap().len();
    let before = s.peak_rss_kib();
    let out = s.cli(&["ingest", "archive", "--suite", "bomb", "--arch", "amd64", bomb.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("paragraphs") && err.contains("Packages.xz"), "{err}");
    let peak = s.peak_rss_kib();
    eprintln!("index bomb: {size} bytes compressed, 200 MiB expanded; coordinator peak RSS {} MiB -> {} MiB", before >> 10, peak >> 10);
    assert!(peak < 400 << 10, "coordinator peak RSS {} MiB", peak >> 10);
    // Nothing stored, and the coordinator serves on.
    let v = s.json(&["status", "--json"], 0);
    assert_eq!(v["builds"], 0, "{v}");
}

// ------------------------------------------------------------------ chaos

/// One fake node of its own operator: claims, "rebuilds" (the original's files), reports with
/// a signed link, and records every result the coordinator acknowledged. Transport errors
/// (the coordinator being killed) are retried; a refused report is not counted.
async fn chaos_node(
    url: String,
    secret: String,
    acknowledged: Arc<Mutex<Vec<(i64, i64, String)>>>,
    stop: tokio_util::sync::CancellationToken,
    seed: u64,
) {
    let key = key_of(&secret);
    let channel = Channel::from_shared(url).unwrap().connect_lazy();
    let mut n = RebuildNodesClient::with_interceptor(channel, BearerAuth(secret.clone()));
    let mut registered = false;
    let mut claim_id = format!("{seed}-first");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    while !stop.is_cancelled() {
        if !registered {
            let (time, signature) = debcover_tests::registration_proof(&secret, &key);
            let r = n
                .register(pb::RegisterRequest {
                    public_key: debcover_formats::intoto::openssh_public(&key.verifying_key().to_bytes(), "test"),
                    architectures: vec!["amd64".into()],
                    backends: vec!["local".into()],
                    slots: 1,
                    registration_time: time,
                    registration_signature: signature,
                    ..Default::default()
                })
                .await;
            registered = r.is_ok();
            if !registered {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        let job = match n.claim(pb::ClaimRequest { wait_seconds: 1, claim_id: claim_id.clone() }).await {
            Ok(r) => {
                claim_id = format!("{seed}-{}", next());
                r.into_inner().job
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Some(job) = job else { continue };
        // A "build" takes a while, so that kills land while leases are held and reports sent.
        let slow: u64 = std::env::var("DEBCOVER_CHAOS_SLOW").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
        let building = Instant::now();
        let took = Duration::from_millis((300 + next() % 1200) * slow);
        // Heartbeats every second, as a node does, so that a long build keeps its lease.
        while building.elapsed() < took {
            tokio::time::sleep((took - building.elapsed()).min(Duration::from_secs(1))).await;
            let _ = n.heartbeat(pb::HeartbeatRequest { job_id: job.job_id, fence: job.fence }).await;
        }
        let (artifacts, link) = link_for(&job, &[&key]);
        // A report whose answer is lost is sent again, as a node does; the coordinator must
        // not count it twice.
        for _ in 0..3 {
            match n.report_result(tokio_stream::iter(report(&job, artifacts.clone(), link.clone()))).await {
                Ok(r) => {
                    acknowledged.lock().unwrap().push((job.job_id, job.fence, r.into_inner().outcome));
                    break;
                }
                Err(e) if matches!(e.code(), Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal) => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(_) => break,
            }
        }
    }
}

/// A TCP proxy to `upstream` that delays every chunk by 20-120 ms and cuts a connection (both
/// ways, mid-message) with probability `cut_per_mille`/1000 per chunk: a lossy, slow network
/// for gRPC clients (the kernel here has no `netem`).
async fn lossy_proxy(
    upstream: std::net::SocketAddr,
    cut_per_mille: u64,
    seed: u64,
) -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rng = Arc::new(std::sync::atomic::AtomicU64::new(seed | 1));
    let cuts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = cuts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { continue };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let cut = tokio_util::sync::CancellationToken::new();
            tokio::spawn(pump(cr, sw, cut.clone(), rng.clone(), cut_per_mille, counted.clone()));
            tokio::spawn(pump(sr, cw, cut, rng.clone(), cut_per_mille, counted.clone()));
        }
    });
    (addr, cuts)
}

/// One direction of [`lossy_proxy`].
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    cut: tokio_util::sync::CancellationToken,
    rng: Arc<std::sync::atomic::AtomicU64>,
    cut_per_mille: u64,
    cuts: Arc<std::sync::atomic::AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            r = r.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = cut.cancelled() => break,
        };
        let mut x = rng.load(std::sync::atomic::Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        rng.store(x, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20 + x % 100)).await;
        if (x >> 20) % 1000 < cut_per_mille {
            cuts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            break;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    cut.cancel();
    let _ = w.shutdown().await;
}

/// The job states, by source, version and architecture.
fn states(s: &Server) -> BTreeMap<String, String> {
    let q = s.json(&["queue", "--json", "--state", "queued", "--state", "leased", "--state", "verified", "--state", "parked"], 0);
    q["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (format!("{} {} {}", j["source"], j["version"], j["architecture"]), j["state"].as_str().unwrap_or("").to_owned()))
        .collect()
}

const CHAOS_SOURCES: &[&str] = &["bash", "0xffff", "hardlink", "rust-sniffglue", "pycairo", "sphinx", "dnf"];

/// Run a campaign of rebuilds with three nodes of three operators while the coordinator is
/// killed `kills` times with SIGKILL at random moments (mid-claim, mid-report, mid-ingest: an
/// ingest of the same buildinfos runs in a loop throughout). Returns the final states, the
/// acknowledged results, and the server for the checks.
async fn chaos_run(db: Option<&str>, kills: usize, seed: u64) -> (BTreeMap<String, String>, Vec<(i64, i64, String)>, Server) {
    let mut s = Server::start_with(db, &[("DEBCOVER_VERIFIERS", "2"), ("DEBCOVER_LEASE_TTL", "4s")]);
    s.json(&["ingest", "buildinfo", "--json", &buildinfo_dir()], 0);
    for src in CHAOS_SOURCES {
        s.json(&["rebuild", "request", src, "--json"], 0);
    }
    let jobs = states(&s).len();
    assert!(jobs >= 8, "{jobs} jobs");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut nodes = Vec::new();
    for (i, op) in ["alice", "bob", "carol"].iter().enumerate() {
        let v = s.json(&["node", "add", "--operator", op, "--name", &format!("{op}1"), "--json"], 0);
        let secret = v["token"].as_str().unwrap().to_owned();
        nodes.push(tokio::spawn(chaos_node(s.url.clone(), secret, acknowledged.clone(), stop.clone(), seed + i as u64 * 7919)));
    }
    // An ingest running throughout (its failures while the coordinator is down are expected).
    let ingest_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ingester = {
        let (url, admin, stop) = (s.url.clone(), s.admin_token_file(), ingest_stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::process::Command::new(debcover_tests::binary("debcover"))
                    .args(["ingest", "buildinfo", "--json", &buildinfo_dir()])
                    .env("DEBCOVER_SERVER", &url)
                    .env("DEBCOVER_ADMIN_TOKEN_FILE", &admin)
                    .env("DEBCOVER_LOG", "error")
                    .output();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut rng = seed.max(1);
    let needed = jobs * 2;
    for k in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(100 + rng % 900)).await;
        let before = acknowledged.lock().unwrap().len();
        s.crash_and_restart();
        eprintln!("chaos: kill {} of {kills} with {before} of {needed} results acknowledged", k + 1);
        // The kills land while the campaign runs, not after it (DEBCOVER_CHAOS_SLOW=N makes
        // builds N times longer for runs with many kills).
        if k + 1 == kills {
            assert!(before < needed, "the run was over before the last kill: {before} of {needed}");
        }
    }
    ingest_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = ingester.join();
    // Then let the nodes finish.
    let t = Instant::now();
    loop {
        let st = states(&s);
        if st.values().all(|v| v == "verified") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(240), "not finished after the kills: {st:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.cancel();
    for n in nodes {
        let _ = n.await;
    }
    let acked = acknowledged.lock().unwrap().clone();
    (states(&s), acked, s)
}

/// Defect: the coordinator was only ever stopped with SIGTERM in tests; nothing showed that a
/// SIGKILL at any moment loses no job and no acknowledged result, counts none twice and
/// accepts no stale one. Now: a run with kills ends in the same states as a run without; every
/// result a node was told is recorded is recorded, under its own lease; a job counts each
/// operator once; no produced buildinfo fails to become a build.
async fn chaos(db_a: Option<&str>, db_b: Option<&str>) {
    let kills: usize = std::env::var("DEBCOVER_CHAOS_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    let seed: u64 = std::env::var("DEBCOVER_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed);
    let (calm, _, calm_server) = chaos_run(db_a, 0, seed).await;
    let (stormy, acked, s) = chaos_run(db_b, kills, seed).await;
    assert_eq!(stormy, calm, "final states differ from a run without kills");
    let built_calm = calm_server.json(&["status", "--json"], 0)["builds"].clone();
    let built = s.json(&["status", "--json"], 0)["builds"].clone();
    assert_eq!(built, built_calm, "builds after the kills differ from a run without");
    let mut recorded: BTreeSet<(i64, i64)> = BTreeSet::new();
    for src in CHAOS_SOURCES {
        for j in s.json(&["build", "history", src, "--json"], 0).as_array().cloned().unwrap_or_default() {
            let id = j["id"].as_i64().unwrap();
            let mut counted_operators = BTreeSet::new();
            for a in j["attempts"].as_array().cloned().unwrap_or_default() {
                let fence = a["fence"].as_i64().unwrap();
                assert!(recorded.insert((id, fence)), "job {id} fence {fence} recorded twice: {j:#}");
                if a["outcome"] == "reproducible" {
                    counted_operators.insert(a["operator"].as_str().unwrap_or_default().to_owned());
                }
            }
            // A job counts each operator once, however often it reproduced it.
            assert_eq!(j["verified"].as_u64(), Some(counted_operators.len() as u64), "job {id}: {j:#}");
        }
    }
    for (job, fence, outcome) in &acked {
        if outcome == "reproducible" {
            assert!(recorded.contains(&(*job, *fence)), "acknowledged result of job {job} fence {fence} is lost");
        }
    }
    eprintln!("chaos: {kills} kills, {} acknowledged results, {} attempts recorded", acked.len(), recorded.len());
    // Every built result's produced buildinfo is a build (ingested again after a kill between
    // the two transactions).
    let log = s.log().join("\n");
    assert!(!log.contains("ingesting a recorded produced buildinfo failed"), "{log}");
}

/// Over a slow network that cuts connections mid-message (claims, heartbeats and reports
/// lost in either direction, retried by the nodes), the campaign still ends with every job
/// verified, no result counted twice and no lease left stuck.
async fn lossy_network(db: Option<&str>) {
    let s = Server::start_with(db, &[("DEBCOVER_VERIFIERS", "2"), ("DEBCOVER_LEASE_TTL", "4s")]);
    s.json(&["ingest", "buildinfo", "--json", &buildinfo_dir()], 0);
    for src in CHAOS_SOURCES {
        s.json(&["rebuild", "request", src, "--json"], 0);
    }
    let upstream: std::net::SocketAddr = s.url.trim_start_matches("http://").parse().unwrap();
    let (proxy, cuts) = lossy_proxy(upstream, 120, 0x10557).await;
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let mut nodes = Vec::new();
    for (i, op) in ["alice", "bob", "carol"].iter().enumerate() {
        let v = s.json(&["node", "add", "--operator", op, "--name", &format!("{op}1"), "--json"], 0);
        let secret = v["token"].as_str().unwrap().to_owned();
        nodes.push(tokio::spawn(chaos_node(format!("http://{proxy}"), secret, acknowledged.clone(), stop.clone(), 77 + i as u64)));
    }
    let t = Instant::now();
    loop {
        let st = states(&s);
        if st.values().all(|v| v == "verified") {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(240), "stuck over a lossy network: {st:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.cancel();
    for n in nodes {
        let _ = n.await;
    }
    let mut recorded = BTreeSet::new();
    for src in CHAOS_SOURCES {
        for j in s.json(&["build", "history", src, "--json"], 0).as_array().cloned().unwrap_or_default() {
            let id = j["id"].as_i64().unwrap();
            let mut operators = BTreeSet::new();
            for a in j["attempts"].as_array().cloned().unwrap_or_default() {
                assert!(recorded.insert((id, a["fence"].as_i64().unwrap())), "{j:#}");
                if a["outcome"] == "reproducible" {
                    operators.insert(a["operator"].as_str().unwrap_or_default().to_owned());
                }
            }
            assert_eq!(j["verified"].as_u64(), Some(operators.len() as u64), "job {id}: {j:#}");
            assert_eq!(j["state"], "verified", "{j:#}");
        }
    }
    let acked = acknowledged.lock().unwrap().len();
    let cuts = cuts.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("lossy network: {cuts} connections cut, {acked} results acknowledged, {} attempts recorded in {:?}", recorded.len(), t.elapsed());
    assert!(cuts >= 3, "the network cut only {cuts} connections: the test proves little");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lossy_network_duplicates_nothing_on_sqlite() {
    lossy_network(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lossy_network_duplicates_nothing_on_postgres() {
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    lossy_network(Some(&db.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_kills_lose_nothing_on_sqlite() {
    chaos(None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_kills_lose_nothing_on_postgres() {
    let (Some(a), Some(b)) = (TestDatabase::create().await, TestDatabase::create().await) else {
        return;
    };
    chaos(Some(&a.url), Some(&b.url)).await;
}

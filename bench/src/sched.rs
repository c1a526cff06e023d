//! Scheduler throughput: simulated rebuilder nodes doing zero-time builds against a real
//! coordinator over real gRPC. Each node has its own HTTP/2 connection and loops claim →
//! report (the artifacts its buildinfo lists, so every result is reproducible, signed as an
//! in-toto link with the node's own ed25519 key, so that it counts) until every
//! queued job is done. Counted: cycles per second, claim and report latency percentiles,
//! duplicates (a job handed out more than once) and lost jobs (not verified at the end).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use debcover_proto::v1 as pb;
use debcover_proto::v1::rebuild_admin_client::RebuildAdminClient;
use debcover_proto::v1::rebuild_nodes_client::RebuildNodesClient;
use debcover_rebuilder::attest::{RebuildClaim, sign};
use debcover_rebuilder::key::NodeKey;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Adds `authorization: Bearer TOKEN`.
#[derive(Clone)]
struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

fn bearer(token: &str) -> Result<Bearer> {
    Ok(Bearer(format!("Bearer {token}").parse().context("token is not valid metadata")?))
}

async fn channel(server: &str) -> Result<Channel> {
    Ok(Endpoint::from_shared(server.to_owned())?.tcp_nodelay(true).connect().await?)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Coordinator URL.
    pub server: String,
    /// Admin token (to issue the simulated nodes' credentials).
    pub admin_token: String,
    /// Concurrent nodes.
    pub nodes: usize,
    /// Operators the nodes are spread over.
    pub operators: usize,
    /// Prefix of node names (unique per run on one database).
    pub prefix: String,
    /// Give up after this long.
    pub timeout: Duration,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Jobs queued at the start.
    pub jobs: u64,
    /// Claim → report cycles completed.
    pub cycles: u64,
    /// Wall time from the first claim to the last report.
    pub elapsed: Duration,
    /// Jobs handed out more than once.
    pub duplicates: u64,
    /// Jobs not verified at the end.
    pub lost: u64,
    /// Claims that returned nothing (all remaining jobs leased by others).
    pub empty_claims: u64,
    /// Latencies of claims that returned a job, sorted.
    pub claim: Vec<Duration>,
    /// Latencies of reports, sorted.
    pub report: Vec<Duration>,
}

/// The `q`-quantile of sorted durations (nearest rank).
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn queue_counts(admin: &mut RebuildAdminClient<InterceptedService<Channel, Bearer>>) -> Result<HashMap<String, u64>> {
    let q = admin.queue(pb::QueueRequest { states: vec![], limit: 1 }).await?.into_inner();
    let mut by_state = HashMap::new();
    for c in q.counts {
        *by_state.entry(c.state).or_default() += c.jobs;
    }
    Ok(by_state)
}

/// Run the measurement.
pub async fn run(opts: &Options) -> Result<Outcome> {
    let mut admin = RebuildAdminClient::with_interceptor(channel(&opts.server).await?, bearer(&opts.admin_token)?);
    let before = queue_counts(&mut admin).await?;
    let jobs = before.get("queued").copied().unwrap_or(0);
    if jobs == 0 {
        bail!("no queued jobs: queue some first (debcover verify suite ...)");
    }
    let mut nodes = Vec::with_capacity(opts.nodes);
    for i in 0..opts.nodes {
        let r = admin
            .add_node(pb::AddNodeRequest {
                operator: format!("bench-op{}", i % opts.operators.max(1)),
                name: format!("{}-n{i}", opts.prefix),
            })
            .await
            .context("AddNode")?
            .into_inner();
        let mut n = RebuildNodesClient::with_interceptor(channel(&opts.server).await?, bearer(&r.token)?)
            .max_decoding_message_size(16 * 1024 * 1024);
        // Each node proves it holds its key at registration and signs its results like a real
        // one: only attested results count.
        let key_file = std::env::temp_dir().join(format!("debcover-sched-{}-{i}.pem", std::process::id()));
        let key = NodeKey::load_or_create(&key_file).with_context(|| format!("node key {}", key_file.display()))?;
        let _ = std::fs::remove_file(&key_file);
        let time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        n.register(pb::RegisterRequest {
            public_key: key.openssh_public(),
            architectures: vec!["amd64".into()],
            backends: vec!["local".into()],
            tags: vec![],
            slots: 1,
            registration_time: time,
            registration_signature: key.registration_signature(&r.token, time),
            ..Default::default()
        })
        .await
        .context("Register")?;
        nodes.push((n, key));
    }
    let done = Arc::new(AtomicU64::new(0));
    let empty = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let mut tasks = Vec::new();
    for (mut n, key) in nodes {
        let done = done.clone();
        let empty = empty.clone();
        tasks.push(tokio::spawn(async move {
            let mut claims = Vec::new();
            let mut reports = Vec::new();
            let mut seen = Vec::new();
            while done.load(Ordering::Relaxed) < jobs && Instant::now() < deadline {
                let t = Instant::now();
                let job = n.claim(pb::ClaimRequest { wait_seconds: 0, ..Default::default() }).await?.into_inner().job;
                let Some(job) = job else {
                    empty.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                claims.push(t.elapsed());
                seen.push(job.job_id);
                let mut chunks = vec![pb::ReportChunk {
                    chunk: Some(pb::report_chunk::Chunk::Header(pb::ReportHeader {
                        job_id: job.job_id,
                        fence: job.fence,
                        result: "built".into(),
                        failure_code: String::new(),
                        message: String::new(),
                        ..Default::default()
                    })),
                }];
                let produced = debcover_tests::artifacts(&job.buildinfo);
                let mut claim = RebuildClaim::default();
                claim.products = produced.iter().map(|a| (a.name.clone(), a.sha256.clone())).collect();
                claim.environment.insert("debcover_job".into(), job.job_id.to_string());
                claim.environment.insert("debcover_fence".into(), job.fence.to_string());
                let link = sign(&key, &claim);
                chunks.extend(
                    produced.into_iter().map(|a| pb::ReportChunk { chunk: Some(pb::report_chunk::Chunk::Artifact(a)) }),
                );
                chunks.push(pb::ReportChunk { chunk: Some(pb::report_chunk::Chunk::Attestation(link)) });
                let t = Instant::now();
                let r = n.report_result(tokio_stream::iter(chunks)).await?.into_inner();
                reports.push(t.elapsed());
                if r.outcome != "reproducible" {
                    bail!("job {}: {} ({:?})", job.job_id, r.outcome, r.differing);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>((claims, reports, seen))
        }));
    }
    let mut claim = Vec::new();
    let mut report = Vec::new();
    let mut seen = Vec::new();
    for t in tasks {
        let (c, r, s) = t.await.context("node task")??;
        claim.extend(c);
        report.extend(r);
        seen.extend(s);
    }
    let elapsed = start.elapsed();
    claim.sort();
    report.sort();
    let cycles = seen.len() as u64;
    seen.sort_unstable();
    seen.dedup();
    let after = queue_counts(&mut admin).await?;
    let verified = after.get("verified").copied().unwrap_or(0) - before.get("verified").copied().unwrap_or(0);
    Ok(Outcome {
        jobs,
        cycles,
        elapsed,
        duplicates: cycles - seen.len() as u64,
        lost: jobs.saturating_sub(verified),
        empty_claims: empty.load(Ordering::Relaxed),
        claim,
        report,
    })
}


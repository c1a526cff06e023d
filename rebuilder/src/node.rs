//! The node's lifecycle: register, then one worker per slot claims, builds, heartbeats and
//! reports; shutdown stops claiming, lets builds finish within the grace period and hands
//! back what is still running.
//!
//! Failure handling, in one place:
//! - transport errors (coordinator restarting, network): retried with backoff, forever; the
//!   node resumes by itself when the coordinator is back;
//! - a refused lease (stale fence, not ours, revoked): the job is abandoned at once (the
//!   coordinator has given it to someone else) and its result is not sent;
//! - bad credentials at registration: fatal, with a message saying what to check.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use debcover_formats::Buildinfo;
use debcover_proto::v1 as pb;
use debcover_proto::v1::rebuild_nodes_client::RebuildNodesClient;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::Instrument;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::backend::{self, BackendKind, Ctx, JobSpec, Outcome};
use crate::config::Config;
use crate::embedded::Embedded;
use crate::key::NodeKey;
use crate::process::Log;
use crate::source::SourceRequest;

/// Size of each chunk of log, buildinfo or diffoscope text in a report.
const CHUNK: usize = 256 * 1024;
/// Longest claim long-poll asked for (the server caps it too).
const CLAIM_WAIT_SECONDS: u32 = 25;
/// Largest message the node accepts (a job carries one buildinfo).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

type Client = RebuildNodesClient<InterceptedService<Channel, Bearer>>;

/// Shutdown signals: `stop` ends claiming; `abort` kills running builds (they are handed back).
#[derive(Clone, Default)]
pub struct Shutdown {
    /// No new claims.
    pub stop: CancellationToken,
    /// Kill running builds and hand their jobs back.
    pub abort: CancellationToken,
}

/// Open a (lazy) channel to the coordinator, TLS for https:// servers: the first call connects,
/// and a broken connection is re-established on the next call, so a restarted coordinator is
/// picked up by itself.
fn channel(config: &Config) -> Result<Channel> {
    let endpoint = crate::connect::endpoint(&config.server, config.ca_cert.as_deref())?
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_lazy())
}

fn client(config: &Config) -> Result<Client> {
    let token: MetadataValue<_> = format!("Bearer {}", config.token)
        .parse()
        .context("the node token contains characters that cannot go in a request header")?;
    Ok(RebuildNodesClient::with_interceptor(channel(config)?, Bearer(token))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

fn transient(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Internal | Code::Cancelled | Code::ResourceExhausted | Code::Aborted)
}

/// Unix seconds now (0 if the clock is before 1970: the coordinator then says the clock is off).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Register, retrying while the coordinator is unreachable. Bad credentials are fatal.
async fn register(c: &mut Client, config: &Config, key: &NodeKey, shutdown: &Shutdown) -> Result<pb::RegisterResponse> {
    let mut req = pb::RegisterRequest {
        public_key: key.openssh_public(),
        architectures: config.architectures.clone(),
        backends: config.backends.iter().map(|b| b.as_str().to_owned()).collect(),
        tags: config.tags.clone(),
        slots: config.slots,
        software: crate::SOFTWARE.to_owned(),
        registration_signature: Vec::new(),
        registration_time: 0,
    };
    let mut delay = Duration::from_secs(1);
    loop {
        // Signed afresh on every try: the coordinator accepts a proof only minutes old.
        req.registration_time = unix_now();
        req.registration_signature = key.registration_signature(config.token.trim(), req.registration_time);
        match c.register(req.clone()).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) if s.code() == Code::Unauthenticated => {
                bail!("the coordinator at {} refused the node token: {} (check token/token_file; `debcover node add` issues tokens)", config.server, s.message())
            }
            Err(s) if transient(&s) => {
                tracing::warn!(server = %config.server, error = %s.message(), retry_in = ?delay, "cannot register yet");
            }
            Err(s) => bail!("the coordinator refused the registration: {:?}: {}", s.code(), s.message()),
        }
        tokio::select! {
            _ = shutdown.stop.cancelled() => bail!("stopped before registering"),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Fail early, naming the directory and the fix, when `user` cannot pass through every
/// directory above `work_dir` (a private temporary directory, a home at 0700): every build would
/// fail otherwise.
pub fn reachable_by(user: &crate::process::BuildUser, work_dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // The work directory, or (before it is made) the nearest directory it will be made in,
    // which the user must then pass through too.
    let mut existing = work_dir.to_path_buf();
    while !existing.exists() && existing.pop() {}
    let abs = std::fs::canonicalize(&existing).with_context(|| format!("cannot resolve {}", existing.display()))?;
    for dir in abs.ancestors().skip(usize::from(existing == work_dir)) {
        let meta = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
        let mode = meta.mode();
        let passes = if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !passes {
            anyhow::bail!(
                "the build user {} cannot reach the work directory {}: {} is mode {:04o}. Let others through it \
                 (chmod o+x {}), choose a --work-dir elsewhere (the default /var/lib/debcover-rebuilder works), \
                 or build as the node's own user with --build-user self",
                user.name,
                work_dir.display(),
                dir.display(),
                mode & 0o7777,
                dir.display()
            );
        }
    }
    Ok(())
}

/// Run the node until `shutdown` (or a fatal error).
pub async fn run(config: Config, key: NodeKey, shutdown: Shutdown) -> Result<()> {
    for b in &config.backends {
        backend::available(*b, &config).map_err(|e| anyhow::anyhow!("backend {b}: {e}"))?;
    }
    let jobs_dir = config.work_dir.join("jobs");
    std::fs::create_dir_all(&jobs_dir).with_context(|| format!("cannot create {}", jobs_dir.display()))?;
    if let Some(user) = &config.build_user {
        reachable_by(user, &config.work_dir)?;
        // The build user must reach its job's directory, not list or read anything else here
        // (the key stays 0600).
        for d in [&config.work_dir, &jobs_dir] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d).map(|m| m.permissions().mode()).unwrap_or(0o700);
            if mode & 0o001 == 0 {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode((mode & 0o7777) | 0o011))
                    .with_context(|| format!("cannot let the build user through {}", d.display()))?;
            }
        }
    }
    // Leftovers of a previous run that was killed: their leases have expired or will.
    if let Ok(entries) = std::fs::read_dir(&jobs_dir) {
        for e in entries.flatten() {
            if let Some(pgid) = crate::process::kill_leftover(&e.path()) {
                tracing::info!(dir = %e.path().display(), pgid, "killed a build an earlier run left running");
            }
            tracing::info!(dir = %e.path().display(), "removing a job directory left by an earlier run");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let mut c = client(&config)?;
    let reg = register(&mut c, &config, &key, &shutdown).await?;
    tracing::info!(
        operator = %reg.operator, node = %reg.node, architectures = ?reg.architectures,
        lease_ttl = reg.lease_ttl_seconds, heartbeat = reg.heartbeat_seconds, slots = config.slots,
        backends = ?config.backends.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
        "registered with {}", config.server
    );
    let heartbeat = Duration::from_secs(u64::from(reg.heartbeat_seconds.max(1)));
    let config = Arc::new(config);
    let me = Arc::new(Identity { operator: reg.operator.clone(), node: reg.node.clone(), key });
    let mut workers = tokio::task::JoinSet::new();
    for slot in 0..config.slots.max(1) {
        let (c, config, shutdown, me) = (c.clone(), config.clone(), shutdown.clone(), me.clone());
        workers.spawn(async move { worker(slot, c, config, me, heartbeat, shutdown).await });
    }
    while let Some(r) = workers.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "a worker task ended abnormally");
        }
    }
    tracing::info!("all workers stopped; exiting");
    Ok(())
}

/// Who this node is, as the coordinator registered it, with the key that signs its results.
struct Identity {
    operator: String,
    node: String,
    key: NodeKey,
}

/// A fresh claim id (see `ClaimRequest.claim_id`).
fn new_claim_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

async fn worker(slot: u32, mut c: Client, config: Arc<Config>, me: Arc<Identity>, heartbeat: Duration, shutdown: Shutdown) {
    let mut delay = Duration::from_secs(1);
    // Kept across a failed claim, so that its retry gets the lease a lost answer carried.
    let mut claim_id = new_claim_id();
    loop {
        if shutdown.stop.is_cancelled() {
            return;
        }
        let claim = tokio::select! {
            _ = shutdown.stop.cancelled() => return,
            r = c.claim(pb::ClaimRequest { wait_seconds: CLAIM_WAIT_SECONDS, claim_id: claim_id.clone(), ..Default::default() }) => r,
        };
        let job = match claim {
            Ok(r) => {
                delay = Duration::from_secs(1);
                claim_id = new_claim_id();
                match r.into_inner().job {
                    Some(j) => j,
                    None => continue,
                }
            }
            Err(s) => {
                if s.code() == Code::Unauthenticated {
                    tracing::error!(slot, error = %s.message(), "the coordinator no longer accepts this node's token (revoked?); stopping");
                    shutdown.stop.cancel();
                    return;
                }
                tracing::warn!(slot, error = %s.message(), code = ?s.code(), retry_in = ?delay, "claim failed");
                tokio::select! {
                    _ = shutdown.stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        let span = tracing::info_span!("job", id = job.job_id, fence = job.fence, source = %job.source,
            version = %job.version, arch = %job.architecture);
        run_job(slot, &mut c, &config, &me, heartbeat, &shutdown, job).instrument(span).await;
    }
}

fn job_spec(job: &pb::Job) -> Result<JobSpec, String> {
    let buildinfo = Buildinfo::parse(&job.buildinfo).map_err(|e| format!("the job's buildinfo does not parse: {e}"))?;
    let backend = match job.backend.as_str() {
        "" => None,
        b => Some(b.parse::<BackendKind>()?),
    };
    Ok(JobSpec {
        job_id: job.job_id,
        buildinfo_bytes: job.buildinfo.clone(),
        source: SourceRequest {
            source: buildinfo.source.clone(),
            version: buildinfo.source_version.clone(),
            dsc_url: job.dsc_url.clone(),
            dsc_sha256: job.dsc_sha256.clone(),
        },
        buildinfo,
        backend,
        originals: job.originals.iter().map(|o| (o.name.clone(), o.sha256.clone(), o.url.clone())).collect(),
    })
}

async fn run_job(
    slot: u32,
    c: &mut Client,
    config: &Config,
    me: &Identity,
    heartbeat: Duration,
    shutdown: &Shutdown,
    job: pb::Job,
) {
    let (job_id, fence) = (job.job_id, job.fence);
    let dir = config.work_dir.join("jobs").join(format!("{job_id}-{fence}"));
    let result = async {
        tokio::fs::create_dir_all(&dir).await.with_context(|| format!("cannot create {}", dir.display()))?;
        Log::create(&dir.join("build.log"), config.log_cap).with_context(|| format!("cannot create the log in {}", dir.display()))
    }
    .await;
    let mut log = match result {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot prepare the job");
            let _ = hand_back(c, job_id, fence, &format!("node cannot prepare a work directory: {e:#}")).await;
            return;
        }
    };
    // The lease: renewed while the build runs; losing it cancels the build.
    let lease_lost = CancellationToken::new();
    let cancel = CancellationToken::new();
    let hb = {
        let (mut c, lease_lost, cancel, abort) = (c.clone(), lease_lost.clone(), cancel.clone(), shutdown.abort.clone());
        tokio::spawn(
            async move {
            let mut tick = tokio::time::interval(heartbeat);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = abort.cancelled() => { cancel.cancel(); return; }
                    _ = tick.tick() => {}
                }
                match c.heartbeat(pb::HeartbeatRequest { job_id, fence }).await {
                    Ok(_) => {}
                    Err(s) if transient(&s) => tracing::warn!(error = %s.message(), "heartbeat failed; retrying"),
                    Err(s) => {
                        tracing::warn!(code = ?s.code(), error = %s.message(), "lease lost; stopping the build");
                        lease_lost.cancel();
                        cancel.cancel();
                        return;
                    }
                }
            }
            }
            .in_current_span(),
        )
    };
    let mut used_backend = None;
    let spec = job_spec(&job);
    let outcome = match &spec {
        Err(message) => Outcome::Failed { kind: backend::FailureKind::Infrastructure, message: message.clone() },
        Ok(spec) => {
            let kind = spec.backend.or_else(|| config.backends.first().copied()).unwrap_or(BackendKind::Local);
            if !config.backends.contains(&kind) {
                Outcome::Failed {
                    kind: backend::FailureKind::Infrastructure,
                    message: format!("job requires backend {kind}, which this node does not offer"),
                }
            } else {
                tracing::info!(slot, backend = %kind, "build started");
                let _ = log.note(&format!("job {job_id} (fence {fence}): {} {} on {} with backend {kind}", job.source, job.version, job.architecture));
                used_backend = Some(kind);
                let mut ctx = Ctx { config, dir: &dir, log: &mut log, cancel: &cancel };
                backend::run(kind, spec, &mut ctx).await
            }
        }
    };
    cancel.cancel();
    let _ = hb.await;
    let keep = config.keep_failed && !matches!(outcome, Outcome::Built { .. });
    if lease_lost.is_cancelled() {
        tracing::warn!("the lease was lost during the build; the result is not sent");
    } else if matches!(outcome, Outcome::Cancelled) || shutdown.abort.is_cancelled() {
        match hand_back(c, job_id, fence, "node shutting down").await {
            Ok(()) => tracing::info!("build stopped by shutdown; job handed back"),
            Err(e) => tracing::warn!(error = %e, "hand-back failed; the lease will expire"),
        }
    } else {
        let attestation = attest(me, &job, spec.as_ref().ok(), used_backend, &outcome, &dir).await;
        let embedded = embedded_info(&outcome, &mut log).await;
        match report(c, job_id, fence, &outcome, &log, &attestation, embedded).await {
            Ok(r) => tracing::info!(outcome = %r.outcome, job_state = %r.job_state, differing = ?r.differing, "result reported"),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "result not accepted"),
        }
    }
    if !keep {
        let _ = tokio::fs::remove_dir_all(&dir).await;
    } else {
        tracing::info!(dir = %dir.display(), "work directory kept (keep_failed)");
    }
}

async fn hand_back(c: &mut Client, job_id: i64, fence: i64, reason: &str) -> Result<(), tonic::Status> {
    c.hand_back(pb::HandBackRequest { job_id, fence, reason: reason.to_owned() }).await.map(|_| ())
}

fn chunks_of(bytes: &[u8], wrap: fn(Vec<u8>) -> pb::report_chunk::Chunk) -> impl Iterator<Item = pb::ReportChunk> + '_ {
    bytes.chunks(CHUNK).map(move |c| pb::ReportChunk { chunk: Some(wrap(c.to_vec())) })
}

/// Send the result, retrying transport errors for a while (the coordinator may be restarting);
/// a refusal is final.
/// The signed in-toto link of this result: the original buildinfo and the .dsc as materials,
/// every produced file as a product, and who built it how in the environment.
async fn attest(
    me: &Identity,
    job: &pb::Job,
    spec: Option<&JobSpec>,
    backend: Option<BackendKind>,
    outcome: &Outcome,
    dir: &std::path::Path,
) -> Vec<u8> {
    use crate::attest::{RebuildClaim, sign};
    let mut claim = RebuildClaim::default();
    if let Some(spec) = spec {
        let b = &spec.buildinfo;
        let mut v = b.version.clone();
        v.epoch = None;
        let name = format!("{}_{}_{}.buildinfo", b.source, v, b.host_architecture());
        claim.materials.insert(name, debcover_formats::sha256_hex(&job.buildinfo));
        let dsc = crate::source::dsc_name(&spec.source.source, &spec.source.version);
        if let Ok((_, sha)) = tokio::task::spawn_blocking({
            let p = dir.join("source").join(&dsc);
            move || crate::hash::sha256_file(&p)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        {
            claim.materials.insert(dsc, sha);
        }
    }
    let env = &mut claim.environment;
    env.insert("debcover_operator".into(), me.operator.clone());
    env.insert("debcover_node".into(), me.node.clone());
    env.insert("debcover_job".into(), job.job_id.to_string());
    env.insert("debcover_fence".into(), job.fence.to_string());
    env.insert("debcover_build_id".into(), job.build_id.clone());
    env.insert("debcover_software".into(), crate::SOFTWARE.into());
    if let Some(b) = backend {
        env.insert("debcover_backend".into(), b.as_str().into());
    }
    match outcome {
        Outcome::Built { files, .. } => {
            env.insert("debcover_result".into(), "built".into());
            for f in files {
                claim.products.insert(f.name.clone(), f.sha256.clone());
            }
            if let Some(spec) = spec {
                // The node's own view; the coordinator's verdict also weighs the archive.
                let official: std::collections::HashMap<&str, &str> = spec
                    .buildinfo
                    .checksums
                    .iter()
                    .filter_map(|c| c.sha256.as_deref().map(|s| (c.name.as_str(), s)))
                    .collect();
                let same = files.iter().filter(|f| f.name.ends_with("deb")).all(|f| official.get(f.name.as_str()) == Some(&f.sha256.as_str()));
                env.insert("debcover_matches_buildinfo".into(), same.to_string());
            }
            claim.command = match backend {
                Some(BackendKind::Local) => vec!["dpkg-buildpackage".into(), "-us".into(), "-uc".into()],
                Some(BackendKind::Debrebuild) => vec!["debrebuild".into()],
                Some(BackendKind::Command) => vec!["command".into()],
                None => Vec::new(),
            };
        }
        Outcome::Failed { kind, .. } => {
            env.insert("debcover_result".into(), format!("failed:{}", kind.as_str()));
        }
        Outcome::EnvironmentMismatch { .. } => {
            env.insert("debcover_result".into(), "environment-mismatch".into());
        }
        Outcome::Cancelled => {}
    }
    sign(&me.key, &claim)
}

/// What the produced .debs of a built result say about their build (read on a blocking
/// thread). A .deb that cannot be read is noted in the node's log and the build log; the
/// result is reported all the same.
async fn embedded_info(outcome: &Outcome, log: &mut Log) -> Embedded {
    let Outcome::Built { files, .. } = outcome else { return Embedded::default() };
    let files = files.clone();
    let embedded = tokio::task::spawn_blocking(move || crate::embedded::read_produced(&files))
        .await
        .unwrap_or_else(|e| Embedded { truncated: true, notes: vec![format!("reading the produced .debs failed: {e}")], ..Default::default() });
    for note in &embedded.notes {
        tracing::warn!(note = %note, "embedded build info of a produced binary not read");
        let _ = log.note(&format!("embedded build info: {note}"));
    }
    embedded
}

async fn report(
    c: &mut Client,
    job_id: i64,
    fence: i64,
    outcome: &Outcome,
    log: &Log,
    attestation: &[u8],
    embedded: Embedded,
) -> Result<pb::ReportResponse> {
    use pb::report_chunk::Chunk;
    let mut header = pb::ReportHeader {
        job_id,
        fence,
        embedded: embedded.binaries,
        embedded_truncated: embedded.truncated,
        ..Default::default()
    };
    let mut artifacts = Vec::new();
    let mut buildinfo = None;
    let mut diffoscope = None;
    match outcome {
        Outcome::Built { files, buildinfo: b, diffoscope: d } => {
            header.result = "built".into();
            header.message = format!("{} files produced", files.len());
            artifacts = files.iter().map(|f| pb::Artifact { name: f.name.clone(), size: f.size, sha256: f.sha256.clone() }).collect();
            buildinfo = b.clone();
            if let Some(p) = d {
                diffoscope = tokio::fs::read(p).await.ok();
            }
        }
        Outcome::Failed { kind, message } => {
            header.result = "failed".into();
            header.failure_code = kind.as_str().into();
            header.message = message.clone();
        }
        Outcome::EnvironmentMismatch { differences } => {
            header.result = "environment-mismatch".into();
            header.message = format!("{} differences from the recorded build environment", differences.len());
            header.environment_differences = differences.clone();
        }
        Outcome::Cancelled => bail!("a cancelled build has no result"),
    }
    let log_bytes = tokio::fs::read(log.path()).await.unwrap_or_default();
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=8 {
        let mut msgs = vec![pb::ReportChunk { chunk: Some(Chunk::Header(header.clone())) }];
        msgs.extend(artifacts.iter().cloned().map(|a| pb::ReportChunk { chunk: Some(Chunk::Artifact(a)) }));
        if let Some(b) = &buildinfo {
            msgs.extend(chunks_of(b, Chunk::Buildinfo));
        }
        if let Some(d) = &diffoscope {
            msgs.extend(chunks_of(d, Chunk::Diffoscope));
        }
        msgs.extend(chunks_of(&log_bytes, Chunk::Log));
        msgs.extend(chunks_of(attestation, Chunk::Attestation));
        match c.report_result(tokio_stream::iter(msgs)).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) if transient(&s) && attempt < 8 => {
                tracing::warn!(attempt, error = %s.message(), retry_in = ?delay, "report failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(s) => bail!("the coordinator refused the report: {:?}: {}", s.code(), s.message()),
        }
    }
    bail!("the report could not be delivered")
}

/// Where the node keeps its key by default.
pub fn default_key_path(work_dir: &std::path::Path) -> PathBuf {
    work_dir.join("node-key.pem")
}

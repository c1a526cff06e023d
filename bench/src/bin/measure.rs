//! `debcover-measure`: the measurements behind BENCHMARKS.md.
//!
//! - `parse DIR`: raw parse rate of every `*.buildinfo` under DIR (single thread, files read
//!   into memory first so disk speed is not measured).
//! - `query --server URL PACKAGE [--before V] [--suite S] [-n N] [--grep DIR]`: latency of
//!   the BuiltWith RPC as a client sees it (min, median, p95 over N calls after one warm-up):
//!   (a) every page's bytes received (a codec that keeps the raw message, as the old
//!   single-message measurement did), (b) received and decoded by tonic/prost into
//!   `BuiltWithPage` messages, (c) received and turned into the domain values the CLI renders,
//!   every column and index checked. With `--grep DIR`, the grep baseline in the same run and the ratios.
//! - `sched --server URL --nodes N`: scheduler throughput with N simulated nodes doing
//!   zero-time builds of the queued jobs over gRPC (cycles/s, claim and report latency,
//!   duplicates, lost jobs); see `bench/sched.sh`.
//! - `hash [PATH...] [--big-mib N] [--reps N]`: the rebuilder's `sha256_file` against the
//!   stock `sha256sum` on the same files (the PATHs, default the .deb files under
//!   /var/cache/apt/archives, and a generated N MiB file), page cache warm, median of N
//!   repetitions: MB/s of both and the ratio; see `bench/hash.sh`.
//! - `grep DIR PACKAGE`: the baseline, scanning the files for ` PACKAGE (= ` with grep
//!   (median of 3 runs after a warm-up; a lower bound, since grep does no version comparison).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Measurements for BENCHMARKS.md")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Raw parse rate of the buildinfos under DIR.
    Parse { dir: PathBuf },
    /// BuiltWith RPC latency.
    Query {
        #[arg(long, default_value = "http://127.0.0.1:7430")]
        server: String,
        package: String,
        #[arg(long)]
        before: Option<String>,
        #[arg(long)]
        suite: Option<String>,
        #[arg(short, default_value_t = 20)]
        n: usize,
        /// Also run the grep baseline over this directory and print ratios.
        #[arg(long)]
        grep: Option<PathBuf>,
        /// HTTP/2 stream and connection windows of the client, MiB (0: the library's defaults;
        /// default: the `debcover` command's).
        #[arg(long, default_value_t = debcover_wire::channel::Tuning::LARGE_ANSWERS.window_bytes.unwrap_or(0) >> 20)]
        window_mib: u32,
        /// Largest HTTP/2 frame the client accepts, KiB (0: the protocol's default, 16;
        /// default: the `debcover` command's).
        #[arg(long, default_value_t = debcover_wire::channel::Tuning::LARGE_ANSWERS.max_frame_bytes.unwrap_or(0) >> 10)]
        frame_kib: u32,
    },
    /// grep baseline for the same question.
    Grep { dir: PathBuf, package: String },
    /// The client's share of a `built-with` answer, without the network: fetch its pages once,
    /// then time turning them into domain values (every column checked), N times.
    ReadPages {
        #[arg(long, default_value = "http://127.0.0.1:7430")]
        server: String,
        package: String,
        #[arg(short, default_value_t = 50)]
        n: usize,
    },
    /// Hashing throughput: the rebuilder's sha256_file against sha256sum.
    Hash {
        /// Files or directories of real artifacts [default: /var/cache/apt/archives].
        paths: Vec<PathBuf>,
        /// Size of the generated large file, MiB (0: none).
        #[arg(long, default_value_t = 1024)]
        big_mib: u64,
        /// Directory for the generated file (removed afterwards) [default: the temp dir].
        #[arg(long)]
        tmp: Option<PathBuf>,
        /// Repetitions (the median is reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
    /// Attestation verification rate (signatures/s): the coordinator's check of a reported
    /// link, the offline `debcover verify` over an export, bare ed25519 as the floor.
    Verify {
        /// Links (distinct operators' signatures) in the export checked offline.
        #[arg(long, default_value_t = 16)]
        links: usize,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// OpenPGP signature checks of buildinfos (checks/s, one core): every `.buildinfo` of DIR
    /// checked against the keyrings, as ingestion does with `--buildinfo-keyring`.
    Signatures {
        /// Keyring files (armored or binary).
        #[arg(long = "keyring")]
        keyrings: Vec<PathBuf>,
        /// Directory of buildinfos.
        dir: PathBuf,
        /// Seconds per measurement.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
    /// Scheduler throughput with simulated zero-time nodes.
    Sched {
        #[arg(long, default_value = "http://127.0.0.1:7430")]
        server: String,
        /// File holding the coordinator's admin token.
        #[arg(long)]
        admin_token_file: PathBuf,
        /// Concurrent nodes.
        #[arg(long)]
        nodes: usize,
        /// Operators the nodes are spread over.
        #[arg(long, default_value_t = 4)]
        operators: usize,
        /// Node name prefix (unique per run on one database).
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
}

fn files(dir: &PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "buildinfo"))
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

fn stats(mut d: Vec<Duration>) -> (Duration, Duration, Duration) {
    d.sort();
    let p95 = d[((d.len() as f64 * 0.95).ceil() as usize).saturating_sub(1).min(d.len() - 1)];
    (d[0], d[d.len() / 2], p95)
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Parse { dir } => {
            let data: Vec<Vec<u8>> = files(&dir).iter().map(std::fs::read).collect::<Result<_, _>>()?;
            let bytes: usize = data.iter().map(Vec::len).sum();
            let start = Instant::now();
            let mut deps = 0usize;
            for d in &data {
                deps += debcover_formats::Buildinfo::parse(d).context("corpus file does not parse")?.installed_build_depends.len();
            }
            let t = start.elapsed().as_secs_f64();
            println!(
                "parsed {} buildinfos ({:.1} MB, {} IBD entries) in {:.2} s: {:.0} files/s, {:.1} MB/s",
                data.len(),
                bytes as f64 / 1e6,
                deps,
                t,
                data.len() as f64 / t,
                bytes as f64 / 1e6 / t
            );
        }
        Cmd::Query { server, package, before, suite, n, grep, window_mib, frame_kib } => {
            let rt = tokio::runtime::Runtime::new()?;
            let medians = rt.block_on(async {
                let mut endpoint = tonic::transport::Endpoint::from_shared(server)?;
                if window_mib > 0 {
                    let w = window_mib * 1024 * 1024;
                    endpoint = endpoint.initial_stream_window_size(w).initial_connection_window_size(w);
                }
                if frame_kib > 0 {
                    endpoint = endpoint.max_frame_size(frame_kib * 1024);
                }
                let channel = endpoint.connect().await?;
                let mut c = debcover_proto::v1::coordinator_client::CoordinatorClient::new(channel.clone())
                    .max_decoding_message_size(debcover_wire::MAX_MESSAGE_BYTES);
                let req = debcover_proto::v1::BuiltWithRequest {
                    package: package.clone(),
                    before: before.clone().unwrap_or_default(),
                    suite: suite.clone().unwrap_or_default(),
                    architecture: String::new(),
                };
                let label = format!(
                    "built-with {package} before={} suite={}",
                    before.as_deref().unwrap_or("-"),
                    suite.as_deref().unwrap_or("-")
                );
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                let report = |what: &str, builds: usize, times: Vec<Duration>| {
                    let (min, med, p95) = stats(times);
                    println!(
                        "{label} [{what}]: {builds} builds; min {:.1} ms, median {:.1} ms, p95 {:.1} ms over {n} calls",
                        ms(min),
                        ms(med),
                        ms(p95)
                    );
                    med
                };
                let start = Instant::now();
                let warm = receive(&mut c, &req).await?;
                println!("{label} [BuiltWith, first call (warm-up)]: {:.1} ms", ms(start.elapsed()));
                let mut expected = debcover_wire::built_with::Pages::new();
                for p in &warm {
                    expected.add(p)?;
                }
                let expected = expected.finish();
                let builds = expected.builds.len();
                println!(
                    "  answer: {builds} builds in {} pages, {:.1} MB encoded, {} strings",
                    warm.len(),
                    warm.iter().map(prost::Message::encoded_len).sum::<usize>() as f64 / 1e6,
                    warm.iter().map(|p| p.string_lengths.len()).sum::<usize>()
                );
                let mut raw = Vec::new();
                let mut raw_bytes = 0;
                for _ in 0..n {
                    let start = Instant::now();
                    raw_bytes = receive_raw(channel.clone(), &req).await?.iter().map(|b| b.len()).sum::<usize>();
                    raw.push(start.elapsed());
                }
                anyhow::ensure!(
                    raw_bytes == warm.iter().map(prost::Message::encoded_len).sum::<usize>(),
                    "raw pages are not the messages' bytes"
                );
                let (mut recv, mut dec) = (Vec::new(), Vec::new());
                for _ in 0..n {
                    let start = Instant::now();
                    let pages = receive(&mut c, &req).await?;
                    recv.push(start.elapsed());
                    let mut p = debcover_wire::built_with::Pages::new();
                    for page in &pages {
                        p.add(page)?;
                    }
                    dec.push(start.elapsed());
                    anyhow::ensure!(p.finish().builds.len() == builds, "answers differ between calls");
                }
                Ok::<_, anyhow::Error>(vec![
                    ("BuiltWith, received", report("BuiltWith, every page's bytes received", builds, raw)),
                    ("BuiltWith, messages", report("BuiltWith, received + decoded into messages", builds, recv)),
                    ("BuiltWith, decoded", report("BuiltWith, received + decoded into domain values", builds, dec)),
                ])
            })?;
            if let Some(dir) = grep {
                let (g, found) = grep_baseline(&dir, &package)?;
                println!("grep baseline (same run): {found} files, median {:.0} ms", g.as_secs_f64() * 1e3);
                for (what, m) in medians {
                    println!("  {what}: {:.1}x faster than grep", g.as_secs_f64() / m.as_secs_f64());
                }
            }
        }
        Cmd::Sched { server, admin_token_file, nodes, operators, prefix, timeout } => {
            use debcover_bench::sched;
            let token = std::fs::read_to_string(&admin_token_file)
                .with_context(|| format!("cannot read {}", admin_token_file.display()))?;
            let opts = sched::Options {
                server,
                admin_token: token.trim().to_owned(),
                nodes,
                operators,
                prefix,
                timeout: Duration::from_secs(timeout),
            };
            let o = tokio::runtime::Runtime::new()?.block_on(sched::run(&opts))?;
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let q = |v: &[Duration], p| ms(sched::quantile(v, p));
            println!(
                "sched nodes={nodes}: {} jobs, {} cycles in {:.2} s = {:.0} cycles/s; duplicates {}, lost {}, empty claims {}",
                o.jobs,
                o.cycles,
                o.elapsed.as_secs_f64(),
                o.cycles as f64 / o.elapsed.as_secs_f64(),
                o.duplicates,
                o.lost,
                o.empty_claims
            );
            println!(
                "  claim ms: p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}; report ms: p50 {:.2} p95 {:.2} p99 {:.2} max {:.2}",
                q(&o.claim, 0.5),
                q(&o.claim, 0.95),
                q(&o.claim, 0.99),
                q(&o.claim, 1.0),
                q(&o.report, 0.5),
                q(&o.report, 0.95),
                q(&o.report, 0.99),
                q(&o.report, 1.0)
            );
            if o.duplicates > 0 || o.lost > 0 {
                anyhow::bail!("scheduler lost or duplicated jobs");
            }
        }
        Cmd::Hash { paths, big_mib, tmp, reps } => hash(paths, big_mib, tmp, reps)?,
        Cmd::Signatures { keyrings, dir, seconds } => {
            let ring = debcover_core::signature::Keyring::load(&keyrings).map_err(anyhow::Error::msg)?;
            let texts: Vec<(PathBuf, Vec<u8>)> =
                files(&dir).into_iter().map(|f| std::fs::read(&f).map(|b| (f, b))).collect::<std::io::Result<_>>()?;
            anyhow::ensure!(!texts.is_empty(), "{}: no .buildinfo files", dir.display());
            let mut outcomes = std::collections::BTreeMap::new();
            for (f, t) in &texts {
                let c = ring.check(t);
                let kind = match &c {
                    debcover_core::signature::Check::By { .. } => "verified",
                    debcover_core::signature::Check::Unsigned => "unsigned",
                    debcover_core::signature::Check::UnknownSigner { .. } => "unknown signer",
                    debcover_core::signature::Check::Unreadable { .. } => "unreadable",
                    debcover_core::signature::Check::Bad { .. } => {
                        eprintln!("{}: {c}", f.display());
                        "bad"
                    }
                };
                *outcomes.entry(kind).or_insert(0usize) += 1;
            }
            let (mut n, start) = (0usize, Instant::now());
            while start.elapsed().as_secs_f64() < seconds {
                for (_, t) in &texts {
                    std::hint::black_box(ring.check(t));
                }
                n += texts.len();
            }
            let rate = n as f64 / start.elapsed().as_secs_f64();
            println!("{} files ({outcomes:?}), {} keys: {rate:.0} checks/s on one core", texts.len(), ring.len());
        }
        Cmd::Verify { links, seconds } => {
            let r = debcover_bench::verify::run(links, seconds)?;
            println!("ed25519 verify (floor):          {:>9.0} signatures/s", r.bare);
            println!("coordinator check of a link:     {:>9.0} signatures/s", r.coordinator);
            println!("debcover verify ({} links + layout): {:>9.0} signatures/s", r.links, r.offline);
        }
        Cmd::ReadPages { server, package, n } => {
            let rt = tokio::runtime::Runtime::new()?;
            let pages = rt.block_on(async {
                let channel = debcover_cli::client::channel(&server).await?;
                let mut c = debcover_proto::v1::coordinator_client::CoordinatorClient::new(channel)
                    .max_decoding_message_size(debcover_wire::MAX_MESSAGE_BYTES);
                let req = debcover_proto::v1::BuiltWithRequest { package: package.clone(), ..Default::default() };
                receive(&mut c, &req).await
            })?;
            let bytes: usize = pages.iter().map(prost::Message::encoded_len).sum();
            let mut times = Vec::new();
            let mut builds = 0;
            for _ in 0..n {
                let start = Instant::now();
                let mut p = debcover_wire::built_with::Pages::new();
                for page in std::hint::black_box(&pages) {
                    p.add(page)?;
                }
                builds = std::hint::black_box(p.finish()).builds.len();
                times.push(start.elapsed());
            }
            let (min, med, p95) = stats(times);
            println!(
                "pages of {package} ({builds} builds, {} pages, {bytes} bytes), decoded into domain values: min {:.2} ms, median {:.2} ms, p95 {:.2} ms over {n}",
                pages.len(),
                min.as_secs_f64() * 1e3,
                med.as_secs_f64() * 1e3,
                p95.as_secs_f64() * 1e3
            );
        }
        Cmd::Grep { dir, package } => {
            let (med, found) = grep_baseline(&dir, &package)?;
            println!("grep -rlF \" {package} (= \": {found} files; median {:.0} ms (warm cache)", med.as_secs_f64() * 1e3);
        }
    }
    Ok(())
}

/// `debcover-measure hash`: see the module documentation.
fn hash(paths: Vec<PathBuf>, big_mib: u64, tmp: Option<PathBuf>, reps: usize) -> Result<()> {
    use debcover_bench::hash;
    let paths = if paths.is_empty() { vec![PathBuf::from("/var/cache/apt/archives")] } else { paths };
    let mut groups = Vec::new();
    let files = hash::collect("artifacts", &paths)?;
    if files.files.is_empty() {
        eprintln!("no files under {paths:?}: timing the generated file only");
    } else {
        groups.push(files);
    }
    // The generated file lives in a directory of our own, removed however this ends.
    let dir = tmp.unwrap_or_else(std::env::temp_dir).join(format!("debcover-hash-{}", std::process::id()));
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    if big_mib > 0 {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let big = dir.join("big.bin");
        hash::generate(&big, big_mib)?;
        groups.push(hash::collect(&format!("{big_mib} MiB file"), &[big])?);
    }
    anyhow::ensure!(!groups.is_empty(), "nothing to hash: give files or directories, or --big-mib");
    let mut total_bytes = 0u64;
    let (mut ours, mut theirs) = (Duration::ZERO, Duration::ZERO);
    for g in &groups {
        hash::verify(g)?;
        let t = hash::time(g, reps)?;
        println!(
            "hash {} ({} files, {:.1} MB): sha256_file {:.0} MB/s, sha256sum {:.0} MB/s, ratio {:.2}x",
            g.name,
            g.files.len(),
            g.bytes as f64 / 1e6,
            t.mbps(t.ours),
            t.mbps(t.sha256sum),
            t.ratio()
        );
        total_bytes += g.bytes;
        ours += t.ours;
        theirs += t.sha256sum;
    }
    let mb = total_bytes as f64 / 1e6;
    println!(
        "hash all ({:.1} MB, median of {reps}): sha256_file {:.0} MB/s, sha256sum {:.0} MB/s, ratio {:.2}x",
        mb,
        mb / ours.as_secs_f64(),
        mb / theirs.as_secs_f64(),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}

/// The grep baseline: `grep -rlF " PACKAGE (= " DIR`, median of 3 after a warm-up.
fn grep_baseline(dir: &PathBuf, package: &str) -> Result<(Duration, usize)> {
    let pattern = format!(" {package} (= ");
    let run = || -> Result<(Duration, usize)> {
        let start = Instant::now();
        let out = std::process::Command::new("grep").args(["-rlF", &pattern]).arg(dir).output()?;
        Ok((start.elapsed(), out.stdout.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()))
    };
    run()?;
    let mut times = Vec::new();
    let mut found = 0;
    for _ in 0..3 {
        let (t, n) = run()?;
        times.push(t);
        found = n;
    }
    let (_, med, _) = stats(times);
    Ok((med, found))
}

/// A client codec that keeps each `BuiltWithPage` as the bytes that arrived: what receiving
/// costs before any decoding.
#[derive(Default)]
struct RawPages;

impl tonic::codec::Codec for RawPages {
    type Encode = debcover_proto::v1::BuiltWithRequest;
    type Decode = prost::bytes::Bytes;
    type Encoder = RawPages;
    type Decoder = RawPages;
    fn encoder(&mut self) -> RawPages {
        RawPages
    }
    fn decoder(&mut self) -> RawPages {
        RawPages
    }
}

impl tonic::codec::Encoder for RawPages {
    type Item = debcover_proto::v1::BuiltWithRequest;
    type Error = tonic::Status;
    fn encode(&mut self, item: Self::Item, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        prost::Message::encode(&item, dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Decoder for RawPages {
    type Item = prost::bytes::Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Self::Item>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The raw bytes of every page of one `built-with` answer.
async fn receive_raw(
    channel: tonic::transport::Channel,
    req: &debcover_proto::v1::BuiltWithRequest,
) -> Result<Vec<prost::bytes::Bytes>> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(debcover_wire::MAX_MESSAGE_BYTES);
    grpc.ready().await?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/debcover.v1.Coordinator/BuiltWith");
    let mut stream = grpc.server_streaming(tonic::Request::new(req.clone()), path, RawPages).await?.into_inner();
    let mut pages = Vec::new();
    while let Some(p) = stream.message().await? {
        pages.push(p);
    }
    Ok(pages)
}

/// Every page of one `built-with` answer.
async fn receive<T>(
    c: &mut debcover_proto::v1::coordinator_client::CoordinatorClient<T>,
    req: &debcover_proto::v1::BuiltWithRequest,
) -> Result<Vec<debcover_proto::v1::BuiltWithPage>>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<tonic::codegen::StdError>,
    T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
    <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
{
    let mut stream = c.built_with(req.clone()).await?.into_inner();
    let mut pages = Vec::new();
    while let Some(p) = stream.message().await? {
        pages.push(p);
    }
    Ok(pages)
}

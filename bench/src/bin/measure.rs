//! `debcover-measure`: the measurements behind BENCHMARKS.md.
//!
//! - `parse DIR`: raw parse rate of every `*.buildinfo` under DIR (single thread, files read
//!   into memory first so disk speed is not measured).
//! - `query --server URL PACKAGE [--before V] [--suite S] [-n N]`: latency of the BuiltWith RPC
//!   as a client sees it (min, median, p95 over N calls after one warm-up).
//! - `sched --server URL --nodes N`: scheduler throughput with N simulated nodes doing
//!   zero-time builds of the queued jobs over gRPC (cycles/s, claim and report latency,
//!   duplicates, lost jobs); see `bench/sched.sh`.
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
    },
    /// grep baseline for the same question.
    Grep { dir: PathBuf, package: String },
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
        Cmd::Query { server, package, before, suite, n } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let mut c = debcover_proto::v1::coordinator_client::CoordinatorClient::connect(server)
                    .await?
                    .max_decoding_message_size(256 * 1024 * 1024);
                let req = debcover_proto::v1::BuiltWithRequest {
                    package: package.clone(),
                    before: before.clone().unwrap_or_default(),
                    suite: suite.clone().unwrap_or_default(),
                    architecture: String::new(),
                };
                let warm = c.built_with(req.clone()).await?.into_inner();
                let mut times = Vec::with_capacity(n);
                for _ in 0..n {
                    let start = Instant::now();
                    let r = c.built_with(req.clone()).await?.into_inner();
                    times.push(start.elapsed());
                    assert_eq!(r.builds.len(), warm.builds.len());
                }
                let (min, med, p95) = stats(times);
                println!(
                    "built-with {package} before={} suite={}: {} builds; min {:.1} ms, median {:.1} ms, p95 {:.1} ms over {n} calls",
                    before.as_deref().unwrap_or("-"),
                    suite.as_deref().unwrap_or("-"),
                    warm.builds.len(),
                    min.as_secs_f64() * 1e3,
                    med.as_secs_f64() * 1e3,
                    p95.as_secs_f64() * 1e3
                );
                Ok::<(), anyhow::Error>(())
            })?;
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
        Cmd::Grep { dir, package } => {
            let pattern = format!(" {package} (= ");
            let run = || -> Result<(Duration, usize)> {
                let start = Instant::now();
                let out = std::process::Command::new("grep").args(["-rlF", &pattern]).arg(&dir).output()?;
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
            let (min, med, _) = stats(times);
            println!(
                "grep -rlF {pattern:?}: {found} files; min {:.0} ms, median {:.0} ms (warm cache)",
                min.as_secs_f64() * 1e3,
                med.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}

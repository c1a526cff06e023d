//! `debcover-measure`: the measurements behind BENCHMARKS.md.
//!
//! - `parse DIR`: raw parse rate of every `*.buildinfo` under DIR (single thread, files read
//!   into memory first so disk speed is not measured).
//! - `query --server URL PACKAGE [--before V] [--suite S] [-n N] [--grep DIR]`: latency of
//!   the BuiltWith RPC as a client sees it, the whole answer received and decoded into
//!   messages (min, median, p95 over N calls after one warm-up); then the same for
//!   BuiltWithEncoded, (a) received, (b) received and every field read (each string checked as
//!   UTF-8, no copies), (c) received and decoded into the same messages as BuiltWith; then
//!   BuiltWithCompact, (a) received, (b) every field read in place (`CompactView`), (c) decoded
//!   into the domain values the CLI renders (checked equal to BuiltWith's). With
//!   `--grep DIR`, the grep baseline in the same run and the ratios.
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
        #[arg(long, default_value_t = debcover_coordinator::client::WINDOW_BYTES >> 20)]
        window_mib: u32,
        /// Largest HTTP/2 frame the client accepts, KiB (0: the protocol's default, 16;
        /// default: the `debcover` command's).
        #[arg(long, default_value_t = debcover_coordinator::client::MAX_FRAME_BYTES >> 10)]
        frame_kib: u32,
    },
    /// grep baseline for the same question.
    Grep { dir: PathBuf, package: String },
    /// The client's share of a compact `built-with` answer, without the network: fetch it
    /// once, then time `CompactView::parse` alone and parse + reading every field, N times each.
    ReadCompact {
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
                    .max_decoding_message_size(256 * 1024 * 1024);
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

                // BuiltWith: the answer decoded into messages by tonic/prost.
                let start = Instant::now();
                let warm = c.built_with(req.clone()).await?.into_inner();
                println!("{label} [BuiltWith, first call (warm-up)]: {:.1} ms", ms(start.elapsed()));
                let mut times = Vec::with_capacity(n);
                for _ in 0..n {
                    let start = Instant::now();
                    let r = c.built_with(req.clone()).await?.into_inner();
                    times.push(start.elapsed());
                    assert_eq!(r.builds.len(), warm.builds.len());
                }
                let standard = report("BuiltWith, decoded", warm.builds.len(), times);

                // BuiltWithEncoded: the same answer as bytes (servers before it: skipped).
                let warm_enc = match c.built_with_encoded(req.clone()).await {
                    Ok(r) => r.into_inner(),
                    Err(s) if s.code() == tonic::Code::Unimplemented => {
                        println!("  (this server has no BuiltWithEncoded)");
                        return Ok(vec![("BuiltWith, decoded", standard)]);
                    }
                    Err(s) => return Err(s.into()),
                };
                let decoded = <debcover_proto::v1::BuiltWithResponse as prost::Message>::decode(warm_enc.response.as_ref())?;
                anyhow::ensure!(decoded == warm, "BuiltWithEncoded differs from BuiltWith");
                let walked = walk_response(&warm_enc.response)?;
                anyhow::ensure!(walked.builds == warm.builds.len(), "walk found {} builds", walked.builds);
                println!(
                    "  answer: {} builds, {} binaries, {} shipping places, {} strings; {:.1} MB encoded",
                    walked.builds,
                    walked.binaries,
                    walked.places,
                    walked.strings,
                    warm_enc.response.len() as f64 / 1e6
                );
                let (mut recv, mut read, mut dec) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..n {
                    let start = Instant::now();
                    let r = c.built_with_encoded(req.clone()).await?.into_inner();
                    recv.push(start.elapsed());
                    let w = walk_response(&r.response)?;
                    read.push(start.elapsed());
                    assert_eq!(w.builds, warm.builds.len());
                    let start2 = Instant::now();
                    let d = <debcover_proto::v1::BuiltWithResponse as prost::Message>::decode(r.response.as_ref())?;
                    dec.push(recv.last().copied().unwrap_or_default() + start2.elapsed());
                    assert_eq!(d.builds.len(), warm.builds.len());
                }
                let builds = warm.builds.len();
                let r = report("BuiltWithEncoded, received", builds, recv);
                let w = report("BuiltWithEncoded, received + every field read", builds, read);
                let d = report("BuiltWithEncoded, received + decoded into messages", builds, dec);
                let mut rows = vec![
                    ("BuiltWith, decoded", standard),
                    ("Encoded, received", r),
                    ("Encoded, read", w),
                    ("Encoded, decoded", d),
                ];

                // BuiltWithCompact: the dictionary-coded answer, received as bytes and read in
                // place (servers before it: skipped).
                use debcover_coordinator::service::compact::{self, CompactView};
                let warm_compact = match compact::request(channel.clone(), req.clone()).await {
                    Ok(r) => r,
                    Err(s) if s.code() == tonic::Code::Unimplemented => {
                        println!("  (this server has no BuiltWithCompact)");
                        return Ok(rows);
                    }
                    Err(s) => return Err(s.into()),
                };
                let expected = debcover_coordinator::service::convert::built_with_result(warm.clone());
                anyhow::ensure!(compact::decode_bytes(&warm_compact)? == expected, "BuiltWithCompact differs from BuiltWith");
                let start = Instant::now();
                let strings = CompactView::parse(&warm_compact).map(|v| v.len())?;
                let parse_ms = ms(start.elapsed());
                println!(
                    "  answer sizes: BuiltWithEncoded {} bytes, BuiltWithCompact {} bytes ({:.0}%); parsing the compact one (every column checked): {parse_ms:.1} ms for {strings} builds",
                    warm_enc.response.len(),
                    warm_compact.len(),
                    warm_compact.len() as f64 * 100.0 / warm_enc.response.len().max(1) as f64,
                );
                let (mut recv, mut read, mut dec) = (Vec::new(), Vec::new(), Vec::new());
                for _ in 0..n {
                    let start = Instant::now();
                    let r = compact::request(channel.clone(), req.clone()).await?;
                    recv.push(start.elapsed());
                    let walked = walk_compact(&r)?;
                    read.push(start.elapsed());
                    assert_eq!(walked, warm.builds.len());
                    let start2 = Instant::now();
                    let d = compact::decode_bytes(&r)?;
                    dec.push(recv.last().copied().unwrap_or_default() + start2.elapsed());
                    assert_eq!(d.builds.len(), warm.builds.len());
                }
                rows.push(("Compact, received", report("BuiltWithCompact, received", builds, recv)));
                rows.push(("Compact, read", report("BuiltWithCompact, received + every field read", builds, read)));
                rows.push(("Compact, decoded", report("BuiltWithCompact, received + decoded into domain values", builds, dec)));
                Ok::<_, anyhow::Error>(rows)
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
        Cmd::Verify { links, seconds } => {
            let r = debcover_bench::verify::run(links, seconds)?;
            println!("ed25519 verify (floor):          {:>9.0} signatures/s", r.bare);
            println!("coordinator check of a link:     {:>9.0} signatures/s", r.coordinator);
            println!("debcover verify ({} links + layout): {:>9.0} signatures/s", r.links, r.offline);
        }
        Cmd::ReadCompact { server, package, n } => {
            use debcover_coordinator::service::compact::{self, CompactView};
            let rt = tokio::runtime::Runtime::new()?;
            let answer = rt.block_on(async {
                let channel = debcover_coordinator::client::channel(&server).await?;
                let req = debcover_proto::v1::BuiltWithRequest { package: package.clone(), ..Default::default() };
                Ok::<_, anyhow::Error>(compact::request(channel, req).await?)
            })?;
            let builds = CompactView::parse(&answer)?.len();
            let (mut parse, mut read) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let start = Instant::now();
                std::hint::black_box(CompactView::parse(std::hint::black_box(&answer))?);
                parse.push(start.elapsed());
                let start = Instant::now();
                anyhow::ensure!(walk_compact(&answer)? == builds);
                read.push(start.elapsed());
            }
            for (what, times) in [("parse (every column checked)", parse), ("parse + every field read", read)] {
                let (min, med, p95) = stats(times);
                println!(
                    "compact answer for {package} ({builds} builds, {} bytes), {what}: min {:.2} ms, median {:.2} ms, p95 {:.2} ms over {n}",
                    answer.len(),
                    min.as_secs_f64() * 1e3,
                    med.as_secs_f64() * 1e3,
                    p95.as_secs_f64() * 1e3
                );
            }
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

/// Read every field of a compact answer in place: the view reads the bytes (strings as slices,
/// numbers into columns) and checks every column and index, then
/// each build's and each binary's fields are fetched (strings as slices of the table, hashes as
/// slices of the raw column, no copies). Returns the number of builds.
fn walk_compact(r: &[u8]) -> Result<usize> {
    use debcover_coordinator::service::compact::CompactView;
    use std::hint::black_box;
    let v = CompactView::parse(r)?;
    let mut builds = 0;
    for b in v.builds() {
        builds += 1;
        black_box((b.id(), b.source(), b.source_version(), b.version(), b.host_architecture(), b.build_date()));
        black_box((b.build_origin(), b.installed_build_depends(), b.signed(), b.origin_parts()));
        for a in b.architectures() {
            black_box(a);
        }
        for m in b.matched() {
            black_box(m);
        }
        for x in b.binaries() {
            black_box((x.package(), x.version(), x.architecture(), x.filename_parts(), x.size(), x.sha256()));
            for s in x.shipped_in() {
                black_box(s);
            }
        }
    }
    Ok(builds)
}

/// What reading every field of an encoded answer saw.
#[derive(Default)]
struct Walked {
    builds: usize,
    binaries: usize,
    places: usize,
    strings: usize,
}

/// Read every field of a serialized `BuiltWithResponse` without copying: each string is
/// checked as UTF-8, each number decoded, each nested message descended into.
fn walk_response(buf: &[u8]) -> Result<Walked> {
    let mut w = Walked::default();
    walk(buf, Msg::Response, &mut w)?;
    Ok(w)
}

#[derive(Clone, Copy, PartialEq)]
enum Msg {
    Response,
    Match,
    Summary,
    Dependency,
    Binary,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).context("truncated varint")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    anyhow::bail!("varint too long")
}

fn walk(buf: &[u8], msg: Msg, w: &mut Walked) -> Result<()> {
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                std::hint::black_box(varint(buf, &mut pos)?);
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?)?;
                let body = buf.get(pos..pos + len).context("truncated field")?;
                pos += len;
                let nested = match (msg, field) {
                    (Msg::Response, 1) => Some(Msg::Match),
                    (Msg::Match, 1) => Some(Msg::Summary),
                    (Msg::Match, 2) => Some(Msg::Dependency),
                    (Msg::Match, 3) => Some(Msg::Binary),
                    _ => None,
                };
                match nested {
                    Some(m) => {
                        match m {
                            Msg::Match => w.builds += 1,
                            Msg::Binary => w.binaries += 1,
                            _ => {}
                        }
                        walk(body, m, w)?;
                    }
                    None => {
                        std::hint::black_box(std::str::from_utf8(body)?);
                        w.strings += 1;
                        if msg == Msg::Binary && field == 7 {
                            w.places += 1;
                        }
                    }
                }
            }
            other => anyhow::bail!("unexpected wire type {other}"),
        }
    }
    Ok(())
}

//! Hashing throughput of the rebuilder node: `debcover_rebuilder::hash::sha256_file` against
//! the stock `sha256sum` on the same files, page cache warm (`debcover-measure hash`).
//!
//! Files are hashed one after the other on one thread by both (one `sha256sum` process gets all
//! of a group's files as arguments, as a script would call it), in alternating order on each
//! repetition; the median of the repetitions is reported. Every digest of ours is checked
//! against `sha256sum`'s before anything is timed.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::RngCore;
use rand::SeedableRng;

/// A set of files timed together.
#[derive(Debug, Clone)]
pub struct Group {
    /// Name in the report (`debs`, `1 GiB file`).
    pub name: String,
    /// The files.
    pub files: Vec<PathBuf>,
    /// Their total size.
    pub bytes: u64,
}

/// Median times of one group.
#[derive(Debug, Clone)]
pub struct Timing {
    /// The group.
    pub group: Group,
    /// `sha256_file` over every file, median.
    pub ours: Duration,
    /// `sha256sum FILES...`, median.
    pub sha256sum: Duration,
}

impl Timing {
    /// MB/s (10^6 bytes) of a time over this group.
    pub fn mbps(&self, d: Duration) -> f64 {
        self.group.bytes as f64 / 1e6 / d.as_secs_f64()
    }

    /// Throughput of ours over sha256sum's (above 1: ours is faster).
    pub fn ratio(&self) -> f64 {
        self.sha256sum.as_secs_f64() / self.ours.as_secs_f64()
    }
}

/// Regular files under `paths` (files or directories, recursively), sorted, with their total
/// size.
pub fn collect(name: &str, paths: &[PathBuf]) -> Result<Group> {
    let mut files = Vec::new();
    for p in paths {
        for e in walkdir::WalkDir::new(p) {
            let e = e.with_context(|| format!("cannot list {}", p.display()))?;
            if e.file_type().is_file() {
                files.push(e.into_path());
            }
        }
    }
    files.sort();
    let mut bytes = 0;
    for f in &files {
        bytes += std::fs::metadata(f).with_context(|| format!("cannot stat {}", f.display()))?.len();
    }
    Ok(Group { name: name.to_owned(), files, bytes })
}

/// Write `mib` MiB of pseudo-random bytes (ChaCha8, seed 1: incompressible, the same on every
/// run) to `path`.
pub fn generate(path: &Path, mib: u64) -> Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?);
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        rng.fill_bytes(&mut block);
        out.write_all(&block).with_context(|| format!("cannot write {}", path.display()))?;
    }
    out.flush().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Hash every file with `sha256_file`; returns the digests by path.
fn ours(files: &[PathBuf]) -> Result<Vec<(u64, String)>> {
    files
        .iter()
        .map(|f| debcover_rebuilder::hash::sha256_file(f).with_context(|| format!("sha256_file {}", f.display())))
        .collect()
}

/// Run `sha256sum FILES...`; returns the digest of each file by path.
fn sha256sum(files: &[PathBuf]) -> Result<HashMap<PathBuf, String>> {
    let out = Command::new("sha256sum")
        .arg("--")
        .args(files)
        .stdin(Stdio::null())
        .output()
        .context("cannot run sha256sum (coreutils)")?;
    if !out.status.success() {
        bail!("sha256sum failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8(out.stdout).context("sha256sum printed non-UTF-8 output")?;
    let mut map = HashMap::new();
    for line in text.lines() {
        // "HEX  PATH" (binary mode prints "HEX *PATH").
        let (hex, path) = line.split_once(' ').with_context(|| format!("unexpected sha256sum line {line:?}"))?;
        map.insert(PathBuf::from(path.trim_start_matches([' ', '*'])), hex.to_owned());
    }
    Ok(map)
}

/// Check that both agree on every file (and warm the page cache).
pub fn verify(group: &Group) -> Result<()> {
    let theirs = sha256sum(&group.files)?;
    for (f, (size, hex)) in group.files.iter().zip(ours(&group.files)?) {
        let want = theirs.get(f).with_context(|| format!("sha256sum printed no line for {}", f.display()))?;
        if &hex != want {
            bail!("{}: sha256_file says {hex}, sha256sum says {want}", f.display());
        }
        let len = std::fs::metadata(f)?.len();
        if size != len {
            bail!("{}: sha256_file read {size} bytes of {len}", f.display());
        }
    }
    Ok(())
}

/// Median of `reps` timings of each, alternating which goes first.
pub fn time(group: &Group, reps: usize) -> Result<Timing> {
    let mut a = Vec::with_capacity(reps);
    let mut b = Vec::with_capacity(reps);
    for rep in 0..reps.max(1) {
        let run_ours = |v: &mut Vec<Duration>| -> Result<()> {
            let start = Instant::now();
            std::hint::black_box(ours(&group.files)?);
            v.push(start.elapsed());
            Ok(())
        };
        let run_theirs = |v: &mut Vec<Duration>| -> Result<()> {
            let start = Instant::now();
            let status = Command::new("sha256sum")
                .arg("--")
                .args(&group.files)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .status()
                .context("cannot run sha256sum")?;
            v.push(start.elapsed());
            if !status.success() {
                bail!("sha256sum failed ({status})");
            }
            Ok(())
        };
        if rep % 2 == 0 {
            run_ours(&mut a)?;
            run_theirs(&mut b)?;
        } else {
            run_theirs(&mut b)?;
            run_ours(&mut a)?;
        }
    }
    Ok(Timing { group: group.clone(), ours: median(a), sha256sum: median(b) })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

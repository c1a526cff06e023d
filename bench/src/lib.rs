//! Deterministic benchmark corpus generator for debcover.
//!
//! Input: a real Debian `Packages` index. Output: one `.buildinfo` per planned build (real
//! sources and their real binaries, plus older versions and binNMUs of real sources to reach
//! the requested count), an aggregated `Buildinfo.xz`, a `Packages` index of the produced
//! binaries whose `SHA256` values equal the buildinfo checksums, and a `manifest.json`.
//!
//! Same input + same seed gives byte-identical output: all randomness comes from ChaCha8
//! streams keyed by (seed, build file name), and no floating-point transcendental function
//! is used. Nothing here reads the clock or the environment.
//!
//! Code map: [`archive`] parses the input, [`version`] compares and derives Debian versions,
//! `plan` plans builds and renders them, `render` holds text helpers (dates, clearsigning).
//! [`sched`] drives simulated rebuilder nodes against a coordinator (scheduler throughput).
//! [`hash`] times the rebuilder's artifact hashing against `sha256sum`.
//! [`verify`] times attestation verification (signatures/s).
#![deny(missing_docs)]

pub mod archive;
pub mod hash;
pub mod sched;
pub mod verify;
mod base;
mod plan;
mod render;
pub mod version;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use archive::Archive;
pub use plan::{ArchClass, Build, Deb};

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The input `Packages` file is malformed.
    #[error("{path}: {msg}")]
    Input {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

/// Which outputs to write besides `Packages` and `manifest.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One file per build under `DIR/buildinfo/<shard>/`.
    Dir,
    /// One `DIR/Buildinfo.xz` with every paragraph.
    Index,
    /// Both.
    Both,
}

/// Generation parameters.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Number of builds.
    pub count: usize,
    /// RNG seed.
    pub seed: u64,
}

/// A name with its number of occurrences.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NameCount {
    /// Package name.
    pub name: String,
    /// Number of builds listing it in Installed-Build-Depends.
    pub count: u64,
}

/// Figures describing a generated corpus (`manifest.json`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Manifest {
    /// Generator seed.
    pub seed: u64,
    /// Number of builds.
    pub builds: u64,
    /// Builds per `Architecture` value.
    pub builds_by_architecture: std::collections::BTreeMap<String, u64>,
    /// Synthesized older builds (older versions, earlier binNMUs).
    pub historical_builds: u64,
    /// binNMU builds (`Binary-Only-Changes` present).
    pub binnmu_builds: u64,
    /// Clearsigned files.
    pub signed_builds: u64,
    /// Distinct source packages.
    pub sources: u64,
    /// Sum of Installed-Build-Depends entries.
    pub ibd_entries_total: u64,
    /// Mean entries per build.
    pub ibd_mean: f64,
    /// Fewest entries in one build.
    pub ibd_min: u64,
    /// Most entries in one build.
    pub ibd_max: u64,
    /// Distinct package names in Installed-Build-Depends.
    pub ibd_distinct_packages: u64,
    /// Produced .deb files (dbgsym included).
    pub debs: u64,
    /// Paragraphs in the generated `Packages`.
    pub packages_entries: u64,
    /// Total size of all .buildinfo files.
    pub buildinfo_bytes: u64,
    /// Mean .buildinfo size.
    pub buildinfo_mean_bytes: u64,
    /// Size of the generated `Packages`.
    pub packages_bytes: u64,
    /// Size of `Buildinfo.xz` (0 if not written).
    pub index_xz_bytes: u64,
    /// Most common Installed-Build-Depends package.
    pub most_common_ibd_package: Option<NameCount>,
    /// Most common `golang-*-dev`, `librust-*-dev` or `lib*-dev` package.
    pub most_common_library: Option<NameCount>,
    /// Same, excluding libraries present in every build (the build-essential base).
    pub most_common_library_not_in_every_build: Option<NameCount>,
    /// Most common `golang-*-dev` package.
    pub most_common_golang_dev: Option<NameCount>,
    /// Most common `librust-*-dev` package.
    pub most_common_librust_dev: Option<NameCount>,
}

/// Accumulates manifest figures over builds.
#[derive(Debug, Default)]
pub struct Stats {
    manifest: Manifest,
    sources: std::collections::HashSet<String>,
    ibd: HashMap<String, u64>,
}

fn is_library(name: &str) -> bool {
    name.ends_with("-dev") && (name.starts_with("golang-") || name.starts_with("librust-") || name.starts_with("lib"))
}

impl Stats {
    /// Adds one build.
    pub fn add(&mut self, b: &Build) {
        let m = &mut self.manifest;
        let n = b.ibd_names.len() as u64;
        m.ibd_min = if m.builds == 0 { n } else { m.ibd_min.min(n) };
        m.ibd_max = m.ibd_max.max(n);
        m.builds += 1;
        *m.builds_by_architecture.entry(b.architecture.clone()).or_default() += 1;
        m.historical_builds += u64::from(b.historical);
        m.binnmu_builds += u64::from(b.paragraph.contains("\nBinary-Only-Changes:"));
        m.signed_builds += u64::from(b.signed);
        m.ibd_entries_total += n;
        m.debs += b.debs.len() as u64;
        m.packages_entries += b.packages.matches("\nSHA256: ").count() as u64;
        m.buildinfo_bytes += b.text.len() as u64;
        m.packages_bytes += b.packages.len() as u64;
        if !self.sources.contains(&b.source) {
            self.sources.insert(b.source.clone());
        }
        for name in &b.ibd_names {
            match self.ibd.get_mut(name.as_str()) {
                Some(c) => *c += 1,
                None => {
                    self.ibd.insert(name.clone(), 1);
                }
            }
        }
    }

    /// The figures so far.
    pub fn finish(&self) -> Manifest {
        let mut m = self.manifest.clone();
        m.sources = self.sources.len() as u64;
        m.ibd_distinct_packages = self.ibd.len() as u64;
        if m.builds > 0 {
            m.ibd_mean = (m.ibd_entries_total as f64 / m.builds as f64 * 10.0).round() / 10.0;
            m.buildinfo_mean_bytes = m.buildinfo_bytes / m.builds;
        }
        let best = |f: &dyn Fn(&str, u64) -> bool| {
            self.ibd
                .iter()
                .filter(|(n, c)| f(n, **c))
                .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                .map(|(n, c)| NameCount { name: n.clone(), count: *c })
        };
        let builds = m.builds;
        m.most_common_ibd_package = best(&|_, _| true);
        m.most_common_library = best(&|n, _| is_library(n));
        m.most_common_library_not_in_every_build = best(&|n, c| is_library(n) && c < builds);
        m.most_common_golang_dev = best(&|n, _| n.starts_with("golang-") && n.ends_with("-dev"));
        m.most_common_librust_dev = best(&|n, _| n.starts_with("librust-") && n.ends_with("-dev"));
        m
    }
}

/// Generates the corpus in memory-friendly streaming fashion: `sink` receives every build in
/// output order. Returns the manifest figures (without `index_xz_bytes`).
pub fn generate(archive: &Archive, config: &Config, mut sink: impl FnMut(&Build) -> Result<(), Error>) -> Result<Manifest, Error> {
    let mut renderer = plan::Renderer::new(archive, config.seed);
    let plans = renderer.plans(config.count);
    let mut stats = Stats::default();
    for plan in &plans {
        let build = renderer.render(plan);
        stats.add(&build);
        sink(&build)?;
    }
    let mut m = stats.finish();
    m.seed = config.seed;
    Ok(m)
}

/// The shard directory of a build file: its first letter, or `libX` for `lib*` sources
/// (like the Debian pool), so that no directory gets huge.
pub fn shard(file_name: &str) -> &str {
    if file_name.starts_with("lib") && file_name.len() > 3 { &file_name[..4] } else { &file_name[..1] }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// Generates the corpus and writes it under `out`: `buildinfo/` and/or `Buildinfo.xz`
/// (per `format`), `Packages`, `manifest.json`. An existing `out/buildinfo/` is replaced.
pub fn write_corpus(archive: &Archive, config: &Config, out: &Path, format: Format) -> Result<Manifest, Error> {
    fs::create_dir_all(out).map_err(io_err(out))?;
    let dir = out.join("buildinfo");
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
    }
    let write_dir = matches!(format, Format::Dir | Format::Both);
    let write_index = matches!(format, Format::Index | Format::Both);
    let packages_path = out.join("Packages");
    let mut packages = std::io::BufWriter::new(fs::File::create(&packages_path).map_err(io_err(&packages_path))?);
    let index_path = out.join("Buildinfo.xz");
    // xz (preset 1: preset 6 would triple the run time) runs on its own thread; chunks of about 1 MB keep the channel cheap.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    let compressor = if write_index {
        let file = fs::File::create(&index_path).map_err(io_err(&index_path))?;
        Some(std::thread::spawn(move || -> std::io::Result<()> {
            let mut enc = xz2::write::XzEncoder::new(std::io::BufWriter::new(file), 1);
            for chunk in rx {
                enc.write_all(&chunk)?;
            }
            enc.finish()?.flush()
        }))
    } else {
        drop(rx);
        None
    };
    let mut chunk: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut first = true;
    let mut made_dirs = std::collections::HashSet::new();
    let mut manifest = generate(archive, config, |b| {
        if write_dir {
            let sub = dir.join(shard(&b.file_name));
            if made_dirs.insert(sub.clone()) {
                fs::create_dir_all(&sub).map_err(io_err(&sub))?;
            }
            let path = sub.join(&b.file_name);
            fs::write(&path, &b.text).map_err(io_err(&path))?;
        }
        if write_index {
            if !first {
                chunk.push(b'\n');
            }
            first = false;
            chunk.extend_from_slice(b.paragraph.as_bytes());
            if chunk.len() >= 1 << 20 {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(1 << 20));
                // A send error means the compressor died; its join reports why.
                let _ = tx.send(full);
            }
        }
        packages.write_all(b.packages.as_bytes()).map_err(io_err(&packages_path))
    })?;
    if write_index && !chunk.is_empty() {
        let _ = tx.send(chunk);
    }
    drop(tx);
    packages.flush().map_err(io_err(&packages_path))?;
    if let Some(handle) = compressor {
        handle.join().expect("xz thread panicked").map_err(io_err(&index_path))?;
        manifest.index_xz_bytes = fs::metadata(&index_path).map_err(io_err(&index_path))?.len();
    }
    let manifest_path = out.join("manifest.json");
    let mut json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    json.push('\n');
    fs::write(&manifest_path, json).map_err(io_err(&manifest_path))?;
    Ok(manifest)
}

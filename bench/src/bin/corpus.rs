//! `debcover-corpus`: writes the deterministic benchmark corpus (see bench/README.md).
//!
//! Exit codes: 0 on success, 1 on any error (message on stderr).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use debcover_bench::{Archive, Config, Format, write_corpus};

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Dir,
    Index,
    Both,
}

/// Generate a suite-sized corpus of realistic .buildinfo files from a real Packages file.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Real Packages index (plain, .gz or .xz).
    #[arg(long)]
    packages: PathBuf,
    /// Number of builds.
    #[arg(long, default_value_t = 35_000)]
    count: usize,
    /// RNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Write one file per build (dir), one Buildinfo.xz (index), or both.
    #[arg(long, value_enum, default_value = "both")]
    format: FormatArg,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let start = Instant::now();
    let archive = Archive::load(&args.packages).context("loading the Packages file")?;
    let loaded = start.elapsed();
    let format = match args.format {
        FormatArg::Dir => Format::Dir,
        FormatArg::Index => Format::Index,
        FormatArg::Both => Format::Both,
    };
    let config = Config { count: args.count, seed: args.seed };
    let manifest = write_corpus(&archive, &config, &args.out, format).context("writing the corpus")?;
    eprintln!(
        "{} builds, {} IBD entries (mean {}), {} bytes of buildinfo; loaded {} packages in {:.1?}, total {:.1?}",
        manifest.builds,
        manifest.ibd_entries_total,
        manifest.ibd_mean,
        manifest.buildinfo_bytes,
        archive.packages.len(),
        loaded,
        start.elapsed()
    );
    Ok(())
}

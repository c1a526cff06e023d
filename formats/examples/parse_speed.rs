//! Parse-speed check (run in release mode):
//!
//! ```text
//! cargo run --release -p debcover-formats --example parse_speed -- buildinfo DIR [ROUNDS]
//! cargo run --release -p debcover-formats --example parse_speed -- packages FILE
//! cargo run --release -p debcover-formats --example parse_speed -- sources FILE
//! ```

use std::time::Instant;

use debcover_formats::paragraph::Paragraphs;
use debcover_formats::{Buildinfo, PackagesEntry, SourcesEntry, compress};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let path = args.get(2).cloned().unwrap_or_default();
    match mode {
        "buildinfo" => {
            let rounds: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(200);
            let mut files = Vec::new();
            for e in std::fs::read_dir(&path).expect("read dir") {
                let p = e.expect("dir entry").path();
                files.push((p.display().to_string(), std::fs::read(&p).expect("read file")));
            }
            for (name, bytes) in &files {
                match Buildinfo::parse(bytes) {
                    Ok(b) => println!("ok   {name}: {} IBD, {} files", b.installed_build_depends.len(), b.checksums.len()),
                    Err(e) => println!("FAIL {name}: {e}"),
                }
            }
            for (name, b) in &files {
                // Best of 10 batches: the machine is shared, the minimum is the least disturbed.
                let mut best = f64::MAX;
                for _ in 0..10 {
                    let start = Instant::now();
                    for _ in 0..rounds / 10 + 1 {
                        let _ = Buildinfo::parse(b);
                    }
                    best = best.min(start.elapsed().as_secs_f64() / (rounds / 10 + 1) as f64);
                }
                let us = best * 1e6;
                println!("{us:7.1} us  {:6} bytes  {name}", b.len());
            }
            let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
            let start = Instant::now();
            let mut n = 0usize;
            for _ in 0..rounds {
                for (_, b) in &files {
                    if Buildinfo::parse(b).is_ok() {
                        n += 1;
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            let count = rounds * files.len();
            println!(
                "{count} parses ({n} ok) of {} files ({bytes} bytes) in {secs:.3} s: {:.0} files/s, {:.1} MB/s, {:.1} us/file (avg {} bytes)",
                files.len(),
                count as f64 / secs,
                (rounds * bytes) as f64 / secs / 1e6,
                secs / count as f64 * 1e6,
                bytes / files.len().max(1)
            );
        }
        "packages" | "sources" => {
            let start = Instant::now();
            let file = std::fs::File::open(&path).expect("open");
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let (_, reader) = compress::open(std::io::BufReader::with_capacity(1 << 16, file), compress::DEFAULT_MAX_DECOMPRESSED).expect("open");
            let (mut ok, mut bad) = (0usize, 0usize);
            for p in Paragraphs::new(reader) {
                let p = p.expect("paragraph");
                let r = if mode == "packages" {
                    PackagesEntry::parse(&p).map(|_| ())
                } else {
                    SourcesEntry::parse(&p).map(|_| ())
                };
                match r {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        bad += 1;
                        if bad <= 5 {
                            println!("error: {e}");
                        }
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            println!("{ok} ok, {bad} errors, {size} bytes in {secs:.3} s: {:.1} MB/s", size as f64 / secs / 1e6);
        }
        _ => eprintln!("usage: parse_speed buildinfo DIR [ROUNDS] | packages FILE | sources FILE"),
    }
}

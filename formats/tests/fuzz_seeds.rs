//! The fuzz targets' own checks (`fuzz/fuzz_targets/*.rs`) run on their seed corpus, as
//! `fuzz/seed.sh` builds it from the shared real-world files, so that every seed passes
//! without cargo-fuzz or a nightly toolchain.

use crate::common;

use std::io::{Read, Write};

use debcover_formats::paragraph::Paragraphs;
use debcover_formats::{Buildinfo, PackagesEntry, SourcesEntry, aggregate, compress};

/// `fuzz_targets/buildinfo.rs`.
fn buildinfo_target(data: &[u8]) {
    if let Ok(b) = Buildinfo::parse(data) {
        let _ = b.host_architecture();
        let text = b.render();
        let again = Buildinfo::parse(text.as_bytes()).unwrap_or_else(|e| panic!("rendered buildinfo does not parse: {e}\n{text}"));
        assert_eq!(again, Buildinfo { signature: None, ..b });
        assert_eq!(again.render(), text);
    }
}

/// `fuzz_targets/packages.rs`.
fn packages_target(data: &[u8]) {
    for p in Paragraphs::new(data) {
        let Ok(p) = p else { break };
        let _ = PackagesEntry::parse(&p);
    }
    if let Ok((_, reader)) = compress::open(data, 1 << 20) {
        for p in Paragraphs::new(reader).take(64) {
            let Ok(p) = p else { break };
            let _ = PackagesEntry::parse(&p);
        }
    }
    let mut out = Vec::new();
    if let Ok((_, mut r)) = compress::open(data, 4096) {
        let _ = r.read_to_end(&mut out);
        assert!(out.len() <= 4096);
    }
}

/// `fuzz_targets/sources.rs`.
fn sources_target(data: &[u8]) {
    for p in Paragraphs::new(data) {
        let Ok(p) = p else { break };
        let _ = SourcesEntry::parse(&p);
    }
}

/// `fuzz_targets/aggregate.rs`.
fn aggregate_target(data: &[u8]) {
    let _ = aggregate::looks_like_index(data);
    for entry in aggregate::paragraphs(data) {
        let Ok(e) = entry else { break };
        let _ = aggregate::entry_id(&e);
        if let Ok(b) = aggregate::parse_entry(&e) {
            let _ = aggregate::render_index([&b]);
        }
    }
}

/// The first `n` paragraphs of `text` (paragraphs separated by blank lines), as seed.sh's awk.
fn paragraphs(text: &str, skip: usize, n: usize) -> String {
    let mut out = String::new();
    for p in text.split("\n\n").filter(|p| !p.trim().is_empty()).skip(skip).take(n) {
        out.push_str(p.trim_start_matches('\n'));
        out.push_str("\n\n");
    }
    out
}

#[test]
fn every_seed_passes_its_fuzz_target() {
    let mut seeds = 0;
    for dir in ["buildinfo", "changes"] {
        for (_, bytes) in common::files_in(dir) {
            buildinfo_target(&bytes);
            seeds += 1;
        }
    }
    buildinfo_target(&common::read("packages/debian-parsers__InRelease"));
    for name in [
        "bookworm_amd64_Packages.Built-Using-golang",
        "bookworm_amd64_Packages.Static-Built-Using",
        "bookworm_amd64_Packages.X-Cargo-Built-Using",
    ] {
        let head = paragraphs(&common::read_str(&format!("packages/{name}")), 0, 3);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(head.as_bytes()).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 9);
        xz.write_all(head.as_bytes()).unwrap();
        for data in [head.into_bytes(), gz.finish().unwrap(), xz.finish().unwrap()] {
            packages_target(&data);
            seeds += 1;
        }
    }
    let sources = common::read_str("packages/bookworm_Sources.go-and-rust-subset");
    for (skip, n) in [(0, 4), (100, 3)] {
        sources_target(paragraphs(&sources, skip, n).as_bytes());
        seeds += 1;
    }
    let mut index = Vec::new();
    for (_, bytes) in common::files_in("buildinfo") {
        if !bytes.starts_with(b"-----BEGIN") {
            index.extend_from_slice(&bytes);
            index.push(b'\n');
            aggregate_target(&bytes);
            seeds += 1;
        }
    }
    aggregate_target(&index);
    assert!(seeds > 30, "{seeds} seeds");
}

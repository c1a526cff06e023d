//! Decompression + paragraph splitting + PackagesEntry::parse on arbitrary bytes.
#![no_main]

use std::io::Read;

use debcover_formats::compress;
use debcover_formats::paragraph::Paragraphs;
use debcover_formats::PackagesEntry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for p in Paragraphs::new(data) {
        match p {
            Ok(p) => {
                let _ = PackagesEntry::parse(&p);
            }
            Err(_) => break,
        }
    }
    // The same bytes as a (possibly compressed) index, capped at 1 MiB of output.
    if let Ok((_, reader)) = compress::open(data, 1 << 20) {
        for p in Paragraphs::new(reader).take(64) {
            match p {
                Ok(p) => {
                    let _ = PackagesEntry::parse(&p);
                }
                Err(_) => break,
            }
        }
    }
    let mut out = Vec::new();
    if let Ok((_, mut r)) = compress::open(data, 4096) {
        let _ = r.read_to_end(&mut out);
        assert!(out.len() <= 4096);
    }
});

//! Time deb822-lossless alone on the test buildinfos (plain ones): how much of the parse it is.
use std::time::Instant;
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_default();
    let mut texts = Vec::new();
    for e in std::fs::read_dir(&dir).expect("dir") {
        let t = std::fs::read_to_string(e.expect("e").path()).expect("read");
        let t = t.lines().filter(|l| !l.starts_with("-----") && !l.starts_with("Hash:")).collect::<Vec<_>>().join("\n");
        let t = t.split("\n\n").find(|p| p.contains("Format:")).unwrap_or("").to_owned();
        texts.push(t);
    }
    let bytes: usize = texts.iter().map(String::len).sum();
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..200 {
        for t in &texts {
            let p = deb822_lossless::Deb822::parse(t);
            n += p.tree().paragraphs().count();
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!("parse only: {n} paragraphs, {:.1} MB/s, {:.1} us/file", 200.0 * bytes as f64 / s / 1e6, s / (200.0 * texts.len() as f64) * 1e6);
    let start = Instant::now();
    let mut n = 0;
    for _ in 0..200 {
        for t in &texts {
            let p = deb822_lossless::Deb822::parse(t);
            for para in p.tree().paragraphs() { for e in para.entries() { n += usize::from(e.text_range().end()) + e.key_range().is_some() as usize; } }
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!("parse+walk: {n}, {:.1} MB/s, {:.1} us/file", 200.0 * bytes as f64 / s / 1e6, s / (200.0 * texts.len() as f64) * 1e6);
}

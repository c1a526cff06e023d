//! Real archive excerpts: every paragraph parses; counts and a few values are checked against
//! the files. Also: the InRelease and .changes files are rejected as buildinfos with a message
//! naming the missing field, and aggregated indices split, compress and round-trip.

use crate::common;

use std::io::Write;

use common::{files_in, read, read_str};
use debcover_formats::aggregate;
use debcover_formats::compress::{self, Compression};
use debcover_formats::paragraph::{Paragraphs, RawParagraph};
use debcover_formats::{Buildinfo, PackagesEntry, SourcesEntry};

fn paragraphs(bytes: &[u8]) -> Vec<RawParagraph> {
    Paragraphs::new(bytes).map(|p| p.unwrap()).collect()
}

fn packages(name: &str) -> Vec<PackagesEntry> {
    paragraphs(&read(&format!("packages/{name}")))
        .iter()
        .map(|p| PackagesEntry::parse(p).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

#[test]
fn packages_excerpts_parse_with_the_documented_counts() {
    for (name, count, field) in [
        ("bookworm_amd64_Packages.Built-Using-golang", 321, "Built-Using"),
        ("bookworm_amd64_Packages.Static-Built-Using", 23, "Static-Built-Using"),
        ("bookworm_amd64_Packages.X-Cargo-Built-Using", 63, "X-Cargo-Built-Using"),
    ] {
        let text = read_str(&format!("packages/{name}"));
        let entries = packages(name);
        assert_eq!(entries.len(), count, "{name}");
        assert_eq!(text.matches("\nPackage: ").count() + 1, count);
        // Independent: number of `(= ` in the field lines equals the parsed references.
        let refs_in_file: usize = text
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{field}: ")))
            .map(|v| v.matches("(= ").count())
            .sum();
        let parsed: usize = entries
            .iter()
            .map(|e| match field {
                "Built-Using" => e.built_using.len(),
                "Static-Built-Using" => e.static_built_using.len(),
                _ => e.x_cargo_built_using.len(),
            })
            .sum();
        assert_eq!(parsed, refs_in_file, "{name}");
        for e in &entries {
            assert_eq!(e.sha256.len(), 64);
            assert!(e.filename.starts_with("pool/main/"), "{}", e.filename);
        }
    }
}

#[test]
fn packages_real_values() {
    let s = packages("bookworm_amd64_Packages.Static-Built-Using");
    let c = &s[0];
    assert_eq!((c.package.as_str(), c.version.to_string().as_str()), ("certspotter", "0.16.0-1"));
    assert_eq!((c.source.as_str(), c.source_version.to_string().as_str()), ("certspotter", "0.16.0-1"));
    assert_eq!(c.size, 1821920);
    assert_eq!(c.sha256, "8bc1b0bb5b1b12e86852ffebc0c77b9a0ffb1ed2db3b6ee1fd74fdba6a8da062");
    assert_eq!(c.static_built_using.len(), 5);
    let net = &c.static_built_using[2];
    assert_eq!((net.name.as_str(), net.version.to_string().as_str()), ("golang-golang-x-net", "1:0.7.0+dfsg-1"));
    assert_eq!(net.version.epoch, Some(1));

    let x = packages("bookworm_amd64_Packages.X-Cargo-Built-Using");
    let m = x.iter().find(|e| e.package == "mdevctl").unwrap();
    assert_eq!(m.version.to_string(), "1.2.0-3+b1");
    assert_eq!((m.source.as_str(), m.source_version.to_string().as_str()), ("mdevctl", "1.2.0-3"));
    assert_eq!(m.x_cargo_built_using.last().unwrap().name, "rustc");

    let g = packages("bookworm_amd64_Packages.Built-Using-golang");
    let a = &g[0];
    assert_eq!((a.source.as_str(), a.source_version.to_string().as_str()), ("acmetool", "0.2.2-1"));
    assert!(a.built_using.iter().any(|r| r.name.starts_with("golang-")));
}

#[test]
fn binnmu_suffix_in_static_built_using_is_normalised() {
    // Bookworm has no `+bN` in these fields, so derive one from a real paragraph.
    let p = &paragraphs(&read("packages/bookworm_amd64_Packages.Static-Built-Using"))[0];
    let text = p.text.replace("golang-golang-x-sync (= 0.1.0-1)", "golang-golang-x-sync (= 0.1.0-1+b2)");
    assert_ne!(text, p.text);
    let e = PackagesEntry::parse(&RawParagraph { first_line: 1, text }).unwrap();
    let sync = e.static_built_using.iter().find(|r| r.name == "golang-golang-x-sync").unwrap();
    assert_eq!(sync.version.to_string(), "0.1.0-1");
}

#[test]
fn packages_errors_carry_whole_file_lines() {
    let bytes = read("packages/bookworm_amd64_Packages.Static-Built-Using");
    let text = String::from_utf8(bytes).unwrap();
    let paras = paragraphs(text.as_bytes());
    let p = &paras[3];
    // The SHA256 line of the fourth paragraph, in whole-file numbering.
    let sha_offset = p.text.lines().position(|l| l.starts_with("SHA256:")).unwrap();
    let line = p.first_line + sha_offset;
    assert!(text.lines().nth(line - 1).unwrap().starts_with("SHA256:"));
    let broken = RawParagraph { first_line: p.first_line, text: p.text.replace("SHA256: ", "SHA256: zz") };
    let err = PackagesEntry::parse(&broken).unwrap_err();
    assert_eq!((err.field.as_deref(), err.line), (Some("SHA256"), Some(line)), "{err}");
    let line = p.first_line + p.text.lines().position(|l| l.starts_with("Static-Built-Using:")).unwrap();
    let broken = RawParagraph { first_line: p.first_line, text: p.text.replacen("(= ", "(>= ", 1) };
    let err = PackagesEntry::parse(&broken).unwrap_err();
    assert_eq!((err.field.as_deref(), err.line), (Some("Static-Built-Using"), Some(line)), "{err}");
    let broken = RawParagraph {
        first_line: p.first_line,
        text: p.text.lines().filter(|l| !l.starts_with("Filename:")).map(|l| format!("{l}\n")).collect(),
    };
    let err = PackagesEntry::parse(&broken).unwrap_err();
    assert_eq!((err.field.as_deref(), err.line), (Some("Filename"), Some(p.first_line)), "{err}");
    assert!(err.to_string().contains("missing required field"));
}

#[test]
fn sources_subset() {
    let bytes = read("packages/bookworm_Sources.go-and-rust-subset");
    let text = String::from_utf8(bytes.clone()).unwrap();
    let entries: Vec<SourcesEntry> = paragraphs(&bytes).iter().map(|p| SourcesEntry::parse(p).unwrap()).collect();
    assert_eq!(entries.len(), 389);
    let a = &entries[0];
    assert_eq!((a.package.as_str(), a.version.to_string().as_str()), ("acmetool", "0.2.2-1"));
    assert_eq!(a.binaries, vec!["acmetool"]);
    assert_eq!(a.architecture, vec!["any"]);
    assert_eq!(a.directory.as_deref(), Some("pool/main/a/acmetool"));
    assert_eq!(a.build_depends.as_deref(), Some("debhelper-compat (= 13), dh-apache2, dh-golang"));
    assert!(a.build_depends_arch.as_deref().unwrap().ends_with("libcap-dev [linux-any]"));
    assert_eq!(a.files.len(), 3);
    assert_eq!(a.files[0], ("b7fd97c25dc5e203172a8a18ff86d53151f1394b80d26d896a5181ea0721484c".to_owned(), 2694, "acmetool_0.2.2-1.dsc".to_owned()));
    // Independent: total Checksums-Sha256 lines and binaries across the file.
    let sha_lines: usize = text.split("\n\n").map(|p| common::block(p, "Checksums-Sha256").len()).sum();
    assert_eq!(entries.iter().map(|e| e.files.len()).sum::<usize>(), sha_lines);
    // Multi-line Binary fields exist and are unfolded.
    let multi = entries.iter().filter(|e| e.binaries.len() > 1).count();
    assert!(multi > 10);
    for e in &entries {
        if let Some(bd) = &e.build_depends {
            assert!(!bd.contains('\n') && !bd.contains("  "), "{bd}");
        }
    }
}

#[test]
fn inrelease_is_not_a_buildinfo() {
    let err = Buildinfo::parse(&read("packages/debian-parsers__InRelease")).unwrap_err();
    // It has none of the required fields; the first is named as the field, all in the message.
    assert_eq!(err.field.as_deref(), Some("Format"), "{err}");
    assert!(err.to_string().contains("field Format: missing required field"), "{err}");
    assert!(err.message.contains("Source, Version, Architecture, Installed-Build-Depends"), "{err}");
}

#[test]
fn changes_files_are_rejected_naming_the_field() {
    let files = files_in("changes");
    assert_eq!(files.len(), 2);
    for (name, bytes) in files {
        // Both have Source, Version and Architecture but no Installed-Build-Depends.
        let err = Buildinfo::parse(&bytes).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("Installed-Build-Depends"), "{name}: {err}");
        assert!(err.to_string().contains("field Installed-Build-Depends: missing required field"), "{name}: {err}");
    }
}

#[test]
fn aggregated_index_splits_and_round_trips() {
    let builds: Vec<Buildinfo> = files_in("buildinfo").iter().map(|(_, b)| Buildinfo::parse(b).unwrap()).collect();
    let index = aggregate::render_index(&builds);
    assert!(aggregate::looks_like_index(index.as_bytes()));
    assert!(!aggregate::looks_like_index(&read("buildinfo/debrebuild__0xffff_0.8-1+b1_amd64.buildinfo")));
    assert!(!aggregate::looks_like_index(&read("buildinfo/devscripts__sphinx_1.7.2-1_amd64.buildinfo")));
    // Compressed with xz and gzip; streamed back.
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(index.as_bytes()).unwrap();
    let xz = xz.finish().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(index.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    for (bytes, kind) in [(xz, Compression::Xz), (gz, Compression::Gzip), (index.clone().into_bytes(), Compression::Plain)] {
        let (k, reader) = compress::open(&bytes[..], compress::DEFAULT_MAX_DECOMPRESSED).unwrap();
        assert_eq!(k, kind);
        let entries: Vec<_> = aggregate::paragraphs(reader).map(|p| p.unwrap()).collect();
        assert_eq!(entries.len(), builds.len());
        for (e, b) in entries.iter().zip(&builds) {
            let parsed = aggregate::parse_entry(e).unwrap();
            assert_eq!(parsed, Buildinfo { signature: None, ..b.clone() });
            assert_eq!(e.text, b.render());
            assert_eq!(aggregate::entry_id(e), debcover_formats::sha256_hex(b.render().as_bytes()));
        }
    }
    // Errors in an entry carry whole-index lines.
    let broken = index.replacen("Format: 1.0\n", "Format: 1.0\nFormat: 1.0\n", 2);
    let entries: Vec<_> = aggregate::paragraphs(broken.as_bytes()).map(|p| p.unwrap()).collect();
    let second = &entries[1];
    let err = aggregate::parse_entry(second).unwrap_err();
    assert_eq!(err.line, Some(second.first_line + 1), "{err}");
    assert_eq!(broken.lines().nth(second.first_line).unwrap(), "Format: 1.0");
}

#[test]
fn decompression_cap_applies_to_indices() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b'\n'; 1 << 20]).unwrap();
    let gz = gz.finish().unwrap();
    let (_, reader) = compress::open(&gz[..], 1000).unwrap();
    let got: Vec<_> = Paragraphs::new(reader).collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].as_ref().unwrap_err().message.contains("limit"));
}

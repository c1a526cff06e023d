//! The generator is deterministic and produces well-formed, internally consistent output,
//! checked on the real bookworm excerpt of Go binaries (shared testdata).

use std::collections::HashMap;
use std::path::Path;

use debcover_bench::{Archive, Build, Config, generate, version};

const EXCERPT: &str = "/work/shared/testdata/packages/bookworm_amd64_Packages.Built-Using-golang";

fn run(seed: u64) -> (Vec<Build>, debcover_bench::Manifest) {
    let archive = Archive::load(Path::new(EXCERPT)).expect("excerpt loads");
    let mut builds = Vec::new();
    let manifest = generate(&archive, &Config { count: 200, seed }, |b| {
        builds.push(b.clone());
        Ok(())
    })
    .expect("generation succeeds");
    (builds, manifest)
}

/// Field name -> value (continuation lines joined with '\n'), from an unsigned paragraph.
fn fields(paragraph: &str) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    let mut last = String::new();
    for line in paragraph.lines() {
        assert!(!line.is_empty(), "blank line inside a paragraph");
        if let Some(cont) = line.strip_prefix(' ') {
            let v = out.get_mut(&last).expect("continuation after a field");
            v.push('\n');
            v.push_str(cont);
        } else {
            let (k, v) = line.split_once(": ").or_else(|| line.strip_suffix(':').map(|k| (k, ""))).expect("field line");
            assert!(out.insert(k.to_string(), v.to_string()).is_none(), "duplicate field {k}");
            last = k.to_string();
        }
    }
    out
}

/// Undoes the clearsignature (armour and dash-escaping), checking its structure.
fn payload(text: &str) -> String {
    let Some(rest) = text.strip_prefix("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n") else {
        return text.to_string();
    };
    let (body, sig) = rest.split_once("\n-----BEGIN PGP SIGNATURE-----\n\n").expect("signature block");
    assert!(sig.ends_with("\n-----END PGP SIGNATURE-----\n"));
    assert!(sig.lines().any(|l| l.starts_with('=') && l.len() == 5), "armour checksum line");
    let mut out = String::new();
    for line in body.lines() {
        assert!(!line.starts_with('-') || line.starts_with("- "), "unescaped dash line");
        out.push_str(line.strip_prefix("- ").unwrap_or(line));
        out.push('\n');
    }
    out
}

#[test]
fn same_seed_gives_identical_bytes() {
    let (a, ma) = run(1);
    let (b, mb) = run(1);
    assert_eq!(a.len(), 200);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.file_name, y.file_name);
        assert_eq!(x.text, y.text);
        assert_eq!(x.packages, y.packages);
    }
    assert_eq!(serde_json::to_string(&ma).unwrap(), serde_json::to_string(&mb).unwrap());
    let (c, _) = run(2);
    assert!(a.iter().zip(&c).any(|(x, y)| x.text != y.text), "the seed matters");
}

#[test]
fn buildinfo_files_have_the_expected_fields() {
    let (builds, manifest) = run(1);
    let mut names = std::collections::HashSet::new();
    for b in &builds {
        assert!(names.insert(b.file_name.clone()), "duplicate {}", b.file_name);
        assert_eq!(payload(&b.text), b.paragraph, "{}", b.file_name);
        let f = fields(&b.paragraph);
        for k in [
            "Format", "Source", "Binary", "Architecture", "Version", "Checksums-Md5", "Checksums-Sha1", "Checksums-Sha256",
            "Build-Origin", "Build-Architecture", "Build-Date", "Build-Path", "Installed-Build-Depends", "Environment",
        ] {
            assert!(f.contains_key(k), "{} lacks {k}", b.file_name);
        }
        assert_eq!(f["Format"], "1.0");
        assert!(version::is_valid(&f["Version"]), "{}", f["Version"]);
        let arch = &f["Architecture"];
        assert!(["amd64", "all", "all amd64"].contains(&arch.as_str()));
        let file_arch = if arch == "all" { "all" } else { "amd64" };
        let src = f["Source"].split(' ').next().unwrap();
        assert_eq!(b.file_name, format!("{src}_{}_{file_arch}.buildinfo", version::without_epoch(&f["Version"])));
        assert_eq!(f.contains_key("Binary-Only-Changes"), f["Version"].contains("+b"), "{}", b.file_name);
        let ibd: Vec<&str> = f["Installed-Build-Depends"].lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(ibd.len(), b.ibd_names.len());
        let mut prev = "";
        for (i, e) in ibd.iter().enumerate() {
            let e = if i + 1 < ibd.len() { e.strip_suffix(',').expect("comma") } else { e };
            let (name, ver) = e.split_once(" (= ").expect("name (= version)");
            let ver = ver.strip_suffix(')').expect("closing paren");
            assert!(version::is_valid(ver), "{name} {ver}");
            let bare = name.strip_suffix(":amd64").unwrap_or(name);
            assert!(bare > prev, "sorted, unique: {prev} then {bare}");
            prev = bare;
        }
        for env in f["Environment"].lines().filter(|l| !l.is_empty()) {
            assert!(env.contains("=\"") && env.ends_with('"'), "{env}");
        }
    }
    assert!(manifest.ibd_min >= 120 && manifest.ibd_max <= 460, "{manifest:?}");
    // The excerpt holds no C library packages to draw optional build dependencies from, so
    // its mean is below the ~250 of a full-archive corpus.
    assert!((150.0..=330.0).contains(&manifest.ibd_mean), "{manifest:?}");
    assert!(manifest.signed_builds > 10 && manifest.signed_builds < 80);
    assert!(manifest.historical_builds > 0, "the excerpt has fewer than 200 groups");
    // Go builds record the Go libraries they embed.
    assert_eq!(manifest.most_common_golang_dev.as_ref().unwrap().name, "golang-golang-x-sys-dev");
}

#[test]
fn packages_sha256_match_the_producing_build() {
    let (builds, _) = run(1);
    let mut entries = 0;
    for b in &builds {
        let f = fields(&b.paragraph);
        let sha256: HashMap<&str, (&str, &str)> = f["Checksums-Sha256"]
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let p: Vec<&str> = l.split(' ').collect();
                (p[2], (p[0], p[1]))
            })
            .collect();
        for para in b.packages.split("\n\n").filter(|p| !p.is_empty()) {
            let p = fields(para);
            let file = p["Filename"].rsplit('/').next().unwrap();
            let (hash, size) = sha256.get(file).unwrap_or_else(|| panic!("{file} not in {}", b.file_name));
            assert_eq!(&p["SHA256"], hash);
            assert_eq!(&p["Size"], size);
            assert_eq!(p["Version"], f["Version"]);
            assert!(f["Binary"].split(' ').any(|n| n == p["Package"]));
            entries += 1;
        }
    }
    assert!(entries >= 200);
}

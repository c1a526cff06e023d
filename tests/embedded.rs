//! What real binaries say they contain, against what their packages declare: bookworm's `lego`
//! (Go) and `hexyl` (Rust) as the archive ships them, a cargo-auditable binary built here, and
//! adversarial `.deb`s made with `dpkg-deb` (truncated, lying about sizes, bombs).
//!
//! The real packages come from `tests/fixtures/download-debs.sh` (apt-get download, any user)
//! and `tests/fixtures/build-auditable-deb.sh` (cargo-auditable from crates.io); .ci/run runs
//! both. Outside CI, tests whose fixtures are missing skip with a message; under CI they fail.

use std::path::{Path, PathBuf};
use std::process::Command;

use debcover_formats::corroborate::{Declared, Verdict, corroborate};
use debcover_formats::deb::{self, DebError, Limit, Limits};
use debcover_formats::embedded::{DepV0, ElfInfo, inspect_elf};
use debcover_tests::{binary, describe, fixture_deb, in_ci, paragraphs, testdata, workspace};

fn skip_or_fail(why: &str, fix: &str) {
    if in_ci() {
        panic!("{why}");
    }
    eprintln!("SKIPPING: {why} (run {fix})");
}

/// Every ELF file of `deb` with what it says, by the reader under test.
fn read_deb(deb: &Path) -> Vec<(String, ElfInfo)> {
    let file = std::fs::File::open(deb).unwrap();
    let mut out = Vec::new();
    deb::for_each_elf(std::io::BufReader::new(file), &Limits::default(), |e| {
        out.push((e.path.to_owned(), inspect_elf(e.bytes).unwrap()))
    })
    .unwrap();
    out
}

/// A field of package `name` in a testdata Packages file, by a plain scan.
fn packages_field(file: &str, name: &str, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(testdata().join("packages").join(file)).unwrap();
    let para = paragraphs(&text).into_iter().find(|p| p.iter().any(|(k, v)| k == "Package" && v == name))?;
    para.into_iter().find(|(k, _)| k == field).map(|(_, v)| v)
}

/// `(name, version)` entries of a `*Built-Using` value.
fn relations(value: &str) -> Vec<(String, String)> {
    value
        .split(',')
        .filter_map(|r| {
            let (name, rest) = r.trim().split_once(" (= ")?;
            Some((name.to_owned(), rest.trim_end_matches(')').to_owned()))
        })
        .collect()
}

/// An independent extraction: `dpkg-deb -x` into a temporary directory.
fn extract(deb: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb").arg("-x").arg(deb).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    dir
}

/// `strings -a FILE` lines.
fn strings(file: &Path) -> Vec<String> {
    let out = Command::new("strings").arg("-a").arg(file).output().expect("strings (binutils)");
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn lego_embeds_the_go_its_static_built_using_declares() {
    let Some(deb) = fixture_deb("lego") else { return };
    let found = read_deb(&deb);
    assert_eq!(found.len(), 1, "{found:?}");
    let (path, info) = &found[0];
    assert_eq!(path, "usr/bin/lego");
    let go = info.go.as_ref().expect("lego has Go build info");
    assert_eq!(go.version, "go1.19.5");
    assert_eq!(go.layout, "inline");
    assert_eq!(go.path.as_deref(), Some("github.com/go-acme/lego/cmd/lego"));
    // Debian builds Go in GOPATH mode: no module lines, build settings only.
    assert!(go.main.is_none() && go.deps.is_empty(), "{go:?}");
    assert!(go.settings.contains(&("GOARCH".to_owned(), "amd64".to_owned())), "{go:?}");
    assert_eq!(info.rust.dep_v0, DepV0::Absent);

    // The declaration, by a plain scan of the read-only testdata.
    let sbu = packages_field("bookworm_amd64_Packages.Static-Built-Using", "lego", "Static-Built-Using").unwrap();
    let golang: Vec<_> = relations(&sbu).into_iter().filter(|(n, _)| n.starts_with("golang-1.")).collect();
    assert_eq!(golang, vec![("golang-1.19".to_owned(), "1.19.5-1".to_owned())]);
    let upstream = golang[0].1.split('-').next().unwrap();
    assert_eq!(format!("go{upstream}"), go.version);

    // Independently of the parser: the runtime's version string as `strings` sees it.
    let dir = extract(&deb);
    let versions: Vec<String> = strings(&dir.path().join("usr/bin/lego"))
        .into_iter()
        .filter(|l| l.starts_with("go1.") && l[3..].bytes().all(|b| b.is_ascii_digit() || b == b'.'))
        .collect();
    assert!(!versions.is_empty() && versions.iter().all(|v| *v == go.version), "{versions:?}");

    // The corroboration rules, through the index parser.
    let entry = index_entry("bookworm_amd64_Packages.Static-Built-Using", "lego");
    let declared = [Declared { field: "Static-Built-Using", refs: &entry.static_built_using }];
    let findings = corroborate(path, info, &declared);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].verdict, Verdict::Agrees);
    assert_eq!(
        findings[0].to_string(),
        "binary usr/bin/lego embeds go toolchain go1.19.5; declaration names Static-Built-Using: golang-1.19 1.19.5-1: agrees"
    );
}

fn index_entry(file: &str, package: &str) -> debcover_formats::PackagesEntry {
    let f = std::fs::File::open(testdata().join("packages").join(file)).unwrap();
    debcover_formats::paragraph::Paragraphs::new(std::io::BufReader::new(f))
        .map(|p| debcover_formats::PackagesEntry::parse(&p.unwrap()).unwrap())
        .find(|e| e.package == package)
        .unwrap()
}

#[test]
fn hexyl_names_the_rustc_it_declares_and_has_no_dep_v0() {
    let Some(deb) = fixture_deb("hexyl") else { return };
    let found = read_deb(&deb);
    assert_eq!(found.len(), 1, "{found:?}");
    let (path, info) = &found[0];
    assert_eq!(path, "usr/bin/hexyl");
    assert!(info.go.is_none());
    // Debian's Rust binaries are not built with cargo-auditable.
    assert_eq!(info.rust.dep_v0, DepV0::Absent);
    assert_eq!(info.rust.rustc.as_deref(), Some("1.63.0"));
    let bu = packages_field("bookworm_amd64_Packages.X-Cargo-Built-Using", "hexyl", "Built-Using").unwrap();
    assert!(relations(&bu).contains(&("rustc".to_owned(), "1.63.0+dfsg1-2".to_owned())), "{bu}");
    let dir = extract(&deb);
    assert!(strings(&dir.path().join("usr/bin/hexyl")).iter().any(|l| l.contains("/usr/src/rustc-1.63.0/")));
    let readelf = Command::new("readelf").arg("-S").arg(dir.path().join("usr/bin/hexyl")).output().unwrap();
    assert!(!String::from_utf8_lossy(&readelf.stdout).contains(".dep-v0"));
}

#[test]
fn inspect_deb_cli_reports_agreement_and_disagreement() {
    let Some(deb) = fixture_deb("lego") else { return };
    let index = testdata().join("packages/bookworm_amd64_Packages.Static-Built-Using");
    let run = |args: &[&str]| Command::new(binary("debcover")).args(args).env("DEBCOVER_LOG", "warn").output().unwrap();
    let out = run(&["inspect-deb", deb.to_str().unwrap(), "--json", "--packages", index.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["index_entry"][0], "lego 4.9.1-1 amd64");
    assert_eq!(json["index_entry"][1], "sha256");
    assert_eq!(json["binaries"][0]["info"]["go"]["version"], "go1.19.5");
    assert_eq!(json["binaries"][0]["info"]["rust"]["dep_v0"]["state"], "absent");
    assert_eq!(json["binaries"][0]["findings"][0]["verdict"], "agrees");

    // The same binary against a doctored index entry: a later golang-1.19 is declared.
    let text = std::fs::read_to_string(&index).unwrap();
    let para = text.split("\n\n").find(|p| p.starts_with("Package: lego\n")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let doctored = dir.path().join("Packages");
    std::fs::write(&doctored, para.replace("golang-1.19 (= 1.19.5-1)", "golang-1.19 (= 1.19.8-2)") + "\n").unwrap();
    let out = run(&["inspect-deb", deb.to_str().unwrap(), "--packages", doctored.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("binary usr/bin/lego embeds go toolchain go1.19.5; declaration names Static-Built-Using: golang-1.19 1.19.8-2: DISAGREES"),
        "{stdout}"
    );
    // And with no toolchain declared at all.
    std::fs::write(&doctored, para.replace("golang-1.19 (= 1.19.5-1), ", "") + "\n").unwrap();
    let out = run(&["inspect-deb", deb.to_str().unwrap(), "--packages", doctored.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing declared for it: UNDECLARED"), "{}", describe(&out));
}

#[test]
fn dep_v0_of_a_real_cargo_auditable_binary() {
    let dir = workspace().join("target/debcover-fixtures/auditable");
    let deb = dir.join("auditable-hello.deb");
    if !deb.exists() {
        return skip_or_fail(&format!("{} missing", deb.display()), "tests/fixtures/build-auditable-deb.sh");
    }
    let found = read_deb(&deb);
    assert_eq!(found.len(), 1);
    let DepV0::Present(packages) = &found[0].1.rust.dep_v0 else { panic!("{:?}", found[0].1) };
    let mut got: Vec<(String, String, bool)> =
        packages.iter().map(|p| (p.name.clone(), p.version.clone(), p.root)).collect();
    got.sort();
    // Independently: the crate's Cargo.lock.
    let lock = std::fs::read_to_string(dir.join("crate/Cargo.lock")).unwrap();
    let mut want: Vec<(String, String, bool)> = lock
        .split("[[package]]")
        .skip(1)
        .filter_map(|p| {
            let get = |k: &str| p.lines().find_map(|l| l.strip_prefix(&format!("{k} = \""))).map(|v| v.trim_end_matches('"').to_owned());
            Some((get("name")?, get("version")?, false))
        })
        .map(|(n, v, _)| (n.clone(), v, n == "auditable-hello"))
        .collect();
    want.sort();
    assert_eq!(got, want);
    // Corroborated against a declaration in Debian's naming.
    let refs = debcover_formats::relation::parse_built_using("rust-memchr (= 2.7.4-1)").unwrap();
    let findings = corroborate(&found[0].0, &found[0].1, &[Declared { field: "X-Cargo-Built-Using", refs: &refs }]);
    let crate_finding = findings.iter().find(|f| f.subject == "crate memchr").unwrap();
    assert_eq!(crate_finding.verdict, Verdict::Agrees, "{crate_finding}");
}

/// A .deb built by `dpkg-deb` from a generated tree: `files` are (path, content).
fn build_deb(dir: &Path, files: &[(&str, &[u8])], compression: &str) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: bomb\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@example.org>\nDescription: test\n",
    )
    .unwrap();
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let deb = dir.join("bomb.deb");
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-z1", &format!("-Z{compression}"), "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    deb
}

fn elf_bytes() -> Vec<u8> {
    std::fs::read("/bin/true").unwrap()
}

fn limit_err(deb: &Path, limits: &Limits) -> (Limit, u64, u64, String) {
    match deb::for_each_elf(std::fs::File::open(deb).unwrap(), limits, |_| {}) {
        Err(DebError::Limit { limit, value, max, at }) => (limit, value, max, at),
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_and_lying_debs_are_precise_errors() {
    let dir = tempfile::tempdir().unwrap();
    let elf = elf_bytes();
    let deb = build_deb(dir.path(), &[("usr/bin/true", &elf)], "xz");
    let bytes = std::fs::read(&deb).unwrap();
    // Cut in the middle of data.tar.xz.
    let cut = bytes.len() - 1000;
    match deb::for_each_elf(&bytes[..cut], &Limits::default(), |_| {}) {
        Err(DebError::Truncated { member, offset, .. }) => assert_eq!((member.as_str(), offset), ("data.tar.xz", cut as u64)),
        other => panic!("{other:?}"),
    }
    // The data member's header claims more than is there, then more than the limit allows.
    let at = bytes.windows(11).position(|w| w == b"data.tar.xz").unwrap();
    for (claim, want_limit) in [(1_000_000_000u64, false), (9_999_999_999, true)] {
        let mut lying = bytes.clone();
        lying[at + 48..at + 58].copy_from_slice(format!("{claim:<10}").as_bytes());
        match deb::for_each_elf(&lying[..], &Limits::default(), |_| {}) {
            Err(DebError::Limit { limit: Limit::MemberSize, value, .. }) if want_limit => assert_eq!(value, claim),
            Err(DebError::Truncated { declared, offset, .. }) if !want_limit => {
                assert_eq!((declared, offset), (claim, bytes.len() as u64))
            }
            other => panic!("claim {claim}: {other:?}"),
        }
    }
}

#[test]
fn tar_bombs_hit_their_limits() {
    let dir = tempfile::tempdir().unwrap();
    // Many entries.
    let names: Vec<String> = (0..3000).map(|i| format!("usr/share/bomb/f{i}")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let deb = build_deb(dir.path(), &files, "zstd");
    let (limit, value, max, _) = limit_err(&deb, &Limits { max_entries: 1000, ..Limits::default() });
    assert_eq!((limit, value, max), (Limit::Entries, 1001, 1000));
    assert!(deb::for_each_elf(std::fs::File::open(&deb).unwrap(), &Limits::default(), |_| {}).is_ok());

    // Huge decompressed size from a small file: 256 MiB of zeros (a sparse file).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("root/usr/share/bomb")).unwrap();
    std::fs::File::create(dir.path().join("root/usr/share/bomb/zeros")).unwrap().set_len(256 << 20).unwrap();
    let deb = build_deb(dir.path(), &[], "zstd");
    assert!(std::fs::metadata(&deb).unwrap().len() < 1 << 20);
    let (limit, _, max, at) = limit_err(&deb, &Limits { max_decompressed: 64 << 20, ..Limits::default() });
    assert_eq!((limit, max), (Limit::Decompressed, 64 << 20));
    assert!(at.starts_with("member `data.tar.zst`"), "{at}");
}

#[test]
fn an_oversized_elf_is_refused_before_it_is_read_with_bounded_memory() {
    // A 600 MiB "ELF" (magic, then zeros) under usr/bin: over the default 512 MiB per-file
    // limit. The real CLI, under a 1 GiB address-space limit, must refuse it precisely.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::write(root.join("DEBIAN/control"), "Package: big\nVersion: 1\nArchitecture: amd64\nMaintainer: t <t@example.org>\nDescription: t\n").unwrap();
    let f = std::fs::File::create(root.join("usr/bin/big")).unwrap();
    use std::io::Write;
    (&f).write_all(b"\x7fELF").unwrap();
    f.set_len(600 << 20).unwrap(); // sparse
    let deb = dir.path().join("big.deb");
    let out = Command::new("dpkg-deb").args(["--root-owner-group", "-z1", "-Zzstd", "--build"]).arg(&root).arg(&deb).output().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 1048576 && exec \"$0\" inspect-deb \"$1\"")
        .arg(binary("debcover"))
        .arg(&deb)
        .env("DEBCOVER_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("entry `usr/bin/big`: examined file size 629145600 exceeds the limit of 536870912"),
        "{stderr}"
    );
}

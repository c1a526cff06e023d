//! What the binaries a build produced say about their own build, for the report header
//! (`ReportHeader.embedded`): every ELF file of every produced `.deb`, read by
//! `debcover_formats::deb::for_each_elf` within the default [`deb::Limits`] and
//! `debcover_formats::embedded::inspect_elf`, reduced to the Go toolchain and modules, the
//! rustc version and the cargo-auditable crates. The coordinator corroborates this with the
//! original buildinfo; the node only reads and reports.
//!
//! Only binaries that say something are listed (most shared objects of C packages say
//! nothing), and detached debug files (`usr/lib/debug/`) are skipped: they repeat what their
//! binary says.
//!
//! # Invariants
//! - Bounded: at most [`MAX_BINARIES`] binaries, [`MAX_MODULES`] Go modules and as many crates
//!   per binary, [`MAX_MODULES_TOTAL`] in all, strings within [`MAX_PATH_BYTES`] /
//!   [`MAX_STRING_BYTES`]. Whatever does not fit is left out and `truncated` set, never
//!   shortened: a listed version is always the whole version.
//! - A `.deb` that cannot be read is a note (and `truncated`), never a failed build.

use std::io::BufReader;

use debcover_formats::deb;
use debcover_formats::embedded::{DepV0, ElfInfo, inspect_elf};
use debcover_proto::v1 as pb;

use crate::backend::Produced;

/// Most binaries listed in one report.
pub const MAX_BINARIES: usize = 200;
/// Most Go modules, and most crates, listed for one binary.
pub const MAX_MODULES: usize = 2_000;
/// Most Go modules and crates listed in one report, all binaries together.
pub const MAX_MODULES_TOTAL: usize = 10_000;
/// Longest path of a binary in its package.
pub const MAX_PATH_BYTES: usize = 4_096;
/// Longest `.deb` file name.
pub const MAX_DEB_BYTES: usize = 255;
/// Longest other string (versions, module paths, crate names).
pub const MAX_STRING_BYTES: usize = 256;

/// What the produced `.deb`s say, ready for the report header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embedded {
    /// One entry per binary that says something, in file then archive order.
    pub binaries: Vec<pb::EmbeddedBinary>,
    /// Something was left out (bounds) or a `.deb` could not be read.
    pub truncated: bool,
    /// What went wrong, for the node's log.
    pub notes: Vec<String>,
}

/// Is this produced file a binary package?
fn is_deb(name: &str) -> bool {
    name.ends_with(".deb") || name.ends_with(".udeb")
}

/// Read every produced `.deb` (blocking I/O and CPU: run on a blocking thread).
pub fn read_produced(files: &[Produced]) -> Embedded {
    let mut out = Embedded::default();
    for f in files.iter().filter(|f| is_deb(&f.name)) {
        let file = match std::fs::File::open(&f.path) {
            Ok(file) => file,
            Err(e) => {
                out.note(format!("{}: cannot open {}: {e}", f.name, f.path.display()));
                continue;
            }
        };
        read_deb(&f.name, BufReader::new(file), &mut out);
    }
    out
}

/// Read one `.deb` named `deb` from `reader` into `out`.
pub fn read_deb(deb: &str, reader: impl std::io::Read, out: &mut Embedded) {
    if deb.len() > MAX_DEB_BYTES {
        out.note(format!("{deb}: file name longer than {MAX_DEB_BYTES} bytes; not read"));
        return;
    }
    let mut unreadable = Vec::new();
    let result = deb::for_each_elf(reader, &deb::Limits::default(), |elf| {
        if elf.path.starts_with("usr/lib/debug/") {
            return;
        }
        match inspect_elf(elf.bytes) {
            Ok(info) => out.push(deb, elf.path, &info),
            Err(e) => unreadable.push(format!("{deb}: {}: {e}", elf.path)),
        }
    });
    // An ELF file `object` cannot parse says nothing; it is not a reason to mark the list
    // incomplete.
    out.notes.extend(unreadable);
    if let Err(e) = result {
        out.note(format!("{deb}: {e}"));
    }
}

impl Embedded {
    fn note(&mut self, note: String) {
        self.truncated = true;
        self.notes.push(note);
    }

    fn modules_listed(&self) -> usize {
        self.binaries.iter().map(|b| b.go_modules.len() + b.rust_crates.len()).sum()
    }

    /// Add what the binary at `path` of `deb` says, within the bounds.
    pub fn push(&mut self, deb: &str, path: &str, info: &ElfInfo) {
        let fits = |s: &str| s.len() <= MAX_STRING_BYTES;
        let mut truncated = false;
        let mut keep = |s: &str| {
            let ok = fits(s);
            truncated |= !ok;
            ok.then(|| s.to_owned()).unwrap_or_default()
        };
        let go_version = info.go.as_ref().map(|g| keep(&g.version)).unwrap_or_default();
        let rustc_version = info.rust.rustc.as_deref().map(&mut keep).unwrap_or_default();
        let mut room = MAX_MODULES_TOTAL.saturating_sub(self.modules_listed());
        let mut list = |entries: Vec<(&str, &str)>, truncated: &mut bool| {
            let mut out = Vec::new();
            for (name, version) in entries {
                if out.len() >= MAX_MODULES || room == 0 || !fits(name) || !fits(version) {
                    *truncated = true;
                    continue;
                }
                room -= 1;
                out.push(pb::EmbeddedModule { name: name.to_owned(), version: version.to_owned() });
            }
            out
        };
        let go_modules = list(
            info.go
                .iter()
                .flat_map(|g| &g.deps)
                .map(|d| (d.path.as_str(), d.replace.as_deref().unwrap_or(d).version.as_str()))
                .collect(),
            &mut truncated,
        );
        let rust_crates = match &info.rust.dep_v0 {
            DepV0::Present(packages) => list(
                packages.iter().filter(|p| !p.root).map(|p| (p.name.as_str(), p.version.as_str())).collect(),
                &mut truncated,
            ),
            DepV0::Absent | DepV0::Invalid => Vec::new(),
        };
        if truncated {
            self.truncated = true;
        }
        let says_something =
            !go_version.is_empty() || !rustc_version.is_empty() || !go_modules.is_empty() || !rust_crates.is_empty();
        if !says_something {
            return;
        }
        if self.binaries.len() >= MAX_BINARIES || path.len() > MAX_PATH_BYTES {
            self.truncated = true;
            return;
        }
        self.binaries.push(pb::EmbeddedBinary {
            deb: deb.to_owned(),
            path: path.to_owned(),
            go_version,
            go_modules,
            rustc_version,
            rust_crates,
        });
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use debcover_formats::embedded::{CargoPackage, GoBuildInfo, GoModule};

    use super::*;

    fn produced(path: PathBuf) -> Produced {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (size, sha256) = crate::hash::sha256_file(&path).unwrap();
        Produced { name, size, sha256, path }
    }

    #[test]
    fn real_lego_and_hexyl_give_their_toolchains() {
        let (Some(lego), Some(hexyl)) = (debcover_tests::fixture_deb("lego"), debcover_tests::fixture_deb("hexyl")) else { return };
        let dir = tempfile::tempdir().unwrap();
        // Produced files as a build leaves them: the .debs with a .buildinfo and a .changes.
        std::fs::write(dir.path().join("lego_4.9.1-1_amd64.buildinfo"), "not a deb").unwrap();
        let files = vec![produced(lego), produced(hexyl), produced(dir.path().join("lego_4.9.1-1_amd64.buildinfo"))];
        let got = read_produced(&files);
        assert_eq!(
            got,
            Embedded {
                binaries: vec![
                    pb::EmbeddedBinary {
                        deb: "lego_4.9.1-1_amd64.deb".into(),
                        path: "usr/bin/lego".into(),
                        // Debian builds Go in GOPATH mode: no module lines.
                        go_version: "go1.19.5".into(),
                        ..Default::default()
                    },
                    pb::EmbeddedBinary {
                        deb: "hexyl_0.8.0-2+b5_amd64.deb".into(),
                        path: "usr/bin/hexyl".into(),
                        // Debian's Rust binaries carry no .dep-v0.
                        rustc_version: "1.63.0".into(),
                        ..Default::default()
                    },
                ],
                truncated: false,
                notes: vec![],
            }
        );
        // The header the node sends stays far below the node message cap (8 MiB).
        let header = pb::ReportHeader { embedded: got.binaries, ..Default::default() };
        assert!(prost::Message::encoded_len(&header) < 200, "{header:?}");
    }

    #[test]
    fn an_unreadable_deb_is_a_note_not_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken_1_amd64.deb");
        std::fs::write(&p, b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n").unwrap();
        let got = read_produced(&[produced(p)]);
        assert!(got.binaries.is_empty() && got.truncated, "{got:?}");
        assert!(got.notes[0].starts_with("broken_1_amd64.deb: "), "{got:?}");
    }

    #[test]
    fn bounds_leave_out_rather_than_shorten() {
        let module = |i: usize| GoModule { path: format!("example.org/m{i}"), version: format!("v1.0.{i}"), sum: None, replace: None };
        let go = |n: usize| ElfInfo {
            go: Some(GoBuildInfo { version: "go1.21.0".into(), deps: (0..n).map(module).collect(), ..Default::default() }),
            ..Default::default()
        };
        let mut e = Embedded::default();
        e.push("a.deb", "usr/bin/a", &go(MAX_MODULES + 1));
        assert_eq!((e.binaries[0].go_modules.len(), e.truncated), (MAX_MODULES, true));
        // The replacement's version is the one used.
        let mut replaced = module(0);
        replaced.replace = Some(Box::new(GoModule { version: "v9.9.9".into(), ..module(1) }));
        let mut e = Embedded::default();
        e.push("a.deb", "usr/bin/a", &ElfInfo { go: Some(GoBuildInfo { version: "go1.21.0".into(), deps: vec![replaced], ..Default::default() }), ..Default::default() });
        assert_eq!(e.binaries[0].go_modules, [pb::EmbeddedModule { name: "example.org/m0".into(), version: "v9.9.9".into() }]);
        assert!(!e.truncated);
        // In all: the total cap across binaries.
        let mut e = Embedded::default();
        for i in 0..6 {
            e.push("a.deb", &format!("usr/bin/{i}"), &go(MAX_MODULES));
        }
        assert_eq!(e.modules_listed(), MAX_MODULES_TOTAL);
        assert!(e.truncated);
        assert_eq!(e.binaries.len(), 6, "the toolchain is still listed: {}", e.binaries[5].go_version);
        // Too many binaries; a binary that says nothing is not listed at all.
        let mut e = Embedded::default();
        e.push("a.deb", "usr/lib/libc.so", &ElfInfo::default());
        assert!(e.binaries.is_empty() && !e.truncated);
        for i in 0..=MAX_BINARIES {
            e.push("a.deb", &format!("usr/bin/{i}"), &go(0));
        }
        assert_eq!((e.binaries.len(), e.truncated), (MAX_BINARIES, true));
        // A crate list: the root left out; an over-long version is left out whole.
        let package = |name: &str, version: &str, root: bool| CargoPackage { name: name.into(), version: version.into(), source: None, kind: None, root };
        let mut info = ElfInfo::default();
        info.rust.dep_v0 = DepV0::Present(vec![package("tool", "1.0.0", true), package("libc", "0.2.140", false), package("x", &"9".repeat(300), false)]);
        let mut e = Embedded::default();
        e.push("a.deb", "usr/bin/tool", &info);
        assert_eq!(e.binaries[0].rust_crates, [pb::EmbeddedModule { name: "libc".into(), version: "0.2.140".into() }]);
        assert!(e.truncated);
        // The largest header the bounds allow fits the node message cap (8 MiB) with room.
        let long = |c: char, n: usize| c.to_string().repeat(n);
        let header = pb::ReportHeader {
            embedded: (0..MAX_BINARIES)
                .map(|i| {
                    let modules = if i < MAX_MODULES_TOTAL / MAX_MODULES { MAX_MODULES } else { 0 };
                    pb::EmbeddedBinary {
                        deb: long('d', MAX_DEB_BYTES),
                        path: long('p', MAX_PATH_BYTES),
                        go_version: long('g', MAX_STRING_BYTES),
                        rustc_version: long('r', MAX_STRING_BYTES),
                        go_modules: (0..modules)
                            .map(|_| pb::EmbeddedModule { name: long('n', MAX_STRING_BYTES), version: long('v', MAX_STRING_BYTES) })
                            .collect(),
                        rust_crates: vec![],
                    }
                })
                .collect(),
            ..Default::default()
        };
        let len = prost::Message::encoded_len(&header);
        assert!(len < 7 * 1024 * 1024, "{len} bytes");
    }
}

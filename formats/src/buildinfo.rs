//! `.buildinfo` files (deb-buildinfo(5), Format 1.0).
//!
//! [`Buildinfo::parse`] takes the raw bytes of a file, plain or OpenPGP-clearsigned (the armour
//! is removed here, dash-escaping undone, and the signature block kept byte for byte for later
//! verification: nothing is verified in this crate). The payload paragraph is parsed once with
//! deb822-lossless and every field is then validated strictly; errors name the field and a line
//! of the original input.
//!
//! [`Buildinfo::render`] is the inverse: it writes the fields in the deb-buildinfo(5) order, so
//! `parse(render(b)) == b` for any value `parse` can produce.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use debversion::Version;

use crate::error::ParseError;
use crate::fields::{Field, count_newlines, is_hex_of_len, parse_size, split_paragraph};
use crate::relation::{DepMemo, is_valid_arch, is_valid_package_name, parse_exact_relation, parse_name_version, parse_version};

/// Largest buildinfo accepted, in bytes (real ones are 1–40 KiB; the largest seen is ~100 KiB).
pub const MAX_BUILDINFO_BYTES: usize = 4 * 1024 * 1024;

/// Which layout the file used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The released Format 1.0 layout with `Installed-Build-Depends`.
    Current,
    /// The 2015–16 pre-release layout: `Build-Environment` holds the installed packages.
    PreRelease,
}

/// One package installed in the build environment: `name[:arch] (= version)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledDep {
    /// Binary package name.
    pub name: String,
    /// Architecture qualifier (`libc6:amd64`), if present.
    pub arch: Option<String>,
    /// The exact installed version.
    pub version: Version,
}

/// A file produced by the build, merged across the Checksums-* fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChecksum {
    /// File name (`hello_2.10-3_amd64.deb`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256, if the file lists Checksums-Sha256.
    pub sha256: Option<String>,
    /// Lower-case hex SHA-1, if listed.
    pub sha1: Option<String>,
    /// Lower-case hex MD5, if listed.
    pub md5: Option<String>,
}

/// The OpenPGP envelope of a clearsigned file, kept for later verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The `Hash:` armour header values (e.g. `SHA512`).
    pub hash: Vec<String>,
    /// The armoured signature block, from `-----BEGIN PGP SIGNATURE-----` to the END line
    /// inclusive, byte for byte.
    pub armored: Vec<u8>,
}

/// A parsed, validated `.buildinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buildinfo {
    /// `Format` (normally `1.0`).
    pub format: String,
    /// Source package name.
    pub source: String,
    /// Source version: from `Source: name (version)`, else equal to [`Buildinfo::version`].
    pub source_version: Version,
    /// `Version`: the binary version (carries `+bN` for binNMUs).
    pub version: Version,
    /// `Binary`: binary package names (empty for source-only builds).
    pub binaries: Vec<String>,
    /// `Architecture`: tokens such as `amd64`, `all`, `source`.
    pub architectures: Vec<String>,
    /// `Binary-Only-Changes`: the binNMU changelog entry, verbatim (continuation lines unfolded,
    /// ` .` lines turned into empty lines).
    pub binary_only_changes: Option<String>,
    /// Produced files with their checksums, in the order of first appearance.
    pub checksums: Vec<FileChecksum>,
    /// `Build-Origin`.
    pub build_origin: Option<String>,
    /// `Build-Architecture`.
    pub build_architecture: Option<String>,
    /// `Build-Date` (RFC 2822 text, as written).
    pub build_date: Option<String>,
    /// `Build-Kernel-Version` (old files).
    pub build_kernel_version: Option<String>,
    /// `Build-Path`.
    pub build_path: Option<String>,
    /// `Build-Tainted-By` tokens.
    pub build_tainted_by: Vec<String>,
    /// `Installed-Build-Depends` (or `Build-Environment` in the pre-release layout).
    pub installed_build_depends: Vec<InstalledDep>,
    /// `Environment`: `(NAME, value)` with the quotes removed.
    pub environment: Vec<(String, String)>,
    /// Which layout the file used.
    pub layout: Layout,
    /// Fields this crate does not model, `(name, value)` in file order.
    pub other_fields: Vec<(String, String)>,
    /// The clearsignature, if the input was signed.
    pub signature: Option<Signature>,
}

impl Buildinfo {
    /// Parse a buildinfo from raw file bytes (plain or clearsigned).
    ///
    /// Fails on: non-UTF-8 text, input over [`MAX_BUILDINFO_BYTES`], broken armour, no or several
    /// paragraphs, a missing required field (`Format`, `Source`, `Version`, `Architecture`, and
    /// `Installed-Build-Depends`/`Build-Environment`), a duplicate field, a malformed relation,
    /// version, name or checksum line. Line numbers in errors are lines of the original input.
    pub fn parse(input: &[u8]) -> Result<Buildinfo, ParseError> {
        if input.len() > MAX_BUILDINFO_BYTES {
            return Err(ParseError::new(format!(
                "input is {} bytes, more than the {MAX_BUILDINFO_BYTES} accepted for a buildinfo",
                input.len()
            )));
        }
        let text = match std::str::from_utf8(input) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + count_newlines(input.get(..e.valid_up_to()).unwrap_or_default());
                return Err(ParseError::new("invalid UTF-8").line(line));
            }
        };
        let (payload, line_offset, signature) = dearmor(text)?;
        let fields = split_paragraph(&payload, line_offset)?;
        from_fields(&fields, signature, &mut Collect(Vec::new()))
    }

    /// [`Buildinfo::parse`] for bulk ingestion: the same checks and the same errors, but each
    /// Installed-Build-Depends (or Build-Environment) entry becomes a value of the caller's,
    /// made by `make(name, arch qualifier, version)` and returned in file order beside the
    /// buildinfo, whose [`Buildinfo::installed_build_depends`] is left empty. The version is the
    /// canonical text of the parsed version (what `Version::to_string` gives).
    ///
    /// `memo` remembers the values of entries already seen, by their text: a series of parses
    /// sharing one memo parses each distinct entry once and calls `make` once for it.
    pub fn parse_with_deps<T: Clone>(
        input: &[u8],
        memo: &mut DepMemo<T>,
        make: impl FnMut(&str, Option<&str>, &str) -> T,
    ) -> Result<(Buildinfo, Vec<T>), ParseError> {
        if input.len() > MAX_BUILDINFO_BYTES {
            return Err(ParseError::new(format!(
                "input is {} bytes, more than the {MAX_BUILDINFO_BYTES} accepted for a buildinfo",
                input.len()
            )));
        }
        let text = match std::str::from_utf8(input) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + count_newlines(input.get(..e.valid_up_to()).unwrap_or_default());
                return Err(ParseError::new("invalid UTF-8").line(line));
            }
        };
        let (payload, line_offset, signature) = dearmor(text)?;
        let fields = split_paragraph(&payload, line_offset)?;
        let mut visit = Visit { memo, make, out: Vec::with_capacity(input.len() / 40) };
        let info = from_fields(&fields, signature, &mut visit)?;
        Ok((info, visit.out))
    }

    /// Render as deb822 text (one paragraph, unsigned), fields in the deb-buildinfo(5) order:
    /// Format, Source, Binary, Architecture, Version, Binary-Only-Changes, Checksums-Md5,
    /// Checksums-Sha1, Checksums-Sha256, Build-Origin, Build-Architecture, Build-Date,
    /// Build-Kernel-Version, Build-Path, Build-Tainted-By, Installed-Build-Depends (or
    /// Build-Environment for [`Layout::PreRelease`]), Environment, then [`Buildinfo::other_fields`]
    /// in their order. The output is deterministic and ends with `\n`.
    ///
    /// For every value [`Buildinfo::parse`] returns, `parse(render(b)) == b` (except the
    /// signature, which is not rendered). Values built by hand must obey the same rules (valid
    /// names and versions, single-line values where the field is single-line, no line equal to
    /// `.` in multi-line values).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(
            1024 + self.installed_build_depends.len() * 40 + self.checksums.len() * 200,
        );
        // `write!` into a String cannot fail.
        let _ = writeln!(out, "Format: {}", self.format);
        if self.source_version == self.version {
            let _ = writeln!(out, "Source: {}", self.source);
        } else {
            let _ = writeln!(out, "Source: {} ({})", self.source, self.source_version);
        }
        if !self.binaries.is_empty() {
            let _ = writeln!(out, "Binary: {}", self.binaries.join(" "));
        }
        let _ = writeln!(out, "Architecture: {}", self.architectures.join(" "));
        let _ = writeln!(out, "Version: {}", self.version);
        if let Some(changes) = &self.binary_only_changes {
            render_multiline(&mut out, "Binary-Only-Changes", changes);
        }
        type Pick = fn(&FileChecksum) -> Option<&String>;
        let kinds: [(&str, Pick); 3] = [
            ("Checksums-Md5", |f| f.md5.as_ref()),
            ("Checksums-Sha1", |f| f.sha1.as_ref()),
            ("Checksums-Sha256", |f| f.sha256.as_ref()),
        ];
        for (name, pick) in kinds {
            if self.checksums.iter().any(|f| pick(f).is_some()) {
                let _ = writeln!(out, "{name}:");
                for f in &self.checksums {
                    if let Some(h) = pick(f) {
                        let _ = writeln!(out, " {h} {} {}", f.size, f.name);
                    }
                }
            }
        }
        let single = [
            ("Build-Origin", &self.build_origin),
            ("Build-Architecture", &self.build_architecture),
            ("Build-Date", &self.build_date),
            ("Build-Kernel-Version", &self.build_kernel_version),
            ("Build-Path", &self.build_path),
        ];
        for (name, value) in single {
            if let Some(v) = value {
                let _ = writeln!(out, "{name}: {v}");
            }
        }
        if !self.build_tainted_by.is_empty() {
            out.push_str("Build-Tainted-By:\n");
            for t in &self.build_tainted_by {
                let _ = writeln!(out, " {t}");
            }
        }
        out.push_str(match self.layout {
            Layout::Current => "Installed-Build-Depends:",
            Layout::PreRelease => "Build-Environment:",
        });
        let last = self.installed_build_depends.len().saturating_sub(1);
        for (i, d) in self.installed_build_depends.iter().enumerate() {
            let _ = write!(out, "\n {}", d.name);
            if let Some(a) = &d.arch {
                let _ = write!(out, ":{a}");
            }
            let _ = write!(out, " (= {})", d.version);
            if i != last {
                out.push(',');
            }
        }
        out.push('\n');
        if !self.environment.is_empty() {
            out.push_str("Environment:\n");
            for (name, value) in &self.environment {
                let _ = writeln!(out, " {name}=\"{}\"", escape_env(value));
            }
        }
        for (name, value) in &self.other_fields {
            // Folded when the value has several lines or leading/trailing blanks (which a
            // single-line value would lose).
            if value.contains('\n') || value.trim_ascii() != value {
                render_multiline(&mut out, name, value);
            } else {
                let _ = writeln!(out, "{name}: {value}");
            }
        }
        out
    }

    /// The concrete architecture of this build: the first token of `Architecture` that is neither
    /// `all` nor `source`, or `all` for arch-independent-only builds, or `source`.
    pub fn host_architecture(&self) -> &str {
        self.architectures
            .iter()
            .find(|a| *a != "all" && *a != "source")
            .or_else(|| self.architectures.iter().find(|a| *a == "all"))
            .map(String::as_str)
            .unwrap_or("source")
    }
}

/// Write `name:` then each line of `value` as a continuation line (` .` for empty lines).
fn render_multiline(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(":\n");
    for line in value.split('\n') {
        if line.is_empty() {
            out.push_str(" .\n");
        } else {
            out.push(' ');
            out.push_str(line);
            out.push('\n');
        }
    }
}

/// Escape `\` and `"` for an `Environment` value in double quotes (undone by [`unquote_env`]).
fn escape_env(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// The value of an `Environment` line: inside double quotes, `\"` and `\\` are unescaped
/// (other backslashes are kept); an unquoted value is taken as is.
fn unquote_env(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(inner.to_owned());
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('\\' | '"')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                // The closing quote was escaped: the value is unterminated.
                None => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

const BEGIN_SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

/// A line of the input: its 1-based number, byte offset, and content without `\n` / `\r\n`.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').enumerate().map(move |(i, l)| {
        let start = offset;
        offset += l.len();
        let content = l.strip_suffix('\n').unwrap_or(l);
        let content = content.strip_suffix('\r').unwrap_or(content);
        (i + 1, start, content)
    })
}

/// A carriage return that is not part of a `\r\n` line ending.
fn stray_cr(content: &str, line: usize) -> Result<(), ParseError> {
    if content.contains('\r') {
        return Err(ParseError::new("stray carriage return (only \\n or \\r\\n line endings are allowed)").line(line));
    }
    Ok(())
}

/// Split off the OpenPGP clearsign armour, if any.
///
/// Returns the deb822 payload (dash-escaping undone, line endings normalised to `\n`), the
/// number of input lines before the payload, and the signature.
pub(crate) fn dearmor(text: &str) -> Result<(Cow<'_, str>, usize, Option<Signature>), ParseError> {
    let mut lines = numbered_lines(text);
    let first = lines.by_ref().find(|(_, _, l)| !l.trim_ascii().is_empty());
    let Some((begin_line, _, first)) = first else {
        return Err(ParseError::new("empty input: no buildinfo paragraph"));
    };
    if first.trim_ascii_end() != BEGIN_SIGNED {
        if first.starts_with("-----BEGIN PGP") {
            return Err(ParseError::new(format!(
                "`{}` is not a clearsigned message (expected `{BEGIN_SIGNED}`)",
                first.trim_ascii_end()
            ))
            .line(begin_line));
        }
        // Plain deb822.
        if !text.contains('\r') {
            return Ok((Cow::Borrowed(text), 0, None));
        }
        let mut out = String::with_capacity(text.len());
        for (n, _, content) in numbered_lines(text) {
            stray_cr(content, n)?;
            out.push_str(content);
            out.push('\n');
        }
        return Ok((Cow::Owned(out), 0, None));
    }

    // Armour headers, up to a blank line.
    let mut hash = Vec::new();
    let mut last_line = begin_line;
    let mut header_done = false;
    for (n, _, content) in lines.by_ref() {
        last_line = n;
        if content.trim_ascii().is_empty() {
            header_done = true;
            break;
        }
        let Some((key, value)) = content.split_once(": ") else {
            return Err(ParseError::new(format!(
                "malformed armour header line `{content}` (expected `Name: value`, then a blank line)"
            ))
            .line(n));
        };
        if key == "Hash" {
            hash.extend(value.split(',').map(str::trim_ascii).filter(|h| !h.is_empty()).map(str::to_owned));
        }
    }
    if !header_done {
        return Err(ParseError::new("truncated clearsigned message: no blank line after the armour header")
            .line(last_line));
    }

    // The signed text, dash-escaped.
    let payload_offset = last_line;
    let mut payload = String::with_capacity(text.len());
    let mut sig_start = None;
    for (n, start, content) in lines.by_ref() {
        last_line = n;
        if content.trim_ascii_end() == BEGIN_SIGNATURE {
            sig_start = Some((n, start));
            break;
        }
        stray_cr(content, n)?;
        let unescaped = if let Some(rest) = content.strip_prefix("- ") {
            rest
        } else if content.starts_with('-') {
            return Err(ParseError::new(format!(
                "line `{content}` starts with `-` but is not dash-escaped and is not `{BEGIN_SIGNATURE}`"
            ))
            .line(n));
        } else {
            content
        };
        payload.push_str(unescaped);
        payload.push('\n');
    }
    let Some((sig_line, sig_start)) = sig_start else {
        return Err(ParseError::new(format!(
            "truncated clearsigned message: no `{BEGIN_SIGNATURE}` line"
        ))
        .line(last_line));
    };

    // The signature block, up to the END line.
    let mut sig_end = None;
    for (n, start, content) in lines.by_ref() {
        last_line = n;
        if content.trim_ascii_end() == END_SIGNATURE {
            sig_end = Some(start + END_SIGNATURE.len());
            break;
        }
    }
    let Some(sig_end) = sig_end else {
        return Err(ParseError::new(format!(
            "truncated signature: `{BEGIN_SIGNATURE}` at line {sig_line} has no `{END_SIGNATURE}` line"
        ))
        .line(last_line));
    };
    if let Some((n, _, content)) = lines.find(|(_, _, l)| !l.trim_ascii().is_empty()) {
        let shown: String = content.chars().take(40).collect();
        return Err(ParseError::new(format!(
            "unexpected text after `{END_SIGNATURE}`: `{shown}`"
        ))
        .line(n));
    }
    let armored = text.as_bytes().get(sig_start..sig_end).unwrap_or_default().to_vec();
    Ok((Cow::Owned(payload), payload_offset, Some(Signature { hash, armored })))
}

/// The fields this module models, matched case-insensitively.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Known {
    Format,
    Source,
    Binary,
    Architecture,
    Version,
    BinaryOnlyChanges,
    Md5,
    Sha1,
    Sha256,
    BuildOrigin,
    BuildArchitecture,
    BuildDate,
    BuildKernelVersion,
    BuildPath,
    BuildTaintedBy,
    InstalledBuildDepends,
    BuildEnvironment,
    Environment,
}

const KNOWN: [(&str, Known); 18] = [
    ("Format", Known::Format),
    ("Source", Known::Source),
    ("Binary", Known::Binary),
    ("Architecture", Known::Architecture),
    ("Version", Known::Version),
    ("Binary-Only-Changes", Known::BinaryOnlyChanges),
    ("Checksums-Md5", Known::Md5),
    ("Checksums-Sha1", Known::Sha1),
    ("Checksums-Sha256", Known::Sha256),
    ("Build-Origin", Known::BuildOrigin),
    ("Build-Architecture", Known::BuildArchitecture),
    ("Build-Date", Known::BuildDate),
    ("Build-Kernel-Version", Known::BuildKernelVersion),
    ("Build-Path", Known::BuildPath),
    ("Build-Tainted-By", Known::BuildTaintedBy),
    ("Installed-Build-Depends", Known::InstalledBuildDepends),
    ("Build-Environment", Known::BuildEnvironment),
    ("Environment", Known::Environment),
];

fn known(name: &str) -> Option<(usize, Known)> {
    KNOWN.iter().enumerate().find(|(_, (n, _))| n.eq_ignore_ascii_case(name)).map(|(i, (_, k))| (i, *k))
}

/// Is `name` one of the fields [`Buildinfo`] models (and [`Buildinfo::render`] writes itself)?
/// Field names are compared case-insensitively. Such names cannot appear in
/// [`Buildinfo::other_fields`].
pub fn is_modelled_field(name: &str) -> bool {
    known(name).is_some()
}

/// Hash kinds of the Checksums-* fields.
#[derive(Clone, Copy)]
enum HashKind {
    Md5,
    Sha1,
    Sha256,
}

impl HashKind {
    fn hex_len(self) -> usize {
        match self {
            HashKind::Md5 => 32,
            HashKind::Sha1 => 40,
            HashKind::Sha256 => 64,
        }
    }
    fn slot(self, f: &mut FileChecksum) -> &mut Option<String> {
        match self {
            HashKind::Md5 => &mut f.md5,
            HashKind::Sha1 => &mut f.sha1,
            HashKind::Sha256 => &mut f.sha256,
        }
    }
}

/// Parse one Checksums-* field into `files`, merging by file name.
fn parse_checksums<'a>(
    f: &Field<'a>,
    kind: HashKind,
    files: &mut Vec<FileChecksum>,
    index: &mut Option<HashMap<String, usize>>,
) -> Result<(), ParseError> {
    for (line, content) in f.lines() {
        let mut tokens = content.split_ascii_whitespace();
        let (Some(hash), Some(size), Some(name)) = (tokens.next(), tokens.next(), tokens.next_back())
        else {
            if content.trim_ascii().is_empty() {
                continue;
            }
            return Err(f.err(format!("`{}`: expected `HASH SIZE NAME`", content.trim_ascii())).line(line));
        };
        let bad = |msg: String| ParseError::new(msg).field(f.name).line(line);
        if !is_hex_of_len(hash, kind.hex_len()) {
            return Err(bad(format!("`{hash}` is not a {}-digit hex digest", kind.hex_len())));
        }
        let Some(size) = parse_size(size) else {
            return Err(bad(format!("`{size}` is not a file size")));
        };
        if name.contains('/') || name == "." || name == ".." {
            return Err(bad(format!("`{name}` is not a file name")));
        }
        let i = match find_file(files, index, name) {
            Some(i) => i,
            None => {
                files.push(FileChecksum { name: name.to_owned(), size, sha256: None, sha1: None, md5: None });
                let i = files.len() - 1;
                if let Some(map) = index.as_mut() {
                    map.insert(name.to_owned(), i);
                }
                i
            }
        };
        let Some(file) = files.get_mut(i) else {
            return Err(bad("internal error: lost checksum entry".into()));
        };
        if file.size != size {
            return Err(bad(format!("size {size} of `{name}` disagrees with {} given earlier", file.size)));
        }
        let slot = kind.slot(file);
        if slot.is_some() {
            return Err(bad(format!("`{name}` is listed twice")));
        }
        *slot = Some(hash.to_ascii_lowercase());
    }
    Ok(())
}

/// Position of the file called `name` in `files`: a linear scan while there are few files (the
/// usual case), a hash map built on demand beyond that, so a hostile input with many thousands
/// of files stays linear.
fn find_file(files: &[FileChecksum], index: &mut Option<HashMap<String, usize>>, name: &str) -> Option<usize> {
    const LINEAR: usize = 16;
    if files.len() <= LINEAR && index.is_none() {
        return files.iter().position(|f| f.name == name);
    }
    let map = index.get_or_insert_with(|| files.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect());
    map.get(name).copied()
}

/// The error for a paragraph that lacks required fields: names the first missing one as the
/// field and lists all of them in the message.
fn missing_fields(fields: &[Field<'_>]) -> ParseError {
    let has = |name: &str| fields.iter().any(|f| f.name.eq_ignore_ascii_case(name));
    let mut missing: Vec<&str> = ["Format", "Source", "Version", "Architecture"].into_iter().filter(|n| !has(n)).collect();
    if !has("Installed-Build-Depends") && !has("Build-Environment") {
        missing.push("Installed-Build-Depends");
    }
    let Some((first, rest)) = missing.split_first() else {
        return ParseError::new("internal error: a required field was present but not recorded");
    };
    let mut message = String::from("missing required field");
    if *first == "Installed-Build-Depends" {
        message.push_str(" (nor is there a pre-release Build-Environment field)");
    }
    if !rest.is_empty() {
        message.push_str(&format!(" (also missing: {}); is this a buildinfo file?", rest.join(", ")));
    }
    ParseError::new(message).field(*first)
}

/// Where the Installed-Build-Depends entries go: collected as [`InstalledDep`]s, or visited.
trait DepSink {
    /// One entry, as written (`name[:arch] (= version)`); the error is a user-facing message.
    fn entry(&mut self, item: &str) -> Result<(), String>;
    /// The collected entries (none when visited).
    fn take(&mut self) -> Vec<InstalledDep>;
}

/// [`DepSink`] of [`Buildinfo::parse`].
struct Collect(Vec<InstalledDep>);

impl DepSink for Collect {
    fn entry(&mut self, item: &str) -> Result<(), String> {
        let rel = parse_exact_relation(item)?;
        self.0.push(InstalledDep { name: rel.name.to_owned(), arch: rel.arch.map(str::to_owned), version: rel.version });
        Ok(())
    }
    fn take(&mut self) -> Vec<InstalledDep> {
        std::mem::take(&mut self.0)
    }
}

/// [`DepSink`] of [`Buildinfo::parse_with_deps`].
struct Visit<'m, T, F> {
    memo: &'m mut DepMemo<T>,
    make: F,
    out: Vec<T>,
}

impl<T: Clone, F: FnMut(&str, Option<&str>, &str) -> T> DepSink for Visit<'_, T, F> {
    fn entry(&mut self, item: &str) -> Result<(), String> {
        let v = self.memo.entry(item, &mut self.make)?;
        self.out.push(v);
        Ok(())
    }
    fn take(&mut self) -> Vec<InstalledDep> {
        Vec::new()
    }
}

/// Build the value from the payload's fields.
fn from_fields(
    fields: &[Field<'_>],
    signature: Option<Signature>,
    dep_sink: &mut impl DepSink,
) -> Result<Buildinfo, ParseError> {
    let mut seen = [false; KNOWN.len()];
    let mut format = None;
    let mut source = None;
    let mut version = None;
    let mut binaries = Vec::new();
    let mut architectures = None;
    let mut binary_only_changes = None;
    let mut checksums = Vec::new();
    let mut checksum_index = None;
    let mut build_origin = None;
    let mut build_architecture = None;
    let mut build_date = None;
    let mut build_kernel_version = None;
    let mut build_path = None;
    let mut build_tainted_by = Vec::new();
    let mut ibd: Option<(Layout, Vec<InstalledDep>)> = None;
    let mut environment = Vec::new();
    let mut other_fields: Vec<(String, String)> = Vec::new();

    for f in fields {
        let Some((i, k)) = known(f.name) else {
            if other_fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(f.name)) {
                return Err(f.err("duplicate field"));
            }
            other_fields.push((f.name.to_owned(), f.unfolded()));
            continue;
        };
        match seen.get_mut(i) {
            Some(s) if *s => return Err(f.err("duplicate field")),
            Some(s) => *s = true,
            None => {}
        }
        match k {
            Known::Format => {
                let v = f.single()?;
                if v.is_empty() {
                    return Err(f.err("empty value"));
                }
                format = Some(v.to_owned());
            }
            Known::Source => source = Some(parse_name_version(f.single()?).map_err(|e| f.locate(e))?),
            Known::Version => version = Some(parse_version(f.single()?).map_err(|e| f.locate(e))?),
            Known::Binary => {
                for (line, t) in f.tokens() {
                    if !is_valid_package_name(t) {
                        return Err(f.err(format!("invalid package name `{t}`")).line(line));
                    }
                    binaries.push(t.to_owned());
                }
            }
            Known::Architecture => {
                let mut archs = Vec::new();
                for (line, t) in f.tokens() {
                    if !is_valid_arch(t) {
                        return Err(f.err(format!("invalid architecture `{t}`")).line(line));
                    }
                    archs.push(t.to_owned());
                }
                if archs.is_empty() {
                    return Err(f.err("empty value"));
                }
                architectures = Some(archs);
            }
            Known::BinaryOnlyChanges => binary_only_changes = Some(f.unfolded()),
            Known::Md5 => parse_checksums(f, HashKind::Md5, &mut checksums, &mut checksum_index)?,
            Known::Sha1 => parse_checksums(f, HashKind::Sha1, &mut checksums, &mut checksum_index)?,
            Known::Sha256 => parse_checksums(f, HashKind::Sha256, &mut checksums, &mut checksum_index)?,
            Known::BuildOrigin => build_origin = Some(f.single()?.to_owned()),
            Known::BuildArchitecture => {
                let v = f.single()?;
                if !is_valid_arch(v) {
                    return Err(f.err(format!("invalid architecture `{v}`")));
                }
                build_architecture = Some(v.to_owned());
            }
            Known::BuildDate => build_date = Some(f.single()?.to_owned()),
            Known::BuildKernelVersion => build_kernel_version = Some(f.single()?.to_owned()),
            Known::BuildPath => build_path = Some(f.single()?.to_owned()),
            Known::BuildTaintedBy => build_tainted_by.extend(f.tokens().map(|(_, t)| t.to_owned())),
            Known::InstalledBuildDepends | Known::BuildEnvironment => {
                let layout = if k == Known::InstalledBuildDepends { Layout::Current } else { Layout::PreRelease };
                if ibd.is_some() {
                    return Err(f.err(
                        "both Installed-Build-Depends and Build-Environment are present; only one is allowed",
                    ));
                }
                f.for_each_item(|line, item| {
                    dep_sink.entry(item).map_err(|m| ParseError::new(m).field(f.name).line(line))
                })?;
                ibd = Some((layout, dep_sink.take()));
            }
            Known::Environment => {
                for (line, content) in f.lines() {
                    let content = content.trim_ascii();
                    if content.is_empty() {
                        continue;
                    }
                    let Some((name, value)) = content.split_once('=') else {
                        return Err(f.err(format!("`{content}`: expected `NAME=\"value\"`")).line(line));
                    };
                    if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b == b'"') {
                        return Err(f.err(format!("`{content}`: invalid variable name `{name}`")).line(line));
                    }
                    let Some(value) = unquote_env(value) else {
                        return Err(f.err(format!("`{content}`: unterminated quoted value")).line(line));
                    };
                    environment.push((name.to_owned(), value));
                }
            }
        }
    }

    let (Some(format), Some((source, source_version)), Some(version), Some(architectures), Some((layout, installed_build_depends))) =
        (format, source, version, architectures, ibd)
    else {
        return Err(missing_fields(fields));
    };
    let source_version = source_version.unwrap_or_else(|| version.clone());
    Ok(Buildinfo {
        format,
        source,
        source_version,
        version,
        binaries,
        architectures,
        binary_only_changes,
        checksums,
        build_origin,
        build_architecture,
        build_date,
        build_kernel_version,
        build_path,
        build_tainted_by,
        installed_build_depends,
        environment,
        layout,
        other_fields,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "Format: 1.0\nSource: foo\nArchitecture: all\nVersion: 1.0-1\nInstalled-Build-Depends:\n bar (= 2)\n";

    #[test]
    fn environment_quoting() {
        assert_eq!(unquote_env("\"a b\"").as_deref(), Some("a b"));
        assert_eq!(unquote_env("plain").as_deref(), Some("plain"));
        assert_eq!(unquote_env(r#""x\"y\\z\n""#).as_deref(), Some(r#"x"y\z\n"#));
        assert_eq!(unquote_env("\"open"), None);
        assert_eq!(unquote_env(r#""a\""#), None);
        for v in ["", "a\"b", "a\\", "\\\"", "q\\n"] {
            assert_eq!(unquote_env(&format!("\"{}\"", escape_env(v))).as_deref(), Some(v));
        }
        let b = Buildinfo::parse(format!("{MINIMAL}Environment:\n DEB_BUILD_OPTIONS=\"parallel=4\"\n LANG=C.UTF-8\n").as_bytes()).unwrap();
        assert_eq!(b.environment, vec![("DEB_BUILD_OPTIONS".into(), "parallel=4".into()), ("LANG".into(), "C.UTF-8".into())]);
    }

    #[test]
    fn minimal_defaults() {
        let b = Buildinfo::parse(MINIMAL.as_bytes()).unwrap();
        assert_eq!(b.source_version, b.version);
        assert!(b.binaries.is_empty() && b.checksums.is_empty() && b.signature.is_none());
        assert_eq!(b.layout, Layout::Current);
        assert_eq!(Buildinfo::parse(b.render().as_bytes()).unwrap(), b);
    }

    #[test]
    fn stray_carriage_return_is_rejected_with_line() {
        let text = MINIMAL.replace("Version: 1.0-1\n", "Version: 1.0-1\rX: y\n");
        let err = Buildinfo::parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        let signed = format!("{BEGIN_SIGNED}\nHash: SHA256\n\n{text}{BEGIN_SIGNATURE}\n{END_SIGNATURE}\n");
        assert_eq!(Buildinfo::parse(signed.as_bytes()).unwrap_err().line, Some(7));
    }

    #[test]
    fn both_layouts_at_once_is_an_error() {
        let text = format!("{MINIMAL}Build-Environment:\n bar (= 2)\n");
        let err = Buildinfo::parse(text.as_bytes()).unwrap_err();
        assert_eq!((err.field.as_deref(), err.line), (Some("Build-Environment"), Some(7)));
    }

    /// The real buildinfos of the shared test data take the fast field splitter (a regression
    /// here would not break anything but would cost most of the parse speed).
    #[test]
    fn real_files_take_the_fast_splitter() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/buildinfo");
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut n = 0;
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            let text = std::str::from_utf8(&bytes).unwrap();
            let (payload, offset, _) = dearmor(text).unwrap();
            assert!(crate::fields::split_paragraph_fast(&payload, offset).is_some(), "{}", e.path().display());
            n += 1;
        }
        assert!(n >= 10, "{n} files");
    }

    #[test]
    fn many_files_use_the_index() {
        let mut text = String::from(MINIMAL);
        text.push_str("Checksums-Sha256:\n");
        for i in 0..100 {
            text.push_str(&format!(" {} {i} f{i}.deb\n", "a".repeat(64)));
        }
        text.push_str("Checksums-Md5:\n");
        for i in (0..100).rev() {
            text.push_str(&format!(" {} {i} f{i}.deb\n", "b".repeat(32)));
        }
        let b = Buildinfo::parse(text.as_bytes()).unwrap();
        assert_eq!(b.checksums.len(), 100);
        assert!(b.checksums.iter().all(|f| f.md5.is_some() && f.sha256.is_some()));
        assert_eq!(b.checksums[7].name, "f7.deb");
        text.push_str(&format!(" {} 3 f3.deb\n", "c".repeat(32)));
        let err = Buildinfo::parse(text.as_bytes()).unwrap_err();
        assert!(err.message.contains("listed twice"), "{err}");
    }
}

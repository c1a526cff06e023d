//! `BuiltWithCompact`: the `built-with` answer dictionary-coded (`CompactBuiltWithResponse` in
//! coordinator.proto): every distinct string once per answer, SHA-256s as 32 raw bytes, one
//! column per field instead of nested messages. It carries exactly what `BuiltWithResponse`
//! carries; values not of the compact form (an id that is not lowercase hexadecimal, a file
//! name that is not `PACKAGE_VERSION_ARCH.EXT`) travel whole in exception lists.
//!
//! Server side: [`encode`] assembles the answer's bytes from per-build parts ([`CompactBuild`],
//! one per index entry and generation, kept in the index like the `BuiltWithEncoded` bytes)
//! whose strings are numbered in the generation's [`Symbols`]; per answer, those numbers are
//! renumbered densely (a table lookup each), so nothing is hashed per answer but the matched
//! entries. Whole answers are never kept.
//!
//! Client side, the one place the compact form is read: [`CompactView::new`] checks every
//! column's length and every index once (an error names the column) and then reads fields
//! without copying; [`decode`] turns it into the domain values the CLI renders
//! ([`BuiltWithResult`]), the same values `convert::built_with_result` makes of `BuiltWith`.

use std::collections::HashMap;

use debcover_proto::v1 as pb;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};

use super::convert::file_name_parts;
use crate::index::{IndexedAnswer, ResolvedBuild, Symbols};
use crate::model::{BinarySummary, BuildSummary, BuiltWithResult, Dependency, ProducedFile, ResultBuild};

// ---------------------------------------------------------------------------- server side

/// A SHA-256 as 32 raw bytes when its text is 64 lowercase hexadecimal digits, else its text
/// (as a symbol).
#[derive(Debug, Clone, Copy)]
enum Hash {
    Raw([u8; 32]),
    Odd(u32),
}

fn hash(text: &str, symbols: &Symbols) -> Hash {
    let mut raw = [0u8; 32];
    let lower_hex = text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if lower_hex && hex::decode_to_slice(text, &mut raw).is_ok() { Hash::Raw(raw) } else { Hash::Odd(symbols.intern(text)) }
}

/// How a binary's file name travels: its extension (the rest is package, version and
/// architecture), or whole.
#[derive(Debug, Clone, Copy)]
enum FileName {
    Ext(u32),
    Odd(u32),
}

#[derive(Debug)]
struct CompactBinary {
    package: u32,
    version: u32,
    architecture: u32,
    name: FileName,
    size: u64,
    sha256: Hash,
    shipped_in: Vec<u32>,
}

/// One index entry (a build, its binaries and their shipping places in one generation) with
/// its strings numbered in the generation's [`Symbols`] and its hashes raw. Made once per entry,
/// kept in the index.
#[derive(Debug)]
pub struct CompactBuild {
    id: Hash,
    /// source, source_version, version, host architecture, build date, build origin, origin
    /// prefix.
    texts: [u32; 7],
    origin_number: u64,
    architectures: Vec<u32>,
    installed_build_depends: u32,
    signed: bool,
    binaries: Vec<CompactBinary>,
}

/// `origin` as (prefix, number + 1) when it ends in a decimal number written without leading
/// zeros, else (origin, 0).
fn split_origin(origin: &str) -> (&str, u64) {
    let digits = origin.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (prefix, number) = origin.split_at(origin.len() - digits);
    match number.parse::<u64>() {
        Ok(n) if n < u64::MAX && n.to_string() == number => (prefix, n + 1),
        _ => (origin, 0),
    }
}

fn compact_binary(f: &ProducedFile, symbols: &Symbols) -> CompactBinary {
    let (package, version, architecture, ext) = file_name_parts(&f.name);
    let name = match ext {
        Some(ext)
            if f.name.len() == package.len() + version.len() + architecture.len() + ext.len() + 3
                && f.name == format!("{package}_{version}_{architecture}.{ext}") =>
        {
            FileName::Ext(symbols.intern(ext))
        }
        _ => FileName::Odd(symbols.intern(&f.name)),
    };
    CompactBinary {
        package: symbols.intern(package),
        version: symbols.intern(version),
        architecture: symbols.intern(architecture),
        name,
        size: f.size,
        sha256: hash(f.sha256.as_deref().unwrap_or_default(), symbols),
        shipped_in: f.shipped_in.iter().map(|s| symbols.intern(s)).collect(),
    }
}

fn compact_build(r: &ResolvedBuild, symbols: &Symbols) -> CompactBuild {
    let b = &r.build.record;
    let (prefix, origin_number) = split_origin(&b.origin);
    CompactBuild {
        id: hash(&b.sha256, symbols),
        texts: [
            symbols.intern(&b.source),
            symbols.intern(&b.source_version),
            symbols.intern(&b.version),
            symbols.intern(&b.host_arch),
            symbols.intern(b.build_date.as_deref().unwrap_or_default()),
            symbols.intern(b.build_origin.as_deref().unwrap_or_default()),
            symbols.intern(prefix),
        ],
        origin_number,
        architectures: b.architectures.iter().map(|a| symbols.intern(a)).collect(),
        installed_build_depends: b.ibd_count,
        signed: b.signed,
        binaries: r.files.iter().map(|f| compact_binary(f, symbols)).collect(),
    }
}

/// Generation symbols → this answer's string table (dense, in order of first use).
struct Remap {
    /// Local index + 1 by symbol (0: not used yet).
    local: Vec<u32>,
    /// The symbols of the answer's table, in order.
    order: Vec<u32>,
}

impl Remap {
    fn new(symbols: usize) -> Self {
        // Symbol 0 is "", local 0.
        let mut local = vec![0u32; symbols.max(1)];
        local[0] = 1;
        Remap { local, order: vec![0] }
    }

    fn get(&mut self, symbol: u32) -> u32 {
        let s = symbol as usize;
        if s >= self.local.len() {
            self.local.resize(s + 1, 0);
        }
        match self.local[s] {
            0 => {
                let n = self.order.len() as u32;
                self.order.push(symbol);
                self.local[s] = n + 1;
                n
            }
            n => n - 1,
        }
    }
}

/// The columns of a `CompactBuiltWithResponse` being filled.
#[derive(Default)]
struct Columns {
    build_ids: Vec<u8>,
    texts: [Vec<u32>; 7],
    origin_number: Vec<u64>,
    architecture_counts: Vec<u32>,
    architectures: Vec<u32>,
    installed_build_depends: Vec<u32>,
    signed: Vec<bool>,
    dependency: [Vec<u32>; 3],
    matched_counts: Vec<u32>,
    matched: Vec<u32>,
    binary_counts: Vec<u32>,
    binary_package: Vec<u32>,
    binary_version: Vec<u32>,
    binary_architecture: Vec<u32>,
    binary_extension: Vec<u32>,
    binary_size: Vec<u64>,
    binary_sha256: Vec<u8>,
    shipped_counts: Vec<u32>,
    shipped_in: Vec<u32>,
    odd_build_ids: (Vec<u32>, Vec<u32>),
    odd_filenames: (Vec<u32>, Vec<u32>),
    odd_sha256: (Vec<u32>, Vec<u32>),
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Field numbers of `CompactBuiltWithResponse`, per build text (`CompactBuild::texts` order).
const TEXT_FIELDS: [u32; 7] = [4, 5, 6, 9, 10, 11, 14];

/// An indexed answer as the bytes of a `CompactBuiltWithResponse` (see the module comment).
/// `answer` must come from the index (its per-build parts refer to `answer.symbols`).
pub fn encode(answer: &IndexedAnswer) -> Vec<u8> {
    let fallback;
    let symbols: &Symbols = match &answer.symbols {
        Some(s) => s,
        None => {
            fallback = Symbols::default();
            &fallback
        }
    };
    let mut remap = Remap::new(symbols.len());
    let mut c = Columns::default();
    let binaries: usize = answer.builds.iter().map(|m| m.files().len()).sum();
    let n = answer.builds.len();
    c.build_ids.reserve(32 * n);
    c.binary_sha256.reserve(32 * binaries);
    let mut deps: HashMap<i64, u32> = HashMap::new();
    let mut binary_pos: u32 = 0;
    for (i, m) in answer.builds.iter().enumerate() {
        let p = m.resolved.compact.get_or_init(|| compact_build(&m.resolved, symbols));
        match p.id {
            Hash::Raw(raw) => c.build_ids.extend_from_slice(&raw),
            Hash::Odd(s) => {
                c.build_ids.extend_from_slice(&[0; 32]);
                c.odd_build_ids.0.push(count(i));
                c.odd_build_ids.1.push(s);
            }
        }
        for (col, s) in c.texts.iter_mut().zip(p.texts) {
            col.push(remap.get(s));
        }
        c.origin_number.push(p.origin_number);
        c.architecture_counts.push(count(p.architectures.len()));
        c.architectures.extend(p.architectures.iter().map(|s| remap.get(*s)));
        c.installed_build_depends.push(p.installed_build_depends);
        c.signed.push(p.signed);
        c.matched_counts.push(count(m.matched.len()));
        for d in &m.matched {
            let next = count(deps.len());
            let k = *deps.entry(d.id).or_insert_with(|| {
                for (col, text) in c.dependency.iter_mut().zip([&d.name, &d.arch, &d.version]) {
                    col.push(remap.get(symbols.intern(text)));
                }
                next
            });
            c.matched.push(k);
        }
        // With a suite, the binaries shipped there: a subsequence of the entry's files.
        let chosen: Vec<&CompactBinary> = match &m.suite_files {
            None => p.binaries.iter().collect(),
            Some(kept) => {
                let mut kept = kept.iter().peekable();
                m.resolved
                    .files
                    .iter()
                    .zip(&p.binaries)
                    .filter(|(f, _)| kept.next_if(|k| *k == *f).is_some())
                    .map(|(_, b)| b)
                    .collect()
            }
        };
        c.binary_counts.push(count(chosen.len()));
        for b in chosen {
            c.binary_package.push(remap.get(b.package));
            c.binary_version.push(remap.get(b.version));
            c.binary_architecture.push(remap.get(b.architecture));
            match b.name {
                FileName::Ext(s) => c.binary_extension.push(remap.get(s)),
                FileName::Odd(s) => {
                    c.binary_extension.push(0);
                    c.odd_filenames.0.push(binary_pos);
                    c.odd_filenames.1.push(s);
                }
            }
            c.binary_size.push(b.size);
            match b.sha256 {
                Hash::Raw(raw) => c.binary_sha256.extend_from_slice(&raw),
                Hash::Odd(s) => {
                    c.binary_sha256.extend_from_slice(&[0; 32]);
                    c.odd_sha256.0.push(binary_pos);
                    c.odd_sha256.1.push(s);
                }
            }
            c.shipped_counts.push(count(b.shipped_in.len()));
            c.shipped_in.extend(b.shipped_in.iter().map(|s| remap.get(*s)));
            binary_pos = binary_pos.saturating_add(1);
        }
    }

    let mut buf = Vec::with_capacity(c.build_ids.len() + c.binary_sha256.len() + 16 * n + 16 * binaries + 4096);
    let bytes = |tag: u32, b: &[u8], buf: &mut Vec<u8>| {
        if !b.is_empty() {
            encode_key(tag, WireType::LengthDelimited, buf);
            encode_varint(b.len() as u64, buf);
            buf.extend_from_slice(b);
        }
    };
    use prost::encoding::{bool as pbool, uint32, uint64};
    symbols.with_texts(|texts| {
        for s in &remap.order {
            let t = texts.get(*s as usize).map_or("", |t| &**t);
            // Field 1 is repeated: even "" must be written, to keep the indices.
            encode_key(1, WireType::LengthDelimited, &mut buf);
            encode_varint(t.len() as u64, &mut buf);
            buf.extend_from_slice(t.as_bytes());
        }
        for r in &answer.resolved {
            prost::encoding::string::encode(2, r, &mut buf);
        }
        bytes(3, &c.build_ids, &mut buf);
        for (tag, col) in TEXT_FIELDS.iter().zip(&c.texts) {
            uint32::encode_packed(*tag, col, &mut buf);
        }
        uint32::encode_packed(7, &c.architecture_counts, &mut buf);
        uint32::encode_packed(8, &c.architectures, &mut buf);
        uint32::encode_packed(12, &c.installed_build_depends, &mut buf);
        pbool::encode_packed(13, &c.signed, &mut buf);
        uint64::encode_packed(15, &c.origin_number, &mut buf);
        for (tag, col) in [16, 17, 18].iter().zip(&c.dependency) {
            uint32::encode_packed(*tag, col, &mut buf);
        }
        uint32::encode_packed(19, &c.matched_counts, &mut buf);
        uint32::encode_packed(20, &c.matched, &mut buf);
        uint32::encode_packed(21, &c.binary_counts, &mut buf);
        uint32::encode_packed(22, &c.binary_package, &mut buf);
        uint32::encode_packed(23, &c.binary_version, &mut buf);
        uint32::encode_packed(24, &c.binary_architecture, &mut buf);
        uint32::encode_packed(25, &c.binary_extension, &mut buf);
        uint64::encode_packed(26, &c.binary_size, &mut buf);
        bytes(27, &c.binary_sha256, &mut buf);
        uint32::encode_packed(28, &c.shipped_counts, &mut buf);
        uint32::encode_packed(29, &c.shipped_in, &mut buf);
        for (tags, (positions, odd)) in
            [(30, 31), (32, 33), (34, 35)].iter().zip([&c.odd_build_ids, &c.odd_filenames, &c.odd_sha256])
        {
            uint32::encode_packed(tags.0, positions, &mut buf);
            for s in odd {
                prost::encoding::string::encode(tags.1, &texts.get(*s as usize).map_or("", |t| &**t).to_owned(), &mut buf);
            }
        }
    });
    buf
}

// ---------------------------------------------------------------------------- client side

/// A compact answer that does not hold together: the column and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed compact built-with answer: {field}: {message}")]
pub struct CompactError {
    /// The field (column) at fault, as named in coordinator.proto.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> CompactError {
    CompactError { field, message: message.into() }
}

fn same_len<T>(field: &'static str, col: &[T], n: usize, of: &str) -> Result<(), CompactError> {
    if col.len() != n {
        return Err(bad(field, format!("{} values for {n} {of}", col.len())));
    }
    Ok(())
}

fn indices(field: &'static str, col: &[u32], bound: usize, of: &str) -> Result<(), CompactError> {
    if let Some((i, v)) = col.iter().enumerate().find(|(_, v)| **v as usize >= bound) {
        return Err(bad(field, format!("value {i} is {v}, beyond the {bound} {of}")));
    }
    Ok(())
}

/// Starts of each row's run in a flat column: `counts` prefix-summed, checked to end at `total`.
fn starts(field: &'static str, counts: &[u32], total: usize, of: &str) -> Result<Vec<usize>, CompactError> {
    let mut out = Vec::with_capacity(counts.len() + 1);
    let mut at = 0usize;
    out.push(0);
    for c in counts {
        at = at.checked_add(*c as usize).ok_or_else(|| bad(field, "counts overflow"))?;
        if at > total {
            return Err(bad(field, format!("counts add up to more than the {total} {of}")));
        }
        out.push(at);
    }
    if at != total {
        return Err(bad(field, format!("counts add up to {at}, not the {total} {of}")));
    }
    Ok(out)
}

fn exceptions(
    field: &'static str,
    positions: &[u32],
    texts_field: &'static str,
    texts: &[String],
    bound: usize,
    of: &str,
) -> Result<(), CompactError> {
    same_len(texts_field, texts, positions.len(), field)?;
    indices(field, positions, bound, of)?;
    if positions.windows(2).any(|w| w[0] >= w[1]) {
        return Err(bad(field, "positions not strictly ascending"));
    }
    Ok(())
}

/// A checked compact answer, read in place.
#[derive(Debug)]
pub struct CompactView<'a> {
    r: &'a pb::CompactBuiltWithResponse,
    architecture_starts: Vec<usize>,
    matched_starts: Vec<usize>,
    binary_starts: Vec<usize>,
    shipped_starts: Vec<usize>,
}

/// A SHA-256 as the answer holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashRef<'a> {
    /// 32 raw bytes (lowercase hexadecimal on the wire of `BuiltWith`).
    Raw(&'a [u8]),
    /// The text, as it is.
    Text(&'a str),
}

impl HashRef<'_> {
    /// The text `BuiltWith` carries.
    pub fn to_text(&self) -> String {
        match self {
            HashRef::Raw(b) => hex::encode(b),
            HashRef::Text(t) => (*t).to_owned(),
        }
    }
}

/// A binary's file name as the answer holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileNameRef<'a> {
    /// `PACKAGE_VERSION_ARCH.EXTENSION`, this extension.
    Extension(&'a str),
    /// The whole name.
    Text(&'a str),
}

/// One build of a [`CompactView`].
#[derive(Debug, Clone, Copy)]
pub struct BuildRef<'v, 'a> {
    v: &'v CompactView<'a>,
    i: usize,
}

/// One binary of a [`CompactView`].
#[derive(Debug, Clone, Copy)]
pub struct BinaryRef<'v, 'a> {
    v: &'v CompactView<'a>,
    i: usize,
}

impl<'a> CompactView<'a> {
    /// Check every length, count, index and exception list of `r`.
    pub fn new(r: &'a pb::CompactBuiltWithResponse) -> Result<Self, CompactError> {
        let strings = r.strings.len();
        let n = r.build_source.len();
        let of = "builds";
        same_len("build_source_version", &r.build_source_version, n, of)?;
        same_len("build_version", &r.build_version, n, of)?;
        same_len("build_architecture_counts", &r.build_architecture_counts, n, of)?;
        same_len("build_host_architecture", &r.build_host_architecture, n, of)?;
        same_len("build_date", &r.build_date, n, of)?;
        same_len("build_origin", &r.build_origin, n, of)?;
        same_len("build_installed_build_depends", &r.build_installed_build_depends, n, of)?;
        same_len("build_signed", &r.build_signed, n, of)?;
        same_len("build_origin_prefix", &r.build_origin_prefix, n, of)?;
        same_len("build_origin_number", &r.build_origin_number, n, of)?;
        same_len("matched_counts", &r.matched_counts, n, of)?;
        same_len("binary_counts", &r.binary_counts, n, of)?;
        if r.build_ids.len() != n.saturating_mul(32) {
            return Err(bad("build_ids", format!("{} bytes for {n} builds (32 each)", r.build_ids.len())));
        }
        let s = "strings";
        indices("build_source", &r.build_source, strings, s)?;
        indices("build_source_version", &r.build_source_version, strings, s)?;
        indices("build_version", &r.build_version, strings, s)?;
        indices("build_architectures", &r.build_architectures, strings, s)?;
        indices("build_host_architecture", &r.build_host_architecture, strings, s)?;
        indices("build_date", &r.build_date, strings, s)?;
        indices("build_origin", &r.build_origin, strings, s)?;
        indices("build_origin_prefix", &r.build_origin_prefix, strings, s)?;
        let architecture_starts =
            starts("build_architecture_counts", &r.build_architecture_counts, r.build_architectures.len(), "build_architectures")?;

        let d = r.dependency_name.len();
        same_len("dependency_arch", &r.dependency_arch, d, "dependencies")?;
        same_len("dependency_version", &r.dependency_version, d, "dependencies")?;
        indices("dependency_name", &r.dependency_name, strings, s)?;
        indices("dependency_arch", &r.dependency_arch, strings, s)?;
        indices("dependency_version", &r.dependency_version, strings, s)?;
        indices("matched", &r.matched, d, "dependencies")?;
        let matched_starts = starts("matched_counts", &r.matched_counts, r.matched.len(), "matched entries")?;

        let m = r.binary_package.len();
        let binary_starts = starts("binary_counts", &r.binary_counts, m, "binaries")?;
        let of = "binaries";
        same_len("binary_version", &r.binary_version, m, of)?;
        same_len("binary_architecture", &r.binary_architecture, m, of)?;
        same_len("binary_extension", &r.binary_extension, m, of)?;
        same_len("binary_size", &r.binary_size, m, of)?;
        same_len("binary_shipped_counts", &r.binary_shipped_counts, m, of)?;
        if r.binary_sha256.len() != m.saturating_mul(32) {
            return Err(bad("binary_sha256", format!("{} bytes for {m} binaries (32 each)", r.binary_sha256.len())));
        }
        indices("binary_package", &r.binary_package, strings, s)?;
        indices("binary_version", &r.binary_version, strings, s)?;
        indices("binary_architecture", &r.binary_architecture, strings, s)?;
        indices("binary_extension", &r.binary_extension, strings, s)?;
        indices("binary_shipped_in", &r.binary_shipped_in, strings, s)?;
        let shipped_starts =
            starts("binary_shipped_counts", &r.binary_shipped_counts, r.binary_shipped_in.len(), "binary_shipped_in")?;

        exceptions("odd_build_ids", &r.odd_build_ids, "odd_build_id_texts", &r.odd_build_id_texts, n, "builds")?;
        exceptions("odd_filename_binaries", &r.odd_filename_binaries, "odd_filenames", &r.odd_filenames, m, of)?;
        exceptions("odd_sha256_binaries", &r.odd_sha256_binaries, "odd_sha256_texts", &r.odd_sha256_texts, m, of)?;
        Ok(CompactView { r, architecture_starts, matched_starts, binary_starts, shipped_starts })
    }

    /// How many builds.
    pub fn len(&self) -> usize {
        self.r.build_source.len()
    }

    /// Whether there is no build.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resolved package names.
    pub fn resolved_packages(&self) -> &'a [String] {
        &self.r.resolved_packages
    }

    /// The builds, in answer order.
    pub fn builds(&self) -> impl Iterator<Item = BuildRef<'_, 'a>> + '_ {
        (0..self.len()).map(move |i| BuildRef { v: self, i })
    }

    fn text(&self, col: &[u32], i: usize) -> &'a str {
        let r: &'a pb::CompactBuiltWithResponse = self.r;
        col.get(i).and_then(|s| r.strings.get(*s as usize)).map_or("", String::as_str)
    }

    fn odd(positions: &[u32], texts: &'a [String], i: usize) -> Option<&'a str> {
        let i = u32::try_from(i).ok()?;
        positions.binary_search(&i).ok().and_then(|k| texts.get(k)).map(String::as_str)
    }

    fn range(starts: &[usize], i: usize) -> std::ops::Range<usize> {
        match (starts.get(i), starts.get(i + 1)) {
            (Some(a), Some(b)) => *a..*b,
            _ => 0..0,
        }
    }

    /// Domain values of the whole answer.
    pub fn to_result(&self) -> BuiltWithResult {
        BuiltWithResult {
            resolved_packages: self.r.resolved_packages.clone(),
            builds: self.builds().map(|b| b.to_result()).collect(),
        }
    }
}

impl<'v, 'a> BuildRef<'v, 'a> {
    fn t(&self, col: &'a [u32]) -> &'a str {
        self.v.text(col, self.i)
    }
    /// BuildSummary.id.
    pub fn id(&self) -> HashRef<'a> {
        let r: &'a pb::CompactBuiltWithResponse = self.v.r;
        match CompactView::odd(&r.odd_build_ids, &r.odd_build_id_texts, self.i) {
            Some(t) => HashRef::Text(t),
            None => HashRef::Raw(r.build_ids.get(32 * self.i..32 * self.i + 32).unwrap_or_default()),
        }
    }
    /// BuildSummary.source.
    pub fn source(&self) -> &'a str {
        self.t(&self.v.r.build_source)
    }
    /// BuildSummary.source_version.
    pub fn source_version(&self) -> &'a str {
        self.t(&self.v.r.build_source_version)
    }
    /// BuildSummary.version.
    pub fn version(&self) -> &'a str {
        self.t(&self.v.r.build_version)
    }
    /// BuildSummary.architectures.
    pub fn architectures(&self) -> impl Iterator<Item = &'a str> + 'v {
        let v = self.v;
        let col: &'a [u32] = &v.r.build_architectures;
        CompactView::range(&v.architecture_starts, self.i).map(move |k| v.text(col, k))
    }
    /// BuildSummary.host_architecture.
    pub fn host_architecture(&self) -> &'a str {
        self.t(&self.v.r.build_host_architecture)
    }
    /// BuildSummary.build_date.
    pub fn build_date(&self) -> &'a str {
        self.t(&self.v.r.build_date)
    }
    /// BuildSummary.build_origin.
    pub fn build_origin(&self) -> &'a str {
        self.t(&self.v.r.build_origin)
    }
    /// BuildSummary.installed_build_depends.
    pub fn installed_build_depends(&self) -> u32 {
        self.v.r.build_installed_build_depends.get(self.i).copied().unwrap_or_default()
    }
    /// BuildSummary.signed.
    pub fn signed(&self) -> bool {
        self.v.r.build_signed.get(self.i).copied().unwrap_or_default()
    }
    /// BuildSummary.origin as its prefix and number (`None`: the prefix is the whole origin).
    pub fn origin_parts(&self) -> (&'a str, Option<u64>) {
        let n = self.v.r.build_origin_number.get(self.i).copied().unwrap_or_default();
        (self.t(&self.v.r.build_origin_prefix), n.checked_sub(1))
    }
    /// BuildSummary.origin.
    pub fn origin(&self) -> String {
        match self.origin_parts() {
            (p, Some(n)) => format!("{p}{n}"),
            (p, None) => p.to_owned(),
        }
    }
    /// The matched entries as (name, arch, version).
    pub fn matched(&self) -> impl Iterator<Item = (&'a str, &'a str, &'a str)> + 'v {
        let v = self.v;
        let r: &'a pb::CompactBuiltWithResponse = v.r;
        CompactView::range(&v.matched_starts, self.i).map(move |k| {
            let d = r.matched.get(k).map_or(usize::MAX, |d| *d as usize);
            (v.text(&r.dependency_name, d), v.text(&r.dependency_arch, d), v.text(&r.dependency_version, d))
        })
    }
    /// The binaries.
    pub fn binaries(&self) -> impl Iterator<Item = BinaryRef<'v, 'a>> + 'v {
        let v = self.v;
        CompactView::range(&v.binary_starts, self.i).map(move |i| BinaryRef { v, i })
    }
    /// Domain values.
    pub fn to_result(&self) -> ResultBuild {
        ResultBuild {
            build: BuildSummary {
                id: self.id().to_text(),
                source: self.source().to_owned(),
                source_version: self.source_version().to_owned(),
                version: self.version().to_owned(),
                architectures: self.architectures().map(str::to_owned).collect(),
                host_architecture: self.host_architecture().to_owned(),
                build_date: self.build_date().to_owned(),
                build_origin: self.build_origin().to_owned(),
                installed_build_depends: self.installed_build_depends(),
                signed: self.signed(),
                origin: self.origin(),
            },
            matched: self
                .matched()
                .map(|(n, a, v)| Dependency { name: n.to_owned(), arch: a.to_owned(), version: v.to_owned() })
                .collect(),
            binaries: self.binaries().map(|b| b.to_result()).collect(),
        }
    }
}

impl<'v, 'a> BinaryRef<'v, 'a> {
    fn t(&self, col: &'a [u32]) -> &'a str {
        self.v.text(col, self.i)
    }
    /// Binary.package.
    pub fn package(&self) -> &'a str {
        self.t(&self.v.r.binary_package)
    }
    /// Binary.version.
    pub fn version(&self) -> &'a str {
        self.t(&self.v.r.binary_version)
    }
    /// Binary.architecture.
    pub fn architecture(&self) -> &'a str {
        self.t(&self.v.r.binary_architecture)
    }
    /// Binary.filename, as held.
    pub fn filename_parts(&self) -> FileNameRef<'a> {
        let r: &'a pb::CompactBuiltWithResponse = self.v.r;
        match CompactView::odd(&r.odd_filename_binaries, &r.odd_filenames, self.i) {
            Some(t) => FileNameRef::Text(t),
            None => FileNameRef::Extension(self.t(&r.binary_extension)),
        }
    }
    /// Binary.filename.
    pub fn filename(&self) -> String {
        match self.filename_parts() {
            FileNameRef::Extension(e) => format!("{}_{}_{}.{e}", self.package(), self.version(), self.architecture()),
            FileNameRef::Text(t) => t.to_owned(),
        }
    }
    /// Binary.size.
    pub fn size(&self) -> u64 {
        self.v.r.binary_size.get(self.i).copied().unwrap_or_default()
    }
    /// Binary.sha256.
    pub fn sha256(&self) -> HashRef<'a> {
        let r: &'a pb::CompactBuiltWithResponse = self.v.r;
        match CompactView::odd(&r.odd_sha256_binaries, &r.odd_sha256_texts, self.i) {
            Some(t) => HashRef::Text(t),
            None => HashRef::Raw(r.binary_sha256.get(32 * self.i..32 * self.i + 32).unwrap_or_default()),
        }
    }
    /// Binary.shipped_in.
    pub fn shipped_in(&self) -> impl Iterator<Item = &'a str> + 'v {
        let v = self.v;
        let col: &'a [u32] = &v.r.binary_shipped_in;
        CompactView::range(&v.shipped_starts, self.i).map(move |k| v.text(col, k))
    }
    /// Domain values.
    pub fn to_result(&self) -> BinarySummary {
        BinarySummary {
            package: self.package().to_owned(),
            version: self.version().to_owned(),
            architecture: self.architecture().to_owned(),
            filename: self.filename(),
            size: self.size(),
            sha256: self.sha256().to_text(),
            shipped_in: self.shipped_in().map(str::to_owned).collect(),
        }
    }
}

/// A received compact answer as domain values, every column checked first.
pub fn decode(r: &pb::CompactBuiltWithResponse) -> Result<BuiltWithResult, CompactError> {
    Ok(CompactView::new(r)?.to_result())
}

/// The serialized bytes of a compact answer as domain values.
pub fn decode_bytes(bytes: &[u8]) -> Result<BuiltWithResult, CompactError> {
    let r = pb::CompactBuiltWithResponse::decode(bytes).map_err(|e| bad("message", e.to_string()))?;
    decode(&r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn origins_split_only_at_a_plain_trailing_number() {
        assert_eq!(split_origin("Buildinfo.xz#paragraph-at-line-120"), ("Buildinfo.xz#paragraph-at-line-", 121));
        assert_eq!(split_origin("a/b.buildinfo"), ("a/b.buildinfo", 0));
        assert_eq!(split_origin("x007"), ("x007", 0));
        assert_eq!(split_origin("x0"), ("x", 1));
        assert_eq!(split_origin("99999999999999999999999"), ("99999999999999999999999", 0));
        assert_eq!(split_origin(""), ("", 0));
    }

    fn one_build() -> pb::CompactBuiltWithResponse {
        pb::CompactBuiltWithResponse {
            strings: ["", "hello", "2.10-3", "amd64", "deb", "bookworm/amd64", "libc6-dev", "2.36-9"]
                .map(String::from)
                .to_vec(),
            resolved_packages: vec!["libc6-dev".into()],
            build_ids: vec![0xab; 32].into(),
            build_source: vec![1],
            build_source_version: vec![2],
            build_version: vec![2],
            build_architecture_counts: vec![1],
            build_architectures: vec![3],
            build_host_architecture: vec![3],
            build_date: vec![0],
            build_origin: vec![0],
            build_installed_build_depends: vec![250],
            build_signed: vec![true],
            build_origin_prefix: vec![1],
            build_origin_number: vec![8],
            dependency_name: vec![6],
            dependency_arch: vec![0],
            dependency_version: vec![7],
            matched_counts: vec![1],
            matched: vec![0],
            binary_counts: vec![2],
            binary_package: vec![1, 1],
            binary_version: vec![2, 2],
            binary_architecture: vec![3, 3],
            binary_extension: vec![4, 0],
            binary_size: vec![10, 20],
            binary_sha256: vec![0x01; 64].into(),
            binary_shipped_counts: vec![1, 0],
            binary_shipped_in: vec![5],
            odd_build_ids: vec![],
            odd_build_id_texts: vec![],
            odd_filename_binaries: vec![1],
            odd_filenames: vec!["odd name".into()],
            odd_sha256_binaries: vec![1],
            odd_sha256_texts: vec![String::new()],
        }
    }

    #[test]
    fn a_hand_made_answer_decodes_field_by_field() {
        let got = decode(&one_build()).unwrap();
        assert_eq!(got.resolved_packages, ["libc6-dev"]);
        let b = &got.builds[0];
        assert_eq!(b.build.id, "ab".repeat(32));
        assert_eq!((b.build.source.as_str(), b.build.origin.as_str(), b.build.signed), ("hello", "hello7", true));
        assert_eq!(b.matched, [Dependency { name: "libc6-dev".into(), arch: String::new(), version: "2.36-9".into() }]);
        assert_eq!(b.binaries[0].filename, "hello_2.10-3_amd64.deb");
        assert_eq!(b.binaries[0].sha256, "01".repeat(32));
        assert_eq!(b.binaries[0].shipped_in, ["bookworm/amd64"]);
        assert_eq!((b.binaries[1].filename.as_str(), b.binaries[1].sha256.as_str()), ("odd name", ""));
    }

    #[test]
    fn malformed_columns_are_named() {
        let field = |f: &dyn Fn(&mut pb::CompactBuiltWithResponse)| {
            let mut r = one_build();
            f(&mut r);
            decode(&r).unwrap_err().field
        };
        assert_eq!(field(&|r| r.build_source = vec![99]), "build_source");
        assert_eq!(field(&|r| r.binary_shipped_in = vec![8]), "binary_shipped_in");
        assert_eq!(field(&|r| r.matched = vec![1]), "matched");
        assert_eq!(field(&|r| r.binary_counts = vec![3]), "binary_counts");
        assert_eq!(field(&|r| r.build_architecture_counts = vec![u32::MAX]), "build_architecture_counts");
        assert_eq!(field(&|r| r.build_ids = vec![0; 31].into()), "build_ids");
        assert_eq!(field(&|r| r.binary_sha256 = vec![0; 65].into()), "binary_sha256");
        assert_eq!(field(&|r| r.build_date.clear()), "build_date");
        assert_eq!(field(&|r| r.odd_sha256_binaries = vec![2]), "odd_sha256_binaries");
        assert_eq!(field(&|r| r.odd_filenames.clear()), "odd_filenames");
        assert_eq!(field(&|r| r.odd_filename_binaries = vec![1, 1]), "odd_filenames");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes: an error or an answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_bytes(&bytes);
        }

        /// A valid answer with one column's value replaced: decoded, or refused naming a field.
        #[test]
        fn corrupted_values_never_panic(col in 0usize..12, value in any::<u32>()) {
            let mut r = one_build();
            let target: &mut Vec<u32> = match col {
                0 => &mut r.build_source,
                1 => &mut r.build_architectures,
                2 => &mut r.build_architecture_counts,
                3 => &mut r.dependency_name,
                4 => &mut r.matched,
                5 => &mut r.matched_counts,
                6 => &mut r.binary_counts,
                7 => &mut r.binary_extension,
                8 => &mut r.binary_shipped_counts,
                9 => &mut r.binary_shipped_in,
                10 => &mut r.odd_filename_binaries,
                _ => &mut r.odd_sha256_binaries,
            };
            target[0] = value;
            match decode(&r) {
                Ok(got) => prop_assert_eq!(got.builds.len(), 1),
                Err(e) => prop_assert!(!e.field.is_empty() && e.to_string().contains(e.field)),
            }
        }

        /// Bytes of a valid answer, mangled: never a panic.
        #[test]
        fn mangled_answers_never_panic(at in 0usize..4096, byte in any::<u8>(), cut in 0usize..4096) {
            let mut bytes = one_build().encode_to_vec();
            let len = bytes.len();
            bytes[at % len] = byte;
            bytes.truncate(cut % (len + 1));
            let _ = decode_bytes(&bytes);
        }
    }
}

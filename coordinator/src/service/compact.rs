//! `BuiltWithCompact`: the `built-with` answer dictionary-coded (`CompactBuiltWithResponse` in
//! coordinator.proto): every distinct string once per answer, SHA-256s as 32 raw bytes, one
//! column per field instead of nested messages. It carries exactly what `BuiltWithResponse`
//! carries; values not of the compact form (an id that is not lowercase hexadecimal, a file
//! name that is not `PACKAGE_VERSION_ARCH.EXT`) travel whole in exception lists.
//!
//! Server side: [`encode_pieces`] assembles the answer's bytes from per-build parts (one per index
//! entry and generation, kept in the generation's [`Store`], which the index holds for it)
//! whose strings are numbered in the generation's [`Symbols`]; per answer, those numbers are
//! renumbered densely (a table lookup each), so nothing is hashed per answer but the matched
//! entries. Whole answers are never kept.
//!
//! Client side, the one place the compact form is read: [`request`] receives the answer's bytes
//! as they are, [`CompactView::parse`] reads them in place (strings as slices of the buffer,
//! numbers into columns), checks every column's length and every index once (an error names
//! the column) and then reads fields without copying; [`decode`] turns it into the domain values the CLI renders
//! ([`BuiltWithResult`]), the same values `convert::built_with_result` makes of `BuiltWith`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use debcover_proto::v1 as pb;
// foldhash: the interner is probed for every string of every new entry.
use foldhash::HashMap;
use prost::Message;
use prost::bytes::Bytes;
use prost::encoding::{WireType, encode_key, encode_varint};

use super::convert::file_name_parts;
use crate::index::{IndexedAnswer, IndexedMatch, ResolvedBuild};
use crate::model::{BinarySummary, BuildSummary, BuiltWithResult, Dependency, ProducedFile, ResultBuild};

// ---------------------------------------------------------------------------- server side

/// A string interner: each distinct string gets a number, valid for one generation. Symbol 0
/// is always "". The texts are kept one after another, each behind its length as a protobuf
/// varint, so that whoever writes them out (a compact answer's string table) copies bytes.
#[derive(Debug)]
struct Symbols {
    inner: RwLock<SymbolTable>,
}

/// The symbols' texts, read under one lock.
#[derive(Debug, Default)]
struct SymbolTable {
    by_text: HashMap<Box<str>, u32>,
    /// Every text, each preceded by its length (varint).
    arena: Vec<u8>,
    /// Per symbol: where its length starts in `arena`, and where its text starts.
    spans: Vec<(usize, usize)>,
}

impl SymbolTable {
    /// Symbol `n` as its length (varint) followed by its text; empty for an unknown symbol.
    fn prefixed(&self, n: u32) -> &[u8] {
        let Some((start, _)) = self.spans.get(n as usize) else { return &[] };
        let end = self.spans.get(n as usize + 1).map_or(self.arena.len(), |(s, _)| *s);
        self.arena.get(*start..end).unwrap_or_default()
    }
}

impl Default for Symbols {
    fn default() -> Self {
        let s = Symbols { inner: RwLock::new(SymbolTable::default()) };
        s.intern("");
        s
    }
}

impl Symbols {
    /// The number of `text`, giving it one if it has none.
    fn intern(&self, text: &str) -> u32 {
        if let Some(n) = self.inner.read().unwrap_or_else(|e| e.into_inner()).by_text.get(text) {
            return *n;
        }
        let mut t = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.by_text.get(text) {
            return *n;
        }
        // More than 4 billion distinct strings would not fit in memory first.
        let n = u32::try_from(t.spans.len()).unwrap_or(u32::MAX);
        let start = t.arena.len();
        prost::encoding::encode_varint(text.len() as u64, &mut t.arena);
        let text_start = t.arena.len();
        t.arena.extend_from_slice(text.as_bytes());
        t.spans.push((start, text_start));
        t.by_text.insert(text.into(), n);
        n
    }

    /// How many symbols there are.
    fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).spans.len()
    }

    /// Call `f` with the table, under one read lock.
    fn with_table<R>(&self, f: impl FnOnce(&SymbolTable) -> R) -> R {
        f(&self.inner.read().unwrap_or_else(|e| e.into_inner()))
    }
}

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
    /// Its shipping places: `Parts::symbols[shipped.0..shipped.1]`.
    shipped: (usize, usize),
}

/// One index entry (a build, its binaries and their shipping places in one generation) with
/// its strings numbered in the generation's [`Symbols`] and its hashes raw: a row of
/// [`Parts::builds`].
#[derive(Debug)]
struct CompactBuild {
    id: Hash,
    /// source, source_version, version, host architecture, build date, build origin, origin
    /// prefix.
    texts: [u32; 7],
    origin_number: u64,
    installed_build_depends: u32,
    signed: bool,
    /// Its architectures: `Parts::symbols[architectures.0..architectures.1]`.
    architectures: (usize, usize),
    /// Its binaries: `Parts::binaries[binaries.0..binaries.1]`.
    binaries: (usize, usize),
}

/// One generation's compact per-build parts and the strings they number. The index holds one
/// per generation and hands it out with every answer ([`IndexedAnswer::compact`]); only this
/// module reads or writes it.
///
/// The parts of all entries live in three vectors, not one allocation per entry: the first
/// answer that needs an entry's parts makes them, in answer order, so a large answer asked
/// again reads its parts front to back. Measured on the 35,000-build answer: with one
/// allocation per entry, the cache misses of reaching them were about half of the encoding.
#[derive(Debug, Default)]
pub struct Store {
    symbols: Symbols,
    parts: RwLock<Parts>,
}

#[derive(Debug, Default)]
struct Parts {
    builds: Vec<CompactBuild>,
    binaries: Vec<CompactBinary>,
    /// Architectures and shipping places, of all entries.
    symbols: Vec<u32>,
}

/// Where an index entry's parts are in its generation's [`Store`]: row + 1, or 0 before any
/// answer needed them. Set only by [`Store`], under its write lock, after the row was made.
#[derive(Debug, Default)]
pub struct Slot(AtomicUsize);

impl Parts {
    fn architectures(&self, b: &CompactBuild) -> &[u32] {
        self.symbols.get(b.architectures.0..b.architectures.1).unwrap_or_default()
    }

    fn binaries(&self, b: &CompactBuild) -> &[CompactBinary] {
        self.binaries.get(b.binaries.0..b.binaries.1).unwrap_or_default()
    }

    fn shipped(&self, b: &CompactBinary) -> &[u32] {
        self.symbols.get(b.shipped.0..b.shipped.1).unwrap_or_default()
    }

    /// Make the parts of `r`; its row.
    fn push(&mut self, r: &ResolvedBuild, symbols: &Symbols) -> usize {
        let b = &r.build.record;
        let (prefix, origin_number) = split_origin(&b.origin);
        let architectures = self.symbols.len();
        self.symbols.extend(b.architectures.iter().map(|a| symbols.intern(a)));
        let architectures = (architectures, self.symbols.len());
        let first_binary = self.binaries.len();
        for f in &r.files {
            let binary = compact_binary(f, symbols, &mut self.symbols);
            self.binaries.push(binary);
        }
        self.builds.push(CompactBuild {
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
            installed_build_depends: b.ibd_count,
            signed: b.signed,
            architectures,
            binaries: (first_binary, self.binaries.len()),
        });
        self.builds.len() - 1
    }
}

impl Store {
    /// Parts made under one write lock at most.
    const FILL_BATCH: usize = 2048;

    fn read(&self) -> RwLockReadGuard<'_, Parts> {
        // The parts only grow, each row whole under the write lock: a panic elsewhere leaves
        // nothing half-made.
        self.parts.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The parts, read-locked, and the row of each of `builds` (made for those that have none).
    fn rows_of(&self, builds: &[IndexedMatch]) -> (RwLockReadGuard<'_, Parts>, Vec<usize>) {
        // Every entry's slot first (one load each): the rows are then read in answer order.
        let mut rows: Vec<usize> = builds.iter().map(|m| m.resolved.compact.0.load(Ordering::Acquire)).collect();
        {
            let parts = self.read();
            let made = parts.builds.len();
            if rows.iter().all(|r| (1..=made).contains(r)) {
                rows.iter_mut().for_each(|r| *r -= 1);
                return (parts, rows);
            }
        }
        let write = || self.parts.write().unwrap_or_else(|e| e.into_inner());
        let mut parts = write();
        let mut made = 0;
        for (r, m) in rows.iter_mut().zip(builds) {
            // Another answer may have made it since.
            *r = m.resolved.compact.0.load(Ordering::Acquire);
            if !(1..=parts.builds.len()).contains(r) {
                if made == Self::FILL_BATCH {
                    // Let the answers waiting to read in between (a whole suite's parts take
                    // ~200 ms to make).
                    drop(parts);
                    parts = write();
                    made = 0;
                }
                *r = parts.push(&m.resolved, &self.symbols) + 1;
                m.resolved.compact.0.store(*r, Ordering::Release);
                made += 1;
            }
            *r -= 1;
        }
        drop(parts);
        // Rows are never removed: every row just checked or made is still there.
        (self.read(), rows)
    }
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

fn compact_binary(f: &ProducedFile, symbols: &Symbols, places: &mut Vec<u32>) -> CompactBinary {
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
        shipped: {
            let start = places.len();
            places.extend(f.shipped_in.iter().map(|s| symbols.intern(s)));
            (start, places.len())
        },
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

/// A packed varint column, written as it is filled (one pass, no second encoding).
#[derive(Default)]
struct Packed(Vec<u8>);

impl Packed {
    fn with_capacity(n: usize) -> Self {
        Packed(Vec::with_capacity(n))
    }

    #[inline]
    fn push(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
}

/// The columns of a `CompactBuiltWithResponse` being filled, each with its field number.
struct Columns {
    build_ids: Vec<u8>,
    texts: [Packed; 7],
    origin_number: Packed,
    architecture_counts: Packed,
    architectures: Packed,
    installed_build_depends: Packed,
    signed: Packed,
    dependency: [Packed; 3],
    matched_counts: Packed,
    matched: Packed,
    binary_counts: Packed,
    binary_package: Packed,
    binary_version: Packed,
    binary_architecture: Packed,
    binary_extension: Packed,
    binary_size: Packed,
    binary_sha256: Vec<u8>,
    shipped_counts: Packed,
    shipped_in: Packed,
    odd_build_ids: (Packed, Vec<u32>),
    odd_filenames: (Packed, Vec<u32>),
    odd_sha256: (Packed, Vec<u32>),
}

impl Columns {
    /// Room for `n` builds and `m` binaries (most indices take 1-3 bytes).
    fn new(n: usize, m: usize) -> Self {
        let p = Packed::with_capacity;
        Columns {
            build_ids: Vec::with_capacity(32 * n),
            texts: [p(3 * n), p(3 * n), p(3 * n), p(n), p(3 * n), p(n), p(n)],
            origin_number: p(4 * n),
            architecture_counts: p(n),
            architectures: p(2 * n),
            installed_build_depends: p(2 * n),
            signed: p(n),
            dependency: Default::default(),
            matched_counts: p(n),
            matched: p(n),
            binary_counts: p(n),
            binary_package: p(3 * m),
            binary_version: p(3 * m),
            binary_architecture: p(m),
            binary_extension: p(m),
            binary_size: p(3 * m),
            binary_sha256: Vec::with_capacity(32 * m),
            shipped_counts: p(m),
            shipped_in: p(2 * m),
            odd_build_ids: Default::default(),
            odd_filenames: Default::default(),
            odd_sha256: Default::default(),
        }
    }
}

fn count(n: usize) -> u64 {
    n as u64
}

/// Field numbers of `CompactBuiltWithResponse`, per build text (`CompactBuild::texts` order).
const TEXT_FIELDS: [u32; 7] = [4, 5, 6, 9, 10, 11, 14];

/// An indexed answer as the bytes of a `CompactBuiltWithResponse` (see the module comment), in
/// pieces to be sent one after the other (the large columns as they were filled).
pub fn encode_pieces(answer: &IndexedAnswer) -> Vec<Bytes> {
    let fallback;
    let store: &Store = match &answer.compact {
        Some(s) => s,
        None => {
            fallback = Store::default();
            &fallback
        }
    };
    let symbols = &store.symbols;
    let (parts, rows) = store.rows_of(&answer.builds);
    let n = answer.builds.len();
    let binaries: usize = answer.builds.iter().map(|m| m.files().len()).sum();
    let mut remap = Remap::new(symbols.len());
    let mut c = Columns::new(n, binaries);
    let mut deps: HashMap<i64, u32> = HashMap::default();
    let mut binary_pos: u64 = 0;
    for (i, (m, row)) in answer.builds.iter().zip(rows).enumerate() {
        // `rows_of` checked every row.
        let p = &parts.builds[row];
        match p.id {
            Hash::Raw(raw) => c.build_ids.extend_from_slice(&raw),
            Hash::Odd(s) => {
                c.build_ids.extend_from_slice(&[0; 32]);
                c.odd_build_ids.0.push(count(i));
                c.odd_build_ids.1.push(s);
            }
        }
        for (col, s) in c.texts.iter_mut().zip(p.texts) {
            col.push(remap.get(s).into());
        }
        c.origin_number.push(p.origin_number);
        c.architecture_counts.push(count(parts.architectures(p).len()));
        for s in parts.architectures(p) {
            c.architectures.push(remap.get(*s).into());
        }
        c.installed_build_depends.push(p.installed_build_depends.into());
        c.signed.push(p.signed.into());
        c.matched_counts.push(count(m.matched.len()));
        for d in &m.matched {
            let next = u32::try_from(deps.len()).unwrap_or(u32::MAX);
            let k = *deps.entry(d.id).or_insert_with(|| {
                for (col, text) in c.dependency.iter_mut().zip([&d.name, &d.arch, &d.version]) {
                    col.push(remap.get(symbols.intern(text)).into());
                }
                next
            });
            c.matched.push(k.into());
        }
        let mut put = |b: &CompactBinary| {
            c.binary_package.push(remap.get(b.package).into());
            c.binary_version.push(remap.get(b.version).into());
            c.binary_architecture.push(remap.get(b.architecture).into());
            match b.name {
                FileName::Ext(s) => c.binary_extension.push(remap.get(s).into()),
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
            let shipped = parts.shipped(b);
            c.shipped_counts.push(count(shipped.len()));
            for s in shipped {
                c.shipped_in.push(remap.get(*s).into());
            }
            binary_pos += 1;
        };
        match &m.suite_files {
            None => {
                c.binary_counts.push(count(parts.binaries(p).len()));
                parts.binaries(p).iter().for_each(&mut put);
            }
            // With a suite, the binaries shipped there: a subsequence of the entry's files.
            Some(kept) => {
                c.binary_counts.push(count(kept.len()));
                let mut kept = kept.iter().peekable();
                for (f, b) in m.resolved.files.iter().zip(parts.binaries(p)) {
                    if kept.next_if(|k| *k == f).is_some() {
                        put(b);
                    }
                }
            }
        }
    }

    let mut out = Pieces::default();
    symbols.with_table(|t| {
        // The string table: the only part copied from elsewhere (the generation's texts).
        let table: usize = remap.order.iter().map(|s| 1 + t.prefixed(*s).len()).sum();
        out.small.reserve(table + answer.resolved.iter().map(|r| 2 + r.len()).sum::<usize>() + 64);
        for s in &remap.order {
            // Field 1 is repeated: even "" is written, to keep the indices.
            encode_key(1, WireType::LengthDelimited, &mut out.small);
            out.small.extend_from_slice(t.prefixed(*s));
        }
        for r in &answer.resolved {
            prost::encoding::string::encode(2, r, &mut out.small);
        }
        // The columns in field-number order of the proto (except the text columns, 4-14, in
        // `CompactBuild::texts` order); each left out when empty.
        let [d0, d1, d2] = c.dependency;
        let columns = [(3, c.build_ids)]
            .into_iter()
            .chain(TEXT_FIELDS.into_iter().zip(c.texts.map(|t| t.0)))
            .chain([
                (7, c.architecture_counts.0),
                (8, c.architectures.0),
                (12, c.installed_build_depends.0),
                (13, c.signed.0),
                (15, c.origin_number.0),
                (16, d0.0),
                (17, d1.0),
                (18, d2.0),
                (19, c.matched_counts.0),
                (20, c.matched.0),
                (21, c.binary_counts.0),
                (22, c.binary_package.0),
                (23, c.binary_version.0),
                (24, c.binary_architecture.0),
                (25, c.binary_extension.0),
                (26, c.binary_size.0),
                (27, c.binary_sha256),
                (28, c.shipped_counts.0),
                (29, c.shipped_in.0),
            ]);
        for (tag, col) in columns {
            out.field(tag, col);
        }
        for (tags, (positions, odd)) in
            [(30, 31), (32, 33), (34, 35)].iter().zip([c.odd_build_ids, c.odd_filenames, c.odd_sha256])
        {
            out.field(tags.0, positions.0);
            for s in odd {
                encode_key(tags.1, WireType::LengthDelimited, &mut out.small);
                out.small.extend_from_slice(t.prefixed(s));
            }
        }
    });
    out.finish()
}

/// An encoded message as consecutive pieces: columns of at least [`Pieces::OWN`] bytes stay
/// the buffers they were filled in, everything between them is gathered in one small buffer.
/// Sent piece by piece, a large answer is never copied into one buffer.
#[derive(Default)]
struct Pieces {
    done: Vec<Bytes>,
    small: Vec<u8>,
}

impl Pieces {
    /// Columns from this size on are pieces of their own.
    const OWN: usize = 64 * 1024;

    /// A length-delimited field (a packed column or bytes), left out when empty.
    fn field(&mut self, tag: u32, b: Vec<u8>) {
        if b.is_empty() {
            return;
        }
        encode_key(tag, WireType::LengthDelimited, &mut self.small);
        encode_varint(b.len() as u64, &mut self.small);
        if b.len() < Self::OWN {
            self.small.extend_from_slice(&b);
        } else {
            self.flush();
            self.done.push(Bytes::from(b));
        }
    }

    fn flush(&mut self) {
        if !self.small.is_empty() {
            self.done.push(Bytes::from(std::mem::take(&mut self.small)));
        }
    }

    fn finish(mut self) -> Vec<Bytes> {
        self.flush();
        self.done
    }
}

/// [`encode_pieces`] in one buffer.
pub fn encode(answer: &IndexedAnswer) -> Vec<u8> {
    let pieces = encode_pieces(answer);
    let mut buf = Vec::with_capacity(pieces.iter().map(Bytes::len).sum());
    pieces.iter().for_each(|p| buf.extend_from_slice(p));
    buf
}

// ---------------------------------------------------------------------------- client side

/// The gRPC path of `BuiltWithCompact`.
pub const PATH: &str = "/debcover.v1.Coordinator/BuiltWithCompact";

/// Client codec: requests encoded by prost, the answer kept as the message's bytes.
#[derive(Default)]
struct RawAnswerCodec;

/// Hands over the received message bytes.
struct RawDecoder;

impl tonic::codec::Decoder for RawDecoder {
    type Item = prost::bytes::Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<prost::bytes::Bytes>, tonic::Status> {
        use prost::bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl tonic::codec::Codec for RawAnswerCodec {
    type Encode = pb::BuiltWithRequest;
    type Decode = prost::bytes::Bytes;
    type Encoder = tonic_prost::ProstEncoder<pb::BuiltWithRequest>;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

/// Ask `BuiltWithCompact` on `channel` and receive the answer's bytes as they are, for
/// [`CompactView::parse`] (no protobuf decoding into owned strings).
pub async fn request(
    channel: tonic::transport::Channel,
    req: pb::BuiltWithRequest,
) -> Result<prost::bytes::Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(super::MAX_MESSAGE_BYTES);
    grpc.ready().await.map_err(|e| tonic::Status::unknown(format!("service was not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(PATH);
    Ok(grpc.unary(tonic::Request::new(req), path, RawAnswerCodec).await?.into_inner())
}

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

/// Field numbers of `CompactBuiltWithResponse`.
mod f {
    pub const STRINGS: usize = 1;
    pub const RESOLVED: usize = 2;
    pub const BUILD_IDS: usize = 3;
    pub const SOURCE: usize = 4;
    pub const SOURCE_VERSION: usize = 5;
    pub const VERSION: usize = 6;
    pub const ARCH_COUNTS: usize = 7;
    pub const ARCHS: usize = 8;
    pub const HOST_ARCH: usize = 9;
    pub const DATE: usize = 10;
    pub const BUILD_ORIGIN: usize = 11;
    pub const IBD: usize = 12;
    pub const SIGNED: usize = 13;
    pub const ORIGIN_PREFIX: usize = 14;
    pub const ORIGIN_NUMBER: usize = 15;
    pub const DEP_NAME: usize = 16;
    pub const DEP_ARCH: usize = 17;
    pub const DEP_VERSION: usize = 18;
    pub const MATCHED_COUNTS: usize = 19;
    pub const MATCHED: usize = 20;
    pub const BINARY_COUNTS: usize = 21;
    pub const PACKAGE: usize = 22;
    pub const BINARY_VERSION: usize = 23;
    pub const BINARY_ARCH: usize = 24;
    pub const EXTENSION: usize = 25;
    pub const SIZE: usize = 26;
    pub const SHA256: usize = 27;
    pub const SHIPPED_COUNTS: usize = 28;
    pub const SHIPPED_IN: usize = 29;
    pub const ODD_IDS: usize = 30;
    pub const ODD_ID_TEXTS: usize = 31;
    pub const ODD_FILENAMES: usize = 32;
    pub const ODD_FILENAME_TEXTS: usize = 33;
    pub const ODD_SHA256: usize = 34;
    pub const ODD_SHA256_TEXTS: usize = 35;
    pub const COUNT: usize = 36;
}

/// The name of field `n` in coordinator.proto (for errors).
fn name(n: usize) -> &'static str {
    const NAMES: [&str; f::COUNT] = [
        "?",
        "strings",
        "resolved_packages",
        "build_ids",
        "build_source",
        "build_source_version",
        "build_version",
        "build_architecture_counts",
        "build_architectures",
        "build_host_architecture",
        "build_date",
        "build_origin",
        "build_installed_build_depends",
        "build_signed",
        "build_origin_prefix",
        "build_origin_number",
        "dependency_name",
        "dependency_arch",
        "dependency_version",
        "matched_counts",
        "matched",
        "binary_counts",
        "binary_package",
        "binary_version",
        "binary_architecture",
        "binary_extension",
        "binary_size",
        "binary_sha256",
        "binary_shipped_counts",
        "binary_shipped_in",
        "odd_build_ids",
        "odd_build_id_texts",
        "odd_filename_binaries",
        "odd_filenames",
        "odd_sha256_binaries",
        "odd_sha256_texts",
    ];
    NAMES.get(n).copied().unwrap_or("?")
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Bytes,
    U32,
    U64,
    Unknown,
}

fn kind(n: usize) -> Kind {
    match n {
        f::STRINGS | f::RESOLVED | f::ODD_ID_TEXTS | f::ODD_FILENAME_TEXTS | f::ODD_SHA256_TEXTS => Kind::Str,
        f::BUILD_IDS | f::SHA256 => Kind::Bytes,
        f::ORIGIN_NUMBER | f::SIZE => Kind::U64,
        // build_signed is a packed bool: a varint too, read as 0 or not.
        4..=35 => Kind::U32,
        _ => Kind::Unknown,
    }
}

#[inline]
fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The message's fields, read in place: strings and bytes as slices of the received buffer,
/// numbers decoded into columns (by field number).
#[derive(Debug)]
struct Wire<'a> {
    strs: [Vec<&'a str>; f::COUNT],
    bytes: [&'a [u8]; f::COUNT],
    u32s: [Vec<u32>; f::COUNT],
    u64s: [Vec<u64>; f::COUNT],
}

impl<'a> Wire<'a> {
    fn parse(buf: &'a [u8]) -> Result<Self, CompactError> {
        let mut w = Wire {
            strs: std::array::from_fn(|_| Vec::new()),
            bytes: [&[]; f::COUNT],
            u32s: std::array::from_fn(|_| Vec::new()),
            u64s: std::array::from_fn(|_| Vec::new()),
        };
        let truncated = |n: usize| bad(name(n), "truncated");
        let mut pos = 0;
        while pos < buf.len() {
            let key = varint(buf, &mut pos).ok_or_else(|| bad("message", "truncated field key"))?;
            let n = usize::try_from(key >> 3).unwrap_or(usize::MAX);
            let k = if n < f::COUNT { kind(n) } else { Kind::Unknown };
            match key & 7 {
                // A number: an unpacked element of a repeated column, or an unknown field.
                0 => {
                    let v = varint(buf, &mut pos).ok_or_else(|| truncated(n))?;
                    match k {
                        Kind::U32 => w.u32s[n].push(u32::try_from(v).map_err(|_| bad(name(n), format!("{v} is out of range")))?),
                        Kind::U64 => w.u64s[n].push(v),
                        Kind::Unknown => {}
                        _ => return Err(bad(name(n), "wrong wire type")),
                    }
                }
                2 => {
                    let len = varint(buf, &mut pos).ok_or_else(|| truncated(n))?;
                    let end = usize::try_from(len).ok().and_then(|l| pos.checked_add(l)).filter(|e| *e <= buf.len());
                    let end = end.ok_or_else(|| truncated(n))?;
                    let body = &buf[pos..end];
                    pos = end;
                    match k {
                        Kind::Str => w.strs[n].push(std::str::from_utf8(body).map_err(|_| bad(name(n), "not UTF-8"))?),
                        Kind::Bytes => w.bytes[n] = body,
                        Kind::U32 => {
                            let col = &mut w.u32s[n];
                            col.reserve(body.len());
                            let mut p = 0;
                            while p < body.len() {
                                let v = varint(body, &mut p).ok_or_else(|| truncated(n))?;
                                col.push(u32::try_from(v).map_err(|_| bad(name(n), format!("{v} is out of range")))?);
                            }
                        }
                        Kind::U64 => {
                            let col = &mut w.u64s[n];
                            col.reserve(body.len());
                            let mut p = 0;
                            while p < body.len() {
                                col.push(varint(body, &mut p).ok_or_else(|| truncated(n))?);
                            }
                        }
                        Kind::Unknown => {}
                    }
                }
                // Unknown fixed-width fields are skipped.
                1 if k == Kind::Unknown => pos = pos.checked_add(8).filter(|e| *e <= buf.len()).ok_or_else(|| truncated(n))?,
                5 if k == Kind::Unknown => pos = pos.checked_add(4).filter(|e| *e <= buf.len()).ok_or_else(|| truncated(n))?,
                other => return Err(bad(if k == Kind::Unknown { "message" } else { name(n) }, format!("wire type {other}"))),
            }
        }
        Ok(w)
    }
}

fn same_len(n: usize, len: usize, rows: usize, of: &str) -> Result<(), CompactError> {
    if len != rows {
        return Err(bad(name(n), format!("{len} values for {rows} {of}")));
    }
    Ok(())
}

fn indices(n: usize, col: &[u32], bound: usize, of: &str) -> Result<(), CompactError> {
    if let Some((i, v)) = col.iter().enumerate().find(|(_, v)| **v as usize >= bound) {
        return Err(bad(name(n), format!("value {i} is {v}, beyond the {bound} {of}")));
    }
    Ok(())
}

/// Starts of each row's run in a flat column: counts prefix-summed, checked to end at `total`.
fn starts(n: usize, counts: &[u32], total: usize, of: &str) -> Result<Vec<usize>, CompactError> {
    let mut out = Vec::with_capacity(counts.len() + 1);
    let mut at = 0usize;
    out.push(0);
    for c in counts {
        at = at.checked_add(*c as usize).ok_or_else(|| bad(name(n), "counts overflow"))?;
        if at > total {
            return Err(bad(name(n), format!("counts add up to more than the {total} {of}")));
        }
        out.push(at);
    }
    if at != total {
        return Err(bad(name(n), format!("counts add up to {at}, not the {total} {of}")));
    }
    Ok(out)
}

/// A checked compact answer, read in place from the received bytes.
#[derive(Debug)]
pub struct CompactView<'a> {
    w: Wire<'a>,
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
    /// Read the serialized `CompactBuiltWithResponse` in `bytes` and check every length, count,
    /// index and exception list.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CompactError> {
        let w = Wire::parse(bytes)?;
        let strings = w.strs[f::STRINGS].len();
        let n = w.u32s[f::SOURCE].len();
        let of = "builds";
        for col in [
            f::SOURCE_VERSION,
            f::VERSION,
            f::ARCH_COUNTS,
            f::HOST_ARCH,
            f::DATE,
            f::BUILD_ORIGIN,
            f::IBD,
            f::SIGNED,
            f::ORIGIN_PREFIX,
            f::MATCHED_COUNTS,
            f::BINARY_COUNTS,
        ] {
            same_len(col, w.u32s[col].len(), n, of)?;
        }
        same_len(f::ORIGIN_NUMBER, w.u64s[f::ORIGIN_NUMBER].len(), n, of)?;
        if w.bytes[f::BUILD_IDS].len() != n.saturating_mul(32) {
            return Err(bad("build_ids", format!("{} bytes for {n} builds (32 each)", w.bytes[f::BUILD_IDS].len())));
        }
        let s = "strings";
        for col in [
            f::SOURCE,
            f::SOURCE_VERSION,
            f::VERSION,
            f::ARCHS,
            f::HOST_ARCH,
            f::DATE,
            f::BUILD_ORIGIN,
            f::ORIGIN_PREFIX,
            f::DEP_NAME,
            f::DEP_ARCH,
            f::DEP_VERSION,
            f::PACKAGE,
            f::BINARY_VERSION,
            f::BINARY_ARCH,
            f::EXTENSION,
            f::SHIPPED_IN,
        ] {
            indices(col, &w.u32s[col], strings, s)?;
        }
        let architecture_starts =
            starts(f::ARCH_COUNTS, &w.u32s[f::ARCH_COUNTS], w.u32s[f::ARCHS].len(), "build_architectures")?;
        let d = w.u32s[f::DEP_NAME].len();
        same_len(f::DEP_ARCH, w.u32s[f::DEP_ARCH].len(), d, "dependencies")?;
        same_len(f::DEP_VERSION, w.u32s[f::DEP_VERSION].len(), d, "dependencies")?;
        indices(f::MATCHED, &w.u32s[f::MATCHED], d, "dependencies")?;
        let matched_starts = starts(f::MATCHED_COUNTS, &w.u32s[f::MATCHED_COUNTS], w.u32s[f::MATCHED].len(), "matched entries")?;

        let m = w.u32s[f::PACKAGE].len();
        let binary_starts = starts(f::BINARY_COUNTS, &w.u32s[f::BINARY_COUNTS], m, "binaries")?;
        let of = "binaries";
        for col in [f::BINARY_VERSION, f::BINARY_ARCH, f::EXTENSION, f::SHIPPED_COUNTS] {
            same_len(col, w.u32s[col].len(), m, of)?;
        }
        same_len(f::SIZE, w.u64s[f::SIZE].len(), m, of)?;
        if w.bytes[f::SHA256].len() != m.saturating_mul(32) {
            return Err(bad("binary_sha256", format!("{} bytes for {m} binaries (32 each)", w.bytes[f::SHA256].len())));
        }
        let shipped_starts =
            starts(f::SHIPPED_COUNTS, &w.u32s[f::SHIPPED_COUNTS], w.u32s[f::SHIPPED_IN].len(), "binary_shipped_in")?;
        for (positions, texts, bound, of) in
            [(f::ODD_IDS, f::ODD_ID_TEXTS, n, "builds"), (f::ODD_FILENAMES, f::ODD_FILENAME_TEXTS, m, of), (f::ODD_SHA256, f::ODD_SHA256_TEXTS, m, of)]
        {
            same_len(texts, w.strs[texts].len(), w.u32s[positions].len(), name(positions))?;
            indices(positions, &w.u32s[positions], bound, of)?;
            if w.u32s[positions].windows(2).any(|p| p[0] >= p[1]) {
                return Err(bad(name(positions), "positions not strictly ascending"));
            }
        }
        Ok(CompactView { w, architecture_starts, matched_starts, binary_starts, shipped_starts })
    }

    /// How many builds.
    pub fn len(&self) -> usize {
        self.w.u32s[f::SOURCE].len()
    }

    /// Whether there is no build.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The resolved package names.
    pub fn resolved_packages(&self) -> &[&'a str] {
        &self.w.strs[f::RESOLVED]
    }

    /// The builds, in answer order.
    pub fn builds(&self) -> impl Iterator<Item = BuildRef<'_, 'a>> + '_ {
        (0..self.len()).map(move |i| BuildRef { v: self, i })
    }

    /// The string of column `col`, row `i`.
    fn text(&self, col: usize, i: usize) -> &'a str {
        self.w.u32s[col].get(i).and_then(|s| self.w.strs[f::STRINGS].get(*s as usize)).copied().unwrap_or_default()
    }

    fn number(&self, col: usize, i: usize) -> u32 {
        self.w.u32s[col].get(i).copied().unwrap_or_default()
    }

    fn odd(&self, positions: usize, texts: usize, i: usize) -> Option<&'a str> {
        let i = u32::try_from(i).ok()?;
        self.w.u32s[positions].binary_search(&i).ok().and_then(|k| self.w.strs[texts].get(k)).copied()
    }

    fn raw(&self, col: usize, i: usize) -> &'a [u8] {
        let b: &'a [u8] = self.w.bytes[col];
        i.checked_mul(32).and_then(|s| b.get(s..s + 32)).unwrap_or_default()
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
            resolved_packages: self.resolved_packages().iter().map(|s| (*s).to_owned()).collect(),
            builds: self.builds().map(|b| b.to_result()).collect(),
        }
    }
}

impl<'v, 'a> BuildRef<'v, 'a> {
    /// BuildSummary.id.
    pub fn id(&self) -> HashRef<'a> {
        match self.v.odd(f::ODD_IDS, f::ODD_ID_TEXTS, self.i) {
            Some(t) => HashRef::Text(t),
            None => HashRef::Raw(self.v.raw(f::BUILD_IDS, self.i)),
        }
    }
    /// BuildSummary.source.
    pub fn source(&self) -> &'a str {
        self.v.text(f::SOURCE, self.i)
    }
    /// BuildSummary.source_version.
    pub fn source_version(&self) -> &'a str {
        self.v.text(f::SOURCE_VERSION, self.i)
    }
    /// BuildSummary.version.
    pub fn version(&self) -> &'a str {
        self.v.text(f::VERSION, self.i)
    }
    /// BuildSummary.architectures.
    pub fn architectures(&self) -> impl Iterator<Item = &'a str> + 'v {
        let v = self.v;
        CompactView::range(&v.architecture_starts, self.i).map(move |k| v.text(f::ARCHS, k))
    }
    /// BuildSummary.host_architecture.
    pub fn host_architecture(&self) -> &'a str {
        self.v.text(f::HOST_ARCH, self.i)
    }
    /// BuildSummary.build_date.
    pub fn build_date(&self) -> &'a str {
        self.v.text(f::DATE, self.i)
    }
    /// BuildSummary.build_origin.
    pub fn build_origin(&self) -> &'a str {
        self.v.text(f::BUILD_ORIGIN, self.i)
    }
    /// BuildSummary.installed_build_depends.
    pub fn installed_build_depends(&self) -> u32 {
        self.v.number(f::IBD, self.i)
    }
    /// BuildSummary.signed.
    pub fn signed(&self) -> bool {
        self.v.number(f::SIGNED, self.i) != 0
    }
    /// BuildSummary.origin as its prefix and number (`None`: the prefix is the whole origin).
    pub fn origin_parts(&self) -> (&'a str, Option<u64>) {
        let n = self.v.w.u64s[f::ORIGIN_NUMBER].get(self.i).copied().unwrap_or_default();
        (self.v.text(f::ORIGIN_PREFIX, self.i), n.checked_sub(1))
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
        CompactView::range(&v.matched_starts, self.i).map(move |k| {
            let d = v.w.u32s[f::MATCHED].get(k).map_or(usize::MAX, |d| *d as usize);
            (v.text(f::DEP_NAME, d), v.text(f::DEP_ARCH, d), v.text(f::DEP_VERSION, d))
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
    /// Binary.package.
    pub fn package(&self) -> &'a str {
        self.v.text(f::PACKAGE, self.i)
    }
    /// Binary.version.
    pub fn version(&self) -> &'a str {
        self.v.text(f::BINARY_VERSION, self.i)
    }
    /// Binary.architecture.
    pub fn architecture(&self) -> &'a str {
        self.v.text(f::BINARY_ARCH, self.i)
    }
    /// Binary.filename, as held.
    pub fn filename_parts(&self) -> FileNameRef<'a> {
        match self.v.odd(f::ODD_FILENAMES, f::ODD_FILENAME_TEXTS, self.i) {
            Some(t) => FileNameRef::Text(t),
            None => FileNameRef::Extension(self.v.text(f::EXTENSION, self.i)),
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
        self.v.w.u64s[f::SIZE].get(self.i).copied().unwrap_or_default()
    }
    /// Binary.sha256.
    pub fn sha256(&self) -> HashRef<'a> {
        match self.v.odd(f::ODD_SHA256, f::ODD_SHA256_TEXTS, self.i) {
            Some(t) => HashRef::Text(t),
            None => HashRef::Raw(self.v.raw(f::SHA256, self.i)),
        }
    }
    /// Binary.shipped_in.
    pub fn shipped_in(&self) -> impl Iterator<Item = &'a str> + 'v {
        let v = self.v;
        CompactView::range(&v.shipped_starts, self.i).map(move |k| v.text(f::SHIPPED_IN, k))
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

/// The serialized bytes of a compact answer as domain values, every column checked first.
pub fn decode_bytes(bytes: &[u8]) -> Result<BuiltWithResult, CompactError> {
    Ok(CompactView::parse(bytes)?.to_result())
}

/// A compact answer decoded by prost, as domain values (through its bytes).
pub fn decode(r: &pb::CompactBuiltWithResponse) -> Result<BuiltWithResult, CompactError> {
    decode_bytes(&r.encode_to_vec())
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

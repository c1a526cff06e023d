//! Index entries in interned form: each resolved build's strings numbered in its generation's
//! [`Symbols`], its SHA-256s as 32 raw bytes, the rows of all entries in three vectors. Large
//! answers (tens of thousands of builds) are then assembled by table lookups rather than by
//! hashing or copying strings per build and per answer: whoever sends an answer numbers the
//! symbols it uses densely (a table lookup each) and copies each text once.
//!
//! The rows of an entry are made by the first answer that needs them, in answer order, so a
//! large answer asked again reads its rows front to back. Measured on the 35,000-build answer:
//! with one allocation per entry, the cache misses of reaching them were about half of the
//! answer's encoding (BENCHMARKS.md).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

// foldhash: the interner is probed for every string of every new entry.
use foldhash::HashMap;

use super::{IndexedMatch, ResolvedBuild};
use crate::model::{ProducedFile, file_name_parts};

/// A string interner: each distinct string gets a number, valid for one generation. Symbol 0
/// is always "".
#[derive(Debug)]
pub struct Symbols {
    inner: RwLock<SymbolTable>,
}

/// The symbols' texts, read under one lock.
#[derive(Debug, Default)]
pub struct SymbolTable {
    by_text: HashMap<Box<str>, u32>,
    /// Every text, one after another.
    arena: String,
    /// Per symbol: where its text starts in `arena` (it ends where the next one starts).
    starts: Vec<usize>,
}

impl SymbolTable {
    /// The text of symbol `n`; "" for an unknown symbol.
    pub fn text(&self, n: u32) -> &str {
        let Some(start) = self.starts.get(n as usize) else { return "" };
        let end = self.starts.get(n as usize + 1).copied().unwrap_or(self.arena.len());
        self.arena.get(*start..end).unwrap_or_default()
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Never: symbol 0 ("") always exists.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
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
    pub fn intern(&self, text: &str) -> u32 {
        if let Some(n) = self.inner.read().unwrap_or_else(|e| e.into_inner()).by_text.get(text) {
            return *n;
        }
        let mut t = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.by_text.get(text) {
            return *n;
        }
        // More than 4 billion distinct strings would not fit in memory first.
        let n = u32::try_from(t.starts.len()).unwrap_or(u32::MAX);
        let start = t.arena.len();
        t.arena.push_str(text);
        t.starts.push(start);
        t.by_text.insert(text.into(), n);
        n
    }

    /// How many symbols there are.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).starts.len()
    }

    /// Never: symbol 0 ("") always exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `f` with the table, under one read lock.
    pub fn with_table<R>(&self, f: impl FnOnce(&SymbolTable) -> R) -> R {
        f(&self.inner.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A SHA-256 as 32 raw bytes when its text is 64 lowercase hexadecimal digits, else its text
/// (as a symbol).
#[derive(Debug, Clone, Copy)]
pub enum Hash {
    /// The digest.
    Raw([u8; 32]),
    /// A text not of that form (as stored; the empty text of a missing hash included).
    Odd(u32),
}

fn hash(text: &str, symbols: &Symbols) -> Hash {
    let mut raw = [0u8; 32];
    let lower_hex = text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if lower_hex && hex::decode_to_slice(text, &mut raw).is_ok() { Hash::Raw(raw) } else { Hash::Odd(symbols.intern(text)) }
}

/// A binary's file name: `PACKAGE_VERSION_ARCH.EXT` with this extension, or a name not of
/// that form.
#[derive(Debug, Clone, Copy)]
pub enum FileName {
    /// The extension's symbol (the rest is the binary's package, version and architecture).
    Ext(u32),
    /// The whole name's symbol.
    Odd(u32),
}

/// A produced binary in interned form.
#[derive(Debug)]
pub struct InternedBinary {
    /// Package name.
    pub package: u32,
    /// Version.
    pub version: u32,
    /// Architecture.
    pub architecture: u32,
    /// File name.
    pub name: FileName,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256.
    pub sha256: Hash,
    /// Its shipping places: `Parts::symbols[shipped.0..shipped.1]`.
    shipped: (usize, usize),
}

/// An index entry (a build, its binaries and their shipping places in one generation) in
/// interned form.
#[derive(Debug)]
pub struct InternedBuild {
    /// The build's id (the buildinfo's SHA-256).
    pub id: Hash,
    /// Source, source version, version, host architecture, build date, build origin, and the
    /// prefix of the origin (see [`split_origin`]), in this order.
    pub texts: [u32; 7],
    /// The number ending the origin, plus one (0: none; see [`split_origin`]).
    pub origin_number: u64,
    /// Installed-Build-Depends entries.
    pub installed_build_depends: u32,
    /// Clearsigned.
    pub signed: bool,
    /// Its architectures: `Parts::symbols[architectures.0..architectures.1]`.
    architectures: (usize, usize),
    /// Its binaries: `Parts::binaries[binaries.0..binaries.1]`.
    binaries: (usize, usize),
}

/// The interned rows of one generation's entries and the strings they number. The index holds
/// one per generation and hands it out with every answer ([`super::IndexedAnswer::interned`]).
#[derive(Debug, Default)]
pub struct Rows {
    symbols: Symbols,
    parts: RwLock<Parts>,
}

/// The rows of all entries.
#[derive(Debug, Default)]
pub struct Parts {
    builds: Vec<InternedBuild>,
    binaries: Vec<InternedBinary>,
    /// Architectures and shipping places, of all entries.
    symbols: Vec<u32>,
}

/// Where an index entry's row is in its generation's [`Rows`]: row + 1, or 0 before any
/// answer needed it. Set only by [`Rows`], under its write lock, after the row was made.
#[derive(Debug, Default)]
pub struct Slot(AtomicUsize);

impl Parts {
    /// The architectures of `b`.
    pub fn architectures(&self, b: &InternedBuild) -> &[u32] {
        self.symbols.get(b.architectures.0..b.architectures.1).unwrap_or_default()
    }

    /// The binaries of `b`, in the entry's file order.
    pub fn binaries(&self, b: &InternedBuild) -> &[InternedBinary] {
        self.binaries.get(b.binaries.0..b.binaries.1).unwrap_or_default()
    }

    /// The shipping places of `b`.
    pub fn shipped(&self, b: &InternedBinary) -> &[u32] {
        self.symbols.get(b.shipped.0..b.shipped.1).unwrap_or_default()
    }

    /// Make the row of `r`; its number.
    fn push(&mut self, r: &ResolvedBuild, symbols: &Symbols) -> usize {
        let b = &r.build.record;
        let (prefix, origin_number) = split_origin(&b.origin);
        let architectures = self.symbols.len();
        self.symbols.extend(b.architectures.iter().map(|a| symbols.intern(a)));
        let architectures = (architectures, self.symbols.len());
        let first_binary = self.binaries.len();
        for f in &r.files {
            let binary = interned_binary(f, symbols, &mut self.symbols);
            self.binaries.push(binary);
        }
        self.builds.push(InternedBuild {
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

/// The rows of one answer's builds, read-locked.
pub struct AnswerRows<'a> {
    parts: RwLockReadGuard<'a, Parts>,
    rows: Vec<usize>,
}

impl AnswerRows<'_> {
    /// All rows (for [`Parts::architectures`] and kin).
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// The row of the answer's `i`th build.
    pub fn build(&self, i: usize) -> Option<&InternedBuild> {
        self.rows.get(i).and_then(|r| self.parts.builds.get(*r))
    }
}

impl Rows {
    /// Rows made under one write lock at most.
    const FILL_BATCH: usize = 2048;

    /// The generation's symbols.
    pub fn symbols(&self) -> &Symbols {
        &self.symbols
    }

    fn read(&self) -> RwLockReadGuard<'_, Parts> {
        // The rows only grow, each whole under the write lock: a panic elsewhere leaves
        // nothing half-made.
        self.parts.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The rows of `builds` (made for those that have none), read-locked.
    pub fn rows_of(&self, builds: &[IndexedMatch]) -> AnswerRows<'_> {
        // Every entry's slot first (one load each): the rows are then read in answer order.
        let mut rows: Vec<usize> = builds.iter().map(|m| m.resolved.interned.0.load(Ordering::Acquire)).collect();
        {
            let parts = self.read();
            let made = parts.builds.len();
            if rows.iter().all(|r| (1..=made).contains(r)) {
                rows.iter_mut().for_each(|r| *r -= 1);
                return AnswerRows { parts, rows };
            }
        }
        let write = || self.parts.write().unwrap_or_else(|e| e.into_inner());
        let mut parts = write();
        let mut made = 0;
        for (r, m) in rows.iter_mut().zip(builds) {
            // Another answer may have made it since.
            *r = m.resolved.interned.0.load(Ordering::Acquire);
            if !(1..=parts.builds.len()).contains(r) {
                if made == Self::FILL_BATCH {
                    // Let the answers waiting to read in between (a whole suite's rows take
                    // ~200 ms to make).
                    drop(parts);
                    parts = write();
                    made = 0;
                }
                *r = parts.push(&m.resolved, &self.symbols) + 1;
                m.resolved.interned.0.store(*r, Ordering::Release);
                made += 1;
            }
            *r -= 1;
        }
        drop(parts);
        // Rows are never removed: every row just checked or made is still there.
        AnswerRows { parts: self.read(), rows }
    }
}

/// `origin` as (prefix, number + 1) when it ends in a decimal number written without leading
/// zeros, else (origin, 0): origins such as `Buildinfo.xz#paragraph-at-line-N` differ only in
/// their number.
pub fn split_origin(origin: &str) -> (&str, u64) {
    let digits = origin.bytes().rev().take_while(u8::is_ascii_digit).count();
    let (prefix, number) = origin.split_at(origin.len() - digits);
    match number.parse::<u64>() {
        Ok(n) if n < u64::MAX && n.to_string() == number => (prefix, n + 1),
        _ => (origin, 0),
    }
}

fn interned_binary(f: &ProducedFile, symbols: &Symbols, places: &mut Vec<u32>) -> InternedBinary {
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
    InternedBinary {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_split_at_their_number() {
        assert_eq!(split_origin("Buildinfo.xz#paragraph-at-line-41"), ("Buildinfo.xz#paragraph-at-line-", 42));
        assert_eq!(split_origin("a.buildinfo"), ("a.buildinfo", 0));
        assert_eq!(split_origin("x007"), ("x007", 0), "leading zeros stay in the prefix");
        assert_eq!(split_origin("99999999999999999999999"), ("99999999999999999999999", 0));
    }

    #[test]
    fn symbols_keep_their_texts() {
        let s = Symbols::default();
        let a = s.intern("amd64");
        let b = s.intern("bookworm/amd64");
        assert_eq!(s.intern("amd64"), a);
        s.with_table(|t| {
            assert_eq!((t.text(0), t.text(a), t.text(b), t.text(99)), ("", "amd64", "bookworm/amd64", ""));
            assert_eq!(t.len(), 3);
        });
    }
}

//! Bytes in, validated domain values out: parsing, hashing and compression of what clients
//! send, before anything reaches storage.
//!
//! # Invariants
//! - Pure CPU work, no I/O besides the caller's reader and no database: the service runs these
//!   on blocking threads so parsing never stalls the async runtime.
//! - Every rejection names the input (file, URL or `index#line`), and where known the field and
//!   line, so the user can go straight to the fault.

use std::io::{BufReader, Read};

use debcover_formats::buildinfo::MAX_BUILDINFO_BYTES;
use debcover_formats::paragraph::Paragraphs;
use debcover_formats::{Buildinfo, PackagesEntry, ParseError, SourcesEntry, DepMemo, compress, sha256_hex};
use sha2::Digest;

use crate::model::{DepKey, NewBuild, dep_key};

/// zstd level for stored buildinfo text: level 1 compresses buildinfos about 3.5×
/// at several hundred MB/s, far faster than the database can take them.
const ZSTD_LEVEL: i32 = 1;

/// Size limits on client input (documented in README.md, "Limits").
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single buildinfo, in bytes.
    pub max_buildinfo_bytes: usize,
    /// Largest archive index as sent (compressed), in bytes.
    pub max_index_bytes: u64,
    /// Largest archive index after decompression, in bytes.
    pub max_index_decompressed: u64,
    /// Most paragraphs in one archive index. An index is parsed whole before it is applied in
    /// one transaction, so this bounds the coordinator's memory for any input: a small
    /// compressed file of tiny valid paragraphs otherwise expands into millions of entries.
    pub max_index_entries: usize,
}

/// Default [`Limits::max_index_entries`]: four times the largest Debian index (sid's amd64
/// `Packages`, about 66,000 paragraphs in 2026).
pub const MAX_INDEX_ENTRIES: usize = 250_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_buildinfo_bytes: MAX_BUILDINFO_BYTES,
            max_index_bytes: 512 * 1024 * 1024,
            max_index_decompressed: compress::DEFAULT_MAX_DECOMPRESSED,
            max_index_entries: MAX_INDEX_ENTRIES,
        }
    }
}

/// Parse, hash and compress one buildinfo. `name` is where the client found it.
///
/// For many files in a row, use one [`Preparer`]: this makes a fresh one per call.
pub fn prepare_build(name: &str, content: &[u8], limits: &Limits) -> Result<NewBuild, ParseError> {
    Preparer::new(*limits).prepare(name, content)
}

/// Prepares the buildinfos of one ingestion batch, sharing work between them:
/// - each distinct Installed-Build-Depends entry text is parsed and checked once ([`DepMemo`]);
/// - equal interning keys share one allocation, so the writer can group entries by key
///   address and a batch's keys take little memory;
/// - one zstd compression context serves every file.
pub struct Preparer {
    limits: Limits,
    deps: DepMemo<DepKey>,
    keys: foldhash::HashSet<DepKey>,
    compressor: Option<zstd::bulk::Compressor<'static>>,
}

impl Preparer {
    /// A preparer for one batch.
    pub fn new(limits: Limits) -> Self {
        Preparer { limits, deps: DepMemo::new(), keys: foldhash::HashSet::default(), compressor: None }
    }

    /// Parse, hash and compress one buildinfo. `name` is where the client found it.
    pub fn prepare(&mut self, name: &str, content: &[u8]) -> Result<NewBuild, ParseError> {
        if content.len() > self.limits.max_buildinfo_bytes {
            return Err(ParseError::new(format!(
                "file is {} bytes; the limit for one buildinfo is {} bytes",
                content.len(),
                self.limits.max_buildinfo_bytes
            ))
            .in_file(name));
        }
        let keys = &mut self.keys;
        // Called once per distinct entry text; entries spelt differently but equal share a key.
        let (info, dep_keys) = Buildinfo::parse_with_deps(content, &mut self.deps, |n, a, v| {
            let key = dep_key(n, a.unwrap_or_default(), v);
            match keys.get(key.as_str()) {
                Some(k) => k.clone(),
                None => {
                    let k = DepKey::from(key);
                    keys.insert(k.clone());
                    k
                }
            }
        })
        .map_err(|e| e.in_file(name))?;
        let raw_zstd = self.compress(content).map_err(|e| ParseError::new(format!("cannot compress: {e}")).in_file(name))?;
        Ok(NewBuild {
            sha256: sha256_hex(content),
            origin: name.to_owned(),
            rebuild_of: None,
            signer: None,
            info,
            raw_zstd,
            raw_size: content.len() as u64,
            dep_keys,
        })
    }

    fn compress(&mut self, content: &[u8]) -> std::io::Result<Vec<u8>> {
        if self.compressor.is_none() {
            self.compressor = Some(zstd::bulk::Compressor::new(ZSTD_LEVEL)?);
        }
        match &mut self.compressor {
            Some(c) => c.compress(content),
            None => zstd::bulk::compress(content, ZSTD_LEVEL),
        }
    }
}

/// A reader that hashes what passes through it and refuses to pass more than a limit.
pub struct HashingReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    read: u64,
    limit: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wrap `inner`, failing with `InvalidData` after `limit` bytes.
    pub fn new(inner: R, limit: u64) -> Self {
        HashingReader { inner, hasher: sha2::Sha256::new(), read: 0, limit }
    }
    /// The SHA-256 (hex) of everything read so far.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("index is larger than the limit of {} bytes", self.limit),
            ));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Read a whole archive index (plain, gzip or xz) and parse every paragraph with `parse`.
/// Fails on the first malformed paragraph: an index is applied whole or not at all.
/// Returns the entries and the SHA-256 of the bytes as read.
pub fn read_index<R: Read, T>(
    name: &str,
    reader: R,
    limits: &Limits,
    parse: fn(&debcover_formats::paragraph::RawParagraph) -> Result<T, ParseError>,
) -> Result<(Vec<T>, String), ParseError> {
    let mut hashing = HashingReader::new(reader, limits.max_index_bytes);
    let entries = {
        let (_, decompressed) =
            compress::open(BufReader::new(&mut hashing), limits.max_index_decompressed)
                .map_err(|e| ParseError::new(format!("cannot read: {e}")).in_file(name))?;
        let mut entries = Vec::new();
        for p in Paragraphs::new(decompressed) {
            let p = p.map_err(|e| e.in_file(name))?;
            if entries.len() == limits.max_index_entries {
                return Err(ParseError::new(format!(
                    "more than {} paragraphs: refused (the largest Debian index has about 66,000; \
                     raise --max-index-entries if this index is real)",
                    limits.max_index_entries
                ))
                .in_file(name));
            }
            entries.push(parse(&p).map_err(|e| e.in_file(name))?);
        }
        entries
    };
    // Drain what the decompressor did not need (e.g. trailing padding) so the hash covers all.
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|e| ParseError::new(format!("cannot read: {e}")).in_file(name))?;
    if entries.is_empty() {
        return Err(ParseError::new("the index holds no paragraphs").in_file(name));
    }
    Ok((entries, hashing.sha256_hex()))
}

/// Parse a `Packages` index.
pub fn read_packages<R: Read>(
    name: &str,
    reader: R,
    limits: &Limits,
) -> Result<(Vec<PackagesEntry>, String), ParseError> {
    read_index(name, reader, limits, PackagesEntry::parse)
}

/// Parse a `Sources` index.
pub fn read_sources<R: Read>(
    name: &str,
    reader: R,
    limits: &Limits,
) -> Result<(Vec<SourcesEntry>, String), ParseError> {
    read_index(name, reader, limits, SourcesEntry::parse)
}

/// The architecture a Packages index is for, when the client did not say: the one concrete
/// architecture among its entries.
pub fn infer_architecture(name: &str, entries: &[PackagesEntry]) -> Result<String, ParseError> {
    let mut arches: Vec<&str> =
        entries.iter().map(|e| e.architecture.as_str()).filter(|a| *a != "all").collect();
    arches.sort_unstable();
    arches.dedup();
    match arches.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(ParseError::new(
            "every entry is Architecture: all, so the index's architecture cannot be inferred; \
             pass --arch",
        )
        .in_file(name)),
        many => Err(ParseError::new(format!(
            "entries of several architectures ({}); pass --arch to say which index this is",
            many.join(", ")
        ))
        .in_file(name)),
    }
}

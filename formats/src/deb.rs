//! A bounded, streaming reader of binary packages (`.deb`, deb(5)): the `ar` container, its
//! `data.tar[.gz|.xz|.zst|.lzma]` member, and the tar entries inside, handing the caller the ELF
//! files found under executable-looking paths.
//!
//! Everything is read once, front to back, from a caller-supplied [`Read`]. Memory is bounded
//! by [`Limits`]: only examined ELF files are held in memory (one at a time, at most
//! [`Limits::max_file_size`] bytes), tar metadata records (GNU long names, pax headers) at most
//! [`Limits::max_metadata`] bytes, and the decompressors' own state by [`DECODER_MEMORY`]. Every
//! other byte is streamed through a fixed buffer. Every limit, when exceeded, is a
//! [`DebError::Limit`] naming the limit, the value seen and where.
//!
//! The `ar` container is read here (deb(5) allows only its plain common subset: 16-byte names,
//! decimal sizes, no symbol table), and so are tar entries, with [`tar::Header`] parsing each
//! header block: the `tar` crate's own entry iterator reads long names and pax records whole,
//! whatever size they claim, which would let one entry allocate up to the decompression cap.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

/// Memory the xz/lzma decoder may use (its dictionary), and the largest zstd window accepted
/// (2^27 bytes, zstd's own default limit): 128 MiB.
pub const DECODER_MEMORY: u64 = 128 * 1024 * 1024;
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Caps on what one `.deb` may make the reader do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest size an `ar` member may declare (compressed bytes). Default 2 GiB.
    pub max_member_size: u64,
    /// Total decompressed bytes of the data member, headers and padding included. Default 4 GiB.
    pub max_decompressed: u64,
    /// Largest ELF file examined (these are read into memory whole). Default 512 MiB.
    pub max_file_size: u64,
    /// Number of tar headers (entries and metadata records). Default 200,000.
    pub max_entries: u64,
    /// Longest path of a tar entry, in bytes. Default 4096.
    pub max_path_len: u64,
    /// Largest tar metadata record (GNU long name or link, pax header). Default 64 KiB.
    pub max_metadata: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_member_size: 2 << 30,
            max_decompressed: 4 << 30,
            max_file_size: 512 << 20,
            max_entries: 200_000,
            max_path_len: 4096,
            max_metadata: 64 << 10,
        }
    }
}

/// Which of the [`Limits`] was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_member_size`].
    MemberSize,
    /// [`Limits::max_decompressed`].
    Decompressed,
    /// [`Limits::max_file_size`].
    FileSize,
    /// [`Limits::max_entries`].
    Entries,
    /// [`Limits::max_path_len`].
    PathLength,
    /// [`Limits::max_metadata`].
    Metadata,
    /// [`DECODER_MEMORY`]: the compressed stream asks for a larger dictionary or window.
    DecoderMemory,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::MemberSize => "ar member size",
            Limit::Decompressed => "decompressed size",
            Limit::FileSize => "examined file size",
            Limit::Entries => "tar entry count",
            Limit::PathLength => "tar path length",
            Limit::Metadata => "tar metadata record size",
            Limit::DecoderMemory => "decoder memory",
        })
    }
}

/// Why a `.deb` could not be read. Offsets into the `.deb` itself are "byte N"; offsets into
/// the decompressed data member are "decompressed byte N".
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// The `ar` container is malformed.
    #[error("byte {offset}: {message}")]
    Ar {
        /// Offset in the `.deb` of the bad header.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// The input ended before a member was complete.
    #[error("byte {offset}: input ends inside member `{member}`, which declares {declared} bytes from byte {start}")]
    Truncated {
        /// The member's name.
        member: String,
        /// Where its data starts.
        start: u64,
        /// The size its header declares.
        declared: u64,
        /// Where the input ended.
        offset: u64,
    },
    /// No `data.tar*` member.
    #[error("no data.tar member in the archive")]
    NoData,
    /// The data member's compression is not one this reader supports.
    #[error("member `{member}`: unsupported compression")]
    UnsupportedCompression {
        /// The member's name (`data.tar.bz2`).
        member: String,
    },
    /// The compressed stream is corrupt.
    #[error("member `{member}`, decompressed byte {offset}: {message}")]
    Decompress {
        /// The member's name.
        member: String,
        /// Decompressed bytes read successfully before the failure.
        offset: u64,
        /// The decoder's message.
        message: String,
    },
    /// The tar stream inside the data member is malformed.
    #[error("member `{member}`, decompressed byte {offset}: {message}")]
    Tar {
        /// The member's name.
        member: String,
        /// Offset in the decompressed stream of the bad header or record.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// A limit was exceeded.
    #[error("{at}: {limit} {value} exceeds the limit of {max}")]
    Limit {
        /// Which limit.
        limit: Limit,
        /// The value seen (bytes or count).
        value: u64,
        /// The limit in force.
        max: u64,
        /// Where: `byte N`, or `member M, decompressed byte N[, entry PATH]`.
        at: String,
    },
    /// Reading the input failed (not a format problem).
    #[error("byte {offset}: read error: {source}")]
    Io {
        /// Bytes of the `.deb` read before the failure.
        offset: u64,
        /// The error.
        source: io::Error,
    },
}

/// One ELF file found in the data member, handed to the caller's visitor.
#[derive(Debug, Clone, Copy)]
pub struct ElfEntry<'a> {
    /// Its path in the package, without a leading `./` or `/` (`usr/bin/lego`).
    pub path: &'a str,
    /// Its whole content.
    pub bytes: &'a [u8],
}

/// What was read, besides the ELF files.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct DebSummary {
    /// Name of the data member (`data.tar.xz`).
    pub data_member: String,
    /// Tar headers read (entries and metadata records).
    pub entries: u64,
    /// Decompressed bytes read.
    pub decompressed: u64,
    /// ELF files examined.
    pub elf_files: u64,
}

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// Is `path` (no leading `./`) where executables and shared objects live?
pub fn is_executable_path(path: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "bin/", "sbin/", "lib/", "lib32/", "lib64/", "libx32/", "usr/bin/", "usr/sbin/", "usr/games/", "usr/lib/",
        "usr/lib32/", "usr/lib64/", "usr/libx32/", "usr/libexec/", "usr/local/", "opt/",
    ];
    PREFIXES.iter().any(|p| path.starts_with(p))
}

/// Read a `.deb` from `reader` and call `visit` with every regular file under an
/// [executable-looking path](is_executable_path) that starts with the ELF magic, in archive
/// order. Nothing else is kept in memory.
pub fn for_each_elf<R: Read>(
    reader: R,
    limits: &Limits,
    mut visit: impl FnMut(ElfEntry<'_>),
) -> Result<DebSummary, DebError> {
    let pos = Rc::new(Cell::new(0u64));
    let eof = Rc::new(Cell::new(false));
    let mut input = Counting { inner: reader, pos: pos.clone(), eof: eof.clone() };
    let mut magic = [0u8; 8];
    let got = read_full(&mut input, &mut magic).map_err(|e| io_err(&pos, e))?;
    if got < magic.len() || &magic != b"!<arch>\n" {
        return Err(DebError::Ar { offset: 0, message: "not an ar archive (no `!<arch>` magic)".into() });
    }
    loop {
        let header_at = pos.get();
        let mut header = [0u8; 60];
        let got = read_full(&mut input, &mut header).map_err(|e| io_err(&pos, e))?;
        if got == 0 {
            return Err(DebError::NoData);
        }
        if got < header.len() {
            return Err(DebError::Ar { offset: header_at, message: "input ends inside an ar member header".into() });
        }
        let (name, size) = parse_ar_header(&header).map_err(|message| DebError::Ar { offset: header_at, message })?;
        if size > limits.max_member_size {
            return Err(DebError::Limit {
                limit: Limit::MemberSize,
                value: size,
                max: limits.max_member_size,
                at: format!("byte {header_at}, member `{name}`"),
            });
        }
        let start = pos.get();
        let truncated = |pos: &Cell<u64>| DebError::Truncated {
            member: name.clone(),
            start,
            declared: size,
            offset: pos.get(),
        };
        if let Some(ext) = name.strip_prefix("data.tar") {
            let compression = match ext {
                "" => Codec::Plain,
                ".gz" => Codec::Gzip,
                ".xz" => Codec::Xz,
                ".lzma" => Codec::Lzma,
                ".zst" => Codec::Zstd,
                _ => return Err(DebError::UnsupportedCompression { member: name }),
            };
            let member = (&mut input).take(size);
            let mut tar = TarReader::new(compression, member, &name, limits).map_err(|e| {
                if eof.get() { truncated(&pos) } else { decompress_error(&name, 0, e) }
            })?;
            let result = tar.run(&mut visit);
            let summary = DebSummary {
                data_member: name.clone(),
                entries: tar.headers,
                decompressed: tar.pos,
                elf_files: tar.elf_files,
            };
            drop(tar);
            // A member cut short shows as a decoder or tar error; name it for what it is.
            match result {
                Err(DebError::Decompress { .. } | DebError::Tar { .. }) if eof.get() => return Err(truncated(&pos)),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            // The tar stream may end before the member does; the member must still be whole.
            let rest = start.saturating_add(size).saturating_sub(pos.get());
            skip(&mut input, rest).map_err(|e| io_err(&pos, e))?;
            if eof.get() || pos.get() < start.saturating_add(size) {
                return Err(truncated(&pos));
            }
            return Ok(summary);
        }
        let padded = size.saturating_add(size % 2);
        let skipped = skip(&mut input, padded).map_err(|e| io_err(&pos, e))?;
        // The padding byte of the last member may be missing; its data may not.
        if skipped < size {
            return Err(truncated(&pos));
        }
    }
}

/// Name and size from a 60-byte `ar` header.
fn parse_ar_header(header: &[u8; 60]) -> Result<(String, u64), String> {
    if header.get(58..60) != Some(b"`\n") {
        return Err("bad ar member header (no terminating \"`\\n\")".into());
    }
    let name_field = header.get(..16).unwrap_or_default();
    let name = std::str::from_utf8(name_field)
        .map_err(|_| "ar member name is not UTF-8".to_owned())?
        .trim_end_matches(' ')
        .trim_end_matches('/');
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("invalid ar member name {:?}", String::from_utf8_lossy(name_field)));
    }
    let size_field = header.get(48..58).unwrap_or_default();
    let size_text = std::str::from_utf8(size_field).unwrap_or_default().trim_end_matches(' ');
    if size_text.is_empty() || !size_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("member `{name}`: invalid size {:?}", String::from_utf8_lossy(size_field)));
    }
    let size = size_text.parse::<u64>().map_err(|e| format!("member `{name}`: invalid size: {e}"))?;
    Ok((name.to_owned(), size))
}

#[derive(Debug, Clone, Copy)]
enum Codec {
    Plain,
    Gzip,
    Xz,
    Lzma,
    Zstd,
}

/// The data member's tar stream, read header by header.
struct TarReader<'l> {
    inner: Box<dyn Read + 'l>,
    member: String,
    limits: &'l Limits,
    /// Decompressed bytes read.
    pos: u64,
    headers: u64,
    elf_files: u64,
}

impl<'l> TarReader<'l> {
    fn new<R: Read + 'l>(codec: Codec, member: R, name: &str, limits: &'l Limits) -> io::Result<Self> {
        let buffered = BufReader::with_capacity(64 * 1024, member);
        let inner: Box<dyn Read + 'l> = match codec {
            Codec::Plain => Box::new(buffered),
            Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Codec::Xz => {
                let stream = xz2::stream::Stream::new_stream_decoder(DECODER_MEMORY, xz2::stream::CONCATENATED)
                    .map_err(io::Error::other)?;
                Box::new(xz2::bufread::XzDecoder::new_stream(buffered, stream))
            }
            Codec::Lzma => {
                let stream = xz2::stream::Stream::new_lzma_decoder(DECODER_MEMORY).map_err(io::Error::other)?;
                Box::new(xz2::bufread::XzDecoder::new_stream(buffered, stream))
            }
            Codec::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(buffered)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
                Box::new(d)
            }
        };
        Ok(TarReader { inner, member: name.to_owned(), limits, pos: 0, headers: 0, elf_files: 0 })
    }

    fn tar_error(&self, offset: u64, message: impl Into<String>) -> DebError {
        DebError::Tar { member: self.member.clone(), offset, message: message.into() }
    }

    fn limit(&self, limit: Limit, value: u64, max: u64, offset: u64, path: Option<&str>) -> DebError {
        let mut at = format!("member `{}`, decompressed byte {offset}", self.member);
        if let Some(path) = path {
            at.push_str(&format!(", entry `{path}`"));
        }
        DebError::Limit { limit, value, max, at }
    }

    /// Read exactly `buf.len()` bytes, or fewer only at the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, DebError> {
        let len = buf.len() as u64;
        if self.pos.saturating_add(len) > self.limits.max_decompressed {
            return Err(self.limit(
                Limit::Decompressed,
                self.pos.saturating_add(len),
                self.limits.max_decompressed,
                self.pos,
                None,
            ));
        }
        let got = read_full(&mut self.inner, buf).map_err(|e| decompress_error(&self.member, self.pos, e))?;
        self.pos += got as u64;
        Ok(got)
    }

    /// Read exactly `buf.len()` bytes or fail naming `what`.
    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), DebError> {
        let at = self.pos;
        if self.read(buf)? < buf.len() {
            return Err(self.tar_error(at, format!("stream ends inside {what}")));
        }
        Ok(())
    }

    /// Skip `n` bytes (streamed through a fixed buffer).
    fn skip(&mut self, mut n: u64, what: &str) -> Result<(), DebError> {
        let mut buf = [0u8; 16 * 1024];
        while n > 0 {
            let chunk = n.min(buf.len() as u64) as usize;
            self.read_exact(buf.get_mut(..chunk).unwrap_or_default(), what)?;
            n -= chunk as u64;
        }
        Ok(())
    }

    fn run(&mut self, visit: &mut dyn FnMut(ElfEntry<'_>)) -> Result<(), DebError> {
        let mut long_name: Option<Vec<u8>> = None;
        let mut pax_path: Option<Vec<u8>> = None;
        loop {
            let at = self.pos;
            let mut block = [0u8; 512];
            let got = self.read(&mut block)?;
            if got == 0 {
                // No end-of-archive blocks: accepted (GNU tar accepts it too).
                return Ok(());
            }
            if got < block.len() {
                return Err(self.tar_error(at, "stream ends inside a tar header"));
            }
            if block.iter().all(|&b| b == 0) {
                return Ok(());
            }
            self.headers += 1;
            if self.headers > self.limits.max_entries {
                return Err(self.limit(Limit::Entries, self.headers, self.limits.max_entries, at, None));
            }
            let mut header = tar::Header::new_old();
            header.as_mut_bytes().copy_from_slice(&block);
            let stored = header.cksum().map_err(|e| self.tar_error(at, format!("bad header checksum field: {e}")))?;
            let computed: u32 = block
                .iter()
                .enumerate()
                .map(|(i, &b)| if (148..156).contains(&i) { u32::from(b' ') } else { u32::from(b) })
                .sum();
            if stored != computed {
                return Err(self.tar_error(at, format!("header checksum {stored} does not match computed {computed}")));
            }
            let size = header.entry_size().map_err(|e| self.tar_error(at, format!("bad size field: {e}")))?;
            let padding = (512 - size % 512) % 512;
            let kind = header.entry_type();
            if kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions() || kind.is_pax_global_extensions() {
                if size > self.limits.max_metadata {
                    return Err(self.limit(Limit::Metadata, size, self.limits.max_metadata, at, None));
                }
                let mut record = vec![0u8; size as usize];
                self.read_exact(&mut record, "a tar metadata record")?;
                self.skip(padding, "tar padding")?;
                if kind.is_gnu_longname() {
                    while record.last() == Some(&0) {
                        record.pop();
                    }
                    long_name = Some(record);
                } else if kind.is_pax_local_extensions() {
                    for ext in tar::PaxExtensions::new(&record) {
                        let ext = ext.map_err(|e| self.tar_error(at, format!("bad pax record: {e}")))?;
                        if ext.key_bytes() == b"path" {
                            pax_path = Some(ext.value_bytes().to_vec());
                        }
                    }
                }
                continue;
            }
            let path_bytes = match (pax_path.take(), long_name.take()) {
                (Some(p), _) | (None, Some(p)) => p,
                (None, None) => header.path_bytes().into_owned(),
            };
            if path_bytes.len() as u64 > self.limits.max_path_len {
                return Err(self.limit(Limit::PathLength, path_bytes.len() as u64, self.limits.max_path_len, at, None));
            }
            let path = String::from_utf8_lossy(&path_bytes);
            let path = path.trim_start_matches("./").trim_start_matches('/');
            let regular = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
            if !regular || size < 4 || !is_executable_path(path) {
                self.skip(size.saturating_add(padding), "a tar entry")?;
                continue;
            }
            let mut head = [0u8; 4];
            self.read_exact(&mut head, "a tar entry")?;
            if &head != ELF_MAGIC {
                self.skip(size - 4 + padding, "a tar entry")?;
                continue;
            }
            if size > self.limits.max_file_size {
                return Err(self.limit(Limit::FileSize, size, self.limits.max_file_size, at, Some(path)));
            }
            // Within the total cap before reading, so the buffer never grows past what is allowed.
            if self.pos.saturating_add(size - 4) > self.limits.max_decompressed {
                return Err(self.limit(
                    Limit::Decompressed,
                    self.pos.saturating_add(size - 4),
                    self.limits.max_decompressed,
                    self.pos,
                    Some(path),
                ));
            }
            let mut bytes = head.to_vec();
            let want = size - 4;
            let got = (&mut self.inner)
                .take(want)
                .read_to_end(&mut bytes)
                .map_err(|e| decompress_error(&self.member, self.pos, e))?;
            self.pos += got as u64;
            if (got as u64) < want {
                return Err(self.tar_error(self.pos, format!("stream ends inside entry `{path}`")));
            }
            self.skip(padding, "tar padding")?;
            self.elf_files += 1;
            visit(ElfEntry { path, bytes: &bytes });
        }
    }
}

fn decompress_error(member: &str, offset: u64, e: io::Error) -> DebError {
    let message = e.to_string();
    DebError::Decompress { member: member.to_owned(), offset, message }
}

fn io_err(pos: &Cell<u64>, source: io::Error) -> DebError {
    DebError::Io { offset: pos.get(), source }
}

/// Read until `buf` is full or the input ends; the number of bytes read.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(buf.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Skip up to `n` bytes; the number skipped (fewer only at the end of the input).
fn skip<R: Read>(r: &mut R, n: u64) -> io::Result<u64> {
    io::copy(&mut r.take(n), &mut io::sink())
}

/// The `.deb` reader, counting bytes and noting the end of the input.
struct Counting<R> {
    inner: R,
    pos: Rc<Cell<u64>>,
    eof: Rc<Cell<bool>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.set(true);
        }
        self.pos.set(self.pos.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::tests::elf64_with_segment;
    use std::io::Write;

    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = b"!<arch>\n".to_vec();
        for (name, data) in members {
            out.extend_from_slice(ar_header(name, data.len() as u64).as_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    fn ar_header(name: &str, size: u64) -> String {
        format!("{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n", 0, 0, 0, 100644)
    }

    fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o755);
        h.set_cksum();
        h
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            b.append(&header(path, tar::EntryType::Regular, data.len() as u64), *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn deb_of(data_name: &str, data: &[u8]) -> Vec<u8> {
        ar(&[("debian-binary", b"2.0\n"), ("control.tar.xz", b"x"), (data_name, data)])
    }

    fn elves(deb: &[u8], limits: &Limits) -> Result<(DebSummary, Vec<(String, usize)>), DebError> {
        let mut seen = Vec::new();
        let summary = for_each_elf(deb, limits, |e| seen.push((e.path.to_owned(), e.bytes.len())))?;
        Ok((summary, seen))
    }

    #[test]
    fn finds_elf_files_under_executable_paths_in_every_compression() {
        let elf = elf64_with_segment(b"data");
        let tar = tar_of(&[
            ("./usr/bin/tool", &elf),
            ("./usr/share/doc/tool/not-examined", &elf),
            ("./usr/bin/script", b"#!/bin/sh\n"),
            ("./usr/lib/x86_64-linux-gnu/libx.so.1", &elf),
        ]);
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(&tar[..], 1).unwrap();
        for (name, data) in [("data.tar", &tar), ("data.tar.gz", &gz), ("data.tar.xz", &xz), ("data.tar.zst", &zst)] {
            let (summary, seen) = elves(&deb_of(name, data), &Limits::default()).unwrap();
            assert_eq!(
                seen,
                vec![("usr/bin/tool".to_owned(), elf.len()), ("usr/lib/x86_64-linux-gnu/libx.so.1".to_owned(), elf.len())],
                "{name}"
            );
            assert_eq!((summary.data_member.as_str(), summary.entries, summary.elf_files), (name, 4, 2));
        }
        let err = elves(&deb_of("data.tar.bz2", b"BZh"), &Limits::default()).unwrap_err();
        assert!(matches!(err, DebError::UnsupportedCompression { ref member } if member == "data.tar.bz2"), "{err}");
    }

    #[test]
    fn malformed_containers_are_located() {
        let err = elves(b"!<arch>", &Limits::default()).unwrap_err();
        assert!(matches!(err, DebError::Ar { offset: 0, .. }), "{err}");
        let err = elves(b"!<arch>\n", &Limits::default()).unwrap_err();
        assert!(matches!(err, DebError::NoData), "{err}");
        let mut bad = deb_of("data.tar", &tar_of(&[]));
        bad[8 + 48] = b'x'; // size field of the first member
        let err = elves(&bad, &Limits::default()).unwrap_err();
        assert!(matches!(err, DebError::Ar { offset: 8, .. }), "{err}");
        assert!(err.to_string().contains("invalid size"), "{err}");
        // A tar header with a wrong checksum.
        let mut tar = tar_of(&[("usr/bin/a", b"\x7fELFxx")]);
        tar[0] ^= 1;
        let err = elves(&deb_of("data.tar", &tar), &Limits::default()).unwrap_err();
        assert!(matches!(err, DebError::Tar { offset: 0, .. }), "{err}");
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    #[test]
    fn truncation_is_named() {
        let tar = tar_of(&[("usr/bin/a", &elf64_with_segment(&[1; 5000]))]);
        let xz = {
            let mut e = xz2::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        for data in [&tar, &xz] {
            let name = if data == &tar { "data.tar" } else { "data.tar.xz" };
            let deb = deb_of(name, data);
            for cut in [deb.len() - 1, deb.len() - data.len() / 2, deb.len() - data.len() + 3] {
                let err = elves(&deb[..cut], &Limits::default()).unwrap_err();
                match err {
                    DebError::Truncated { ref member, declared, offset, .. } => {
                        assert_eq!((member.as_str(), declared, offset), (name, data.len() as u64, cut as u64), "{err}")
                    }
                    other => panic!("{name} cut at {cut}: {other}"),
                }
            }
        }
    }

    #[test]
    fn limits_are_precise() {
        let elf = elf64_with_segment(&[0; 3000]);
        let tar = tar_of(&[("usr/bin/a", &elf), ("usr/bin/b", &elf), ("usr/bin/c", b"text")]);
        let deb = deb_of("data.tar", &tar);
        let small = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            l
        };
        let limit_of = |l: &Limits| match elves(&deb, l) {
            Err(DebError::Limit { limit, value, max, at }) => (limit, value, max, at),
            other => panic!("{other:?}"),
        };
        let (limit, value, max, at) = limit_of(&small(|l| l.max_entries = 2));
        assert_eq!((limit, value, max), (Limit::Entries, 3, 2));
        assert!(at.contains("member `data.tar`"), "{at}");
        let (limit, value, max, at) = limit_of(&small(|l| l.max_file_size = 4000));
        assert_eq!((limit, value, max), (Limit::FileSize, elf.len() as u64, 4000));
        assert!(at.ends_with("entry `usr/bin/a`"), "{at}");
        let (limit, _, max, _) = limit_of(&small(|l| l.max_decompressed = 6000));
        assert_eq!((limit, max), (Limit::Decompressed, 6000));
        let (limit, value, _, _) = limit_of(&small(|l| l.max_path_len = 5));
        assert_eq!((limit, value), (Limit::PathLength, 9));
        let (limit, value, _, at) = limit_of(&small(|l| l.max_member_size = 10));
        assert_eq!((limit, value, at.as_str()), (Limit::MemberSize, tar.len() as u64, "byte 134, member `data.tar`"));
    }

    #[test]
    fn metadata_records_are_capped_before_reading() {
        // A GNU long-name record that claims 1 GiB, with no data behind it.
        let mut tar = header("././@LongLink", tar::EntryType::GNULongName, 1 << 30).as_bytes().to_vec();
        tar.extend_from_slice(&[0; 1024]);
        let err = elves(&deb_of("data.tar", &tar), &Limits::default()).unwrap_err();
        assert!(matches!(err, DebError::Limit { limit: Limit::Metadata, value: 1073741824, .. }), "{err}");
        // A long name within the cap names the next entry.
        let long = format!("usr/bin/{}", "x".repeat(200));
        let mut b = tar::Builder::new(Vec::new());
        let elf = elf64_with_segment(b"");
        let mut h = tar::Header::new_gnu();
        h.set_size(elf.len() as u64);
        h.set_mode(0o755);
        b.append_data(&mut h, &long, &elf[..]).unwrap();
        let (_, seen) = elves(&deb_of("data.tar", &b.into_inner().unwrap()), &Limits::default()).unwrap();
        assert_eq!(seen, vec![(long, elf.len())]);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let _ = elves(&bytes, &Limits::default());
            let mut deb = b"!<arch>\n".to_vec();
            deb.extend_from_slice(&bytes);
            let _ = elves(&deb, &Limits::default());
        }

        #[test]
        fn mutated_debs_never_panic(pos in 0usize..4000, byte in proptest::num::u8::ANY, cut in 0usize..4000) {
            let tar = tar_of(&[("usr/bin/a", &elf64_with_segment(b"\xff Go buildinf:")), ("usr/bin/b", b"\x7fELF")]);
            let mut deb = deb_of("data.tar", &tar);
            if let Some(b) = deb.get_mut(pos) {
                *b = byte;
            }
            deb.truncate(cut.max(8));
            let _ = for_each_elf(&deb[..], &Limits::default(), |e| { let _ = crate::embedded::inspect_elf(e.bytes); });
        }
    }
}

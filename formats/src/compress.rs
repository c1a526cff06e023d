//! Transparent decompression by magic bytes (`.gz`, `.xz`, plain), with a cap on the number of
//! decompressed bytes so a small malicious file cannot expand without bound.
//!
//! gzip goes through [`flate2::bufread::MultiGzDecoder`] and xz through
//! a concatenated xz stream decoder with a memory limit, so members/streams (as written
//! by `pigz`, `pixz` or `cat a.gz b.gz`) are read to the end.

use std::io::{BufRead, BufReader, Cursor, Read};

/// Default cap on decompressed bytes for one archive index (1 GiB: the largest Debian index,
/// sid's amd64 `Packages`, is about 60 MiB).
pub const DEFAULT_MAX_DECOMPRESSED: u64 = 1024 * 1024 * 1024;

/// The most memory the xz decoder may use (its dictionary, mostly). `xz -9` needs 65 MiB to
/// decode; without a limit an 80-byte header asking for a 1.5 GiB dictionary makes the
/// decoder allocate it.
pub const XZ_MEMORY_LIMIT: u64 = 128 * 1024 * 1024;

/// The compression detected from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    Plain,
    /// gzip (`1f 8b`).
    Gzip,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];

/// Detect the compression from the first bytes of a stream (six are enough).
pub fn detect(prefix: &[u8]) -> Compression {
    if prefix.starts_with(XZ_MAGIC) {
        Compression::Xz
    } else if prefix.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else {
        Compression::Plain
    }
}

/// Detect the compression of `reader` and return a reader of the decompressed bytes that fails
/// with an `io::Error` of kind `InvalidData` once more than `max` bytes come out.
pub fn open<'a, R: BufRead + 'a>(
    mut reader: R,
    max: u64,
) -> std::io::Result<(Compression, Box<dyn BufRead + 'a>)> {
    // Read (consume) up to six bytes, then glue them back in front of the rest: a BufRead may
    // hand out fewer bytes than that in its first buffer (pipes, sockets).
    let mut prefix = [0u8; 6];
    let mut got = 0;
    while got < prefix.len() {
        match reader.read(&mut prefix[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = prefix.get(..got).unwrap_or(&[]);
    let kind = detect(head);
    let whole = Cursor::new(head.to_vec()).chain(reader);
    let out: Box<dyn BufRead + 'a> = match kind {
        Compression::Plain => Box::new(BufReader::new(Capped::new(whole, max))),
        Compression::Gzip => {
            Box::new(BufReader::new(Capped::new(flate2::bufread::MultiGzDecoder::new(whole), max)))
        }
        Compression::Xz => {
            let stream = xz2::stream::Stream::new_stream_decoder(XZ_MEMORY_LIMIT, xz2::stream::CONCATENATED)
                .map_err(|e| std::io::Error::other(format!("cannot start the xz decoder: {e}")))?;
            Box::new(BufReader::new(Capped::new(MemLimited(xz2::bufread::XzDecoder::new_stream(whole, stream)), max)))
        }
    };
    Ok((kind, out))
}

/// The xz decoder's "memory usage limit reached" as a clear `InvalidData` error.
struct MemLimited<R>(R);

impl<R: Read> Read for MemLimited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            if e.to_string().contains("memory limit") || e.to_string().contains("memory usage limit") {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the xz data needs more than {} MiB of memory to decode (refused)", XZ_MEMORY_LIMIT >> 20),
                )
            } else {
                e
            }
        })
    }
}

/// Decompress a whole in-memory buffer (for small inputs such as one buildinfo), capped at `max`.
pub fn decompress_all(input: &[u8], max: u64) -> std::io::Result<Vec<u8>> {
    let (_, mut r) = open(input, max)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    Ok(out)
}

/// A reader that errors (`InvalidData`) once more than `max` bytes have come through.
struct Capped<R> {
    inner: R,
    max: u64,
    total: u64,
}

impl<R> Capped<R> {
    fn new(inner: R, max: u64) -> Self {
        Capped { inner, max, total: 0 }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.total > self.max {
            return Err(cap_error(self.max));
        }
        // Ask for at most one byte beyond the cap: enough to notice it is exceeded.
        let allowed = (self.max - self.total).saturating_add(1);
        let len = buf.len().min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let n = self.inner.read(buf.get_mut(..len).unwrap_or_default())?;
        self.total += n as u64;
        if self.total > self.max {
            return Err(cap_error(self.max));
        }
        Ok(n)
    }
}

fn cap_error(max: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("decompressed data exceeds the limit of {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn detects_and_decompresses() {
        let data = b"Package: foo\nVersion: 1\n".repeat(100);
        for (bytes, kind) in [(data.clone(), Compression::Plain), (gz(&data), Compression::Gzip), (xz(&data), Compression::Xz)] {
            let (k, mut r) = open(&bytes[..], DEFAULT_MAX_DECOMPRESSED).unwrap();
            assert_eq!(k, kind);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
        assert_eq!(decompress_all(b"", 10).unwrap(), b"");
        assert_eq!(decompress_all(b"ab", 10).unwrap(), b"ab");
    }

    #[test]
    fn multi_member_and_multi_stream() {
        let mut two = gz(b"one\n");
        two.extend(gz(b"two\n"));
        assert_eq!(decompress_all(&two, 100).unwrap(), b"one\ntwo\n");
        let mut two = xz(b"one\n");
        two.extend(xz(b"two\n"));
        assert_eq!(decompress_all(&two, 100).unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn cap_is_invalid_data() {
        let data = vec![b'a'; 10_000];
        for bytes in [data.clone(), gz(&data), xz(&data)] {
            assert_eq!(decompress_all(&bytes, 10_000).unwrap().len(), 10_000);
            let err = decompress_all(&bytes, 9_999).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        }
    }

    /// A tiny xz file whose header asks for a 1.5 GiB dictionary is refused before the decoder
    /// allocates it.
    #[test]
    fn xz_decoder_memory_is_limited() {
        let mut opts = xz2::stream::LzmaOptions::new_preset(6).unwrap();
        opts.dict_size(1536 << 20);
        let mut filters = xz2::stream::Filters::new();
        filters.lzma2(&opts);
        let stream = xz2::stream::Stream::new_stream_encoder(&filters, xz2::stream::Check::Crc64).unwrap();
        let mut e = xz2::write::XzEncoder::new_stream(Vec::new(), stream);
        e.write_all(&b"Package: a\n\n".repeat(10)).unwrap();
        let bytes = e.finish().unwrap();
        assert!(bytes.len() < 200, "{}", bytes.len());
        let err = decompress_all(&bytes, DEFAULT_MAX_DECOMPRESSED).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains("memory"), "{err}");
    }

    #[test]
    fn truncated_gzip_is_error() {
        let bytes = gz(&vec![b'a'; 10_000]);
        assert!(decompress_all(&bytes[..bytes.len() / 2], 100_000).is_err());
    }

    /// A reader that hands out one byte per call: detection must still see the whole magic.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn detects_across_short_reads() {
        let bytes = xz(b"hello\n");
        let reader = BufReader::with_capacity(1, Trickle(&bytes));
        let (kind, mut r) = open(reader, 100).unwrap();
        assert_eq!(kind, Compression::Xz);
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello\n");
    }
}

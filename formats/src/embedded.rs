//! What an ELF binary says about how it was built: Go build information (toolchain version and,
//! where present, module versions), Rust's cargo-auditable `.dep-v0` section, and the rustc
//! version Debian's Rust binaries carry in their standard-library source paths.
//!
//! The ELF file is parsed with the `object` crate (read-only, zero-copy, made for untrusted
//! input). Absent information is `None` / [`DepV0::Absent`], never an error; malformed
//! information is reported in [`ElfInfo::notes`] and the rest is still read.
//!
//! Go's layout (as `debug/buildinfo` reads it): a 32-byte header starting with
//! `\xff Go buildinf:` at a 16-byte aligned position, in the `.go.buildinfo` section or else at
//! the start of the first writable, non-executable `PT_LOAD` segment. Byte 14 is the pointer
//! size, byte 15 flags: bit 1 set (Go ≥ 1.18) means the version and module strings follow the
//! header inline, each prefixed by its length as an unsigned varint; otherwise (Go < 1.18) the
//! header holds two pointers (byte order by bit 0) to Go string headers (pointer, length) for
//! the version and the module information. The module information is framed by 16 sentinel
//! bytes at each end.

use std::io::Read;

use object::{Object, ObjectSection, ObjectSegment, SegmentFlags};

/// Largest Go version string accepted (bytes).
const MAX_GO_VERSION: u64 = 1024;
/// Largest Go module information accepted (bytes).
const MAX_GO_MODINFO: u64 = 16 << 20;
/// Largest decompressed `.dep-v0` section accepted (bytes).
pub const MAX_DEP_V0: u64 = 16 << 20;
/// How far into the data segment the Go build info header is looked for.
const GO_SEARCH_WINDOW: usize = 32 << 20;

const GO_MAGIC: &[u8; 14] = b"\xff Go buildinf:";

/// Everything read from one ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ElfInfo {
    /// Go build information, if this is a Go binary.
    pub go: Option<GoBuildInfo>,
    /// Rust information.
    pub rust: RustInfo,
    /// Problems met while reading (malformed sections); the rest of the file is still read.
    pub notes: Vec<String>,
}

/// Go build information (`go version -m`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct GoBuildInfo {
    /// The toolchain version (`go1.19.5`, possibly followed by experiment tags).
    pub version: String,
    /// `inline` (Go ≥ 1.18) or `pointer` (older).
    pub layout: &'static str,
    /// The main package's import path (`path` line), if recorded.
    pub path: Option<String>,
    /// The main module (`mod` line), if built in module mode.
    pub main: Option<GoModule>,
    /// Dependencies (`dep` lines), with their replacements.
    pub deps: Vec<GoModule>,
    /// Build settings (`build` lines) as `key=value`.
    pub settings: Vec<(String, String)>,
}

/// One Go module line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GoModule {
    /// Module path.
    pub path: String,
    /// Version (`v1.2.3`, `(devel)`).
    pub version: String,
    /// `h1:` checksum, if recorded.
    pub sum: Option<String>,
    /// The replacement (`=>` line), if any.
    pub replace: Option<Box<GoModule>>,
}

/// Rust information.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct RustInfo {
    /// The cargo-auditable dependency list.
    pub dep_v0: DepV0,
    /// The rustc version, from `/usr/src/rustc-X.Y.Z/` standard-library paths (Debian's rustc)
    /// or a `.comment` `rustc version X.Y.Z` entry.
    pub rustc: Option<String>,
}

/// The `.dep-v0` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(tag = "state", content = "packages", rename_all = "kebab-case")]
pub enum DepV0 {
    /// No `.dep-v0` section: the binary was not built with cargo-auditable (the usual case in
    /// Debian).
    #[default]
    Absent,
    /// The packages it lists.
    Present(Vec<CargoPackage>),
    /// The section is there but unreadable (the reason is in [`ElfInfo::notes`]).
    Invalid,
}

/// One package of a `.dep-v0` list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CargoPackage {
    /// Crate name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `crates.io`, `local`, `git`, `registry`, ...
    #[serde(default)]
    pub source: Option<String>,
    /// `build` for build-time-only dependencies; absent means runtime.
    #[serde(default)]
    pub kind: Option<String>,
    /// The package the binary was built from.
    #[serde(default)]
    pub root: bool,
}

/// Why an ELF file could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a readable ELF file: {0}")]
pub struct ElfError(pub String);

/// Read what `bytes` (a whole ELF file) says about its build.
pub fn inspect_elf(bytes: &[u8]) -> Result<ElfInfo, ElfError> {
    let file = object::File::parse(bytes).map_err(|e| ElfError(e.to_string()))?;
    let mut info = ElfInfo::default();
    match go_build_info(&file) {
        Ok(go) => info.go = go,
        Err(e) => info.notes.push(format!("Go build info: {e}")),
    }
    if let Some(section) = file.section_by_name(".dep-v0") {
        match section.data().map_err(|e| e.to_string()).and_then(parse_dep_v0) {
            Ok(packages) => info.rust.dep_v0 = DepV0::Present(packages),
            Err(e) => {
                info.rust.dep_v0 = DepV0::Invalid;
                info.notes.push(format!("section .dep-v0: {e}"));
            }
        }
    }
    info.rust.rustc = rustc_version(&file, bytes);
    Ok(info)
}

/// Decompress (zlib) and parse a `.dep-v0` section's content.
pub fn parse_dep_v0(compressed: &[u8]) -> Result<Vec<CargoPackage>, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_DEP_V0 + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("zlib: {e}"))?;
    if json.len() as u64 > MAX_DEP_V0 {
        return Err(format!("decompressed size exceeds the limit of {MAX_DEP_V0} bytes"));
    }
    #[derive(serde::Deserialize)]
    struct VersionInfo {
        packages: Vec<CargoPackage>,
    }
    let parsed: VersionInfo = serde_json::from_slice(&json).map_err(|e| format!("JSON: {e}"))?;
    Ok(parsed.packages)
}

/// The Go build information of `file`, if it has any.
fn go_build_info(file: &object::File<'_>) -> Result<Option<GoBuildInfo>, String> {
    let data = match file.section_by_name(".go.buildinfo") {
        Some(section) => section.data().map_err(|e| format!("section .go.buildinfo: {e}"))?,
        None => {
            let segment = file.segments().find(|s| match s.flags() {
                SegmentFlags::Elf { p_flags } => p_flags & (object::elf::PF_X | object::elf::PF_W) == object::elf::PF_W,
                _ => false,
            });
            match segment {
                Some(s) => s.data().map_err(|e| format!("data segment: {e}"))?,
                None => return Ok(None),
            }
        }
    };
    let window = data.get(..GO_SEARCH_WINDOW.min(data.len())).unwrap_or_default();
    let Some(at) = find_aligned(window, GO_MAGIC, 16) else {
        return Ok(None);
    };
    let header = window.get(at..at + 32).ok_or("header truncated")?;
    let ptr_size = usize::from(header.get(14).copied().unwrap_or(0));
    let flags = header.get(15).copied().unwrap_or(0);
    let (version, modinfo, layout) = if flags & 2 != 0 {
        let mut rest = window.get(at + 32..).unwrap_or_default();
        let version = read_varint_string(&mut rest, MAX_GO_VERSION).map_err(|e| format!("version: {e}"))?;
        let modinfo = read_varint_string(&mut rest, MAX_GO_MODINFO).map_err(|e| format!("module info: {e}"))?;
        (version, modinfo, "inline")
    } else {
        if ptr_size != 4 && ptr_size != 8 {
            return Err(format!("pointer size {ptr_size} is neither 4 nor 8"));
        }
        let big_endian = flags & 1 != 0;
        let version_ptr = read_uint(header.get(16..16 + ptr_size), big_endian).ok_or("header truncated")?;
        let mod_ptr = read_uint(header.get(16 + ptr_size..16 + 2 * ptr_size), big_endian).ok_or("header truncated")?;
        let version = read_go_string(file, version_ptr, ptr_size, big_endian, MAX_GO_VERSION)
            .map_err(|e| format!("version: {e}"))?;
        let modinfo =
            read_go_string(file, mod_ptr, ptr_size, big_endian, MAX_GO_MODINFO).map_err(|e| format!("module info: {e}"))?;
        (version, modinfo, "pointer")
    };
    let version = std::str::from_utf8(version).map_err(|_| "version is not UTF-8")?;
    if version.is_empty() {
        return Err("empty version".into());
    }
    let mut info = GoBuildInfo { version: version.to_owned(), layout, ..GoBuildInfo::default() };
    // Framing: 16 sentinel bytes at each end, the last line ending just before the end one.
    let len = modinfo.len();
    if len >= 33 && modinfo.get(len - 17) == Some(&b'\n') {
        let text = modinfo.get(16..len - 16).unwrap_or_default();
        parse_modinfo(&String::from_utf8_lossy(text), &mut info);
    }
    Ok(Some(info))
}

/// The first occurrence of `needle` in `haystack` at a multiple of `align`.
fn find_aligned(haystack: &[u8], needle: &[u8], align: usize) -> Option<usize> {
    memchr::memmem::find_iter(haystack, needle).find(|i| i % align == 0)
}

fn read_uint(bytes: Option<&[u8]>, big_endian: bool) -> Option<u64> {
    let bytes = bytes?;
    let mut value = 0u64;
    let mut push = |b: &u8| value = (value << 8) | u64::from(*b);
    if big_endian { bytes.iter().for_each(&mut push) } else { bytes.iter().rev().for_each(&mut push) }
    Some(value)
}

/// A varint-length-prefixed string, advancing `rest`.
fn read_varint_string<'a>(rest: &mut &'a [u8], max: u64) -> Result<&'a [u8], String> {
    let mut len = 0u64;
    let mut shift = 0;
    loop {
        let (&b, tail) = rest.split_first().ok_or("truncated length")?;
        *rest = tail;
        if shift > 63 {
            return Err("length varint too long".into());
        }
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    if len > max {
        return Err(format!("length {len} exceeds the limit of {max}"));
    }
    let len = len as usize;
    let s = rest.get(..len).ok_or_else(|| format!("length {len} runs past the end of the data"))?;
    *rest = rest.get(len..).unwrap_or_default();
    Ok(s)
}

/// A Go string (header at `address`: data pointer, length) from the file's loaded segments.
fn read_go_string<'d>(
    file: &object::File<'d>,
    address: u64,
    ptr_size: usize,
    big_endian: bool,
    max: u64,
) -> Result<&'d [u8], String> {
    let header = read_at(file, address, 2 * ptr_size as u64)?;
    let data = read_uint(header.get(..ptr_size), big_endian).ok_or("string header truncated")?;
    let len = read_uint(header.get(ptr_size..2 * ptr_size), big_endian).ok_or("string header truncated")?;
    if len > max {
        return Err(format!("length {len} exceeds the limit of {max}"));
    }
    read_at(file, data, len)
}

/// `size` bytes at virtual `address`, from the segment that maps them from the file.
fn read_at<'d>(file: &object::File<'d>, address: u64, size: u64) -> Result<&'d [u8], String> {
    for segment in file.segments() {
        if let Ok(Some(bytes)) = segment.data_range(address, size) {
            return Ok(bytes);
        }
    }
    Err(format!("address {address:#x} (+{size}) is not in the file"))
}

/// Parse Go module information lines into `info`.
fn parse_modinfo(text: &str, info: &mut GoBuildInfo) {
    let module = |fields: &[&str]| -> Option<GoModule> {
        let path = fields.first().filter(|p| !p.is_empty())?;
        Some(GoModule {
            path: (*path).to_owned(),
            version: fields.get(1).copied().unwrap_or_default().to_owned(),
            sum: fields.get(2).filter(|s| !s.is_empty()).map(|s| (*s).to_owned()),
            replace: None,
        })
    };
    for line in text.lines() {
        let mut fields = line.split('\t');
        let kind = fields.next().unwrap_or_default();
        let rest: Vec<&str> = fields.collect();
        match kind {
            "path" => info.path = rest.first().map(|p| (*p).to_owned()),
            "mod" => info.main = module(&rest),
            "dep" => info.deps.extend(module(&rest)),
            "=>" => {
                let replacement = module(&rest).map(Box::new);
                if let Some(last) = info.deps.last_mut().or(info.main.as_mut()) {
                    last.replace = replacement;
                }
            }
            "build" => {
                let setting = rest.join("\t");
                let (key, value) = setting.split_once('=').unwrap_or((setting.as_str(), ""));
                info.settings.push((key.to_owned(), value.trim_matches('"').to_owned()));
            }
            _ => {}
        }
    }
}

/// The rustc version the binary names, if any.
fn rustc_version(file: &object::File<'_>, bytes: &[u8]) -> Option<String> {
    if let Some(data) = file.section_by_name(".comment").and_then(|s| s.data().ok()) {
        for entry in data.split(|&b| b == 0) {
            if let Some(rest) = entry.strip_prefix(b"rustc version ") {
                let version: Vec<u8> = rest.iter().copied().take_while(|b| !b.is_ascii_whitespace()).collect();
                if !version.is_empty() {
                    return Some(String::from_utf8_lossy(&version).into_owned());
                }
            }
        }
    }
    const PREFIX: &[u8] = b"/usr/src/rustc-";
    for at in memchr::memmem::find_iter(bytes, PREFIX) {
        let rest = bytes.get(at + PREFIX.len()..).unwrap_or_default();
        let version: Vec<u8> = rest.iter().copied().take_while(|b| b.is_ascii_digit() || *b == b'.').take(32).collect();
        if !version.is_empty() && rest.get(version.len()) == Some(&b'/') {
            return Some(String::from_utf8_lossy(&version).into_owned());
        }
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    const VADDR: u64 = 0x40_0000;
    const DATA_OFF: u64 = 0x1000;

    /// A minimal little-endian ELF64 file: one writable `PT_LOAD` segment mapping `data` (file
    /// offset 0x1000) at 0x401000, no section headers, as Go's `debug/buildinfo` would scan it.
    pub(crate) fn elf64_with_segment(data: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; DATA_OFF as usize];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1; // version
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        f[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        f[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        f[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let ph = &mut f[64..120];
        ph[0..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        ph[4..8].copy_from_slice(&6u32.to_le_bytes()); // PF_R | PF_W
        ph[8..16].copy_from_slice(&DATA_OFF.to_le_bytes());
        ph[16..24].copy_from_slice(&(VADDR + DATA_OFF).to_le_bytes());
        ph[24..32].copy_from_slice(&(VADDR + DATA_OFF).to_le_bytes());
        ph[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
        ph[40..48].copy_from_slice(&(data.len() as u64).to_le_bytes());
        ph[48..56].copy_from_slice(&0x1000u64.to_le_bytes());
        f.extend_from_slice(data);
        f
    }

    fn framed(modinfo: &str) -> Vec<u8> {
        let mut m = vec![0x30u8; 16];
        m.extend_from_slice(modinfo.as_bytes());
        m.extend_from_slice(&[0xf9u8; 16]);
        m
    }

    const MODINFO: &str = "path\texample.org/cmd/tool\nmod\texample.org/tool\t(devel)\t\n\
        dep\tgithub.com/miekg/dns\tv1.1.50\th1:abc=\n\
        dep\tgolang.org/x/net\tv0.4.0\th1:def=\n=>\tgolang.org/x/net\tv0.5.0\th1:ghi=\n\
        dep\tgithub.com/golang/groupcache\tv0.0.0-20200121045136-8c9f03a8e57e\th1:x=\n\
        build\t-compiler=gc\nbuild\tCGO_ENABLED=1\n";

    fn check_modinfo(go: &GoBuildInfo) {
        assert_eq!(go.path.as_deref(), Some("example.org/cmd/tool"));
        assert_eq!(go.main.as_ref().map(|m| m.version.as_str()), Some("(devel)"));
        assert_eq!(go.deps.len(), 3);
        assert_eq!(go.deps[0].path, "github.com/miekg/dns");
        assert_eq!(go.deps[0].version, "v1.1.50");
        assert_eq!(go.deps[0].sum.as_deref(), Some("h1:abc="));
        assert_eq!(go.deps[1].replace.as_ref().map(|r| r.version.as_str()), Some("v0.5.0"));
        assert_eq!(go.settings[1], ("CGO_ENABLED".to_owned(), "1".to_owned()));
    }

    #[test]
    fn go_inline_layout() {
        let mut data = vec![0u8; 48]; // the header is found at a 16-byte aligned position
        data.extend_from_slice(GO_MAGIC);
        data.extend_from_slice(&[8, 2]);
        data.extend_from_slice(&[0u8; 16]);
        let modinfo = framed(MODINFO);
        data.push(8);
        data.extend_from_slice(b"go1.19.5");
        // Varint length of more than 127 bytes: two bytes.
        assert!(modinfo.len() > 127 && modinfo.len() < 16384);
        data.push((modinfo.len() as u8 & 0x7f) | 0x80);
        data.push((modinfo.len() >> 7) as u8);
        data.extend_from_slice(&modinfo);
        let info = inspect_elf(&elf64_with_segment(&data)).unwrap();
        let go = info.go.expect("go build info");
        assert_eq!(go.version, "go1.19.5");
        assert_eq!(go.layout, "inline");
        check_modinfo(&go);
        assert!(info.notes.is_empty(), "{:?}", info.notes);
    }

    #[test]
    fn go_pointer_layout() {
        // Header at 0; version string header at 0x40, module string header at 0x50; strings at
        // 0x100 and 0x200. Addresses are virtual: segment base 0x401000.
        let base = VADDR + DATA_OFF;
        let modinfo = framed(MODINFO);
        let mut data = vec![0u8; 0x200 + modinfo.len()];
        data[..14].copy_from_slice(GO_MAGIC);
        data[14] = 8;
        data[15] = 0; // pointer layout, little-endian
        data[16..24].copy_from_slice(&(base + 0x40).to_le_bytes());
        data[24..32].copy_from_slice(&(base + 0x50).to_le_bytes());
        data[0x40..0x48].copy_from_slice(&(base + 0x100).to_le_bytes());
        data[0x48..0x50].copy_from_slice(&8u64.to_le_bytes());
        data[0x50..0x58].copy_from_slice(&(base + 0x200).to_le_bytes());
        data[0x58..0x60].copy_from_slice(&(modinfo.len() as u64).to_le_bytes());
        data[0x100..0x108].copy_from_slice(b"go1.16.9");
        data[0x200..].copy_from_slice(&modinfo);
        let info = inspect_elf(&elf64_with_segment(&data)).unwrap();
        let go = info.go.expect("go build info");
        assert_eq!((go.version.as_str(), go.layout), ("go1.16.9", "pointer"));
        check_modinfo(&go);
        // A pointer outside every segment is a note, not a failure.
        data[16..24].copy_from_slice(&0xdead_0000u64.to_le_bytes());
        let info = inspect_elf(&elf64_with_segment(&data)).unwrap();
        assert!(info.go.is_none());
        assert!(info.notes[0].contains("is not in the file"), "{:?}", info.notes);
    }

    #[test]
    fn unaligned_magic_and_absent_info() {
        let mut data = vec![0u8; 3];
        data.extend_from_slice(GO_MAGIC);
        data.extend_from_slice(&[8, 2, 0, 0]);
        let info = inspect_elf(&elf64_with_segment(&data)).unwrap();
        assert_eq!(info, ElfInfo::default());
        assert!(inspect_elf(b"not an elf").is_err());
    }

    #[test]
    fn dep_v0_parse_and_limits() {
        let json = br#"{"packages":[{"name":"hello","version":"0.1.0","source":"local","dependencies":[1],"root":true},
            {"name":"memchr","version":"2.7.4","source":"crates.io"},{"name":"cc","version":"1.2.0","source":"crates.io","kind":"build"}]}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap();
        let packages = parse_dep_v0(&z.finish().unwrap()).unwrap();
        assert_eq!(packages.len(), 3);
        assert!(packages[0].root);
        assert_eq!((packages[1].name.as_str(), packages[1].version.as_str()), ("memchr", "2.7.4"));
        assert_eq!(packages[2].kind.as_deref(), Some("build"));
        assert!(parse_dep_v0(b"garbage").unwrap_err().starts_with("zlib"));
        // A zlib bomb stops at the cap.
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..(MAX_DEP_V0 / (1 << 20) + 1) {
            z.write_all(&vec![b' '; 1 << 20]).unwrap();
        }
        assert!(parse_dep_v0(&z.finish().unwrap()).unwrap_err().contains("exceeds the limit"));
    }

    #[test]
    fn rustc_from_debian_std_paths() {
        let mut data = b"xx/usr/src/rustc-1.63.0/library/core/src/fmt/mod.rs".to_vec();
        data.extend_from_slice(b"/usr/src/rustc-9.9.9");
        let info = inspect_elf(&elf64_with_segment(&data)).unwrap();
        assert_eq!(info.rust.rustc.as_deref(), Some("1.63.0"));
        assert_eq!(info.rust.dep_v0, DepV0::Absent);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let _ = inspect_elf(&bytes);
            let _ = parse_dep_v0(&bytes);
            let mut elf = elf64_with_segment(&[]);
            elf.truncate(120);
            elf.extend_from_slice(&bytes);
            let _ = inspect_elf(&elf);
        }

        #[test]
        fn mutated_go_header_never_panics(pos in 0usize..64, byte in proptest::num::u8::ANY, ptr in proptest::num::u64::ANY) {
            let mut data = vec![0u8; 0x80];
            data[..14].copy_from_slice(GO_MAGIC);
            data[14] = 8;
            data[16..24].copy_from_slice(&ptr.to_le_bytes());
            data[24..32].copy_from_slice(&(VADDR + DATA_OFF).to_le_bytes());
            data[pos] = byte;
            let _ = inspect_elf(&elf64_with_segment(&data));
        }
    }
}

//! Domain types shared by the storage layer, the query layer and the service.
//!
//! These are the coordinator's own vocabulary: no SQL rows, no protobuf messages. Conversions
//! to and from the wire live in `service::convert`; to and from rows in `storage::*`.

use debcover_formats::{Buildinfo, PackagesEntry, SourcesEntry};

/// A parsed buildinfo ready to store: its identity, where it came from, the parsed fields and
/// the exact bytes (compressed) to serve back.
#[derive(Debug, Clone)]
pub struct NewBuild {
    /// SHA-256 (lower-case hex) of the exact bytes ingested: the build's identity.
    pub sha256: String,
    /// File name or URL the client read it from.
    pub origin: String,
    /// The parsed buildinfo. Its `installed_build_depends` is left empty when prepared by
    /// [`crate::ingest::Preparer`]: the entries are in `dep_keys`.
    pub info: Buildinfo,
    /// The ingested bytes, zstd-compressed.
    pub raw_zstd: Vec<u8>,
    /// Length of the uncompressed bytes.
    pub raw_size: u64,
    /// One interning key per Installed-Build-Depends entry, in file order (see [`dep_key`]).
    /// Computed on the parse threads so that the single database writer never formats versions;
    /// equal keys of one batch share one allocation (see [`crate::ingest::Preparer`]).
    pub dep_keys: Vec<DepKey>,
    /// `builds.id` of the build this one reproduces, when it was produced by a verification
    /// rebuild. Such a build is never linked to archive binaries (the archive's bytes come
    /// from the original build), so campaign analysis never takes it for an upload.
    pub rebuild_of: Option<i64>,
    /// Who signed it, when its OpenPGP signature verified with a configured keyring
    /// ([`crate::signature::Check::signer`]).
    pub signer: Option<String>,
}

/// An interning key as held by [`NewBuild::dep_keys`]: shared, immutable text.
pub type DepKey = std::sync::Arc<str>;

/// The interning key of an installed package: name, architecture qualifier (empty when none)
/// and version text, joined by U+001F (a character no package name or version contains).
pub fn dep_key(name: &str, arch: &str, version: &str) -> String {
    let mut k = String::with_capacity(name.len() + arch.len() + version.len() + 2);
    k.push_str(name);
    k.push('\u{1f}');
    k.push_str(arch);
    k.push('\u{1f}');
    k.push_str(version);
    k
}

/// Split a key made by [`dep_key`] into name, arch and version.
pub fn split_dep_key(key: &str) -> (&str, &str, &str) {
    let mut it = key.splitn(3, '\u{1f}');
    (it.next().unwrap_or_default(), it.next().unwrap_or_default(), it.next().unwrap_or_default())
}

/// What storing one [`NewBuild`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new build row was written.
    Inserted,
    /// A build with this SHA-256 existed already; nothing was written.
    AlreadyKnown,
}

/// One `Packages` index to apply to a suite.
#[derive(Debug, Clone)]
pub struct PackagesImport {
    /// Suite name (`bookworm`, `trixie-security`, ...).
    pub suite: String,
    /// The architecture this index is for: membership of `(suite, arch)` is replaced.
    pub arch: String,
    /// Path or URL the index came from.
    pub origin: String,
    /// SHA-256 of the index bytes as received.
    pub sha256: String,
    /// Every entry of the index.
    pub entries: Vec<PackagesEntry>,
}

/// One `Sources` index to apply to a suite.
#[derive(Debug, Clone)]
pub struct SourcesImport {
    /// Suite name.
    pub suite: String,
    /// Path or URL the index came from.
    pub origin: String,
    /// SHA-256 of the index bytes as received.
    pub sha256: String,
    /// Every entry of the index.
    pub entries: Vec<SourcesEntry>,
}

/// What applying an archive index changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Entries in the index.
    pub entries: u64,
    /// Members that joined the suite's scope.
    pub added: u64,
    /// Members that left it.
    pub removed: u64,
    /// Binaries of the index now linked to a stored build.
    pub linked: u64,
}

/// An interned installed package: `name[:arch] (= version)` with its storage id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkgVer {
    /// Storage id.
    pub id: i64,
    /// Binary package name.
    pub name: String,
    /// Architecture qualifier, empty when none.
    pub arch: String,
    /// Version text as written in the buildinfo.
    pub version: String,
}

/// A stored build, without its dependency list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRecord {
    /// Storage id.
    pub id: i64,
    /// SHA-256 of the buildinfo text.
    pub sha256: String,
    /// Source package.
    pub source: String,
    /// Source version.
    pub source_version: String,
    /// Binary version.
    pub version: String,
    /// The Architecture field's tokens.
    pub architectures: Vec<String>,
    /// Concrete architecture, `all` or `source`.
    pub host_arch: String,
    /// Build-Date as written.
    pub build_date: Option<String>,
    /// Build-Origin.
    pub build_origin: Option<String>,
    /// Number of Installed-Build-Depends entries.
    pub ibd_count: u32,
    /// Whether the ingested file was clearsigned.
    pub signed: bool,
    /// The verified signer (`FINGERPRINT (user id)`), when a configured keyring holds its key.
    pub signer: Option<String>,
    /// File or URL it was first ingested from.
    pub origin: String,
}

/// A file a build produced, with the suites that ship exactly those bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedFile {
    /// The build that produced it.
    pub build_id: i64,
    /// File name from the buildinfo's checksums.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, when the buildinfo lists Checksums-Sha256.
    pub sha256: Option<String>,
    /// `suite/arch` of every suite whose Packages index ships a binary with this SHA-256, or
    /// that is linked to this build by name.
    pub shipped_in: Vec<String>,
}

/// One binary shipped in one `suite/arch`, with what links it to a build: a row of the
/// shipping snapshot the query index keeps (see `crate::index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingRow {
    /// SHA-256 of the .deb.
    pub sha256: String,
    /// Binary package name.
    pub package: String,
    /// The build it is linked to, if any.
    pub build_id: Option<i64>,
    /// Whether that link is by name (source/version/arch) rather than identical bytes.
    pub by_name: bool,
    /// `suite/arch` shipping it.
    pub place: String,
}

/// Counts of what the store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Builds.
    pub builds: u64,
    /// Installed-Build-Depends entries over all builds.
    pub dependency_entries: u64,
    /// Distinct interned `(name, arch, version)`.
    pub interned_packages: u64,
    /// Binaries known from Packages indices.
    pub binaries: u64,
    /// Suites with any membership.
    pub suites: Vec<String>,
}

/// A binary package shipped in a suite, with what links it to a build and what it declares
/// to embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedBinary {
    /// Storage id of the binary.
    pub id: i64,
    /// Suite shipping it.
    pub suite: String,
    /// Architecture of the Packages index listing it.
    pub index_arch: String,
    /// Binary package name.
    pub package: String,
    /// Binary version (may carry `+bN`).
    pub version: String,
    /// The binary's own Architecture (`all` or a concrete one).
    pub architecture: String,
    /// Source package.
    pub source: String,
    /// Source version.
    pub source_version: String,
    /// SHA-256 of the .deb.
    pub sha256: String,
    /// The build it came from, when linked: `(id, buildinfo SHA-256, linked by identical bytes)`.
    pub build: Option<(i64, String, bool)>,
    /// Built-Using family declarations: `(field, source, normalised version)`.
    pub embeds: Vec<(String, String, String)>,
}

/// Which shipped binaries to fetch.
#[derive(Debug, Clone, Copy)]
pub enum ShippedBy<'a> {
    /// Every binary of the suite.
    All,
    /// Those linked to one of these builds.
    Builds(&'a [i64]),
    /// Those whose Built-Using family declarations name one of these (source or binary) names.
    Embedding(&'a [String]),
    /// Those of these source packages.
    Sources(&'a [String]),
}

/// A `built-with` answer as a client holds it: everything `BuiltWithResponse` carries, whichever
/// form it arrived in (`BuiltWith`, or `BuiltWithCompact` decoded by `service::compact`).
/// Absent texts are empty strings, as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuiltWithResult {
    /// The binary package names the question resolved to.
    pub resolved_packages: Vec<String>,
    /// The matching builds, in answer order.
    pub builds: Vec<ResultBuild>,
}

/// One build of a [`BuiltWithResult`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultBuild {
    /// The build.
    pub build: BuildSummary,
    /// The Installed-Build-Depends entries that matched the question.
    pub matched: Vec<Dependency>,
    /// The binaries it produced, with where each ships.
    pub binaries: Vec<BinarySummary>,
}

/// A build as answers describe it (no storage id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSummary {
    /// SHA-256 of the buildinfo text, lowercase hexadecimal.
    pub id: String,
    /// Source package.
    pub source: String,
    /// Source version.
    pub source_version: String,
    /// Binary version.
    pub version: String,
    /// The Architecture field's tokens.
    pub architectures: Vec<String>,
    /// Concrete architecture, `all` or `source`.
    pub host_architecture: String,
    /// Build-Date as written (empty: none).
    pub build_date: String,
    /// Build-Origin (empty: none).
    pub build_origin: String,
    /// Number of Installed-Build-Depends entries.
    pub installed_build_depends: u32,
    /// Whether the ingested file was clearsigned.
    pub signed: bool,
    /// The verified signer; empty when unsigned or unknown.
    pub signer: String,
    /// File or URL it was first ingested from.
    pub origin: String,
}

/// An installed package (an Installed-Build-Depends entry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependency {
    /// Binary package name.
    pub name: String,
    /// Architecture qualifier, empty when none.
    pub arch: String,
    /// Version.
    pub version: String,
}

/// A produced binary package as answers describe it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BinarySummary {
    /// Package name (from the file name).
    pub package: String,
    /// Version (from the file name: no epoch).
    pub version: String,
    /// Architecture (from the file name).
    pub architecture: String,
    /// File name as produced.
    pub filename: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hexadecimal as the buildinfo lists it (empty: none).
    pub sha256: String,
    /// `suite/arch` of every suite shipping exactly these bytes (or linked by name).
    pub shipped_in: Vec<String>,
}

/// Package, version and architecture of the file name `NAME_VERSION_ARCH.EXT` (missing parts
/// empty), and the extension (`None`: the name has no '.').
pub fn file_name_parts(name: &str) -> (&str, &str, &str, Option<&str>) {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) => (s, Some(e)),
        None => (name, None),
    };
    let mut parts = stem.splitn(3, '_');
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), ext)
}

//! `Packages` and `Sources` archive indices.
//!
//! Read a whole index with [`crate::paragraph::Paragraphs`] (after [`crate::compress::open`])
//! and parse each [`RawParagraph`] here, so memory stays bounded by one paragraph. Only the
//! fields debcover needs are modelled; the others are skipped unchecked.

use debversion::Version;

use crate::error::ParseError;
use crate::fields::{Field, is_hex_of_len, parse_size, split_paragraph};
use crate::paragraph::RawParagraph;
use crate::relation::{
    SourceRef, is_valid_arch, is_valid_package_name, parse_built_using, parse_name_version, parse_version,
};

/// One binary package paragraph of a `Packages` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesEntry {
    /// `Package`.
    pub package: String,
    /// `Version`.
    pub version: Version,
    /// `Architecture` (`amd64`, `all`, ...).
    pub architecture: String,
    /// Source package: the `Source` field's name, else the package name.
    pub source: String,
    /// Source version: from `Source: name (version)`, else `Version`.
    pub source_version: Version,
    /// `Filename` (pool path).
    pub filename: String,
    /// `Size` in bytes.
    pub size: u64,
    /// `SHA256`, lower-case hex.
    pub sha256: String,
    /// `Built-Using`, binNMU suffixes normalised.
    pub built_using: Vec<SourceRef>,
    /// `Static-Built-Using`, binNMU suffixes normalised.
    pub static_built_using: Vec<SourceRef>,
    /// `X-Cargo-Built-Using`, binNMU suffixes normalised.
    pub x_cargo_built_using: Vec<SourceRef>,
}

/// One source package paragraph of a `Sources` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesEntry {
    /// `Package` (the source name).
    pub package: String,
    /// `Version`.
    pub version: Version,
    /// `Binary`: the binary packages it builds (comma-separated in the file).
    pub binaries: Vec<String>,
    /// `Architecture` tokens (`any`, `all`, `linux-any`, ...).
    pub architecture: Vec<String>,
    /// `Directory` (pool path).
    pub directory: Option<String>,
    /// `Build-Depends`, raw relation text (whitespace-normalised to one line).
    pub build_depends: Option<String>,
    /// `Build-Depends-Indep`, raw.
    pub build_depends_indep: Option<String>,
    /// `Build-Depends-Arch`, raw.
    pub build_depends_arch: Option<String>,
    /// `Checksums-Sha256` entries: (sha256, size, file name).
    pub files: Vec<(String, u64, String)>,
}

impl PackagesEntry {
    /// Parse one paragraph of a `Packages` index. Required: Package, Version, Architecture,
    /// Filename, Size, SHA256. Line numbers in errors are lines of the whole file.
    pub fn parse(p: &RawParagraph) -> Result<PackagesEntry, ParseError> {
        let fields = split_paragraph(&p.text, p.first_line.saturating_sub(1))?;
        let mut slots: [Option<&Field<'_>>; PACKAGES_FIELDS.len()] = [None; PACKAGES_FIELDS.len()];
        collect(&fields, &PACKAGES_FIELDS, &mut slots)?;
        let [package, version, architecture, source, filename, size, sha256, bu, sbu, xbu] = slots;
        let (name, version) = package_and_version(package, "Package", version, p)?;
        let architecture = required(architecture, "Architecture", p)?;
        let arch = architecture.single()?;
        if !is_valid_arch(arch) {
            return Err(architecture.err(format!("invalid architecture `{arch}`")));
        }
        let (source, source_version) = match source {
            None => (name.to_owned(), version.clone()),
            Some(f) => {
                let (n, v) = parse_name_version(f.single()?).map_err(|e| f.locate(e))?;
                (n, v.unwrap_or_else(|| version.clone()))
            }
        };
        let filename = required(filename, "Filename", p)?;
        let filename_value = filename.single()?;
        if filename_value.is_empty() || filename_value.contains(char::is_whitespace) {
            return Err(filename.err(format!("invalid pool path `{filename_value}`")));
        }
        let size = required(size, "Size", p)?;
        let size_value = parse_size(size.single()?)
            .ok_or_else(|| size.err(format!("`{}` is not a file size", size.first())))?;
        let sha256 = required(sha256, "SHA256", p)?;
        let digest = sha256.single()?;
        if !is_hex_of_len(digest, 64) {
            return Err(sha256.err(format!("`{digest}` is not a 64-digit hex SHA-256")));
        }
        let built = |f: Option<&Field<'_>>| -> Result<Vec<SourceRef>, ParseError> {
            match f {
                None => Ok(Vec::new()),
                Some(f) => parse_built_using(&f.normalized()).map_err(|e| f.locate(e)),
            }
        };
        Ok(PackagesEntry {
            package: name.to_owned(),
            version,
            architecture: arch.to_owned(),
            source,
            source_version,
            filename: filename_value.to_owned(),
            size: size_value,
            sha256: digest.to_ascii_lowercase(),
            built_using: built(bu)?,
            static_built_using: built(sbu)?,
            x_cargo_built_using: built(xbu)?,
        })
    }
}

impl SourcesEntry {
    /// Parse one paragraph of a `Sources` index. Required: Package, Version.
    /// Line numbers in errors are lines of the whole file.
    pub fn parse(p: &RawParagraph) -> Result<SourcesEntry, ParseError> {
        let fields = split_paragraph(&p.text, p.first_line.saturating_sub(1))?;
        Self::from_fields(&fields, "Package", p)
    }

    /// Parse a source package's `.dsc` file (plain or clearsigned; the signature is not
    /// verified). Required: Source, Version. [`SourcesEntry::package`] is the `Source` field,
    /// [`SourcesEntry::directory`] is `None`, and [`SourcesEntry::files`] lists the files the
    /// .dsc names in `Checksums-Sha256`.
    pub fn parse_dsc(input: &[u8]) -> Result<SourcesEntry, ParseError> {
        let text = std::str::from_utf8(input).map_err(|e| {
            let line = 1 + crate::fields::count_newlines(input.get(..e.valid_up_to()).unwrap_or_default());
            ParseError::new("invalid UTF-8").line(line)
        })?;
        let (payload, line_offset, _signature) = crate::buildinfo::dearmor(text)?;
        let fields = split_paragraph(&payload, line_offset)?;
        let p = RawParagraph { text: String::new(), first_line: line_offset + 1 };
        Self::from_fields(&fields, "Source", &p)
    }

    /// The fields of a Sources paragraph or a .dsc; `name_field` names the package (`Package`
    /// in an index, `Source` in a .dsc).
    fn from_fields(fields: &[Field<'_>], name_field: &str, p: &RawParagraph) -> Result<SourcesEntry, ParseError> {
        let mut wanted = SOURCES_FIELDS;
        wanted[0] = name_field;
        let mut slots: [Option<&Field<'_>>; SOURCES_FIELDS.len()] = [None; SOURCES_FIELDS.len()];
        collect(fields, &wanted, &mut slots)?;
        let [package, version, binary, architecture, directory, bd, bdi, bda, sums] = slots;
        let (name, version) = package_and_version(package, name_field, version, p)?;
        let mut binaries = Vec::new();
        if let Some(f) = binary {
            f.for_each_item(|line, item| {
                if !is_valid_package_name(item) {
                    return Err(f.err(format!("invalid package name `{item}`")).line(line));
                }
                binaries.push(item.to_owned());
                Ok(())
            })?;
        }
        let mut archs = Vec::new();
        if let Some(f) = architecture {
            for (line, t) in f.tokens() {
                if !is_valid_arch(t) {
                    return Err(f.err(format!("invalid architecture `{t}`")).line(line));
                }
                archs.push(t.to_owned());
            }
        }
        let directory = match directory {
            None => None,
            Some(f) => Some(f.single()?.to_owned()),
        };
        let mut files = Vec::new();
        if let Some(f) = sums {
            for (line, content) in f.lines() {
                let mut t = content.split_ascii_whitespace();
                let (Some(hash), Some(size), Some(file), None) = (t.next(), t.next(), t.next(), t.next()) else {
                    if content.trim_ascii().is_empty() {
                        continue;
                    }
                    return Err(f.err(format!("`{}`: expected `SHA256 SIZE NAME`", content.trim_ascii())).line(line));
                };
                if !is_hex_of_len(hash, 64) {
                    return Err(f.err(format!("`{hash}` is not a 64-digit hex SHA-256")).line(line));
                }
                let Some(size) = parse_size(size) else {
                    return Err(f.err(format!("`{size}` is not a file size")).line(line));
                };
                files.push((hash.to_ascii_lowercase(), size, file.to_owned()));
            }
        }
        let text = |f: Option<&Field<'_>>| f.map(Field::normalized);
        Ok(SourcesEntry {
            package: name.to_owned(),
            version,
            binaries,
            architecture: archs,
            directory,
            build_depends: text(bd),
            build_depends_indep: text(bdi),
            build_depends_arch: text(bda),
            files,
        })
    }
}

/// The `Packages` fields read, in the order of the slots [`collect`] fills.
const PACKAGES_FIELDS: [&str; 10] = [
    "Package",
    "Version",
    "Architecture",
    "Source",
    "Filename",
    "Size",
    "SHA256",
    "Built-Using",
    "Static-Built-Using",
    "X-Cargo-Built-Using",
];

/// The `Sources` fields read, in the order of the slots [`collect`] fills.
const SOURCES_FIELDS: [&str; 9] = [
    "Package",
    "Version",
    "Binary",
    "Architecture",
    "Directory",
    "Build-Depends",
    "Build-Depends-Indep",
    "Build-Depends-Arch",
    "Checksums-Sha256",
];

/// Put each wanted field (case-insensitive) into its slot; a wanted field given twice is an
/// error. Other fields are ignored.
fn collect<'f, 'a>(
    fields: &'f [Field<'a>],
    wanted: &[&str],
    slots: &mut [Option<&'f Field<'a>>],
) -> Result<(), ParseError> {
    for f in fields {
        if let Some(i) = wanted.iter().position(|w| w.eq_ignore_ascii_case(f.name)) {
            match slots.get_mut(i) {
                Some(Some(_)) => return Err(f.err("duplicate field")),
                Some(slot) => *slot = Some(f),
                None => {}
            }
        }
    }
    Ok(())
}

/// A required field, or an error naming it and the paragraph's first line.
/// The `Package` and `Version` fields every index paragraph must have, validated.
fn package_and_version<'a>(
    package: Option<&Field<'a>>,
    package_field: &str,
    version: Option<&Field<'a>>,
    p: &RawParagraph,
) -> Result<(&'a str, Version), ParseError> {
    let package = required(package, package_field, p)?;
    let name = package.single()?;
    if !is_valid_package_name(name) {
        return Err(package.err(format!("invalid package name `{name}`")));
    }
    let version_field = required(version, "Version", p)?;
    let version = parse_version(version_field.single()?).map_err(|e| version_field.locate(e))?;
    Ok((name, version))
}

fn required<'f, 'a>(f: Option<&'f Field<'a>>, name: &str, p: &RawParagraph) -> Result<&'f Field<'a>, ParseError> {
    f.ok_or_else(|| {
        ParseError::new("missing required field in the paragraph starting here").field(name).line(p.first_line)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKG: &str = "Package: foo\nVersion: 1.0-1+b1\nArchitecture: amd64\nSource: foo-src (1.0-1)\nFilename: pool/main/f/foo.deb\nSize: 12\nSHA256: 8BC1B0BB5B1B12E86852FFEBC0C77B9A0FFB1ED2DB3B6EE1FD74FDBA6A8DA062\nBuilt-Using: a-b (= 2+b4),\n c-d (= 1:3-1+b1)\n";

    #[test]
    fn packages_entry() {
        let e = PackagesEntry::parse(&RawParagraph { first_line: 1, text: PKG.into() }).unwrap();
        assert_eq!((e.source.as_str(), e.source_version.to_string().as_str()), ("foo-src", "1.0-1"));
        assert_eq!(e.sha256, "8bc1b0bb5b1b12e86852ffebc0c77b9a0ffb1ed2db3b6ee1fd74fdba6a8da062");
        let bu: Vec<String> = e.built_using.iter().map(|r| format!("{} {}", r.name, r.version)).collect();
        assert_eq!(bu, vec!["a-b 2", "c-d 1:3-1"]);
    }

    /// Regression (found by proptest): line arithmetic overflowed with a huge `first_line`.
    #[test]
    fn huge_first_line_does_not_overflow() {
        let err = PackagesEntry::parse(&RawParagraph { first_line: usize::MAX, text: "a:\na".into() }).unwrap_err();
        assert_eq!(err.line, Some(usize::MAX));
        let err = PackagesEntry::parse(&RawParagraph { first_line: usize::MAX, text: PKG.replace("Size: 12", "Size: x") })
            .unwrap_err();
        assert_eq!(err.line, Some(usize::MAX));
    }

    #[test]
    fn sources_entry_binary_spans_lines() {
        let text = "Package: foo\nVersion: 1\nBinary: a1, b2,\n c3\nBuild-Depends: x,\n   y [amd64],\n z\n";
        let e = SourcesEntry::parse(&RawParagraph { first_line: 10, text: text.into() }).unwrap();
        assert_eq!(e.binaries, vec!["a1", "b2", "c3"]);
        assert_eq!(e.build_depends.as_deref(), Some("x, y [amd64], z"));
        let err = SourcesEntry::parse(&RawParagraph { first_line: 10, text: text.replace(" c3", " C3") }).unwrap_err();
        assert_eq!((err.field.as_deref(), err.line), (Some("Binary"), Some(13)));
        let err = SourcesEntry::parse(&RawParagraph { first_line: 10, text: "Version: 1\n".into() }).unwrap_err();
        assert_eq!((err.field.as_deref(), err.line), (Some("Package"), Some(10)));
    }
}

#[cfg(test)]
mod dsc_tests {
    use super::*;

    const DSC: &str = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nFormat: 3.0 (quilt)\nSource: hello\nBinary: hello\nArchitecture: any\nVersion: 2.10-3\nChecksums-Sha256:\n 31e066137a962676e89f69d1b65382de95a7ef7d914b8cb956f41ea72e0f516b 725946 hello_2.10.orig.tar.gz\n 5e8d2f4c8d5ec0d3f3e9f7b5cb46bbcc20f0c3b9ad5d8d8d8d7d5c8e0e2f9a44 12688 hello_2.10-3.debian.tar.xz\n\n-----BEGIN PGP SIGNATURE-----\n\niQ==\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn dsc_signed_lists_its_files() {
        let d = SourcesEntry::parse_dsc(DSC.as_bytes()).unwrap();
        assert_eq!(d.package, "hello");
        assert_eq!(d.version.to_string(), "2.10-3");
        assert_eq!(d.files.len(), 2);
        assert_eq!(d.files[0].1, 725946);
        assert_eq!(d.files[1].2, "hello_2.10-3.debian.tar.xz");
    }

    #[test]
    fn dsc_without_source_names_the_field() {
        let e = SourcesEntry::parse_dsc(b"Format: 1.0\nVersion: 1\n").unwrap_err().to_string();
        assert!(e.contains("Source"), "{e}");
    }
}
